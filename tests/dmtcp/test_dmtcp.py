"""``run --dmtcp``: programs that cannot checkpoint at all, checkpointed and resumed by DMTCP.

Skipped where DMTCP is not installed (CI unpacks ../shared/dmtcp and puts it on PATH, or sets
CKPT_DMTCP_PREFIX). Every test resumes in a sandbox at another path, as HTCondor does at each
execution, and compares with an uninterrupted run byte for byte.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import psutil
import pytest
from support.dmtcp_programs import C_MEMORY, C_THREADS, PY_MEMORY, PY_PIPE
from support.helpers import ROOT, kill_pids, pid_tree, sleep_until

from supervisor import dmtcp

BIN = dmtcp.available()
pytestmark = pytest.mark.skipif(BIN is None, reason="DMTCP is not installed (no dmtcp_launch on PATH "
                                "or in $CKPT_DMTCP_PREFIX)")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    env.pop("_CONDOR_JOB_AD", None)
    return env


def _program(kind: str, folder: Path, steps: int) -> list[str]:
    """The command line of one test program, written (and compiled) into ``folder``."""
    if kind in ("python", "pipe"):
        (folder / "prog.py").write_text(PY_MEMORY if kind == "python" else PY_PIPE)
        return [sys.executable, "prog.py", str(steps)]
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc) to build the test program")
    (folder / "prog.c").write_text(C_MEMORY if kind == "c" else C_THREADS)
    subprocess.run([cc, "-O1", "-pthread", "-o", str(folder / "prog"), str(folder / "prog.c")], check=True)
    return ["./prog", str(steps)]


def _tree(pid: int) -> dict[int, float]:
    """The processes of ``pid``'s tree, by PID and start time (a PID can be reused on a busy machine)."""
    out: dict[int, float] = {}
    for p in pid_tree(pid):
        with contextlib.suppress(psutil.Error):
            out[p] = psutil.Process(p).create_time()
    return out


def _supervise(sandbox: Path, options: list[str], program: list[str], *,
               send: Optional[int] = None, after_lines: int = 5,
               timeout: float = 60) -> tuple[int, dict[int, float]]:
    """Run the supervisor in ``sandbox``; send ``send`` once the program printed ``after_lines``
    lines. Returns (exit status, every process seen in its tree)."""
    argv = [sys.executable, "-m", "supervisor", "run", "--dmtcp", "--events", "events.jsonl", *options,
            "--", *program]
    seen: dict[int, float] = {}
    with open(sandbox / "out.txt", "ab") as out, open(sandbox / "err.txt", "ab") as err:
        proc = subprocess.Popen(argv, cwd=sandbox, env=_env(), stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        if send is not None:
            def printed() -> bool:
                seen.update(_tree(proc.pid))
                return (sandbox / "out.txt").read_bytes().count(b"\n") >= after_lines
            sleep_until(printed, timeout=timeout)
            proc.send_signal(send)
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            seen.update(_tree(proc.pid))
            time.sleep(0.02)
        status = proc.wait(timeout=1)
    finally:
        if proc.poll() is None:  # (once reaped, its PID may be another process's)
            seen.update(_tree(proc.pid))
            kill_pids(sorted(_tree(proc.pid)))
            kill_pids(_left(seen))
            proc.wait(timeout=10)
    return status, seen


def _left(seen: dict[int, float]) -> list[int]:
    """The processes seen in the tree that are still alive (the same process, not a reused PID)."""
    out = []
    for p, started in seen.items():
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(p)
            if proc.create_time() == started and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
    return out


def _reference(kind: str, tmp_path: Path, steps: int) -> tuple[bytes, bytes]:
    ref = tmp_path / "reference"
    ref.mkdir()
    argv = _program(kind, ref, steps)
    stdout = subprocess.run(argv, cwd=ref, check=True, capture_output=True, timeout=60).stdout
    return stdout, (ref / "result.txt").read_bytes()


TRIGGERS = {
    "signal": (["--trigger-signal", "SIGUSR1"], signal.SIGUSR1),
    "every": (["--every", "1.5"], None),
    "evict": (["--checkpoint-on-evict", "30"], signal.SIGTERM),
}


def _checkpoint_and_resume(kind: str, trigger: str, tmp_path: Path, steps: int = 60) -> dict[str, object]:
    ref_out, ref_result = _reference(kind, tmp_path, steps)
    first = tmp_path / "execute-1"
    first.mkdir()
    program = _program(kind, first, steps)
    options, sig = TRIGGERS[trigger]
    status, pids = _supervise(first, options, program, send=sig)
    assert status == 85, (first / "err.txt").read_text()
    assert _left(pids) == [], "a coordinator or program process outlived the supervisor"
    assert not (first / "result.txt").exists(), "the program finished before its checkpoint"
    state = json.loads((first / "checkpoint.atomic" / "state.json").read_text())
    token = state["dmtcp_token"]
    assert not Path(f"/tmp/ckpt-dmtcp-{token}").exists(), "the work directory was left behind"
    events = [json.loads(line) for line in (first / "events.jsonl").read_text().splitlines()]
    ckpt = next(e for e in events if e["event"] == "dmtcp_checkpoint")

    # the next execution: a sandbox at another path, holding the program and the store
    second = tmp_path / "elsewhere" / "execute-2"
    second.mkdir(parents=True)
    for name in os.listdir(first):
        if name.startswith("prog"):
            shutil.copy2(first / name, second / name)
    shutil.copytree(first / "checkpoint.atomic", second / "checkpoint.atomic", symlinks=True)
    first_out = (first / "out.txt").read_bytes()
    shutil.rmtree(first)  # the old sandbox is gone, as on a pool
    t0 = time.monotonic()
    status, pids = _supervise(second, [o for o in options if trigger != "every"], program)
    assert status == 0, (second / "err.txt").read_text()
    assert _left(pids) == []
    assert (second / "result.txt").read_bytes() == ref_result
    # the resumed program writes to the job's current output file, and not one line twice
    assert first_out + (second / "out.txt").read_bytes() == ref_out
    return {"image_bytes": ckpt["bytes"], "checkpoint_seconds": ckpt["seconds"],
            "resumed_run_seconds": time.monotonic() - t0}


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("kind", "trigger"), [
    ("python", "signal"), ("c", "every"), ("threads", "evict"), ("pipe", "signal"),
])
def test_checkpoint_and_resume_elsewhere(kind, trigger, tmp_path):
    """A program whose state is only in memory is checkpointed by DMTCP on the trigger, the images
    are committed, and the next start in a sandbox at another path resumes it: its result file is
    byte-identical to an uninterrupted run's, and no process or work directory is left."""
    # 100 steps of 50 ms: the program's 5 s of sleeps outlast the checkpoint however it is asked
    # (--every 1.5, or a signal after 5 lines) on a machine where DMTCP needs seconds to take it
    result = _checkpoint_and_resume(kind, trigger, tmp_path, steps=100)
    print(f"{kind}/{trigger}: {result}")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["python", "c", "threads", "pipe"])
@pytest.mark.parametrize("trigger", ["signal", "every", "evict"])
def test_every_program_every_trigger(kind, trigger, tmp_path):
    """Every program with every trigger (the checkpoint signal, --every, eviction) resumes in
    another path with the result of an uninterrupted run. Twelve tests of a few seconds each, run
    in parallel by xdist; the timeout is generous for a machine loaded by other work."""
    _checkpoint_and_resume(kind, trigger, tmp_path, steps=80)


def _dry_run(folder: Path, submit: str, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    env = _env()
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])  # ckpt-supervisor
    return subprocess.run([sys.executable, "-m", "supervisor", "dry-run", submit, *args, "--quiet",
                           "--work-dir", str(folder.parent / "work")], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.timeout(300)
def test_example_resumes_through_evictions_every_four_seconds(tmp_path):
    """examples/dmtcp under the dry run, evicted every 4 s: memloop.py needs 6 s without
    interruption, so only resuming from DMTCP's images (in a new sandbox path at each execution)
    finishes it; result.txt and the job's stdout equal an uninterrupted run's, byte for byte."""
    folder = tmp_path / "job"
    shutil.copytree(ROOT / "examples" / "dmtcp", folder)
    (folder / "checkpoint.atomic").mkdir(exist_ok=True)  # shipped empty, as the submit file says
    ref = subprocess.run([sys.executable, "memloop.py", "120"], cwd=folder, capture_output=True, check=True,
                         timeout=60)
    proc = _dry_run(folder, "memloop.submit", "--evict-every", "4", "--max-starts", "40")
    context = proc.stdout + proc.stderr
    assert proc.returncode == 0, context
    # memloop.out ends with the result line: nothing lost. Nothing printed twice, unless an
    # eviction found no DMTCP checkpoint possible (on a busy machine it can land while DMTCP is
    # still restarting the program): ON_EXIT_OR_EVICT then uploads stdout with lines past the
    # checkpoint the next execution resumes from, and those lines are printed again, in order.
    out = (folder / "memloop.out").read_bytes()
    failed = [e for e in sorted((tmp_path / "work").glob("execute-*/_condor_stderr"))
              if b"DMTCP wrote no complete checkpoint" in e.read_bytes()]
    if failed:
        assert list(dict.fromkeys(out.splitlines())) == ref.stdout.splitlines(), context
    else:
        assert out == ref.stdout, context
    evictions = int(re.search(r"evictions (\d+)", proc.stdout).group(1))
    assert evictions >= 1, context
    sandboxes = sorted(p.name for p in (tmp_path / "work").iterdir() if p.name.startswith("execute-"))
    assert len(sandboxes) >= 2, "every execution had a new sandbox path"
    token = json.loads((tmp_path / "work" / "spool" / "checkpoint.atomic" / "state.json").read_text())["dmtcp_token"]
    workdir = f"/tmp/ckpt-dmtcp-{token}"
    assert not os.path.exists(workdir), "the stable work directory was left behind"
    left = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if p.cwd().startswith((workdir, str(tmp_path))):
                left.append(p.pid)
    assert left == [], "a coordinator or program process was left behind"


def _assert_stdout_resumed(out: bytes, ref: bytes, work: Path, context: str) -> None:
    """The job's stdout equals an uninterrupted run's. Nothing printed twice, unless an eviction
    found no DMTCP checkpoint possible (on a busy machine it can land while DMTCP is still
    restarting the program): ON_EXIT_OR_EVICT then uploads stdout with lines past the checkpoint
    the next execution resumes from, and those lines are printed again, in order."""
    failed = [e for e in sorted(work.glob("execute-*/_condor_stderr"))
              if b"DMTCP wrote no complete checkpoint" in e.read_bytes()]
    if failed:
        assert list(dict.fromkeys(out.splitlines())) == ref.splitlines(), context
    else:
        assert out == ref, context


def _assert_nothing_left(tmp_path: Path) -> None:
    """No stable work directory and no process (coordinator or program) of the dry run's job."""
    token = json.loads((tmp_path / "work" / "spool" / "checkpoint.atomic" / "state.json").read_text())["dmtcp_token"]
    workdir = f"/tmp/ckpt-dmtcp-{token}"
    assert not os.path.exists(workdir), "the stable work directory was left behind"
    left = []
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            if p.cwd().startswith((workdir, str(tmp_path))):
                left.append(p.pid)
    assert left == [], "a coordinator or program process was left behind"


# the program's 120 steps of 50 ms need 6 s uninterrupted: evicted every 4 s, it finishes only by
# resuming from the images. result.txt is shipped empty (like the store) so that it exists at
# every eviction (ON_EXIT_OR_EVICT holds a job whose listed output is missing); the program writes
# it at the end through the link the supervisor makes in the stable work directory.
DRY_RUN_SUBMIT = """\
executable                = /usr/bin/env
transfer_executable       = false
arguments                 = "ckpt-supervisor run --dmtcp --checkpoint-on-evict 20 -- {program} 120"
transfer_input_files      = {inputs}, checkpoint.atomic, result.txt
checkpoint_exit_code      = 85
transfer_checkpoint_files = checkpoint.atomic
should_transfer_files     = yes
when_to_transfer_output   = ON_EXIT_OR_EVICT
job_max_vacate_time       = 60
transfer_output_files     = checkpoint.atomic, result.txt
output                    = job.out
error                     = job.err
log                       = job.log
queue 1
"""


@pytest.mark.timeout(240)
@pytest.mark.parametrize("kind", ["c", "threads", "pipe"])
def test_program_resumes_through_evictions_every_four_seconds(kind, tmp_path):
    """The C program, the multi-threaded one and the parent with a child over a pipe, under the dry
    run evicted every 4 s: each needs 6 s without interruption, so only resuming from DMTCP's
    images (in a new sandbox path at each execution) finishes it; result.txt and the job's stdout
    equal an uninterrupted run's, byte for byte, and nothing of the job is left."""
    ref_out, ref_result = _reference(kind, tmp_path, 120)
    folder = tmp_path / "job"
    folder.mkdir()
    argv = _program(kind, folder, 120)
    program = "./prog" if kind != "pipe" else "python3 prog.py"
    inputs = "prog" if kind != "pipe" else "prog.py"
    (folder / "job.submit").write_text(DRY_RUN_SUBMIT.format(program=program, inputs=inputs))
    (folder / "checkpoint.atomic").mkdir()
    (folder / "result.txt").write_bytes(b"")
    assert argv[-1] == "120"
    proc = _dry_run(folder, "job.submit", "--evict-every", "4", "--max-starts", "40", timeout=200)
    context = proc.stdout + proc.stderr + (folder / "job.err").read_text(errors="replace")[-3000:]
    assert proc.returncode == 0, context
    evictions = int(re.search(r"evictions (\d+)", proc.stdout).group(1))
    assert evictions >= 1, context
    sandboxes = sorted(p.name for p in (tmp_path / "work").iterdir() if p.name.startswith("execute-"))
    assert len(sandboxes) >= 2, "every execution had a new sandbox path"
    assert (folder / "result.txt").read_bytes() == ref_result, context
    _assert_stdout_resumed((folder / "job.out").read_bytes(), ref_out, tmp_path / "work", context)
    _assert_nothing_left(tmp_path)
