"""The core's state: the phase plus a few small frozen sub-states, replaced, never mutated.

:class:`Core <supervisor.core.machine.Core>` holds one :class:`Phase` and one value of each
sub-state below; a step builds a new value (``replace(core.request, reason=...)``) instead of
changing an attribute in place, so what the core knows at any moment is these few records.

=================  ===============================================================================
sub-state          what it holds
=================  ===============================================================================
:class:`Request`   the checkpoint request in flight: why (:class:`Reason`), since when, until when,
                   and the baseline a checkpoint must differ from
:class:`Eviction`  the soft-kill signal HTCondor sent, whether we passed it on, the kill grace
:class:`Promise`   the checkpoint status owed to HTCondor after its checkpoint signal (rule 8)
:class:`Child`     the program: alive or its end, the job signals we sent it
:class:`Ledger`    commits done and failed, what was last committed, what the commit in flight is
:class:`Sight`     the last observation of the sandbox and what the rules remember of it
:class:`Timers`    the ``--every`` timer and the ``--min-run`` exit
:class:`Plan`      the exit status decided when the tree kill started
:class:`Settling`  the program is gone, its end being settled: where to go back, what is held
=================  ===============================================================================
"""

from __future__ import annotations

import enum
from collections.abc import Hashable

from .. import exitstatus
from ..errors import ProtocolError
from ..records import record
from ..rules import Rule
from .events import ChildExited, Event, Exit, Observation

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Optional

# --------------------------------------------------------------------------------------------
# Settings


@record(frozen=True)
class CoreSettings:
    kill_signal: int = 15
    remove_kill_signal: Optional[int] = None  # RemoveKillSig: a soft kill too (os_proc.cpp:941)
    kill_grace: float = 10.0
    exit_code: int = exitstatus.DEFAULT_CHECKPOINT_EXIT_CODE
    exit_signal: Optional[int] = None
    checkpointing: bool = False  # checkpoint paths configured
    trigger_signals: frozenset[int] = frozenset()
    job_signal: Optional[int] = None  # None: the trigger signal itself
    every: Optional[float] = None
    watch: bool = False
    inspect_on_exit: frozenset[int] = frozenset()
    complete: Optional[Rule] = None
    checkpoint_on_evict: Optional[float] = None
    promise_budget: Optional[float] = None  # evicted with a promised checkpoint in flight: its time
    checkpoint_timeout: Optional[float] = None
    on_timeout: str = "continue"  # or "fail"
    min_run: float = 0.0
    exit_after_checkpoint: bool = True  # for timer and watch checkpoints



# --------------------------------------------------------------------------------------------
# Phases and sub-states


class Phase(str, enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    CHECKPOINTING = "checkpointing"
    VALIDATING = "validating"
    COMMITTING = "committing"
    STOPPING = "stopping"
    KILLING = "killing"
    SETTLING = "settling"  # the program is gone; what its end means is being found out off the loop
    EXITED = "exited"


class Reason(str, enum.Enum):
    """Why a checkpoint is being taken (the value is the ``reason`` field of the event log)."""

    NONE = ""  # no request: running
    SIGNAL = "signal"  # HTCondor's checkpoint signal (a trigger signal)
    EVICT = "evict"  # the soft-kill signal with --checkpoint-on-evict
    TIMER = "timer"  # --every
    WATCH = "watch"  # --watch saw a new complete checkpoint
    EXIT = "exit"  # the program ended: its files inspected, or its end recorded


@record(frozen=True)
class Baseline:
    """What the checkpoint files, markers and log counts were when the request started."""

    fingerprint: Hashable = None
    markers: tuple[tuple[str, Optional[int]], ...] = ()
    logs: tuple[tuple[str, int], ...] = ()


@record(frozen=True)
class Request:
    """The checkpoint request in flight (``reason`` NONE while running with none)."""

    reason: Reason = Reason.NONE
    at: Optional[float] = None
    deadline: Optional[float] = None
    baseline: Baseline = Baseline()


@record(frozen=True)
class Eviction:
    """HTCondor sent its soft-kill signal (``KillSig`` or ``RemoveKillSig``): ``signal``."""

    signal: int
    soft_kill_sent: bool = False  # passed on to the program (the grace runs from then)
    grace_deadline: Optional[float] = None


@record(frozen=True)
class Promise:
    """The promise owed to HTCondor after its checkpoint signal (semantics rule 8).

    Once the starter sent ``signal`` at ``at``, the job's next exit must be the checkpoint status,
    whatever happens meanwhile (an eviction included), or HTCondor holds the job (code 36).
    ``fallback``: the last resort (report the checkpoint status over the unchanged store) was
    already tried; if that failed too, the failure is reported as it is.
    """

    signal: int
    at: float
    fallback: bool = False


@record(frozen=True)
class Child:
    """The program (the main process of the tree)."""

    alive: bool = False
    started_at: float = 0.0
    exit: Optional[ChildExited] = None  # how it ended
    exited_while_busy: bool = False  # it ended on its own during a validation or commit
    sent_job_signals: frozenset[int] = frozenset()  # signals we sent to make it checkpoint
    prior_job_signal_deaths: int = 0  # from the store: earlier runs killed by our job signal

    @property
    def result(self) -> tuple[Optional[int], Optional[int]]:
        return (None, None) if self.exit is None else (self.exit.code, self.exit.signum)


@record(frozen=True)
class Ledger:
    """Commits of this run, and the one in flight (or the last one)."""

    ok: int = 0
    failed: int = 0
    last_error: str = ""
    committed_fp: Hashable = None  # what the store holds (what was there at the start, at first)
    kept_store: bool = False  # the commit only keeps the store as it is (no new checkpoint)
    final_status: Optional[int] = None  # the commit records the program's final status


_NEVER: Any = object()  # a fingerprint equal to no other


@record(frozen=True)
class Sight:
    """The last observation of the sandbox, and what the completion rules remember."""

    obs: Observation = Observation()
    start_fp: Hashable = None  # the checkpoint files when the program started
    last_change_at: Optional[float] = None
    rejected_fp: Hashable = _NEVER  # a validator rejected, or a commit failed on, these files
    evaluated_at: Optional[float] = None  # when the completion rules were last evaluated


@record(frozen=True)
class Timers:
    next_check: Optional[float] = None  # --every: the next timer checkpoint
    pending_exit: Optional[float] = None  # --watch --min-run: exit with the checkpoint status then


@record(frozen=True)
class Plan:
    """The exit decided when the tree kill started; ``program_end``: it reports the program's own."""

    exit: Exit
    program_end: bool = False


@record(frozen=True)
class Settling:
    """The main process was reaped (ChildGone) while ``back``; its ChildExited is awaited.

    Nothing reaches the program meanwhile (its PID may be reused); the events that arrive are
    ``held`` and handed in again, in their order, after the ChildExited, as if they had come
    just after it. ``deadline``: the eviction's grace bounds the wait (then ``cut``).
    """

    back: Phase
    code: Optional[int]
    signum: Optional[int]
    since: float
    held: tuple[Event, ...] = ()
    deadline: Optional[float] = None
    cut: bool = False


# --------------------------------------------------------------------------------------------
# Start-up decision (from the files on disk, never from HTCondor's advisory counters)


@record(frozen=True)
class StartPlan:
    resume: bool
    exit_now: Optional[int] = None
    reason: str = ""
    set_aside_working: bool = False  # working files were left by a run that ended without a checkpoint


def plan_start(state: Optional[dict[str, Any]]) -> StartPlan:
    """Decide from the committed store's state: run fresh, resume, or report a finished program."""
    if state is None:
        return StartPlan(resume=False, reason="no committed checkpoint: starting from scratch")
    final = state.get("final_status")
    if isinstance(final, int) and not isinstance(final, bool):
        return StartPlan(resume=False, exit_now=final,
                         reason=f"the program had already finished with status {final}")
    if state.get("empty"):
        # written when a run ended without a checkpoint (killed, interrupted): its working files
        # may be torn by that end, and are not a checkpoint
        return StartPlan(resume=False, reason="the store holds no checkpoint yet: starting from scratch",
                         set_aside_working=True)

    return StartPlan(resume=True, reason=f"resuming from committed checkpoint {state.get('sequence', '?')}")


def program_status(code: Optional[int], signum: Optional[int]) -> int:
    """The exit status the supervisor reports for the program's own end (128+N for signal N)."""
    if signum is not None:
        return exitstatus.SIGNAL_BASE + signum
    if code is None:
        raise ProtocolError("a program status with neither an exit code nor a signal")
    return code
