"""8. End-to-end goodput in the dry run, against Young's optimum.

The job (bench/programs/worker.py under ``ckpt-supervisor run --every T --job-signal SIGUSR1
--complete-when quiet=0``) needs WORK seconds of work and spends COST seconds writing each
checkpoint. ``ckpt-supervisor dry-run --evict-random MTBF --seed N`` evicts it at exponentially
distributed intervals; every checkpoint is an exit with code 85, an upload and a restart.

goodput = WORK / wall time of the whole dry run (submission to termination).

A calibration run without evictions gives the effective cost of one checkpoint cycle, C_eff =
(wall - WORK) / checkpoints: the program's COST plus commit, exit, upload and the restart of
supervisor, restore and program. Young's optimum interval is T_opt = sqrt(2 * C_eff * MTBF).
The model prediction for each T is Daly's expectation for exponential failures,
G(T) = T / ((MTBF + R) * (exp((T + C_eff) / MTBF) - 1)), with restart cost R = C_eff - COST.
"""

from __future__ import annotations

import math
import os
import re
import statistics
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from common import PY, REPO, sup_env

WORKER = REPO / "bench" / "programs" / "worker.py"
SUMMARY = re.compile(
    r"executions (\d+), runs (\d+), checkpoints (\d+), evictions (\d+), crashes (\d+)"
)
WALL = re.compile(r"wall time ([\d.]+)s, time committed ([\d.]+)s, time lost ([\d.]+)s")

SUBMIT = """\
executable              = job.sh
should_transfer_files   = yes
when_to_transfer_output = ON_EXIT
+WantFTOnCheckpoint     = TRUE
+SuccessCheckpointExitCode = 85
transfer_checkpoint_files = checkpoint.atomic
transfer_output_files   = result
output                  = job.out
error                   = job.err
log                     = job.log
queue 1
"""


def _dry_run(
    work: float, cost: float, every: float, mtbf: float | None, seed: int
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-goodput-") as tmp:
        d = Path(tmp)
        (d / "job.sh").write_text(
            "#!/bin/sh\n"
            f"PYTHONPATH={REPO} exec {PY} -m supervisor run --checkpoint state --every {every:.3f} "
            f"--job-signal SIGUSR1 --complete-when quiet=0 -- {PY} {WORKER} {work} {cost}\n"
        )
        os.chmod(d / "job.sh", 0o755)
        (d / "job.submit").write_text(SUBMIT)
        argv = [
            PY,
            "-m",
            "supervisor",
            "dry-run",
            "job.submit",
            "--quiet",
            "--work-dir",
            str(d / "work"),
            "--max-starts",
            "1000",
        ]
        if mtbf:
            argv += ["--evict-random", str(mtbf), "--seed", str(seed)]
        r = subprocess.run(
            argv, cwd=d, env=sup_env(), capture_output=True, text=True, timeout=work * 20 + 300
        )
        m1, m2 = SUMMARY.search(r.stdout), WALL.search(r.stdout)
        if r.returncode != 0 or not m1 or not m2:
            return {"error": f"dry run exit {r.returncode}: {(r.stdout + r.stderr)[-800:]}"}
        ex, runs, ck, ev, _cr = (int(x) for x in m1.groups())
        wall, committed, lost = (float(x) for x in m2.groups())
        return {
            "every": round(every, 3),
            "seed": seed,
            "wall_s": wall,
            "goodput": round(work / wall, 4),
            "checkpoints": ck,
            "evictions": ev,
            "executions": ex,
            "runs": runs,
            "time_committed_s": committed,
            "time_lost_s": lost,
        }


def daly(t: float, c: float, r: float, m: float) -> float:
    return t / ((m + r) * (math.exp((t + c) / m) - 1))


def measure(
    work: float, cost: float, mtbf: float, seeds: list[int], factors: list[float], log: Any
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "work_s": work,
        "cost_s": cost,
        "mtbf_s": mtbf,
        "seeds": seeds,
        "dry_run": "ckpt-supervisor dry-run (supervisor/condor/dryrun.py)",
    }
    cal_every = 3.0
    cal_work = min(work, 15.0)
    cal = _dry_run(cal_work, cost, cal_every, None, 0)
    if "error" in cal:
        res["error"] = "calibration: " + cal["error"]
        log(res["error"])
        return res
    c_eff = (cal["wall_s"] - cal_work) / max(1, cal["checkpoints"])
    r = max(0.0, c_eff - cost)
    res["calibration"] = {
        **cal,
        "work_s": cal_work,
        "c_eff_s": round(c_eff, 3),
        "restart_cost_s": round(r, 3),
    }
    t_young_nominal = math.sqrt(2 * cost * mtbf)
    t_opt = math.sqrt(2 * c_eff * mtbf)
    res["young_t_opt_s"] = round(t_opt, 3)
    res["young_t_opt_nominal_cost_s"] = round(t_young_nominal, 3)
    res["model_optimum_goodput"] = round(daly(t_opt, c_eff, r, mtbf), 4)
    log(
        f"goodput: C_eff {c_eff:.3f} s (nominal {cost}), T_opt {t_opt:.2f} s, model G {res['model_optimum_goodput']}"
    )
    rows = []
    for f in factors:
        every = t_opt * f
        runs = [_dry_run(work, cost, every, mtbf, s) for s in seeds]
        good = [x for x in runs if "error" not in x]
        row = {
            "factor": f,
            "every_s": round(every, 3),
            "runs": runs,
            "model_goodput": round(daly(every, c_eff, r, mtbf), 4),
        }
        if good:
            row["goodput_mean"] = round(statistics.fmean(x["goodput"] for x in good), 4)
            row["goodput_median"] = round(statistics.median(x["goodput"] for x in good), 4)
            row["evictions_total"] = sum(x["evictions"] for x in good)
            row["wall_total_s"] = round(sum(x["wall_s"] for x in good), 1)
            # pooled: total work over total wall (less noisy than the mean of ratios)
            row["goodput_pooled"] = round(work * len(good) / sum(x["wall_s"] for x in good), 4)
        rows.append(row)
        log(
            f"goodput T={every:.2f}s: pooled {row.get('goodput_pooled')} (model {row['model_goodput']}), "
            f"evictions {row.get('evictions_total')}"
        )
    res["intervals"] = rows
    best = max(
        (x for x in rows if "goodput_pooled" in x), key=lambda x: x["goodput_pooled"], default=None
    )
    if best:
        res["best_factor"] = best["factor"]
        res["measured_vs_model_at_t_opt"] = next(
            (
                round(x["goodput_pooled"] / x["model_goodput"], 3)
                for x in rows
                if x["factor"] == 1.0 and "goodput_pooled" in x
            ),
            None,
        )
    return res
