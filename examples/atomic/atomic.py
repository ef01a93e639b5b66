#!/usr/bin/env python3
"""A program that writes its checkpoint incrementally to 'checkpoint' and exits 17 when done writing.

This is the seed HOWTO's fourth work-around ("77-atomic.py", left as FIXME there): the program
does not replace its checkpoint atomically, so an eviction in the middle of a write leaves a torn
'checkpoint' behind, and ON_EXIT_OR_EVICT would upload it. The seed's answer is a wrapper that,
on exit code 17, renames 'checkpoint' to 'checkpoint.atomic' and copies it back before each start.
ckpt-supervisor is that wrapper (see atomic.submit):

  --checkpoint checkpoint   the file the program writes
  --inspect-on-exit 17      after exit 17, a new 'checkpoint' since this start is a checkpoint
  store checkpoint.atomic   the default --store: a directory replaced all or nothing, with a
                            manifest and checksums; restored to 'checkpoint' before each start

The work: the sum of squares of 1..20, five steps per run, 0.1 s a step.
"""

import sys
import time

STEPS = 20
PER_RUN = 5

step, total = 0, 0
try:
    with open("checkpoint") as f:
        lines = f.read().split("\n")
    # a complete checkpoint is exactly: "step N", "sum S", "end", ""
    if len(lines) != 4 or lines[2] != "end":
        sys.exit(f"torn checkpoint file: {lines!r}")  # what the supervisor prevents
    step = int(lines[0].split()[1])
    total = int(lines[1].split()[1])
except FileNotFoundError:
    pass

print(f"Starting from step {step}, sum {total}", flush=True)
while step < STEPS:
    time.sleep(0.1)
    step += 1
    total += step * step
    if step % PER_RUN == 0 and step < STEPS:
        with open("checkpoint", "w") as f:  # incrementally: a torn file for 0.4 s
            f.write(f"step {step}\n")
            f.flush()
            time.sleep(0.2)
            f.write(f"sum {total}\n")
            f.flush()
            time.sleep(0.2)
            f.write("end\n")
        print(f"Checkpoint written at step {step}", flush=True)
        sys.exit(17)

with open("result.txt", "w") as f:
    f.write(f"sum of squares 1..{STEPS} = {total}\n")
print("Computation complete", flush=True)
sys.exit(0)
