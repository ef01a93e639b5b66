"""What goes in and out of the decision core: events (what happened) and commands (what to do).

The loop turns what happens (a signal, the program's end (or first that it is gone), the files on
disk, a finished commit or validator, the clock) into the events below and hands each to :meth:`Core.handle`; the core
answers with commands, which the loop carries out. All of them are frozen values.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable

from ..records import field, record, setattr_

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Optional, Union

# --------------------------------------------------------------------------------------------
# Events (in)


@record(frozen=True)
class Observation:
    """Facts the loop gathered about the sandbox; only those the rules need are filled in."""

    fingerprint: Hashable = None
    markers: tuple[tuple[str, Optional[int]], ...] = ()  # (path, mtime_ns or None)
    log_counts: tuple[tuple[str, int], ...] = ()  # (pattern, matches since start)
    open_for_write: Optional[bool] = None
    present: bool = True  # every checkpoint path exists
    missing: tuple[str, ...] = ()  # the checkpoint paths that do not exist
    newest_ns: Optional[int] = None  # newest mtime among the checkpoint files (for marker rules)


@record(frozen=True)
class Started:
    now: float
    pid: int
    observation: Observation
    resumed: bool = False  # working paths were restored from the store
    job_signal_deaths: int = 0  # earlier runs in a row killed by our job signal with no checkpoint


@record(frozen=True)
class SignalReceived:
    now: float
    signum: int

    # Written out (``record`` keeps a class's own ``__init__``, as ``dataclass`` does): this event
    # is built for every signal passed on, and the generic __init__ (arguments packed, then
    # matched to fields) took 10-12 µs of the 30 from epoll's return to killpg on a cold CPU
    # (docs/performance.md, 2a). The commands of a passed-on signal are made once per signal
    # number (core/actions.py ``forward``), so they keep the generated one.
    def __init__(self, now: float, signum: int) -> None:
        setattr_(self, "now", now)
        setattr_(self, "signum", signum)


@record(frozen=True)
class ChildExited:
    """The main process ended. ``code``/``signum`` as from a wait status; ``done``: the done rule."""

    now: float
    code: Optional[int]
    signum: Optional[int]
    observation: Observation
    done: Optional[bool] = None


@record(frozen=True)
class ChildGone:
    """The main process was reaped, but what its end means needs a blocking fact (DMTCP's images
    still being written, a done rule's ``command=``), gathered off the loop: its ChildExited follows."""

    now: float
    code: Optional[int]
    signum: Optional[int]


@record(frozen=True)
class Observed:
    now: float
    observation: Observation


@record(frozen=True)
class Tick:
    now: float


@record(frozen=True)
class ValidatorFinished:
    now: float
    ok: bool


@record(frozen=True)
class CommitFinished:
    now: float
    ok: bool
    error: str = ""
    bytes: int = 0
    seconds: float = 0.0
    fingerprint: Hashable = None
    changed: bool = False  # nothing committed: the files changed before or during the copy


@record(frozen=True)
class TreeGone:
    now: float


if TYPE_CHECKING:
    Event = Union[Started, SignalReceived, ChildExited, ChildGone, Observed, Tick, ValidatorFinished,
                  CommitFinished, TreeGone]
else:  # the same classes as a tuple (isinstance), without importing typing at start-up
    Event = (Started, SignalReceived, ChildExited, ChildGone, Observed, Tick, ValidatorFinished, CommitFinished,
             TreeGone)


# --------------------------------------------------------------------------------------------
# Commands (out)


class Target(str, enum.Enum):
    DEFAULT = "default"  # the --signal-to setting: the program's process group, or the child
    CHILD = "child"


@record(frozen=True)
class SendSignal:
    signum: int
    target: Target = Target.DEFAULT


@record(frozen=True)
class RunValidator:
    pass


@record(frozen=True)
class Commit:
    """Commit the checkpoint paths with this state; ``final_status`` records a finished program."""

    final_status: Optional[int] = None
    program_exited: bool = False
    restart: bool = False  # keep the committed store as it is (or mark a fresh start): no new files
    job_signal_deaths: int = 0  # with restart: record this many runs in a row killed by our job signal


@record(frozen=True)
class KillTree:
    """SIGKILL every process of the program's tree; the loop answers with TreeGone."""


@record(frozen=True)
class Redeliver:
    """Hand ``event`` to the core again: it was held while the program's end was settled."""

    event: Any


@record(frozen=True)
class StopSettling:
    """Stop gathering the facts of the program's end: kill the done rule's command (not done)."""


@record(frozen=True)
class Exit:
    status: int
    by_signal: Optional[int] = None  # die from this signal instead (checkpoint by signal)
    reason: str = ""


@record(frozen=True)
class Record:
    """An event-log entry: ``kind`` plus fields."""

    kind: str
    fields: dict[str, Any] = field(default_factory=dict)
    level: str = "info"  # "info", "warning", "error", "debug"
    message: str = ""


if TYPE_CHECKING:
    Command_ = Union[SendSignal, RunValidator, Commit, KillTree, Exit, Record, Redeliver, StopSettling]
else:
    Command_ = (SendSignal, RunValidator, Commit, KillTree, Exit, Record, Redeliver, StopSettling)

