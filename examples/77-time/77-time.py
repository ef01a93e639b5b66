import sys
import time

if time.time() % 2 > 1:
    sys.exit(77)
else:
    sys.exit(0)
