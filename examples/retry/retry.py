#!/usr/bin/env python3
"""Sum 1..20, one number every 0.2 s, with a checkpoint (exit 77) after every fifth.

A stand-in for a long computation that fails for a reason outside itself: on the job's first
execution it "loses its GPU" at 13 and exits 3, as a program does on a broken node. It reads
which execution it is from the job ad HTCondor gives every job ($_CONDOR_JOB_AD:
NumJobCompletions counts the job's earlier ends). With max_retries the job is requeued and its
next execution resumes from the last checkpoint (10), not from the start.
"""

import os
import sys
import time


def completions() -> int:
    try:
        with open(os.environ["_CONDOR_JOB_AD"]) as ad:
            for line in ad:
                name, _, value = line.partition("=")
                if name.strip() == "NumJobCompletions":
                    return int(value)
    except (KeyError, OSError, ValueError):
        pass
    return 0


n, total = 0, 0
if os.path.exists("state.txt"):
    with open("state.txt") as f:
        n, total = map(int, f.read().split())
print(f"starting after {n} (sum {total}); earlier ends of this job: {completions()}", flush=True)
while n < 20:
    time.sleep(0.2)
    n += 1
    total += n
    with open("state.txt", "w") as f:  # in place, not atomic: the supervisor commits it whole
        f.write(f"{n} {total}\n")
    if n == 13 and completions() == 0:
        print("node failure at 13: exit 3", file=sys.stderr, flush=True)
        sys.exit(3)
    if n % 5 == 0 and n < 20:
        sys.exit(77)  # checkpoint taken: state.txt
with open("result.txt", "w") as f:
    f.write(f"sum of 1..20 = {total}\n")
print("done", flush=True)
