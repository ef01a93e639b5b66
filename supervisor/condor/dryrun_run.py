"""One run of the job's command line in the dry run (part of :mod:`supervisor.condor.dryrun`):
start it, deliver checkpoint signals and injected evictions or crashes while it runs, reap it and
say what its end means (checkpoint, exit, eviction, hold)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from .. import PROG, exitstatus
from ..signals import signal_name
from .dryrun_common import (
    HOLD_FAILED_TO_CHECKPOINT,
    HOLD_FAILED_TO_EXECUTE,
    POLL,
    SLOT_NAME,
    STDERR_NAME,
    STDOUT_NAME,
    TAIL_LINES,
)

if TYPE_CHECKING:
    from .dryrun import Emulator


class Runner:
    """Runs of the command line in one sandbox, watched until each ends."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.job = emu.job
        self.opts = emu.opts
        self.hold_subcode = 0  # the hold subcode of the last run that ended in a hold

    def open_output(self, sandbox: Path, name: Optional[str], streamed: bool, internal: str,
                    *, keep: bool) -> int:
        """The file descriptor the job's stdout or stderr goes to: the sandbox file when the
        submit file names one (the submit-side file itself when streamed); else /dev/null
        (``keep``: a sandbox file the dry run reads but never transfers)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        if name and streamed:
            return os.open(self.emu.submit_path(name), flags, 0o644)
        if name or keep:
            return os.open(sandbox / internal, flags, 0o644)
        return os.open(os.devnull, os.O_WRONLY)

    def run_once(self, sandbox: Path, exe: Path) -> tuple[str, str, bool]:
        """Start the command line once and watch it until it ends.

        Returns (outcome, detail, fast): ("checkpoint", ""), ("evict", why), ("remove", ""),
        ("crash", ""), ("hold", "36:reason") or ("exit", raw wait status); ``fast`` is true when
        the vacate time ran out and the family was SIGKILLed (nothing is uploaded then).
        """
        emu = self.emu
        assert emu.family is not None
        job = self.job
        emu.stats.runs += 1
        env = emu.sandbox.environment(sandbox)
        out_fd = self.open_output(sandbox, job.output, job.stream_output, STDOUT_NAME,
                                  keep=False)
        err_fd = self.open_output(sandbox, job.error, job.stream_error, STDERR_NAME, keep=True)
        try:
            proc = emu.launcher(
                [str(exe), *job.arguments], cwd=sandbox, env=env, stdout=out_fd, stderr=err_fd
            )
        except OSError as exc:
            self.hold_subcode = exc.errno or 0
            return (
                "hold",
                f"{HOLD_FAILED_TO_EXECUTE}:Error from {SLOT_NAME}: "
                f"Failed to execute '{exe}': {exc.strerror}",
                False,
            )
        finally:
            os.close(out_fd)
            os.close(err_fd)
        pid = proc.pid
        emu.family.add_main(pid)
        emu.event(f"run {emu.stats.runs} started: pid {pid}")
        start = emu.now()
        emu.injections.run_started(start)
        period = self.opts.checkpoint_period if job.want_checkpoint_signal else None
        checkpointing = False  # a checkpoint signal is outstanding (unanswered)
        evicting: Optional[str] = None
        kill_deadline: Optional[float] = None
        fast = False
        signalled = False  # a checkpoint signal went out in this pass of the loop
        last_scan = -1.0
        raw: Optional[int] = None
        while raw is None:
            # The family scan can take a while: it comes before the reap, so that nothing slow
            # runs between seeing the job alive and signalling it (the starter's DaemonCore
            # reaps an exited job before its next timer runs).
            if emu.now() - last_scan >= 0.1:
                emu.family.scan()
                last_scan = emu.now()
            raw = _reap(proc)
            if raw is not None:
                break
            now = emu.now()
            if (
                emu.next_signal is not None
                and period
                and now >= emu.next_signal
                and evicting is None
            ):
                # The startd asks once a period, counted from its last ask; the starter sends
                # the signal unless one is still unanswered. A declined ask restarts the period
                # too (seen on HTCondor 25.0.13: a job that answered 28 s late got the next
                # signal 23 s after its restart, not at once).
                if checkpointing:
                    emu.event("checkpoint signal due but the last one is unanswered: not sent")
                else:
                    checkpointing = signalled = self.send_checkpoint_signal(pid)
                emu.next_signal = now + period
            kind = emu.injections.due()
            if kind is None and signalled and emu.injections.evict_on("checkpoint-signal"):
                kind = "evict"  # aimed at this moment: the soft kill follows the signal at once
            elif kind is None and evicting is None and emu.injections.evict_in_run(now):
                emu.event(f"evict {now - start:.2f}s into run {emu.stats.runs} (--evict-on run+S)")
                kind = "evict"
            signalled = False
            if kind == "crash":
                emu.event("crash injected: SIGKILL to every process")
                emu.family.kill_all(emu.sleep, emu.clock)
                _reap_blocking(proc)
                return "crash", "", False
            if kind in ("evict", "remove"):
                if evicting is None:
                    evicting = kind
                    kill_deadline = now + emu.vacate
                    # RemoveKillSig, when set, is the soft kill of every graceful shutdown
                    # (os_proc.cpp:941), a condor_rm and an eviction alike; else KillSig.
                    emu.event(
                        f"{'removing' if kind == 'remove' else 'evicting'}: "
                        f"{signal_name(job.soft_kill_sig)} to pid {pid}; SIGKILL to all in "
                        f"{emu.vacate:g}s"
                    )
                    _signal(pid, job.soft_kill_sig)
                else:
                    emu.event(f"{kind} ignored: a shutdown is already in progress")
            elif kind == "checkpoint":
                if evicting or checkpointing:
                    emu.event(
                        "checkpoint signal not sent: a checkpoint or shutdown is in progress"
                    )
                else:
                    checkpointing = signalled = self.send_checkpoint_signal(pid)
                    if checkpointing and period:
                        emu.next_signal = now + period
            elif kind == "status":
                self.print_status(pid, start)
            elif kind == "unknown-key":
                emu.say("keys: c checkpoint signal, e evict, k crash, s status, q remove")
            if kill_deadline is not None and now >= kill_deadline:
                emu.event("vacate time over: SIGKILL to every process (fast shutdown)")
                emu.family.kill_all(emu.sleep, emu.clock)
                kill_deadline = None
                fast = True
            emu.sleep(POLL)
        emu.family.scan()
        emu.event(f"run {emu.stats.runs} ended: {_describe_status(raw)}")
        desired = job.desired_checkpoint_status()
        if checkpointing and raw != desired and not fast:
            # Rule 8: once the signal is sent, the next exit must be the checkpoint status,
            # during an eviction too.
            self.hold_subcode = raw
            actual = (
                f"on signal {os.WTERMSIG(raw)}"
                if os.WIFSIGNALED(raw)
                else f"with exit code {os.WEXITSTATUS(raw)}"
            )
            return "hold", (
                f"{HOLD_FAILED_TO_CHECKPOINT}:Error from {SLOT_NAME}: "
                "Job did not exit as promised when sent its checkpoint signal.  "
                f"Promised exit was {job.describe_checkpoint_exit()}, actual exit "
                f"status was {actual}."
            ), False
        if evicting is not None:
            return evicting, _describe_status(raw), fast
        if checkpointing or (job.want_ft_on_checkpoint and raw == desired):
            return "checkpoint", "", False
        return "exit", str(raw), False

    def send_checkpoint_signal(self, pid: int) -> bool:
        sig = self.job.checkpoint_sig if self.job.checkpoint_sig is not None else self.job.kill_sig
        if not self.job.want_checkpoint_signal:
            self.emu.event("checkpoint signal not sent: the job does not set +WantCheckpointSignal")
            return False
        self.emu.event(f"checkpoint signal {signal_name(sig)} to pid {pid} (main process only)")
        _signal(pid, sig)
        return True

    def print_status(self, pid: int, start: float) -> None:
        assert self.emu.family is not None
        procs = [pid] + [p.pid for p in self.emu.family.alive(exclude=pid)]
        self.emu.say(
            f"status: t={self.emu.now():.1f}s execution {self.emu.stats.executions}, run "
            f"{self.emu.stats.runs} up {self.emu.now() - start:.1f}s, processes {procs}; "
            f"checkpoints {self.emu.stats.checkpoints}, evictions {self.emu.stats.evictions}, crashes "
            f"{self.emu.stats.crashes}; next: {self.emu.injections.next_text()}"
        )

    def show_stderr_tail(self, sandbox: Path) -> None:
        """The job ended with a status nobody expected: show the end of its stderr, where the
        supervisor (or the program) says why."""
        path = sandbox / STDERR_NAME
        if self.job.stream_error and self.job.error:
            path = self.emu.submit_path(self.job.error)
        try:
            with open(path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 8192))
                tail = fh.read().decode(errors="replace").splitlines()[-TAIL_LINES:]
        except OSError:
            return
        if not tail:
            self.emu.write(self.emu.err, f"{PROG} dry-run[{os.getpid()}]: the job's stderr is empty")
            return
        lines = [f"{PROG} dry-run[{os.getpid()}]: the job's stderr ends with:"]
        lines += [f"  | {line}" for line in tail]
        self.emu.write(self.emu.err, "\n".join(lines))


def _reap(proc: subprocess.Popen[bytes]) -> Optional[int]:
    """Reap the main process without blocking; the raw wait status (core bit kept) or None."""
    try:
        pid, raw = os.waitpid(proc.pid, os.WNOHANG)
    except ChildProcessError:
        return proc.returncode if proc.returncode is not None else 0
    if pid == 0:
        return None
    proc.returncode = exitstatus.from_wait_status(raw)  # Popen must not wait again
    return raw


def _reap_blocking(proc: subprocess.Popen[bytes]) -> int:
    try:
        _, raw = os.waitpid(proc.pid, 0)
    except ChildProcessError:
        return 0
    proc.returncode = exitstatus.from_wait_status(raw)
    return raw


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _describe_status(raw: int) -> str:
    if os.WIFSIGNALED(raw):
        core = " (core dumped)" if os.WCOREDUMP(raw) else ""
        return f"killed by {signal_name(os.WTERMSIG(raw))}{core}, wait status {raw:#x}"
    return f"exit code {os.WEXITSTATUS(raw)}, wait status {raw:#x}"
