#!/usr/bin/env python3
"""The torn-checkpoint torture, long variant (issue 12; the quick one is
tests/reliability/test_torture.py). Run by hand:

    python bench/torture.py --target 2000 --json bench/results/torture.json

Rounds over every scenario of tests/support/torture.py (trigger mode x completion rule x
writer), through ``ckpt-supervisor run`` with evictions at random moments, plus one dry run per
round, until ``--target`` commits were made; every committed store is checked by the program's
own consistency check. Prints one line per scenario run and a summary; exit 1 if any store (or
any restore) was mixed or torn. ``CKPT_TORTURE_CODE=DIR`` runs another checkout's supervisor
(e.g. the code before the fix) with this tree's victim and checks.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

import torture


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--target", type=int, default=2000, help="stop after this many commits (default 2000)")
    p.add_argument("--seconds", type=float, default=20.0, help="seconds per scenario per round (default 20)")
    p.add_argument("--size", type=int, default=2 << 20, help="bytes per data file (default 2 MiB)")
    p.add_argument("--dryrun-steps", type=int, default=20, help="steps of each dry-run job (0: no dry runs)")
    p.add_argument("--evict-share", type=float, default=0.4,
                   help="share of executions evicted at a random moment from 1 ms to 1.5 s (default 0.4)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only", action="append", help="run only this scenario (repeatable)")
    p.add_argument("--via", choices=("both", "run", "dry-run"), default="both",
                   help="drive the scenarios through run, the dry run, or both (default)")
    p.add_argument("--work", type=Path, default=None, help="work directory (default: a temporary one)")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    a = p.parse_args()
    work = a.work or Path(tempfile.mkdtemp(prefix="ckpt-torture-"))
    scenarios = [torture.BY_NAME[n] for n in a.only] if a.only else list(torture.SCENARIOS)
    results: list[dict[str, object]] = []
    commits = bad = checks = executions = evictions = mixed = torn_starts = 0
    t0 = time.monotonic()
    rnd = 0
    while commits < a.target:
        rnd += 1
        runs = [("run", sc) for sc in scenarios] if a.via != "dry-run" else []
        if a.via == "dry-run":
            runs = [("dry-run", sc) for sc in scenarios]
        elif a.dryrun_steps and a.via == "both":
            runs.append(("dry-run", scenarios[rnd % len(scenarios)]))
        for via, sc in runs:
            seed = a.seed * 1000 + rnd
            if via == "run":
                r = torture.via_run(sc, work, seconds=a.seconds, seed=seed, size=a.size,
                                    evict_share=a.evict_share)
            else:
                r = torture.via_dryrun(sc, work, steps=a.dryrun_steps, seed=seed, size=a.size)
            d = r.as_dict()
            d["round"] = rnd
            results.append(d)
            commits += r.commits
            checks += r.checks
            executions += r.executions
            evictions += r.evictions
            bad += len(r.bad)
            mixed += r.mixed
            torn_starts += r.torn_starts
            print(f"round {rnd} {via:7} {sc.name:22} executions {r.executions:4} evictions {r.evictions:4} "
                  f"commits {r.commits:4} checked {r.checks:4} mixed {r.mixed} torn starts {r.torn_starts} "
                  f"{r.bad[:1] or ''}", flush=True)
            if commits >= a.target:
                break
    summary = {"commits": commits, "checked": checks, "executions": executions, "evictions": evictions,
               "mixed_stores": mixed, "torn_starts": torn_starts, "other_failures": bad - mixed - torn_starts, "rounds": rnd, "seconds": round(time.monotonic() - t0, 1),
               "size": a.size, "seed": a.seed}
    print("summary", json.dumps(summary), flush=True)
    if a.json:
        a.json.write_text(json.dumps({"summary": summary, "runs": results}, indent=1) + "\n")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
