"""The dry run's file transfers (part of :mod:`supervisor.condor.dryrun`): what a checkpoint or
an output transfer sends, the upload into the spool (all or nothing, blocking) and the final
delivery into the submit directory, and the hold texts HTCondor gives when an output is missing."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .dryrun_common import (
    ACCESS_POINT,
    INTERNAL_NAMES,
    POLL,
    SLOT_NAME,
    STDERR_NAME,
    STDOUT_NAME,
    UploadFailed,
    _Interrupt,
)

if TYPE_CHECKING:
    from .dryrun import Emulator


class Transfers:
    """The spool side of one dry run: lists of files to send, the checkpoint and output
    uploads, the delivery of the outputs."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.job = emu.job
        self.opts = emu.opts

    def changed(self, sandbox: Path, baseline: Mapping[str, tuple[int, int]]) -> list[str]:
        now = _snapshot(sandbox)
        # Only plain files at the top: HTCondor does not scan subdirectories for default output.
        return sorted(
            n
            for n, sig in now.items()
            if n not in INTERNAL_NAMES and baseline.get(n) != sig and (sandbox / n).is_file()
        )

    def output_list(self, sandbox: Path, baseline: Mapping[str, tuple[int, int]]) -> list[str]:
        if self.job.transfer_output_files is not None:
            return list(self.job.transfer_output_files)
        return self.changed(sandbox, baseline)

    def checkpoint_list(self, sandbox: Path, baseline: Mapping[str, tuple[int, int]]) -> list[str]:
        if self.job.transfer_checkpoint_files is not None:
            return list(self.job.transfer_checkpoint_files)
        if self.job.transfer_output_files is not None:
            return list(self.job.transfer_output_files)
        return self.changed(sandbox, baseline)

    def std_names(self) -> list[str]:
        """stdout and stderr go with an upload only when the submit file names them and does
        not stream them."""
        out = []
        if self.job.output and not self.job.stream_output:
            out.append(STDOUT_NAME)
        if self.job.error and not self.job.stream_error:
            out.append(STDERR_NAME)
        return out

    def upload(
        self, sandbox: Path, files: Sequence[str], *, checkpoint: bool
    ) -> tuple[int, Optional[str]]:
        """Copy ``files`` (plus stdout/stderr) to the spool, all or nothing.

        Returns the bytes and, for a checkpoint upload, the soft eviction or removal that
        arrived during it (the upload is blocking: it completes first). A crash during a
        checkpoint upload raises _Interrupt; a missing file (or, in a checkpoint, a symlink to
        a directory) raises UploadFailed before anything reaches the spool.
        """
        self.emu.log.transfer_output_started()
        for name in files:
            src = sandbox / name
            if checkpoint and src.is_symlink() and src.is_dir():
                raise UploadFailed(name, src, "a symbolic link to a directory")
            if not src.exists():
                if not checkpoint:
                    self.emu.log.transfer_output_finished()
                raise UploadFailed(name, src, "does not exist")
        staging = self.emu.spool / f".incoming-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        pending: Optional[str] = None
        if checkpoint and self.emu.injections.evict_on("upload"):
            pending = "evict"
            self.emu.event("evict during the checkpoint upload: it waits for the end of the upload "
                       "(HTCondor's upload is blocking)")
        try:
            nbytes = 0
            for name in [*files, *self.std_names()]:
                src = sandbox / name
                dst = staging / Path(name).name
                if src.is_dir():
                    shutil.copytree(src, dst, symlinks=True)
                    nbytes += sum(p.stat().st_size for p in dst.rglob("*") if p.is_file())
                elif src.is_file():
                    shutil.copy2(src, dst)
                    nbytes += dst.stat().st_size
            if checkpoint and self.opts.upload_time > 0:
                end = self.emu.clock() + self.opts.upload_time
                while self.emu.clock() < end:
                    kind = self.emu.injections.due()
                    if kind == "crash":
                        raise _Interrupt(kind)
                    if kind in ("evict", "remove") and pending is None:
                        pending = kind
                        self.emu.event(f"{kind} during the checkpoint upload: it waits for the end "
                                   "of the upload (HTCondor's upload is blocking)")
                    self.emu.sleep(POLL)
            for item in staging.iterdir():  # commit: replace entry by entry; never delete others
                target = self.emu.spool / item.name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                os.replace(item, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.emu.log.transfer_output_finished()
        self.emu.stats.bytes_uploaded += nbytes
        return nbytes, pending

    def deliver(self, sandbox: Path, files: Sequence[str]) -> int:
        """Final output transfer into the submit directory (listed or changed files, stdout/err)."""
        for name in files:
            if not (sandbox / name).exists():
                raise UploadFailed(name, sandbox / name, "does not exist")
        nbytes = 0
        for name in files:
            src = sandbox / name
            dst = self.job.submit_dir / Path(name).name
            if src.is_dir():
                shutil.copytree(src, dst, dirs_exist_ok=True)
            else:
                shutil.copy2(src, dst)
                nbytes += dst.stat().st_size
        for internal, target in ((STDOUT_NAME, self.job.output), (STDERR_NAME, self.job.error)):
            if internal in self.std_names() and target and (sandbox / internal).exists():
                dst = self.emu.submit_path(target)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(sandbox / internal, dst)
                nbytes += dst.stat().st_size
        return nbytes

    def output_failure(self, exc: UploadFailed) -> str:
        """The hold reason HTCondor 25.0.13 gives for a missing output file (code 12/2)."""
        return (
            f"Transfer output files failure at execution point {SLOT_NAME} while sending "
            f"files to access point {ACCESS_POINT}. Details: 1 total failures: first failure: "
            f"reading from file {exc.path}: (errno 2) No such file or directory"
        )

    @staticmethod
    def output_failure_starter(exc: UploadFailed) -> tuple[str, int, int]:
        """The starter's own report of a missing output file (event 021 on HTCondor 25.0.13:
        code 13, subcode 2, although the hold is 12/2)."""
        return (
            f"STARTER at 127.0.0.1 failed to send file(s) to <127.0.0.1:0>: |Error: 1 total "
            f"failures: first failure: reading from file {exc.path}: (errno 2) No such file or "
            f"directory; SHADOW failed to receive file(s) from <127.0.0.1:0>",
            13,
            2,
        )


def _snapshot(sandbox: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for entry in os.scandir(sandbox):
        with contextlib.suppress(OSError):
            st = entry.stat(follow_symlinks=False)
            out[entry.name] = (st.st_mtime_ns, st.st_size)
    return out
