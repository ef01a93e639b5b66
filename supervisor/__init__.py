"""checkpoint-supervisor: run a legacy program as an HTCondor self-checkpointing job.

The import name ``supervisor`` is also used by supervisord; the two cannot share one
environment.
"""

__version__ = "0.1.0"
PROG = "ckpt-supervisor"
