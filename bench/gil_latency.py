#!/usr/bin/env python3
"""How long the loop's thread waits to run Python while the commit thread copies (figure 2c).

    python3 bench/gil_latency.py [--mib 256] [--rounds 6] [--per-round 100] [--dir /tmp]

The supervisor passes a signal on from Python code in its main thread; while a commit runs, that
thread must first get the interpreter lock back from the commit thread, which takes and drops it
around every read, CRC and write of the copy (``FS.copy_checksum``). This isolates that wait: the
main thread sleeps in ``select()`` on a pipe, as the loop does; a separate process writes its
CLOCK_MONOTONIC into the pipe every 2 ms (jittered); the main thread records how late it read it.
A copy thread copies a MIB file in a loop with ``FS.copy_checksum`` meanwhile. Variants, run in
turn within each round so load changes hit them alike: ``idle`` (no copy), ``copy`` (as before
``run`` does it: normal priority, switch interval 5 ms), ``nice`` (the copy thread's priority
lowered by 10, that thread only), ``switch`` (switch interval 0.5 ms), ``nice+switch``,
``chunk64k`` / ``chunk1m`` (copy buffer slice; 256 KiB is the store's).

The copy fsyncs each round, as the commit does. Prints JSON: per variant the median, p90, p99 and
max in µs, and the copy's MiB/s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from supervisor.store import fs as fs_mod

NICE = 10  # tried for the commit thread (issue 15, 2c); not kept: see docs/performance.md
SWITCH = 0.0005
VARIANTS = {  # name: (copy, nice, switch interval, chunk)
    "idle": (False, False, None, None),
    "copy": (True, False, None, None),
    "nice": (True, True, None, None),
    "switch": (True, False, SWITCH, None),
    "nice+switch": (True, True, SWITCH, None),
    "chunk64k": (True, False, None, 64 << 10),
    "chunk1m": (True, False, None, 1 << 20),
}


def pinger(w: int, n: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(n):
        time.sleep(0.002 + rng.random() * 0.001)
        os.write(w, struct.pack("d", time.monotonic()))
    os._exit(0)


def one(name: str, n: int, src: Path, dst: Path, seed: int) -> tuple[list[float], float]:
    copy, nice, switch, chunk = VARIANTS[name]
    stop = threading.Event()
    copied = [0]

    def copier() -> None:
        if nice:  # this thread only (Linux)
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + NICE))
        fs = fs_mod.FS()
        while not stop.is_set():
            s = os.open(src, os.O_RDONLY)
            d = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                copied[0] += fs.copy_checksum(s, d)[1]
                if not stop.is_set():
                    os.fsync(d)  # as the commit does: the data goes to the disk
            finally:
                os.close(s)
                os.close(d)
            os.unlink(dst)

    old_chunk, old_switch = fs_mod.COPY_CHUNK, sys.getswitchinterval()
    if chunk:
        fs_mod.COPY_CHUNK = chunk
    if switch:
        sys.setswitchinterval(switch)
    thread = threading.Thread(target=copier, daemon=True) if copy else None
    r, w = os.pipe()
    t0 = time.monotonic()
    try:
        if thread:
            thread.start()
            time.sleep(0.05)
        pid = os.fork()
        if pid == 0:
            os.close(r)
            pinger(w, n, seed)
        os.close(w)
        import select

        late: list[float] = []
        while len(late) < n:
            select.select([r], [], [])
            data = os.read(r, 8 * 64)
            now = time.monotonic()
            late.extend((now - v) * 1e6 for (v,) in struct.iter_unpack("d", data[: len(data) // 8 * 8]))
        os.waitpid(pid, 0)
    finally:
        stop.set()
        if thread:
            thread.join()
        os.close(r)
        fs_mod.COPY_CHUNK = old_chunk
        sys.setswitchinterval(old_switch)
    return late, copied[0] / (1 << 20) / (time.monotonic() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--per-round", type=int, default=100)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--only", nargs="*", default=list(VARIANTS))
    ap.add_argument("--json")
    a = ap.parse_args()
    work = Path(a.dir) / f"bench-gil-{os.getpid()}"
    work.mkdir()
    src, dst = work / "src.bin", work / "dst.bin"
    with open(src, "wb") as f:
        block = os.urandom(4 << 20)
        for _ in range(a.mib // 4):
            f.write(block)
    os.sync()
    loads = [float(Path("/proc/loadavg").read_text().split()[0])]
    samples: dict[str, list[float]] = {k: [] for k in a.only}
    speed: dict[str, list[float]] = {k: [] for k in a.only}
    try:
        for rnd in range(a.rounds):
            order = list(a.only)
            random.Random(rnd).shuffle(order)
            for name in order:
                late, mibs = one(name, a.per_round, src, dst, rnd)
                samples[name].extend(late)
                speed[name].append(mibs)
            loads.append(float(Path("/proc/loadavg").read_text().split()[0]))
            print(f"round {rnd + 1}/{a.rounds} load {loads[-1]}", file=sys.stderr)
    finally:
        for p in (src, dst):
            p.unlink(missing_ok=True)
        work.rmdir()

    def pct(xs: list[float], q: float) -> float:
        s = sorted(xs)
        return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]

    res: dict[str, Any] = {"load": [min(loads), max(loads)], "switch_interval_default": sys.getswitchinterval(),
                           "nice": NICE, "switch": SWITCH, "us": {}}
    for k, v in samples.items():
        res["us"][k] = {"n": len(v), "median": round(statistics.median(v), 1), "p90": round(pct(v, 90), 1),
                        "p99": round(pct(v, 99), 1), "max": round(max(v), 1),
                        "copy_mib_s": round(statistics.median(speed[k]), 1) if VARIANTS[k][0] else None}
    text = json.dumps(res, indent=1)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
