#!/usr/bin/env python

import sys
import time

value = 0
try:
    with open('vuc.ckpt', 'r') as f:
        value = int(f.read())
except IOError:
    pass

print("Starting from {0}".format(value))
for i in range(value,10):
    print("Computing timestamp {0}".format(value))
    time.sleep(1)
    value += 1
    with open('vuc.ckpt', 'w') as f:
        f.write("{0}".format(value))
    if value%3 == 0:
        sys.exit(77)

print("Computation complete")
sys.exit(0)
