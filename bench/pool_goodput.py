#!/usr/bin/env python3
"""On a real HTCondor pool: goodput of a supervised job under evictions, against Young's optimum.

    HTCONDOR_POOL_DIR=/tmp/pool-X HTCONDOR_POOL_PORT=96NN python3 bench/pool_goodput.py \\
        [--work 60] [--cost 1.0] [--mtbf 30] [--factors 0.5 1 2] [--seeds 1]

Needs a running pool and root. The job is bench/programs/worker.py (WORK seconds of work in
50 ms steps; COST seconds to write each checkpoint) under the single-file supervisor:
``run --checkpoint state --every T --job-signal SIGUSR1 --complete-when quiet=0``; every
checkpoint is an exit 85, an upload to the schedd and a restart in place.

1. Calibration: the job without evictions at T = 8 s gives C_eff = (wall from the first
   execution - WORK) / checkpoints, the effective cost of one checkpoint cycle on the pool.
2. Evictions: a driver per job draws exponential intervals of mean MTBF (seeded) and, when one
   expires while the job is running, sends ``condor_vacate_job``; the job goes back to the queue
   and restarts from its last committed checkpoint on the next match. The restart cost after an
   eviction R (eviction to next execution, from the job event log) is measured, not assumed.
3. Each interval T = factor x T_opt with T_opt = sqrt(2 C_eff MTBF) (Young); all jobs run at the

   The model is Daly's expectation for exponential failures with C_eff and the measured R.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
from pool_cycle import POOL, PY  # noqa: E402

WORKER = REPO / "bench" / "programs" / "worker.py"

SUBMIT = """\
executable                  = {py}
transfer_executable         = false
arguments                   = "ckpt-supervisor.pyz run --checkpoint state --every {every:.3f} --job-signal SIGUSR1 --complete-when quiet=0 --events {events} -- {py} worker.py {work} {cost}"
transfer_input_files        = worker.py, ckpt-supervisor.pyz
checkpoint_exit_code        = 85
transfer_checkpoint_files   = checkpoint.atomic
when_to_transfer_output     = ON_EXIT
should_transfer_files       = yes
transfer_output_files       = result
output                      = job.out
error                       = job.err
log                         = job.log
queue 1
"""

EVENT = re.compile(r"^(\d{3}) \((\d+)\.\d+\.\d+\) (\S+ \S+|\S+T\S+)")


def pool(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(POOL), *args], capture_output=True, text=True, timeout=timeout, check=False)


def parse_log(path: Path) -> list[tuple[str, float]]:
    out = []
    year = datetime.now().year
    for line in path.read_text().splitlines():
        m = EVENT.match(line)
        if not m:
            continue
        stamp = m.group(3)
        try:
            t = datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            t = datetime.strptime(f"{year}/{stamp}", "%Y/%m/%d %H:%M:%S").timestamp()
        out.append((m.group(1), t))
    return out


def daly(t: float, c: float, r: float, m: float) -> float:
    return t / ((m + r) * (math.exp((t + c) / m) - 1))


class Job:
    def __init__(self, base: Path, name: str, pyz: Path, every: float, *, work: float, cost: float,
                 mtbf: float | None, seed: int) -> None:
        self.d = base / name
        self.d.mkdir(parents=True)
        shutil.copy(WORKER, self.d / "worker.py")
        shutil.copy(pyz, self.d / "ckpt-supervisor.pyz")
        self.events = base / "events" / f"{name}.jsonl"
        self.events.parent.mkdir(exist_ok=True)
        os.chmod(self.events.parent, 0o777)
        (self.d / "job.submit").write_text(SUBMIT.format(py=PY, every=every, work=work, cost=cost,
                                                         events=self.events))
        subprocess.run(["chown", "-R", "condortest", str(self.d)], check=True)
        self.name, self.every, self.work, self.mtbf, self.seed = name, every, work, mtbf, seed
        self.vacates: list[float] = []
        self.result: dict[str, Any] = {}

    def submit(self) -> None:
        r = pool("as-submitter", "sh", "-c", f"cd {self.d} && condor_submit -terse job.submit")
        self.cluster = r.stdout.strip().split(".")[0]
        if not self.cluster.isdigit():
            raise RuntimeError(f"submit failed: {r.stdout} {r.stderr}")

    def status(self) -> int | None:
        r = pool("as-submitter", "condor_q", self.cluster, "-af", "JobStatus")
        s = r.stdout.strip()
        return int(s) if s.isdigit() else None

    def drive(self) -> None:
        """Evict at exponential intervals of running time until the job leaves the queue."""
        rng = random.Random(self.seed)
        next_in = rng.expovariate(1 / self.mtbf) if self.mtbf else math.inf
        last = time.monotonic()
        running_for = 0.0
        while True:
            st = self.status()
            now = time.monotonic()
            if st is None or st == 4:
                break
            if st == 2:
                running_for += now - last
            last = now
            if running_for >= next_in:
                pool("as-submitter", "condor_vacate_job", self.cluster)
                self.vacates.append(time.time())
                running_for = 0.0
                next_in = rng.expovariate(1 / self.mtbf)
            time.sleep(0.5)
        pool("as-submitter", "sh", "-c", f"cd {self.d} && condor_wait -wait 600 job.log")
        ev = parse_log(self.d / "job.log")
        t_sub = next(t for c, t in ev if c == "000")
        t_end = next(t for c, t in ev if c == "005")
        execs = [t for c, t in ev if c == "001"]
        evicts = [t for c, t in ev if c == "004"]
        restart = [min((x for x in execs if x >= e), default=e) - e for e in evicts]
        events = [json.loads(x) for x in self.events.read_text().splitlines()] \
            if self.events.exists() else []
        self.result = {
            "every_s": round(self.every, 3), "seed": self.seed, "wall_s": t_end - t_sub,
            "goodput_from_submission": round(self.work / (t_end - t_sub), 4),
            "first_start_s": execs[0] - t_sub if execs else None,
            # the model has no initial queue wait: from the first execution to the termination
            "wall_from_first_start_s": t_end - execs[0] if execs else None,
            "goodput": round(self.work / (t_end - execs[0]), 4) if execs else None,
            # 040 pairs: input transfer(s), one per checkpoint, the final output
            "checkpoints": sum(1 for e in events if e["event"] == "committed" and e.get("bytes")),
            "committed": sum(1 for e in events if e["event"] == "committed"),
            "evictions": len(evicts), "vacates_sent": len(self.vacates),
            "restart_after_eviction_s": restart,
            "result": (self.d / "result").read_text().strip() if (self.d / "result").exists() else None,
        }


def run_all(jobs: list[Job]) -> None:
    for j in jobs:
        j.submit()
    threads = [threading.Thread(target=j.drive) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", type=float, default=60.0)
    ap.add_argument("--cost", type=float, default=1.0)
    ap.add_argument("--mtbf", type=float, default=30.0)
    ap.add_argument("--factors", type=float, nargs="+", default=[0.5, 1.0, 2.0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--calibration-every", type=float, default=8.0)
    ap.add_argument("--work-dir", default="/tmp/ckpt-bench-pool")
    ap.add_argument("--pyz")
    ap.add_argument("--json")
    a = ap.parse_args()
    base = Path(a.work_dir) / ("goodput-" + time.strftime("%Y%m%dT%H%M%S"))
    base.mkdir(parents=True)
    os.chmod(base, 0o755)
    pyz = Path(a.pyz) if a.pyz else base / "ckpt-supervisor.pyz"
    if not a.pyz:
        subprocess.run([sys.executable, "-m", "supervisor.build_pyz", "-o", str(pyz), "--wheels",
                        str(Path(a.work_dir) / "wheels")], cwd=REPO, check=True)
    log = lambda m: print(f"[pool_goodput] {m}", file=sys.stderr, flush=True)  # noqa: E731
    cal = Job(base, "calibration", pyz, a.calibration_every, work=a.work, cost=a.cost, mtbf=None, seed=0)
    run_all([cal])
    c = cal.result
    c_eff = (c["wall_from_first_start_s"] - a.work) / max(1, c["checkpoints"])
    t_opt = math.sqrt(2 * c_eff * a.mtbf)
    log(f"calibration {c}; C_eff {c_eff:.3f} s; T_opt {t_opt:.2f} s")
    jobs = [Job(base, f"T{f:g}-s{s}", pyz, f * t_opt, work=a.work, cost=a.cost, mtbf=a.mtbf, seed=s)
            for f in a.factors for s in a.seeds]
    for seed in a.seeds:  # one batch per seed: no more jobs than slots at once
        run_all([j for j in jobs if j.seed == seed])
    restarts = [x for j in jobs for x in j.result["restart_after_eviction_s"]]
    r_ev = statistics.fmean(restarts) if restarts else c_eff - a.cost
    rows = []
    for f in a.factors:
        js = [j for j in jobs if abs(j.every - f * t_opt) < 1e-9]
        wall = sum(j.result["wall_from_first_start_s"] for j in js)
        pooled = a.work * len(js) / wall
        rows.append({"factor": f, "every_s": round(f * t_opt, 3), "goodput_pooled": round(pooled, 4),
                     "model_goodput": round(daly(f * t_opt, c_eff, r_ev, a.mtbf), 4),
                     "runs": [j.result for j in js]})
        log(f"T={f * t_opt:.2f}s: goodput {pooled:.3f}, model {rows[-1]['model_goodput']}")
    res = {"work_s": a.work, "cost_s": a.cost, "mtbf_s": a.mtbf, "calibration": c,
           "c_eff_s": round(c_eff, 3), "young_t_opt_s": round(t_opt, 3),
           "restart_after_eviction_mean_s": round(r_ev, 3), "intervals": rows,
           "loadavg_1min": float(Path("/proc/loadavg").read_text().split()[0]), "work": str(base)}
    text = json.dumps(res, indent=1)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
