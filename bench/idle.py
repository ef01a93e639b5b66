"""3. Idle cost and 6. memory: CPU time the wrapper uses while its program sleeps, and its peak RSS.

All variants run side by side over the same window (so they share the machine's conditions).
CPU is read from /proc/PID/task/*/schedstat (nanoseconds) and /proc/PID/stat (clock ticks)
after a settling time (start-up excluded) and at the end; per hour = used * 3600 / window.
Peak RSS is VmHWM from /proc/PID/status at the end of the window.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from common import PY, REPO, Procs, cpu_ns_precise, cpu_seconds, pss_kb, status_kb, sup_cmd, sup_env

SETTLE = 3.0


def measure(prog: Path, tools: dict[str, Optional[str]], window: float, log: Any) -> dict[str, Any]:
    sleeper = ["/bin/sleep", "100000"]
    watch = ["--watch", "--checkpoint", "ck", "--checkpoint", "ckdir", "--min-run", "1000000"]
    plan: list[tuple[str, list[str], str]] = [
        ("supervisor", sup_cmd("--", *sleeper), "no checkpointing options"),
        (
            "supervisor-trigger",
            sup_cmd("--checkpoint", "ck", "--trigger-signal", "SIGUSR1", "--", *sleeper),
            "--trigger-signal, waiting for it (quiet=2 default rule)",
        ),
        (
            "watch-quiet0",
            sup_cmd(*watch, "--complete-when", "quiet=0", "--", *sleeper),
            "--watch, quiet=0, inotify",
        ),
        (
            "watch-closed",
            sup_cmd(*watch, "--complete-when", "closed", "--", *sleeper),
            "--watch, closed (psutil scan of open files), inotify",
        ),
        (
            "watch-marker",
            sup_cmd(*watch, "--complete-when", "marker=done", "--", *sleeper),
            "--watch, marker=done, inotify",
        ),
        (
            "watch-polling",
            [
                PY,
                str(REPO / "bench" / "programs" / "no_inotify.py"),
                "run",
                *watch,
                "--complete-when",
                "quiet=0",
                "--",
                *sleeper,
            ],
            "--watch, quiet=0, inotify unavailable: polling every 1 s (default --poll-interval)",
        ),
    ]
    if tools.get("tini"):
        plan.append(("tini", [tools["tini"], "-s", "--", *sleeper], "tini -s"))
    if tools.get("dumb-init"):
        plan.append(("dumb-init", [tools["dumb-init"], *sleeper], "dumb-init"))
    procs = Procs()
    res: dict[str, Any] = {"window_s": window, "settle_s": SETTLE, "results": {}}
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        try:
            started = {}
            for label, argv, desc in plan:
                sandbox = Path(tmp, label)
                (sandbox / "ckdir" / "sub").mkdir(parents=True)
                (sandbox / "ck").write_text("0\n")
                for i in range(20):
                    (sandbox / "ckdir" / "sub" / f"f{i}").write_text("x" * 1000)
                started[label] = (procs.start(argv, env=sup_env(), cwd=sandbox), desc)
            time.sleep(SETTLE)
            first = {}
            for label, (p, _d) in started.items():
                first[label] = (cpu_ns_precise(p.pid), cpu_seconds(p.pid))
            t0 = time.monotonic()
            time.sleep(window)
            elapsed = time.monotonic() - t0
            for label, (p, desc) in started.items():
                if p.poll() is not None:
                    res["results"][label] = {
                        "description": desc,
                        "error": f"exited early ({p.returncode})",
                    }
                    continue
                ns = cpu_ns_precise(p.pid) - first[label][0]
                ticks = cpu_seconds(p.pid) - first[label][1]
                res["results"][label] = {
                    "description": desc,
                    "cpu_s_window": round(ns / 1e9, 6),
                    "cpu_s_per_hour": round(ns / 1e9 * 3600 / elapsed, 4),
                    "cpu_s_per_hour_ticks": round(ticks * 3600 / elapsed, 3),
                    "cpu_s_total_since_start": cpu_seconds(p.pid),
                    "vm_hwm_kb": status_kb(p.pid, "VmHWM"),
                    "vm_rss_kb": status_kb(p.pid, "VmRSS"),
                    "pss_kb": pss_kb(p.pid),
                    "threads": len(os.listdir(f"/proc/{p.pid}/task")),
                }
                log(
                    f"idle {label}: {res['results'][label]['cpu_s_per_hour']} CPU s/h, "
                    f"VmHWM {res['results'][label]['vm_hwm_kb']} kB"
                )
            res["extrapolated"] = elapsed < 3600
            res["window_measured_s"] = round(elapsed, 3)
        finally:
            procs.kill_all()
    return res
