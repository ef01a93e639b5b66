#!/usr/bin/env python3
"""A legacy program that never exits to checkpoint: on SIGUSR1 it rewrites state.txt in place.

Many long-running codes work like this: they save their state when asked by a signal and carry
on computing; they exit only when the whole computation is done. HTCondor's self-checkpointing
needs the job to *exit* after a checkpoint, with a unique code. ckpt-supervisor bridges the two
(see legacy.submit):

  --every 2                 ask for a checkpoint every 2 seconds, on the supervisor's own timer
  --job-signal SIGUSR1      the signal that makes this program save its state
  --complete-when log=...   the checkpoint is complete when the program prints that line
  then: commit state.txt into checkpoint.atomic, kill the program, exit 85; on the next start
  restore state.txt, and the program resumes from it.

The work: 30 steps of 0.1 s; the answer is the 30th Fibonacci number.
"""

import signal
import sys
import time

STEPS = 30

step, a, b = 0, 0, 1
try:
    with open("state.txt") as f:
        step, a, b = (int(x) for x in f.read().split())
except (OSError, ValueError):
    pass

asked = False


def on_usr1(signum, frame):
    global asked
    asked = True  # save between two steps, never in the middle of one


signal.signal(signal.SIGUSR1, on_usr1)
print(f"Starting from step {step}", flush=True)
while step < STEPS:
    time.sleep(0.1)
    step, a, b = step + 1, b, a + b
    if asked:
        asked = False
        with open("state.txt", "w") as f:  # in place: torn if killed here
            f.write(f"{step} {a} ")
            f.flush()
            time.sleep(0.05)
            f.write(f"{b}\n")
        print(f"checkpoint written at step {step}", flush=True)

with open("result.txt", "w") as f:
    f.write(f"fib({STEPS}) = {a}\n")
print("Computation complete", flush=True)
sys.exit(0)
