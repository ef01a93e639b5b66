#!/usr/bin/env python3
"""Run every benchmark of issue 7 and write one JSON file of results.

    python3 bench/run.py [--quick] [--out bench/results/latest.json] [--only NAME ...]
    python3 bench/render.py bench/results/latest.json     # -> docs/performance.md

Measurements (names for --only): startup, signals, idle (with memory), watch, store, scale,
goodput. --quick shortens each (60 s idle window extrapolated to an hour, 256 MiB sets, 50
supervisors, fewer runs); the full run uses 1 GiB and 4 GiB sets and 200 supervisors.
The C helper (bench/c/benchprog.c) is compiled into a temporary directory. Every process started
is killed by PID in a finally block; big temporary files are removed. No timing assertion here is
a test: this is run by hand, and the figures go to docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import common  # noqa: E402

ALL = ["startup", "signals", "idle", "watch", "store", "scale", "goodput"]
GIB = 1 << 30


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def params(quick: bool) -> dict[str, Any]:
    if quick:
        return {
            "startup_runs": 40,
            "signals": 500,
            "idle_window": 60.0,
            "watch_n": 12,
            "watch_period": 0.4,
            "store_sizes": [256 << 20],
            "store_reps": 3,
            "scale_n": 50,
            "goodput": {
                "work": 30.0,
                "cost": 0.3,
                "mtbf": 10.0,
                "seeds": [1],
                "factors": [0.5, 1.0, 2.0],
            },
        }
    return {
        "startup_runs": 200,
        "signals": 500,
        "idle_window": 300.0,
        "watch_n": 30,
        "watch_period": 0.4,
        "store_sizes": [1 * GIB, 4 * GIB],
        "store_reps": 3,
        "scale_n": 200,
        "goodput": {
            "work": 60.0,
            "cost": 0.5,
            "mtbf": 20.0,
            "seeds": [1, 2, 3],
            "factors": [0.5, 1.0, 2.0],
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick", action="store_true", help="short run (minutes instead of half an hour)"
    )
    ap.add_argument(
        "--out", default=str(HERE / "results" / "latest.json"), help="JSON file to write"
    )
    ap.add_argument("--only", nargs="+", choices=ALL, help="run only these measurements")
    ap.add_argument(
        "--bench-dir",
        default=None,
        help="directory for the checkpoint sets (default: the system temp dir); its file "
        "system is reported",
    )
    ap.add_argument("--no-tmpfs", action="store_true", help="skip the extra store run on /dev/shm")
    args = ap.parse_args(argv)
    p = params(args.quick)
    bench_dir = Path(args.bench_dir or tempfile.gettempdir()).resolve()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    if args.only and out.exists():
        results = json.loads(out.read_text())  # update those measurements in place
    tools = common.ensure_tools(log)
    results.update(
        {
            "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "mode": "quick" if args.quick else "full",
            "params": p,
            "machine": common.machine(bench_dir),
            "tools": tools,
            "notes": [
                f"{n} not available: its columns are skipped" for n, v in tools.items() if v is None
            ],
        }
    )
    git = subprocess.run(
        ["git", "-C", str(common.REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    )
    results["commit"] = git.stdout.strip() or None

    def save() -> None:
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")
        os.replace(tmp, out)

    workdir = Path(tempfile.mkdtemp(prefix="bench-bin-"))
    try:
        prog = workdir / "benchprog"
        err = common.compile_c(HERE / "c" / "benchprog.c", prog)
        if err:
            log(f"cannot compile the C helper: {err}")
            results["notes"].append(f"C helper not compiled: {err}")
            prog = None  # type: ignore[assignment]
        todo = args.only or ALL
        for name in todo:
            t0 = time.monotonic()
            log(f"--- {name}")
            load0 = os.getloadavg()[0]
            try:
                results[name] = run_one(name, p, tools, prog, bench_dir, args)
            except Exception as exc:  # one broken measurement must not lose the others
                results[name] = {"error": f"{exc!r}", "traceback": traceback.format_exc()}
                log(f"{name} failed: {exc!r}")
            results[name]["elapsed_s"] = round(time.monotonic() - t0, 1)
            # other people's jobs share the machine: say how busy it was
            results[name]["loadavg_1min"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
            save()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    log(f"wrote {out}")
    return 0


def run_one(
    name: str,
    p: dict[str, Any],
    tools: dict[str, Any],
    prog: Path | None,
    bench_dir: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    if name == "startup":
        import startup

        return startup.measure(tools, p["startup_runs"], log)
    if prog is None and name in ("signals", "store", "scale"):
        return {"error": "needs the C helper"}
    if name == "signals":
        import signals_latency

        return signals_latency.measure(prog, tools, p["signals"], log)  # type: ignore[arg-type]
    if name == "idle":
        import idle

        return idle.measure(prog, tools, p["idle_window"], log)  # type: ignore[arg-type]
    if name == "watch":
        import watch_latency

        return watch_latency.measure(p["watch_n"], p["watch_period"], log)
    if name == "store":
        import store_speed

        tmpfs = None if args.no_tmpfs else Path("/dev/shm")
        return store_speed.measure(p["store_sizes"], p["store_reps"], bench_dir, prog, log, tmpfs)  # type: ignore[arg-type]
    if name == "scale":
        import scale

        return scale.measure(prog, p["scale_n"], tools, log)  # type: ignore[arg-type]
    if name == "goodput":
        import goodput

        g = p["goodput"]
        return goodput.measure(g["work"], g["cost"], g["mtbf"], g["seeds"], g["factors"], log)
    raise ValueError(name)


if __name__ == "__main__":
    sys.exit(main())
