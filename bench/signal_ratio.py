#!/usr/bin/env python3
"""Signal pass-on latency against tini, interleaved, idle and while a commit runs (target 2).

    python3 bench/signal_ratio.py [--blocks 10] [--per-block 50] [--commit-mib 1024] [--dir /tmp]

Every wrapper runs at the same time, each around its own ``benchprog catch FIFO`` (bench/c: the
program's SIGUSR1 handler reads CLOCK_MONOTONIC and writes it to the FIFO; the sender reads the
same clock before ``kill()``). Blocks of PER-BLOCK signals, 2 ms apart, go to each wrapper in
turn, BLOCKS times, so load changes hit all wrappers alike: ``direct`` (the program itself: the
floor), ``tini -s``, ``supervisor`` (``ckpt-supervisor run --``, idle), ``python-minimal`` (a
five-line Python forwarder: a SIGUSR1 handler calling ``killpg``, the main thread in ``waitpid``),
``python-loop`` (the supervisor's mechanism alone: a no-op handler, the wakeup fd, ``selectors``,
``killpg``: what passing a signal on costs in Python without doing work in a handler), and with
``--before-script`` an installed supervisor of an earlier commit. The order rotates each block.

``supervisor-committing``: then, in separate rounds, a supervisor whose checkpoint is a set of
COMMIT-MiB (4 files) is told to checkpoint (``--trigger-signal SIGUSR2 --complete-when
quiet=0 --freeze false``: a held program would get the signals at the thaw; with a harmless --job-signal SIGWINCH; the bench rewrites a fifth, small checkpoint
file after the request, as the program would): once its ``checkpoint_complete`` event is written, PER-BLOCK signals are sent while
the commit copies; only the samples whose block ended before the ``committed`` event count. A
tini block is sent right after each such round (``tini-peer-of-committing``: no copy running).

The fair peers of ``supervisor-committing`` (issue 15, 2c): in the same rounds, in turn (the order
rotates each round), a separate process copies the same set once, as the commit does (``--copier
fs``: the store's own read/CRC-32/write loop with ``sync_file_range``, an fsync per file and of
the directory; ``--copier cp``: ``cp -r`` then ``sync -f``), and a block of PER-BLOCK signals is
sent, as soon as the copy has started, to ``tini-during-copy`` (the running tini),
``supervisor-idle-during-copy`` (the running idle supervisor: the copy on the machine, not in the
supervisor), ``python-minimal-during-copy``, ``python-loop-during-copy`` (the supervisor's mechanism
alone: what no work in a handler costs while the machine copies) and ``direct-during-copy`` (the
floor); one copy each, and only the samples sent
before the copy ended count, as for the commit.

Prints JSON: per wrapper the median, p90, p99 and max in µs, the median's ratio to tini's,
``committing_vs_peers``: supervisor-committing's median/p90/p99 over each peer's, and ``sched``:
what the scheduler counted during the blocks (``/proc/PID/task/PID/schedstat`` before and after
each block, of the receiver's main thread and of its child, the program): on-CPU µs, run-queue
wait µs (ready to run, no core free) and slices, per signal passed on.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import PY_LOOP, PY_MINIMAL, Procs, compile_c, percentile, schedstat, sup_cmd, sup_env  # noqa: E402

GAP_US = 2000


SENT: set[Path] = set()
# the scheduler's account (/proc/PID/task/PID/schedstat: on-CPU ns, run-queue wait ns, slices) of
# the last block's receiver: its main thread and, for a wrapper, its child (the catcher)
LAST: dict[str, tuple[int, ...]] = {}
SCHED: dict[str, list[tuple[int, ...]]] = {}



def receivers(pid: int) -> dict[str, int]:
    import psutil

    kids = [c.pid for c in psutil.Process(pid).children()]
    return {"program": pid} if not kids else {"wrapper": pid, "program": kids[0]}


def send(prog: Path, pid: int, n: int, fifo: Path) -> list[float]:
    who = receivers(pid)
    before = {k: schedstat(v) for k, v in who.items()}
    LAST.clear()
    again = ["again"] if fifo in SENT else []
    SENT.add(fifo)
    out = subprocess.run([str(prog), "send", str(pid), str(int(signal.SIGUSR1)), str(n), str(GAP_US), str(fifo),
                          *again],
                         capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    us = [int(x) / 1000 for x in out.stdout.split()]
    for k, v in who.items():
        LAST[k] = (len(us), *(b - a for a, b in zip(before[k], schedstat(v))))
    return us


def keep_sched(label: str) -> None:
    """Count the last block's scheduler account for LABEL (only blocks whose samples all count)."""
    for k, v in LAST.items():
        SCHED.setdefault(f"{label}/{k}", []).append(v)


def sched_summary() -> dict[str, Any]:
    """Per contender and receiver: on-CPU µs, run-queue wait µs and slices per signal passed on."""
    out: dict[str, Any] = {}
    for key, blocks in SCHED.items():
        n = sum(b[0] for b in blocks)
        if n:
            out[key] = {"signals": n, "cpu_us_per_signal": round(sum(b[1] for b in blocks) / n / 1000, 1),
                        "runqueue_wait_us_per_signal": round(sum(b[2] for b in blocks) / n / 1000, 1),
                        "slices_per_signal": round(sum(b[3] for b in blocks) / n, 2)}
    return out


def wait_line(path: Path, word: str, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and f'"event": "{word}"' in path.read_text():
            return True
        time.sleep(0.002)
    return False


def stats(us: list[float]) -> dict[str, Any]:
    if not us:
        return {"n": 0}
    return {"n": len(us), "median": round(statistics.median(us), 1), "p90": round(percentile(us, 90), 1),
            "p99": round(percentile(us, 99), 1), "max": round(max(us), 1)}


COPIER = r'''
import os, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from supervisor.store.fs import FS
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
fs = FS()
dst.mkdir()
print("start", time.time(), flush=True)
for name in sorted(os.listdir(src)):
    if not name.startswith("ck"):
        continue
    s = os.open(src / name, os.O_RDONLY)
    d = os.open(dst / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fs.copy_checksum(s, d)
        os.fsync(d)
    finally:
        os.close(s)
        os.close(d)
fs.fsync_dir(dst)
print("end", time.time(), flush=True)
'''


def start_copy(procs: Procs, how: str, src: Path, dst: Path) -> Any:
    """A separate process copying the set SRC to DST once; returns it once it has started."""
    if how == "fs":
        argv = [sys.executable, "-c", COPIER, str(src), str(dst), str(HERE.parent)]
    else:  # cp: the ck files only, then the file system's sync
        files = " ".join(f"'{src}'/ck{i}.bin" for i in range(4))
        argv = ["sh", "-c", f"mkdir '{dst}' && echo start $(date +%s.%N) && cp {files} '{dst}'/ && "
                            f"sync -f '{dst}' && echo end $(date +%s.%N)"]
    p: Any = procs.start(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = p.stdout.readline().split()
    if not line or line[0] != "start":
        raise RuntimeError(f"copier did not start: {line}")
    return p


def end_of_copy(p: Any) -> float:
    p.wait(timeout=300)
    rest = p.stdout.read().split()
    if p.returncode != 0 or "end" not in rest:
        raise RuntimeError(f"copier failed: {p.returncode} {rest}")
    return float(rest[rest.index("end") + 1])


def sent_before(us: list[float], t_send0: float, t_send1: float, end: Optional[float]) -> list[float]:
    """The samples of a block sent from T_SEND0 to T_SEND1 whose signal left before END."""
    if end is not None and t_send1 <= end:
        return us
    part = int(max(0.0, (end or t_send0) - t_send0) * 1e6 // (GAP_US + 100))
    return us[:part]


def make_set(d: Path, mib: int) -> None:
    block = os.urandom(4 << 20)
    for i in range(4):
        with open(d / f"ck{i}.bin", "wb") as f:
            for _ in range(mib // 16):
                f.write(block)
    os.sync()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blocks", type=int, default=10)
    ap.add_argument("--per-block", type=int, default=50)
    ap.add_argument("--commit-mib", type=int, default=1024)
    ap.add_argument("--commit-rounds", type=int, default=4)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--events-dir", help="where the committing supervisor's --events file goes (default: next "
                                          "to the checkpoint, on the disk the commit writes to)")
    ap.add_argument("--freeze", default="false", choices=("true", "false"),
                    help="the committing supervisor's --freeze (default false: with true the program is "
                         "stopped while its files are copied, so a signal reaches it at the thaw, by design)")
    ap.add_argument("--copier", default="fs", choices=("fs", "cp"),
                    help="the peers' separate copy of the set: the store's own copy loop (fs) or cp + sync")
    ap.add_argument("--before-script", metavar="PATH",
                    help="also an installed ckpt-supervisor of an earlier commit (e.g. from bench/startup_ratio.py "
                         "--before REF), idle, as 'supervisor-before', in the same blocks")
    ap.add_argument("--json")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sigratio-", dir=a.dir))
    procs = Procs()
    res: dict[str, Any] = {"gap_us": GAP_US, "load": [float(Path("/proc/loadavg").read_text().split()[0])]}
    try:
        prog = work / "benchprog"
        err = compile_c(HERE / "c" / "benchprog.c", prog)
        if err:
            raise SystemExit(err)
        tini = shutil.which("tini")
        wrappers: dict[str, list[str]] = {"direct": []}
        if tini:
            wrappers["tini"] = [tini, "-s", "--"]
        wrappers["supervisor"] = sup_cmd("--")
        if a.before_script:
            wrappers["supervisor-before"] = [a.before_script, "run", "--"]
        wrappers["python-minimal"] = [sys.executable, "-c", PY_MINIMAL]
        wrappers["python-loop"] = [sys.executable, "-c", PY_LOOP]
        running: dict[str, tuple[int, Path]] = {}
        for name, w in wrappers.items():
            d = work / name
            d.mkdir()
            fifo = d / "times"
            os.mkfifo(fifo)
            env = sup_env(installed=True) if name == "supervisor-before" else sup_env()
            p = procs.start([*w, str(prog), "catch", str(fifo)], env=env, cwd=d)
            running[name] = (p.pid, fifo)
        time.sleep(1.0)
        samples: dict[str, list[float]] = {k: [] for k in [*wrappers, "supervisor-committing", "tini-peer-of-committing"]}
        order = list(running.items())
        for b in range(a.blocks):  # the order rotates each block: no wrapper always follows the same one
            for name, (pid, fifo) in order[b % len(order):] + order[:b % len(order)]:
                samples[name].extend(send(prog, pid, a.per_block, fifo))
                keep_sched(name)
        # while a commit runs, and its peers while a separate process copies the same set
        cd = work / "commit"
        cd.mkdir()
        make_set(cd, a.commit_mib)
        peers = {"tini-during-copy": "tini", "supervisor-idle-during-copy": "supervisor",
                 "python-minimal-during-copy": "python-minimal", "python-loop-during-copy": "python-loop",
                 "direct-during-copy": "direct"}
        peers = {k: v for k, v in peers.items() if v in running}
        for k in peers:
            samples[k] = []
        kept = dropped = 0
        commit_s: list[Any] = []
        copy_s: dict[str, list[float]] = {k: [] for k in peers}
        copy_dropped: dict[str, int] = {k: 0 for k in peers}
        steps = ["commit", *peers]
        for r in range(a.commit_rounds):
            for step in steps[r % len(steps):] + steps[:r % len(steps)]:
                if step != "commit":
                    pid, tf = running[peers[step]]
                    t0 = time.time()
                    cp = start_copy(procs, a.copier, cd, cd / f"copy{r}")
                    t_send0 = time.time()
                    us = send(prog, pid, a.per_block, tf)
                    t_send1 = time.time()
                    end = end_of_copy(cp)
                    copy_s[step].append(round(end - t0, 2))
                    got = sent_before(us, t_send0, t_send1, end)
                    samples[step].extend(got)
                    if len(got) == len(us):
                        keep_sched(step)
                    copy_dropped[step] += len(us) - len(got)
                    shutil.rmtree(cd / f"copy{r}", ignore_errors=True)
                    continue
                fifo = cd / f"times{r}"
                os.mkfifo(fifo)
                events = (Path(a.events_dir) if a.events_dir else cd) / f"events{work.name}-{r}.jsonl"
                (cd / "tick").write_text(f"{r}\n")
                argv = sup_cmd(*[x for i in range(4) for x in ("--checkpoint", f"ck{i}.bin")], "--checkpoint", "tick",
                               "--trigger-signal", "SIGUSR2", "--job-signal", "SIGWINCH", "--complete-when", "quiet=0",
                               "--freeze", a.freeze, "--events", str(events), "--store", f"store{r}", "--", str(prog),
                               "catch", str(fifo))
                p = procs.start(argv, env=sup_env(), cwd=cd)
                if not wait_line(events, "started", 30):
                    raise RuntimeError("supervisor did not start")
                time.sleep(0.3)
                os.kill(p.pid, signal.SIGUSR2)
                if not wait_line(events, "checkpoint_requested", 30):
                    raise RuntimeError("no checkpoint_requested")
                (cd / "tick").write_text(f"{r} written after the request\n")  # the program's "new checkpoint"
                if not wait_line(events, "checkpoint_complete", 30):
                    raise RuntimeError("no checkpoint_complete")
                t_send0 = time.time()
                try:
                    us = send(prog, p.pid, a.per_block, fifo)
                except RuntimeError as exc:  # the commit ended (and the tree was killed) inside the block
                    if "went away" not in str(exc):
                        raise
                    us = []
                t_send1 = time.time()
                p.wait(timeout=300)
                evs = [json.loads(x) for x in events.read_text().splitlines()]
                if a.events_dir:
                    events.unlink()
                committed = next((e["time"] for e in evs if e["event"] == "committed"), None)
                commit_s.append(next((e.get("seconds") for e in evs if e["event"] == "committed"), None))
                got = sent_before(us, t_send0, t_send1, committed)
                samples["supervisor-committing"].extend(got)
                if len(got) == len(us) and us:
                    kept += 1
                    keep_sched("supervisor-committing")
                dropped += len(us) - len(got)
                shutil.rmtree(cd / f"store{r}", ignore_errors=True)
                if "tini" in running:
                    pid, tf = running["tini"]
                    samples["tini-peer-of-committing"].extend(send(prog, pid, a.per_block, tf))
                    keep_sched("tini-peer-of-committing")
        res["commit"] = {"mib": a.commit_mib, "rounds": a.commit_rounds, "rounds_whole_block_inside": kept,
                         "samples_after_commit_dropped": dropped, "commit_seconds": commit_s}
        res["copy"] = {"copier": a.copier, "seconds": copy_s, "samples_after_copy_dropped": copy_dropped}
    finally:
        procs.kill_all()
        shutil.rmtree(work, ignore_errors=True)
    res["load"].append(float(Path("/proc/loadavg").read_text().split()[0]))
    res["us"] = {k: stats(v) for k, v in samples.items()}
    res["sched"] = sched_summary()
    t = res["us"].get("tini", {}).get("median")
    tp = res["us"].get("tini-peer-of-committing", {}).get("median")
    if t:
        res["median_vs_tini"] = {k: round(v["median"] / t, 2) for k, v in res["us"].items()
                                 if v.get("n") and k != "supervisor-committing"}
        if tp and res["us"]["supervisor-committing"].get("n"):
            res["median_vs_tini"]["supervisor-committing (vs its tini peer)"] = round(
                res["us"]["supervisor-committing"]["median"] / tp, 2)
    c = res["us"]["supervisor-committing"]
    if c.get("n"):
        res["committing_vs_peers"] = {
            k: {q: round(c[q] / res["us"][k][q], 2) for q in ("median", "p90", "p99")}
            for k in ("tini-during-copy", "supervisor-idle-during-copy", "python-minimal-during-copy",
                      "python-loop-during-copy", "direct-during-copy", "tini-peer-of-committing")
            if res["us"].get(k, {}).get("n")}
    text = json.dumps(res, indent=1)
    print(text)
    if a.json:
        Path(a.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
