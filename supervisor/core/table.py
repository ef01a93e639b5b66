"""The transition table: for each (phase, event type), guarded branches, each an action.

:meth:`Core.handle <supervisor.core.machine.Core.handle>` looks up ``TABLE[(phase, type(event))]``
(no entry: :class:`~supervisor.errors.ProtocolError`), takes the first branch whose guard holds
(``None``: otherwise), runs its action and checks that the phase it ended in is one the branch
names in ``to``. Guards only read; actions change the state through the steps of
``supervisor/core/steps.py`` and never call each other. ``docs/gen.py`` draws
``docs/explanation/state-diagram.md`` from this table, and ``tests/unit/test_core_properties.py``
checks that random event sequences take only these branches and reach every one of them.

A guard's and an action's docstring is its label in the diagram: keep it a short phrase.
"""

from __future__ import annotations

from ..records import record
from . import actions as A
from . import guards as G
from .events import (
    ChildExited,
    ChildGone,
    CommitFinished,
    Observed,
    SignalReceived,
    Started,
    Tick,
    TreeGone,
    ValidatorFinished,
)
from .state import Phase

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)

if TYPE_CHECKING:
    from typing import Any, Callable, Optional

    from .machine import Core

if TYPE_CHECKING:
    Guard = Callable[["Core", Any], bool]
    Action = Callable[["Core", Any, list[Any]], None]


@record(frozen=True)
class Branch:
    guard: Optional[Guard]  # None: otherwise
    action: Action
    to: tuple[Phase, ...]  # every phase the action may end in (the current one if it stays)


def label(fn: Optional[Callable[..., Any]]) -> str:
    """A guard's or action's label: the first line of its docstring."""
    if fn is None:
        return "otherwise"
    return (fn.__doc__ or fn.__name__).strip().splitlines()[0]


P = Phase


def B(guard: Optional[Guard], action: Action, *to: Phase) -> Branch:
    return Branch(guard, action, tuple(to))



_PROGRAM_END = (  # RUNNING and CHECKPOINTING
    B(G.done_rule_holds, A.end_by_done_rule, P.COMMITTING, P.KILLING),
    B(G.exit_may_be_checkpoint, A.inspect_exit, P.VALIDATING, P.COMMITTING, P.KILLING),
    B(None, A.program_ended, P.COMMITTING, P.KILLING),
)

_SETTLES_FROM = (P.RUNNING, P.CHECKPOINTING, P.VALIDATING, P.COMMITTING, P.STOPPING, P.KILLING)

_TABLE: dict[tuple[Phase, type], tuple[Branch, ...]] = {
    (P.STARTING, Started): (B(None, A.start, P.RUNNING),),
    # ------------------------------------------------------------------------ RUNNING
    # A signal that is only passed on (most of them) is answered by the first branch, after one
    # guard instead of three: the signal path's latency (docs/performance.md, 2a). The branches
    # after it decide alone what they decided before it was added.
    (P.RUNNING, SignalReceived): (
        B(G.passed_on, A.forward),
        B(G.soft_kill_with_budget, A.request_evict_checkpoint, P.CHECKPOINTING),
        B(G.soft_kill, A.pass_soft_kill, P.STOPPING),
        B(G.trigger, A.request_by_signal, P.CHECKPOINTING),
        B(None, A.forward),
    ),
    (P.RUNNING, ChildExited): _PROGRAM_END,
    (P.RUNNING, Observed): (
        B(G.watching, A.look_watched, P.RUNNING, P.VALIDATING, P.COMMITTING),
        B(None, A.look),
    ),
    (P.RUNNING, Tick): (
        B(G.min_run_reached, A.exit_after_min_run, P.KILLING),
        B(G.timer_due, A.request_by_timer, P.CHECKPOINTING),
        B(G.watching, A.tick_watched, P.RUNNING, P.VALIDATING, P.COMMITTING),
        B(None, A.ignore),
    ),
    (P.RUNNING, ValidatorFinished): (B(None, A.ignore),),
    (P.RUNNING, CommitFinished): (B(None, A.ignore),),
    # ------------------------------------------------------------------------ CHECKPOINTING
    (P.CHECKPOINTING, SignalReceived): (
        B(G.soft_kill_budget_in_flight, A.bound_request_by_budget),
        B(G.soft_kill, A.pass_soft_kill, P.STOPPING),
        B(G.trigger, A.coalesce),
        B(None, A.forward),
    ),
    (P.CHECKPOINTING, ChildExited): _PROGRAM_END,
    (P.CHECKPOINTING, Observed): (B(None, A.look_for_checkpoint, P.CHECKPOINTING, P.VALIDATING, P.COMMITTING),),
    (P.CHECKPOINTING, Tick): (
        B(G.request_expired, A.complete_or_time_out, P.VALIDATING, P.COMMITTING, P.RUNNING, P.STOPPING,
          P.KILLING),
        B(None, A.wait_for_checkpoint, P.CHECKPOINTING, P.VALIDATING, P.COMMITTING),
    ),
    (P.CHECKPOINTING, ValidatorFinished): (B(None, A.ignore),),
    (P.CHECKPOINTING, CommitFinished): (B(None, A.ignore),),
    # ------------------------------------------------------------------------ VALIDATING
    (P.VALIDATING, SignalReceived): (
        B(G.soft_kill_program_gone, A.note_eviction),
        B(G.soft_kill_budget_in_flight, A.bound_request_by_budget),
        B(G.soft_kill, A.pass_soft_kill, P.STOPPING),
        B(G.trigger, A.coalesce),
        B(G.program_alive, A.forward),
        B(None, A.ignore),
    ),
    (P.VALIDATING, ChildExited): (B(None, A.note_exit_while_busy),),
    (P.VALIDATING, Observed): (B(None, A.look),),
    (P.VALIDATING, Tick): (
        B(G.evict_budget_spent, A.evict_time_out, P.STOPPING),
        B(None, A.ignore),
    ),
    (P.VALIDATING, ValidatorFinished): (
        B(G.validator_ok, A.commit_validated, P.COMMITTING),
        B(G.program_gone, A.rejected_program_gone, P.COMMITTING, P.KILLING),
        B(G.watched_request, A.rejected_watched, P.RUNNING),
        B(None, A.rejected_requested, P.CHECKPOINTING, P.STOPPING),
    ),
    (P.VALIDATING, CommitFinished): (B(None, A.ignore),),
    (P.VALIDATING, TreeGone): (B(None, A.ignore),),
    # ------------------------------------------------------------------------ COMMITTING
    (P.COMMITTING, SignalReceived): (
        B(G.passed_on_program_alive, A.forward),  # first, as in RUNNING (a commit is long)
        B(G.soft_kill_program_gone, A.note_eviction),
        B(G.soft_kill, A.pass_soft_kill),
        B(G.trigger, A.coalesce),
        B(None, A.ignore),
    ),
    (P.COMMITTING, ChildExited): (B(None, A.note_exit_while_busy),),
    (P.COMMITTING, Observed): (B(None, A.look),),
    (P.COMMITTING, Tick): (
        B(G.grace_over, A.kill_during_commit),
        B(None, A.ignore),
    ),
    (P.COMMITTING, ValidatorFinished): (B(None, A.ignore),),
    (P.COMMITTING, CommitFinished): (
        B(G.copy_raced_program_gone, A.raced_decide_exit, P.VALIDATING, P.COMMITTING, P.KILLING),
        B(G.copy_raced_request_stands, A.raced_request_stands, P.CHECKPOINTING),
        B(G.copy_raced, A.raced_run_on, P.RUNNING),
        B(G.commit_failed_program_gone, A.failed_store_error, P.KILLING),
        B(G.commit_failed_evicting, A.failed_carry_on_evicting, P.STOPPING),  # the program lives
        B(G.commit_failed, A.failed_run_on, P.RUNNING),
        B(G.committed_evicting, A.committed_carry_on_evicting, P.STOPPING, P.KILLING),
        B(G.committed_program_ended, A.committed_decide_exit, P.VALIDATING, P.COMMITTING, P.KILLING),
        B(G.committed_exit, A.committed_kill, P.KILLING),
        B(None, A.committed_run_on, P.RUNNING),
    ),
    (P.COMMITTING, TreeGone): (B(None, A.ignore),),
    # ------------------------------------------------------------------------ STOPPING
    (P.STOPPING, SignalReceived): (
        B(G.soft_kill, A.pass_soft_kill),
        B(G.trigger, A.promise),
        B(None, A.forward),
    ),
    (P.STOPPING, ChildExited): (B(None, A.kill_after_soft_kill, P.KILLING),),
    (P.STOPPING, Observed): (B(None, A.look),),
    (P.STOPPING, Tick): (
        B(G.grace_over, A.kill_after_grace, P.KILLING),
        B(None, A.ignore),
    ),
    (P.STOPPING, ValidatorFinished): (B(None, A.ignore),),
    (P.STOPPING, CommitFinished): (B(None, A.ignore),),
    # ------------------------------------------------------------------------ KILLING
    (P.KILLING, SignalReceived): (
        B(G.soft_kill, A.note_eviction),
        B(G.trigger, A.promise),
        B(None, A.ignore),
    ),
    (P.KILLING, ChildExited): (B(None, A.note_exit),),
    (P.KILLING, Observed): (B(None, A.look),),
    (P.KILLING, Tick): (B(None, A.ignore),),
    (P.KILLING, ValidatorFinished): (B(None, A.ignore),),
    (P.KILLING, CommitFinished): (B(None, A.ignore),),
    (P.KILLING, TreeGone): (
        B(G.promise_unkept_program_finished, A.record_final_status, P.COMMITTING),
        B(G.promise_unkept, A.keep_promise, P.COMMITTING),
        B(None, A.exit_as_planned, P.EXITED),
    ),
    # ------------------------------------------------------------------------ SETTLING
    # the main process was reaped, what its end means is found out off the loop (ChildGone): the
    # program is never signalled now (its PID may be reused); what arrives is held, then handed in
    # again after the ChildExited, in its order, in the phase the program ended in
    **{(phase, ChildGone): (B(None, A.settle, P.SETTLING),) for phase in _SETTLES_FROM},
    (P.SETTLING, SignalReceived): (
        B(G.soft_kill, A.hold_soft_kill),
        B(None, A.hold_signal),
    ),
    (P.SETTLING, ChildExited): (B(None, A.settled, *_SETTLES_FROM),),
    (P.SETTLING, Observed): (B(None, A.ignore),),
    (P.SETTLING, Tick): (
        B(G.settle_grace_over, A.stop_settling),
        B(None, A.ignore),
    ),
    # a result the phase it ended in awaits is held for it; any other would be ignored there (and
    # handed in after the ChildExited it could be taken for the answer to a new request)
    **{(P.SETTLING, t): (B(G.result_awaited_before_the_end, A.hold), B(None, A.ignore))
       for t in (ValidatorFinished, CommitFinished, TreeGone)},
    # ------------------------------------------------------------------------ EXITED
    **{(P.EXITED, t): (B(None, A.ignore),) for t in (SignalReceived, ChildExited, ChildGone, Observed, Tick,
                                                    ValidatorFinished, CommitFinished, TreeGone)},
}


def _complete(table: dict[tuple[Phase, type], tuple[Branch, ...]]) -> dict[tuple[Phase, type], tuple[Branch, ...]]:
    """A branch that names no phase stays in its entry's phase."""
    return {(phase, event): tuple(b if b.to else Branch(b.guard, b.action, (phase,)) for b in branches)
            for (phase, event), branches in table.items()}


TABLE = _complete(_TABLE)
