"""The actions of the transition table: each takes an event in one phase to its end phase.

Actions change the state through the steps of ``steps.py`` and never call each other (nor look
the table up). An action's docstring is its label in the state diagram: keep it a short phrase.
"""

from __future__ import annotations

from .. import exitstatus
from ..records import replace
from . import steps as S
from .events import (
    ChildExited,
    ChildGone,
    CommitFinished,
    Exit,
    KillTree,
    Observed,
    Record,
    Redeliver,
    SendSignal,
    SignalReceived,
    Started,
    StopSettling,
    Tick,
    TreeGone,
    ValidatorFinished,
)
from .guards import planned, request_expired
from .state import Child, Phase, Promise, Reason, Request, Settling, Sight, Timers

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)

if TYPE_CHECKING:
    from typing import Any

    from .machine import Core


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


# The two commands of a signal passed on, made once per signal number: they are frozen values
# (nothing changes a Record's fields once made), and building them for every signal was two of
# the ~15 Python calls between epoll's return and killpg (docs/performance.md, 2a).
_FORWARD: dict[int, tuple[SendSignal, Record]] = {}


def forward(c: Core, ev: SignalReceived, out: S.Out) -> None:
    """pass the signal on"""
    cmds = _FORWARD.get(ev.signum)
    if cmds is None:
        cmds = _FORWARD[ev.signum] = (SendSignal(ev.signum), Record("signal_forwarded", {"signal": ev.signum},
                                                                      level="debug"))
    out.extend(cmds)


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


# ---------------------------------------------------------------- the program gone, its end settled


def settle(c: Core, ev: ChildGone, out: S.Out) -> None:
    """hold every event until its end is settled"""
    grace = c.eviction.grace_deadline if c.eviction is not None else None  # a grace running bounds it
    c.settling = Settling(c.phase, ev.code, ev.signum, ev.now, deadline=grace)
    how = f"signal {ev.signum}" if ev.signum is not None else f"status {ev.code}"
    out.append(Record("settling", {"code": ev.code, "signal": ev.signum, "during": c.phase.value},
                      message=f"the program ended ({how}); what its end means is being found out "
                              "(DMTCP's images, the done rule's command): signals are held until then"))
    S.goto(c, Phase.SETTLING)


def _hold(c: Core, ev: Any) -> None:
    assert c.settling is not None  # SETTLING
    c.settling = replace(c.settling, held=(*c.settling.held, ev))


def hold_soft_kill(c: Core, ev: SignalReceived, out: S.Out) -> None:
    """hold it; the settling gets at most the kill grace"""
    _hold(c, ev)
    s = c.settling
    if s is not None and s.deadline is None and not s.cut:
        c.settling = replace(s, deadline=ev.now + c.s.kill_grace)
    out.append(Record("signal_held", {"signal": ev.signum, "soft_kill": True},
                      message=f"soft-kill signal {ev.signum} received while the program's end is settled: "
                              f"handled once it is (at most {c.s.kill_grace:g} s from now)"))


def hold_signal(c: Core, ev: SignalReceived, out: S.Out) -> None:
    """hold it until the end is settled"""
    _hold(c, ev)
    out.append(Record("signal_held", {"signal": ev.signum}, level="debug"))


def hold(c: Core, ev: Any, out: S.Out) -> None:
    """hold it until the end is settled"""
    _hold(c, ev)


def stop_settling(c: Core, ev: Tick, out: S.Out) -> None:
    """stop the done rule's command: not finished"""
    assert c.settling is not None  # SETTLING
    c.settling = replace(c.settling, deadline=None, cut=True)
    out.append(StopSettling())
    out.append(Record("settling_stopped", {"grace": c.s.kill_grace}, level="warning",
                      message=f"the kill grace ({c.s.kill_grace:g} s) ran out while the program's end was "
                              "settled: the done rule's command is killed and the program counts as not "
                              "finished"))


def settled(c: Core, ev: ChildExited, out: S.Out) -> None:
    """back where it was: its end, then what was held"""
    s = c.settling
    assert s is not None  # SETTLING
    c.settling = None
    S.goto(c, s.back)
    out.append(Redeliver(ev))
    # as if they had come just after the end (as they did when the loop waited for these facts);
    # signals first: every one came before the supervisor's own exit, which a held TreeGone
    # would bring about at once (a checkpoint signal after it would be lost, rule 8 broken)
    held = sorted(s.held, key=lambda h: not isinstance(h, SignalReceived))
    out.extend(Redeliver(replace(h, now=max(h.now, ev.now))) for h in held)


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
    S.decide_exit_after_commit(c, ev.now, out)


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


def _carry_on(c: Core, ev: CommitFinished, out: S.Out, *, committed: bool, evicting: bool) -> None:
    """After a commit that succeeded or failed: carry on with the soft kill, or keep running."""
    (_count_commit if committed else _fail_commit)(c, ev, out)
    if evicting:
        S.after_evict_commit(c, ev.now, out)
    else:
        S.back_to_running(c, ev.now)


def failed_carry_on_evicting(c: Core, ev: CommitFinished, out: S.Out) -> None:
    """carry on with the soft kill"""
    _carry_on(c, ev, out, committed=False, evicting=True)


def failed_run_on(c: Core, ev: CommitFinished, out: S.Out) -> None:
    """keep running"""
    _carry_on(c, ev, out, committed=False, evicting=False)


def committed_carry_on_evicting(c: Core, ev: CommitFinished, out: S.Out) -> None:
    """carry on with the soft kill"""
    _carry_on(c, ev, out, committed=True, evicting=True)


def committed_decide_exit(c: Core, ev: CommitFinished, out: S.Out) -> None:
    """decide about the program's end"""
    _count_commit(c, ev, out)
    S.decide_exit_after_commit(c, ev.now, out)


def committed_kill(c: Core, ev: CommitFinished, out: S.Out) -> None:
    """kill the tree, then report the checkpoint"""
    _count_commit(c, ev, out)
    S.kill_then(c, S.checkpoint_status(c), out)


def committed_run_on(c: Core, ev: CommitFinished, out: S.Out) -> None:
    """keep running (--watch, --min-run)"""
    _carry_on(c, ev, out, committed=True, evicting=False)
    if c.s.watch and c.s.min_run and c.s.exit_after_checkpoint:
        c.timers = replace(c.timers, pending_exit=c.child.started_at + c.s.min_run)


# ---------------------------------------------------------------- the tree is gone


def keep_promise(c: Core, ev: TreeGone, out: S.Out) -> None:
    """keep the store unchanged, report the checkpoint status"""
    S.keep_promise_over_store(c, c.child.exit, out)


def record_final_status(c: Core, ev: TreeGone, out: S.Out) -> None:
    """record the final status, report the checkpoint status"""
    status = planned(c).status
    out.append(Record("final_status_recorded", {"status": status},
                      message=f"program ended with status {status} around the checkpoint "
                              "signal; recording it and reporting the checkpoint status"))
    c.request = replace(c.request, reason=Reason.EXIT)
    S.start_commit(c, out, final_status=status)


def exit_as_planned(c: Core, ev: TreeGone, out: S.Out) -> None:
    """exit with the planned status"""
    plan = planned(c)
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
