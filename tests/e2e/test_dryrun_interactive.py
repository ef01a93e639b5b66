"""--interactive driven through a real terminal (tmux send-keys / capture-pane)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import uuid

import pytest
from support.dryrun import counter_job, dryrun_cmd, job_env, tagged_alive
from support.helpers import kill_pids, sleep_until

from supervisor import exitstatus

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def tmux(*args: str) -> str:
    done = subprocess.run(["tmux", *args], check=False, capture_output=True, text=True, timeout=10)
    return done.stdout


@pytest.mark.timeout(60)
def test_interactive_keys(tmp_path):
    """Rule: while the job runs, single keys act at once: s prints the status, c sends the
    checkpoint signal, e evicts (a new execution follows), k crashes, q removes the job and the
    dry run exits DRYRUN_REMOVED."""
    submit = counter_job(
        tmp_path, '+WantCheckpointSignal = true\n+CheckpointSig = "SIGUSR2"',
        "--every 0 --total 100000 --step 0.05 --ckpt-on SIGUSR2")
    tag = uuid.uuid4().hex
    session = f"dryrun-{tag[:8]}"
    rc_file = tmp_path / "rc"
    env = job_env(tag)
    env["TMPDIR"] = str(tmp_path)  # a removed job keeps its work folder: not in /tmp
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()
                       if k in ("PYTHONPATH", "CKPT_TEST_TAG", "PATH", "CONDOR_CONFIG", "TMPDIR"))
    cmd = f"env {exports} {shlex.join(dryrun_cmd(submit, '--interactive'))}; " \
          f"echo $? > {shlex.quote(str(rc_file))}; sleep 30"
    tmux("new-session", "-d", "-s", session, "-x", "200", "-y", "50", cmd)

    def pane() -> str:
        return tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", session)

    try:
        def press(key: str, expect: str) -> None:
            tmux("send-keys", "-t", session, key)
            sleep_until(lambda: expect in pane(), timeout=10)

        witness = tmp_path / "witness"
        sleep_until(lambda: witness.exists() and "start 0" in witness.read_text(), timeout=15)
        press("s", "status: t=")  # the job has installed its SIGUSR2 handler by now

        def started(n: int) -> None:  # wait for the n-th start of the job (its handler is set)
            sleep_until(lambda: witness.read_text().count("start ") >= n, timeout=10)

        press("c", "checkpoint signal SIGUSR2 to pid")
        sleep_until(lambda: "checkpoint 1 uploaded" in pane(), timeout=10)
        started(2)
        press("e", "evicting: SIGTERM to pid")
        sleep_until(lambda: "execution 2 started" in pane(), timeout=10)
        started(3)
        press("k", "crashed: every process killed")
        sleep_until(lambda: "execution 3 started" in pane(), timeout=10)
        started(4)
        press("q", "removed")
        sleep_until(rc_file.exists, timeout=15)
        assert int(rc_file.read_text()) == exitstatus.DRYRUN_REMOVED, pane()
        sleep_until(lambda: not tagged_alive(tag), timeout=5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- pane ---\n{pane()}") from None
    finally:
        tmux("kill-session", "-t", session)
        kill_pids(tagged_alive(tag))
