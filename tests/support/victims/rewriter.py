#!/usr/bin/env python3
"""A program that rewrites its checkpoint IN PLACE, and checks it (issue 12's torture victim).

A checkpoint of step N is a set of files, each holding the 8-byte little-endian word N repeated
(``--size`` bytes), followed by ``--meta`` (a small JSON file ``{"step": N}``) when one is given.
Files are rewritten in place (no truncation first, no rename), in 256 KiB pieces, so a copy
taken during a write holds words of two steps: torn. A store whose files are not all complete
and of one step is mixed.

Modes:

  rewriter.py --check [--names a.bin,b.bin,meta.json] PATH...
                                   exit 0 when the files/directories given hold one complete
                                   checkpoint (all words of every file one step, all files the
                                   same step, the meta file too, and every name of --names in
                                   each directory), else print why and exit 1 (the ``command=``
                                   validator and the test's store check)

  rewriter.py [options]            run: resume from the checkpoint if it checks (else from
                                   step 0, and report it), then write checkpoints:
    --dir D                        the checkpoint directory (files go inside it; default: none)
    --files a.bin,b.bin            the data files (inside --dir, or in the working directory)
    --meta NAME                    written last, after every data file (a marker)
    --size BYTES                   size of each data file (default 2 MiB)
    --min S --max S                pause between checkpoints: uniformly random from S to S
                                   (on a log scale; default 0.001-1.0)
    --gap S                        pause between two data files of one checkpoint (default 0)
    --fresh                        remove the data files (and meta) before writing a checkpoint,
                                   instead of rewriting them in place
    --on-signal SIG                write a checkpoint when SIG arrives (and never on its own
                                   unless --also-auto)
    --also-auto                    with --on-signal: also write on its own schedule
    --steps N                      exit 0 after step N was written (writes result.txt)
    --exit-after-ckpt CODE         exit with CODE after each checkpoint written on its own
    --log                          print "checkpoint N done" after each checkpoint
    --report FILE                  append one line per start to FILE: "start STEP" when the
                                   checkpoint found was complete (or absent: STEP 0), or
                                   "TORN reason" when it was not although the supervisor had
                                   restored it (a store ``checkpoint.atomic`` that is not marked
                                   empty or finished is beside it: the torture test counts these),
                                   or "LEFTOVER reason" when no restore happened (the program's
                                   own half-written files, after a restart in place)
    --seed N                       random seed (default: from the pid)

It prints ``ready <pid>`` once its handlers are installed.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import struct
import sys
import time

PIECE = 256 << 10


def word(step: int) -> bytes:
    return struct.pack("<Q", step)


def check_file(path: str) -> tuple[int | None, str]:
    """(step, "") for a complete data file, (None, why) otherwise."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return None, f"{path}: {e.strerror}"
    if path.endswith(".json"):
        try:
            return int(json.loads(data.decode())["step"]), ""
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None, f"{path}: not a complete meta file ({data[:40]!r})"
    if len(data) < 8 or len(data) % 8:
        return None, f"{path}: {len(data)} bytes, not a whole number of words"
    first = data[:8]
    if data != first * (len(data) // 8):
        words = {data[i:i + 8] for i in range(0, len(data), 8)}
        steps = sorted(struct.unpack("<Q", w)[0] for w in words)
        return None, f"{path}: torn, holds steps {steps[:6]}"
    return struct.unpack("<Q", first)[0], ""


def check(paths: list[str], names: list[str] = ()) -> tuple[int | None, str]:
    """(step, "") when ``paths`` hold one complete checkpoint; (None, why) otherwise."""
    files: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            have = sorted(os.listdir(p))
            missing = [n for n in names if n not in have]
            if missing:
                return None, f"{p} lacks {missing}"
            files.extend(os.path.join(p, n) for n in have)
        else:
            files.append(p)
    if not files:
        return None, "no checkpoint files"
    steps: dict[str, int] = {}
    for f in files:
        step, why = check_file(f)
        if step is None:
            return None, why
        steps[os.path.basename(f)] = step
    if len(set(steps.values())) != 1:
        return None, f"mixed steps {steps}"
    return next(iter(steps.values())), ""


def restored() -> bool:
    """Whether the supervisor restored the working files from its store before starting us."""
    try:
        with open(os.path.join("checkpoint.atomic", "state.json")) as f:
            state = json.load(f)
    except (OSError, ValueError):
        return False
    return not state.get("empty") and "final_status" not in state


def write_file(path: str, step: int, size: int) -> None:
    block = word(step) * (PIECE // 8)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        off = 0
        while off < size:
            n = min(PIECE, size - off)
            os.pwrite(fd, block[:n], off)
            off += n
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def main() -> int:
    args = sys.argv[1:]
    if args and args[0] == "--check":
        names: list[str] = []
        if len(args) > 2 and args[1] == "--names":
            names = args[2].split(",")
            args = args[2:]
        step, why = check(args[1:], names)
        if step is None:
            print(f"rewriter check: {why}", file=sys.stderr)
            return 1
        print(f"rewriter check: complete checkpoint of step {step}")
        return 0
    opts: dict[str, str] = {}
    flags = {"--log", "--also-auto", "--fresh"}
    i = 0
    while i < len(args):
        if args[i] in flags:
            opts[args[i]] = "1"
            i += 1
        else:
            opts[args[i]] = args[i + 1]
            i += 2
    where = opts.get("--dir", "")
    names = [n for n in opts.get("--files", "a.bin,b.bin").split(",") if n]
    meta = opts.get("--meta")
    size = int(opts.get("--size", str(2 << 20)))
    lo, hi = float(opts.get("--min", "0.001")), float(opts.get("--max", "1.0"))
    gap = float(opts.get("--gap", "0"))
    steps = int(opts.get("--steps", "0"))
    exit_after = opts.get("--exit-after-ckpt")
    report = opts.get("--report")
    rng = random.Random(int(opts.get("--seed", str(os.getpid()))))
    paths = [os.path.join(where, n) for n in names] + ([os.path.join(where, meta)] if meta else [])

    present = [p for p in paths if os.path.exists(p)]
    step = 0
    if present:
        found, why = check(paths)
        if found is None:
            line = f"{'TORN' if restored() else 'LEFTOVER'} {why}"
        else:
            step = found
            line = f"start {step}"
    else:
        line = "start 0"
    if report:
        with open(report, "a") as f:
            f.write(line + "\n")
    if where:
        os.makedirs(where, exist_ok=True)

    requested: list[int] = []
    on_signal = opts.get("--on-signal")
    if on_signal:
        sig = int(getattr(signal, on_signal if on_signal.startswith("SIG") else "SIG" + on_signal))
        signal.signal(sig, lambda s, f: requested.append(s))
    auto = not on_signal or "--also-auto" in opts
    print(f"ready {os.getpid()}", flush=True)

    def pause() -> float:
        return math.exp(rng.uniform(math.log(lo), math.log(hi)))

    next_auto = time.monotonic() + pause()
    while True:
        now = time.monotonic()
        if requested or (auto and now >= next_auto):
            by_signal = bool(requested)
            requested.clear()
            step += 1
            if "--fresh" in opts:
                for p in paths:
                    if os.path.exists(p):
                        os.unlink(p)
            for k, n in enumerate(names):
                if k and gap:
                    time.sleep(gap)
                write_file(os.path.join(where, n), step, size)
            if meta:
                with open(os.path.join(where, meta), "w") as f:
                    f.write(json.dumps({"step": step}) + "\n")
            if "--log" in opts:
                print(f"checkpoint {step} done", flush=True)
            if steps and step >= steps:
                with open("result.txt", "w") as f:
                    f.write(f"done at step {step}\n")
                return 0
            if exit_after is not None and not by_signal:
                return int(exit_after)
            next_auto = time.monotonic() + pause()
            continue
        time.sleep(max(0.0, min(next_auto - now, 0.05)) if auto else 0.05)


if __name__ == "__main__":
    sys.exit(main())
