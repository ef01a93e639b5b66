#!/usr/bin/env python3
"""A checkpoint validator: exit 0 when every file given is a complete victim checkpoint."""

import sys


def complete(path: str) -> bool:
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    return len(lines) >= 3 and lines[-1] == f"end {lines[0]}"


sys.exit(0 if all(complete(p) for p in sys.argv[1:]) else 1)
