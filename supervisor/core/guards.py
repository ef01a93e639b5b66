"""The guards of the transition table: questions about the core and the event, read only.

A guard's docstring is its label in the state diagram (``docs/explanation/state-diagram.md``):
keep it a short phrase.
"""

from __future__ import annotations

from .. import exitstatus
from . import steps as S
from .events import (
    ChildExited,
    CommitFinished,
    Exit,
    SignalReceived,
    Tick,
    TreeGone,
    ValidatorFinished,
)
from .state import Phase, Reason

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)

if TYPE_CHECKING:
    from typing import Any

    from .machine import Core


def passed_on(c: Core, ev: SignalReceived) -> bool:
    """neither a soft kill nor a trigger signal"""
    return ev.signum not in c.soft_kills and ev.signum not in c.s.trigger_signals


def passed_on_program_alive(c: Core, ev: SignalReceived) -> bool:
    """neither a soft kill nor a trigger signal, the program lives"""
    return passed_on(c, ev) and c.child.alive


def soft_kill_with_budget(c: Core, ev: SignalReceived) -> bool:
    """first soft-kill signal, --checkpoint-on-evict and checkpoint paths"""
    return (ev.signum in c.soft_kills and c.eviction is None and bool(S.eviction_budget(c))
            and c.s.checkpointing)


def soft_kill_budget_in_flight(c: Core, ev: SignalReceived) -> bool:
    """first soft-kill signal, a budget (evict or promise) for the checkpoint in flight"""
    return ev.signum in c.soft_kills and c.eviction is None and bool(S.eviction_budget(c))


def soft_kill_program_gone(c: Core, ev: SignalReceived) -> bool:
    """soft-kill signal, the program has exited"""
    return ev.signum in c.soft_kills and not c.child.alive


def soft_kill(c: Core, ev: SignalReceived) -> bool:
    """soft-kill signal (KillSig, RemoveKillSig)"""
    return ev.signum in c.soft_kills


def trigger(c: Core, ev: SignalReceived) -> bool:
    """trigger signal (HTCondor's checkpoint signal)"""
    return ev.signum in c.s.trigger_signals and c.s.checkpointing


def program_alive(c: Core, ev: Any) -> bool:
    """the program lives"""
    return c.child.alive


def done_rule_holds(c: Core, ev: ChildExited) -> bool:
    """the done rule holds"""
    return bool(ev.done)


def exit_may_be_checkpoint(c: Core, ev: ChildExited) -> bool:
    """the exit rule or --inspect-on-exit applies"""
    return S.may_be_checkpoint(c, ev)


def watching(c: Core, ev: Any) -> bool:
    """--watch"""
    return c.s.watch and c.s.checkpointing


def min_run_reached(c: Core, ev: Tick) -> bool:
    """--watch --min-run: committed, min-run reached"""
    return c.timers.pending_exit is not None and ev.now >= c.timers.pending_exit


def timer_due(c: Core, ev: Tick) -> bool:
    """--every timer due"""
    return c.timers.next_check is not None and ev.now >= c.timers.next_check and c.s.checkpointing


def request_expired(c: Core, ev: Tick) -> bool:
    """the request's deadline passed"""
    return c.request.deadline is not None and ev.now >= c.request.deadline


def evict_budget_spent(c: Core, ev: Tick) -> bool:
    """the eviction budget ran out"""
    return c.request.reason == Reason.EVICT and c.child.alive and request_expired(c, ev)


def grace_over(c: Core, ev: Tick) -> bool:
    """the kill grace ran out, the program lives"""
    e = c.eviction
    return e is not None and e.grace_deadline is not None and ev.now >= e.grace_deadline and c.child.alive


def result_awaited_before_the_end(c: Core, ev: Any) -> bool:
    """the phase it ended in awaits this result"""
    s = c.settling
    if s is None:
        return False
    if isinstance(ev, ValidatorFinished):
        return s.back == Phase.VALIDATING
    if isinstance(ev, CommitFinished):
        return s.back == Phase.COMMITTING
    return s.back == Phase.KILLING  # TreeGone


def settle_grace_over(c: Core, ev: Tick) -> bool:
    """the eviction's grace ran out while settling"""
    s = c.settling
    return s is not None and s.deadline is not None and ev.now >= s.deadline


def validator_ok(c: Core, ev: ValidatorFinished) -> bool:
    """validator exited 0"""
    return ev.ok


def program_gone(c: Core, ev: Any) -> bool:
    """the program has exited"""
    return not c.child.alive


def watched_request(c: Core, ev: Any) -> bool:
    """the checkpoint was a watched one (not made an eviction checkpoint)"""
    # an eviction during the validation keeps its budget: the soft kill must still be passed on
    return c.request.reason != Reason.EVICT and (
        c.request.reason == Reason.WATCH or (c.request.at is None and c.s.watch))


def copy_raced(c: Core, ev: CommitFinished) -> bool:
    """the files changed during the copy (not while evicting)"""
    evicting = c.eviction is not None
    return not ev.ok and ev.changed and not (evicting and c.request.reason != Reason.EVICT)


def copy_raced_program_gone(c: Core, ev: CommitFinished) -> bool:
    """the files changed during the copy, the program has exited"""
    return copy_raced(c, ev) and not c.child.alive and c.child.exit is not None


def copy_raced_request_stands(c: Core, ev: CommitFinished) -> bool:
    """the files changed during the copy of a requested checkpoint"""
    return copy_raced(c, ev) and c.request.reason in (Reason.SIGNAL, Reason.TIMER, Reason.EVICT)


def commit_failed_program_gone(c: Core, ev: CommitFinished) -> bool:
    """the commit failed, the program has exited"""
    return not ev.ok and not c.child.alive


def commit_failed_evicting(c: Core, ev: CommitFinished) -> bool:
    """the commit failed while evicting"""
    return not ev.ok and c.eviction is not None


def commit_failed(c: Core, ev: CommitFinished) -> bool:
    """the commit failed"""
    return not ev.ok


def committed_evicting(c: Core, ev: CommitFinished) -> bool:
    """committed a watched or timer checkpoint while evicting, nothing promised"""
    return c.eviction is not None and c.request.reason != Reason.EVICT and c.promise is None


def committed_program_ended(c: Core, ev: CommitFinished) -> bool:
    """committed a watched or timer checkpoint, the program ended meanwhile"""
    return (c.child.exited_while_busy and c.request.reason in (Reason.WATCH, Reason.TIMER)
            and c.child.exit is not None)


def committed_exit(c: Core, ev: CommitFinished) -> bool:
    """committed: the request wants the exit"""
    return S.exit_after_commit(c, ev.now)


def planned(c: Core) -> Exit:
    return c.plan.exit if c.plan is not None else Exit(exitstatus.EXIT_INTERNAL, reason="no exit planned")


def promise_unkept(c: Core, ev: TreeGone) -> bool:
    """the checkpoint status is owed, the plan is another status"""
    plan = planned(c)
    # (--on-timeout fail is the user's explicit choice to stop: 75, which HTCondor holds)
    return (c.promise is not None and c.s.checkpointing and not c.promise.fallback
            and not S.is_checkpoint_status(c, plan) and plan.status != exitstatus.EXIT_CHECKPOINT_TIMEOUT)


def promise_unkept_program_finished(c: Core, ev: TreeGone) -> bool:
    """the checkpoint status is owed, the program had finished"""
    exited = c.child.exit
    return (promise_unkept(c, ev) and exited is not None and c.plan is not None and c.plan.program_end
            and c.ledger.final_status is None and S.finished(c, exited)
            and not (c.eviction is not None and exited.done is not True))
