"""Signals as events: no work in a signal handler.

:class:`Wakeup` installs a Python-level handler that does nothing on every signal the supervisor
passes on or acts upon; the C-level handler writes the signal number to a pipe
(``signal.set_wakeup_fd``), which the loop's selector watches. :meth:`Wakeup.read` turns what
came into signal numbers, coalescing a standard signal that arrived twice before the loop looked
(the kernel would have too; real-time signals queue and are kept).
"""

from __future__ import annotations

import contextlib
import os
import signal

from . import process
from .signals import NOT_FORWARDED

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any


_SIGCHLD = int(signal.SIGCHLD)


def _noop(signum: int, frame: Any) -> None:
    """Python-level handler: nothing. The wakeup fd already carries the signal number."""


class Wakeup:
    def __init__(self) -> None:
        self.r = self.w = -1
        self.installed: dict[int, Any] = {}  # signal -> the handler before ours

    def install(self, roles: set[int]) -> int:
        """Handle every signal we may pass on (and ``roles``, even when ignored by whoever started
        us); the read end of the wakeup pipe, for the loop's selector."""
        self.r, self.w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        for sig in sorted(signal.valid_signals()):
            if sig in NOT_FORWARDED and sig != signal.SIGCHLD:
                continue
            if 31 < sig < signal.SIGRTMIN:
                continue  # reserved by the C library's threads
            if sig in (signal.SIGKILL, signal.SIGSTOP):
                continue
            try:
                current = signal.getsignal(sig)
            except (OSError, ValueError):
                continue
            if current == signal.SIG_IGN and sig not in roles and sig not in process.PYTHON_IGNORED:
                continue  # ignored by whoever started us: the program inherits that, we leave it
            try:
                self.installed[sig] = signal.signal(sig, _noop)
            except (OSError, ValueError, RuntimeError):
                continue
        process.note_handled(self.installed)
        signal.set_wakeup_fd(self.w, warn_on_full_buffer=False)
        return self.r

    def replay(self, signals: list[int]) -> None:
        """Signals caught before the loop was ready come through the pipe like the others."""
        # standard signals do not queue in the kernel either: one of each is the same event
        with contextlib.suppress(OSError):
            os.write(self.w, bytes(s for s in dict.fromkeys(signals) if 0 < s < 256))

    def read(self) -> list[int]:
        """The signals that came since the last read, in order (SIGCHLD left out: reaping
        happens every turn of the loop)."""
        try:
            data = os.read(self.r, 4096)
        except (BlockingIOError, InterruptedError):
            return []
        if len(data) == 1:  # the usual case, on the signal pass-on path: one signal
            return [] if data[0] == _SIGCHLD else [data[0]]
        out: list[int] = []
        seen: set[int] = set()
        for signum in data:
            if signum == _SIGCHLD:
                continue
            if signum < signal.SIGRTMIN:
                # a standard signal that arrived again before we looked was pending: one event, as
                # the kernel would coalesce it (real-time signals queue, and are passed on each)
                if signum in seen:
                    continue
                seen.add(signum)
            out.append(signum)
        return out

    def restore(self) -> None:
        """Put back the handlers we replaced; close the pipe."""
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(-1)
        for sig, old in self.installed.items():
            with contextlib.suppress(OSError, ValueError, TypeError):
                signal.signal(sig, old if old is not None else signal.SIG_DFL)
        for fd in (self.r, self.w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.r = self.w = -1
