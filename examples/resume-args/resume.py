#!/usr/bin/env python3
"""A program that must be told to resume: without --resume FILE it starts from scratch.

Like many simulation codes, resume.py saves a restart file (restart.json) every five steps and
keeps running; it reads that file only when its command line says so. HTCondor restarts a job
with the same command line every time, so on its own this program would start over after every
eviction. ckpt-supervisor (see resume.submit) starts it with its first arguments when there is
no committed checkpoint and with --resume-args when it restored one:

  --watch                     the program checkpoints by itself: commit each new complete one
  --complete-when log=...     complete when the program says it saved its state
  --resume-args "..."         replaces every argument after the program name (python3 here),
                              so it repeats resume.py and --steps

The work: the product of (1 + 1/k) for k = 1..STEPS, which is STEPS + 1.
"""

import argparse
import json
import sys
import time
from fractions import Fraction

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, required=True)
parser.add_argument("--resume", metavar="FILE", help="restart file to continue from")
args = parser.parse_args()

step, value = 0, Fraction(1)
if args.resume:
    with open(args.resume) as f:
        saved = json.load(f)
    step, value = saved["step"], Fraction(saved["value"])
    print(f"Resuming from step {step} ({args.resume})", flush=True)
else:
    print("Starting from scratch", flush=True)

while step < args.steps:
    time.sleep(0.1)
    step += 1
    value *= 1 + Fraction(1, step)
    if step % 5 == 0:
        with open("restart.json", "w") as f:
            json.dump({"step": step, "value": str(value)}, f)
        print(f"saved state at step {step}", flush=True)

with open("result.txt", "w") as f:
    f.write(f"product after {args.steps} steps = {value}\n")
print("Computation complete", flush=True)
sys.exit(0)
