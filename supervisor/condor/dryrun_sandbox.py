"""The dry run's sandbox (part of :mod:`supervisor.condor.dryrun`): its input files, the job's
environment, the ``.job.ad`` and ``.machine.ad`` the starter writes, and the job ad the
``on_exit_hold`` policy is evaluated in."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ..errors import ConfigError
from ..jobad import format_ad
from ..signals import signal_name
from . import classad
from .attributes import with_attrs
from .dryrun_common import (
    ACCESS_POINT,
    FAMILY_ENV,
    JOB_AD_NAME,
    MACHINE_AD_NAME,
    SLOT_NAME,
    STDERR_NAME,
    STDOUT_NAME,
    THREAD_LIMITS,
    MissingFile,
)

if TYPE_CHECKING:
    from .dryrun import Emulator


class Sandbox:
    """One execution's sandbox as the starter fills it, and the job ad it writes there."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.job = emu.job
        self.opts = emu.opts

    def populate(self, sandbox: Path) -> Path:
        job = self.job
        src = job.submit_dir / job.executable
        if not src.is_file():
            raise MissingFile(f"executable {src} does not exist")
        exe = sandbox / Path(job.executable).name
        # MOUNT_UNDER_SCRATCH's /var/tmp: HTCondor 25.0.13 made var/tmp in every sandbox (a
        # directory, so never a default output)
        (sandbox / "var" / "tmp").mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copy2(src, exe)
        exe.chmod(exe.stat().st_mode | 0o755)
        for name in job.transfer_input_files:
            path = job.submit_dir / name
            target = sandbox / Path(name.rstrip("/")).name
            if path.is_dir():
                if name.endswith("/"):
                    shutil.copytree(path, sandbox, dirs_exist_ok=True)
                else:
                    shutil.copytree(path, target)
            elif path.is_file():
                shutil.copy2(path, target)
            else:
                raise MissingFile(f"reading from file {path}: (errno 2) No such file or directory")
        for item in self.emu.spool.iterdir():
            if item.name.startswith(".incoming"):
                continue
            if item.is_dir():
                shutil.copytree(item, sandbox / item.name, dirs_exist_ok=True)
            else:
                shutil.copy2(item, sandbox / item.name)
        return exe

    def environment(self, sandbox: Path) -> dict[str, str]:
        job = self.job
        # HTCondor passes no environment without getenv (HTCondor 25.0.13 gave the job no PATH,
        # and HOME from the submitter's account); the dry run keeps PATH so that
        # "executable = /usr/bin/env" with "ckpt-supervisor run ..." finds the local install
        # (documented as a difference in docs/reference/dry-run.md).
        kept = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
        env = dict(os.environ) if job.getenv else kept
        # What the starter of HTCondor 25.0.13 added (with one CPU): thread limits, caches in
        # the sandbox, and TMPDIR/TMP/TEMP = /tmp (MOUNT_UNDER_SCRATCH names /tmp; the job's
        # /tmp is private when the bind mount works, the machine's /tmp otherwise).
        env.update({name: "1" for name in THREAD_LIMITS})
        env.update(job.environment)
        env.update(
            {
                "_CONDOR_SCRATCH_DIR": str(sandbox),
                "TMPDIR": "/tmp",
                "TMP": "/tmp",
                "TEMP": "/tmp",
                "APPTAINER_CACHEDIR": str(sandbox),
                "SINGULARITY_CACHEDIR": str(sandbox),
                "CONDOR_STARTER_PID": str(os.getpid()),
                "_CONDOR_JOB_PIDS": "",
                "BATCH_SYSTEM": "HTCondor",
                "_CONDOR_JOB_AD": str(sandbox / JOB_AD_NAME),
                "_CONDOR_MACHINE_AD": str(sandbox / MACHINE_AD_NAME),
                "_CONDOR_JOB_IWD": str(sandbox),
                "_CONDOR_SLOT": "slot1",
            }
        )
        assert self.emu.family is not None
        env[FAMILY_ENV] = self.emu.family.token
        return env

    def job_ad(self) -> dict[str, object]:
        """The job ad the starter writes into ``.job.ad`` at the start of an execution.

        As seen on HTCondor 25.0.13: ``NumJobStarts`` counts earlier executions (0 at the
        first), ``JobRunCount`` this one too (1 at the first); ``CheckpointNumber`` is absent
        before the first checkpoint, then the number of the last one (0 for the first);
        ``CommittedTime`` sums the runs that ended by a checkpoint; ``JobLastCheckpointTime``
        is not there.
        """
        job = self.job
        ad: dict[str, object] = {
            "ClusterId": 1,
            "ProcId": 0,
            "JobUniverse": 5,
            "JobStatus": 2,
            "Owner": os.environ.get("USER", "nobody"),
            "QDate": self.emu.qdate,
            "Iwd": str(job.submit_dir),
            "Cmd": str(job.submit_dir / job.executable),
            "Arguments": _quote_new_syntax(job.arguments),
            "Environment": _quote_new_syntax([f"{k}={v}" for k, v in job.environment.items()]),
            "NumJobStarts": self.emu.stats.executions - 1,
            "JobRunCount": self.emu.stats.executions,
            "NumShadowStarts": self.emu.stats.executions,
            "JobStartDate": self.emu.qdate,
            "JobCurrentStartDate": int(self.emu.wall()),
            "ShouldTransferFiles": job.should_transfer_files,
            "WhenToTransferOutput": job.when_to_transfer_output,
            "TransferIn": False,
            "KillSig": signal_name(job.kill_sig),
            "CommittedTime": int(self.emu.stats.committed),
            "NumJobCompletions": self.emu.stats.completions,
        }
        if job.job_max_retries is not None:
            ad["JobMaxRetries"] = job.job_max_retries
        if job.job_success_exit_code is not None:
            ad["JobSuccessExitCode"] = job.job_success_exit_code
        if job.output:
            ad["Out"] = job.output if job.stream_output else STDOUT_NAME
        if job.error:
            ad["Err"] = job.error if job.stream_error else STDERR_NAME
        if self.emu.checkpoint_number is not None:
            ad["CheckpointNumber"] = self.emu.checkpoint_number
        if job.transfer_input_files:
            ad["TransferInput"] = ",".join(job.transfer_input_files)
        if job.transfer_output_files is not None:
            ad["TransferOutput"] = ",".join(job.transfer_output_files)
        if job.transfer_checkpoint_files is not None:
            ad["TransferCheckpoint"] = ",".join(job.transfer_checkpoint_files)
        if job.job_max_vacate_time is not None:
            ad["JobMaxVacateTime"] = job.job_max_vacate_time
        if job.remove_kill_sig is not None:
            ad["RemoveKillSig"] = signal_name(job.remove_kill_sig)
        if job.checkpoint_exit_code is not None:
            ad["SuccessCheckpointExitCode"] = job.checkpoint_exit_code
        if job.want_ft_on_checkpoint:
            ad["WantFTOnCheckpoint"] = True
        if job.log:
            ad["UserLog"] = str(self.emu.submit_path(job.log))
        return with_attrs(ad, job.attrs)

    def write_ads(self, sandbox: Path) -> None:
        try:
            text = format_ad(self.job_ad())
        except ValueError as exc:
            raise ConfigError(f"{self.opts.submit_file}: cannot write the job ad: {exc}") from exc
        (sandbox / JOB_AD_NAME).write_text(text)
        machine = {
            "Name": SLOT_NAME,
            "Machine": ACCESS_POINT,
            "OpSys": "LINUX",
            "Arch": "X86_64",
            "Cpus": 1,
            "MachineMaxVacateTime": int(self.opts.vacate_time),
        }
        (sandbox / MACHINE_AD_NAME).write_text(format_ad(machine))

    def _exit_ad(self, raw_status: int) -> dict[str, object]:
        """The job ad as the shadow sees it when the job ends with ``raw_status``."""
        ad = self.job_ad()
        if os.WIFSIGNALED(raw_status):
            ad.update(ExitBySignal=True, ExitSignal=os.WTERMSIG(raw_status))
        else:
            ad.update(ExitBySignal=False, ExitCode=os.WEXITSTATUS(raw_status))
        ad.update(JobStatus=4)
        return ad

    def on_exit_remove(self, raw_status: int) -> bool:
        """OnExitRemove (as condor_submit builds it: max_retries, success_exit_code,
        retry_until, on_exit_remove), evaluated when the job ends and is not held, with
        NumJobCompletions already counting this end (HTCondor 25.0.13: max_retries = 2 and
        three exits 3 give three executions). False: the job is requeued and its next
        execution starts from the last checkpoint upload; undefined counts as false."""
        if self.job.on_exit_remove is None:
            return True
        return classad.as_bool(classad.evaluate(self.job.on_exit_remove, self._exit_ad(raw_status)))

    def on_exit_hold(self, raw_status: int) -> Optional[tuple[str, int]]:
        """The job policy the shadow applies when the job ends (HTCondor 25.0.13, seen on a
        real pool): ``on_exit_hold`` true holds the job, code 3, after its outputs were
        transferred (040 040 012, no 005); the subcode and reason come from
        ``on_exit_hold_subcode`` / ``on_exit_hold_reason`` or are 0 and "The job attribute
        OnExitHold expression '...' evaluated to TRUE". None: the job terminates."""
        job = self.job
        if job.on_exit_hold is None:
            return None
        ad = self._exit_ad(raw_status)
        tree = classad.parse(job.on_exit_hold)
        if not classad.as_bool(classad.Evaluator(ad).eval(tree)):
            return None
        subcode = 0
        if job.on_exit_hold_subcode is not None:
            subcode = classad.as_int(classad.evaluate(job.on_exit_hold_subcode, ad))
        reason = None
        if job.on_exit_hold_reason is not None:
            reason = classad.evaluate(job.on_exit_hold_reason, ad)
        if not isinstance(reason, str):
            reason = (f"The job attribute OnExitHold expression '{classad.unparse(tree)}' "
                      "evaluated to TRUE")
        return reason, subcode


def _quote_new_syntax(words: Sequence[str]) -> str:
    out = []
    for w in words:
        w2 = w.replace('"', '""')
        if not w2 or any(c in w2 for c in " \t'"):
            w2 = "'" + w2.replace("'", "''") + "'"
        out.append(w2)
    return " ".join(out)
