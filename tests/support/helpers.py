"""Helpers shared by the tests that drive real processes (the dumb-init way)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import psutil

ROOT = Path(__file__).resolve().parents[2]
VICTIMS = Path(__file__).resolve().parent / "victims"
VICTIM = VICTIMS / "victim.py"


def sleep_until(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.01):
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {condition}")
        time.sleep(interval)


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


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


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
