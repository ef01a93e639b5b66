#!/usr/bin/env python3
"""A program that saves its state and exits when interrupted (SIGINT), like many simulation codes.

Its exit after SIGINT is status 130, not a checkpoint code, and it knows nothing of SIGUSR2. The
job asks HTCondor for its periodic checkpoint signal (+WantCheckpointSignal, +CheckpointSig =
"SIGUSR2", see ckptsig.submit); ckpt-supervisor reads both from the job ad and:

  --job-signal SIGINT       translates HTCondor's SIGUSR2 into the SIGINT this program understands
  --complete-when exit      the checkpoint is complete when the program has exited
  then: commit progress.txt into checkpoint.atomic and exit 85, the status HTCondor was promised
  (any other exit after the checkpoint signal would put the job on hold, code 36).

The work: 40 steps of 0.1 s (at least 4 s, however fast the machine); the answer is 2**40
computed by doubling.
"""

import signal
import sys
import time

STEPS = 40

step, value = 0, 1
try:
    with open("progress.txt") as f:
        step, value = (int(x) for x in f.read().split())
except (OSError, ValueError):
    pass


def save_and_exit(signum, frame):
    with open("progress.txt", "w") as f:
        f.write(f"{step} {value}\n")
    print(f"interrupted: saved step {step}", flush=True)
    sys.exit(128 + signum)


signal.signal(signal.SIGINT, save_and_exit)
print(f"Starting from step {step}", flush=True)
while step < STEPS:
    time.sleep(0.1)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})  # a step is all or nothing
    step, value = step + 1, value * 2
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})

with open("result.txt", "w") as f:
    f.write(f"2**{STEPS} = {value}\n")
print("Computation complete", flush=True)
sys.exit(0)
