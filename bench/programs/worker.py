"""A job with a known checkpoint cost, for the goodput benchmark.

``worker.py WORK COST``: does WORK seconds of "work" in 50 ms steps (sleeping: the machine has
few cores and the emulator must stay responsive), resuming from ./state. On SIGUSR1 it finishes
the current step, spends COST seconds "writing" the checkpoint, then writes ./state atomically
(tmp + rename) and carries on. At the end it writes ./result and exits 0.
"""

import os
import signal
import sys
import time

work, cost = float(sys.argv[1]), float(sys.argv[2])
STEP = 0.05
asked = []
signal.signal(signal.SIGUSR1, lambda *_: asked.append(1))
steps = 0
if os.path.exists("state"):
    with open("state") as f:
        steps = int(f.read().split()[0])
print(f"start at step {steps} ({steps * STEP:.2f} s of work)", flush=True)
total = round(work / STEP)
while steps < total:
    time.sleep(STEP)
    steps += 1
    if asked:
        asked.clear()
        time.sleep(cost)
        with open("state.tmp", "w") as f:
            f.write(f"{steps}\n")
        os.rename("state.tmp", "state")
with open("result", "w") as f:
    f.write(f"done {steps}\n")
print("done", flush=True)
