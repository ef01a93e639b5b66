#!/usr/bin/env python3
"""CPU per passed-on signal: the supervisor against the floor of its mechanism (issue 15, 2a).

    python3 bench/signal_cpu.py [--signals 3000] [--rounds 3]

Each receiver runs around a program that handles SIGUSR1 and sleeps; SIGNALS SIGUSR1, 2 ms
apart, go to the receiver, and the scheduler's account of its main thread
(``/proc/PID/task/PID/schedstat``: on-CPU ns, run-queue wait ns) is read before and after. The
receivers, in turn, ROUNDS times:

* ``supervisor``: ``ckpt-supervisor run --`` ($CKPT_BENCH_SUPERVISOR, else this worktree);
* ``python-loop``: the supervisor's mechanism and nothing else (a no-op Python handler, the wakeup
  fd, ``selectors``, ``killpg``, ``waitpid``; ``common.PY_LOOP``, as in signal_ratio.py);
* ``python-minimal``: ``killpg`` inside the Python handler, the main thread in ``waitpid``;
* ``tini``: ``tini -s`` when installed.

Prints JSON: per receiver the on-CPU and run-queue µs per signal of each round, and the load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from common import PY_LOOP, PY_MINIMAL, schedstat, sup_cmd, sup_env

PROGRAM = [sys.executable, "-c",
           "import signal,time\nsignal.signal(signal.SIGUSR1, lambda *a: None)\nwhile 1: time.sleep(10)"]

def measure(argv: list[str], n: int) -> dict[str, float]:
    p = subprocess.Popen([*argv, *PROGRAM], env=sup_env(), stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        cpu0, wait0, _ = schedstat(p.pid)
        for _ in range(n):
            os.kill(p.pid, signal.SIGUSR1)
            time.sleep(0.002)
        time.sleep(0.1)
        cpu1, wait1, _ = schedstat(p.pid)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    return {"on_cpu_us": round((cpu1 - cpu0) / n / 1e3, 1), "runqueue_us": round((wait1 - wait0) / n / 1e3, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--signals", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    receivers = {
        "supervisor": sup_cmd("--"),
        "python-loop": [sys.executable, "-c", PY_LOOP],
        "python-minimal": [sys.executable, "-c", PY_MINIMAL],
    }
    if shutil.which("tini"):
        receivers["tini"] = [shutil.which("tini") or "tini", "-s", "--"]
    res: dict[str, list[dict[str, float]]] = {k: [] for k in receivers}
    load = [os.getloadavg()[0]]
    for _ in range(a.rounds):
        for name, argv in receivers.items():
            res[name].append(measure(argv, a.signals))
    load.append(os.getloadavg()[0])
    print(json.dumps({"signals": a.signals, "load": load, "per_signal": res}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
