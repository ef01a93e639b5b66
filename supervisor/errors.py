"""Exception hierarchy, split by who is to blame.

Only the CLI (``supervisor.__main__``) turns these into exit statuses, through ``exit_status``.
Each exception carries a one-line message that names the problem and what to do.
"""

from __future__ import annotations

from . import exitstatus


class SupervisorError(Exception):
    """Base class of every error the supervisor reports on purpose."""

    exit_status = exitstatus.EXIT_INTERNAL

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        if cause is not None:
            self.__cause__ = cause

    def __str__(self) -> str:
        return self.message


class ConfigError(SupervisorError):
    """The user's command line, config file, environment or job ad is wrong."""

    exit_status = exitstatus.EXIT_USAGE


class ProgramError(SupervisorError):
    """PROGRAM misbehaved (cannot be started, used the reserved code, ...)."""

    exit_status = exitstatus.EXIT_INTERNAL


class ProgramNotFound(ProgramError):
    exit_status = exitstatus.EXIT_NOT_FOUND


class ProgramNotExecutable(ProgramError):
    exit_status = exitstatus.EXIT_CANNOT_EXECUTE


class StoreError(SupervisorError):
    """A commit or restore failed; the previously committed checkpoint is intact."""

    exit_status = exitstatus.EXIT_STORE


class CorruptStore(StoreError):
    """The store does not verify against its manifest."""


class JobAdError(ConfigError):
    """The job ad (``$_CONDOR_JOB_AD``) cannot be read, or one of its checkpoint attributes is bad.

    The message names the file, the line and the attribute.
    """


class CheckpointPathMissing(StoreError):
    """A checkpoint path did not exist at commit time; nothing was committed."""


class SubmitFileError(ConfigError):
    """A submit file cannot be parsed; the message carries the line number."""


class InternalError(SupervisorError):
    """Our bug: the supervisor broke one of its own rules (exit status 70; please report it)."""

    exit_status = exitstatus.EXIT_INTERNAL


class ProtocolError(InternalError):
    """The decision core got an event its transition table does not allow in the current phase,
    or an action ended in a phase its table entry does not name: a bug of the loop or the core."""
