"""7. Scale: N supervisors at once (a many-slot execute node), each with a tiny C program.

Each supervisor runs ``benchprog job`` in its own sandbox with ``--checkpoint ck
--trigger-signal SIGUSR1 --complete-when quiet=0``. Measured: time until every program is up;
steady-state memory (sum of RSS and of PSS: PSS shares the interpreter's pages fairly) and CPU
over a quiet window; then one SIGUSR1 to each supervisor, as fast as a loop can send them, and
the time until all have committed and exited with the checkpoint code (85). Each supervisor's
CPU over its whole life comes from wait4(); its peak RSS is the last VmHWM read before it exited
(polled every 20 ms; wait4's ru_maxrss would count the forking benchmark process).
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from common import Procs, cpu_seconds, pss_kb, status_kb, summary, sup_cmd, sup_env, wait_for

QUIET_WINDOW = 10.0


def measure(prog: Path, n: int, tools: dict[str, Optional[str]], log: Any) -> dict[str, Any]:
    procs = Procs()
    res: dict[str, Any] = {"supervisors": n}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        try:
            boxes = []
            t0 = time.monotonic()
            for i in range(n):
                box = Path(tmp, f"slot{i:03d}")
                box.mkdir()
                (box / "ck").write_text("0\n")
                p = procs.start(
                    sup_cmd(
                        "--checkpoint",
                        "ck",
                        "--trigger-signal",
                        "SIGUSR1",
                        "--complete-when",
                        "quiet=0",
                        "--",
                        str(prog),
                        "job",
                    ),
                    env=sup_env(),
                    cwd=box,
                )
                boxes.append((box, p))
            ok = wait_for(lambda: all((b / "ready").exists() for b, _ in boxes), 600, 0.05)
            res["all_started_s"] = round(time.monotonic() - t0, 3)
            if not ok:
                res["error"] = "not all programs started"
                return res
            time.sleep(2.0)
            pids = [p.pid for _, p in boxes]
            rss = [status_kb(pid, "VmRSS") or 0 for pid in pids]
            pss = [pss_kb(pid) or 0 for pid in pids]
            res["rss_mb_total"] = round(sum(rss) / 1024, 1)
            res["pss_mb_total"] = round(sum(pss) / 1024, 1)
            res["rss_mb_each"] = summary([x / 1024 for x in rss], 2)
            c0 = sum(cpu_seconds(pid) for pid in pids)
            res["startup_cpu_s_total"] = round(c0, 3)
            time.sleep(QUIET_WINDOW)
            c1 = sum(cpu_seconds(pid) for pid in pids)
            res["idle_cpu_s_per_hour_total"] = round((c1 - c0) * 3600 / QUIET_WINDOW, 2)
            # one signal each, then wait for every exit
            t0 = time.monotonic()
            for pid in pids:
                os.kill(pid, signal.SIGUSR1)
            sent = time.monotonic() - t0
            done: dict[int, tuple[float, int, Any]] = {}
            hwm = {pid: status_kb(pid, "VmHWM") or 0 for pid in pids}
            while len(done) < n:
                pid, status, ru = os.wait4(-1, os.WNOHANG)
                if pid == 0:
                    for q in pids:
                        if q not in done:
                            hwm[q] = max(hwm[q], status_kb(q, "VmHWM") or 0)
                    time.sleep(0.02)
                    continue
                if pid in pids:
                    done[pid] = (time.monotonic() - t0, os.waitstatus_to_exitcode(status), ru)
            for _b, p in boxes:
                p.returncode = done[p.pid][1]
            finish = [d[0] for d in done.values()]
            codes = [d[1] for d in done.values()]
            cpu_life = [d[2].ru_utime + d[2].ru_stime for d in done.values()]
            res["signals_sent_in_s"] = round(sent, 4)
            res["all_checkpointed_s"] = round(max(finish), 3)
            res["checkpointed_s"] = summary(finish, 3)
            res["exit_85"] = codes.count(85)
            res["other_exits"] = sorted({c for c in codes if c != 85})
            res["cpu_s_total_lifetime"] = round(sum(cpu_life), 2)
            res["checkpoint_phase_cpu_s_total"] = round(sum(cpu_life) - c1, 2)
            res["peak_rss_mb_each"] = summary([kb / 1024 for kb in hwm.values()], 2)
            res["committed_stores"] = sum(
                1 for b, _ in boxes if (b / "checkpoint.atomic" / "MANIFEST.json").exists()
            )
            log(
                f"scale {n}: started in {res['all_started_s']} s, RSS {res['rss_mb_total']} MB "
                f"(PSS {res['pss_mb_total']}), all checkpointed in {res['all_checkpointed_s']} s, "
                f"exit 85: {res['exit_85']}/{n}"
            )
        finally:
            procs.kill_all()
        if tools.get("tini"):
            res["tini"] = _tini_memory(prog, n, tools["tini"], tmp)
    return res


def _tini_memory(prog: Path, n: int, tini: str, tmp: str) -> dict[str, Any]:
    procs = Procs()
    try:
        boxes = []
        for i in range(n):
            box = Path(tmp, f"tini{i:03d}")
            box.mkdir()
            boxes.append((box, procs.start([tini, "-s", "--", str(prog), "job"], cwd=box)))
        wait_for(lambda: all((b / "ready").exists() for b, _ in boxes), 120, 0.05)
        pids = [p.pid for _, p in boxes]
        return {
            "rss_mb_total": round(sum(status_kb(p, "VmRSS") or 0 for p in pids) / 1024, 1),
            "pss_mb_total": round(sum(pss_kb(p) or 0 for p in pids) / 1024, 1),
        }
    finally:
        procs.kill_all()
