"""5. Commit and restore of a checkpoint set, against ``cp --reflink=auto -r`` and a bare rename.

The set: two files of S/4 each and a directory (with a subdirectory) of 8 files of S/16 each.
It is written once and synced, so every measurement starts with clean pages in the page cache
(the usual state right after a program wrote and closed its checkpoint, minus the program's own
fsync). Between measurements ``sync()`` runs untimed, so no step pays for an earlier one's dirty
pages.

* ``cp``: ``cp --reflink=auto -r`` of the set into an empty directory (no fsync: cp does none);
  ``cp+fsync``: the same, then fsync of every file and directory copied: the durable equivalent
  of a commit, which fsyncs everything before it swaps the store in.
* ``commit``: ``Store.commit()`` (stage a copy, CRC-32 read-back, fsync, manifest, swap) into an
  absent store; ``restore``: ``Store.restore()`` into a sandbox without the working paths (a
  fresh execution); ``rename``: a bare ``rename()`` of the three paths plus an fsync of the
  directories; ``commit-move``: ``Store.commit(move=True)`` (rename into the store, then CRC and
  fsync of the moved files).
* ``cli``: one ``ckpt-supervisor run --trigger-signal`` of the whole set end to end (the
  ``committed`` event's seconds, trigger to exit, peak RSS = the last VmHWM read before it
  exited, polled every 5 ms), then a second start that restores it (the ``restored`` event).
  Not wait4's ru_maxrss: it counts the RSS of the (large) benchmark process that forked it.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from common import REPO, Procs, fs_type, status_kb, summary, sup_cmd, sup_env, wait_for

sys.path.insert(0, str(REPO))
from supervisor.store import Store  # noqa: E402

PATHS = ["a.bin", "b.bin", "dir"]
GIB = 1 << 30


def _files(size: int) -> list[tuple[str, int]]:
    return [("a.bin", size // 4), ("b.bin", size // 4)] + [
        (f"dir/{'sub/' if i >= 4 else ''}f{i}.dat", size // 16) for i in range(8)
    ]


def make_set(sandbox: Path, size: int) -> None:
    block = bytearray(os.urandom(16 << 20))
    for rel, n in _files(size):
        path = sandbox / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            left = n
            k = 0
            while left > 0:
                block[0:8] = k.to_bytes(8, "little")  # every block differs
                chunk = memoryview(block)[: min(left, len(block))]
                f.write(chunk)
                left -= len(chunk)
                k += 1
    os.sync()


def _fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _rm(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def one_size(base: Path, size: int, reps: int, log: Any) -> dict[str, Any]:
    sandbox = base / "sandbox"
    sandbox.mkdir()
    t0 = time.monotonic()
    make_set(sandbox, size)
    log(
        f"store {size / GIB:g} GiB on {fs_type(base)}: set written in {time.monotonic() - t0:.1f} s"
    )
    times: dict[str, list[float]] = {
        k: [] for k in ("cp", "cp+fsync", "commit", "restore", "rename", "commit-move")
    }
    methods: dict[str, str] = {}
    store_path = base / "store"
    for rep in range(reps):
        # cp --reflink=auto -r, then fsync
        dst = base / "cpdst"
        dst.mkdir()
        t = time.monotonic()
        subprocess.run(
            ["cp", "--reflink=auto", "-r", *[str(sandbox / p) for p in PATHS], str(dst)], check=True
        )
        t_cp = time.monotonic() - t
        _fsync_tree(dst)
        t_all = time.monotonic() - t
        times["cp"].append(t_cp)
        times["cp+fsync"].append(t_all)
        _rm(dst)
        os.sync()
        # commit (copy)
        store = Store(sandbox, store_path, PATHS, retry_seconds=0)
        t = time.monotonic()
        res = store.commit({"sequence": rep + 1})
        times["commit"].append(time.monotonic() - t)
        methods["commit"] = res.method
        os.sync()
        # restore into a sandbox without the working paths
        aside = base / "aside"
        aside.mkdir()
        for p in PATHS:
            os.rename(sandbox / p, aside / p)
        t = time.monotonic()
        store.verify()  # the next start verifies first; untimed here
        t = time.monotonic()
        store.restore()
        times["restore"].append(time.monotonic() - t)
        for p in PATHS:
            _rm(sandbox / p)
            os.rename(aside / p, sandbox / p)
        aside.rmdir()
        _rm(store_path)
        os.sync()
        # bare rename of the set (and back), with the directory fsyncs a durable rename needs
        moved = base / "moved"
        moved.mkdir()
        _fsync_dir(base)
        t = time.monotonic()
        for p in PATHS:
            os.rename(sandbox / p, moved / p)
        _fsync_dir(moved)
        _fsync_dir(sandbox)
        times["rename"].append(time.monotonic() - t)
        for p in PATHS:
            os.rename(moved / p, sandbox / p)
        moved.rmdir()
        os.sync()
        # commit(move=True)
        store = Store(sandbox, store_path, PATHS, retry_seconds=0)
        t = time.monotonic()
        res = store.commit({"sequence": rep + 1}, move=True)
        times["commit-move"].append(time.monotonic() - t)
        methods["commit-move"] = res.method
        for p in PATHS:
            os.rename(store_path / p, sandbox / p)
        _rm(store_path)
        os.sync()
        log(f"  rep {rep + 1}: " + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in times.items()))
    out: dict[str, Any] = {
        "bytes": size,
        "fs": fs_type(base),
        "dir": str(base),
        "reps": reps,
        "methods": methods,
        "seconds": {},
        "gib_per_s": {},
    }
    for k, v in times.items():
        out["seconds"][k] = summary(v, 4)
        med = out["seconds"][k]["median"]
        out["gib_per_s"][k] = round(size / GIB / med, 3) if med else None
    med = {k: out["seconds"][k]["median"] for k in times}
    out["ratios"] = {
        "commit_vs_cp": round(med["cp"] / med["commit"], 3),
        "commit_vs_cp_fsync": round(med["cp+fsync"] / med["commit"], 3),
        "restore_vs_cp": round(med["cp"] / med["restore"], 3),
        "restore_vs_cp_fsync": round(med["cp+fsync"] / med["restore"], 3),
        "commit_move_minus_rename_s": round(med["commit-move"] - med["rename"], 4),
    }
    return out


def _wait_hwm(pid: int) -> tuple[int, int]:
    """Reap ``pid``, polling its VmHWM meanwhile: (exit code, last VmHWM in kB)."""
    hwm = 0
    while True:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got:
            return os.waitstatus_to_exitcode(status), hwm
        hwm = max(hwm, status_kb(pid, "VmHWM") or 0)
        time.sleep(0.005)


def cli_round_trip(base: Path, prog: Path, log: Any) -> dict[str, Any]:
    """The set under the real supervisor: trigger, commit, exit 85; then a restart that restores."""
    sandbox = base / "sandbox"
    events = base / "events.jsonl"
    argv = sup_cmd(
        *[a for p in [*PATHS, "ck"] for a in ("--checkpoint", p)],
        "--trigger-signal",
        "SIGUSR1",
        "--complete-when",
        "quiet=0",
        "--events",
        str(events),
        "--",
        str(prog),
        "job",
    )
    out: dict[str, Any] = {}
    procs = Procs()
    try:
        (sandbox / "ck").write_text("0\n")
        _rm(sandbox / "ready")
        p = procs.start(argv, env=sup_env(), cwd=sandbox)
        if not wait_for(lambda: (sandbox / "ready").exists(), 30):
            return {"error": "program not ready"}
        time.sleep(0.5)
        t0 = time.monotonic()
        os.kill(p.pid, signal.SIGUSR1)
        p.returncode, hwm = _wait_hwm(p.pid)
        out["trigger_to_exit_s"] = round(time.monotonic() - t0, 4)
        out["exit_status"] = p.returncode
        out["peak_rss_kb"] = hwm
        for line in events.read_text().splitlines():
            ev = json.loads(line)
            if ev["event"] == "committed":
                out["committed_seconds"] = round(ev["seconds"], 4)
                out["committed_bytes"] = ev["bytes"]
        procs.kill_all()
        # restart: the store exists, so the supervisor verifies and restores it first
        for pth in PATHS:
            _rm(sandbox / pth)
        _rm(sandbox / "ready")
        events.unlink()
        os.sync()
        t0 = time.monotonic()
        p = procs.start(argv, env=sup_env(), cwd=sandbox)
        hwm = 0
        while not (sandbox / "ready").exists() and p.poll() is None and time.monotonic() - t0 < 300:
            hwm = max(hwm, status_kb(p.pid, "VmHWM") or 0)
            time.sleep(0.005)
        out["restart_to_program_ready_s"] = round(time.monotonic() - t0, 4)
        for line in events.read_text().splitlines():
            ev = json.loads(line)
            if ev["event"] == "restored":
                out["restored_seconds"] = round(ev["seconds"], 4)
                out["restored_bytes"] = ev["bytes"]
        os.kill(p.pid, signal.SIGTERM)
        p.returncode, hwm2 = _wait_hwm(p.pid)
        out["restart_peak_rss_kb"] = max(hwm, hwm2)
    finally:
        procs.kill_all()
    log(f"store cli: {out}")
    return out


def measure(
    sizes: list[int], reps: int, bench_dir: Path, prog: Path, log: Any, tmpfs: Optional[Path] = None
) -> dict[str, Any]:
    res: dict[str, Any] = {"sizes": {}, "notes": []}
    for size in sizes:
        key = f"{size / GIB:g}GiB"
        base = Path(tempfile.mkdtemp(prefix="bench-store-", dir=bench_dir))
        try:
            res["sizes"][key] = one_size(base, size, reps if size <= GIB else max(2, reps - 1), log)
            if size == sizes[0]:
                res["sizes"][key]["cli"] = cli_round_trip(base, prog, log)
        finally:
            shutil.rmtree(base, ignore_errors=True)
            os.sync()
    if tmpfs is not None and tmpfs.is_dir():
        size = sizes[0]
        free = shutil.disk_usage(tmpfs).free
        if free > 3 * size:
            base = Path(tempfile.mkdtemp(prefix="bench-store-", dir=tmpfs))
            try:
                res["sizes"][f"{size / GIB:g}GiB-tmpfs"] = one_size(base, size, reps, log)
            finally:
                shutil.rmtree(base, ignore_errors=True)
        else:
            res["notes"].append(f"tmpfs {tmpfs}: not enough free space")
    with contextlib.suppress(Exception):
        res["self_peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return res
