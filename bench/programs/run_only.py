"""Prototype of the proposed start-up fix, for measurement only (not part of the package).

``python bench/programs/run_only.py -- PROGRAM`` behaves like ``ckpt-supervisor run -- PROGRAM``
but builds a parser that knows only ``run``: the dry-run, snippet, check and report sub-commands
(and what they import: psutil, subprocess, tempfile, uuid, jobad, submit) are not imported. The
gap between this and ``python -m supervisor run`` is what lazy sub-command registration saves.
"""

import argparse
import sys

from supervisor import exitstatus
from supervisor.__main__ import run_command
from supervisor.config import add_run_options
from supervisor.errors import SupervisorError


def main(argv):
    parser = argparse.ArgumentParser(prog="ckpt-supervisor run")
    add_run_options(parser)
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-q", "--quiet", action="count", default=0)
    parser.add_argument("program", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    args.command = "run"
    try:
        return run_command(args)
    except SupervisorError as exc:
        sys.stderr.write(f"ckpt-supervisor: error: {exc}\n")
        return exc.exit_status
    except KeyboardInterrupt:
        return exitstatus.SIGNAL_BASE + 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
