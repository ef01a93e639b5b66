#!/usr/bin/env python3
"""The seed's 77-time.py grown into a small job whose exit code says nothing.

The seed's script exits with 77 half of the time and 0 the other half. This one does real work
(twelve steps), saves its progress in count.ckpt every four steps and then ends the run with that
same coin toss: 77 or 0, depending on the clock. So 0 may mean "finished" or "checkpointed", and
77 may come before or after the work is done. HTCondor cannot tell these apart from the exit code.

Under ckpt-supervisor (see 77-time.submit) the sandbox decides instead of the code:
  --inspect-on-exit 0,77        after either code, look at the files
  --done-when marker=result.txt result.txt exists: the program has finished, report its status
  otherwise, a new count.ckpt since this start is a checkpoint: commit it, exit 85
"""

import sys
import time

STEPS = 12

step = 0
try:
    with open("count.ckpt") as f:
        step = int(f.read())
except (OSError, ValueError):
    pass

print(f"Starting from step {step}", flush=True)
while step < STEPS:
    time.sleep(0.25)  # one step of "work"
    step += 1
    print(f"Computed step {step}", flush=True)
    if step % 4 == 0 and step < STEPS:
        with open("count.ckpt", "w") as f:  # in place, not atomic: the supervisor copes
            f.write(str(step))
        # the seed's ambiguous ending: 77 or 0, whatever just happened
        sys.exit(77 if time.time() % 2 > 1 else 0)

with open("result.txt", "w") as f:
    f.write(f"sum of 1..{STEPS} = {sum(range(1, STEPS + 1))}\n")
print("Computation complete", flush=True)
sys.exit(0)
