"""Helpers shared by the benchmark modules: statistics, /proc readers, process bookkeeping.

Every process a benchmark starts is registered with a ``Procs`` object and killed (whole tree,
by PID) in a ``finally``; nothing here kills by name.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Optional

import psutil

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable  # the real interpreter, not a pyenv shim (a shim adds ~40 ms to every start)
VICTIM = REPO / "tests" / "support" / "victims" / "victim.py"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def sup_env(extra: Optional[dict[str, str]] = None, *, installed: Optional[bool] = None) -> dict[str, str]:
    """The supervisor's environment. ``installed``: the command is an installed console script
    (default: whether $CKPT_BENCH_SUPERVISOR names one, as ``sup_cmd`` then runs it), which must
    import its own package: no PYTHONPATH. This worktree on PYTHONPATH would have made the
    installed script run the worktree's code (until 2026-12-06, signal_ratio.py's
    ``supervisor-before`` ran this worktree, not the earlier commit)."""
    env = dict(os.environ)
    if installed is None:
        installed = bool(os.environ.get("CKPT_BENCH_SUPERVISOR"))
    if installed:
        env.pop("PYTHONPATH", None)
    else:
        env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.pop("_CONDOR_JOB_AD", None)
    env.pop("_CONDOR_SCRATCH_DIR", None)
    for key in list(env):
        if key.startswith("CKPT_"):
            del env[key]
    if extra:
        env.update(extra)
    return env


def sup_cmd(*args: str) -> list[str]:
    """``python -m supervisor run ARGS`` from this worktree, or the console script named by
    $CKPT_BENCH_SUPERVISOR (an installed copy: bytecode written at install time, as users run it;
    a source tree under PYTHONDONTWRITEBYTECODE compiles every module at every start)."""
    script = os.environ.get("CKPT_BENCH_SUPERVISOR")
    if script:
        return [script, "run", *args]
    return [PY, "-m", "supervisor", "run", *args]


# ------------------------------------------------------------------ signal pass-on peers
# the least a Python forwarder does: a handler that passes SIGUSR1 on to the program's group, the
# main thread waiting in waitpid; SIGTERM too, so that stopping it stops the program (how far the supervisor's own code is from any Python process)
PY_MINIMAL = ("import os, signal, subprocess, sys\n"
              "p = subprocess.Popen(sys.argv[1:], start_new_session=True)\n"
              "for s in (signal.SIGUSR1, signal.SIGTERM):\n"
              "    signal.signal(s, lambda s, f: os.killpg(p.pid, s))\n"
              "p.wait()\n")

# The supervisor's mechanism and nothing else: a no-op Python handler, the wakeup fd, selectors,
# killpg, waitpid (no work in the handler, as the supervisor); its floor for target 2a.
PY_LOOP = ("import os, selectors, signal, subprocess, sys\n"
           "p = subprocess.Popen(sys.argv[1:], start_new_session=True)\n"
           "r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)\n"
           "for s in (signal.SIGUSR1, signal.SIGTERM, signal.SIGCHLD):\n"
           "    signal.signal(s, lambda *a: None)\n"
           "signal.set_wakeup_fd(w, warn_on_full_buffer=False)\n"
           "sel = selectors.DefaultSelector(); sel.register(r, selectors.EVENT_READ, 'signal')\n"
           "while p.poll() is None:\n"
           "    for key, _ in sel.select(None):\n"
           "        for s in os.read(r, 4096):\n"
           "            if s != signal.SIGCHLD:\n"
           "                os.killpg(p.pid, s)\n")


def schedstat(pid: int) -> tuple[int, ...]:
    """The scheduler's account of a process's main thread: on-CPU ns, run-queue wait ns, slices."""
    try:
        return tuple(int(x) for x in Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[:3])
    except (OSError, ValueError):
        return (0, 0, 0)


# ---------------------------------------------------------------------------------- statistics
def percentile(xs: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): p99 of 500 samples is the 495th smallest."""
    s = sorted(xs)
    if not s:
        return float("nan")
    k = max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))
    return s[k]


def summary(xs: Sequence[float], digits: int = 6) -> dict[str, Any]:
    xs = list(xs)
    if not xs:
        return {"n": 0}
    return {
        "n": len(xs),
        "median": round(statistics.median(xs), digits),
        "p90": round(percentile(xs, 90), digits),
        "p99": round(percentile(xs, 99), digits),
        "min": round(min(xs), digits),
        "max": round(max(xs), digits),
        "mean": round(statistics.fmean(xs), digits),
    }


# ---------------------------------------------------------------------------------- /proc
def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of ``pid`` (from /proc/PID/stat, clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_ns_precise(pid: int) -> int:
    """Nanoseconds on a CPU, summed over the threads alive now (/proc/PID/task/*/schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
    return total


def status_kb(pid: int, key: str) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def pss_kb(pid: int) -> Optional[int]:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# ---------------------------------------------------------------------------------- processes
class Procs:
    """Processes started by a benchmark; ``kill_all()`` ends each tree by PID (use in finally)."""

    def __init__(self) -> None:
        self.popens: list[subprocess.Popen[bytes]] = []
        self.known: set[int] = set()

    def start(self, argv: Sequence[str], **kw: Any) -> subprocess.Popen[bytes]:
        kw.setdefault("stdin", subprocess.DEVNULL)
        kw.setdefault("stdout", subprocess.DEVNULL)
        kw.setdefault("stderr", subprocess.DEVNULL)
        p = subprocess.Popen(list(argv), **kw)
        self.popens.append(p)
        self.known.add(p.pid)
        return p

    def note_tree(self) -> None:
        """Remember every descendant now, so that orphans can be found and killed later."""
        for p in self.popens:
            with contextlib.suppress(psutil.Error):
                for c in psutil.Process(p.pid).children(recursive=True):
                    self.known.add(c.pid)

    def kill_all(self, grace: float = 3.0) -> None:
        self.note_tree()
        # polite first: a supervisor passes SIGTERM on and kills its program's tree itself
        for p in self.popens:
            if p.poll() is None:
                with contextlib.suppress(OSError):
                    p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in self.popens:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(max(0.0, deadline - time.monotonic()))
        for p in self.popens:
            if p.poll() is None:
                with contextlib.suppress(OSError):
                    p.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(2)
        mine = {p.pid for p in self.popens}
        for pid in self.known - mine:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if proc.status() != psutil.STATUS_ZOMBIE:
                    proc.kill()
        self.popens.clear()
        self.known.clear()


def wait_for(cond: Any, timeout: float, interval: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return bool(cond())


def compile_c(src: Path, out: Path) -> Optional[str]:
    """Compile ``src`` with gcc -O2; returns an error text, or None on success."""
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        return "no C compiler (gcc) found"
    r = subprocess.run(
        [gcc, "-O2", "-Wall", "-o", str(out), str(src)], capture_output=True, text=True
    )
    return None if r.returncode == 0 else r.stderr.strip()


def fs_type(path: Path) -> str:
    try:
        return subprocess.run(
            ["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def tool(name: str) -> Optional[str]:
    return shutil.which(name)


def tool_version(argv: Iterable[str]) -> str:
    try:
        r = subprocess.run(list(argv), capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (r.stdout or r.stderr).strip().splitlines()[0] if (r.stdout or r.stderr).strip() else "?"


def machine(bench_dir: Path) -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = None
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    distro = "?"
    with contextlib.suppress(OSError), open("/etc/os-release") as f:
        for line in f:
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip().strip('"')
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round((mem_kb or 0) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": distro,
        "python": platform.python_version(),
        "python_executable": PY,
        "psutil": psutil.__version__,
        "bench_dir": str(bench_dir),
        "bench_dir_fs": fs_type(bench_dir),
        "tini": tool_version(["tini", "--version"]) if tool("tini") else None,
        "dumb_init": tool_version(["dumb-init", "--version"]) if tool("dumb-init") else None,
    }


def ensure_tools(log: Any) -> dict[str, Optional[str]]:
    """tini and dumb-init: use them if present, else try apt-get (root only), else skip."""
    found = {n: tool(n) for n in ("tini", "dumb-init")}
    missing = [n for n, p in found.items() if p is None]
    if missing and os.geteuid() == 0 and tool("apt-get"):
        log(f"installing {' '.join(missing)} with apt-get")
        subprocess.run(
            ["apt-get", "install", "-y", "-q", *missing],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        found = {n: tool(n) for n in ("tini", "dumb-init")}
    return found
