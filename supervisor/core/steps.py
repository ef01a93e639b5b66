"""Steps the actions of the transition table share.

Each is a small function of the :class:`Core <supervisor.core.machine.Core>` that appends
commands to ``out`` and replaces sub-states; none looks up the table or handles an event, so no
action ever runs another (``supervisor/core/table.py`` decides which action an event gets). A
step may move the phase (``goto``); the table entry that called it names every phase it may end in.
"""

from __future__ import annotations

from .. import exitstatus
from ..records import replace
from ..rules import Exit as ExitRule
from ..rules import View
from .events import ChildExited, Command_, Commit, Exit, KillTree, Observation, Record, RunValidator, SendSignal
from .state import Baseline, Eviction, Phase, Plan, Reason, Request, program_status

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)

if TYPE_CHECKING:
    from typing import Any, Optional

    from .machine import Core

Out = list[Command_]


def goto(c: Core, phase: Phase) -> None:
    c.phase = phase  # Core.handle checks the end phase against the table entry


# ---------------------------------------------------------------- what the core sees


def update_obs(c: Core, now: float, obs: Observation) -> None:
    changed = obs.fingerprint != c.sight.obs.fingerprint
    c.sight = replace(c.sight, obs=obs, last_change_at=now if changed else c.sight.last_change_at)


def baseline_now(c: Core) -> Baseline:
    """A request's baseline: what is there now."""
    o = c.sight.obs
    return Baseline(o.fingerprint, o.markers, o.log_counts)


def watch_baseline(c: Core) -> Baseline:
    """In watch mode a checkpoint is "new" once it differs from the last commit."""
    o = c.sight.obs
    return Baseline(c.ledger.committed_fp, o.markers, o.log_counts)


def view(c: Core, now: float, *, exited: bool = False) -> View:
    obs, base = c.sight.obs, c.request.baseline
    markers_now = dict(obs.markers)
    base_markers = dict(base.markers)
    base_logs = dict(base.logs)
    return View(
        now=now,
        changed=obs.fingerprint != base.fingerprint,
        last_change_at=c.sight.last_change_at,
        # a marker counts once it changed and is not older than the checkpoint files it marks
        # (a program that starts rewriting its checkpoint right after a marker is not complete)
        markers_changed=frozenset(
            p for p, m in markers_now.items()
            if m is not None and m != base_markers.get(p)
            and (obs.newest_ns is None or m >= obs.newest_ns)
        ),
        markers_present=frozenset(p for p, m in markers_now.items() if m is not None),
        log_matches=tuple((p, n - base_logs.get(p, 0)) for p, n in obs.log_counts),
        log_matches_ever=tuple(dict(obs.log_counts).items()),
        open_for_write=obs.open_for_write,
        program_exited=exited or not c.child.alive,
    )


def has_command(c: Core) -> bool:
    return bool(c.s.complete is not None and c.s.complete.commands())


def has_exit_rule(c: Core) -> bool:
    rule = c.s.complete
    return rule is not None and (isinstance(rule, ExitRule) or "exit" in rule.names())


# ---------------------------------------------------------------- exit statuses


def checkpoint_status(c: Core) -> Exit:
    reason = "checkpoint committed"
    if c.ledger.kept_store:
        reason = "no new checkpoint: the committed store is kept unchanged for the restart"
    if c.s.exit_signal is not None:
        return Exit(exitstatus.SIGNAL_BASE + c.s.exit_signal, by_signal=c.s.exit_signal, reason=reason)
    return Exit(c.s.exit_code, reason=reason)


def is_checkpoint_status(c: Core, plan: Exit) -> bool:
    want = checkpoint_status(c)
    return (plan.status, plan.by_signal) == (want.status, want.by_signal)


def report_program(c: Core, code: Optional[int], signum: Optional[int]) -> Exit:
    status = program_status(code, signum)
    if signum is None and code == c.s.exit_code and c.s.exit_signal is None:
        return Exit(exitstatus.EXIT_PROGRAM_USED_CHECKPOINT_CODE,
                    reason=f"the program itself exited with the reserved checkpoint code {code}; "
                           "HTCondor would restart it forever, so this is reported as a failure "
                           "(use --inspect-on-exit or another --exit-code)")
    return Exit(status, reason="program exited" if signum is None else "program killed by a signal")


def kill_then(c: Core, plan: Exit, out: Out, *, program_end: bool = False) -> None:
    c.plan = Plan(plan, program_end)
    out.append(KillTree())
    out.append(Record("kill_tree", {"signal": 9}, level="debug"))
    goto(c, Phase.KILLING)


# ---------------------------------------------------------------- signals


def soft_kill(c: Core, now: float, out: Out) -> None:
    """Pass the soft-kill signal on (the one HTCondor sent); the grace starts with the first."""
    ev = c.eviction if c.eviction is not None else Eviction(c.s.kill_signal)
    sig = ev.signal
    out.append(SendSignal(sig))
    out.append(Record("kill_sent", {"signal": sig, "grace": c.s.kill_grace}))
    if not ev.soft_kill_sent:
        ev = replace(ev, soft_kill_sent=True, grace_deadline=now + c.s.kill_grace)
    c.eviction = ev


def eviction_budget(c: Core) -> Optional[float]:
    """The time a checkpoint gets after the soft-kill signal (None or 0: none)."""
    busy = c.child.alive and c.phase not in (Phase.KILLING, Phase.EXITED)
    budget = c.s.checkpoint_on_evict if busy else None
    in_flight = c.phase in (Phase.CHECKPOINTING, Phase.VALIDATING)
    if busy and in_flight and not budget and c.promise is not None:
        budget = c.s.promise_budget  # the promised checkpoint may still complete in time
    return budget


def note_eviction(c: Core, sig: int, out: Out) -> None:
    """The soft-kill signal arrived: remember the first, and say what happens next."""
    if c.eviction is not None:
        return
    c.eviction = Eviction(sig)
    budget = eviction_budget(c)
    in_flight = c.phase in (Phase.CHECKPOINTING, Phase.VALIDATING)
    fields: dict[str, Any] = {"signal": sig, "budget": budget, "during": c.phase.value,
                              "promise": c.promise is not None}
    owed = " (the checkpoint status is owed to HTCondor)" if c.promise is not None else ""
    then = (f"a checkpoint gets {budget:g} s, then the soft kill is passed on" if budget
            and (in_flight or (c.phase == Phase.RUNNING and c.s.checkpointing))
            else "passing it on")
    out.append(Record("evicting", fields, message=f"soft-kill signal {sig} received while "
                      f"{c.phase.value}{owed}: evicting; {then}"))


# ---------------------------------------------------------------- checkpoint request


def request(c: Core, now: float, reason: Reason, out: Out, *,
            budget: Optional[float] = None, trigger: Optional[int] = None) -> None:
    deadline = c.s.checkpoint_timeout
    if budget is not None:
        deadline = budget if deadline is None else min(deadline, budget)
    c.request = Request(reason, now, None if deadline is None else now + deadline, baseline_now(c))
    sig = c.s.job_signal if c.s.job_signal is not None else trigger
    if sig is None:
        sig = next(iter(sorted(c.s.trigger_signals)), None)
    if sig is None:
        sig = c.s.kill_signal if reason == Reason.EVICT else None
    if sig is not None and c.child.alive:
        out.append(SendSignal(sig))
        c.child = replace(c.child, sent_job_signals=c.child.sent_job_signals | {sig})
    out.append(Record("checkpoint_requested", {"reason": reason.value, "signal": sig}))
    goto(c, Phase.CHECKPOINTING)


def maybe_complete(c: Core, now: float, out: Out, *, exited: bool = False) -> bool:
    """If the in-flight (or watched) checkpoint is complete, start validating or committing."""
    v = view(c, now, exited=exited)
    c.sight = replace(c.sight, evaluated_at=now)
    obs = c.sight.obs
    if not obs.present or not v.changed or obs.fingerprint == c.sight.rejected_fp:
        return False
    if c.s.complete is not None and not c.s.complete.holds(v):
        return False
    rule = str(c.s.complete) if c.s.complete is not None else "changed"
    latency = None if c.request.at is None else now - c.request.at
    after = "" if latency is None else f" {latency:.3f} s after the request"
    end = c.child.exit
    if exited and end is not None and end.code in c.s.inspect_on_exit and c.request.reason == Reason.EXIT:
        how = (f"the program exited {end.code} (--inspect-on-exit) and its checkpoint changed "
               f"since this start; completion rule {rule!r} holds")
    else:
        how = f"the checkpoint changed and completion rule {rule!r} holds{after}"
    out.append(Record("checkpoint_complete", {"rule": rule, "latency": latency},
                      message=f"checkpoint complete: {how}"))
    if has_command(c):
        out.append(RunValidator())
        goto(c, Phase.VALIDATING)
    else:
        start_commit(c, out)
    return True


def look_watched(c: Core, now: float, out: Out) -> None:
    """Watch mode: a new complete checkpoint is committed without a request."""
    if maybe_complete(c, now, out):
        c.request = replace(c.request, reason=Reason.WATCH)


def start_commit(c: Core, out: Out, final_status: Optional[int] = None) -> None:
    c.ledger = replace(c.ledger, kept_store=False, final_status=final_status)
    out.append(Commit(final_status=final_status, program_exited=not c.child.alive))
    goto(c, Phase.COMMITTING)


def exit_after_commit(c: Core, now: float) -> bool:
    if c.request.reason in (Reason.SIGNAL, Reason.EVICT, Reason.EXIT) or not c.child.alive:
        return True
    if not c.s.exit_after_checkpoint:
        return False
    return now - c.child.started_at >= c.s.min_run


def back_to_running(c: Core, now: float) -> None:
    c.request = Request(baseline=watch_baseline(c))
    if c.s.every is not None:
        c.timers = replace(c.timers, next_check=now + c.s.every)
    goto(c, Phase.RUNNING)


def timed_out(c: Core, now: float, out: Out) -> None:
    reason = c.request.reason
    out.append(Record("checkpoint_timed_out", {"reason": reason.value, "waited": now - (c.request.at or now)},
                      level="warning"))
    if reason == Reason.EVICT:
        soft_kill(c, now, out)
        goto(c, Phase.STOPPING)
        return
    if c.s.on_timeout == "fail":
        kill_then(c, Exit(exitstatus.EXIT_CHECKPOINT_TIMEOUT,
                          reason="the checkpoint did not complete in time (--on-timeout fail)"), out)
        return
    back_to_running(c, now)


def after_evict_commit(c: Core, now: float, out: Out) -> None:
    """A soft-kill signal arrived during the commit: carry on with the soft kill."""
    if not c.child.alive:
        kill_then(c, report_program(c, *c.child.result), out)
        return
    if c.eviction is None or not c.eviction.soft_kill_sent:  # an eviction checkpoint asked with the job signal only
        soft_kill(c, now, out)
    goto(c, Phase.STOPPING)


# ---------------------------------------------------------------- program end


def note_exit(c: Core, ev: ChildExited, out: Out) -> None:
    c.child = replace(c.child, alive=False, exit=ev)
    update_obs(c, ev.now, ev.observation)
    out.append(Record("exited", {"code": ev.code, "signal": ev.signum}, level="debug"))


def inspected(c: Core, ev: ChildExited) -> bool:
    """--inspect-on-exit names this exit code."""
    return ev.signum is None and ev.code in c.s.inspect_on_exit and c.s.checkpointing


def may_be_checkpoint(c: Core, ev: ChildExited) -> bool:
    """the exit rule or --inspect-on-exit applies"""
    exit_counts = has_exit_rule(c) and (
        c.phase == Phase.CHECKPOINTING or (c.phase == Phase.RUNNING and c.s.watch))
    return exit_counts or inspected(c, ev)


def end_by_done_rule(c: Core, ev: ChildExited, out: Out) -> None:
    out.append(Record("done", {"code": ev.code, "signal": ev.signum}))
    program_ended(c, ev, out)


def inspect_exit(c: Core, ev: ChildExited, out: Out) -> None:
    """The program's end may leave a checkpoint (exit rule, --inspect-on-exit): look at it."""
    if inspected(c, ev) and not ev.observation.present:
        missing = ", ".join(ev.observation.missing) or "a checkpoint path"
        out.append(Record("checkpoint_missing", {"code": ev.code, "missing": list(ev.observation.missing)},
                          level="warning",
                          message=f"the program exited {ev.code} (--inspect-on-exit), but {missing} does not "
                                  "exist: no checkpoint to inspect (is --checkpoint spelled as the program "
                                  f"writes it?); passing {ev.code} through"))
    if c.phase == Phase.RUNNING:
        # the seed's first work-around: a new complete checkpoint since this start?
        c.request = replace(c.request, reason=Reason.EXIT, at=ev.now)
        if c.ledger.ok and c.sight.obs.fingerprint == c.ledger.committed_fp:
            out.append(Record("checkpoint_complete", {"rule": "already committed", "latency": 0.0}))
            kill_then(c, checkpoint_status(c), out)
            return
        c.request = replace(c.request, baseline=replace(c.request.baseline, fingerprint=c.sight.start_fp))
    if maybe_complete(c, ev.now, out, exited=True):
        return
    program_ended(c, ev, out)


def decide_exit(c: Core, ev: ChildExited, out: Out) -> None:
    """The program ended while running or checkpointing (or, seen again, after a commit)."""
    note_exit(c, ev, out)
    if ev.done:
        end_by_done_rule(c, ev, out)
    elif may_be_checkpoint(c, ev):
        inspect_exit(c, ev, out)
    else:
        program_ended(c, ev, out)


def decide_exit_after_commit(c: Core, now: float, out: Out) -> None:
    """The program ended during a commit: once it is over, decide about that end as if it came
    while running."""
    end = c.child.exit
    back_to_running(c, now)
    if end is not None:
        decide_exit(c, end, out)


def program_ended(c: Core, ev: ChildExited, out: Out) -> None:
    """The program exited while no checkpoint completion is pending (or it failed)."""
    code, signum = ev.code, ev.signum
    evicting = c.eviction is not None
    if c.s.checkpointing and c.promise is not None:
        # HTCondor sent its checkpoint signal: the job must exit with the checkpoint status.
        # During an eviction only the done rule can say the program had finished.
        if not finished(c, ev) or (evicting and ev.done is not True):
            keep_promise_over_store(c, ev, out)
            return
        status = report_program(c, code, signum).status
        out.append(Record("final_status_recorded", {"status": status},
                          message=f"program finished with status {status} after the checkpoint "
                                  "signal; recording it and reporting the checkpoint status"))
        c.request = replace(c.request, reason=Reason.EXIT)
        start_commit(c, out, final_status=status)
        return
    if c.s.checkpointing and signum is not None and killed_by_our_job_signal(c, ev) and not evicting:
        if ev.done:
            # the program had finished its work when our signal landed (during its shutdown)
            out.append(Record("finished_before_job_signal", {"signal": signum},
                              message=f"the program was killed by signal {signum}, the job signal we sent, "
                                      "after its done rule held: reporting it as finished (0)"))
            kill_then(c, Exit(0, reason="program finished (done rule)"), out, program_end=True)
            return
        if not c.ledger.ok and c.child.prior_job_signal_deaths:
            # the run before ended the same way, and nothing was committed since: a restart
            # would repeat it forever (a wrapper that never passes the signal on)
            out.append(Record("killed_by_job_signal", {"signal": signum, "again": True}, level="error",
                              message=job_signal_death_text(signum) + "; the run before ended the same "
                                      "way with no checkpoint since, so the job ends here instead of "
                                      "restarting forever"))
            kill_then(c, report_program(c, code, signum), out, program_end=True)
            return
        restart_from_last_commit(c, ev, out)
        return
    kill_then(c, report_program(c, code, signum), out, program_end=True)


def job_signal_death_text(signum: int) -> str:
    return (f"the program was killed by signal {signum}, the job signal we sent to ask for a checkpoint: "
            "the process that got it has no handler (a shell wrapper?); fix: `exec` the program in the "
            "wrapper, `trap` the signal, or --signal-to child")


def killed_by_our_job_signal(c: Core, ev: ChildExited) -> bool:
    return ev.signum is not None and ev.signum in c.child.sent_job_signals


def finished(c: Core, ev: ChildExited) -> bool:
    """Did the program end its work (rather than die from our request)? The done rule decides
    when there is one; a death by the job signal we sent is never 'finished'."""
    if killed_by_our_job_signal(c, ev):
        return False
    return ev.done is not False


def keep_promise_over_store(c: Core, ev: Optional[ChildExited], out: Out) -> None:
    """The last resort of a promise: the checkpoint status over the unchanged store."""
    if c.promise is not None:
        c.promise = replace(c.promise, fallback=True)
    restart_from_last_commit(c, ev if ev is not None else ChildExited(c.now, None, None, c.sight.obs), out)


def restart_from_last_commit(c: Core, ev: ChildExited, out: Out) -> None:
    """The program ended without a checkpoint and without finishing (after the checkpoint
    signal, or killed by the job signal we sent): report the checkpoint status over the last
    committed store (unchanged), so that HTCondor restarts the job from there instead of
    holding it (rule 8) or ending it."""
    ended = ev.code is not None or ev.signum is not None
    status_text = f"ended with status {program_status(ev.code, ev.signum)}" if ended else "ended"
    evicting = c.eviction is not None
    deaths = 0
    if ev.signum is not None and killed_by_our_job_signal(c, ev) and not evicting:
        deaths = 1 if c.ledger.ok else c.child.prior_job_signal_deaths + 1
        out.append(Record("killed_by_job_signal", {"signal": ev.signum}, level="warning",
                          message=job_signal_death_text(ev.signum)
                          + "; restarting from the last committed checkpoint"))
    else:
        why = "during the eviction" if evicting else "after the checkpoint signal"
        out.append(Record("interrupted", {"status": program_status(ev.code, ev.signum) if ended else None},
                          level="warning",
                          message=f"the program {status_text} {why} without a new checkpoint and without "
                                  "finishing; reporting the checkpoint status over the last committed "
                                  "checkpoint (unchanged), so that HTCondor restarts the job from it"))
    c.request = replace(c.request, reason=Reason.EXIT)
    c.ledger = replace(c.ledger, kept_store=True, final_status=None)
    out.append(Commit(program_exited=True, restart=True, job_signal_deaths=deaths))
    goto(c, Phase.COMMITTING)
