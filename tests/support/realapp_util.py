"""Helpers of the real-application tests: run an example folder under ``ckpt-supervisor dry-run``.

Every test works in a temporary copy of its example folder (the dry run delivers the outputs
into the submit directory) with ``--work-dir`` in the same temporary tree, so every process the
test causes has its working directory below ``tmp_path``: :func:`kill_below` finds them there
(by PID, via psutil) and SIGKILLs what is left in a ``finally``. The dry run runs with
``--keep`` so that the sandboxes can be inspected after a failure.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from support import helpers
from support.helpers import ROOT, job_environment

EXAMPLES = ROOT / "examples"


def require(program: str, *candidates: str) -> str:
    """The path of ``program`` (or the first existing candidate path), or skip with a reason."""
    found = shutil.which(program) or next((c for c in candidates if os.access(c, os.X_OK)), None)
    if found is None:
        pytest.skip(f"{program} is not installed (apt-get install -y {program})")
    return found


def ensure_entry_point() -> None:
    env = job_environment()
    if shutil.which("ckpt-supervisor", path=env["PATH"]) is None:
        pytest.fail("ckpt-supervisor is not on PATH: install the package (pip install -e .)")


def copy_example(name: str, dest: Path) -> Path:
    """A clean copy of examples/NAME (only the files git tracks there, no outputs of a run)."""
    src = EXAMPLES / name
    folder = dest / name
    folder.mkdir(parents=True)
    for item in src.iterdir():
        if item.is_file() and item.name != ".gitignore" and not _generated(name, item.name):
            shutil.copy2(item, folder / item.name)
    return folder


def _generated(example: str, filename: str) -> bool:
    ignore = (EXAMPLES / example / ".gitignore")
    if not ignore.is_file():
        return False
    patterns = [ln.strip().rstrip("/") for ln in ignore.read_text().splitlines()
                if ln.strip() and not ln.startswith("#")]
    return any(fnmatch.fnmatch(filename, p) for p in patterns)


def set_macro(submit: Path, name: str, value: str) -> None:
    """Replace the value of the submit-file macro ``name = ...`` in ``submit`` (defined once)."""
    submit.write_text(helpers.set_macro(submit.read_text(), name, value))


def kill_below(root: Path) -> list[str]:
    """SIGKILL every process (not this one) whose working directory is below ``root``; return
    a description of each. Used in ``finally`` blocks: nothing a test started survives it."""
    root = root.resolve()
    me = os.getpid()
    killed = []
    for proc in psutil.process_iter(["pid", "name", "cwd"]):
        cwd = proc.info.get("cwd")
        if proc.info["pid"] == me or not cwd:
            continue
        with contextlib.suppress(ValueError):
            Path(cwd).resolve().relative_to(root)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.info["pid"], signal.SIGKILL)
                killed.append(f"{proc.info['pid']} {proc.info['name']} in {cwd}")
    return killed


@dataclass
class DryRun:
    status: int
    stdout: str
    stderr: str
    seconds: float
    folder: Path
    started_at: float  # time.time() just before the dry run was started
    leftovers: list[str]  # processes still alive below the test's directory after the dry run

    def summary(self) -> dict[str, float]:
        text = self.stdout + self.stderr
        m = re.search(r"executions (\d+), runs (\d+), checkpoints (\d+), evictions (\d+), "
                      r"crashes (\d+)", text)
        assert m, f"no summary in the dry run's output:\n{text}"
        out: dict[str, float] = dict(zip(("executions", "runs", "checkpoints", "evictions",
                                          "crashes"), map(int, m.groups())))
        m = re.search(r"bytes uploaded (\d+), wall time ([\d.]+)s, time committed ([\d.]+)s, "
                      r"time lost ([\d.]+)s", text)
        assert m, f"no summary in the dry run's output:\n{text}"
        out.update(zip(("bytes_uploaded", "wall", "committed", "lost"),
                       (int(m.group(1)), *map(float, m.groups()[1:]))))
        return out

    def timeline(self) -> list[tuple[float, str]]:
        return [(float(m.group(1)), m.group(2)) for m in
                re.finditer(r"(?m)^\s+(\d+\.\d+)s  (.*)$", self.stdout)]

    def log_lines(self) -> list[tuple[float, str]]:
        """The dry run's progress lines (its timeline, printed once as it goes)."""
        return self.timeline()

    def eviction_phases(self) -> list[str]:
        """What the supervisor was doing when each eviction's soft kill reached it, as it says
        itself: its ``evicting`` event names the phase (``during``). Phases: ``running``;
        ``checkpoint`` (a checkpoint was requested, not yet complete); ``commit`` (complete, not
        yet committed); ``exiting`` (committed or being killed); ``gone`` (no ``evicting``
        event: it had already exited, e.g. the dry run's upload was under way).
        """
        by_pid: dict[int, list[dict[str, object]]] = {}
        for ev in self.events():
            by_pid.setdefault(int(ev["pid"]), []).append(ev)  # type: ignore[call-overload]
        names = {"running": "running", "starting": "running", "checkpointing": "checkpoint",
                 "validating": "checkpoint", "committing": "commit", "stopping": "exiting",
                 "killing": "exiting", "exited": "exiting"}
        phases = []
        for _, text in self.log_lines():
            m = re.match(r"evicting: \S+ to pid (\d+)", text)
            if not m:
                continue
            said = [e for e in by_pid.get(int(m.group(1)), []) if e["event"] == "evicting"]
            phases.append(names.get(str(said[0].get("during")), "running") if said else "gone")
        return phases

    def events(self, name: str = "ckpt-events.jsonl") -> list[dict[str, object]]:
        """Every execution's events: the delivered file holds only the last execution's, since
        nothing is uploaded at an eviction (no ON_EXIT_OR_EVICT), so the kept execute folders
        of the dry run's work directory are read too (duplicates dropped, in time order)."""
        work = self.folder.parent / f"work-{self.folder.name}"
        paths = [self.folder / name, *sorted(work.glob(f"execute-*/{name}"))]
        seen: dict[str, dict[str, object]] = {}
        for path in paths:
            if path.is_file():
                for line in path.read_text().splitlines():
                    try:
                        if line.strip():
                            seen.setdefault(line, json.loads(line))
                    except ValueError:
                        pass  # a line cut short by a SIGKILL
        return sorted(seen.values(), key=lambda e: float(e["time"]))  # type: ignore[arg-type]

    def context(self) -> str:
        return (f"dry run exit status {self.status} after {self.seconds:.1f}s\n"
                f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}")


def dry_run(folder: Path, submit: str, args: Sequence[str], *, timeout: float) -> DryRun:
    """Run ``ckpt-supervisor dry-run`` on ``folder/submit``; kill whatever is left afterwards."""
    cmd = [sys.executable, "-m", "supervisor", "dry-run", submit, *args,
           "--work-dir", str(folder.parent / f"work-{folder.name}"), "--keep"]
    started_at = time.time()
    start = time.monotonic()
    leftovers: list[str] = []
    proc = subprocess.Popen(cmd, cwd=folder, env=job_environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"the dry run did not finish within {timeout:.0f}s\n{out}\n{err}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        leftovers = kill_below(folder.parent)
    (folder.parent / f"dry-run-{folder.name}.out").write_text(out)
    (folder.parent / f"dry-run-{folder.name}.err").write_text(err)
    return DryRun(proc.returncode, out, err, time.monotonic() - start, folder, started_at,
                  leftovers)


@dataclass
class CpuMeter:
    """Adds up the CPU seconds of every process named ``name`` below ``root`` while it runs.

    psutil is polled every ``interval`` seconds; a process's last ``interval`` of CPU time
    before it exits can be missed, so the total is a slight under-estimate (the same for every
    run measured this way).
    """

    name: str
    root: Path
    interval: float = 0.05
    seen: dict[tuple[int, float], float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> CpuMeter:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _poll(self) -> None:
        root = str(self.root.resolve())
        while not self._stop.is_set():
            for proc in psutil.process_iter(["pid", "name", "cwd", "create_time", "cpu_times"]):
                info = proc.info
                if info.get("name") != self.name or not info.get("cpu_times"):
                    continue
                if not str(info.get("cwd") or "").startswith(root):
                    continue
                t = info["cpu_times"]
                self.seen[(info["pid"], info["create_time"])] = t.user + t.system
            self._stop.wait(self.interval)

    @property
    def total(self) -> float:
        return sum(self.seen.values())

    @property
    def processes(self) -> int:
        return len(self.seen)


@contextlib.contextmanager
def reaped(argv: Sequence[str], cwd: Path, **kwargs: object) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``argv`` in its own session; SIGKILL its group and everything below ``cwd`` after."""
    proc = subprocess.Popen(list(argv), cwd=cwd, start_new_session=True, **kwargs)  # type: ignore[call-overload]
    try:
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        kill_below(cwd)


def run_measured(argv: Sequence[str], cwd: Path, *, timeout: float,
                 env: dict[str, str] | None = None) -> tuple[int, float, float]:
    """Run ``argv`` to the end; return (exit status, wall seconds, CPU seconds of it and its
    waited-for descendants, from wait4)."""
    start = time.monotonic()
    with reaped(argv, cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                pytest.fail(f"{argv} did not finish within {timeout:.0f}s")
            time.sleep(0.02)
    return proc.returncode, time.monotonic() - start, usage.ru_utime + usage.ru_stime
