"""Helpers of the tests that drive ``ckpt-supervisor run`` on the victim (tests/process and
tests/reliability).

Everything here drives ``ckpt-supervisor run`` as a user would: a subprocess, its exit status,
its stderr, the files on disk and the processes left alive.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.helpers import ROOT, VICTIM, VICTIMS, spawned, supervisor_cmd, tagged_pids, wait_line

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
PY = sys.executable
VALIDATE = f"{PY} {VICTIMS / 'validate.py'}"
STORE = "checkpoint.atomic"
CHECKPOINT_STATUS = 85
MiB = 1 << 20

__all__ = ["CHECKPOINT_STATUS", "ENV", "PY", "STORE", "VALIDATE", "VICTIM", "MiB", "tagged_pids", "wait_line"]


def tagged_env(tag: str, **extra: str) -> dict[str, str]:
    """The environment for one test: CKPT_TEST_TAG lets ``spawned`` find escaped descendants."""
    return {**ENV, "CKPT_TEST_TAG": tag, **extra}


def supervise(sandbox: Path, args, program, *, env=None, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
              text=True, **kw):
    """Start the supervisor on ``program`` in ``sandbox``; a context manager that kills the tree."""
    return spawned(supervisor_cmd("run", "--events", str(sandbox / "events.jsonl"), *args, "--", *program),
                   cwd=sandbox, env=env or ENV, stdout=stdout, stderr=stderr, text=text, **kw)


def run(sandbox: Path, args, program, *, env=None, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(supervisor_cmd("run", "--events", str(sandbox / "events.jsonl"), *args, "--",
                                         *program),
                          cwd=sandbox, env=env or ENV, capture_output=True, text=True, timeout=timeout)


def events(sandbox: Path) -> list[dict[str, Any]]:
    path = sandbox / "events.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def kinds(sandbox: Path) -> list[str]:
    return [e["event"] for e in events(sandbox)]


def complete_value(text: str) -> int:
    """The value of a complete victim checkpoint; fails on a half-written one."""
    lines = text.splitlines()
    assert len(lines) >= 3 and lines[-1] == f"end {lines[0]}", f"incomplete checkpoint: {text[:40]!r}"
    return int(lines[0])


def verify_store(sandbox: Path, store: Path | None = None, paths=("state",)) -> dict[str, Any]:
    """The committed state after a full verify (manifest, sizes, checksums)."""
    from supervisor.store import Store

    return Store(sandbox, store or sandbox / STORE, list(paths)).verify()


def tree_digest(root: Path) -> str:
    """A checksum of every name, type, size and content under ``root`` (missing: 'absent')."""
    if not os.path.lexists(root):
        return "absent"
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames) + [d + "/" for d in dirnames]:
            full = Path(dirpath, name.rstrip("/"))
            h.update(str(full.relative_to(root)).encode() + b"\0")
            if full.is_symlink():
                h.update(b"L" + os.readlink(full).encode())
            elif full.is_file():
                h.update(full.read_bytes())
    return h.hexdigest()


def one_line_error(stderr: str) -> str:
    """The supervisor's error output must be exactly one line; return it."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line of error, got {len(lines)}:\n{stderr}"
    assert "Traceback" not in stderr
    return lines[0]


@contextlib.contextmanager
def mounted(args: list[str], target: Path) -> Iterator[Path]:
    """Mount something on ``target`` for the test; skip with the reason when not permitted."""
    target.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["mount", *args, str(target)], check=True, capture_output=True, timeout=10)
    except subprocess.CalledProcessError as e:
        why = (e.stderr or b"").decode(errors="replace").strip()
        pytest.skip(f"cannot mount here ({why or e}); needs root or CAP_SYS_ADMIN")
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"cannot mount here ({e}); needs root or CAP_SYS_ADMIN")
    try:
        yield target
    finally:
        if subprocess.run(["umount", str(target)], check=False, capture_output=True, timeout=10).returncode:
            subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True, timeout=10)


def remount_ro(target: Path) -> None:
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True, capture_output=True,
                       timeout=10)
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"cannot remount {target} read-only ({e})")


def victim(*args: str) -> list[str]:
    return [PY, str(VICTIM), *args]
