"""What the parts of ``dry-run`` share (:mod:`supervisor.condor.dryrun` is the emulator): the
names the starter gives its files, HTCondor's hold codes, the emulated machine, and the exceptions
that cross from one part to another."""

from __future__ import annotations

from pathlib import Path

FAMILY_ENV = "CKPT_DRYRUN_FAMILY"
STDOUT_NAME = "_condor_stdout"
STDERR_NAME = "_condor_stderr"
JOB_AD_NAME = ".job.ad"
MACHINE_AD_NAME = ".machine.ad"
INTERNAL_NAMES = frozenset(
    {STDOUT_NAME, STDERR_NAME, JOB_AD_NAME, MACHINE_AD_NAME, ".chirp.config", ".update.ad"}
)
POLL = 0.02

HOLD_FAILED_TO_CHECKPOINT = 36  # CONDOR_HOLD_CODE::FailedToCheckpoint
HOLD_TRANSFER_OUTPUT = 12  # CONDOR_HOLD_CODE::TransferOutputError
HOLD_TRANSFER_INPUT = 13  # CONDOR_HOLD_CODE::TransferInputError
HOLD_FAILED_TO_EXECUTE = 6  # CONDOR_HOLD_CODE::FailedToCreateProcess
HOLD_ON_EXIT_POLICY = 3  # CONDOR_HOLD_CODE::JobPolicy (on_exit_hold)

SLOT_NAME = "slot1@dry-run"
# Set to the slot's CPU count (1) by the starter of HTCondor 25.0.13 (STARTER_NUM_THREADS_ENV_VARS).
THREAD_LIMITS = ("CUBACORES", "GOMAXPROCS", "JULIA_NUM_THREADS", "MKL_NUM_THREADS",
                 "NUMEXPR_NUM_THREADS", "OMP_NUM_THREADS", "OMP_THREAD_LIMIT",
                 "OPENBLAS_NUM_THREADS", "PYTHON_CPU_COUNT", "ROOT_MAX_THREADS",
                 "TF_LOOP_PARALLEL_ITERATIONS", "TF_NUM_THREADS")
ACCESS_POINT = "dry-run"
TAIL_LINES = 10


class _Interrupt(Exception):
    """A crash of the execute point while no job process runs (during a checkpoint upload)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class MissingFile(Exception):
    pass


class UploadFailed(Exception):
    """A file to upload is missing (or, in a checkpoint, is a symlink to a directory)."""

    def __init__(self, name: str, path: Path, why: str) -> None:
        super().__init__(f"{name}: {why}")
        self.name = name
        self.path = path
        self.why = why
