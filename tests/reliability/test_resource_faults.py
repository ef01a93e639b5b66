"""Resource faults, end to end through ``ckpt-supervisor run`` (issue 6, "Resource faults").

The rules, for every fault: the documented status (74 when the store cannot be written or read),
a clear message naming the cause, the previous committed checkpoint never damaged, and never the
checkpoint status (85) unless a commit really succeeded.

Real faults, not simulated ones: a small tmpfs (ENOSPC), a read-only bind mount (EROFS), a file
an unprivileged user cannot read. Root reads any file whatever its mode, so for "unreadable" the
supervisor runs as ``nobody`` (``setpriv``, with the system's /usr/bin/python3, since the test's
interpreter may sit under /root); no LD_PRELOAD or fault-injecting FS is involved: those are in
tests/reliability/test_store_faults.py. Each test skips with the reason when mounting or dropping privileges
is not permitted, and always unmounts in ``finally``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from support.helpers import ROOT, supervisor_cmd
from support.relutil import (
    CHECKPOINT_STATUS,
    ENV,
    STORE,
    complete_value,
    kinds,
    mounted,
    remount_ro,
    run,
    supervise,
    tree_digest,
    verify_store,
    victim,
    wait_line,
)

INSPECT = ["--checkpoint", "state", "--inspect-on-exit", "0", "-q"]


def write_state(value: int, filler: int = 100) -> str:
    """A shell command that writes a complete victim checkpoint of about ``filler`` bytes."""
    return (f"{{ echo {value}; head -c {filler} /dev/zero | tr '\\0' x; echo; echo 'end {value}'; }} "
            f"> state.tmp && mv state.tmp state")


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if any(t in p.name for t in (".staging-", ".old-", ".trash-")))


# ---------------------------------------------------------------------------------------------
# ENOSPC


@pytest.mark.timeout(60)
def test_enospc_during_a_commit_while_the_program_runs(tmp_path):
    """A commit that hits ENOSPC (2 MiB tmpfs) while the program keeps running: the failure is
    logged naming ENOSPC, the previous checkpoint stays byte for byte, no staging is left, the
    program keeps running; evicted (SIGTERM) after HTCondor's checkpoint signal it exits 4, and the
    supervisor reports the checkpoint status over the unchanged store (rule 8, never the 4 that
    HTCondor would hold the job for)."""
    with mounted(["-t", "tmpfs", "-o", "size=2m", "tmpfs"], tmp_path / "small") as mnt:
        first = run(mnt, INSPECT, ["sh", "-c", write_state(0, 200_000)])
        assert first.returncode == CHECKPOINT_STATUS, first.stderr
        digest = tree_digest(mnt / STORE)
        args = ["--checkpoint", "state", "--trigger-signal", "SIGUSR2", "--job-signal", "SIGUSR1",
                "--complete-when", "marker=mark", "--kill-grace", "2"]
        prog = victim("--ckpt", "state", "--ckpt-on", "SIGUSR1", "--marker", "mark", "--sleep", "60",
                      "--exit-on", "SIGTERM:4", "--ckpt-bytes", str(1_100_000))
        with supervise(mnt, args, prog) as proc:
            wait_line(proc, "ready")
            os.kill(proc.pid, signal.SIGUSR2)
            from support.helpers import sleep_until

            sleep_until(lambda: "commit_failed" in kinds(mnt), timeout=30)
            assert proc.poll() is None  # still running
            os.kill(proc.pid, signal.SIGTERM)
            status = proc.wait(timeout=20)
            stderr = proc.stderr.read()
        assert status == CHECKPOINT_STATUS, stderr
        assert "ENOSPC" in stderr and "intact" in stderr, stderr
        assert "1 commit(s) failed in this run" in stderr, stderr
        assert tree_digest(mnt / STORE) == digest
        assert leftovers(mnt) == []


@pytest.mark.timeout(60)
def test_enospc_during_restore_stops_before_the_program_starts(tmp_path):
    """Restoring needs room for a temporary copy: on a full tmpfs the start fails with 74 and
    one message naming ENOSPC; the program is not started and the store stays intact."""
    with mounted(["-t", "tmpfs", "-o", "size=2m", "tmpfs"], tmp_path / "small") as mnt:
        first = run(mnt, INSPECT, ["sh", "-c", write_state(0, 600_000)])
        assert first.returncode == CHECKPOINT_STATUS, first.stderr
        digest = tree_digest(mnt / STORE)
        with open(mnt / "filler", "wb") as f, contextlib.suppress(OSError):
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        proc = run(mnt, INSPECT, ["sh", "-c", "echo started; exit 0"])
        assert proc.returncode == 74, proc.stderr
        assert "ENOSPC" in proc.stderr and "started" not in proc.stdout
        assert tree_digest(mnt / STORE) == digest
        (mnt / "filler").unlink()
        verify_store(mnt)


# ---------------------------------------------------------------------------------------------
# EROFS


@pytest.mark.timeout(60)
def test_erofs_during_a_commit_the_store_on_a_read_only_mount(tmp_path):
    """The store's file system is read-only (a read-only bind mount): the start finds out before
    the program runs (a probe, issue 12.5) and exits 74 naming the store and EROFS; the committed
    store is untouched."""
    src = tmp_path / "src"
    src.mkdir()
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    first = run(sandbox, [*INSPECT, "--store", str(src / STORE)], ["sh", "-c", write_state(0)])
    assert first.returncode == CHECKPOINT_STATUS, first.stderr
    digest = tree_digest(src / STORE)
    (sandbox / "state").unlink(missing_ok=True)  # a commit after the exit may move it
    with mounted(["--bind", str(src)], tmp_path / "ro") as ro:
        remount_ro(ro)
        proc = run(sandbox, [*INSPECT, "--store", str(ro / STORE)],
                   ["sh", "-c", f"touch started; test -f state && {write_state(1)}"])
        assert proc.returncode == 74, proc.stderr
        assert "EROFS" in proc.stderr or "Read-only" in proc.stderr, proc.stderr
        assert "--store" in proc.stderr and not (sandbox / "started").exists()
    assert tree_digest(src / STORE) == digest


@pytest.mark.timeout(60)
def test_erofs_during_restore_the_sandbox_read_only(tmp_path):
    """The sandbox itself is read-only: restoring into it fails with 74 naming EROFS, the program
    is not started, the store (readable) is intact."""
    src = tmp_path / "src"
    src.mkdir()
    first = run(src, INSPECT, ["sh", "-c", write_state(0)])
    assert first.returncode == CHECKPOINT_STATUS, first.stderr
    (src / "state").unlink(missing_ok=True)  # a commit after the exit may move it
    digest = tree_digest(src / STORE)
    with mounted(["--bind", str(src)], tmp_path / "ro") as ro:
        remount_ro(ro)
        proc = subprocess.run(supervisor_cmd("run", *INSPECT, "--", "sh", "-c", "echo started"), cwd=ro,
                              env=ENV, capture_output=True, text=True, timeout=30)
        assert proc.returncode == 74, proc.stderr
        assert "EROFS" in proc.stderr or "Read-only" in proc.stderr, proc.stderr
        assert "started" not in proc.stdout
    assert tree_digest(src / STORE) == digest


# ---------------------------------------------------------------------------------------------
# unreadable files: run as nobody, so that a mode of 000 means something


@pytest.fixture
def world_dir():
    """A sandbox that the user nobody can enter (pytest's own tmp dirs are 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix="ckpt-rel-"))
    path.chmod(0o777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        shutil.rmtree(path.parent / (path.name + "-libs"), ignore_errors=True)


def as_nobody(sandbox: Path, args: list[str], program: list[str]) -> subprocess.CompletedProcess:
    python = "/usr/bin/python3"
    if not (shutil.which("setpriv") and os.access(python, os.X_OK)):
        pytest.skip("needs setpriv and /usr/bin/python3 to run the supervisor as nobody")
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to the user nobody")
    # the supervisor's dependencies, where nobody can read them (our site-packages may be under /root)
    libs = sandbox.parent / (sandbox.name + "-libs")
    if not libs.exists():
        import psutil
        import tenacity

        for mod in (tenacity, psutil):
            shutil.copytree(Path(mod.__file__).parent, libs / mod.__name__)
        for dirpath, dirnames, filenames in os.walk(libs):
            for name in dirnames + filenames:
                Path(dirpath, name).chmod(0o755)
        libs.chmod(0o755)
    pythonpath = f"PYTHONPATH={ROOT}:{libs}"
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env", pythonpath,
           python, "-m", "supervisor", "run", *args, "--", *program]
    probe = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env",
                            pythonpath, python, "-c", "import supervisor.loop, tenacity"],
                           capture_output=True, text=True, cwd=sandbox)
    if probe.returncode:
        pytest.skip(f"the user nobody cannot import the supervisor here: {probe.stderr.strip()[-200:]}")
    return subprocess.run(cmd, cwd=sandbox, capture_output=True, text=True, timeout=60)


@pytest.mark.timeout(60)
def test_unreadable_checkpoint_file_refuses_the_commit(world_dir):
    """The program leaves its checkpoint unreadable (mode 000; we run as nobody): the commit fails
    with 74 and a message naming EACCES and the file; the previous checkpoint is intact."""
    first = as_nobody(world_dir, INSPECT, ["sh", "-c", write_state(0)])
    assert first.returncode == CHECKPOINT_STATUS, first.stderr
    digest = tree_digest(world_dir / STORE)
    proc = as_nobody(world_dir, INSPECT, ["sh", "-c", f"{write_state(1)}; chmod 000 state"])
    assert proc.returncode == 74, proc.stderr
    assert "EACCES" in proc.stderr and "state" in proc.stderr, proc.stderr
    assert tree_digest(world_dir / STORE) == digest


@pytest.mark.timeout(60)
def test_unreadable_file_in_the_store_is_a_store_error_not_corruption(world_dir):
    """A committed file that cannot be read (mode 000, as nobody) at start: 74 naming EACCES; the
    store is neither moved aside as corrupt nor changed, and the program is not started."""
    first = as_nobody(world_dir, INSPECT, ["sh", "-c", write_state(0)])
    assert first.returncode == CHECKPOINT_STATUS, first.stderr
    (world_dir / STORE / "state").chmod(0)
    digest = tree_digest(world_dir / STORE)
    proc = as_nobody(world_dir, INSPECT, ["sh", "-c", "echo started"])
    assert proc.returncode == 74, proc.stderr
    assert "EACCES" in proc.stderr and "started" not in proc.stdout, proc.stderr
    assert not [p for p in world_dir.iterdir() if ".corrupt-" in p.name]
    assert tree_digest(world_dir / STORE) == digest


# Formerly a bug, found by this suite and fixed: fifo_bug (see docs/reliability.md).


@pytest.mark.timeout(60)
def test_checkpoint_path_that_is_a_fifo_is_never_reported_as_a_checkpoint(sandbox):
    """A program that leaves a FIFO where its checkpoint file should be: nothing readable was
    checkpointed, so the supervisor must not report 85 (74, naming the path, is expected)."""
    proc = run(sandbox, INSPECT, ["sh", "-c", "rm -f state; mkfifo state"], timeout=30)
    assert proc.returncode != CHECKPOINT_STATUS
    assert proc.returncode == 74 and "state" in proc.stderr, proc.stderr


# ---------------------------------------------------------------------------------------------
# the store replaced by a plain file; the sandbox removed under us


@pytest.mark.timeout(60)
def test_store_replaced_by_a_plain_file_at_start_is_moved_aside(sandbox):
    """A plain file where the store directory should be (a damaged transfer): it does not verify,
    so it is moved aside (kept, never deleted) and the program starts from scratch."""
    (sandbox / STORE).write_text("not a store")
    proc = run(sandbox, INSPECT, ["sh", "-c", write_state(5)])
    assert proc.returncode == CHECKPOINT_STATUS, proc.stderr
    assert "moved aside" in proc.stderr
    aside = [p for p in sandbox.iterdir() if p.name.startswith(STORE + ".corrupt")]
    assert len(aside) == 1 and aside[0].read_text() == "not a store"
    assert complete_value((sandbox / STORE / "state").read_text()) == 5


@pytest.mark.timeout(60)
def test_store_replaced_by_a_plain_file_during_the_run(sandbox):
    """The store is replaced by a plain file while the program runs, then the program commits:
    either the commit fails (74, the file kept) or it succeeds and the store verifies with the new
    checkpoint; 85 only in the second case."""
    first = run(sandbox, INSPECT, ["sh", "-c", write_state(0)])
    assert first.returncode == CHECKPOINT_STATUS
    script = f"rm -rf {STORE}; echo 'not a store' > {STORE}; {write_state(1)}"
    proc = run(sandbox, INSPECT, ["sh", "-c", script])
    if proc.returncode == CHECKPOINT_STATUS:
        assert complete_value((sandbox / STORE / "state").read_text()) == 1
        verify_store(sandbox)
    else:
        assert proc.returncode == 74, proc.stderr
        assert (sandbox / STORE).read_text() == "not a store\n"
    print(f"store replaced by a file during the run: status {proc.returncode}")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["program-exits", "signal-trigger"])
def test_sandbox_removed_under_us(tmp_path, how):
    """The whole sandbox (store included) is removed while the program runs: no checkpoint can
    be committed; the status is the program's own or 74, never 85, never an internal error."""
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    first = run(sandbox, INSPECT, ["sh", "-c", write_state(0)])
    assert first.returncode == CHECKPOINT_STATUS
    events = tmp_path / "events.jsonl"
    if how == "program-exits":
        proc = subprocess.run(supervisor_cmd("run", "--events", str(events), *INSPECT, "--", "sh", "-c",
                                             f"{write_state(1)}; rm -rf {sandbox}; exit 0"),
                              cwd=sandbox, env=ENV, capture_output=True, text=True, timeout=30)
        status, stderr = proc.returncode, proc.stderr
        # the checkpoint vanished with the sandbox: not a checkpoint, the program's own 0 stands
        assert status in (0, 74), stderr
    else:
        args = ["--events", str(events), "--checkpoint", "state", "--trigger-signal", "SIGUSR2",
                "--job-signal", "SIGUSR1", "--complete-when", "marker=mark", "--kill-grace", "2"]
        prog = victim("--ckpt", "state", "--ckpt-on", "SIGUSR1", "--marker", "mark", "--sleep", "60",
                      "--exit-on", "SIGTERM:4")
        from support.helpers import sleep_until, spawned

        with spawned(supervisor_cmd("run", *args, "--", *prog), cwd=sandbox, env=ENV,
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
            wait_line(p, "ready")
            shutil.rmtree(sandbox)
            os.kill(p.pid, signal.SIGUSR2)
            sleep_until(lambda: "commit_failed" in events.read_text() or p.poll() is not None, timeout=20)
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
            status = p.wait(timeout=20)
            stderr = p.stderr.read()
        # the program itself may crash, unable to write its checkpoint (its traceback passes through)
        assert status not in (CHECKPOINT_STATUS, 70), stderr
        assert "commit_failed" in events.read_text()
    assert "internal error" not in stderr
    last = (stderr.strip().splitlines() or [""])[-1]
    print(f"sandbox removed ({how}): status {status}: {last}")
