"""``python bench/programs/no_inotify.py run ...``: the supervisor with inotify made unavailable.

For measuring the polling fallback only: ``supervisor.watch.open_inotify`` returns None, as on a
kernel or file system without inotify; everything else is ``python -m supervisor``.
"""

import sys

import supervisor.watch
from supervisor.__main__ import main

supervisor.watch.open_inotify = lambda: None

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
