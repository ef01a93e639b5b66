"""4. Completion-decision latency in --watch mode.

bench/programs/writer.py writes N checkpoints, PERIOD apart, and logs the wall-clock time of the
moment the supervisor can decide (after the atomic rename for quiet=0, after close() for
``closed``, after writing the marker for ``marker``). The supervisor's --events file has a
``checkpoint_complete`` event right before it issues the commit (same clock, time.time()).
The writer logs the time just before the deciding call (rename, close, marker write), so the
latency includes that call. Latency = first checkpoint_complete at or after that time and before
the next write begins. A checkpoint_complete after the write began but before the deciding call
is counted as ``early`` (a commit of an incomplete checkpoint: the rule did not hold back).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from common import PY, REPO, Procs, summary, sup_env

WRITER = REPO / "bench" / "programs" / "writer.py"


def _run(
    label: str, rule: str, mode: str, n: int, period: float, polling: bool, log: Any
) -> dict[str, Any]:
    procs = Procs()
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        sandbox = Path(tmp)
        (sandbox / "ck").write_text("start\n")
        events = sandbox / "events.jsonl"
        wlog = sandbox / "writer.log"
        head = (
            [PY, str(REPO / "bench" / "programs" / "no_inotify.py")]
            if polling
            else [PY, "-m", "supervisor"]
        )
        argv = [
            *head,
            "run",
            "--watch",
            "--checkpoint",
            "ck",
            "--complete-when",
            rule,
            "--min-run",
            "1000000",
            "--events",
            str(events),
            "--",
            PY,
            str(WRITER),
            mode,
            str(n),
            str(period),
            str(wlog),
        ]
        try:
            p = procs.start(argv, env=sup_env(installed=False), cwd=sandbox)  # python -m supervisor
            p.wait(timeout=n * (period + 2) + 60)
        except subprocess.TimeoutExpired:
            return {"error": "timed out"}
        finally:
            procs.kill_all()
        writes = (
            [
                tuple(float(x) for x in line.split())
                for line in wlog.read_text().splitlines()
                if line.strip()
            ]
            if wlog.exists()
            else []
        )
        complete = []
        for line in events.read_text().splitlines() if events.exists() else []:
            ev = json.loads(line)
            if ev.get("event") == "checkpoint_complete":
                complete.append(float(ev["time"]))
    lat, early, missed = [], 0, 0
    for i, (begin, t) in enumerate(writes):
        nxt = writes[i + 1][0] if i + 1 < len(writes) else float("inf")
        if any(begin <= c < t for c in complete):
            early += 1
        after = [c for c in complete if t <= c < nxt]
        if after:
            lat.append((after[0] - t) * 1000)
        else:
            missed += 1
    s = summary(lat, 2)
    log(
        f"watch latency {label}: median {s.get('median')} ms, p99 {s.get('p99')} ms, early {early}, missed {missed}"
    )
    return {
        "rule": rule,
        "polling": polling,
        "writes": len(writes),
        "ms": s,
        "early": early,
        "missed": missed,
    }


def measure(n: int, period: float, log: Any) -> dict[str, Any]:
    res: dict[str, Any] = {"checkpoints_each": n, "period_s": period, "results": {}}
    res["results"]["quiet=0"] = _run("quiet=0", "quiet=0", "quiet", n, period, False, log)
    res["results"]["closed"] = _run("closed", "closed", "closed", n, period, False, log)
    res["results"]["marker"] = _run("marker", "marker=done", "marker", n, period, False, log)
    # the polling fallback (--poll-interval 1 s default): fewer, slower samples
    res["results"]["quiet=0 polling"] = _run(
        "quiet=0 polling", "quiet=0", "quiet", max(5, n // 2), max(period, 1.3), True, log
    )
    return res
