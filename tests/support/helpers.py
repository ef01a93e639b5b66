"""Helpers shared by the tests that drive real processes (the dumb-init way)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Callable

import psutil

ROOT = Path(__file__).resolve().parents[2]
VICTIMS = Path(__file__).resolve().parent / "victims"
VICTIM = VICTIMS / "victim.py"


def sleep_until(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.01, *,
                what: str = "", context: Callable[[], str] = lambda: ""):
    """Poll ``condition`` until it returns something truthy (returned); fail the test after
    ``timeout`` s, saying ``what`` never happened, followed by ``context()``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            extra = context()
            raise AssertionError(f"{what or 'condition'} not met within {timeout} s: {condition}"
                                 + (f"\n{extra}" if extra else ""))
        time.sleep(interval)


def wait_line(proc: subprocess.Popen, prefix: str, timeout: float = 20.0) -> str:
    """Read ``proc``'s stdout (text) until a line starts with ``prefix``; return it stripped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"stdout closed before {prefix!r}: {proc.stderr.read() if proc.stderr else ''}")
        if line.startswith(prefix):
            return line.strip()
    raise AssertionError(f"no line starting with {prefix!r} within {timeout} s")


def set_macro(text: str, name: str, value: str) -> str:
    """``text`` (a submit file) with the value of its macro ``name = ...`` replaced (defined once)."""
    new, n = re.subn(rf"(?m)^({re.escape(name)}\s*=\s*).*$", lambda m: m.group(1) + value, text)
    assert n == 1, f"macro {name} defined {n} times"
    return new


def pid_tree(pid: int) -> list[int]:
    """PIDs of ``pid`` and all its living descendants (zombies included)."""
    try:
        proc = psutil.Process(pid)
        return [pid] + [c.pid for c in proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def kill_pids(pids: Sequence[int]) -> None:
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)


def tagged_pids(tag: str) -> list[int]:
    """Living processes (not zombies) whose environment carries CKPT_TEST_TAG=tag."""
    out = []
    for p in psutil.process_iter(["environ", "status"]):
        with contextlib.suppress(psutil.Error):
            if (p.info.get("environ") or {}).get("CKPT_TEST_TAG") == tag and p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(p.pid)
    return out


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def job_environment() -> dict[str, str]:
    """This environment with the test interpreter's bin directory first on PATH, so that a job's
    ``/usr/bin/env ckpt-supervisor`` finds this checkout's entry point (not a shim), and this
    checkout first on PYTHONPATH."""
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def load_bench(name: str) -> ModuleType:
    """bench/NAME.py as a module (bench/ is no package); the tests run its ``run()``."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def supervisor_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "supervisor", *args]


@contextlib.contextmanager
def spawned(argv: Sequence[str], **kwargs) -> Iterator[subprocess.Popen]:
    """Start ``argv``; whatever happens, SIGKILL it and every descendant it left, by PID.

    Descendants are remembered while the process runs (a subreaper's orphans stay below it).
    """
    kwargs.setdefault("start_new_session", True)
    proc = subprocess.Popen(list(argv), **kwargs)
    seen: set[int] = set()
    try:
        yield proc
    finally:
        seen.update(pid_tree(proc.pid))
        # Include descendants that were reparented away from the tree (e.g. to init).
        for p in psutil.process_iter(["environ"]):
            with contextlib.suppress(psutil.Error):
                env = p.info.get("environ") or {}
                if env.get("CKPT_TEST_TAG") and env.get("CKPT_TEST_TAG") == (kwargs.get("env") or {}).get("CKPT_TEST_TAG"):
                    seen.add(p.pid)
        kill_pids(sorted(seen))
        with contextlib.suppress(Exception):
            proc.wait(timeout=10)
