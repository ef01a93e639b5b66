"""A classic job event log written at chosen times, for the ``report`` tests (tests/unit/test_report.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from supervisor.condor.eventlog import EventLog

START = 1_700_000_000.0


def timed_log(path: Path, start: float = START) -> tuple[EventLog, Callable[..., None]]:
    """The log at ``path`` and ``at(t, log.method, *args)``, which writes that event as if ``t``
    seconds after ``start`` (the log's clock is set, never slept on)."""
    clock = [start]
    log = EventLog(path, wall=lambda: clock[0])

    def at(t: float, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        clock[0] = start + t
        fn(*args, **kwargs)

    return log, at
