#!/usr/bin/env python3
"""SIGKILL a committing process at random moments; check the store after every kill.

A forked worker plays the supervisor: at each start it cleans leftovers, verifies and restores
the store (like the next start of a job), then loops forever: write the checkpoint files (every
byte of commit N's files is derived from N), commit them with state {"seq": N, "files_seq": N}.
Some commits move the files instead of copying (``--mode mixed`` or ``move``), some
re-commit the same files with a new state (``commit_state``). The parent kills the worker
after a random delay drawn from [0, 2.5 x one commit's duration] after the worker's start (for
one kill in five, from the fork, so that kills also land in the start's verify and restore),
then, like the next start, runs ``Store(...).cleanup_staging()`` and ``verify()`` and checks
that

* the store verifies (its manifest, sizes and checksums hold),
* every committed file carries the ``files_seq`` of the committed state (never mixed),
* the committed ``seq`` never goes backwards,
* no staging, ``.old-`` or trash directory is left after cleanup.

Usage::

    python bench/kill_during_commit.py --count 5000             # the big run, by hand
    python bench/kill_during_commit.py --count 300 --mode move  # one way of committing

``tests/reliability/test_store_faults.py`` imports ``run`` for the default (CI) run of a few hundred kills.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from supervisor.errors import StoreError
from supervisor.store import FS, Store

NAMES = ("a.bin", "b.bin", "dir/c.bin", "dir/sub/d.bin")
PATHS = ["a.bin", "b.bin", "dir"]
STORE = "checkpoint.atomic"
LEFTOVER_TAGS = (".staging-", ".old-", ".trash-")


class NoExchangeFS(FS):
    """A file system without renameat2(RENAME_EXCHANGE): forces the two-rename fallback."""

    def exchange(self, a: Path, b: Path) -> None:
        import errno  # noqa: PLC0415

        raise OSError(errno.ENOSYS, "exchange disabled for this test", str(a))


def payload(seq: int, index: int, size: int) -> bytes:
    """File ``index`` of commit ``seq``: a header naming both, then a fill derived from seq."""
    head = f"seq={seq} file={index}\n".encode()
    fill = bytes([(seq * 7 + index) % 251]) * (size - len(head))
    return head + fill


def file_seq(data: bytes) -> int:
    head = data.split(b"\n", 1)[0].decode()
    seq = int(head.split()[0].split("=")[1])
    index = int(head.split()[1].split("=")[1])
    if data != payload(seq, index, len(data)):
        raise AssertionError(f"file {index} of seq {seq} is damaged")
    return seq


def make_store(sandbox: Path, fallback: bool) -> Store:
    fs = NoExchangeFS() if fallback else FS()
    return Store(sandbox, Path(STORE), PATHS, fs=fs, retry_seconds=1.0)


def write_files(sandbox: Path, seq: int, size: int) -> None:
    for i, name in enumerate(NAMES):
        p = sandbox / name
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_bytes(payload(seq, i, size))
        os.replace(tmp, p)


def worker(
    sandbox: Path, *, mode: str, size: int, fallback: bool, seed: int, ready: Callable[[], None]
) -> None:
    """The forked child: start like a supervisor, then commit in a loop until killed.

    ``ready`` is called once the start (cleanup, verify, restore) is done.
    """
    rnd = random.Random(seed)
    store = make_store(sandbox, fallback)
    store.cleanup_staging()
    seq = files_seq = 0
    if store.exists():
        state = store.verify()
        store.restore()
        seq, files_seq = int(state["seq"]), int(state["files_seq"])
    ready()
    while True:
        seq += 1
        roll = rnd.random()
        if seq > 1 and roll < 0.15 and store.exists():
            store.commit_state({"seq": seq, "files_seq": files_seq})
            continue
        write_files(sandbox, seq, size)
        move = mode == "move" or (mode == "mixed" and roll < 0.5)
        store.commit({"seq": seq, "files_seq": seq}, move=move)
        files_seq = seq


@dataclass
class Report:
    kills: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    commit_ms: float = 0.0

    def line(self) -> str:
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(self.outcomes.items()))
        return (
            f"{self.kills} kills in {self.seconds:.1f} s (one commit ~{self.commit_ms:.1f} ms); "
            f"{parts}; failures: {len(self.failures)}"
        )


def check_after_kill(sandbox: Path, fallback: bool, last_seq: int, report: Report) -> int:
    """The next start's view: cleanup, verify, no mixing, no regression, no leftovers."""
    store = make_store(sandbox, fallback)
    removed = store.cleanup_staging()
    if removed:
        report.outcomes["leftovers cleaned"] += 1
    if any(n.startswith(STORE) and any(t in n for t in LEFTOVER_TAGS) for n in os.listdir(sandbox)):
        raise AssertionError(f"leftovers after cleanup: {os.listdir(sandbox)}")
    if not store.exists():
        if last_seq:
            raise AssertionError("the store vanished after a kill")
        report.outcomes["no store yet"] += 1
        return 0
    state = store.verify()
    seq, files_seq = int(state["seq"]), int(state["files_seq"])
    for name in NAMES:
        got = file_seq((sandbox / STORE / name).read_bytes())
        if got != files_seq:
            raise AssertionError(f"mixed store: {name} has seq {got}, state says {files_seq}")
    if seq < last_seq:
        raise AssertionError(f"committed seq went back from {last_seq} to {seq}")
    report.outcomes["same store" if seq == last_seq else "newer store"] += 1
    return seq


def calibrate(size: int, root: Path | None) -> float:
    """Seconds one commit of the four files takes in ``root``."""
    with tempfile.TemporaryDirectory(dir=root) as d:
        sandbox = Path(d)
        store = make_store(sandbox, False)
        write_files(sandbox, 0, size)
        store.commit({"seq": 0, "files_seq": 0})  # warm up (imports tenacity)
        t = time.perf_counter()
        for seq in range(1, 6):
            write_files(sandbox, seq, size)
            store.commit({"seq": seq, "files_seq": seq})
        return (time.perf_counter() - t) / 5


def run(
    count: int,
    *,
    mode: str = "mixed",
    size: int = 256 << 10,
    seed: int = 0,
    fallback: bool = False,
    root: Path | None = None,
    time_budget: float | None = None,
    progress: int = 0,
) -> Report:
    """Kill a committing worker ``count`` times (or until ``time_budget`` seconds)."""
    rnd = random.Random(seed)
    report = Report(commit_ms=calibrate(size, root) * 1000)
    window = max(report.commit_ms / 1000 * 2.5, 0.002)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(dir=root) as d:
        sandbox = Path(d)
        last_seq = 0
        for i in range(count):
            if time_budget is not None and time.monotonic() - t0 > time_budget:
                break
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the worker
                code = 0
                try:
                    os.close(r)

                    def ready(fd: int = w) -> None:
                        os.write(fd, b"go")

                    if i % 5 == 0:  # one kill in five may land in the start (restore) too
                        ready()
                        ready = _nothing
                    worker(sandbox, mode=mode, size=size, fallback=fallback,
                           seed=seed * 1_000_003 + i, ready=ready)
                except BaseException as e:
                    with contextlib.suppress(Exception):
                        sys.stderr.write(f"worker failed: {e!r}\n")
                    code = 1
                finally:
                    os._exit(code)
            os.close(w)
            try:
                os.read(r, 2)  # the worker is running (the delay starts here)
                time.sleep(rnd.uniform(0, window))
                os.kill(pid, signal.SIGKILL)
            finally:
                os.close(r)
                _, status = os.waitpid(pid, 0)
            if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
                report.failures.append(f"kill {i}: worker ended by itself (status {status:#x})")
                break
            report.kills += 1
            if progress and report.kills % progress == 0:
                report.seconds = time.monotonic() - t0
                print(f"... {report.line()}", file=sys.stderr, flush=True)
            try:
                last_seq = check_after_kill(sandbox, fallback, last_seq, report)
            except (AssertionError, StoreError) as e:
                report.failures.append(f"kill {i}: {e}")
                break
        report.outcomes["final seq"] = last_seq
    report.seconds = time.monotonic() - t0
    return report


def _nothing() -> None:
    pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="number of kills (default 1000)")
    parser.add_argument("--mode", choices=["copy", "move", "mixed"], default="mixed")
    parser.add_argument("--size", type=int, default=1 << 20, help="bytes per file (default 1 MiB)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fallback", action="store_true", help="disable RENAME_EXCHANGE")
    parser.add_argument("--root", type=Path, default=None, help="where to make the sandbox")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--progress", type=int, default=0, metavar="N",
                        help="print the running figures to stderr every N kills")
    args = parser.parse_args(argv)
    report = run(
        args.count, mode=args.mode, size=args.size, seed=args.seed, fallback=args.fallback,
        root=args.root, progress=args.progress,
    )
    if args.json:
        print(json.dumps({"kills": report.kills, "outcomes": dict(report.outcomes),
                          "failures": report.failures, "seconds": report.seconds,
                          "commit_ms": report.commit_ms}))
    else:
        print(report.line())
        for f in report.failures:
            print("FAILURE:", f)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
