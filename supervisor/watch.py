"""File-change notification with inotify (through ctypes, no dependency), or nothing.

The loop treats any inotify event as "look again"; it also re-checks on a slow timer, so a
missed event (a directory created later, an unsupported file system) delays a decision but
never loses it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE


class Inotify:
    """Watch directories; ``fileno()`` becomes readable on change; ``drain()`` empties it."""

    def __init__(self) -> None:
        self._libc = ctypes.CDLL(None, use_errno=True)
        fd = self._libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        self.fd: int = fd
        self.watched: set[str] = set()

    def fileno(self) -> int:
        return self.fd

    def watch_dirs(self, dirs: Iterable[Path]) -> None:
        for d in dirs:
            key = str(d)
            if key in self.watched or not d.is_dir():
                continue
            wd = self._libc.inotify_add_watch(self.fd, os.fsencode(key), MASK)
            if wd >= 0:
                self.watched.add(key)

    def drain(self) -> bool:
        """Read every pending event; True if there was any."""
        got = False
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return got
            except OSError:
                return got
            if not data:
                return got
            got = True

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def dirs_to_watch(sandbox: Path, paths: Iterable[str]) -> list[Path]:
    """The parent directory of each path, and every directory inside directory paths."""
    out: list[Path] = []
    for rel in paths:
        p = sandbox / rel
        out.append(p.parent)
        if p.is_dir():
            out.append(p)
            for root, dirs, _files in os.walk(p):
                out.extend(Path(root, d) for d in dirs)
    return out


def open_inotify() -> Optional[Inotify]:
    try:
        return Inotify()
    except (OSError, AttributeError):
        return None
