#!/usr/bin/env python3
"""A self-checkpointing test job for the dry run: counts steps, keeps the count in ``count``.

Each start appends ``start N PID`` and each step ``step N`` to a witness file outside the sandbox
(so the test sees work that a crash threw away), flushed at once. The count file is replaced
atomically after each step; every EVERY steps the job exits with the checkpoint code.
"""

import argparse
import os
import signal
import subprocess
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("witness")
p.add_argument("--every", type=int, default=5)
p.add_argument("--total", type=int, default=10)
p.add_argument("--step", type=float, default=0.1)
p.add_argument("--code", type=int, default=85)
p.add_argument("--ignore", action="append", default=[], help="signal names to ignore")
p.add_argument("--ckpt-on", default=None, help="on this signal: exit with --code after the step")
p.add_argument("--leftover", action="store_true", help="leave a setsid'd sleeper behind")
p.add_argument("--ckpt-signal", default=None, help="checkpoint by dying from this signal")
p.add_argument("--die-by", default=None, help="at the end, kill yourself with this signal")
p.add_argument("--finish-on-restart", action="store_true",
               help="a start from a checkpoint finishes at once (so no checkpoint signal can meet its end)")
a = p.parse_args()


def note(text):
    with open(a.witness, "a") as fh:
        fh.write(text + "\n")


for name in a.ignore:
    signal.signal(getattr(signal, name), signal.SIG_IGN)
asked = []
if a.ckpt_on:
    signal.signal(getattr(signal, a.ckpt_on), lambda *_: asked.append(1))

n = 0
if os.path.exists("count"):
    with open("count") as fh:
        n = int(fh.read())
note(f"start {n} {os.getpid()}")
if a.finish_on_restart and n > 0:
    a.total = n
print(f"start {n}", flush=True)
if a.leftover:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             start_new_session=True)
    note(f"leftover {child.pid}")
while n < a.total:
    note(f"step {n}")
    time.sleep(a.step)
    n += 1
    with open("count.tmp", "w") as fh:
        fh.write(str(n))
    os.replace("count.tmp", "count")
    if asked or (a.every and n % a.every == 0 and n < a.total):
        note(f"checkpoint {n}")
        if a.ckpt_signal:
            sig = getattr(signal, a.ckpt_signal)
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
        sys.exit(a.code)
note(f"done {n}")
print(f"done {n}", flush=True)
if a.die_by:
    signal.signal(getattr(signal, a.die_by), signal.SIG_DFL)
    os.kill(os.getpid(), getattr(signal, a.die_by))
sys.exit(0)
