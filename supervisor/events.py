"""The JSON-lines event log (``--events FILE``) and the human-readable log on stderr.

Each event is one JSON object on one line: ``{"time": <epoch seconds>, "iso": "...Z",
"pid": <supervisor pid>, "event": "<kind>", ...fields}``. The schema is in
``docs/reference/events.md``. Lines on stderr look like ``ckpt-supervisor[1234]: message``.
"""

from __future__ import annotations

import os
import sys
import time

from . import PROG

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import IO, Any, Optional

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def process_start() -> Optional[float]:
    """When this process started (epoch seconds, to ~10 ms): the kernel's start time of the
    process against the system's uptime, both read now. It includes the interpreter's start-up,
    which happens before any event can be written (``report`` counts it in a run's time)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            ticks = int(f.read().rsplit(b")", 1)[1].split()[19])  # field 22, starttime
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        age = uptime - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    return time.time() - max(0.0, age)


class EventLog:
    def __init__(self, path: Optional[str] = None, *, verbosity: int = 0, stream: Optional[IO[str]] = None) -> None:
        self.pid = os.getpid()
        self.stream = stream if stream is not None else sys.stderr
        # -v shows debug, -q shows only warnings and errors, -qq only errors
        self.threshold = 20 - 10 * verbosity
        self.file: Optional[IO[str]] = None
        self.first = True  # the first record of the file carries the process's start time
        if path:
            self.file = open(path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    def emit(self, kind: str, fields: dict[str, Any], *, level: str = "info", message: str = "") -> None:
        if self.file is None and LEVELS.get(level, 20) < self.threshold:
            return  # neither written nor said (a passed-on signal's debug record, usually)
        now = time.time()
        if self.file is not None:
            import json  # only with --events (cached after the first event)

            iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
            record = {"time": round(now, 6), "iso": iso, "pid": self.pid, "event": kind}
            if self.first:
                self.first = False
                started = process_start()
                if started is not None:
                    record["process_start"] = round(started, 3)
            record.update({k: v for k, v in fields.items() if v is not None})
            self.file.write(json.dumps(record, default=str) + "\n")
        if LEVELS.get(level, 20) >= self.threshold:
            text = message or kind.replace("_", " ") + "".join(
                f" {k}={round(v, 3) if isinstance(v, float) else v}" for k, v in fields.items() if v is not None)

            self.say(text)

    def say(self, text: str) -> None:
        try:
            self.stream.write(f"{PROG}[{self.pid}]: {text}\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
