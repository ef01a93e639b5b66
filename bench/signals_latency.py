"""2. Signal pass-on latency: a signal sent to the wrapper until the program's handler runs.

``benchprog catch FIFO`` is the program: its SIGUSR1 handler reads CLOCK_MONOTONIC and writes it
to a FIFO. ``benchprog send PID ...`` reads CLOCK_MONOTONIC, kill()s the wrapper, reads the
handler's time back and prints the difference; then it sleeps GAP so that every signal finds the
wrapper idle (a pending signal would merge with the next one). ``direct`` sends to the program
itself: the floor (kill + scheduling + handler).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Optional

from common import Procs, summary, sup_cmd, sup_env


def _one(
    label: str, wrapper: list[str], prog: Path, count: int, gap_us: int, log: Any
) -> dict[str, Any]:
    procs = Procs()
    with tempfile.TemporaryDirectory(prefix="bench-sig-") as tmp:
        fifo = Path(tmp, "times")
        os.mkfifo(fifo)
        Path(tmp, "ck").write_text("0\n")  # the --watch variant's checkpoint file
        try:
            p = procs.start([*wrapper, str(prog), "catch", str(fifo)], env=sup_env(), cwd=tmp)
            target = p.pid  # the wrapper; for "direct" (no wrapper) the catcher itself
            out = subprocess.run(
                [
                    str(prog),
                    "send",
                    str(target),
                    str(int(signal.SIGUSR1)),
                    str(count),
                    str(gap_us),
                    str(fifo),
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            if out.returncode != 0:
                return {"error": out.stderr.strip()}
            us = [int(x) / 1000 for x in out.stdout.split()]
        finally:
            procs.kill_all()
    s = summary(us, 2)
    log(f"signal latency {label}: median {s['median']} us, p99 {s['p99']} us")
    return {"argv": wrapper, "us": s}


def measure(prog: Path, tools: dict[str, Optional[str]], count: int, log: Any) -> dict[str, Any]:
    gap_us = 2000
    res: dict[str, Any] = {"signals": count, "gap_us": gap_us, "signal": "SIGUSR1", "results": {}}
    plan: list[tuple[str, list[str]]] = [("direct", [])]
    if tools.get("tini"):
        plan.append(("tini", [tools["tini"], "-s", "--"]))
    if tools.get("dumb-init"):
        plan.append(("dumb-init", [tools["dumb-init"]]))
    plan.append(("supervisor", sup_cmd("--")))
    plan.append(
        (
            "supervisor-watch",
            sup_cmd(
                "--watch",
                "--checkpoint",
                "ck",
                "--complete-when",
                "quiet=0",
                "--min-run",
                "100000",
                "--",
            ),
        )
    )
    for label, wrapper in plan:
        res["results"][label] = _one(label, wrapper, prog, count, gap_us, log)
    return res
