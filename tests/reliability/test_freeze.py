"""Holding the program still while its checkpoint is copied (issue 12, item 1: ``--freeze``).

The rules: while the store copies the checkpoint, every process of the program is stopped; it
is always continued afterwards, also when the commit fails; a signal passed on to the program
meanwhile is delivered after the copy, not lost; a stopped tree still dies at an eviction.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from support.helpers import sleep_until
from support.relutil import STORE, kinds, supervise, tagged_env, tagged_pids, victim, wait_line


def proc_state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return "gone"
    return data[data.rfind(b")") + 2:][:1].decode()


def sample_while_staging(sandbox, pid: int, seen: list[str], stop: threading.Event) -> None:
    """Record the program's state each time a staging directory exists beside the store."""
    while not stop.is_set():
        if any(n.startswith(STORE + ".staging-") for n in os.listdir(sandbox)):
            seen.append(proc_state(pid))
        time.sleep(0.0005)


@pytest.mark.timeout(90)
def test_the_program_is_stopped_during_the_copy_continued_after_and_keeps_its_signals(sandbox):
    """A 48 MB checkpoint committed in watch mode (--min-run keeps the program running): while
    the staging directory exists the program is stopped (state T); a SIGUSR1 passed on during
    the copy reaches the program once it is continued; afterwards it runs again (not T)."""
    args = ["--checkpoint", "state", "--watch", "--complete-when", "quiet=0.2", "--min-run", "3600",
            "--kill-grace", "2"]
    prog = victim("--ckpt", "state", "--ckpt-on", "SIGUSR2", "--ckpt-bytes", str(48 << 20),
                  "--sleep", "60")
    tag = "freeze-continue"
    with supervise(sandbox, args, prog, env=tagged_env(tag)) as proc:
        pid = int(wait_line(proc, "ready").split()[1])
        seen: list[str] = []
        stop = threading.Event()
        sampler = threading.Thread(target=sample_while_staging, args=(sandbox, pid, seen, stop))
        sampler.start()
        try:
            os.kill(pid, signal.SIGUSR2)  # the program writes its checkpoint on its own
            sleep_until(lambda: "T" in seen or "committed" in kinds(sandbox), timeout=60, interval=0.0005)
            os.kill(proc.pid, signal.SIGUSR1)  # passed on to the program during (or after) the copy
            sleep_until(lambda: "committed" in kinds(sandbox), timeout=60)
        finally:
            stop.set()
            sampler.join()
        assert "T" in seen, f"the program was never seen stopped during the copy: {sorted(set(seen))}"
        assert wait_line(proc, "signal 10", timeout=20)
        sleep_until(lambda: proc_state(pid) in ("S", "R"), timeout=10)
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    assert tagged_pids(tag) == []


@pytest.mark.timeout(90)
def test_a_program_stopped_for_the_copy_still_dies_at_an_eviction(sandbox):
    """An eviction (SIGTERM) while the program is held for a 48 MB copy, the program ignoring
    SIGTERM, --kill-grace 0.5: the commit ends, the tree is killed, the supervisor exits and no
    process of the program is left, stopped or not."""
    args = ["--checkpoint", "state", "--watch", "--complete-when", "quiet=0.2", "--min-run", "3600",
            "--kill-grace", "0.5"]
    prog = victim("--ckpt", "state", "--ckpt-on", "SIGUSR2", "--ckpt-bytes", str(48 << 20),
                  "--ignore", "SIGTERM", "--sleep", "60")
    tag = "freeze-evict"
    with supervise(sandbox, args, prog, env=tagged_env(tag)) as proc:
        pid = int(wait_line(proc, "ready").split()[1])
        os.kill(pid, signal.SIGUSR2)
        sleep_until(lambda: proc_state(pid) == "T" or "committed" in kinds(sandbox), timeout=60,
                    interval=0.0005)
        os.kill(proc.pid, signal.SIGTERM)
        status = proc.wait(timeout=30)
    assert status == 128 + signal.SIGKILL, proc.stderr.read()
    assert tagged_pids(tag) == []


@pytest.mark.timeout(90)
def test_a_stop_signal_passed_on_during_the_hold_is_not_undone_by_the_thaw(sandbox):
    """SIGTSTP passed on to the program while it is held for the copy: the kernel discards a
    pending stop signal when SIGCONT is sent (even one the program catches), so it is held back
    and sent after the thaw: the program (which catches and echoes it) still gets it."""
    args = ["--checkpoint", "state", "--watch", "--complete-when", "quiet=0.2", "--min-run", "3600",
            "--kill-grace", "2"]
    prog = victim("--ckpt", "state", "--ckpt-on", "SIGUSR2", "--ckpt-bytes", str(48 << 20), "--sleep", "60")
    tag = "freeze-tstp"
    with supervise(sandbox, args, prog, env=tagged_env(tag)) as proc:
        pid = int(wait_line(proc, "ready").split()[1])
        os.kill(pid, signal.SIGUSR2)
        sleep_until(lambda: proc_state(pid) == "T" or "committed" in kinds(sandbox), timeout=60,
                    interval=0.0005)
        os.kill(proc.pid, signal.SIGTSTP)  # passed on to the program's group
        assert wait_line(proc, f"signal {int(signal.SIGTSTP)}", timeout=30)
        sleep_until(lambda: "committed" in kinds(sandbox), timeout=60)
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    assert tagged_pids(tag) == []
