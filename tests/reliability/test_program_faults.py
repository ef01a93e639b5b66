"""Program faults, end to end through ``ckpt-supervisor run`` (issue 6, "Program faults").

The rules: whatever the program does, nothing half-written is ever committed, the previous
committed checkpoint is never damaged, every process of the program is gone when the supervisor
exits, output is passed through without loss or deadlock, and the checkpoint status (85) is
reported only after a commit that really succeeded.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest
from support.helpers import alive, sleep_until
from support.relutil import (
    CHECKPOINT_STATUS,
    STORE,
    VALIDATE,
    MiB,
    complete_value,
    events,
    kinds,
    one_line_error,
    run,
    supervise,
    tagged_env,
    tagged_pids,
    tree_digest,
    verify_store,
    victim,
    wait_line,
)

SIGNAL_TRIGGER = ["--checkpoint", "state", "--trigger-signal", "SIGUSR2", "--job-signal", "SIGUSR1"]
CKPT_VICTIM = ("--ckpt", "state", "--ckpt-on", "SIGUSR1", "--marker", "mark", "--sleep", "60")


def commit_once(sandbox: Path) -> str:
    """A first, good commit (value 0); returns the store's digest."""
    with supervise(sandbox, [*SIGNAL_TRIGGER, "--complete-when", "marker=mark"], victim(*CKPT_VICTIM)) as proc:
        wait_line(proc, "ready")
        os.kill(proc.pid, signal.SIGUSR2)
        assert proc.wait(timeout=20) == CHECKPOINT_STATUS, proc.stderr.read()
    assert verify_store(sandbox)["sequence"] == 1
    assert complete_value((sandbox / STORE / "state").read_text()) == 0
    return tree_digest(sandbox / STORE)


# ---------------------------------------------------------------------------------------------
# crash mid-checkpoint


@pytest.mark.timeout(60)
def test_crash_mid_checkpoint_after_the_checkpoint_signal_commits_no_half_file(sandbox):
    """The program dies (SIGSEGV) half-way through writing its checkpoint after HTCondor's
    checkpoint signal: the half-written file is not committed, the previous checkpoint's files stay
    byte for byte, the crash is recorded as the final status and reported (139) at the next start
    (rule 4: after the checkpoint signal the job must exit with 85, so it does)."""
    commit_once(sandbox)
    files_before = (sandbox / STORE / "state").read_bytes()
    with supervise(sandbox, [*SIGNAL_TRIGGER, "--complete-when", "marker=mark"],
                   victim(*CKPT_VICTIM, "--ckpt-bytes", "400000", "--crash-in-ckpt", "SIGSEGV")) as proc:
        wait_line(proc, "ready")
        os.kill(proc.pid, signal.SIGUSR2)
        status = proc.wait(timeout=20)
        stderr = proc.stderr.read()
    assert status == CHECKPOINT_STATUS, stderr
    # the working file is half written ...
    with pytest.raises(AssertionError, match="incomplete"):
        complete_value((sandbox / "state").read_text())
    # ... the store still holds the previous, complete one, now marked finished with 128+11
    assert (sandbox / STORE / "state").read_bytes() == files_before
    state = verify_store(sandbox)
    assert state["final_status"] == 128 + signal.SIGSEGV
    again = run(sandbox, SIGNAL_TRIGGER, victim(*CKPT_VICTIM))
    assert again.returncode == 128 + signal.SIGSEGV, again.stderr
    assert "ready" not in again.stdout  # not run again


@pytest.mark.timeout(60)
def test_crash_mid_checkpoint_on_our_timer_reports_the_crash_and_keeps_the_store(sandbox):
    """A crash mid-checkpoint asked by our own timer (--every): the crash status (128+11) is
    reported, nothing is committed, the previous store is untouched (same digest)."""
    digest = commit_once(sandbox)
    # --every 2: the program's interpreter has 2 s to set its SIGUSR1 handler (the job signal
    # before that would kill it with 138 and test something else)
    proc = run(sandbox, ["--checkpoint", "state", "--every", "2", "--job-signal", "SIGUSR1",
                         "--complete-when", "marker=mark"],
               victim(*CKPT_VICTIM, "--ckpt-bytes", "400000", "--crash-in-ckpt", "SIGSEGV"))
    assert proc.returncode == 128 + signal.SIGSEGV, proc.stderr
    assert "committed" not in kinds(sandbox)[-5:]
    assert tree_digest(sandbox / STORE) == digest


# ---------------------------------------------------------------------------------------------
# truncated checkpoint


@pytest.mark.timeout(60)
def test_truncated_checkpoint_is_rejected_by_the_validator_and_never_committed(sandbox):
    """A checkpoint without its last line fails --complete-when command=VALIDATOR: nothing is
    committed (store digest unchanged) and --on-timeout fail ends the run with 75, never 85."""
    digest = commit_once(sandbox)
    (sandbox / "events.jsonl").unlink()
    with supervise(sandbox, [*SIGNAL_TRIGGER, "--complete-when", f"command={VALIDATE}",
                             "--checkpoint-timeout", "2", "--on-timeout", "fail"],
                   victim(*CKPT_VICTIM, "--truncate-ckpt")) as proc:
        wait_line(proc, "ready")
        os.kill(proc.pid, signal.SIGUSR2)
        status = proc.wait(timeout=20)
        stderr = proc.stderr.read()
    assert status == 75, stderr
    evs = events(sandbox)
    # the validator may run more than once (a later write wakes the rules again); it never passes
    oks = [e["ok"] for e in evs if e["event"] == "validator_finished"]
    assert oks and not any(oks), oks
    assert "committed" not in [e["event"] for e in evs]
    assert tree_digest(sandbox / STORE) == digest
    assert complete_value((sandbox / STORE / "state").read_text()) == 0


# ---------------------------------------------------------------------------------------------
# a program that ignores the soft kill


@pytest.mark.timeout(60)
def test_program_ignoring_sigterm_is_sigkilled_after_the_grace(sandbox):
    """SIGTERM is passed on; a program that ignores it is SIGKILLed (with its tree) after
    --kill-grace, and the supervisor reports 137 no sooner than the grace and soon after it."""
    tag = "ignore-term"
    grace = 1.5
    with supervise(sandbox, ["--kill-grace", str(grace)],
                   victim("--ignore", "SIGTERM", "--sleep", "60", "--children", "3"),
                   env=tagged_env(tag)) as proc:
        wait_line(proc, "ready")
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        status = proc.wait(timeout=grace + 10)
        elapsed = time.monotonic() - t0
        left = tagged_pids(tag)
    assert status == 128 + signal.SIGKILL, proc.stderr.read()
    assert elapsed >= grace, elapsed  # never before the grace; how soon after is up to the machine
    assert left == []


# ---------------------------------------------------------------------------------------------
# wide process trees and escaped daemons


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["program-exits", "evicted", "checkpointed"])
def test_fifty_children_and_a_setsid_daemon_are_all_gone(sandbox, how):
    """The program forks 50 children and a double-forked setsid daemon: whether it exits by
    itself, is evicted, or is checkpointed (85), no process of it survives the supervisor
    (checked with psutil over the whole system, by an environment tag)."""
    tag = f"tree-{how}"
    daemon = sandbox / "daemon.pid"
    args = [*SIGNAL_TRIGGER, "--complete-when", "marker=mark", "--kill-grace", "2"]
    # the program exits by itself when the test sends it SIGHUP (straight, not through us), once
    # the whole tree was counted
    exit_on = {"program-exits": "SIGHUP:0", "evicted": "SIGTERM:9", "checkpointed": "SIGHUP:1"}[how]
    prog = victim(*CKPT_VICTIM, "--children", "50", "--setsid-grandchild", str(daemon), "--exit-on", exit_on)
    with supervise(sandbox, args, prog, env=tagged_env(tag)) as proc:
        program_pid = int(wait_line(proc, "ready").split()[1])
        sleep_until(daemon.exists)
        daemon_pid = int(daemon.read_text())
        assert alive(daemon_pid)
        assert len(tagged_pids(tag)) >= 52  # supervisor, program, 50 children, daemon
        if how == "program-exits":
            os.kill(program_pid, signal.SIGHUP)
        elif how == "evicted":
            os.kill(proc.pid, signal.SIGTERM)
        elif how == "checkpointed":
            os.kill(proc.pid, signal.SIGUSR2)
        status = proc.wait(timeout=30)
        left = tagged_pids(tag)
        stderr = proc.stderr.read()
    assert status == {"program-exits": 0, "evicted": 9, "checkpointed": CHECKPOINT_STATUS}[how], stderr
    assert left == [], f"left alive: {left}"
    assert not alive(daemon_pid)


# ---------------------------------------------------------------------------------------------
# the program exits while a big commit runs


@pytest.mark.timeout(90)
def test_program_exits_while_a_200_mb_commit_runs(sandbox):
    """The program exits (status 3) while its 200 MB checkpoint is being committed: the commit
    completes, the store verifies with the whole checkpoint, no process is left, and the
    checkpoint status is reported (the trigger was HTCondor's checkpoint signal)."""
    tag = "exit-in-commit"
    size = 200 * MiB
    with supervise(sandbox, [*SIGNAL_TRIGGER, "--complete-when", "marker=mark"],
                   victim(*CKPT_VICTIM, "--ckpt-bytes", str(size), "--exit-on", "SIGHUP:3"),
                   env=tagged_env(tag)) as proc:
        ready = wait_line(proc, "ready")
        program_pid = int(ready.split()[1])
        os.kill(proc.pid, signal.SIGUSR2)
        staging = sleep_until(lambda: [p for p in sandbox.iterdir() if ".staging-" in p.name], timeout=30)
        os.kill(program_pid, signal.SIGHUP)  # straight to the program, not through us
        exited_at = time.monotonic()
        status = proc.wait(timeout=60)
        waited = time.monotonic() - exited_at
        left = tagged_pids(tag)
        stderr = proc.stderr.read()
    assert staging
    assert status == CHECKPOINT_STATUS, stderr
    assert left == []
    kinds_ = kinds(sandbox)
    assert kinds_.index("committed") > kinds_.index("checkpoint_complete")
    assert verify_store(sandbox)["sequence"] == 1
    assert (sandbox / STORE / "state").stat().st_size == (sandbox / "state").stat().st_size > size
    print(f"exit during commit: supervisor exited {waited:.2f} s after the program")


# ---------------------------------------------------------------------------------------------
# a flood of output while a log= rule scans it


FLOOD_LINE_OUT = b"o" * 1023 + b"\n"  # as tests/victims/victim.py writes them
FLOOD_LINE_ERR = b"e" * 1023 + b"\n"


def _count_into(stream, sink: bytearray) -> None:
    while True:
        chunk = stream.read1(1 << 20) if hasattr(stream, "read1") else stream.read(1 << 20)
        if not chunk:
            return
        sink.extend(chunk)


@pytest.mark.timeout(120)
def test_100_mb_on_stdout_and_stderr_while_checkpointing_with_a_log_rule(sandbox):
    """100 MB to stdout and 100 MB to stderr during a checkpoint, with --complete-when log=...:
    no deadlock, every byte passes through (counted), the log line is seen, 85 is reported."""
    flood = 100 * MiB
    out, err = bytearray(), bytearray()
    with supervise(sandbox, [*SIGNAL_TRIGGER, "--complete-when", "log=^checkpointed", "-q"],
                   victim(*CKPT_VICTIM, "--flood", str(flood)), text=False) as proc:
        readers = [threading.Thread(target=_count_into, args=(proc.stdout, out)),
                   threading.Thread(target=_count_into, args=(proc.stderr, err))]
        for t in readers:
            t.start()
        sleep_until(lambda: b"ready" in out)
        t0 = time.monotonic()
        os.kill(proc.pid, signal.SIGUSR2)
        status = proc.wait(timeout=100)
        elapsed = time.monotonic() - t0
        for t in readers:
            t.join(timeout=30)
    lines = flood // len(FLOOD_LINE_OUT)
    assert status == CHECKPOINT_STATUS, bytes(err[-2000:]).decode(errors="replace")
    assert out.count(FLOOD_LINE_OUT) == lines
    assert err.count(FLOOD_LINE_ERR) == lines
    assert b"checkpointed 0" in out
    assert verify_store(sandbox)["sequence"] == 1
    print(f"flood: 2 x {flood / MiB:.0f} MiB passed through in {elapsed:.2f} s")


# ---------------------------------------------------------------------------------------------
# the checkpoint path is a symlink out of the sandbox


@pytest.fixture
def outside(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("outside") / "real-state"
    target.write_text("0\nx\nend 0\n")
    return target


@pytest.mark.timeout(60)
def test_symlink_out_of_the_sandbox_at_start_is_refused_in_one_line(sandbox, outside):
    """The store refuses a checkpoint path that is a symlink out of the sandbox (HTCondor would not
    transfer the target): one line naming the path and the reason, status 64, the program never
    started, the previous committed store untouched."""
    digest = commit_once(sandbox)
    (sandbox / "state").unlink(missing_ok=True)  # a commit after the exit may move it
    (sandbox / "state").symlink_to(outside)
    proc = run(sandbox, [*SIGNAL_TRIGGER], victim(*CKPT_VICTIM))
    assert proc.returncode == 64
    line = one_line_error(proc.stderr)
    assert "'state'" in line and "symlink" in line and "outside the sandbox" in line, line
    assert "ready" not in proc.stdout
    assert tree_digest(sandbox / STORE) == digest
    assert outside.read_text() == "0\nx\nend 0\n"


@pytest.mark.timeout(60)
def test_symlink_made_by_the_program_is_refused_at_commit(sandbox, outside):
    """A program that replaces its checkpoint by a symlink out of the sandbox during the run:
    the commit is refused with a message naming it, status 74, nothing committed."""
    script = f"rm -f state; ln -s {outside} state; exit 0"
    proc = run(sandbox, ["--checkpoint", "state", "--inspect-on-exit", "0", "-q"], ["sh", "-c", script])
    assert proc.returncode == 74, proc.stderr
    assert "symlink" in proc.stderr and "outside the sandbox" in proc.stderr
    assert not (sandbox / STORE).exists()
