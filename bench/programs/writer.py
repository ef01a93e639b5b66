"""A program that checkpoints by itself, for the completion-decision latency benchmark.

``writer.py MODE N PERIOD LOG``: N times, sleep PERIOD, then write a checkpoint and append the
wall-clock time (time.time(), the clock of the supervisor's --events file) of the moment just
before the call that should let the supervisor decide (and of the start of the write), to LOG:

  quiet   write ck.tmp in one go, rename it to ck: the time before rename()
  closed  rewrite ck in place in 4 pieces 20 ms apart, close it: the time before close()
  marker  rewrite ck in place in 4 pieces, close it, then rewrite ./done: the time before that

Each LOG line is "BEGIN DECIDE" (time.time(), seconds).

Then wait 2 s (the last commit) and exit 0.
"""

import os
import sys
import time

mode, n, period, log = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
payload = b"x" * 65536
with open(log, "a") as out:
    for i in range(n):
        time.sleep(period)
        begin = time.time()
        if mode == "quiet":
            with open("ck.tmp", "wb") as f:
                f.write(b"%d\n" % i + payload)
            decide = time.time()
            os.rename("ck.tmp", "ck")
        else:
            f = open("ck", "wb")  # noqa: SIM115
            for _ in range(4):
                f.write(b"%d\n" % i + payload[:16384])
                f.flush()
                time.sleep(0.02)
            if mode == "closed":
                decide = time.time()
            f.close()
            if mode == "marker":
                time.sleep(0.02)
                decide = time.time()
                fd = os.open("done", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.write(fd, b"%d\n" % i)
                os.close(fd)
        out.write(f"{begin:.6f} {decide:.6f}\n")
        out.flush()
time.sleep(2)
