"""File-change notification with inotify (through ctypes, no dependency), or nothing.

The loop treats any inotify event as "look again"; it also re-checks on a slow timer, so a
missed event (a directory created later, an unsupported file system) delays a decision but
never loses it.

The events are also kept in order (``written_after``): file times cannot tell which of two
files was written last (Linux gives a file written right after another the same timestamp
unless someone looked at it in between), but the order of inotify events can. A ``marker=``
is complete only if no checkpoint file was written after it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct
from collections.abc import Iterable
from pathlib import Path

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Optional

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_CLOSE_WRITE = 0x8
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_Q_OVERFLOW = 0x4000
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
        self.dirs: dict[int, str] = {}  # watch descriptor -> directory
        self.seq = 0  # events seen so far
        self.last: dict[str, int] = {}  # path -> number of its last event
        self.overflow_at = 0  # number of the last queue overflow (the order is lost there)

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
                self.dirs[wd] = key

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
            self._parse(data)

    def _parse(self, data: bytes) -> None:
        off = 0
        while off + 16 <= len(data):
            wd, mask, _cookie, size = struct.unpack_from("iIII", data, off)
            name = data[off + 16:off + 16 + size].split(b"\0", 1)[0]
            off += 16 + size
            self.seq += 1
            if mask & IN_Q_OVERFLOW:
                self.overflow_at = self.seq
                continue
            where = self.dirs.get(wd)
            if where is not None:
                path = os.path.join(where, os.fsdecode(name)) if name else where
                self.last[path] = self.seq

    def written_after(self, markers: Iterable[str], roots: Iterable[str]) -> bool:
        """Whether a path at or below one of ``roots`` (other than the markers) had an event
        after the last event of every marker, or the event queue overflowed since (the order
        is then unknown). Call ``drain()`` first."""
        marks = set(markers)
        since = min((self.last.get(m, 0) for m in marks), default=0)
        if self.overflow_at > since:
            return True
        tops = tuple(roots)
        return any(
            seq > since and path not in marks and any(path == t or path.startswith(t + os.sep) for t in tops)
            for path, seq in self.last.items()
        )

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
