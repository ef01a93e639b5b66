"""The checkpoint lifecycle end to end, with real processes and files (issue 3)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest
from support.helpers import ROOT, VICTIM, sleep_until, supervisor_cmd, wait_line
from support.relutil import ENV, PY, STORE, VALIDATE, complete_value, events, kinds, run, supervise, verify_store


def committed(sandbox: Path, name="state") -> str:
    return (sandbox / STORE / name).read_text()


# ---------------------------------------------------------------------------------------------
# Every trigger with every completion rule

RULES = {
    "quiet": ["--complete-when", "quiet=0.3"],
    "marker": ["--complete-when", "marker=mark"],
    "log": ["--complete-when", "log=^checkpointed"],
    "command": ["--complete-when", f"command={VALIDATE}"],
    "closed": ["--complete-when", "closed"],
    "exit": ["--complete-when", "exit"],
}
TRIGGERS = ("signal", "every", "watch", "inspect", "evict")


def victim_args(trigger: str, rule: str) -> list[str]:
    base = [PY, str(VICTIM), "--ckpt", "state", "--marker", "mark"]
    if trigger in ("signal", "every", "evict"):
        args = base + ["--ckpt-on", "SIGUSR1", "--slow", "0.4", "--sleep", "60"]
        if rule == "exit":
            args += ["--exit-after-ckpt", "1"]  # like GROMACS: exits 1 after a checkpoint
        return args
    # 2 s between checkpoints, each written over 0.4 s in 8 pieces: quiet=0.3 holds only after a
    # whole one, and the rule that decides the first one (value 10) complete has 2 s to see it
    # before the program starts writing the next, even on a loaded machine (with 0.5 s, a
    # validator's start-up or a late look at a quiet file could miss it and commit value 20)
    args = base + ["--steps", "1000", "--step-time", "0.2", "--every-steps", "10", "--slow", "0.4"]

    if trigger == "inspect":
        args += ["--exit-after-auto", "0"]  # exits 0 after a checkpoint: not a unique code
    elif rule == "exit":
        args += ["--exit-after-auto", "1"]
    return args


def trigger_args(trigger: str) -> list[str]:
    return {
        "signal": ["--trigger-signal", "SIGUSR2", "--job-signal", "SIGUSR1"],
        "every": ["--every", "0.5", "--job-signal", "SIGUSR1"],
        "watch": ["--watch"],
        "inspect": ["--inspect-on-exit", "0"],
        "evict": ["--checkpoint-on-evict", "20", "--job-signal", "SIGUSR1"],
    }[trigger]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("trigger", TRIGGERS)
def test_each_trigger_with_each_completion_rule(sandbox, trigger, rule):
    """Every trigger with every completion rule commits a complete checkpoint, then reports 85."""
    args = ["--checkpoint", "state", "--kill-grace", "5", *trigger_args(trigger), *RULES[rule]]
    with supervise(sandbox, args, victim_args(trigger, rule)) as proc:
        wait_line(proc, "ready")
        if trigger == "signal":
            os.kill(proc.pid, signal.SIGUSR2)
        elif trigger == "evict":
            os.kill(proc.pid, signal.SIGTERM)
        status = proc.wait(timeout=40)
        stderr = proc.stderr.read()
    assert status == 85, stderr
    value = complete_value(committed(sandbox))
    assert verify_store(sandbox)["sequence"] == 1
    kinds = [e["event"] for e in events(sandbox)]
    assert kinds.index("checkpoint_complete") < kinds.index("committed") < kinds.index("exit")
    if trigger in ("watch", "inspect"):
        assert value == 10


# ---------------------------------------------------------------------------------------------
# The scenarios of the issue


@pytest.mark.timeout(120)
def test_seed_vuc_runs_unchanged_under_the_supervisor(sandbox):
    """The seed's vuc.py (exits 77 after each checkpoint) finishes through checkpoints and restarts."""
    shutil.copy(ROOT / "examples" / "vuc" / "vuc.py", sandbox / "vuc.py")
    statuses = []
    for _ in range(6):
        proc = run(sandbox, ["--checkpoint", "vuc.ckpt", "--inspect-on-exit", "77"], [PY, "vuc.py"])
        statuses.append(proc.returncode)
        if proc.returncode != 85:
            break
    assert statuses == [85, 85, 85, 0]
    assert "Computation complete" in proc.stdout
    assert committed(sandbox, "vuc.ckpt") == "9"
    assert (sandbox / "vuc.ckpt").read_text() == "10"


@pytest.mark.timeout(60)
def test_slow_in_place_checkpoint_on_translated_signal_never_half_committed(sandbox):
    """A never-exiting program rewriting its checkpoint in place on SIGUSR1 is checkpointed on
    SIGUSR2 (translated); the store never holds a half-written file, even while it is written."""
    seen: list[str] = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            try:
                seen.append(committed(sandbox))
            except OSError:
                pass
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    args = ["--checkpoint", "state", "--trigger-signal", "SIGUSR2", "--job-signal", "SIGUSR1",
            "--complete-when", "quiet=0.5"]
    program = [PY, str(VICTIM), "--ckpt", "state", "--ckpt-on", "SIGUSR1", "--slow", "1.5", "--sleep", "60"]
    sampler.start()
    try:
        for _round in range(2):
            with supervise(sandbox, args, program) as proc:
                line = wait_line(proc, "ready")
                os.kill(proc.pid, signal.SIGUSR2)
                assert wait_line(proc, "signal") == "signal 10"  # SIGUSR1 reached it, not SIGUSR2
                assert proc.wait(timeout=30) == 85
            assert line.endswith("value 0")  # it never counts: every checkpoint holds 0
    finally:
        stop.set()
        sampler.join()
    assert seen, "the sampler never saw a committed store"
    for text in seen:
        complete_value(text)


@pytest.mark.timeout(60)
def test_exit_0_after_checkpoint_is_told_apart_from_finishing(sandbox):
    """A program that exits 0 after every checkpoint and 0 when finished: the done rule decides."""
    args = ["--checkpoint", "state", "--inspect-on-exit", "0", "--done-when", "marker=result.dat"]
    program = [PY, str(VICTIM), "--ckpt", "state", "--steps", "25", "--step-time", "0.01",
               "--every-steps", "10", "--exit-after-auto", "0", "--result", "result.dat"]
    statuses = [run(sandbox, args, program).returncode for _ in range(4)]
    assert statuses == [85, 85, 0, 0] or statuses[:3] == [85, 85, 0]
    assert (sandbox / "result.dat").read_text() == "25\n"
    assert complete_value(committed(sandbox)) == 20


@pytest.mark.timeout(60)
def test_resume_args_are_used_exactly_when_a_checkpoint_exists(sandbox):
    """--resume-args replace the arguments only when a committed checkpoint was restored."""
    script = sandbox / "prog.sh"
    script.write_text('#!/bin/sh\necho "args: $*" >> argv.log\necho "$*" > state\nexit 7\n')
    script.chmod(0o755)
    args = ["--checkpoint", "state", "--inspect-on-exit", "7", "--resume-args", "--restore=job 'two words'"]
    first = run(sandbox, args, ["./prog.sh", "--fresh"])
    second = run(sandbox, args, ["./prog.sh", "--fresh"])
    assert (first.returncode, second.returncode) == (85, 85)
    assert (sandbox / "argv.log").read_text() == "args: --fresh\nargs: --restore=job two words\n"


@pytest.mark.timeout(60)
def test_program_finishing_after_the_checkpoint_signal(sandbox):
    """After HTCondor's checkpoint signal a finished program still yields the checkpoint status; its
    real status is recorded and reported at the next start, without running it again."""
    script = sandbox / "prog.sh"
    script.write_text("#!/bin/sh\necho run >> runs.log\ntrap 'exit 3' USR2\necho ready\n"
                      "echo 1 > state\nwhile :; do sleep 0.05; done\n")

    script.chmod(0o755)
    args = ["--checkpoint", "state", "--trigger-signal", "SIGUSR2", "--complete-when", "marker=never"]
    with supervise(sandbox, args, ["./prog.sh"]) as proc:
        wait_line(proc, "ready")
        os.kill(proc.pid, signal.SIGUSR2)
        assert proc.wait(timeout=20) == 85
    assert verify_store(sandbox)["final_status"] == 3
    again = run(sandbox, args, ["./prog.sh"])
    assert again.returncode == 3
    assert (sandbox / "runs.log").read_text() == "run\n"


@pytest.mark.timeout(60)
def test_corrupt_store_is_moved_aside_and_the_run_starts_from_scratch(sandbox):
    """A store that does not verify is moved aside (never deleted) and the program starts fresh."""
    args = ["--checkpoint", "state", "--inspect-on-exit", "0"]
    program = [PY, str(VICTIM), "--ckpt", "state", "--steps", "30", "--step-time", "0.01",
               "--every-steps", "10", "--exit-after-auto", "0"]
    assert run(sandbox, args, program).returncode == 85
    (sandbox / STORE / "state").write_text("garbage")
    (sandbox / "state").unlink(missing_ok=True)  # after an exit the file was renamed into the store

    proc = run(sandbox, args, program)
    assert proc.returncode == 85
    assert "moved aside" in proc.stderr
    aside = [p for p in sandbox.iterdir() if p.name.startswith(STORE + ".corrupt")]
    assert len(aside) == 1 and (aside[0] / "state").read_text() == "garbage"
    assert "value 0" in proc.stdout  # started from scratch
    assert complete_value(committed(sandbox)) == 10


@pytest.mark.timeout(60)
def test_program_exiting_with_the_checkpoint_code_without_checkpoint_is_a_failure(sandbox):
    """PROGRAM's own exit with the reserved code is never reported as a checkpoint."""
    proc = run(sandbox, ["--checkpoint", "state"], ["sh", "-c", "echo x > state; exit 85"])
    assert proc.returncode == 65
    assert not (sandbox / STORE).exists()


@pytest.mark.timeout(60)
def test_checkpoint_by_signal_from_the_command_line(sandbox):
    """--exit-signal: after a commit the supervisor dies from exactly that signal, no core bit."""
    cmd = supervisor_cmd("run", "--checkpoint", "state", "--inspect-on-exit", "0", "--exit-signal", "SIGUSR2",
                         "--", "sh", "-c", "echo 1 > state")
    pid = os.fork()
    if pid == 0:  # a raw child, so that the test reads the exact wait status
        try:
            os.chdir(sandbox)
            os.execvpe(cmd[0], cmd, ENV)
        finally:
            os._exit(127)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGUSR2 and not os.WCOREDUMP(status)
    assert committed(sandbox) == "1\n"


@pytest.mark.timeout(60)
def test_checkpoint_timeout_continue_and_fail(sandbox):
    """--checkpoint-timeout: nothing is committed; continue (default) or fail with 75."""
    program = [PY, str(VICTIM), "--ckpt-on", "SIGUSR1", "--sleep", "60", "--exit-on", "SIGTERM:4"]
    args = ["--checkpoint", "state", "--trigger-signal", "SIGUSR1", "--checkpoint-timeout", "0.5"]
    with supervise(sandbox, args + ["--on-timeout", "fail"], program) as proc:
        wait_line(proc, "ready")
        os.kill(proc.pid, signal.SIGUSR1)
        assert proc.wait(timeout=20) == 75
    assert not (sandbox / STORE).exists()
    with supervise(sandbox, args, program) as proc:
        wait_line(proc, "ready")
        os.kill(proc.pid, signal.SIGUSR1)
        sleep_until(lambda: any(e["event"] == "checkpoint_timed_out" for e in events(sandbox)))
        assert proc.poll() is None  # still running
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=20) == 85  # evicted after the checkpoint signal: rule 8, not its 4
    assert verify_store(sandbox).get("empty") is True  # no checkpoint: the next start is from scratch


SAVES_ON_SIGINT = """
import signal, sys, time
def save(signum, frame):
    time.sleep(0.3)  # writing the checkpoint takes a while
    open("state", "w").write("saved\\n")
    sys.exit(130)
signal.signal(signal.SIGINT, save)
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.timeout(60)
def test_checkpoint_signal_then_soft_kill_at_once_still_checkpoints(sandbox):
    """HTCondor's checkpoint signal followed at once by its soft kill (an eviction right after
    the periodic signal): the kernel runs the two handlers in the reverse order, so they are
    read together as [SIGTERM, SIGUSR2]. The checkpoint request is handled first: the program
    gets its checkpoint signal, not the soft kill, its checkpoint is committed and the exit is
    the checkpoint status (85)."""
    args = ["--checkpoint", "state", "--job-signal", "SIGINT", "--complete-when", "exit",
            "--trigger-signal", "SIGUSR2"]
    with supervise(sandbox, args, [PY, "-c", SAVES_ON_SIGINT]) as proc:
        wait_line(proc, "ready")
        os.kill(proc.pid, signal.SIGUSR2)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 85, proc.stderr.read()
    assert committed(sandbox) == "saved\n"
    kinds = [e["event"] for e in events(sandbox)]
    assert kinds.index("checkpoint_requested") < kinds.index("evicting") < kinds.index("committed")


@pytest.mark.timeout(60)
def test_unchanged_checkpoint_is_not_committed_again(sandbox):
    """Only a checkpoint that changed since the last commit is committed again (watch mode)."""
    program = [PY, str(VICTIM), "--ckpt", "state", "--steps", "1000", "--step-time", "0.02",
               "--every-steps", "10"]
    # --min-run 4: room for 3 commits (a checkpoint every 0.2 s of sleeps, each quiet for 0.1 s)
    # on a machine several times slower than this one
    args = ["--checkpoint", "state", "--watch", "--complete-when", "quiet=0.1", "--min-run", "4"]
    with supervise(sandbox, args, program) as proc:
        wait_line(proc, "ready")
        assert proc.wait(timeout=30) == 85
    commits = [e for e in events(sandbox) if e["event"] == "committed"]
    assert len(commits) >= 3  # committed locally several times before exiting at --min-run
    assert verify_store(sandbox)["sequence"] == len(commits)


@pytest.mark.timeout(60)
def test_store_on_a_full_disk_keeps_the_previous_checkpoint(tmp_path):
    """ENOSPC during a commit (a running program's files must be copied): the previous checkpoint
    stays intact, the failure is reported, the program keeps running; evicted, it exits with the
    checkpoint status over the previous store (rule 8), with a summary line of the failed commits
    (issue 12.5)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        args = ["--checkpoint", "state", "--inspect-on-exit", "0"]
        assert run(mnt, args, ["sh", "-c", "echo small > state"]).returncode == 85
        big = ["sh", "-c", "trap 'head -c 700000 /dev/zero > state' USR1; echo ready; "
                           "while :; do sleep 0.05; done"]
        sig_args = ["--checkpoint", "state", "--trigger-signal", "SIGUSR1", "--complete-when", "quiet=0.2"]
        with supervise(mnt, sig_args, big) as proc:
            wait_line(proc, "ready")
            os.kill(proc.pid, signal.SIGUSR1)
            sleep_until(lambda: any(e["event"] == "commit_failed" for e in events(mnt)), timeout=20)
            failure = next(e for e in events(mnt) if e["event"] == "commit_failed")
            assert "ENOSPC" in failure["error"] or "No space" in failure["error"]
            assert proc.poll() is None  # still running: the next trigger may succeed
            assert committed(mnt) == "small\n"
            os.kill(proc.pid, signal.SIGTERM)
            # rule 8: HTCondor's checkpoint signal came, so the eviction still ends with the
            # checkpoint status, over the previous store; a summary line tells of the failed commit
            assert proc.wait(timeout=20) == 85
            err = proc.stderr.read()
            assert "1 commit(s) failed in this run (0 succeeded)" in err and "No space" in err, err
        from supervisor.store import Store

        Store(mnt, mnt / STORE, ["state"]).verify()
        assert committed(mnt) == "small\n"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("with_store", [False, True])
def test_program_killed_by_the_job_signal_restarts_from_the_last_commit(sandbox, with_store):
    """A program that dies from the job signal we sent (no handler yet) has not finished: the
    checkpoint status is reported over the unchanged store, and the next start runs it again
    (from the last checkpoint, or from scratch when there was none) instead of exiting at once."""
    if with_store:
        assert run(sandbox, ["--checkpoint", "state", "--inspect-on-exit", "0"],
                   ["sh", "-c", "echo 1 > state"]).returncode == 85
    script = sandbox / "prog.sh"
    script.write_text("#!/bin/sh\necho run >> runs.log\necho ready\nwhile :; do sleep 0.05; done\n")
    script.chmod(0o755)  # SIGUSR1 (the job signal) kills it: it has no handler
    args = ["--checkpoint", "state", "--trigger-signal", "SIGUSR2", "--job-signal", "SIGUSR1"]
    with supervise(sandbox, args, ["./prog.sh"]) as proc:
        wait_line(proc, "ready")
        os.kill(proc.pid, signal.SIGUSR2)
        assert proc.wait(timeout=20) == 85
    state = verify_store(sandbox)
    assert "final_status" not in state
    assert state.get("empty", False) is not with_store
    if with_store:
        assert committed(sandbox) == "1\n"
    again = run(sandbox, ["--checkpoint", "state", "--inspect-on-exit", "0"], ["sh", "-c", "echo 2 > state"])
    assert again.returncode == 85  # it ran again (and checkpointed), not "finished earlier"
    assert ("restored" in again.stderr) is with_store


SLOW_ON_SIGINT = """\
import os, signal, sys, time
def on_int(signum, frame):
    open("got_sigint", "w").close()
    time.sleep(float(sys.argv[1]))
    with open("state.txt", "w") as f:
        f.write("saved\\n")
    sys.exit(130)
signal.signal(signal.SIGINT, on_int)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


@pytest.mark.timeout(90)
@pytest.mark.parametrize("write_time,vacate,budget", [(1.0, 40, 20), (300.0, 8, 3)], ids=["in-time", "too-slow"])
def test_eviction_after_the_checkpoint_signal_still_exits_with_the_checkpoint_status(sandbox, write_time, vacate,
                                                                                     budget):
    """Rule 8, the hold the real pool showed (issue 11): evicted (SIGTERM) while the program writes
    the checkpoint HTCondor asked for, the supervisor exits 85, never the program's 143. A checkpoint
    written within the budget is committed; one that is not leaves the store as it was (here: none,
    so an empty store marks 'start from scratch'). The whole tree is gone, within the vacate time."""
    (sandbox / "prog.py").write_text(SLOW_ON_SIGINT)
    (sandbox / ".job.ad").write_text(f"JobMaxVacateTime = {vacate}\nNumJobStarts = 0\n")
    args = ["--checkpoint", "state.txt", "--trigger-signal", "SIGUSR2", "--job-signal", "SIGINT",
            "--complete-when", "exit"]
    env = {**ENV, "_CONDOR_JOB_AD": str(sandbox / ".job.ad")}
    with supervise(sandbox, args, [PY, "prog.py", str(write_time)], env=env) as proc:
        wait_line(proc, "ready")
        os.kill(proc.pid, signal.SIGUSR2)
        sleep_until((sandbox / "got_sigint").exists, timeout=20)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=vacate + 20) == 85, proc.stderr.read()
        err = proc.stderr.read()
    # what fits in the vacate time is derived from it and said at start, then honoured
    assert f"vacate time {vacate} s" in err and f"gets {budget} s" in err, err
    assert "soft-kill signal 15 received" in err
    from supervisor.store import Store

    stored = Store(sandbox, sandbox / STORE, ["state.txt"]).verify()
    if write_time < budget:
        assert (sandbox / STORE / "state.txt").read_text() == "saved\n"
        assert "empty" not in stored
    else:
        assert stored.get("empty") is True and not (sandbox / STORE / "state.txt").exists()
        assert "during the eviction" in err
    left = [p for p in psutil.process_iter(["cwd"]) if p.info.get("cwd") == str(sandbox) and p.pid != os.getpid()]
    assert left == [], left


@pytest.mark.timeout(60)
def test_shell_wrapper_without_exec_killed_by_the_job_signal_restarts_with_the_fix_named(sandbox):
    """Issue 13.2: a bash wrapper without exec dies from the job signal sent to the group: one line
    names the fix (exec, trap, --signal-to child), the checkpoint status is reported over the
    unchanged store (not 138), so the job restarts from it; the same death in the next run, with no
    checkpoint in between, ends the job (138) instead of restarting forever."""
    assert run(sandbox, ["--checkpoint", "state", "--inspect-on-exit", "0"],
               ["sh", "-c", "echo 1 > state"]).returncode == 85
    wrapper = sandbox / "wrap.sh"
    wrapper.write_text("#!/bin/bash\necho ready\n" + f"{PY} -c 'import time; time.sleep(60)'\n")
    wrapper.chmod(0o755)
    proc = run(sandbox, ["--checkpoint", "state", "--every", "1", "--job-signal", "SIGUSR1"], ["./wrap.sh"])
    assert proc.returncode == 85, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "the job signal we sent" in ln]
    assert len(lines) == 1 and "`exec`" in lines[0] and "`trap`" in lines[0] and "--signal-to child" in lines[0]
    assert committed(sandbox) == "1\n" and "empty" not in verify_store(sandbox)
    # the same death again with no checkpoint in between: a restart would loop forever, so the
    # job ends with the program's status and the same fix named; the checkpoint stays intact
    proc = run(sandbox, ["--checkpoint", "state", "--every", "1", "--job-signal", "SIGUSR1"], ["./wrap.sh"])
    assert proc.returncode == 128 + signal.SIGUSR1, proc.stderr
    assert "instead of restarting forever" in proc.stderr and "--signal-to child" in proc.stderr
    assert committed(sandbox) == "1\n"


@pytest.mark.timeout(60)
def test_misspelled_checkpoint_path_on_an_inspected_exit_is_named(sandbox):
    """Issue 13.6: --inspect-on-exit 77 with a --checkpoint path the program never writes: the
    code passes through (77), and a log line says that the path does not exist."""
    proc = run(sandbox, ["--checkpoint", "stat.txt", "--inspect-on-exit", "77"],
               ["sh", "-c", "echo 1 > state.txt; exit 77"])
    assert proc.returncode == 77
    lines = [ln for ln in proc.stderr.splitlines() if "stat.txt does not exist" in ln]
    assert len(lines) == 1 and lines[0].startswith("ckpt-supervisor["), proc.stderr


@pytest.mark.timeout(60)
def test_inspected_exit_names_its_rule_in_words(sandbox):
    """Issue 13.6: an inspected exit that is a checkpoint is logged in words, not 'rule=quiet=2'."""
    proc = run(sandbox, ["--checkpoint", "state", "--inspect-on-exit", "0"], ["sh", "-c", "echo 1 > state"])
    assert proc.returncode == 85
    assert "rule=quiet=2" not in proc.stderr
    assert "exited 0 (--inspect-on-exit) and its checkpoint changed" in proc.stderr, proc.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("starts", [0, 3])
def test_stale_job_ad_counters_never_decide_and_lost_stores_are_warned_about(sandbox, starts):
    """Rule 6: the .job.ad is a per-starter snapshot; a CheckpointNumber there decides nothing
    (no store: a fresh start). Issue 12.2: on a job that ran before (NumJobStarts > 0), working
    checkpoint files without a committed store get a warning naming transfer_checkpoint_files."""
    (sandbox / "state").write_text("left over\n")
    (sandbox / ".job.ad").write_text(f"CheckpointNumber = 7\nNumJobStarts = {starts}\n")
    env = {**ENV, "_CONDOR_JOB_AD": str(sandbox / ".job.ad")}
    proc = subprocess.run(supervisor_cmd("run", "--checkpoint", "state", "--inspect-on-exit", "0", "--",
                                         "sh", "-c", "cat state; echo 2 > state"),
                          cwd=sandbox, env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 85, proc.stderr
    assert "restored" not in proc.stderr
    warned = [ln for ln in proc.stderr.splitlines() if "transfer_checkpoint_files" in ln]
    assert bool(warned) is (starts > 0), proc.stderr
    assert committed(sandbox) == "2\n"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("attempt", range(3))
def test_checkpoint_signal_racing_the_programs_end_still_gets_the_checkpoint_status(sandbox, attempt):
    """Rule 8: HTCondor's checkpoint signal landing just as the program ends (before we see the
    exit, while we kill the tree, or while we return) is owed the checkpoint status all the same:
    85, with the program's status recorded and reported (without running it) at the next start.
    The program sends the signal to the supervisor itself as its last act, so the three moments
    are all hit across runs; whichever it is, the outcome is the same."""
    args = ["--checkpoint", "state", "--trigger-signal", "SIGUSR2", "--complete-when", "marker=never"]
    # the program ignores the signal we pass on: otherwise it may die from it before its `exit 0`,
    # which is a different (tested) case, a program killed by the job signal
    prog = ["sh", "-c", "trap '' USR2; echo run >> runs.log; echo 1 > state; kill -USR2 $PPID; exit 0"]
    proc = run(sandbox, args, prog)
    assert proc.returncode == 85, proc.stderr
    assert verify_store(sandbox)["final_status"] == 0
    again = run(sandbox, args, prog)
    assert again.returncode == 0 and (sandbox / "runs.log").read_text() == "run\n"


@pytest.mark.timeout(60)
def test_working_files_of_a_run_that_ended_without_a_checkpoint_are_set_aside(sandbox):
    """After a run that ended without any checkpoint (an empty store: killed by the job signal),
    the working file it left (torn by the kill) is not a checkpoint: the next start moves it aside
    to PATH.stale and the program starts from scratch without seeing it."""
    prog = sandbox / "prog.sh"
    prog.write_text("#!/bin/sh\necho ready\nprintf half > state\nwhile :; do sleep 0.05; done\n")
    prog.chmod(0o755)
    args = ["--checkpoint", "state", "--trigger-signal", "SIGUSR2", "--job-signal", "SIGUSR1"]
    with supervise(sandbox, args, ["./prog.sh"]) as proc:
        wait_line(proc, "ready")
        sleep_until((sandbox / "state").exists)
        os.kill(proc.pid, signal.SIGUSR2)
        assert proc.wait(timeout=20) == 85
    assert verify_store(sandbox).get("empty") is True and (sandbox / "state").read_text() == "half"
    again = run(sandbox, ["--checkpoint", "state", "--inspect-on-exit", "0"],
                ["sh", "-c", "test ! -e state && echo fresh > state"])
    assert again.returncode == 85, again.stderr
    assert (sandbox / "state.stale").read_text() == "half" and committed(sandbox) == "fresh\n"
    assert "moved aside" in again.stderr


# ---------------------------------------------------------------------------------------------
# The program's end settled off the loop: signals while a done rule's command runs (issue 14)

DONE_CMD = ("#!/bin/sh\necho $$ > cmd.started\n"  # runs until the test creates 'go' (at most 30 s)
            "i=0; while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done\nexit 0\n")


def _settle_job(sandbox: Path) -> list[str]:
    (sandbox / "done.sh").write_text(DONE_CMD)
    (sandbox / "prog.sh").write_text("#!/bin/sh\necho 1 > state\necho ready\nexit 0\n")
    for name in ("done.sh", "prog.sh"):
        (sandbox / name).chmod(0o755)
    return ["./prog.sh"]


def _held(sandbox: Path, signum: int) -> bool:
    return any(e["event"] == "signal_held" and e.get("signal") == signum for e in events(sandbox))


def _order(sandbox: Path, *kinds_: str) -> list[int]:
    seen = [e["event"] for e in events(sandbox)]
    return [seen.index(k) for k in kinds_]


def _signal_while_settling(sandbox, proc, signum: int, what: str) -> None:
    """Send ``signum`` while the done command runs, wait until it is logged as held, let the
    command finish."""
    wait_line(proc, "ready")
    sleep_until((sandbox / "cmd.started").exists, 20, what="the done command started")
    os.kill(proc.pid, signum)
    sleep_until(lambda: _held(sandbox, signum), 20, what=what, context=lambda: "\n".join(kinds(sandbox)))
    (sandbox / "go").touch()


@pytest.mark.timeout(90)
def test_soft_kill_while_the_done_command_runs_is_received_at_once(sandbox):
    """The loop reads signals while a done rule's command decides whether the program finished:
    HTCondor's soft kill is received (and logged) before the command ends, then handled after the
    program's end, as before: the program finished, so its status (0) is reported."""
    program = _settle_job(sandbox)
    args = ["--checkpoint", "state", "--done-when", "command=./done.sh", "--kill-grace", "60"]
    with supervise(sandbox, args, program) as proc:
        _signal_while_settling(sandbox, proc, signal.SIGTERM, "the soft kill received while the done command runs")
        assert proc.wait(timeout=30) == 0
    settling, held, finished, evicting = _order(sandbox, "settling", "signal_held", "done_command_finished",
                                                "evicting")
    assert settling < held < finished < evicting
    assert not (sandbox / STORE).exists()  # nothing owed, nothing to keep: nothing committed


@pytest.mark.timeout(90)
def test_checkpoint_signal_while_the_done_command_runs_ends_in_the_checkpoint_status(sandbox):
    """HTCondor's checkpoint signal while the done command runs is received at once and still
    owes the checkpoint status (rule 8): the program finished (the command says so), its status
    is recorded in the store, 85 is reported, and the next start reports 0 without running it."""
    program = _settle_job(sandbox)
    args = ["--checkpoint", "state", "--done-when", "command=./done.sh", "--trigger-signal", "SIGUSR2"]
    with supervise(sandbox, args, program) as proc:
        _signal_while_settling(sandbox, proc, signal.SIGUSR2,
                               "the checkpoint signal received while the done command runs")
        assert proc.wait(timeout=30) == 85
    held, finished, recorded = _order(sandbox, "signal_held", "done_command_finished", "final_status_recorded")
    assert held < finished < recorded
    assert verify_store(sandbox)["final_status"] == 0
    assert run(sandbox, args, program).returncode == 0


@pytest.mark.timeout(90)
def test_a_done_command_gets_at_most_the_kill_grace_after_a_soft_kill(sandbox):
    """A soft kill while the done command runs gives it at most --kill-grace: then the command is
    killed and the program counts as not finished; after HTCondor's checkpoint signal that is the
    checkpoint status over the unchanged store (the job restarts from it), not a hold."""
    program = _settle_job(sandbox)
    args = ["--checkpoint", "state", "--done-when", "command=./done.sh", "--trigger-signal", "SIGUSR2",
            "--kill-grace", "1"]
    with supervise(sandbox, args, program) as proc:
        wait_line(proc, "ready")
        sleep_until((sandbox / "cmd.started").exists, 20, what="the done command started")
        os.kill(proc.pid, signal.SIGUSR2)
        sleep_until(lambda: _held(sandbox, signal.SIGUSR2), 20, what="the checkpoint signal held",
                    context=lambda: "\n".join(kinds(sandbox)))
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 85  # 'go' never comes: the grace ends the command
    assert "settling_stopped" in kinds(sandbox) and "interrupted" in kinds(sandbox)
    assert not any(e["event"] == "done_command_finished" and e.get("ok") for e in events(sandbox))
    assert "final_status" not in verify_store(sandbox)  # the store is kept: restart from scratch
    pid = int((sandbox / "cmd.started").read_text())
    try:  # the command was killed, not left behind (its pid may have been reused since)
        left = "done.sh" in " ".join(psutil.Process(pid).cmdline())
    except psutil.NoSuchProcess:
        left = False
    assert not left
