"""The one exit-status table of ``ckpt-supervisor``.

Documented in ``docs/reference/exit-status.md``; every number the supervisor chooses itself is
defined here and nowhere else.

=========  ======================================================================
status     meaning
=========  ======================================================================
0-255      PROGRAM's own exit code, passed through (also a recorded final status)
85         (``--exit-code``, or the job ad's SuccessCheckpointExitCode) a checkpoint
           was committed and every process of PROGRAM is gone; reserved
128+N      PROGRAM died from signal N
126        PROGRAM was found but could not be executed
127        PROGRAM was not found
64         usage or configuration error of the supervisor (nothing was started)
65         PROGRAM itself exited with the reserved checkpoint code
70         internal error of the supervisor (a bug: please report it)
74         the store could not be written or read (ENOSPC, EROFS, ...); the previous
           committed checkpoint is intact
75         a checkpoint did not complete in time and ``--on-timeout fail`` was set
76         no progress: ``--max-no-progress`` executions in a row committed, byte for
           byte, the checkpoint they had restored
=========  ======================================================================

``ckpt-supervisor check`` runs no program and has its own two statuses: 0 when the submit file
has no error finding (warnings allowed), ``EXIT_CHECK_FAILED`` (1) when it has at least one
error; 64 for a usage error or a submit file that cannot be read or parsed.

A death by ``--exit-signal SIG`` reports a checkpoint by signal: the supervisor kills itself with
SIG (no core dump), so its wait status is exactly ``SIG``.
"""

from __future__ import annotations

DEFAULT_CHECKPOINT_EXIT_CODE = 85

EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127
SIGNAL_BASE = 128

EXIT_USAGE = 64
EXIT_PROGRAM_USED_CHECKPOINT_CODE = 65
EXIT_INTERNAL = 70
EXIT_STORE = 74
EXIT_CHECKPOINT_TIMEOUT = 75
EXIT_NO_PROGRESS = 76

# ``ckpt-supervisor check``: the submit file has at least one error finding.
EXIT_CHECK_FAILED = 1

# The dry run's own statuses (``ckpt-supervisor dry-run``); the job's exit code otherwise.
DRYRUN_JOB_SIGNALED = 79
DRYRUN_HELD = 80
DRYRUN_REMOVED = 81
DRYRUN_MAX_STARTS = 82

SUPERVISOR_CODES = {
    EXIT_USAGE: "usage or configuration error",
    EXIT_PROGRAM_USED_CHECKPOINT_CODE: "PROGRAM exited with the reserved checkpoint code",
    EXIT_INTERNAL: "internal error of the supervisor",
    EXIT_STORE: "the checkpoint store could not be written or read",
    EXIT_CHECKPOINT_TIMEOUT: "checkpoint timed out (--on-timeout fail)",
    EXIT_NO_PROGRESS: "no progress: executions keep committing the checkpoint they restored",
    EXIT_CANNOT_EXECUTE: "PROGRAM could not be executed",
    EXIT_NOT_FOUND: "PROGRAM was not found",
}


def from_wait_status(status: int) -> int:
    """Turn a raw wait status into the exit status a shell would show (128+N for signal N)."""
    import os  # local: keep this module importable by the pure core

    if os.WIFSIGNALED(status):
        return SIGNAL_BASE + os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    raise ValueError(f"wait status {status:#x} is neither an exit nor a death by signal")
