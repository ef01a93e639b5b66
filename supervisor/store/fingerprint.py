"""The working tree as the supervisor observes it: the fingerprint and the size of the
checkpoint paths in the sandbox (not the committed store).

The loop and the completion rules compare fingerprints to decide that a checkpoint is complete,
and ``Store.commit(expect=...)`` compares the same fingerprint before and after its copy: one
function, read through the store's ``FS`` seam, so both see the same thing.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from .fs import FS

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any


def fingerprint(fs: FS, sandbox: Path, paths: Sequence[str]) -> tuple[tuple[Any, ...], ...]:
    """A cheap, hashable fingerprint of the working checkpoint paths.

    One tuple per file, directory and symlink under each path, in a stable order:
    ``(relpath, kind, size, mtime_ns, ino, ctime_ns)``; a missing path gives
    ``(relpath, "missing")``. Promise: any write, truncation, creation, deletion or
    replacement by rename changes it (ctime_ns and ino catch writes that restore mtime).
    Equal fingerprints mean "nothing changed", not more: restore() writes new inodes, so the
    fingerprint after a restore differs from the one taken before the commit; take a new
    baseline after restoring.
    """
    out: list[tuple[Any, ...]] = []
    for rel in paths:
        _walk(fs, sandbox, rel, out)
    return tuple(out)


def _walk(fs: FS, sandbox: Path, rel: str, out: list[tuple[Any, ...]]) -> None:
    path = sandbox / rel
    try:
        st = fs.lstat(path)
    except OSError:
        out.append((rel, "missing"))
        return
    mode = st.st_mode
    kind = ("d" if stat.S_ISDIR(mode) else "l" if stat.S_ISLNK(mode) else "f" if stat.S_ISREG(mode)
            else "s")  # "s": a FIFO, socket or device
    out.append((rel, kind, st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))
    if kind == "d":
        try:
            names = sorted(fs.listdir(path))
        except OSError:
            return
        for name in names:
            _walk(fs, sandbox, f"{rel}/{name}", out)


def checkpoint_bytes(sandbox: Path | str, paths: Sequence[str]) -> int:
    """Total size of the regular files under the checkpoint ``paths`` (missing paths count 0)."""
    total = 0
    root = Path(sandbox)
    for rel in paths:
        stack = [root / rel]
        while stack:
            p = stack.pop()
            try:
                st = os.lstat(p)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
            elif stat.S_ISDIR(st.st_mode):
                with contextlib.suppress(OSError):
                    stack.extend(p / n for n in os.listdir(p))
    return total
