#!/usr/bin/env python3
"""Ways to copy a checkpoint and take its CRC-32, against ``cp -r`` + fsync (how issue 15 chose).

    python3 bench/copy_methods.py [--reps 10] [--dir /tmp] [--size-mib 256]

Four files of SIZE/4 (random data, synced first), each method copying all four into a fresh
directory and fsyncing them; every repetition runs every method once in a shuffled order, with
``sync()`` before each. Prints per method the median wall time, its speed ratio to cp + fsync,
and the median CPU time (user + sys, this process and children), which moves less with the load.

* ``cfr+readback``: ``copy_file_range``, then the copy read back for its CRC (the store before)
* ``rw``/``rw+writeback``: read into a buffer, CRC it, write it (the store now: 256 KiB and
  ``sync_file_range`` every 2 MiB); ``rw 1M``/``rw 4M``: bigger buffers
* ``cfr+mmap-crc``: ``copy_file_range`` of 8 MiB, then the CRC of those 8 MiB of the copy through
  ``mmap`` (one kernel copy, the CRC reads the page cache: the bytes are read twice, once by the
  kernel)
"""

from __future__ import annotations

import argparse
import ctypes
import mmap
import os
import random
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
import zlib
from pathlib import Path
from typing import Callable

LIBC = ctypes.CDLL(None, use_errno=True)
SFR = LIBC.sync_file_range
SFR.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]


def rw(src: str, dst: str, chunk: int = 256 << 10, kick: int = 0) -> int:
    sf = os.open(src, os.O_RDONLY)
    df = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    view = memoryview(bytearray(chunk))
    crc = off = last = 0
    while True:
        n = os.readv(sf, [view])
        if not n:
            break
        crc = zlib.crc32(view[:n], crc)
        w = view[:n]
        while w:
            w = w[os.write(df, w):]
        off += n
        if kick and off - last >= kick:
            SFR(df, last, off - last, 2)
            last = off
    os.fsync(df)
    os.close(df)
    os.close(sf)
    return crc


def cfr_readback(src: str, dst: str) -> int:
    sf = os.open(src, os.O_RDONLY)
    df = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    while os.copy_file_range(sf, df, 1 << 30):
        pass
    view = memoryview(bytearray(1 << 20))
    off = crc = 0
    while True:
        n = os.preadv(df, [view], off)
        if not n:
            break
        crc = zlib.crc32(view[:n], crc)
        off += n
    os.fsync(df)
    os.close(df)
    os.close(sf)
    return crc


def cfr_mmap(src: str, dst: str, chunk: int = 8 << 20) -> int:
    sf = os.open(src, os.O_RDONLY)
    df = os.open(dst, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    off = crc = 0
    while True:
        n = os.copy_file_range(sf, df, chunk)
        if not n:
            break
        m = mmap.mmap(df, n, offset=off, flags=mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0),
                      prot=mmap.PROT_READ)
        crc = zlib.crc32(m, crc)
        m.close()
        off += n
    os.fsync(df)
    os.close(df)
    os.close(sf)
    return crc


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--size-mib", type=int, default=256)
    a = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-copy-", dir=a.dir))
    try:
        srcs = []
        for i in range(4):
            p = base / f"src{i}"
            with open(p, "wb") as f:
                for _ in range(a.size_mib // 4):
                    f.write(os.urandom(1 << 20))
            srcs.append(str(p))
        os.sync()
        out = base / "out"

        def each(fn: Callable[[str, str], int]) -> Callable[[], None]:
            def go() -> None:
                for i, s in enumerate(srcs):
                    fn(s, str(out / str(i)))
            return go

        def cp() -> None:
            subprocess.run(["cp", "--reflink=auto", *srcs, str(out)], check=True)
            for n in os.listdir(out):
                fd = os.open(out / n, os.O_RDONLY)
                os.fsync(fd)
                os.close(fd)

        methods: dict[str, Callable[[], None]] = {
            "cp+fsync": cp, "cfr+readback": each(cfr_readback), "rw 256K": each(rw),
            "rw 256K+writeback": each(lambda s, d: rw(s, d, kick=2 << 20)),
            "rw 1M": each(lambda s, d: rw(s, d, 1 << 20)), "rw 4M": each(lambda s, d: rw(s, d, 4 << 20)),
            "cfr+mmap-crc": each(cfr_mmap),
        }
        wall: dict[str, list[float]] = {k: [] for k in methods}
        cpu: dict[str, list[float]] = {k: [] for k in methods}

        def used() -> float:
            x, y = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
            return x.ru_utime + x.ru_stime + y.ru_utime + y.ru_stime

        load0 = os.getloadavg()[0]
        for _ in range(a.reps):
            order = list(methods)
            random.shuffle(order)
            for k in order:
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                os.sync()
                c, t = used(), time.perf_counter()
                methods[k]()
                wall[k].append(time.perf_counter() - t)
                cpu[k].append(used() - c)
        base_t = statistics.median(wall["cp+fsync"])
        print(f"load {load0:.1f} -> {os.getloadavg()[0]:.1f}; {a.size_mib} MiB in 4 files, {a.reps} reps")
        for k in methods:
            m = statistics.median(wall[k])
            print(f"{k:18s} wall {m:.3f} s  speed vs cp+fsync {base_t / m:.2f}x  CPU {statistics.median(cpu[k]):.3f} s")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
