"""The decision core in memory: events in, commands out, a fake clock (plain floats), no I/O.

Each test states the rule it checks in its docstring. Signal numbers are Linux's.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest
from support.core_api import *  # noqa: F403  (the core's names, one list)

from supervisor import exitstatus
from supervisor.errors import ProtocolError

SIGHUP, SIGINT, SIGKILL, SIGUSR1, SIGUSR2, SIGTERM, SIGCONT = 1, 2, 9, 10, 12, 15, 18
CKPT = exitstatus.DEFAULT_CHECKPOINT_EXIT_CODE


# --- helpers -------------------------------------------------------------------------------------
def obs(fp: Any = "f0", *, markers: tuple[tuple[str, Optional[int]], ...] = (),
        logs: tuple[tuple[str, int], ...] = (),
        open_for_write: Optional[bool] = None) -> Observation:
    return Observation(fingerprint=fp, markers=markers, log_counts=logs,
                       open_for_write=open_for_write)


def settings(**kw: Any) -> CoreSettings:
    """Checkpointing on SIGUSR2 with quiet=2 unless told otherwise."""
    kw.setdefault("checkpointing", True)
    kw.setdefault("trigger_signals", frozenset({SIGUSR2}))
    kw.setdefault("complete", Quiet(2))
    return CoreSettings(**kw)


def start(s: CoreSettings, *, now: float = 0.0, fp: Any = "f0", resumed: bool = False,
          o: Optional[Observation] = None) -> Core:
    core = Core(s)
    core.handle(Started(now, 4242, o if o is not None else obs(fp), resumed=resumed))
    assert core.phase == Phase.RUNNING
    return core


def only(cmds: list[Any], kind: type) -> list[Any]:
    return [c for c in cmds if isinstance(c, kind)]


def kinds(cmds: list[Any]) -> list[str]:
    return [c.kind for c in cmds if isinstance(c, Record)]


def actions(cmds: list[Any]) -> list[Any]:
    """The commands without the event-log records."""
    return [c for c in cmds if not isinstance(c, Record)]


def finish(core: Core, now: float) -> Exit:
    """After a KillTree: the tree is gone; return the one Exit."""
    assert core.phase == Phase.KILLING
    out = core.handle(TreeGone(now))
    exits = only(out, Exit)
    assert len(exits) == 1 and out[-1] == exits[0]
    assert core.phase == Phase.EXITED
    return exits[0]


def checkpoint_via_timer(core: Core, *, t: float = 10.0, fp: Any = "f1") -> list[Any]:
    """Our own timer (``every=t`` from a start at 0) at t, files change at t+1, quiet=2 at t+3.

    No checkpoint signal from HTCondor: nothing is promised, so an eviction ends with the
    program's own status."""
    assert core.handle(Tick(t))
    core.handle(Observed(t + 1, obs(fp)))
    return core.handle(Tick(t + 3))


def checkpoint_via_signal(core: Core, *, t: float = 10.0, fp: Any = "f1") -> list[Any]:
    """SIGUSR2 at t, files change at t+1, quiet=2 passes at t+3: the Tick's commands."""
    core.handle(SignalReceived(t, SIGUSR2))
    core.handle(Observed(t + 1, obs(fp)))
    return core.handle(Tick(t + 3))


# --- start ---------------------------------------------------------------------------------------
def test_started_goes_running_and_records():
    """Started moves STARTING -> RUNNING and records the pid; nothing else is commanded."""
    core = Core(CoreSettings())
    assert core.phase == Phase.STARTING
    out = core.handle(Started(1.0, 99, Observation()))
    assert actions(out) == []
    assert kinds(out) == ["started"]
    assert core.phase == Phase.RUNNING
    assert core.deadline() is None


def test_transition_table_is_well_formed():
    """Every transition in the table is between two distinct phases and has a description."""
    assert all(a != b and text for a, b, text in TRANSITIONS)
    assert {a for a, _, _ in TRANSITIONS} | {b for _, b, _ in TRANSITIONS} == set(Phase)


def test_an_event_the_table_does_not_allow_is_a_protocol_error():
    """An event with no entry for the current phase raises ProtocolError (our bug: exit status
    70), whether or not Python runs with -O: before Started only Started is legal, and Started
    only once; a TreeGone while the program runs was never asked for."""
    core = Core(settings())
    with pytest.raises(ProtocolError, match="Tick is not expected while starting"):
        core.handle(Tick(1.0))
    core = start(settings())
    with pytest.raises(ProtocolError, match="Started is not expected while running") as info:
        core.handle(Started(2.0, 4242, obs()))
    assert info.value.exit_status == exitstatus.EXIT_INTERNAL == 70
    with pytest.raises(ProtocolError, match="TreeGone is not expected while running"):
        core.handle(TreeGone(3.0))


def test_a_late_checkpoint_signal_is_owed_only_after_the_programs_own_end():
    """After the Exit, a trigger signal that lands as the supervisor returns still owes HTCondor
    the checkpoint status when the exit reports the program's own end (the loop then records
    that end in the store); not after a checkpoint exit, and not before the Exit."""
    core = start(settings())
    core.handle(ChildExited(1.0, 3, None, obs()))
    assert not core.owed_after_exit()
    finish(core, 2.0)
    assert core.owed_after_exit()
    core = start(settings())
    core.handle(SignalReceived(1.0, SIGUSR2))
    core.handle(Observed(2.0, obs("f1")))
    core.handle(Tick(4.0))
    core.handle(CommitFinished(5.0, True))
    assert finish(core, 6.0).status == CKPT and not core.owed_after_exit()


# --- soft kill -----------------------------------------------------------------------------------
def test_soft_kill_forwards_then_kills_tree_after_grace():
    """Soft kill: pass KillSig on, wait kill_grace, then KillTree; the status is 128+9."""
    core = start(CoreSettings(kill_grace=5.0))
    out = core.handle(SignalReceived(10.0, SIGTERM))
    assert actions(out) == [SendSignal(SIGTERM)]
    assert "kill_sent" in kinds(out)
    assert core.phase == Phase.STOPPING
    assert core.deadline() == 15.0
    assert actions(core.handle(Tick(14.9))) == []
    out = core.handle(Tick(15.0))
    assert actions(out) == [KillTree()]
    assert "grace_expired" in kinds(out)
    assert core.deadline() is None
    # the SIGKILLed child is reaped before the tree is gone: the planned status stays
    core.handle(ChildExited(15.01, None, SIGKILL, obs()))
    assert finish(core, 15.02).status == 128 + 9


def test_program_exiting_during_grace_reports_its_own_status():
    """Soft kill, then the program exits by itself within the grace: its status is reported."""
    core = start(CoreSettings(kill_grace=5.0))
    core.handle(SignalReceived(10.0, SIGTERM))
    out = core.handle(ChildExited(11.0, None, SIGTERM, obs()))
    assert actions(out) == [KillTree()]
    assert core.deadline() is None
    assert finish(core, 11.1).status == 128 + SIGTERM

    core = start(CoreSettings(kill_grace=5.0))
    core.handle(SignalReceived(10.0, SIGTERM))
    core.handle(ChildExited(11.0, 3, None, obs()))
    assert finish(core, 11.1).status == 3


def test_second_soft_kill_does_not_extend_the_grace():
    """A repeated KillSig is passed on again, but the grace runs from the first one."""
    core = start(CoreSettings(kill_grace=5.0))
    core.handle(SignalReceived(10.0, SIGTERM))
    out = core.handle(SignalReceived(12.0, SIGTERM))
    assert actions(out) == [SendSignal(SIGTERM)]
    assert core.deadline() == 15.0


def test_custom_kill_signal_is_the_soft_kill():
    """--kill-signal SIGINT: SIGINT starts the soft kill, SIGTERM is an ordinary signal."""
    core = start(CoreSettings(kill_signal=SIGINT, kill_grace=1.0))
    out = core.handle(SignalReceived(1.0, SIGTERM))
    assert actions(out) == [SendSignal(SIGTERM)] and core.phase == Phase.RUNNING
    core.handle(SignalReceived(2.0, SIGINT))
    assert core.phase == Phase.STOPPING and core.deadline() == 3.0


# --- program exit --------------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "signum", "status"), [
    (0, None, 0), (1, None, 1), (255, None, 255), (None, SIGKILL, 137), (None, 11, 139)])
def test_program_exit_kills_tree_then_exits_only_after_tree_gone(code, signum, status):
    """Program exit -> KillTree (leftovers); Exit(program status) only after TreeGone."""
    core = start(CoreSettings())
    out = core.handle(ChildExited(5.0, code, signum, obs()))
    assert actions(out) == [KillTree()]
    assert core.phase == Phase.KILLING
    assert only(core.handle(Tick(6.0)), Exit) == []
    assert only(core.handle(SignalReceived(6.5, SIGHUP)), SendSignal) == []
    ex = finish(core, 7.0)
    assert (ex.status, ex.by_signal) == (status, None)
    assert core.handle(TreeGone(8.0)) == []


def test_program_using_reserved_checkpoint_code_is_a_distinct_failure():
    """The program's own exit with the checkpoint code is reported as 65, never as the code."""
    core = start(CoreSettings())
    core.handle(ChildExited(5.0, CKPT, None, obs()))
    ex = finish(core, 5.1)
    assert ex.status == exitstatus.EXIT_PROGRAM_USED_CHECKPOINT_CODE
    assert "reserved checkpoint code" in ex.reason

    core = start(CoreSettings(exit_code=77))
    core.handle(ChildExited(5.0, 77, None, obs()))
    assert finish(core, 5.1).status == 65
    core = start(CoreSettings(exit_code=77))
    core.handle(ChildExited(5.0, CKPT, None, obs()))
    assert finish(core, 5.1).status == CKPT  # 85 is not reserved when the code is 77


def test_reserved_code_is_free_when_checkpoints_are_reported_by_signal():
    """With --exit-signal the checkpoint is a death by signal, so exit code 85 passes through."""
    core = start(CoreSettings(exit_signal=SIGUSR1))
    core.handle(ChildExited(5.0, CKPT, None, obs()))
    assert finish(core, 5.1).status == CKPT


def test_ordinary_signals_are_forwarded_while_the_program_runs_only():
    """Signals without a role are passed on; none once the program has exited."""
    core = start(CoreSettings())
    out = core.handle(SignalReceived(1.0, SIGHUP))
    assert actions(out) == [SendSignal(SIGHUP)]
    core.handle(ChildExited(2.0, 0, None, obs()))
    assert only(core.handle(SignalReceived(2.1, SIGHUP)), SendSignal) == []
    assert only(core.handle(SignalReceived(2.2, SIGTERM)), SendSignal) == []


def test_trigger_signal_is_forwarded_as_is_without_checkpointing():
    """Without checkpoint paths a trigger signal has no role: it is passed on unchanged."""
    core = start(CoreSettings(trigger_signals=frozenset({SIGUSR2})))
    assert actions(core.handle(SignalReceived(1.0, SIGUSR2))) == [SendSignal(SIGUSR2)]
    assert core.phase == Phase.RUNNING


# --- trigger signal ------------------------------------------------------------------------------
def test_trigger_signal_sends_the_job_signal_by_default_the_same():
    """A trigger signal is not passed on as is: the job signal is sent (default: the same)."""
    core = start(settings())
    out = core.handle(SignalReceived(10.0, SIGUSR2))
    assert actions(out) == [SendSignal(SIGUSR2)]
    assert "checkpoint_requested" in kinds(out)
    assert core.phase == Phase.CHECKPOINTING
    assert core.observing


def test_trigger_signal_is_translated_to_job_signal():
    """--trigger-signal SIGUSR2 --job-signal SIGUSR1: the program receives SIGUSR1 only."""
    core = start(settings(job_signal=SIGUSR1))
    out = core.handle(SignalReceived(10.0, SIGUSR2))
    assert only(out, SendSignal) == [SendSignal(SIGUSR1)]


def test_with_several_trigger_signals_the_received_one_is_passed_on():
    """Default job signal is "the trigger signal itself": the one that arrived, not the lowest."""
    core = start(settings(trigger_signals=frozenset({SIGUSR1, SIGUSR2})))
    out = core.handle(SignalReceived(10.0, SIGUSR2))
    assert only(out, SendSignal) == [SendSignal(SIGUSR2)]


def test_completion_needs_a_change_since_the_request_then_quiet():
    """After a request nothing completes until the files changed, then quiet=S must pass."""
    core = start(settings())
    core.handle(SignalReceived(10.0, SIGUSR2))
    assert core.handle(Observed(11.0, obs("f0"))) == []  # unchanged since the request
    assert core.handle(Tick(20.0)) == []
    assert core.phase == Phase.CHECKPOINTING
    core.handle(Observed(21.0, obs("f1")))
    assert core.deadline() == 23.0
    assert actions(core.handle(Tick(22.9))) == []
    core.handle(Observed(22.0, obs("f2")))  # still being written: the quiet time restarts
    assert core.deadline() == 24.0
    assert actions(core.handle(Tick(23.5))) == []
    out = core.handle(Tick(24.0))
    assert actions(out) == [Commit(final_status=None, program_exited=False)]
    assert "checkpoint_complete" in kinds(out)
    assert core.phase == Phase.COMMITTING


def test_signal_checkpoint_commits_then_kills_then_exits_with_the_checkpoint_code():
    """Commit, then KillTree, then Exit(checkpoint code) only once the tree is gone."""
    core = start(settings())
    assert only(checkpoint_via_signal(core), Commit)
    out = core.handle(CommitFinished(14.0, True, bytes=10, seconds=0.1, fingerprint="f1"))
    assert actions(out) == [KillTree()]
    assert "committed" in kinds(out)
    assert core.phase == Phase.KILLING
    # the SIGKILLed program is reaped before the tree is gone: the checkpoint status stays
    out = core.handle(ChildExited(14.01, None, SIGKILL, obs("f1")))
    assert actions(out) == [] and core.phase == Phase.KILLING
    ex = finish(core, 14.1)
    assert (ex.status, ex.by_signal) == (CKPT, None)


def test_checkpoint_reported_by_signal():
    """--exit-signal SIG: the checkpoint is reported by dying from SIG."""
    core = start(settings(exit_signal=SIGUSR1))
    checkpoint_via_signal(core)
    core.handle(CommitFinished(14.0, True))
    ex = finish(core, 14.1)
    assert ex.by_signal == SIGUSR1
    assert ex.status == 128 + SIGUSR1


def test_custom_exit_code():
    """--exit-code 77: a committed checkpoint is reported as 77."""
    core = start(settings(exit_code=77))
    checkpoint_via_signal(core)
    core.handle(CommitFinished(14.0, True))
    assert finish(core, 14.1).status == 77


def test_marker_rule_needs_marker_updated_after_the_request():
    """marker=PATH: complete once PATH was created or updated after the trigger."""
    core = start(settings(complete=Marker("done")), o=obs("f0", markers=(("done", 100),)))
    core.handle(SignalReceived(10.0, SIGUSR2))
    assert actions(core.handle(Observed(11.0, obs("f1", markers=(("done", 100),))))) == []
    out = core.handle(Observed(12.0, obs("f1", markers=(("done", 200),))))
    assert only(out, Commit)


def test_marker_rule_counts_a_created_marker():
    """marker=PATH: a marker absent at the request and present afterwards counts."""
    core = start(settings(complete=Marker("done")), o=obs("f0", markers=(("done", None),)))
    core.handle(SignalReceived(10.0, SIGUSR2))
    assert only(core.handle(Observed(12.0, obs("f1", markers=(("done", 5),)))), Commit)


def test_log_rule_needs_a_match_after_the_request():
    """log=REGEX: a match counted before the request does not count, a new one does."""
    core = start(settings(complete=Log("saved")), o=obs("f0", logs=(("saved", 3),)))
    core.handle(SignalReceived(10.0, SIGUSR2))
    assert actions(core.handle(Observed(11.0, obs("f1", logs=(("saved", 3),))))) == []
    assert only(core.handle(Observed(12.0, obs("f1", logs=(("saved", 4),)))), Commit)


def test_closed_rule_needs_no_writer():
    """closed: complete once no process holds a checkpoint path open for writing."""
    core = start(settings(complete=Closed()))
    core.handle(SignalReceived(10.0, SIGUSR2))
    assert actions(core.handle(Observed(11.0, obs("f1", open_for_write=True)))) == []
    # not measured
    assert actions(core.handle(Observed(12.0, obs("f1", open_for_write=None)))) == []
    assert only(core.handle(Observed(13.0, obs("f1", open_for_write=False))), Commit)


def test_exit_rule_commits_when_the_program_exits_after_checkpointing():
    """exit: the program exits after the request (GROMACS exits 1): commit, checkpoint code."""
    core = start(settings(complete=ExitRule()))
    core.handle(SignalReceived(10.0, SIGUSR2))
    assert actions(core.handle(Observed(11.0, obs("f1")))) == []  # changed, but still running
    out = core.handle(ChildExited(12.0, 1, None, obs("f1")))
    assert actions(out) == [Commit(final_status=None, program_exited=True)]
    out = core.handle(CommitFinished(12.5, True))
    assert actions(out) == [KillTree()]
    assert finish(core, 12.6).status == CKPT


def test_exit_rule_without_a_change_is_the_finished_after_signal_case():
    """exit: the program exits after the signal without a new checkpoint: record its status."""
    core = start(settings(complete=ExitRule()))
    core.handle(SignalReceived(10.0, SIGUSR2))
    out = core.handle(ChildExited(12.0, 1, None, obs("f0")))
    assert actions(out) == [Commit(final_status=1, program_exited=True)]


def test_command_rule_runs_the_validator_last():
    """command=CMD: once the other rules hold the validator runs; exit 0 -> Commit."""
    core = start(settings(complete=Quiet(2) & CommandRule("check")))
    core.handle(SignalReceived(10.0, SIGUSR2))
    core.handle(Observed(11.0, obs("f1")))
    assert actions(core.handle(Tick(12.0))) == []
    out = core.handle(Tick(13.0))
    assert actions(out) == [RunValidator()]
    assert core.phase == Phase.VALIDATING
    assert core.handle(Observed(13.5, obs("f1"))) == []  # nothing decided while validating
    out = core.handle(ValidatorFinished(14.0, True))
    assert actions(out) == [Commit(final_status=None, program_exited=False)]
    core.handle(CommitFinished(15.0, True))
    assert finish(core, 15.1).status == CKPT


def test_rejected_checkpoint_is_not_validated_again_until_it_changes():
    """Validator fails: keep waiting; the same files are not validated again, changed files are."""
    core = start(settings(complete=CommandRule("check")))
    core.handle(SignalReceived(10.0, SIGUSR2))
    assert actions(core.handle(Observed(11.0, obs("f1")))) == [RunValidator()]
    out = core.handle(ValidatorFinished(12.0, False))
    assert actions(out) == []
    assert core.phase == Phase.CHECKPOINTING
    assert actions(core.handle(Observed(13.0, obs("f1")))) == []
    assert actions(core.handle(Observed(14.0, obs("f2")))) == [RunValidator()]


def test_validator_result_is_ignored_when_not_asked():
    """A ValidatorFinished outside VALIDATING changes nothing."""
    core = start(settings())
    assert core.handle(ValidatorFinished(1.0, True)) == []
    assert core.phase == Phase.RUNNING


def test_validator_fails_after_program_exited_reports_program():
    """Program exits during validation, the validator rejects: the program's status."""
    core = start(settings(complete=CommandRule("check"), every=100.0, trigger_signals=frozenset()))
    core.handle(Tick(100.0))
    core.handle(Observed(101.0, obs("f1")))
    assert core.phase == Phase.VALIDATING
    core.handle(ChildExited(101.5, 3, None, obs("f1")))
    out = core.handle(ValidatorFinished(102.0, False))
    assert actions(out) == [KillTree()]
    assert finish(core, 102.1).status == 3


# --- coalescing ----------------------------------------------------------------------------------
def test_thousand_trigger_signals_give_one_commit():
    """Triggers while a checkpoint is in flight are coalesced: one job signal, one Commit."""
    core = start(settings())
    all_out: list[Any] = []
    t = 10.0
    for i in range(1000):
        t += 0.001
        all_out += core.handle(SignalReceived(t, SIGUSR2))
        if i == 500:
            all_out += core.handle(Observed(t, obs("f1")))
    all_out += core.handle(Tick(t + 2))
    for _ in range(100):
        all_out += core.handle(SignalReceived(t + 2.5, SIGUSR2))  # during the commit
    all_out += core.handle(CommitFinished(t + 3, True))
    for _ in range(100):
        all_out += core.handle(SignalReceived(t + 3.1, SIGUSR2))  # while killing
    all_out += core.handle(TreeGone(t + 4))
    assert len(only(all_out, SendSignal)) == 1
    assert len(only(all_out, Commit)) == 1
    assert only(all_out, Exit)[0].status == CKPT
    assert kinds(all_out).count("trigger_coalesced") == 999 + 100


# --- --every -------------------------------------------------------------------------------------
def test_every_timer_requests_a_checkpoint():
    """--every S: the job signal is sent S seconds after the start; commit, then exit."""
    core = start(settings(every=60.0, job_signal=SIGUSR1, trigger_signals=frozenset()), now=5.0)
    assert core.deadline() == 65.0
    assert core.handle(Tick(64.0)) == []
    out = core.handle(Tick(65.0))
    assert actions(out) == [SendSignal(SIGUSR1)]
    assert core.phase == Phase.CHECKPOINTING
    core.handle(Observed(66.0, obs("f1")))
    assert only(core.handle(Tick(68.0)), Commit)
    core.handle(CommitFinished(69.0, True))
    assert finish(core, 69.1).status == CKPT


def test_every_with_min_run_commits_locally_and_exits_later():
    """--every --min-run: commits before min_run keep running (timer restarts); later: exit."""
    core = start(settings(every=60.0, min_run=150.0, job_signal=SIGUSR1,
                          trigger_signals=frozenset()))
    core.handle(Tick(60.0))
    core.handle(Observed(61.0, obs("f1")))
    core.handle(Tick(63.0))
    out = core.handle(CommitFinished(64.0, True, fingerprint="f1"))
    assert actions(out) == []
    assert core.phase == Phase.RUNNING
    assert core.deadline() == 124.0
    core.handle(Tick(124.0))
    core.handle(Observed(125.0, obs("f2")))
    core.handle(Tick(127.0))
    core.handle(CommitFinished(128.0, True, fingerprint="f2"))
    assert core.phase == Phase.RUNNING  # 128 < 150
    core.handle(Tick(188.0))
    core.handle(Observed(189.0, obs("f3")))
    core.handle(Tick(191.0))
    out = core.handle(CommitFinished(192.0, True, fingerprint="f3"))
    assert actions(out) == [KillTree()]
    assert finish(core, 193.0).status == CKPT


def test_trigger_signal_during_timer_checkpoint_makes_it_exit():
    """A trigger signal during a timer checkpoint is coalesced; the job exits after it."""
    core = start(settings(every=60.0, min_run=1000.0))
    core.handle(Tick(60.0))
    assert core.handle(SignalReceived(60.5, SIGUSR2))[0].kind == "trigger_coalesced"
    core.handle(Observed(61.0, obs("f1")))
    core.handle(Tick(63.0))
    assert actions(core.handle(CommitFinished(64.0, True))) == [KillTree()]
    assert finish(core, 64.1).status == CKPT


# --- --watch -------------------------------------------------------------------------------------
def test_watch_commits_a_new_complete_checkpoint_and_exits():
    """--watch: no request; a change since the last commit that holds the rules is committed."""
    core = start(settings(watch=True, trigger_signals=frozenset()))
    assert core.observing
    out = core.handle(Observed(1.0, obs("f1")))
    assert actions(out) == []
    assert core.deadline() == 3.0
    out = core.handle(Tick(3.0))
    assert actions(out) == [Commit(final_status=None, program_exited=False)]
    out = core.handle(CommitFinished(3.5, True, fingerprint="f1"))
    assert actions(out) == [KillTree()]
    assert finish(core, 3.6).status == CKPT


def test_watch_after_resume_needs_a_change_from_the_restored_checkpoint():
    """--watch after a resume: the restored files are the last commit, not a new checkpoint."""
    core = start(settings(watch=True, complete=Quiet(0)), resumed=True, fp="r")
    assert actions(core.handle(Observed(1.0, obs("r")))) == []
    assert only(core.handle(Observed(2.0, obs("r2"))), Commit)


def test_watch_with_min_run_commits_each_new_checkpoint_then_exits_at_min_run():
    """--watch --min-run S: every new complete checkpoint is committed; exit once S have passed."""
    core = start(settings(watch=True, min_run=100.0, complete=Quiet(0)))
    out = core.handle(Observed(10.0, obs("f1")))
    assert only(out, Commit)
    assert actions(core.handle(CommitFinished(11.0, True, fingerprint="f1"))) == []
    assert core.phase == Phase.RUNNING
    assert core.deadline() == 100.0
    assert actions(core.handle(Observed(20.0, obs("f1")))) == []  # nothing new since the commit
    assert only(core.handle(Observed(30.0, obs("f2"))), Commit)
    core.handle(CommitFinished(31.0, True, fingerprint="f2"))
    assert core.phase == Phase.RUNNING
    out = core.handle(Tick(100.0))
    assert actions(out) == [KillTree()]
    assert finish(core, 100.1).status == CKPT


def test_watch_validator_rejection_keeps_running():
    """--watch, validator: a rejected checkpoint is not committed; the program keeps running."""
    core = start(settings(watch=True, complete=CommandRule("check")))
    assert actions(core.handle(Observed(1.0, obs("f1")))) == [RunValidator()]
    assert actions(core.handle(ValidatorFinished(2.0, False))) == []
    assert core.phase == Phase.RUNNING
    assert actions(core.handle(Observed(3.0, obs("f1")))) == []
    assert actions(core.handle(Observed(4.0, obs("f2")))) == [RunValidator()]


# --- timeout -------------------------------------------------------------------------------------
def test_checkpoint_timeout_continue_goes_back_to_running():
    """--checkpoint-timeout S (continue): nothing committed, logged, the program continues."""
    core = start(settings(checkpoint_timeout=30.0, every=100.0))
    core.handle(SignalReceived(10.0, SIGUSR2))
    assert core.deadline() == 40.0
    out = core.handle(Tick(40.0))
    assert actions(out) == []
    assert "checkpoint_timed_out" in kinds(out)
    assert core.phase == Phase.RUNNING
    assert core.deadline() == 140.0  # the timer restarts


def test_checkpoint_timeout_fail_exits_75():
    """--on-timeout fail (our own timer, nothing promised): kill the tree and exit with 75."""
    core = start(settings(checkpoint_timeout=30.0, on_timeout="fail", every=10.0))
    core.handle(Tick(10.0))
    core.handle(Observed(20.0, obs("f1")))
    core.handle(Observed(39.0, obs("f2")))  # still being written at the timeout
    assert actions(core.handle(Tick(40.0))) == [KillTree()]
    assert finish(core, 40.1).status == exitstatus.EXIT_CHECKPOINT_TIMEOUT


def test_checkpoint_timeout_fail_after_the_checkpoint_signal_still_fails():
    """--on-timeout fail is the user's explicit choice to stop: even after HTCondor's checkpoint
    signal it exits 75 (HTCondor then holds the job, code 36, which is the failure asked for),
    instead of keeping the promise and restarting forever."""
    core = start(settings(checkpoint_timeout=30.0, on_timeout="fail"))
    core.handle(SignalReceived(10.0, SIGUSR2))
    core.handle(Observed(39.0, obs("f2")))
    assert actions(core.handle(Tick(40.0))) == [KillTree()]
    assert finish(core, 40.1).status == exitstatus.EXIT_CHECKPOINT_TIMEOUT


def test_quiet_checkpoint_completing_at_the_timeout_wins():
    """At the timeout tick, a checkpoint that is complete is committed, not dropped."""
    core = start(settings(checkpoint_timeout=5.0))
    core.handle(SignalReceived(10.0, SIGUSR2))
    core.handle(Observed(13.0, obs("f1")))
    assert only(core.handle(Tick(15.0)), Commit)


# --- eviction with budget ------------------------------------------------------------------------
def test_checkpoint_on_evict_commits_within_budget_then_kills():
    """--checkpoint-on-evict S: KillSig asks for a checkpoint; committed: kill, checkpoint code."""
    core = start(settings(checkpoint_on_evict=20.0))
    out = core.handle(SignalReceived(10.0, SIGTERM))
    assert actions(out) == [SendSignal(SIGUSR2)]
    assert "evicting" in kinds(out)
    assert core.phase == Phase.CHECKPOINTING
    assert core.deadline() == 30.0
    core.handle(Observed(11.0, obs("f1")))
    assert only(core.handle(Tick(13.0)), Commit)
    assert actions(core.handle(CommitFinished(14.0, True))) == [KillTree()]
    assert finish(core, 14.1).status == CKPT


def test_checkpoint_on_evict_budget_expiry_takes_the_soft_kill_path():
    """Budget ran out: pass KillSig on, wait the grace, SIGKILL the tree; 128+9."""
    core = start(settings(checkpoint_on_evict=20.0, kill_grace=5.0))
    core.handle(SignalReceived(10.0, SIGTERM))
    out = core.handle(Tick(30.0))
    assert actions(out) == [SendSignal(SIGTERM)]
    assert "checkpoint_timed_out" in kinds(out)
    assert core.phase == Phase.STOPPING
    assert core.deadline() == 35.0
    assert actions(core.handle(Tick(35.0))) == [KillTree()]
    assert finish(core, 35.1).status == 137


def test_checkpoint_on_evict_without_trigger_signal_uses_kill_signal():
    """With no trigger or job signal, the eviction checkpoint is asked for with KillSig itself."""
    core = start(settings(checkpoint_on_evict=20.0, trigger_signals=frozenset()))
    assert actions(core.handle(SignalReceived(10.0, SIGTERM))) == [SendSignal(SIGTERM)]


def test_evict_during_signal_checkpoint_shortens_the_deadline():
    """KillSig while a checkpoint is in flight (with a budget): the budget bounds the wait."""
    core = start(settings(checkpoint_on_evict=20.0, checkpoint_timeout=600.0))
    core.handle(SignalReceived(10.0, SIGUSR2))
    assert core.deadline() == 610.0
    out = core.handle(SignalReceived(11.0, SIGTERM))
    assert actions(out) == []
    assert core.deadline() == 31.0
    assert actions(core.handle(Tick(31.0))) == [SendSignal(SIGTERM)]
    assert core.phase == Phase.STOPPING


def test_failed_evict_commit_still_soft_kills_the_program():
    """Eviction checkpoint whose commit fails: KillSig is passed on, the grace starts (no hang)."""
    core = start(settings(checkpoint_on_evict=20.0, kill_grace=5.0))
    core.handle(SignalReceived(10.0, SIGTERM))
    core.handle(Observed(11.0, obs("f1")))
    core.handle(Tick(13.0))
    out = core.handle(CommitFinished(14.0, False, error="ENOSPC"))
    assert "commit_failed" in kinds(out)
    assert actions(out) == [SendSignal(SIGTERM)]
    assert core.phase == Phase.STOPPING
    assert core.deadline() == 19.0
    assert actions(core.handle(Tick(19.0))) == [KillTree()]


def test_second_kill_signal_during_evict_checkpoint_starts_the_grace():
    """A second KillSig during the eviction checkpoint: soft kill now, SIGKILL after the grace."""
    core = start(settings(checkpoint_on_evict=20.0, kill_grace=5.0))
    core.handle(SignalReceived(10.0, SIGTERM))
    out = core.handle(SignalReceived(12.0, SIGTERM))
    assert actions(out) == [SendSignal(SIGTERM)]
    assert core.phase == Phase.STOPPING
    assert core.deadline() == 17.0


def test_evicted_while_a_watched_checkpoint_is_validated_the_soft_kill_still_comes():
    """--watch with a validator and --checkpoint-on-evict: the soft-kill signal arrives while a
    watched checkpoint is validated, the validator rejects it: the eviction budget still runs
    and the soft kill is passed on when it is spent (it used to go back to running, evicted,
    with no deadline: the property test found it)."""
    core = start(settings(watch=True, checkpoint_on_evict=5.0, kill_grace=1.0,
                          complete=Quiet(1) & CommandRule("check")))
    core.handle(Observed(1.0, obs("f1")))
    assert actions(core.handle(Tick(2.0))) == [RunValidator()]
    assert actions(core.handle(SignalReceived(3.0, SIGTERM))) == []
    core.handle(ValidatorFinished(4.0, False))
    assert core.phase == Phase.CHECKPOINTING and core.deadline() == 8.0
    assert actions(core.handle(Tick(8.0))) == [SendSignal(SIGTERM)]
    assert core.phase == Phase.STOPPING


def test_evict_budget_bounds_a_slow_validator():
    """The eviction budget also runs while the validator runs: it expires -> soft kill."""
    core = start(settings(checkpoint_on_evict=20.0, kill_grace=5.0, complete=CommandRule("check")))
    core.handle(SignalReceived(10.0, SIGTERM))
    core.handle(Observed(11.0, obs("f1")))
    assert core.phase == Phase.VALIDATING
    assert core.deadline() == 30.0
    out = core.handle(Tick(30.0))
    assert actions(out) == [SendSignal(SIGTERM)]
    assert core.phase == Phase.STOPPING
    assert core.handle(ValidatorFinished(31.0, True)) == []  # too late


# --- soft kill during commit ---------------------------------------------------------------------
def test_soft_kill_during_commit_lets_the_commit_finish_then_stops():
    """KillSig while COMMITTING (a timer checkpoint): passed on; the commit ends, then STOPPING;
    the grace runs on; the program's own status is reported (nothing was promised)."""
    core = start(settings(kill_grace=5.0, every=10.0))
    checkpoint_via_timer(core)
    assert core.phase == Phase.COMMITTING
    out = core.handle(SignalReceived(13.5, SIGTERM))
    assert actions(out) == [SendSignal(SIGTERM)]
    assert core.phase == Phase.COMMITTING
    assert core.deadline() == 18.5
    out = core.handle(CommitFinished(14.0, True))
    assert actions(out) == []
    assert core.phase == Phase.STOPPING
    assert core.deadline() == 18.5
    core.handle(ChildExited(15.0, None, SIGTERM, obs("f1")))
    assert finish(core, 15.1).status == 128 + SIGTERM


def test_soft_kill_during_a_promised_commit_reports_the_checkpoint():
    """Rule 8: KillSig while committing the checkpoint HTCondor asked for: the commit ends, the
    tree is killed and the checkpoint status is reported (HTCondor holds any other status)."""
    core = start(settings(kill_grace=5.0))
    checkpoint_via_signal(core)
    out = core.handle(SignalReceived(13.5, SIGTERM))
    assert actions(out) == [SendSignal(SIGTERM)]
    assert "evicting" in kinds(out)
    assert actions(core.handle(CommitFinished(14.0, True))) == [KillTree()]
    core.handle(ChildExited(14.1, None, SIGTERM, obs("f1")))
    assert finish(core, 14.2).status == CKPT


def test_grace_expiring_during_a_commit_kills_the_tree_but_not_the_commit():
    """Grace runs out while still COMMITTING: KillTree now, the commit still finishes, then exit."""
    core = start(settings(kill_grace=5.0, every=10.0))
    checkpoint_via_timer(core)
    core.handle(SignalReceived(13.5, SIGTERM))
    out = core.handle(Tick(18.5))
    assert actions(out) == [KillTree()]
    assert core.phase == Phase.COMMITTING
    core.handle(ChildExited(18.6, None, SIGKILL, obs("f1")))
    assert core.phase == Phase.COMMITTING
    assert core.deadline() is None
    out = core.handle(CommitFinished(20.0, True))
    assert actions(out) == [KillTree()]
    assert finish(core, 20.1).status == 137


def test_program_exit_during_commit_after_soft_kill_stops_the_grace_timer():
    """Soft kill during a commit, then the program exits: no deadline while the commit finishes."""
    core = start(settings(kill_grace=5.0, every=10.0))
    checkpoint_via_timer(core)
    core.handle(SignalReceived(13.5, SIGTERM))
    core.handle(ChildExited(14.0, 0, None, obs("f1")))
    assert core.deadline() is None  # the grace is moot; the loop must not spin on a past deadline
    assert actions(core.handle(Tick(30.0))) == []
    core.handle(CommitFinished(31.0, True))
    assert finish(core, 31.1).status == 0


# --- commit failure ------------------------------------------------------------------------------
def test_commit_failure_with_program_alive_keeps_running():
    """CommitFinished(ok=False) while the program runs: commit_failed recorded, back to RUNNING."""
    core = start(settings())
    checkpoint_via_signal(core)
    out = core.handle(CommitFinished(14.0, False, error="No space left on device"))
    assert actions(out) == []
    rec = [r for r in out if isinstance(r, Record) and r.kind == "commit_failed"]
    assert rec and rec[0].level == "error" and "No space" in rec[0].message
    assert core.phase == Phase.RUNNING


def test_commit_failure_with_program_gone_exits_74():
    """CommitFinished(ok=False) after the program exited (nothing promised): exit 74, and a
    summary line says how many commits failed."""
    core = start(settings(complete=ExitRule(), every=10.0))
    core.handle(Tick(10.0))
    core.handle(ChildExited(11.0, 0, None, obs("f1")))
    out = core.handle(CommitFinished(12.0, False, error="EROFS"))
    assert actions(out) == [KillTree()]
    out = core.handle(TreeGone(12.1))
    assert only(out, Exit)[0].status == exitstatus.EXIT_STORE
    summary = [r for r in out if isinstance(r, Record) and r.kind == "commit_summary"]
    assert summary and "1 commit(s) failed" in summary[0].message and "EROFS" in summary[0].message


def test_commit_failure_after_the_checkpoint_signal_reports_the_checkpoint_over_the_old_store():
    """Rule 8: the commit of the promised checkpoint failed and the program is gone: the previous
    committed store stands unchanged (Commit restart), and the checkpoint status is reported; a
    failure of that last resort too is reported as it is (74), never retried forever."""
    for second_ok, status in ((True, CKPT), (False, exitstatus.EXIT_STORE)):
        core = start(settings(complete=ExitRule()))
        core.handle(SignalReceived(10.0, SIGUSR2))
        core.handle(ChildExited(11.0, 0, None, obs("f1")))
        assert actions(core.handle(CommitFinished(12.0, False, error="EROFS"))) == [KillTree()]
        assert actions(core.handle(TreeGone(12.1))) == [Commit(program_exited=True, restart=True)]
        out = core.handle(CommitFinished(12.2, second_ok, error="" if second_ok else "EROFS"))
        assert actions(out) == [KillTree()]
        assert finish(core, 12.3).status == status


def test_commit_result_is_ignored_when_not_committing():
    """A CommitFinished outside COMMITTING changes nothing."""
    core = start(settings())
    assert core.handle(CommitFinished(1.0, True)) == []
    assert core.phase == Phase.RUNNING and core.commits == 0


# --- inspect on exit -----------------------------------------------------------------------------
def test_inspect_on_exit_done_reports_program_status():
    """--inspect-on-exit 77, the done rule holds: the program finished, its status is reported."""
    core = start(settings(inspect_on_exit=frozenset({77}), trigger_signals=frozenset()))
    out = core.handle(ChildExited(5.0, 77, None, obs("f1"), done=True))
    assert actions(out) == [KillTree()]
    assert "done" in kinds(out)
    assert finish(core, 5.1).status == 77


def test_inspect_on_exit_new_checkpoint_since_start_is_committed():
    """--inspect-on-exit 77, not done, new complete checkpoint since start: commit, checkpoint."""
    core = start(settings(inspect_on_exit=frozenset({77}), trigger_signals=frozenset()))
    out = core.handle(ChildExited(5.0, 77, None, obs("f1"), done=False))
    assert actions(out) == [Commit(final_status=None, program_exited=True)]
    assert actions(core.handle(CommitFinished(5.5, True))) == [KillTree()]
    assert finish(core, 5.6).status == CKPT


def test_inspect_on_exit_nothing_new_reports_program_status():
    """--inspect-on-exit 77, not done, checkpoint unchanged since start: the program's status."""
    core = start(settings(inspect_on_exit=frozenset({77}), trigger_signals=frozenset()),
                 resumed=True)
    out = core.handle(ChildExited(5.0, 77, None, obs("f0"), done=False))
    assert actions(out) == [KillTree()]
    assert finish(core, 5.1).status == 77


def test_inspect_on_exit_ignores_other_codes():
    """An exit code not listed in --inspect-on-exit is the program's status, new files or not."""
    core = start(settings(inspect_on_exit=frozenset({77}), trigger_signals=frozenset()))
    core.handle(ChildExited(5.0, 1, None, obs("f1"), done=False))
    assert finish(core, 5.1).status == 1


def test_inspect_on_exit_can_claim_the_reserved_code():
    """--inspect-on-exit 85: a new checkpoint makes the program's 85 a real checkpoint; else 65."""
    core = start(settings(inspect_on_exit=frozenset({CKPT}), trigger_signals=frozenset()))
    assert only(core.handle(ChildExited(5.0, CKPT, None, obs("f1"))), Commit)
    core = start(settings(inspect_on_exit=frozenset({CKPT}), trigger_signals=frozenset()),
                 resumed=True)
    core.handle(ChildExited(5.0, CKPT, None, obs("f0")))
    assert finish(core, 5.1).status == 65


def test_inspect_on_exit_validator_rejects():
    """--inspect-on-exit with a validator that rejects the new files: the program's status."""
    core = start(settings(inspect_on_exit=frozenset({77}), trigger_signals=frozenset(),
                          complete=CommandRule("check")))
    assert actions(core.handle(ChildExited(5.0, 77, None, obs("f1")))) == [RunValidator()]
    assert actions(core.handle(ValidatorFinished(6.0, False))) == [KillTree()]
    assert finish(core, 6.1).status == 77


# --- finished after signal -----------------------------------------------------------------------
@pytest.mark.parametrize(("code", "signum", "status"),
                         [(0, None, 0), (3, None, 3), (None, 11, 139)])
def test_program_finishing_after_the_checkpoint_signal_records_its_status(code, signum, status):
    """After HTCondor's checkpoint signal the job must exit with the checkpoint status (hold 36):
    the program's status is committed as final_status, and the checkpoint code is reported."""
    core = start(settings())
    core.handle(SignalReceived(10.0, SIGUSR2))
    out = core.handle(ChildExited(11.0, code, signum, obs("f0")))
    assert actions(out) == [Commit(final_status=status, program_exited=True)]
    assert "final_status_recorded" in kinds(out)
    out = core.handle(CommitFinished(11.5, True))
    assert actions(out) == [KillTree()]
    assert finish(core, 11.6).status == CKPT


def test_program_finishing_after_the_checkpoint_signal_and_a_done_rule():
    """The done rule holding after a checkpoint signal: final_status + checkpoint code too."""
    core = start(settings())
    core.handle(SignalReceived(10.0, SIGUSR2))
    out = core.handle(ChildExited(11.0, 0, None, obs("f1"), done=True))
    assert actions(out) == [Commit(final_status=0, program_exited=True)]


def test_evicted_after_the_checkpoint_signal_still_reports_the_checkpoint_status():
    """Rule 8 (the hold the real pool showed, code 36): evicted while the promised checkpoint is
    in flight, the checkpoint gets ``promise_budget`` seconds before the soft kill is passed on;
    when the program then dies from the soft kill, the tree is killed and the checkpoint status
    is reported over the unchanged store, never the program's 143."""
    core = start(settings(kill_grace=5.0, promise_budget=3.0))
    core.handle(SignalReceived(10.0, SIGUSR2))
    out = core.handle(SignalReceived(12.0, SIGTERM))
    assert actions(out) == []  # not passed on yet: the checkpoint in flight may still complete
    assert "evicting" in kinds(out)
    assert core.deadline() == 15.0
    out = core.handle(Tick(15.0))
    assert actions(out) == [SendSignal(SIGTERM)]
    assert core.phase == Phase.STOPPING
    assert actions(core.handle(ChildExited(15.5, None, SIGTERM, obs("f0")))) == [KillTree()]
    out = core.handle(TreeGone(15.6))
    assert actions(out) == [Commit(program_exited=True, restart=True)]
    assert "interrupted" in kinds(out)
    assert actions(core.handle(CommitFinished(15.7, True))) == [KillTree()]
    assert finish(core, 15.8).status == CKPT


def test_evicted_after_the_checkpoint_signal_commits_a_checkpoint_completed_in_time():
    """Rule 8: the promised checkpoint completes within the budget after the soft kill arrived:
    it is committed and the checkpoint status is reported."""
    core = start(settings(kill_grace=5.0, promise_budget=30.0, complete=ExitRule()))
    core.handle(SignalReceived(10.0, SIGUSR2))
    core.handle(SignalReceived(12.0, SIGTERM))
    out = core.handle(ChildExited(17.0, 130, None, obs("f1")))
    assert actions(out) == [Commit(final_status=None, program_exited=True)]
    assert actions(core.handle(CommitFinished(17.5, True))) == [KillTree()]
    assert finish(core, 17.6).status == CKPT


def test_evicted_after_the_checkpoint_signal_grace_expiry_still_reports_the_checkpoint():
    """Rule 8: a program that ignores the soft kill is SIGKILLed after the grace; the exit is
    still the checkpoint status (by signal when so configured), never 137."""
    core = start(settings(kill_grace=5.0, exit_signal=SIGUSR1))
    core.handle(SignalReceived(10.0, SIGUSR2))
    assert actions(core.handle(SignalReceived(12.0, SIGTERM))) == [SendSignal(SIGTERM)]  # no budget
    assert actions(core.handle(Tick(17.0))) == [KillTree()]
    core.handle(ChildExited(17.1, None, SIGKILL, obs("f0")))
    assert actions(core.handle(TreeGone(17.2))) == [Commit(program_exited=True, restart=True)]
    core.handle(CommitFinished(17.3, True))
    plan = finish(core, 17.4)
    assert (plan.status, plan.by_signal) == (128 + SIGUSR1, SIGUSR1)


def test_remove_kill_signal_is_a_soft_kill_passed_on_as_received():
    """Rule 9 (os_proc.cpp:941): RemoveKillSig is a soft kill like KillSig: it is passed on as
    received, and the grace, the SIGKILL and the exit follow."""
    core = start(settings(kill_grace=5.0, remove_kill_signal=3, every=100.0))
    out = core.handle(SignalReceived(10.0, 3))
    assert actions(out) == [SendSignal(3)]
    assert {"evicting", "kill_sent"} <= set(kinds(out))
    assert core.phase == Phase.STOPPING and core.deadline() == 15.0
    core.handle(ChildExited(11.0, None, 3, obs()))
    assert finish(core, 11.1).status == 128 + 3


def test_every_soft_kill_is_logged_and_recorded_as_evicting():
    """Issue 13.5: the soft-kill signal received is always logged, with an ``evicting`` event,
    not only with --checkpoint-on-evict."""
    core = start(CoreSettings(kill_grace=5.0))
    out = core.handle(SignalReceived(10.0, SIGTERM))
    rec = [r for r in out if isinstance(r, Record) and r.kind == "evicting"]
    assert rec and rec[0].fields["signal"] == SIGTERM and "soft-kill signal 15" in rec[0].message


def test_program_killed_by_the_timer_job_signal_restarts_with_the_fix_named():
    """Issue 13.2: PROGRAM killed by the job signal we sent (a shell wrapper without exec): one
    line names the fix, and the checkpoint status is reported over the unchanged store (not 138)."""
    core = start(settings(every=10.0, job_signal=SIGUSR1))
    assert actions(core.handle(Tick(10.0))) == [SendSignal(SIGUSR1)]
    out = core.handle(ChildExited(10.1, None, SIGUSR1, obs("f0")))
    assert actions(out) == [Commit(program_exited=True, restart=True, job_signal_deaths=1)]
    rec = [r for r in out if isinstance(r, Record) and r.kind == "killed_by_job_signal"]
    assert rec and "exec" in rec[0].message and "trap" in rec[0].message and "--signal-to child" in rec[0].message
    assert actions(core.handle(CommitFinished(10.2, True))) == [KillTree()]
    assert finish(core, 10.3).status == CKPT


def test_program_killed_by_the_job_signal_again_without_progress_ends_the_job():
    """Issue 13.2: when the run before was killed by our job signal too and nothing was committed
    since, restarting would repeat it forever: the program's status (138) is reported with the fix;
    a first death restarts and counts itself in the store; a commit in between resets the count."""
    core = start(settings(every=10.0, job_signal=SIGUSR1))
    core.handle(Tick(10.0))
    out = core.handle(ChildExited(10.1, None, SIGUSR1, obs("f0")))
    assert actions(out) == [Commit(program_exited=True, restart=True, job_signal_deaths=1)]
    core = Core(settings(every=10.0, job_signal=SIGUSR1))
    core.handle(Started(0.0, 4242, obs("f0"), job_signal_deaths=1))
    core.handle(Tick(10.0))
    out = core.handle(ChildExited(10.1, None, SIGUSR1, obs("f0")))
    assert actions(out) == [KillTree()]
    rec = [r for r in out if isinstance(r, Record) and r.kind == "killed_by_job_signal"]
    assert rec and rec[0].level == "error" and "`exec`" in rec[0].message and "instead of restarting" in rec[0].message
    assert finish(core, 10.2).status == 128 + SIGUSR1
    core = Core(settings(every=10.0, job_signal=SIGUSR1, exit_after_checkpoint=False))
    core.handle(Started(0.0, 4242, obs("f0"), job_signal_deaths=1))
    checkpoint_via_timer(core)
    core.handle(CommitFinished(14.0, True))  # keeps running after the commit
    core.handle(Tick(24.0))
    out = core.handle(ChildExited(24.1, None, SIGUSR1, obs("f1")))
    assert actions(out) == [Commit(program_exited=True, restart=True, job_signal_deaths=1)]


def test_program_killed_by_the_job_signal_after_its_done_rule_held_is_finished():
    """Issue 13.8: the timer's job signal landing during the program's shutdown, after its done
    rule holds, is a finished run (0), not 138."""
    core = start(settings(every=10.0, job_signal=SIGUSR1))
    core.handle(Tick(10.0))
    out = core.handle(ChildExited(10.1, None, SIGUSR1, obs("f0"), done=True))
    assert actions(out) == [KillTree()]
    assert finish(core, 10.2).status == 0


def test_no_signal_no_final_status():
    """Without a checkpoint signal the program's exit is simply its status (no commit)."""
    core = start(settings(every=1000.0))
    out = core.handle(ChildExited(11.0, 0, None, obs("f1")))
    assert actions(out) == [KillTree()]


# --- plan_start ----------------------------------------------------------------------------------
def test_plan_start_without_store_runs_fresh():
    """No committed store: start the program from scratch with its original arguments."""
    plan = plan_start(None)
    assert (plan.resume, plan.exit_now) == (False, None)


def test_plan_start_with_store_resumes():
    """A committed checkpoint: restore and resume."""
    plan = plan_start({"sequence": 3})
    assert (plan.resume, plan.exit_now) == (True, None)
    assert "3" in plan.reason


@pytest.mark.parametrize("final", [0, 1, 139])
def test_plan_start_with_final_status_exits_at_once(final):
    """A recorded final status: exit with it at once, without running the program."""
    plan = plan_start({"sequence": 4, "final_status": final})
    assert (plan.resume, plan.exit_now) == (False, final)


@pytest.mark.parametrize("bogus", [True, False, None, "0", 1.0])
def test_plan_start_ignores_a_final_status_that_is_not_an_int(bogus):
    """A final_status that is not a plain int (bool, string, float) is ignored: resume."""
    assert plan_start({"sequence": 1, "final_status": bogus}).resume


# --- deadlines -----------------------------------------------------------------------------------
def test_deadline_is_never_in_the_past_after_a_tick_with_nothing_to_do():
    """A rule deadline that already passed without completing must not make the loop spin."""
    core = start(settings(complete=Quiet(2) & Marker("done")),
                 o=obs("f0", markers=(("done", None),)))
    core.handle(Observed(1.0, obs("f0")))
    core.handle(SignalReceived(10.0, SIGUSR2))
    core.handle(Observed(11.0, obs("f1", markers=(("done", None),))))
    assert core.deadline() == 13.0
    assert actions(core.handle(Tick(13.0))) == []  # quiet holds, the marker does not
    d = core.deadline()
    assert d is None or d > 13.0


def test_stale_change_before_the_request_does_not_spin():
    """Files changed long before the request; after a tick with no change the deadline is future."""
    core = start(settings())
    core.handle(SignalReceived(1.0, SIGUSR2))
    core.handle(Observed(2.0, obs("f1")))
    core.handle(Tick(4.0))
    core.handle(CommitFinished(5.0, False, error="x"))  # back to RUNNING, last change at 2.0
    core.handle(SignalReceived(50.0, SIGUSR2))
    core.handle(Observed(50.1, obs("f1")))  # unchanged since the request
    core.handle(Tick(50.2))
    d = core.deadline()
    assert d is None or d > 50.2


# --- the program's end settled off the loop (ChildGone) ------------------------------------------
def _replay(core: Core, out: list[Any]) -> list[Any]:
    """Play the loop: hand in the held events the core gives back, in their order."""
    cmds: list[Any] = []
    for cmd in out:
        if isinstance(cmd, Redeliver):
            cmds += _replay(core, core.handle(cmd.event))
        else:
            cmds.append(cmd)
    return cmds


def test_signals_while_settling_reach_no_process_and_are_handled_after_the_end():
    """The main process is reaped but its end needs a blocking fact (a done command): the core
    is SETTLING; signals that arrive are held (never passed to the reaped PID), then handed in
    again after the ChildExited, as if they had come just after it."""
    core = start(settings(trigger_signals=frozenset()))
    out = core.handle(ChildGone(5.0, 0, None))
    assert core.phase == Phase.SETTLING and actions(out) == [] and kinds(out) == ["settling"]
    assert not core.child_alive
    for sig in (SIGHUP, SIGTERM):
        out = core.handle(SignalReceived(6.0, sig))
        assert actions(out) == [] and kinds(out) == ["signal_held"]
    assert core.handle(Observed(6.5, obs("f1"))) == []
    end = ChildExited(8.0, 0, None, obs("f0"), done=True)
    out = core.handle(end)
    assert out == [Redeliver(end), Redeliver(SignalReceived(8.0, SIGHUP)),
                   Redeliver(SignalReceived(8.0, SIGTERM))]
    cmds = _replay(core, out)
    assert not only(cmds, SendSignal)
    assert "done" in kinds(cmds) and "evicting" in kinds(cmds)
    assert finish(core, 9.0).status == 0


def test_checkpoint_signal_while_settling_still_ends_in_the_checkpoint_status():
    """Rule 8: HTCondor's checkpoint signal held while the done command runs still owes the
    checkpoint status: the program's status is recorded as final and 85 reported."""
    core = start(settings())
    core.handle(ChildGone(5.0, 0, None))
    core.handle(SignalReceived(6.0, SIGUSR2))
    cmds = _replay(core, core.handle(ChildExited(8.0, 0, None, obs("f0"), done=True)))
    assert actions(cmds) == [KillTree()]
    out = core.handle(TreeGone(8.5))
    assert actions(out) == [Commit(final_status=0, program_exited=True)]
    core.handle(CommitFinished(9.0, True))
    assert core.phase == Phase.KILLING
    assert finish(core, 9.5).status == CKPT


def test_soft_kill_while_settling_bounds_the_wait_by_the_grace():
    """A soft kill while the done command runs gives it at most the kill grace: then the core
    says StopSettling (the loop kills the command; not done), and nothing more at later ticks."""
    core = start(settings(kill_grace=10.0))
    core.handle(ChildGone(5.0, 0, None))
    core.handle(SignalReceived(6.0, SIGTERM))
    assert core.deadline() == 16.0
    assert actions(core.handle(Tick(15.0))) == []
    out = core.handle(Tick(16.0))
    assert actions(out) == [StopSettling()] and "settling_stopped" in kinds(out)
    assert core.deadline() is None
    cmds = _replay(core, core.handle(ChildExited(16.5, 0, None, obs("f0"), done=False)))
    assert not only(cmds, SendSignal)
    assert finish(core, 17.0).status == 0  # no checkpoint signal: the program's own status


def test_events_while_settling_during_a_commit_keep_their_order():
    """A commit that finishes while the program's end is settled is handled after that end, as
    when the loop waited: the program ended during the commit."""
    core = start(settings(watch=True, complete=Quiet(0)))
    core.handle(Observed(1.0, obs("f1")))
    assert core.phase == Phase.COMMITTING
    core.handle(ChildGone(2.0, 0, None))
    assert core.handle(CommitFinished(2.5, True, fingerprint="f1")) == []
    out = core.handle(ChildExited(3.0, 0, None, obs("f1"), done=None))
    assert [type(r.event) for r in out] == [ChildExited, CommitFinished]
    cmds = _replay(core, out)
    assert "committed" in kinds(cmds) and KillTree() in cmds
