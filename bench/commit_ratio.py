#!/usr/bin/env python3
"""Commit against ``cp -r`` + fsync, interleaved: the ratios of issue 15 (targets 5a and 5b).

    python3 bench/commit_ratio.py [--size-mib 256] [--files 4] [--reps 9] [--dir /tmp] [--json OUT]

The set is FILES files of SIZE/FILES each plus one directory holding two more small files (so a
tree is staged too), written once and synced: every measurement starts with clean pages in the
page cache, and ``sync()`` runs untimed between measurements so no step pays for an earlier
one's dirty pages. Each repetition runs every contender once, in a shuffled order, so a load
change on a shared machine hits all of them alike; the figures are medians of the per-rep
ratios against the same rep's ``cp+fsync``.

Contenders:

* ``cp+fsync``: ``cp --reflink=auto -r`` of the set, then fsync of every file and directory:
  the durable equivalent of a commit (the peer);
* ``commit``: ``Store.commit()`` of a running program's files (copy, CRC-32 while copying);
* ``commit-readback``: the same with the copy of before issue 15 (``copy_file_range``, then the
  staged copy read back for its CRC-32): the "before" figure, measured in the same run;
* ``commit-move``: ``Store.commit(move=True)``, the commit after the program exited (rename
  into the store, CRC-32 of the moved files, fsync);
* ``rename``: bare renames of the set plus the directory fsyncs (the floor of a move commit).

CPU seconds (user + sys, including each contender's untimed clean-up) are recorded too: they do
not depend on the machine's load the way wall times do. Ratios are speed ratios against ``cp+fsync`` for the copy (≥ 0.9 is the target: commit no
slower than 1/0.9 of cp+fsync) and time ratios for the move (≤ 0.5 is the target).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from supervisor import store as store_mod  # noqa: E402
from supervisor.store import FS, Store  # noqa: E402

MIB = 1 << 20


class ReadBackFS(FS):
    """The copy before issue 15: copy_file_range, then read the staged copy back for its CRC."""

    def copy_checksum(self, src_fd: int, dst_fd: int) -> tuple[str, int, int]:
        method = self.copy(src_fd, dst_fd)
        size, crc = store_mod.checksum_fd(self, dst_fd)
        return method, size, crc


def _fsync_path(path: str, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_set(sandbox: Path, size: int, files: int) -> list[str]:
    block = bytearray(os.urandom(4 * MIB))
    names = [f"f{i}.bin" for i in range(files)]
    for name in names:
        with open(sandbox / name, "wb") as f:
            left, k = size // files, 0
            while left > 0:
                block[:8] = k.to_bytes(8, "little")
                chunk = memoryview(block)[: min(left, len(block))]
                f.write(chunk)
                left -= len(chunk)
                k += 1
    (sandbox / "dir").mkdir()
    (sandbox / "dir" / "small.txt").write_bytes(b"x" * 4096)
    (sandbox / "dir" / "meta.json").write_bytes(b"{}\n")
    os.sync()
    return [*names, "dir"]


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def run(size: int, files: int, reps: int, base: Path, log: Callable[[str], None]) -> dict[str, Any]:
    sandbox = base / "sandbox"
    sandbox.mkdir()
    paths = make_set(sandbox, size, files)
    store_path = base / "store"
    times: dict[str, list[float]] = {k: [] for k in
                                     ("cp+fsync", "commit", "commit-readback", "commit-move", "rename")}

    def cp_fsync() -> float:
        dst = base / "cpdst"
        dst.mkdir()
        t = time.perf_counter()
        subprocess.run(["cp", "--reflink=auto", "-r", *[str(sandbox / p) for p in paths], str(dst)],
                       check=True)
        for dirpath, _dirs, names in os.walk(dst):
            for n in names:
                _fsync_path(os.path.join(dirpath, n))
            _fsync_path(dirpath, True)
        dt = time.perf_counter() - t
        shutil.rmtree(dst)
        return dt

    def commit(fs: FS) -> Callable[[], float]:
        def go() -> float:
            st = Store(sandbox, store_path, paths, retry_seconds=0, fs=fs)
            t = time.perf_counter()
            st.commit({"sequence": 1})
            dt = time.perf_counter() - t
            shutil.rmtree(store_path)
            return dt
        return go

    def commit_move() -> float:
        st = Store(sandbox, store_path, paths, retry_seconds=0)
        t = time.perf_counter()
        st.commit({"sequence": 1}, move=True)
        dt = time.perf_counter() - t
        for p in paths:
            os.rename(store_path / p, sandbox / p)
        shutil.rmtree(store_path)
        return dt

    def rename() -> float:
        moved = base / "moved"
        moved.mkdir()
        _fsync_path(str(base), True)
        t = time.perf_counter()
        for p in paths:
            os.rename(sandbox / p, moved / p)
        _fsync_path(str(moved), True)
        _fsync_path(str(sandbox), True)
        dt = time.perf_counter() - t
        for p in paths:
            os.rename(moved / p, sandbox / p)
        moved.rmdir()
        return dt

    contenders: dict[str, Callable[[], float]] = {
        "cp+fsync": cp_fsync, "commit": commit(FS()), "commit-readback": commit(ReadBackFS()),
        "commit-move": commit_move, "rename": rename,
    }
    cpu: dict[str, list[float]] = {k: [] for k in times}

    def cpu_now() -> float:
        a, b = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return a.ru_utime + a.ru_stime + b.ru_utime + b.ru_stime

    loads = [loadavg()]
    rng = random.Random(15)
    for rep in range(reps):
        order = list(contenders)
        rng.shuffle(order)
        for name in order:
            os.sync()
            c0 = cpu_now()
            times[name].append(contenders[name]())
            cpu[name].append(cpu_now() - c0)
        loads.append(loadavg())
        log(f"rep {rep + 1}/{reps} load {loads[-1][0]:.1f}: "
            + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items()))
    speed = {k: [c / x for c, x in zip(times["cp+fsync"], v)] for k, v in times.items()}
    timer = {k: [x / c for c, x in zip(times["cp+fsync"], v)] for k, v in times.items()}
    out: dict[str, Any] = {
        "bytes": size, "files": files, "reps": reps, "dir": str(base),
        "fs": subprocess.run(["stat", "-f", "-c", "%T", str(base)], capture_output=True,
                             text=True).stdout.strip(),
        "loadavg_1min": {"min": min(x[0] for x in loads), "max": max(x[0] for x in loads)},
        "median_s": {k: round(statistics.median(v), 4) for k, v in times.items()},
        # CPU (user+sys, this process and its children: cp) of each contender, including the
        # untimed clean-up around it: independent of the load, unlike the wall times
        "median_cpu_s": {k: round(statistics.median(v), 4) for k, v in cpu.items()},
        "speed_vs_cp_fsync": {k: round(statistics.median(v), 3) for k, v in speed.items()},
        "time_vs_cp_fsync": {k: round(statistics.median(v), 3) for k, v in timer.items()},
        "speed_vs_cp_fsync_quartiles": {
            k: [round(q, 3) for q in statistics.quantiles(v, n=4)] for k, v in speed.items()
        } if reps >= 2 else {},
    }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mib", type=int, default=256)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--json", help="write the result here too")
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-commit-", dir=a.dir))
    try:
        res = run(a.size_mib * MIB, a.files, a.reps, base,
                  lambda m: print(f"[commit_ratio] {m}", file=sys.stderr, flush=True))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    res["python"] = sys.version.split()[0]
    res["zlib"] = zlib.ZLIB_RUNTIME_VERSION
    text = json.dumps(res, indent=1)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
