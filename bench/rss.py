#!/usr/bin/env python3
"""Memory of the supervisor: idle, and peak while committing sets of growing size (target 6).

    python3 bench/rss.py [--sizes-mib 256 1024] [--dir /tmp] [--json OUT]
    python3 bench/rss.py --sizes-mib 256 1024 4096          # the full run (needs 2x4 GiB free)

Idle: each wrapper around ``sleep 600`` for 3 s, then VmRSS, VmHWM and PSS: the interpreter
alone (``python -I -c 'sleep'``, the floor of any Python supervisor), ``ckpt-supervisor run --``
(no checkpointing), the same with ``--checkpoint ck --trigger-signal SIGUSR1`` (the store is
imported at start to look for a committed checkpoint), and tini. Commit: a supervisor whose
checkpoint is 4 files of SIZE/4 plus a small file the bench rewrites after the request (as the
program would) commits once (``--trigger-signal SIGUSR1 --job-signal SIGWINCH --complete-when
quiet=0``) and exits 85; VmHWM is read every 5 ms until it exits (not wait4's ru_maxrss, which
counts the RSS of the process that forked it). The supervisor is this worktree's package run by
this interpreter (``python -m supervisor``), or the console script given with --supervisor (e.g. the
venv bench/startup_ratio.py installs: /tmp/ckpt-bench-startup/now/venv/bin/ckpt-supervisor);
RSS does not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import common  # noqa: E402
from common import PY, Procs, pss_kb, status_kb, sup_env  # noqa: E402

MIB = 1 << 20
SCRIPT: list[str] = []  # --supervisor: an installed console script instead of python -m supervisor


def sup_cmd(*args: str) -> list[str]:
    return [*SCRIPT, "run", *args] if SCRIPT else common.sup_cmd(*args)


def run_env() -> dict[str, str]:
    """common.sup_env(), without its PYTHONPATH for an installed --supervisor: that would make the
    console script import this worktree's package instead of its own."""
    env = sup_env()
    if SCRIPT:
        env.pop("PYTHONPATH", None)
    return env


def idle(work: Path) -> dict[str, Any]:
    procs = Procs()
    sleep = shutil.which("sleep") or "/bin/sleep"
    plan = {
        "python -I (interpreter alone)": [PY, "-I", "-c", "import time; time.sleep(600)"],
        "supervisor, no checkpointing": sup_cmd("--", sleep, "600"),
        "supervisor, --checkpoint + --trigger-signal": sup_cmd("--checkpoint", "ck", "--trigger-signal", "SIGUSR1",
                                                               "--", sleep, "600"),
    }
    tini = shutil.which("tini")
    if tini:
        plan["tini -s"] = [tini, "-s", "--", sleep, "600"]
    out: dict[str, Any] = {}
    try:
        (work / "ck").write_text("0\n")
        started = {k: procs.start(v, env=run_env(), cwd=work) for k, v in plan.items()}
        time.sleep(3.0)
        for k, p in started.items():
            out[k] = {"rss_mb": round((status_kb(p.pid, "VmRSS") or 0) / 1024, 1),
                      "hwm_mb": round((status_kb(p.pid, "VmHWM") or 0) / 1024, 1),
                      "pss_mb": round((pss_kb(p.pid) or 0) / 1024, 1)}
    finally:
        procs.kill_all()
    return out


def wait_event(path: Path, word: str, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and f'"event": "{word}"' in path.read_text():
            return True
        time.sleep(0.005)
    return False


def commit_peak(work: Path, size: int) -> dict[str, Any]:
    d = work / f"set-{size // MIB}"
    d.mkdir()
    block = os.urandom(4 * MIB)
    for i in range(4):
        with open(d / f"ck{i}.bin", "wb") as f:
            for _ in range(size // 4 // len(block)):
                f.write(block)
    (d / "tick").write_text("0\n")
    os.sync()
    events = d / "events.jsonl"
    argv = sup_cmd(*[x for i in range(4) for x in ("--checkpoint", f"ck{i}.bin")], "--checkpoint", "tick",
                   "--trigger-signal", "SIGUSR1", "--job-signal", "SIGWINCH", "--complete-when", "quiet=0",
                   "--events", str(events), "--", shutil.which("sleep") or "/bin/sleep", "600")
    procs = Procs()
    try:
        p = procs.start(argv, env=run_env(), cwd=d)
        if not wait_event(events, "started", 60):
            return {"error": "not started"}
        time.sleep(0.5)
        before = status_kb(p.pid, "VmHWM") or 0
        os.kill(p.pid, signal.SIGUSR1)
        wait_event(events, "checkpoint_requested", 30)
        (d / "tick").write_text("1\n")
        hwm = before
        t0 = time.monotonic()
        while p.poll() is None and time.monotonic() - t0 < 900:
            hwm = max(hwm, status_kb(p.pid, "VmHWM") or 0)
            time.sleep(0.005)
        evs = [json.loads(x) for x in events.read_text().splitlines()]
        committed = next((e for e in evs if e["event"] == "committed"), {})
        return {"bytes": committed.get("bytes"), "commit_s": round(committed.get("seconds", 0), 3),
                "exit": p.returncode, "hwm_before_mb": round(before / 1024, 1), "peak_mb": round(hwm / 1024, 1)}
    finally:
        procs.kill_all()
        shutil.rmtree(d, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes-mib", type=int, nargs="+", default=[256, 1024])
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--supervisor", help="an installed ckpt-supervisor console script (a pip install has "
                    "its bytecode; python -m on a source tree without __pycache__ compiles at every start, "
                    "which raises the RSS by ~2.5 MB)")
    ap.add_argument("--json")
    a = ap.parse_args()
    if a.supervisor:
        SCRIPT.append(a.supervisor)
    work = Path(tempfile.mkdtemp(prefix="bench-rss-", dir=a.dir))
    try:
        res: dict[str, Any] = {"idle": idle(work), "commit": {}}
        for s in a.sizes_mib:
            res["commit"][f"{s} MiB"] = commit_peak(work, s * MIB)
            print(f"[rss] {s} MiB: {res['commit'][f'{s} MiB']}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(res, indent=1)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
