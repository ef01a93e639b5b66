"""The transition table: for each (phase, event type), guarded branches, each an action.

:meth:`Core.handle <supervisor.core.machine.Core.handle>` looks up ``TABLE[(phase, type(event))]``
(no entry: :class:`~supervisor.errors.ProtocolError`), takes the first branch whose guard holds
(``None``: otherwise), runs its action and checks that the phase it ended in is one the branch
names in ``to``. Guards only read; actions change the state through the steps of
``supervisor/core/steps.py`` and never call each other. ``docs/gen.py`` draws
``docs/explanation/state-diagram.md`` from this table, and ``tests/test_core_properties.py``
checks that random event sequences take only these branches and reach every one of them.

A guard's and an action's docstring is its label in the diagram: keep it a short phrase.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional

from .. import exitstatus
from ..records import record, replace
from . import steps as S
from .events import (
    ChildExited,
    CommitFinished,
    Exit,
    KillTree,
    Observed,
    Record,
    SendSignal,
    SignalReceived,
    Started,
    Tick,
    TreeGone,
    ValidatorFinished,
)
from .state import Child, Phase, Promise, Reason, Request, Sight, Timers

if TYPE_CHECKING:
    from .machine import Core

Guard = Callable[["Core", Any], bool]
Action = Callable[["Core", Any, "S.Out"], None]


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


# ================================================================== guards (read only)


def soft_kill_with_budget(c: Core, ev: SignalReceived) -> bool:
    """first soft-kill signal, --checkpoint-on-evict and checkpoint paths"""
    return (S.is_soft_kill(c, ev.signum) and c.eviction is None and bool(S.eviction_budget(c))
            and c.s.checkpointing)


def soft_kill_budget_in_flight(c: Core, ev: SignalReceived) -> bool:
    """first soft-kill signal, a budget (evict or promise) for the checkpoint in flight"""
    return S.is_soft_kill(c, ev.signum) and c.eviction is None and bool(S.eviction_budget(c))


def soft_kill_program_gone(c: Core, ev: SignalReceived) -> bool:
    """soft-kill signal, the program has exited"""
    return S.is_soft_kill(c, ev.signum) and not c.child.alive


def soft_kill(c: Core, ev: SignalReceived) -> bool:
    """soft-kill signal (KillSig, RemoveKillSig)"""
    return S.is_soft_kill(c, ev.signum)


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


def _planned(c: Core) -> Exit:
    return c.plan.exit if c.plan is not None else Exit(exitstatus.EXIT_INTERNAL, reason="no exit planned")


def promise_unkept(c: Core, ev: TreeGone) -> bool:
    """the checkpoint status is owed, the plan is another status"""
    plan = _planned(c)
    # (--on-timeout fail is the user's explicit choice to stop: 75, which HTCondor holds)
    return (c.promise is not None and c.s.checkpointing and not c.promise.fallback
            and not S.is_checkpoint_status(c, plan) and plan.status != exitstatus.EXIT_CHECKPOINT_TIMEOUT)


def promise_unkept_program_finished(c: Core, ev: TreeGone) -> bool:
    """the checkpoint status is owed, the program had finished"""
    exited = c.child.exit
    return (promise_unkept(c, ev) and exited is not None and c.plan is not None and c.plan.program_end
            and c.ledger.final_status is None and S.finished(c, exited)
            and not (c.eviction is not None and exited.done is not True))


# ================================================================== actions


def ignore(c: Core, ev: Any, out: S.Out) -> None:
    """nothing"""


def start(c: Core, ev: Started, out: S.Out) -> None:
    """arm the timer, note the files"""
    c.child = Child(alive=True, started_at=ev.now, prior_job_signal_deaths=ev.job_signal_deaths)
    # what was there at the start (restored or left over) is not a new checkpoint
    c.sight = Sight(obs=ev.observation, start_fp=ev.observation.fingerprint)
    c.ledger = replace(c.ledger, committed_fp=ev.observation.fingerprint)
    c.request = Request(baseline=S.watch_baseline(c))
    if c.s.every is not None:
        c.timers = Timers(next_check=ev.now + c.s.every)
    out.append(Record("started", {"child_pid": ev.pid, "resumed": ev.resumed}, level="debug"))
    S.goto(c, Phase.RUNNING)


# ---------------------------------------------------------------- signals


def request_evict_checkpoint(c: Core, ev: SignalReceived, out: S.Out) -> None:
    """ask for an eviction checkpoint within the budget"""
    budget = S.eviction_budget(c)
    S.note_eviction(c, ev.signum, out)
    S.request(c, ev.now, Reason.EVICT, out, budget=budget)


def bound_request_by_budget(c: Core, ev: SignalReceived, out: S.Out) -> None:
    """the request becomes an eviction checkpoint, bounded by the budget"""
    budget = S.eviction_budget(c) or 0.0
    S.note_eviction(c, ev.signum, out)
    end = ev.now + budget
    deadline = end if c.request.deadline is None else min(c.request.deadline, end)
    c.request = replace(c.request, reason=Reason.EVICT, deadline=deadline)


def note_eviction(c: Core, ev: SignalReceived, out: S.Out) -> None:
    """note the eviction (the commit or kill in progress completes)"""
    S.note_eviction(c, ev.signum, out)


def pass_soft_kill(c: Core, ev: SignalReceived, out: S.Out) -> None:
    """pass it on, start the grace (a commit finishes first)"""
    S.note_eviction(c, ev.signum, out)
    S.soft_kill(c, ev.now, out)
    if c.phase != Phase.COMMITTING:  # the commit finishes (or rolls back) first; the grace keeps running
        S.goto(c, Phase.STOPPING)


def _promise(c: Core, ev: SignalReceived) -> None:
    if c.promise is None:
        c.promise = Promise(ev.signum, ev.now)


def request_by_signal(c: Core, ev: SignalReceived, out: S.Out) -> None:
    """promise the checkpoint status, send the job signal"""
    _promise(c, ev)
    S.request(c, ev.now, Reason.SIGNAL, out, trigger=ev.signum)


def coalesce(c: Core, ev: SignalReceived, out: S.Out) -> None:
    """promise the checkpoint status; coalesced with the one in flight"""
    _promise(c, ev)
    if c.request.reason != Reason.EVICT:
        c.request = replace(c.request, reason=Reason.SIGNAL)
    out.append(Record("trigger_coalesced", {"signal": ev.signum}, level="debug"))


def promise(c: Core, ev: SignalReceived, out: S.Out) -> None:
    """promise the checkpoint status"""
    _promise(c, ev)


def forward(c: Core, ev: SignalReceived, out: S.Out) -> None:
    """pass the signal on"""
    out.append(SendSignal(ev.signum))
    out.append(Record("signal_forwarded", {"signal": ev.signum}, level="debug"))


# ---------------------------------------------------------------- the program's end


def end_by_done_rule(c: Core, ev: ChildExited, out: S.Out) -> None:
    """finished: report its status (record it if promised)"""
    S.note_exit(c, ev, out)
    S.end_by_done_rule(c, ev, out)


def inspect_exit(c: Core, ev: ChildExited, out: S.Out) -> None:
    """look for a new complete checkpoint"""
    S.note_exit(c, ev, out)
    S.inspect_exit(c, ev, out)


def program_ended(c: Core, ev: ChildExited, out: S.Out) -> None:
    """report its status, or keep the store for a restart"""
    S.note_exit(c, ev, out)
    S.program_ended(c, ev, out)


def note_exit_while_busy(c: Core, ev: ChildExited, out: S.Out) -> None:
    """decided when the validator or commit finishes"""
    S.note_exit(c, ev, out)
    c.child = replace(c.child, exited_while_busy=True)


def kill_after_soft_kill(c: Core, ev: ChildExited, out: S.Out) -> None:
    """kill what is left, report its status"""
    S.note_exit(c, ev, out)
    S.kill_then(c, S.report_program(c, ev.code, ev.signum), out)


def note_exit(c: Core, ev: ChildExited, out: S.Out) -> None:
    """note it (the exit status is already planned)"""
    S.note_exit(c, ev, out)


# ---------------------------------------------------------------- observations and the clock


def look(c: Core, ev: Observed, out: S.Out) -> None:
    """note the files"""
    S.update_obs(c, ev.now, ev.observation)


def look_watched(c: Core, ev: Observed, out: S.Out) -> None:
    """changed since the last commit and rules hold: validate or commit"""
    S.update_obs(c, ev.now, ev.observation)
    S.look_watched(c, ev.now, out)


def look_for_checkpoint(c: Core, ev: Observed, out: S.Out) -> None:
    """changed since the request and rules hold: validate or commit"""
    S.update_obs(c, ev.now, ev.observation)
    S.maybe_complete(c, ev.now, out)


def exit_after_min_run(c: Core, ev: Tick, out: S.Out) -> None:
    """kill the tree, then report the checkpoint"""
    c.timers = replace(c.timers, pending_exit=None)
    c.request = replace(c.request, reason=Reason.WATCH)
    S.kill_then(c, S.checkpoint_status(c), out)


def request_by_timer(c: Core, ev: Tick, out: S.Out) -> None:
    """send the job signal"""
    c.timers = replace(c.timers, next_check=None)
    S.request(c, ev.now, Reason.TIMER, out)


def tick_watched(c: Core, ev: Tick, out: S.Out) -> None:
    """rules hold now (quiet period over): validate or commit"""
    S.look_watched(c, ev.now, out)


def wait_for_checkpoint(c: Core, ev: Tick, out: S.Out) -> None:
    """rules hold now: validate or commit"""
    S.maybe_complete(c, ev.now, out)


def complete_or_time_out(c: Core, ev: Tick, out: S.Out) -> None:
    """complete now, or time out (evict: soft kill; fail: exit 75; continue: run on)"""
    if not S.maybe_complete(c, ev.now, out):
        S.timed_out(c, ev.now, out)


def evict_time_out(c: Core, ev: Tick, out: S.Out) -> None:
    """pass the soft kill on"""
    S.timed_out(c, ev.now, out)


def _grace_expired(c: Core, out: S.Out) -> None:
    if c.eviction is not None:
        c.eviction = replace(c.eviction, grace_deadline=None)
    out.append(Record("grace_expired", {"grace": c.s.kill_grace}, level="warning"))


def kill_after_grace(c: Core, ev: Tick, out: S.Out) -> None:
    """kill the tree, status 137"""
    _grace_expired(c, out)
    S.kill_then(c, Exit(exitstatus.SIGNAL_BASE + 9, reason="killed after the grace"), out)


def kill_during_commit(c: Core, ev: Tick, out: S.Out) -> None:
    """kill the tree; the commit finishes"""
    _grace_expired(c, out)
    out.append(KillTree())


# ---------------------------------------------------------------- validator


def _validator_rejected(c: Core, ev: ValidatorFinished, out: S.Out) -> None:
    out.append(Record("validator_finished", {"ok": ev.ok}))
    c.sight = replace(c.sight, rejected_fp=c.sight.obs.fingerprint)


def commit_validated(c: Core, ev: ValidatorFinished, out: S.Out) -> None:
    """commit"""
    out.append(Record("validator_finished", {"ok": ev.ok}))
    S.start_commit(c, out)


def rejected_program_gone(c: Core, ev: ValidatorFinished, out: S.Out) -> None:
    """decide about the program's end"""
    _validator_rejected(c, ev, out)
    end = c.child.exit if c.child.exit is not None else ChildExited(ev.now, None, None, c.sight.obs)
    # (the done rule is not consulted here, as before the table: done unknown)
    S.program_ended(c, replace(end, now=ev.now, observation=c.sight.obs, done=None), out)


def rejected_watched(c: Core, ev: ValidatorFinished, out: S.Out) -> None:
    """wait for the next change"""
    _validator_rejected(c, ev, out)
    S.back_to_running(c, ev.now)


def rejected_requested(c: Core, ev: ValidatorFinished, out: S.Out) -> None:
    """wait for the next change (an eviction budget spent: soft kill)"""
    _validator_rejected(c, ev, out)
    S.goto(c, Phase.CHECKPOINTING)
    if c.request.reason == Reason.EVICT and request_expired(c, Tick(ev.now)):
        S.timed_out(c, ev.now, out)


# ---------------------------------------------------------------- commit


def _count_commit(c: Core, ev: CommitFinished, out: S.Out) -> None:
    ledger = c.ledger
    c.ledger = replace(ledger, ok=ledger.ok + (0 if ledger.kept_store else 1),
                       committed_fp=ev.fingerprint if ev.fingerprint is not None else c.sight.obs.fingerprint)
    if ledger.kept_store:
        out.append(Record("store_kept", {"seconds": ev.seconds},
                          message="no new checkpoint: the committed store is kept as it is (an empty "
                                  "one marks 'start from scratch' when there was none)"))
    else:
        out.append(Record("committed", {"bytes": ev.bytes, "seconds": ev.seconds,
                                        "final_status": ledger.final_status}))


def _fail_commit(c: Core, ev: CommitFinished, out: S.Out) -> None:
    c.ledger = replace(c.ledger, failed=c.ledger.failed + 1, last_error=ev.error)
    out.append(Record("commit_failed", {"error": ev.error}, level="error", message=ev.error))
    c.sight = replace(c.sight, rejected_fp=c.sight.obs.fingerprint)  # retried once the files change again


def _raced(c: Core, ev: CommitFinished, out: S.Out) -> None:
    # not a failure: the copy would have mixed two versions; wait for the next complete one
    out.append(Record("checkpoint_changed", {"reason": c.request.reason.value}, level="debug", message=ev.error))


def raced_decide_exit(c: Core, ev: CommitFinished, out: S.Out) -> None:
    """decide about the program's end"""
    _raced(c, ev, out)
    end = c.child.exit
    S.back_to_running(c, ev.now)
    if end is not None:
        S.decide_exit(c, end, out)


def raced_request_stands(c: Core, ev: CommitFinished, out: S.Out) -> None:
    """the request stands, with its baseline and deadline"""
    _raced(c, ev, out)
    S.goto(c, Phase.CHECKPOINTING)


def raced_run_on(c: Core, ev: CommitFinished, out: S.Out) -> None:
    """keep running"""
    _raced(c, ev, out)
    S.back_to_running(c, ev.now)


def failed_store_error(c: Core, ev: CommitFinished, out: S.Out) -> None:
    """kill the tree, status 74"""
    _fail_commit(c, ev, out)
    S.kill_then(c, Exit(exitstatus.EXIT_STORE, reason=ev.error), out)


def failed_carry_on_evicting(c: Core, ev: CommitFinished, out: S.Out) -> None:
    """carry on with the soft kill"""
    _fail_commit(c, ev, out)
    S.after_evict_commit(c, ev.now, out)


def failed_run_on(c: Core, ev: CommitFinished, out: S.Out) -> None:
    """keep running"""
    _fail_commit(c, ev, out)
    S.back_to_running(c, ev.now)


def committed_carry_on_evicting(c: Core, ev: CommitFinished, out: S.Out) -> None:
    """carry on with the soft kill"""
    _count_commit(c, ev, out)
    S.after_evict_commit(c, ev.now, out)


def committed_decide_exit(c: Core, ev: CommitFinished, out: S.Out) -> None:
    """decide about the program's end"""
    _count_commit(c, ev, out)
    end = c.child.exit
    S.back_to_running(c, ev.now)
    if end is not None:
        S.decide_exit(c, end, out)


def committed_kill(c: Core, ev: CommitFinished, out: S.Out) -> None:
    """kill the tree, then report the checkpoint"""
    _count_commit(c, ev, out)
    S.kill_then(c, S.checkpoint_status(c), out)


def committed_run_on(c: Core, ev: CommitFinished, out: S.Out) -> None:
    """keep running (--watch, --min-run)"""
    _count_commit(c, ev, out)
    S.back_to_running(c, ev.now)
    if c.s.watch and c.s.min_run and c.s.exit_after_checkpoint:
        c.timers = replace(c.timers, pending_exit=c.child.started_at + c.s.min_run)


# ---------------------------------------------------------------- the tree is gone


def keep_promise(c: Core, ev: TreeGone, out: S.Out) -> None:
    """keep the store unchanged, report the checkpoint status"""
    S.keep_promise_over_store(c, c.child.exit, out)


def record_final_status(c: Core, ev: TreeGone, out: S.Out) -> None:
    """record the final status, report the checkpoint status"""
    status = _planned(c).status
    out.append(Record("final_status_recorded", {"status": status},
                      message=f"program ended with status {status} around the checkpoint "
                              "signal; recording it and reporting the checkpoint status"))
    c.request = replace(c.request, reason=Reason.EXIT)
    S.start_commit(c, out, final_status=status)


def exit_as_planned(c: Core, ev: TreeGone, out: S.Out) -> None:
    """exit with the planned status"""
    plan = _planned(c)
    ledger = c.ledger
    if ledger.failed:
        out.append(Record("commit_summary", {"failed": ledger.failed, "committed": ledger.ok,
                                             "error": ledger.last_error}, level="warning",
                          message=f"{ledger.failed} commit(s) failed in this run ({ledger.ok} "
                                  f"succeeded); last error: {ledger.last_error}"))
    how = f"dying from signal {plan.by_signal}" if plan.by_signal is not None else f"exit status {plan.status}"
    out.append(Record("exit", {"status": plan.status, "signal": plan.by_signal, "reason": plan.reason},
                      level="debug" if plan.reason.startswith("program") else "info",
                      message=f"{how}: {plan.reason}"))
    out.append(plan)
    S.goto(c, Phase.EXITED)


# ================================================================== the table


def B(guard: Optional[Guard], action: Action, *to: Phase) -> Branch:
    return Branch(guard, action, tuple(to))



_PROGRAM_END = (  # RUNNING and CHECKPOINTING
    B(done_rule_holds, end_by_done_rule, P.COMMITTING, P.KILLING),
    B(exit_may_be_checkpoint, inspect_exit, P.VALIDATING, P.COMMITTING, P.KILLING),
    B(None, program_ended, P.COMMITTING, P.KILLING),
)

_TABLE: dict[tuple[Phase, type], tuple[Branch, ...]] = {
    (P.STARTING, Started): (B(None, start, P.RUNNING),),
    # ------------------------------------------------------------------------ RUNNING
    (P.RUNNING, SignalReceived): (
        B(soft_kill_with_budget, request_evict_checkpoint, P.CHECKPOINTING),
        B(soft_kill, pass_soft_kill, P.STOPPING),
        B(trigger, request_by_signal, P.CHECKPOINTING),
        B(None, forward),
    ),
    (P.RUNNING, ChildExited): _PROGRAM_END,
    (P.RUNNING, Observed): (
        B(watching, look_watched, P.RUNNING, P.VALIDATING, P.COMMITTING),
        B(None, look),
    ),
    (P.RUNNING, Tick): (
        B(min_run_reached, exit_after_min_run, P.KILLING),
        B(timer_due, request_by_timer, P.CHECKPOINTING),
        B(watching, tick_watched, P.RUNNING, P.VALIDATING, P.COMMITTING),
        B(None, ignore),
    ),
    (P.RUNNING, ValidatorFinished): (B(None, ignore),),
    (P.RUNNING, CommitFinished): (B(None, ignore),),
    # ------------------------------------------------------------------------ CHECKPOINTING
    (P.CHECKPOINTING, SignalReceived): (
        B(soft_kill_budget_in_flight, bound_request_by_budget),
        B(soft_kill, pass_soft_kill, P.STOPPING),
        B(trigger, coalesce),
        B(None, forward),
    ),
    (P.CHECKPOINTING, ChildExited): _PROGRAM_END,
    (P.CHECKPOINTING, Observed): (B(None, look_for_checkpoint, P.CHECKPOINTING, P.VALIDATING, P.COMMITTING),),
    (P.CHECKPOINTING, Tick): (
        B(request_expired, complete_or_time_out, P.VALIDATING, P.COMMITTING, P.RUNNING, P.STOPPING,
          P.KILLING),
        B(None, wait_for_checkpoint, P.CHECKPOINTING, P.VALIDATING, P.COMMITTING),
    ),
    (P.CHECKPOINTING, ValidatorFinished): (B(None, ignore),),
    (P.CHECKPOINTING, CommitFinished): (B(None, ignore),),
    # ------------------------------------------------------------------------ VALIDATING
    (P.VALIDATING, SignalReceived): (
        B(soft_kill_program_gone, note_eviction),
        B(soft_kill_budget_in_flight, bound_request_by_budget),
        B(soft_kill, pass_soft_kill, P.STOPPING),
        B(trigger, coalesce),
        B(program_alive, forward),
        B(None, ignore),
    ),
    (P.VALIDATING, ChildExited): (B(None, note_exit_while_busy),),
    (P.VALIDATING, Observed): (B(None, look),),
    (P.VALIDATING, Tick): (
        B(evict_budget_spent, evict_time_out, P.STOPPING),
        B(None, ignore),
    ),
    (P.VALIDATING, ValidatorFinished): (
        B(validator_ok, commit_validated, P.COMMITTING),
        B(program_gone, rejected_program_gone, P.COMMITTING, P.KILLING),
        B(watched_request, rejected_watched, P.RUNNING),
        B(None, rejected_requested, P.CHECKPOINTING, P.STOPPING),
    ),
    (P.VALIDATING, CommitFinished): (B(None, ignore),),
    (P.VALIDATING, TreeGone): (B(None, ignore),),
    # ------------------------------------------------------------------------ COMMITTING
    (P.COMMITTING, SignalReceived): (
        B(soft_kill_program_gone, note_eviction),
        B(soft_kill, pass_soft_kill),
        B(trigger, coalesce),
        B(program_alive, forward),
        B(None, ignore),
    ),
    (P.COMMITTING, ChildExited): (B(None, note_exit_while_busy),),
    (P.COMMITTING, Observed): (B(None, look),),
    (P.COMMITTING, Tick): (
        B(grace_over, kill_during_commit),
        B(None, ignore),
    ),
    (P.COMMITTING, ValidatorFinished): (B(None, ignore),),
    (P.COMMITTING, CommitFinished): (
        B(copy_raced_program_gone, raced_decide_exit, P.VALIDATING, P.COMMITTING, P.KILLING),
        B(copy_raced_request_stands, raced_request_stands, P.CHECKPOINTING),
        B(copy_raced, raced_run_on, P.RUNNING),
        B(commit_failed_program_gone, failed_store_error, P.KILLING),
        B(commit_failed_evicting, failed_carry_on_evicting, P.STOPPING),  # the program lives
        B(commit_failed, failed_run_on, P.RUNNING),
        B(committed_evicting, committed_carry_on_evicting, P.STOPPING, P.KILLING),
        B(committed_program_ended, committed_decide_exit, P.VALIDATING, P.COMMITTING, P.KILLING),
        B(committed_exit, committed_kill, P.KILLING),
        B(None, committed_run_on, P.RUNNING),
    ),
    (P.COMMITTING, TreeGone): (B(None, ignore),),
    # ------------------------------------------------------------------------ STOPPING
    (P.STOPPING, SignalReceived): (
        B(soft_kill, pass_soft_kill),
        B(trigger, promise),
        B(None, forward),
    ),
    (P.STOPPING, ChildExited): (B(None, kill_after_soft_kill, P.KILLING),),
    (P.STOPPING, Observed): (B(None, look),),
    (P.STOPPING, Tick): (
        B(grace_over, kill_after_grace, P.KILLING),
        B(None, ignore),
    ),
    (P.STOPPING, ValidatorFinished): (B(None, ignore),),
    (P.STOPPING, CommitFinished): (B(None, ignore),),
    # ------------------------------------------------------------------------ KILLING
    (P.KILLING, SignalReceived): (
        B(soft_kill, note_eviction),
        B(trigger, promise),
        B(None, ignore),
    ),
    (P.KILLING, ChildExited): (B(None, note_exit),),
    (P.KILLING, Observed): (B(None, look),),
    (P.KILLING, Tick): (B(None, ignore),),
    (P.KILLING, ValidatorFinished): (B(None, ignore),),
    (P.KILLING, CommitFinished): (B(None, ignore),),
    (P.KILLING, TreeGone): (
        B(promise_unkept_program_finished, record_final_status, P.COMMITTING),
        B(promise_unkept, keep_promise, P.COMMITTING),
        B(None, exit_as_planned, P.EXITED),
    ),
    # ------------------------------------------------------------------------ EXITED
    **{(P.EXITED, t): (B(None, ignore),) for t in (SignalReceived, ChildExited, Observed, Tick,
                                                    ValidatorFinished, CommitFinished, TreeGone)},
}


def _complete(table: dict[tuple[Phase, type], tuple[Branch, ...]]) -> dict[tuple[Phase, type], tuple[Branch, ...]]:
    """A branch that names no phase stays in its entry's phase."""
    return {(phase, event): tuple(b if b.to else Branch(b.guard, b.action, (phase,)) for b in branches)
            for (phase, event), branches in table.items()}


TABLE = _complete(_TABLE)
