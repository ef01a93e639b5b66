#!/usr/bin/env python3
"""A program to supervise in tests (the dumb-init way).

It prints ``ready <pid>`` once its handlers are installed, echoes every signal it gets as
``signal <N>`` (stdout, flushed, and ``--log FILE``), and can misbehave on demand:

  --exit N               exit with N right away (after ready)
  --die SIG              kill itself with SIG right away
  --ignore SIG           ignore SIG (repeatable)
  --exit-on SIG:N        exit with N when SIG arrives (repeatable)
  --setsid-grandchild F  double-fork a daemon that calls setsid and sleeps; its pid goes to F
  --stubborn-child F     fork a child that ignores SIGTERM and sleeps; its pid goes to F
  --short-children N     fork N grandchildren that exit at once (their parents do not wait)
  --status-file F        write /proc/self/status lines SigBlk and SigIgn to F, then continue
  --ckpt FILE            checkpoint file: a counter, resumed from if present
  --ckpt-on SIG          on SIG, rewrite FILE in place, slowly (--slow seconds), then continue
  --slow S               seconds to spend writing a checkpoint (default 0)
  --exit-after-ckpt N    exit with N after each signal checkpoint
  --steps N              count N steps (--step-time each), checkpoint every --every-steps, exit 0
  --marker FILE          touch FILE after each checkpoint
  --exit-after-auto N    exit with N after each checkpoint taken on its own (--every-steps)
  --result FILE          write FILE when all --steps are done (a "finished" marker)
  --sleep S              how long to sleep when idle (default: forever)

Added for tests/reliability (none changes the behaviour above when not given):

  --children N           fork N children that sleep forever (a wide process tree)
  --ckpt-bytes N         size of the filler of each checkpoint (default 4000)
  --crash-in-ckpt SIG    during a signal checkpoint, after writing half, kill itself with SIG
  --truncate-ckpt        signal checkpoints lack their last line (a truncated checkpoint)
  --flood N              during each signal checkpoint, write N bytes to stdout and N to stderr
                         (lines of FLOOD_LINE_OUT / FLOOD_LINE_ERR), interleaved with the write
  --marker-after FILE    after writing a signal checkpoint, wait until FILE exists before the
                         --marker (a test decides when the checkpoint is complete)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time

pending: list[int] = []


def handler(signum, frame):
    pending.append(signum)


def parse_sig(text: str) -> int:
    text = text.upper()
    if text.isdigit():
        return int(text)
    return int(getattr(signal, text if text.startswith("SIG") else "SIG" + text))


def out(line: str, log: str | None) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
    if log:
        with open(log, "a") as f:
            f.write(line + "\n")


def read_counter(path: str) -> int:
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


FLOOD_LINE_OUT = b"o" * 1023 + b"\n"
FLOOD_LINE_ERR = b"e" * 1023 + b"\n"


def flood_some(remaining: list[int], share: int) -> None:
    """Write up to ``share`` bytes of the flood to stdout and to stderr (whole lines)."""
    lines = min(share, remaining[0]) // len(FLOOD_LINE_OUT)
    if lines <= 0:
        return
    sys.stdout.flush()
    _write_all(1, FLOOD_LINE_OUT * lines)
    _write_all(2, FLOOD_LINE_ERR * lines)
    remaining[0] -= lines * len(FLOOD_LINE_OUT)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_ckpt(path: str, value: int, slow: float, filler: int = 4000, *, crash: int | None = None,
               truncate: bool = False, flood: int = 0) -> None:
    # in place, not atomic: first truncate, then write slowly in pieces
    text = f"{value}\n" + "x" * filler + f"\nend {value}\n"
    if truncate:
        text = text[: text.rindex("end")]
    remaining = [flood]
    with open(path, "w") as f:
        pieces = 8
        step = len(text) // pieces + 1
        for n, i in enumerate(range(0, len(text), step)):
            if crash is not None and n == pieces // 2:
                f.flush()
                signal.signal(crash, signal.SIG_DFL)
                os.kill(os.getpid(), crash)  # mid-checkpoint: half of it is on disk
            f.write(text[i:i + step])
            f.flush()
            if flood:
                flood_some(remaining, flood // pieces + len(FLOOD_LINE_OUT))
            if slow:
                time.sleep(slow / pieces)
    if flood:
        flood_some(remaining, remaining[0])


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--log")
    p.add_argument("--exit", type=int)
    p.add_argument("--die")
    p.add_argument("--ignore", action="append", default=[])
    p.add_argument("--exit-on", action="append", default=[])
    p.add_argument("--setsid-grandchild")
    p.add_argument("--stubborn-child")
    p.add_argument("--short-children", type=int, default=0)
    p.add_argument("--status-file")
    p.add_argument("--ckpt")
    p.add_argument("--ckpt-on")
    p.add_argument("--slow", type=float, default=0.0)
    p.add_argument("--exit-after-ckpt", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--step-time", type=float, default=0.05)
    p.add_argument("--every-steps", type=int, default=0)
    p.add_argument("--marker")
    p.add_argument("--marker-after")
    p.add_argument("--sleep", type=float)
    p.add_argument("--exit-after-auto", type=int)
    p.add_argument("--result")
    p.add_argument("--children", type=int, default=0)
    p.add_argument("--ckpt-bytes", type=int, default=4000)
    p.add_argument("--crash-in-ckpt")
    p.add_argument("--truncate-ckpt", action="store_true")
    p.add_argument("--flood", type=int, default=0)
    a = p.parse_args()

    if a.status_file:
        with open("/proc/self/status") as f, open(a.status_file, "w") as o:
            o.writelines(line for line in f if line.startswith(("SigBlk", "SigIgn")))

    ignored = {parse_sig(s) for s in a.ignore}
    exit_on = {parse_sig(k): int(v) for k, v in (e.split(":") for e in a.exit_on)}
    ckpt_sig = parse_sig(a.ckpt_on) if a.ckpt_on else None
    for sig in range(1, 32):
        if sig in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
            continue
        if sig in ignored:
            signal.signal(sig, signal.SIG_IGN)
        elif a.status_file is None or sig in exit_on or sig == ckpt_sig:
            signal.signal(sig, handler)

    if a.setsid_grandchild and os.fork() == 0:  # the child: a grandchild in its own session
        os.setsid()
        if os.fork() == 0:
            with open(a.setsid_grandchild + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(a.setsid_grandchild + ".tmp", a.setsid_grandchild)
            while True:
                time.sleep(60)
        os._exit(0)
    if a.stubborn_child:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            with open(a.stubborn_child + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.rename(a.stubborn_child + ".tmp", a.stubborn_child)
            while True:
                time.sleep(60)
    for _ in range(a.children):
        if os.fork() == 0:
            for sig in range(1, 32):  # plain sleepers: default dispositions
                if sig not in (signal.SIGKILL, signal.SIGSTOP):
                    with contextlib.suppress(OSError, ValueError):
                        signal.signal(sig, signal.SIG_DFL)
            while True:
                time.sleep(60)
    for _ in range(a.short_children):
        pid = os.fork()
        if pid == 0:
            if os.fork() == 0:
                os._exit(0)  # the grandchild: an orphan, reparented to the subreaper
            os._exit(0)
        os.waitpid(pid, 0)  # a parent that reaps its own child, as programs do

    value = read_counter(a.ckpt) if a.ckpt else 0
    out(f"ready {os.getpid()} value {value}", a.log)
    if a.exit is not None:
        return a.exit
    if a.die:
        signal.signal(parse_sig(a.die), signal.SIG_DFL)
        os.kill(os.getpid(), parse_sig(a.die))

    step = 0
    deadline = None if a.sleep is None else time.monotonic() + a.sleep
    while True:
        while pending:
            sig = pending.pop(0)
            out(f"signal {sig}", a.log)
            if sig == ckpt_sig and a.ckpt:
                write_ckpt(a.ckpt, value, a.slow, a.ckpt_bytes,
                           crash=parse_sig(a.crash_in_ckpt) if a.crash_in_ckpt else None,
                           truncate=a.truncate_ckpt, flood=a.flood)
                while a.marker_after and not os.path.exists(a.marker_after):
                    time.sleep(0.01)
                if a.marker:
                    with open(a.marker, "w") as f:
                        f.write(f"{value}\n")
                out(f"checkpointed {value}", a.log)
                if a.exit_after_ckpt is not None:
                    return a.exit_after_ckpt
            if sig in exit_on:
                return exit_on[sig]
        if a.steps is not None:
            if value >= a.steps:
                if a.result:
                    with open(a.result, "w") as f:
                        f.write(f"{value}\n")
                out(f"done {value}", a.log)
                return 0
            time.sleep(a.step_time)
            value += 1
            step += 1
            if a.every_steps and a.ckpt and value % a.every_steps == 0 and value < a.steps:
                write_ckpt(a.ckpt, value, a.slow, a.ckpt_bytes)
                if a.marker:
                    with open(a.marker, "w") as f:
                        f.write(f"{value}\n")
                out(f"checkpointed {value}", a.log)
                if a.exit_after_auto is not None:
                    return a.exit_after_auto
            continue
        if deadline is not None and time.monotonic() > deadline:
            return 0
        try:
            signal.sigtimedwait([], 0)  # no-op; keeps handlers responsive
        except Exception:
            pass
        time.sleep(0.01)


if __name__ == "__main__":
    sys.exit(main())
