"""The program's output, when a completion or done rule reads its log.

The program's stdout and stderr then go through pipes: :class:`ProgramOutput` copies what comes
to the supervisor's own stdout and stderr and counts the lines that match each rule's pattern
(``log=`` rules); the loop reads the counts into each Observation.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import time

from .rules import Rule

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import re


class ProgramOutput:
    def __init__(self, sel: selectors.BaseSelector) -> None:
        self.sel = sel
        self.patterns: list[tuple[str, re.Pattern[str]]] = []
        self.log_counts: dict[str, int] = {}
        self.pipes: dict[int, tuple[int, bytearray]] = {}  # read fd -> (our output fd, partial line)
        self.matched = False  # a line matched since the loop last looked

    def setup(self, rules: list[Rule]) -> None:
        """Count the lines matching each pattern of ``rules``."""
        for pattern in sorted({p for r in rules for p in r.patterns()}):
            import re  # only with log= rules

            self.patterns.append((pattern, re.compile(pattern)))
            self.log_counts[pattern] = 0

    def make_pipes(self) -> tuple[int, int]:
        fds = []
        for ours in (1, 2):
            r, w = os.pipe2(os.O_CLOEXEC)
            os.set_blocking(r, False)
            self.pipes[r] = (ours, bytearray())
            self.sel.register(r, selectors.EVENT_READ, "pipe")
            fds.append(w)
        return fds[0], fds[1]

    def pump(self, fd: int) -> int:
        """Copy what is readable from one of the program's pipes to our own fd; scan its lines.

        Returns the bytes read: 0 when nothing was ready, -1 at end of file.
        """
        ours, partial = self.pipes[fd]
        try:
            data = os.read(fd, 65536)
        except (BlockingIOError, InterruptedError):
            return 0
        if not data:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(fd)
            os.close(fd)
            del self.pipes[fd]
            if partial:
                self.scan(bytes(partial))
            return -1
        view = memoryview(data)
        while view:
            try:
                n = os.write(ours, view)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except OSError:
                break
            view = view[n:]
        partial.extend(data)
        if b"\n" in partial:
            *lines, rest = bytes(partial).split(b"\n")
            partial[:] = rest
            for line in lines:
                self.scan(line)
        return len(data)

    def scan(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace")
        for pattern, regex in self.patterns:
            if regex.search(text):
                self.log_counts[pattern] += 1
                self.matched = True

    def drain(self) -> None:
        """Read what the program wrote before it exited, so a last log line still counts."""
        for fd in list(self.pipes):
            while fd in self.pipes and self.pump(fd) > 0:
                pass
