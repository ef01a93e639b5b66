#!/usr/bin/env python3
"""On a real HTCondor pool: what the supervisor adds to each checkpoint cycle of the seed's vuc.py.

    HTCONDOR_POOL_DIR=/tmp/pool-X HTCONDOR_POOL_PORT=96NN python3 bench/pool_cycle.py [--pairs 3]

Needs a running pool (``../shared/htcondor/pool start`` with the same variables) and root (the
job directories are handed to the submitter). Submits, in turn, PAIRS pairs of jobs:

* ``plain``: the seed HOWTO's job, unchanged (``vuc.py`` exits 77 after every third step;
  ``+SuccessCheckpointExitCode = 77``, ``+WantFTOnCheckpoint``), three checkpoint cycles;
* ``supervised``: examples/vuc-supervised: the same ``vuc.py`` under
  ``python3 ckpt-supervisor.pyz run --checkpoint vuc.ckpt --inspect-on-exit 77`` (the
  single-file supervisor, as shipped with a job), ``checkpoint_exit_code = 85``,
  ``transfer_checkpoint_files = checkpoint.atomic``.

In both, vuc.py runs under a two-line sh wrapper that appends ``start <time>`` and
``exit <code> <time>`` (CLOCK_REALTIME, ns) to a file outside the sandbox, so the program's own
checkpoint exit and its next start are known to the millisecond (the job event log has one-second
resolution; its 040 transfer events are read too). A cycle is: program's checkpoint exit -> its
next start. For the supervised job the cycle also holds the supervisor's commit, its exit, its
next start and the restore; their share comes from the supervisor's --events file.

Prints a JSON summary: per job kind the cycle times (median, all), and the added time of the
supervised cycle against the plain one (absolute and in %), with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
POOL = Path(os.environ.get("HTCONDOR_POOL_SCRIPT", REPO.parent.parent / "shared" / "htcondor" / "pool"))
if not POOL.exists():
    POOL = Path("/work/shared/htcondor/pool")
PY = "/usr/bin/python3"

WRAPPER = """#!/bin/sh
echo "start $(date +%s.%N)" >> {times}
"$@"
rc=$?
echo "exit $rc $(date +%s.%N)" >> {times}
exit $rc
"""

PLAIN = """\
when_to_transfer_output     = ON_EXIT_OR_EVICT
+WantFTOnCheckpoint         = TRUE
+SuccessCheckpointExitCode  = 77
executable                  = timed.sh
arguments                   = "{py} vuc.py"
transfer_input_files        = vuc.py
should_transfer_files       = yes
transfer_output_files       = vuc.ckpt
output                      = vuc.out
error                       = vuc.err
log                         = vuc.log
queue 1
"""

SUPERVISED = """\
executable                  = {py}
transfer_executable         = false
arguments                   = "ckpt-supervisor.pyz run --checkpoint vuc.ckpt --inspect-on-exit 77 --events {events} -- ./timed.sh {py} vuc.py"
transfer_input_files        = vuc.py, timed.sh, ckpt-supervisor.pyz
checkpoint_exit_code        = 85
transfer_checkpoint_files   = checkpoint.atomic
when_to_transfer_output     = ON_EXIT_OR_EVICT
should_transfer_files       = yes
transfer_output_files       = vuc.ckpt
output                      = vuc.out
error                       = vuc.err
log                         = vuc.log
queue 1
"""


def pool(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(POOL), *args], capture_output=True, text=True, timeout=timeout, check=False)


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def run_job(kind: str, base: Path, pyz: Path, n: int) -> dict[str, Any]:
    d = base / f"{kind}-{n}"
    d.mkdir(parents=True)
    times = base / "times" / f"{kind}-{n}.txt"
    events = base / "times" / f"{kind}-{n}.events.jsonl"
    shutil.copy(REPO / "examples" / "vuc" / "vuc.py", d / "vuc.py")
    (d / "timed.sh").write_text(WRAPPER.format(times=times))
    (d / "timed.sh").chmod(0o755)
    if kind == "plain":
        (d / "job.submit").write_text(PLAIN.format(py=PY))
    else:
        shutil.copy(pyz, d / "ckpt-supervisor.pyz")
        (d / "job.submit").write_text(SUPERVISED.format(py=PY, events=events))
    subprocess.run(["chown", "-R", "condortest", str(d)], check=True)
    t0 = time.time()
    r = pool("as-submitter", "sh", "-c", f"cd {d} && condor_submit job.submit >/dev/null && condor_wait -wait 600 vuc.log")
    wall = time.time() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{kind} job: {r.stdout} {r.stderr}")
    marks = [line.split() for line in times.read_text().splitlines()]
    starts = [float(m[1]) for m in marks if m[0] == "start"]
    exits = [(int(m[1]), float(m[2])) for m in marks if m[0] == "exit"]
    cycles = [starts[i + 1] - exits[i][1] for i in range(len(exits)) if i + 1 < len(starts)]
    out: dict[str, Any] = {
        "job_wall_s": round(wall, 3), "exit_codes": [c for c, _ in exits],
        "cycles_s": [round(c, 4) for c in cycles], "ckpt": (d / "vuc.ckpt").read_text().strip(),
        "log_040": sum(1 for line in (d / "vuc.log").read_text().splitlines() if line.startswith("040")),
    }
    if kind == "supervised" and events.exists():
        evs = [json.loads(line) for line in events.read_text().splitlines()]
        out["committed_s"] = [round(e.get("seconds", 0), 4) for e in evs if e["event"] == "committed"]
        out["restored_s"] = [round(e.get("seconds", 0), 4) for e in evs if e["event"] == "restored"]
        out["supervisor"] = supervisor_share(evs, exits, starts)
    return out


def supervisor_share(evs: list[dict[str, Any]], exits: list[tuple[int, float]], starts: list[float]) -> dict[str, Any]:
    """Per cycle, from the supervisor's events (each carries its pid): program exit -> the exiting
    supervisor's last event (commit and exit decision); the next supervisor's first event ->
    program start (its start-up after Python's own, restore, spawn)."""
    stamps = [(float(e["time"]), int(e.get("pid", 0)), e["event"]) for e in evs if "time" in e]
    old_side, new_side, windows = [], [], []
    for i, (_code, t_exit) in enumerate(exits):
        if i + 1 >= len(starts):
            break
        t_next = starts[i + 1]
        before = [p for t, p, _e in stamps if t <= t_exit]
        if not before:
            continue
        old_pid = before[-1]
        inside = [(t, p, e) for t, p, e in stamps if t_exit < t < t_next]
        old = [t for t, p, _e in inside if p == old_pid]
        new = [t for t, p, _e in inside if p != old_pid]
        if old:
            old_side.append(round(old[-1] - t_exit, 4))
        if new:
            new_side.append(round(t_next - new[0], 4))
        windows.append([f"{e}@{t - t_exit:.3f}" for t, _p, e in inside])
    return {"exit_to_last_event_s": old_side, "first_event_to_program_start_s": new_side,
            "events_in_cycle": windows[:1]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--work", default="/tmp/ckpt-bench-pool")
    ap.add_argument("--pyz", help="the single-file supervisor (default: build one from this worktree)")
    ap.add_argument("--json", help="write the result here too")
    a = ap.parse_args()
    base = Path(a.work) / time.strftime("%Y%m%dT%H%M%S")
    (base / "times").mkdir(parents=True)
    os.chmod(base / "times", 0o777)
    os.chmod(base, 0o755)
    pyz = Path(a.pyz) if a.pyz else base / "ckpt-supervisor.pyz"
    if not a.pyz:
        subprocess.run([sys.executable, "-m", "supervisor.build_pyz", "-o", str(pyz), "--wheels",
                        str(Path(a.work) / "wheels")], cwd=REPO, check=True)
    res: dict[str, Any] = {"load": [loadavg()], "runs": {"plain": [], "supervised": []}}
    for n in range(a.pairs):
        for kind in (("plain", "supervised") if n % 2 == 0 else ("supervised", "plain")):
            r = run_job(kind, base, pyz, n)
            print(f"[pool_cycle] {kind} {n}: {r}", file=sys.stderr, flush=True)
            res["runs"][kind].append(r)
            res["load"].append(loadavg())
    for kind in ("plain", "supervised"):
        cyc = [c for r in res["runs"][kind] for c in r["cycles_s"]]
        res[kind] = {"cycles": len(cyc), "median_s": round(statistics.median(cyc), 4) if cyc else None,
                     "mean_s": round(statistics.fmean(cyc), 4) if cyc else None,
                     "min_s": min(cyc, default=None), "max_s": max(cyc, default=None)}
    p, s = res["plain"]["median_s"], res["supervised"]["median_s"]
    if p and s:
        res["added_median_s"] = round(s - p, 4)
        res["added_pct"] = round(100 * (s - p) / p, 1)
    res["work"] = str(base)
    text = json.dumps(res, indent=1)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
