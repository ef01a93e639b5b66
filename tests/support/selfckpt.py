"""The self-checkpointing victim job the ``.pyz`` tests run (tests/process/test_pyz.py).

The victim (tests/support/victims/victim.py) saves ``state`` every 10 steps and exits 77 after
each save; at its end it writes ``result.dat``. The supervisor inspects exit 77, commits the
state (85), and is done when ``result.dat`` exists.
"""

from __future__ import annotations

# ckpt-supervisor's run options (and submit-snippet's) for that job
RUN_OPTIONS = ["--checkpoint", "state", "--inspect-on-exit", "77", "--done-when", "marker=result.dat"]


def victim_args(steps: int, step_time: float) -> list[str]:
    """The victim's arguments (after ``victim.py``): ``steps`` steps of ``step_time`` seconds."""
    return ["--ckpt", "state", "--steps", str(steps), "--step-time", str(step_time), "--every-steps", "10",
            "--exit-after-auto", "77", "--result", "result.dat"]
