"""A program with no checkpoint of its own: its whole state is in memory.

It hashes STEPS numbers, one every 0.05 s, prints each step and the result at the end.
Run from scratch it needs STEPS * 0.05 seconds without interruption.
"""

import hashlib
import sys
import time

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
h = hashlib.sha256()
for i in range(steps):
    h.update(str(i).encode())
    print(i, h.hexdigest()[:16], flush=True)
    time.sleep(0.05)
print("result", h.hexdigest(), flush=True)
