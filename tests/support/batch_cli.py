#!/usr/bin/env python3
"""Run many ``ckpt-supervisor`` command lines fast: import once, fork per case.

Usage: ``batch_cli.py CASES.json RESULTS.json``. Each case is ``{"argv": [...], "env": {...},
"cwd": DIR}``; each result ``{"status": N, "stderr": TEXT}``. The child runs exactly what the
console script runs (``supervisor.__main__.main(argv)``, then exits with its status) in its own
process, with the case's environment, working directory and file descriptor 2, so a case that is
wrongly accepted really runs (and dies, or exits) on its own. It saves the ~0.2 s interpreter
start-up per case, which the bad-input sweep would otherwise pay some 200 times.
"""

import json
import os
import sys
import tempfile

import supervisor.__main__ as cli
import supervisor.config
import supervisor.jobad
import supervisor.loop
import supervisor.rules
import supervisor.store  # noqa: F401


def one(case: dict) -> dict:
    with tempfile.TemporaryFile() as err:
        pid = os.fork()
        if pid == 0:
            status = 70
            try:
                os.chdir(case["cwd"])
                os.environ.clear()
                os.environ.update(case["env"])
                os.dup2(err.fileno(), 2)
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, 1)
                status = cli.main(case["argv"])
            except BaseException as exc:
                sys.stderr.write(f"batch_cli: {exc!r}\n")
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status)
        _, wait = os.waitpid(pid, 0)
        err.seek(0)
        text = err.read().decode(errors="replace")
    status = os.waitstatus_to_exitcode(wait)
    return {"status": status, "stderr": text}


def main() -> int:
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    results = [one(c) for c in cases]
    with open(sys.argv[2], "w") as f:
        json.dump(results, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
