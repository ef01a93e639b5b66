"""The machine: :class:`Core` holds the state and steps it through the transition table."""

from __future__ import annotations

from collections.abc import Hashable

from ..errors import ProtocolError
from ..records import record
from . import steps as S
from .events import Command_, Event, Exit, Observation, SignalReceived, Tick
from .state import Child, CoreSettings, Eviction, Ledger, Phase, Plan, Promise, Reason, Request, Settling, Sight, Timers
from .table import TABLE, Branch, label

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Optional


@record(frozen=True)
class Step:
    """The last transition :meth:`Core.handle` made: which branch of which entry, and where to."""

    phase: Phase
    event: type
    branch: int
    to: Phase


def _transitions() -> tuple[tuple[Phase, Phase, str], ...]:
    """(from, to, label) for every branch of the table that moves the phase."""
    out: list[tuple[Phase, Phase, str]] = []
    for (phase, event), branches in TABLE.items():
        for b in branches:
            for to in b.to:
                if to != phase:
                    out.append((phase, to, f"{event.__name__} [{label(b.guard)}] / {label(b.action)}"))
    return tuple(out)


TRANSITIONS = _transitions()


class Core:
    """Feed events with :meth:`handle`; read :attr:`phase`, :meth:`deadline`, :attr:`observing`.

    The state is :attr:`phase` plus the frozen sub-states of ``supervisor/core/state.py``
    (:attr:`request`, :attr:`eviction`, :attr:`promise`, :attr:`child`, :attr:`ledger`,
    :attr:`sight`, :attr:`timers`, :attr:`plan`, :attr:`settling`), each replaced as a whole by the steps.
    """

    def __init__(self, settings: CoreSettings) -> None:
        self.s = settings
        self.phase = Phase.STARTING
        self.now = 0.0  # the time of the event being handled
        self.request = Request()
        self.eviction: Optional[Eviction] = None
        self.promise: Optional[Promise] = None  # owed to HTCondor after its checkpoint signal
        self.child = Child()
        self.ledger = Ledger()
        self.sight = Sight()
        self.timers = Timers()
        self.plan: Optional[Plan] = None
        self.settling: Optional[Settling] = None  # SETTLING: the program is gone, its end awaited
        # KillSig and RemoveKillSig (a constant of the settings, kept as a set: a guard's question
        # about every signal passed on)
        self.soft_kills = frozenset(s for s in (settings.kill_signal, settings.remove_kill_signal) if s is not None)
        self._step: Optional[tuple[Phase, type, int, Phase]] = None

    # ---------------------------------------------------------------- the one entry point
    def handle(self, event: Event) -> list[Command_]:
        """The commands for ``event``: the first branch of its table entry whose guard holds."""
        phase = self.phase
        branches = TABLE.get((phase, type(event)))
        if branches is None:
            raise ProtocolError(f"internal error: {type(event).__name__} is not expected while "
                                f"{phase.value} (no entry in supervisor/core/table.py)")
        for index, branch in enumerate(branches):  # noqa: B007  (index names the Step below)
            if branch.guard is None or branch.guard(self, event):
                break
        else:
            raise ProtocolError(f"internal error: no branch of ({phase.value}, {type(event).__name__}) "
                                "takes this event (supervisor/core/table.py)")
        self.now = event.now
        out: list[Command_] = []
        branch.action(self, event, out)
        if self.phase not in branch.to:
            raise ProtocolError(f"internal error: {label(branch.action)!r} moved {phase.value} to "
                                f"{self.phase.value}, which its table entry does not name")
        self._step = (phase, type(event), index, self.phase)  # a Step when asked for (last_step)
        return out

    @property
    def last_step(self) -> Optional[Step]:
        """The transition the last :meth:`handle` made."""
        return None if self._step is None else Step(*self._step)

    @staticmethod
    def branch(step: Step) -> Branch:
        return TABLE[(step.phase, step.event)][step.branch]

    # ---------------------------------------------------------------- questions from the loop
    @property
    def observing(self) -> bool:
        """True while the loop should gather Observations (a checkpoint may complete)."""
        return self.s.checkpointing and (
            self.phase == Phase.CHECKPOINTING or (self.phase == Phase.RUNNING and self.s.watch)
        )

    def needs_fresh_look(self, event: Event) -> bool:
        """Must the loop observe the sandbox (and hand that Observed in) before ``event``? Yes when
        the event would start a checkpoint request: its baseline must be what is on disk now, not
        what it was at the last look."""
        if not self.s.checkpointing or self.phase != Phase.RUNNING:
            return False
        if isinstance(event, SignalReceived):
            return event.signum in self.s.trigger_signals or (
                event.signum in self.soft_kills and bool(self.s.checkpoint_on_evict))
        if isinstance(event, Tick):
            return bool(self.s.every) and not self.observing
        return False

    def deadline(self) -> Optional[float]:
        """The next time a Tick is needed, or None."""
        times: list[float] = []
        phase, req = self.phase, self.request
        grace = self.eviction.grace_deadline if self.eviction is not None else None
        if phase == Phase.RUNNING and self.timers.next_check is not None:
            times.append(self.timers.next_check)
        if phase == Phase.CHECKPOINTING and req.deadline is not None:
            times.append(req.deadline)
        if (phase == Phase.VALIDATING and req.reason == Reason.EVICT and req.deadline is not None
                and self.child.alive):  # a validator runs for an eviction checkpoint: the budget bounds it too
            times.append(req.deadline)
        if phase == Phase.STOPPING and grace is not None:
            times.append(grace)
        if phase == Phase.COMMITTING and grace is not None and self.child.alive:
            times.append(grace)
        if self.observing and self.s.complete is not None:
            t = self.s.complete.deadline(S.view(self, self.now))
            # a time the rules were already evaluated at (or after) brings nothing new
            evaluated = self.sight.evaluated_at
            if t is not None and (evaluated is None or t > evaluated):
                times.append(t)
        if phase == Phase.SETTLING and self.settling is not None and self.settling.deadline is not None:
            times.append(self.settling.deadline)
        if phase == Phase.RUNNING and self.s.watch and self.s.min_run and self.timers.pending_exit:
            times.append(self.timers.pending_exit)
        return min(times) if times else None

    def owed_after_exit(self) -> bool:
        """After the Exit: does a trigger signal that lands now (as the supervisor returns) still
        owe HTCondor the checkpoint status? Yes when the exit reports the program's own end and
        checkpoint signals are expected (rule 8): the loop then records that end in the store as
        the final status and reports the checkpoint status instead."""
        return (self.phase == Phase.EXITED and self.s.checkpointing and bool(self.s.trigger_signals)
                and self.plan_is_program_end)

    def checkpoint_status(self) -> Exit:
        """The Exit that reports a checkpoint (by exit code or by signal)."""
        return S.checkpoint_status(self)

    # ---------------------------------------------------------------- read-only views
    @property
    def exit_plan(self) -> Optional[Exit]:
        return self.plan.exit if self.plan is not None else None

    @property
    def plan_is_program_end(self) -> bool:
        """The planned exit reports the program's own end."""
        return self.plan is not None and self.plan.program_end

    @property
    def commits(self) -> int:
        return self.ledger.ok

    @property
    def committed_fp(self) -> Hashable:
        return self.ledger.committed_fp

    @property
    def obs(self) -> Observation:
        return self.sight.obs

    @property
    def child_alive(self) -> bool:
        return self.child.alive and self.phase != Phase.SETTLING

    @property
    def sent_job_signals(self) -> frozenset[int]:
        return self.child.sent_job_signals
