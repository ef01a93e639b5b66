#!/usr/bin/env python3
"""CPU per passed-on signal: the supervisor against the floor of its mechanism (issue 15, 2a).

    python3 bench/signal_cpu.py [--signals 3000] [--rounds 3]

Each receiver runs around a program that handles SIGUSR1 and sleeps; SIGNALS SIGUSR1, 2 ms
apart, go to the receiver, and the scheduler's account of its main thread
(``/proc/PID/task/PID/schedstat``: on-CPU ns, run-queue wait ns) is read before and after. The
receivers, in turn, ROUNDS times:

* ``supervisor``: ``ckpt-supervisor run --`` ($CKPT_BENCH_SUPERVISOR, else this worktree);
* ``epoll-loop``: the supervisor's mechanism and nothing else (a no-op Python handler, the wakeup
  fd, ``selectors``, ``killpg``, ``waitpid``);
* ``python-forwarder``: ``killpg`` inside the Python handler, the main thread in ``waitpid``;
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

from common import sup_cmd, sup_env

PROGRAM = [sys.executable, "-c",
           "import signal,time\nsignal.signal(signal.SIGUSR1, lambda *a: None)\nwhile 1: time.sleep(10)"]

EPOLL_LOOP = """
import os, selectors, signal, sys
pid = os.fork()
if pid == 0:
    os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])
r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
for s in (signal.SIGUSR1, signal.SIGTERM, signal.SIGCHLD):
    signal.signal(s, lambda *a: None)
signal.set_wakeup_fd(w, warn_on_full_buffer=False)
sel = selectors.DefaultSelector(); sel.register(r, selectors.EVENT_READ, "signal")
while True:
    for key, _ in sel.select(None):
        for s in os.read(r, 4096):
            if s != signal.SIGCHLD:
                os.killpg(pid, s)
    if os.waitpid(-1, os.WNOHANG)[0] == pid:
        break
"""

FORWARDER = """
import os, signal, sys
pid = os.fork()
if pid == 0:
    os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])
for s in (signal.SIGUSR1, signal.SIGTERM):
    signal.signal(s, lambda s, f: os.killpg(pid, s))
os.waitpid(pid, 0)
"""


def schedstat(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
        on_cpu, wait, _ = f.read().split()
    return int(on_cpu), int(wait)


def measure(argv: list[str], n: int) -> dict[str, float]:
    p = subprocess.Popen([*argv, *PROGRAM], env=sup_env(), stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        cpu0, wait0 = schedstat(p.pid)
        for _ in range(n):
            os.kill(p.pid, signal.SIGUSR1)
            time.sleep(0.002)
        time.sleep(0.1)
        cpu1, wait1 = schedstat(p.pid)
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
        "epoll-loop": [sys.executable, "-c", EPOLL_LOOP],
        "python-forwarder": [sys.executable, "-c", FORWARDER],
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
