"""``ckpt-supervisor dry-run``: run a submit file's job through an emulated HTCondor execute point.

Theory of operation
-------------------
The emulator plays schedd, shadow and starter for job 1.0 of a submit file, on this machine:

1. *Submit*: event 000; the spool starts empty.
2. *Execution* (event 001; "a machine", one starter): a fresh sandbox receives the executable,
   the input files and then everything the spool holds; ``.job.ad`` and ``.machine.ad`` are
   written **once per execution** (``NumJobStarts`` counts earlier executions;
   ``CheckpointNumber`` is absent before the first checkpoint, 0 at it); the job's main process
   is started in its own session with the pool's environment (``_CONDOR_SCRATCH_DIR``,
   ``TMPDIR=/tmp``, thread limits of one CPU, ``BATCH_SYSTEM=HTCondor``, ``_CONDOR_JOB_AD``;
   the caller's PATH is the one addition); stdout and stderr go to
   ``_condor_stdout``/``_condor_stderr`` opened with O_APPEND when the submit file names them
   (to the submit-side file when streamed; else /dev/null).
3. *Reaping* (``VanillaProc::JobReaper``): the raw wait status of the main process is compared
   with the desired checkpoint status (``SuccessCheckpointExitCode << 8``, 0 when absent, or the
   signal number when ``SuccessCheckpointExitBySignal``). A match with ``WantFTOnCheckpoint``
   (or after a checkpoint signal) is a checkpoint: the checkpoint files are copied to the spool
   all or nothing (two 040 events; a missing file or a symlink to a directory holds the job with
   36/-1); the upload is blocking (an eviction waits for its end); then the same command line
   starts again in the same sandbox; leftover processes are not killed, only reported. After a
   checkpoint signal, any other exit is a hold (code 36), during an eviction too. Otherwise the
   exit is final: the family is killed, the outputs are copied to the submit directory and
   event 005 is written. Every hold the starter causes is logged 021, 004, 012.
4. *Eviction*: RemoveKillSig if set, else KillSig (``os_proc.cpp:941``; a remove too), to the
   main process only; after the vacate time (the smaller of
   ``JobMaxVacateTime`` and the machine's ``MachineMaxVacateTime``) SIGKILL to the whole family
   and nothing is uploaded (fast shutdown); when the job exits within the vacate time and
   ON_EXIT_OR_EVICT is set, the output list is uploaded (a missing file is a hold, 12/2) and
   event 004 is written. The next execution is a fresh sandbox. *Crash*: SIGKILL to the family,
   nothing uploaded (event 007). *Remove*: like eviction without upload (event 009).
5. *Accounting*: ``CommittedTime`` grows by each run that ends with a checkpoint and by the
   final run; evictions add nothing. Time lost is the time after the last checkpoint upload (or
   the execution's start) of each interrupted execution; ``report`` computes the same figure.

The clock, sleep, launcher and key source are parameters of ``Emulator`` so tests can drive it.
``Emulator`` plays the schedd and the shadow (executions, outcomes, holds, accounting); its parts
are ``Injections`` (what interrupts the job, and when), ``dryrun_sandbox.Sandbox`` (input files,
environment, job ad), ``dryrun_run.Runner`` (one run of the command line) and
``dryrun_transfer.Transfers`` (uploads to the spool, delivery of the outputs).
Every process the emulator starts is tracked three ways (its own session/process group, psutil
descendants, and an environment marker) and killed before ``run`` returns.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import time
import tty
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, TextIO

import psutil

from .. import PROG, exitstatus, options
from ..errors import SupervisorError
from ..optvalues import ByRow
from ..signals import signal_name
from . import classad
from .dryrun_common import (
    ACCESS_POINT,
    FAMILY_ENV,
    HOLD_FAILED_TO_CHECKPOINT,
    HOLD_ON_EXIT_POLICY,
    HOLD_TRANSFER_INPUT,
    HOLD_TRANSFER_OUTPUT,
    POLL,
    SLOT_NAME,
    MissingFile,
    UploadFailed,
    _Interrupt,
)
from .dryrun_run import Runner
from .dryrun_sandbox import Sandbox
from .dryrun_transfer import Transfers, _snapshot
from .eventlog import EventLog
from .submit import Job, load_job

DEFAULT_MACHINE_VACATE_TIME: float = options.default("dry-run", "vacate-time")
DEFAULT_MAX_RUNS: int = options.default("dry-run", "max-runs")


# --- options ----------------------------------------------------------------------------------


class Options(ByRow):
    """The dry run's settings: the submit file, and one value for every row of
    ``options.DRYRUN``, read as attributes (``opts.max_starts``, by ``optvalues.ByRow``); a row
    not given has its default (a list for a repeatable one). A new dry-run option is one row
    plus its use."""

    def __init__(self, submit_file: Path, **values: Any) -> None:
        rows = self.rows()
        unknown = sorted(set(values) - set(rows))
        if unknown:
            raise TypeError(f"Options() got unknown options {unknown}")
        self.submit_file = submit_file
        self.values: dict[str, Any] = {d: list(o.empty) if o.multiple else o.empty for d, o in rows.items()}
        self.values.update(values)

    @classmethod
    def rows(cls) -> Mapping[str, options.Option]:
        return {o.dest: o for o in options.DRYRUN}

    def __repr__(self) -> str:
        return f"Options(submit_file={self.submit_file!r}, {self.values!r})"


# --- processes --------------------------------------------------------------------------------


class Launcher(Protocol):
    def __call__(
        self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], stdout: int, stderr: int
    ) -> subprocess.Popen[bytes]: ...


def default_launcher(
    argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], stdout: int, stderr: int
) -> subprocess.Popen[bytes]:
    """Start one execution of the job in its own session (so its process group is its own)."""
    return subprocess.Popen(
        list(argv),
        cwd=str(cwd),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
        close_fds=True,
    )


class Family:
    """Every process descended from the job's executions in one sandbox (HTCondor's "family").

    Found three ways, since a job may call setsid or daemonize: the process group/session of each
    main process, psutil descendants (remembered while their parent lives), and the environment
    marker ``CKPT_DRYRUN_FAMILY`` that every execution inherits.
    """

    def __init__(self, token: str) -> None:
        self.token = token
        self.known: dict[int, psutil.Process] = {}
        self.sessions: set[int] = set()

    def add_main(self, pid: int) -> None:
        self.sessions.add(pid)
        with contextlib.suppress(psutil.Error):
            self.known[pid] = psutil.Process(pid)

    def scan(self, *, deep: bool = False) -> None:
        for proc in list(self.known.values()):
            with contextlib.suppress(psutil.Error):
                for child in proc.children(recursive=True):
                    self.known.setdefault(child.pid, child)
        if not deep:
            return
        me = os.getpid()
        for proc in psutil.process_iter(["environ"]):
            if proc.pid == me or proc.pid in self.known:
                continue
            with contextlib.suppress(psutil.Error, OSError):
                if os.getsid(proc.pid) in self.sessions or os.getpgid(proc.pid) in self.sessions:
                    self.known[proc.pid] = proc
                    continue
                environ = proc.info.get("environ") or {}
                if environ.get(FAMILY_ENV) == self.token:
                    self.known[proc.pid] = proc

    def alive(self, *, exclude: Optional[int] = None) -> list[psutil.Process]:
        out = []
        for pid, proc in list(self.known.items()):
            if pid == exclude:
                continue
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    out.append(proc)
                    continue
            except psutil.Error:
                pass
            if not _is_unreaped_child(pid):
                self.known.pop(pid, None)
        return out

    def kill_all(self, sleep: Callable[[float], None], clock: Callable[[], float]) -> None:
        """SIGKILL every process of the family; return once none is left alive."""
        deadline = clock() + 5.0
        while True:
            self.scan(deep=True)
            victims = self.alive()
            if not victims:
                return
            for proc in victims:
                with contextlib.suppress(psutil.Error):
                    proc.kill()  # psutil checks the process identity (pid + start time) first
            if clock() > deadline:
                return
            sleep(POLL)


def _is_unreaped_child(pid: int) -> bool:
    """True for a zombie that is our own child (a main process not yet reaped)."""
    try:
        return bool(psutil.Process(pid).ppid() == os.getpid())
    except psutil.Error:
        return False


def _describe(proc: psutil.Process) -> str:
    try:
        cmd = " ".join(proc.cmdline()) or proc.name()
    except psutil.Error:
        cmd = "?"
    return f"pid {proc.pid} ({cmd[:80]})"


# --- keys (--interactive) ---------------------------------------------------------------------


class KeySource(Protocol):
    def read(self) -> Optional[str]: ...

    def close(self) -> None: ...


class TtyKeys:
    """Single keys from a terminal in cbreak mode, without blocking."""

    def __init__(self, stream: TextIO) -> None:
        self.fd = stream.fileno()
        self.saved: Optional[list[Any]] = None
        if os.isatty(self.fd):
            self.saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)

    def read(self) -> Optional[str]:
        ready, _, _ = select.select([self.fd], [], [], 0)
        if not ready:
            return None
        data = os.read(self.fd, 1)
        return data.decode(errors="replace") if data else None

    def close(self) -> None:
        if self.saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
            self.saved = None


# --- the emulator -----------------------------------------------------------------------------


@dataclass
class Stats:
    executions: int = 0
    runs: int = 0
    checkpoints: int = 0
    evictions: int = 0
    crashes: int = 0
    requeues: int = 0  # ends with OnExitRemove false (max_retries, on_exit_remove ...)
    completions: int = 0  # NumJobCompletions: every end of the job, a requeued one too
    bytes_uploaded: int = 0
    committed: float = 0.0  # HTCondor's CommittedTime: runs ended by a checkpoint or the end
    lost: float = 0.0  # time after the last checkpoint upload of interrupted executions


class Injections:
    """What interrupts the job and when: the ``--evict-*``/``--crash-at`` schedule, the
    ``--evict-on`` moments, the keys of ``--interactive`` and a stop request (SIGINT/SIGTERM)."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.opts = opts = emu.opts
        self.timed: list[tuple[float, str]] = sorted(
            [(t, "evict") for t in opts.evict_at] + [(t, "crash") for t in opts.crash_at]
        )
        self.moments: list[str] = list(opts.evict_on)  # the first one is armed
        self.run_deadline: Optional[float] = None  # of an armed run+S moment, in this run
        self.rng = random.Random(opts.seed)
        self.next_every = opts.evict_every
        self.next_random: Optional[float] = None
        if opts.evict_random:
            self.next_random = self.rng.expovariate(1.0 / opts.evict_random)

    def due(self) -> Optional[str]:
        """The injection or key that is due now, if any (consumed)."""
        if self.emu.stop_request:
            kind = self.emu.stop_request
            self.emu.stop_request = None
            return kind
        now = self.emu.now()
        if self.timed and self.timed[0][0] <= now:
            return self.timed.pop(0)[1]
        if self.next_every is not None and self.opts.evict_every and now >= self.next_every:
            self.next_every += self.opts.evict_every
            return "evict"
        if self.next_random is not None and self.opts.evict_random and now >= self.next_random:
            self.next_random = now + self.rng.expovariate(1.0 / self.opts.evict_random)
            return "evict"
        if self.emu.keys is not None:
            key = self.emu.keys.read()
            if key is not None:
                return {
                    "c": "checkpoint",
                    "e": "evict",
                    "k": "crash",
                    "s": "status",
                    "q": "remove",
                }.get(key.lower(), "unknown-key")
        return None

    def evict_on(self, moment: str) -> bool:
        """True (consumed) when the next ``--evict-on`` eviction is aimed at ``moment``."""
        if self.moments and self.moments[0] == moment:
            self.moments.pop(0)
            return True
        return False

    def run_started(self, start: float) -> None:
        """A run started at ``start``: an armed run+S moment falls due S seconds later, if
        that run lasts so long (else it waits for the next run)."""
        seconds = options.run_moment_seconds(self.moments[0]) if self.moments else None
        self.run_deadline = None if seconds is None else start + seconds

    def evict_in_run(self, now: float) -> bool:
        """True (consumed) when an armed run+S moment is due in the current run."""
        if self.run_deadline is None or now < self.run_deadline:
            return False
        self.run_deadline = None
        self.moments.pop(0)
        return True

    def next_text(self) -> str:
        times = []
        if self.moments:
            seconds = options.run_moment_seconds(self.moments[0])
            times.append(f"evict on the next {self.moments[0]}" if seconds is None
                         else f"evict {seconds:g}s into a run")
        if self.timed:
            times.append(f"{self.timed[0][1]} at {self.timed[0][0]:.1f}s")
        if self.next_every is not None and self.opts.evict_every:
            times.append(f"evict at {self.next_every:.1f}s")
        if self.next_random is not None:
            times.append(f"random evict at {self.next_random:.1f}s")
        return ", ".join(times) or "none scheduled"


class Emulator:
    def __init__(
        self,
        job: Job,
        options: Options,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        launcher: Launcher = default_launcher,
        keys: Optional[KeySource] = None,
        out: TextIO = sys.stdout,
        err: TextIO = sys.stderr,
    ) -> None:
        self.job = job
        self.opts = options
        self.clock = clock
        self.wall = wall
        self.sleep = sleep
        self.launcher = launcher
        self.keys = keys
        self.out = out
        self.err = err
        self.stats = Stats()
        self.timeline: list[tuple[float, str]] = []
        self.t0 = 0.0
        self.qdate = 0
        self.stop_request: Optional[str] = None  # set by the SIGINT/SIGTERM handlers
        # CheckpointNumber: absent until the first checkpoint, which is 0 (jic_shadow.cpp).
        self.checkpoint_number: Optional[int] = None
        # No JobLastCheckpointTime anywhere: HTCondor 25.0.13 left it undefined in .job.ad,
        # condor_q and condor_history, even after checkpoints.
        # The periodic checkpoint signal: due at this time (dry-run clock), counted from the
        # claim's activation (execution start) or the last signal, not from each run.
        self.next_signal: Optional[float] = None
        self.vacate = float(options.vacate_time)
        if job.job_max_vacate_time is not None:
            self.vacate = min(self.vacate, float(job.job_max_vacate_time))
        self.workdir: Path = Path()
        self.spool: Path = Path()
        self.log = EventLog(self.submit_path(job.log) if job.log else None, wall=wall)
        self.family: Optional[Family] = None
        self.broken: set[int] = set()  # ids of output streams whose reader went away
        self.injections = Injections(self)
        self.sandbox = Sandbox(self)
        self.transfers = Transfers(self)
        self.runner = Runner(self)

    # --- small helpers --------------------------------------------------------------------

    def submit_path(self, name: str) -> Path:
        return self.job.submit_dir / name

    def now(self) -> float:
        return self.clock() - self.t0

    def write(self, stream: TextIO, text: str) -> None:
        """Print to stdout or stderr; a reader that went away (``| head``) ends our printing
        there, quietly, and the run goes on to its end."""
        if id(stream) in self.broken:
            return
        try:
            print(text, file=stream, flush=True)
        except (BrokenPipeError, ValueError):
            self.broken.add(id(stream))
            with contextlib.suppress(OSError, ValueError, AttributeError):
                # Python would report the broken pipe again when it flushes at exit.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
                os.close(devnull)

    def say(self, text: str) -> None:
        if not self.opts.quiet:
            self.write(self.err, f"{PROG} dry-run[{os.getpid()}]: {text}")

    def warn(self, text: str) -> None:
        """Warnings are printed even with --quiet."""
        self.write(self.err, f"{PROG} dry-run[{os.getpid()}]: warning: {text}")

    def event(self, text: str) -> None:
        """A timeline entry, printed once, as it happens (stdout; not with --quiet)."""
        self.timeline.append((self.now(), text))
        if not self.opts.quiet:
            self.write(self.out, f"  {self.now():8.2f}s  {text}")

    # --- the run --------------------------------------------------------------------------

    def run(self) -> int:
        self.t0 = self.clock()
        self.qdate = int(self.wall())
        for w in self.job.warnings:
            self.warn(w)
        if self.job.ignored:
            self.say("ignored submit commands (not emulated): " + ", ".join(self.job.ignored))
        own_workdir = self.opts.work_dir is None
        self.workdir = (
            Path(tempfile.mkdtemp(prefix="ckpt-dryrun-"))
            if own_workdir
            else Path(self.opts.work_dir or ".")
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.spool = self.workdir / "spool"
        self.spool.mkdir(exist_ok=True)
        if self.job.log:
            log_path = self.submit_path(self.job.log)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text("")  # one dry run, one log (HTCondor would append)
        for streamed, name in (
            (self.job.stream_output, self.job.output),
            (self.job.stream_error, self.job.error),
        ):
            if streamed and name:
                target = self.submit_path(name)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(b"")
        self.log.submit()
        self.event("submitted job 1.0")
        status = exitstatus.EXIT_INTERNAL
        final = "internal error"
        try:
            while True:
                if self.stats.executions >= self.opts.max_starts:
                    self.log.aborted(f"dry run: --max-starts {self.opts.max_starts} reached")
                    self.event(f"gave up: {self.opts.max_starts} executions (--max-starts)")
                    status, final = exitstatus.DRYRUN_MAX_STARTS, "max starts reached"
                    break
                result = self._execution()
                if result is not None:
                    status, final = result
                    break
        finally:
            if self.family is not None:
                self.family.kill_all(self.sleep, self.clock)
            if self.keys is not None:
                self.keys.close()
        self._summary(final, status)
        if own_workdir and not self.opts.keep and status in (0,):
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            self.say(f"sandboxes and spool kept in {self.workdir}")
        return status

    def _execution(self) -> Optional[tuple[int, str]]:
        """One execution on a fresh "machine" (one starter). None: the job goes back to idle."""
        self.stats.executions += 1
        n = self.stats.executions
        sandbox = self.workdir / f"execute-{n}"
        if sandbox.exists():
            shutil.rmtree(sandbox)
        sandbox.mkdir(parents=True)
        self.log.transfer_input_started()
        try:
            exe = self.sandbox.populate(sandbox)
        except MissingFile as exc:
            self.log.transfer_input_finished()
            # as HTCondor 25.0.13 logs it: 021 (the starter), 004 and 012, no 001
            details = f"Details: 1 total failures: first failure: {exc}"
            return self._hold(
                f"Transfer input files failure at access point {ACCESS_POINT} while sending files "
                f"to execution point {SLOT_NAME}. {details}",
                HOLD_TRANSFER_INPUT, 2, evicted=True,
                starter=(f"Failed to transfer files: SHADOW at 127.0.0.1 failed to send file(s) "
                         f"to <127.0.0.1:0>: |Error: 1 total failures: first failure: {exc}; "
                         f"STARTER failed to receive file(s) from <127.0.0.1:0>",
                         HOLD_TRANSFER_INPUT, 2))
        self.log.transfer_input_finished()
        baseline = _snapshot(sandbox)
        self.family = Family(uuid.uuid4().hex)
        self.log.execute()
        self.event(f"execution {n} started in {sandbox}")
        exec_start = self.now()
        exec_start_wall = self.wall()
        last_upload = exec_start  # work after this is lost if the execution is interrupted
        last_ckpt_wall: Optional[float] = None  # this execution's last checkpoint exit
        period = self.opts.checkpoint_period if self.job.want_checkpoint_signal else None
        self.next_signal = exec_start + period if period else None
        self.sandbox.write_ads(sandbox)  # once per starter (starter.cpp): not before each restart
        while True:  # runs in the same sandbox, restarted after each checkpoint
            if self.stats.runs >= self.opts.max_runs:
                self.stats.lost += self.now() - last_upload
                self.family.kill_all(self.sleep, self.clock)
                self.log.aborted(f"dry run: --max-runs {self.opts.max_runs} reached")
                self.event(
                    f"gave up: {self.opts.max_runs} runs (--max-runs); the job keeps exiting "
                    "with the checkpoint status (HTCondor would restart it in place forever)"
                )
                return exitstatus.DRYRUN_MAX_STARTS, "max runs reached"
            run_start_wall = self.wall()
            outcome, detail, fast = self.runner.run_once(sandbox, exe)
            if outcome == "checkpoint":
                exit_wall = self.wall()
                leftovers = self.family.alive()
                for proc in leftovers:
                    self.warn(
                        f"{_describe(proc)} is still running after the checkpoint exit;"
                        " HTCondor does not kill it before the restart either"
                    )
                files = self.transfers.checkpoint_list(sandbox, baseline)
                try:
                    nbytes, pending = self.transfers.upload(sandbox, files, checkpoint=True)
                except UploadFailed as exc:
                    self.say(f"checkpoint upload failed: {exc}")
                    self.stats.lost += self.now() - last_upload
                    self.family.kill_all(self.sleep, self.clock)
                    return self._hold(
                        f"Error from {SLOT_NAME}: Starter failed to upload checkpoint",
                        HOLD_FAILED_TO_CHECKPOINT,
                        -1,
                        evicted=True,
                        starter=("Starter failed to upload checkpoint",
                                 HOLD_FAILED_TO_CHECKPOINT, -1),
                    )
                except _Interrupt as intr:
                    self.event(f"{intr.kind} during the checkpoint upload: nothing committed")
                    self.stats.lost += self.now() - last_upload
                    return self._end_interrupted(intr.kind)
                self.stats.checkpoints += 1
                self.checkpoint_number = 0 if self.checkpoint_number is None else (
                    self.checkpoint_number + 1
                )
                last_ckpt_wall = exit_wall
                self.stats.committed += exit_wall - run_start_wall  # the run's duration
                last_upload = self.now()
                what = (
                    f"(CheckpointNumber {self.checkpoint_number}; {nbytes} bytes: "
                    f"{', '.join(files) or 'no files'})"
                )
                if pending is not None:
                    # The upload is blocking: the soft kill waited for it, then proceeds; the
                    # job is not restarted (nothing of it runs, nothing more is uploaded).
                    self.event(
                        f"checkpoint {self.stats.checkpoints} uploaded {what}; the {pending} "
                        "that arrived during the upload proceeds now: no restart"
                    )
                    if pending == "remove":
                        self.log.aborted("via condor_rm (dry run)")
                        self.event("removed")
                        return exitstatus.DRYRUN_REMOVED, "removed"
                    self.stats.evictions += 1
                    self.log.evicted()
                    return None
                self.event(
                    f"checkpoint {self.stats.checkpoints} uploaded {what}; "
                    "restarting in the same sandbox"
                )
                continue
            if outcome in ("evict", "remove"):
                self.family.kill_all(self.sleep, self.clock)
                if outcome == "remove":
                    self.stats.lost += self.now() - last_upload
                    self.log.aborted("via condor_rm (dry run)")
                    self.event("removed")
                    return exitstatus.DRYRUN_REMOVED, "removed"
                self.stats.evictions += 1
                nbytes = 0
                if fast:
                    self.event(
                        f"evicted ({detail}); the vacate time was over: fast shutdown, "
                        "nothing uploaded"
                    )
                elif self.job.on_exit_or_evict:
                    files = self.transfers.output_list(sandbox, baseline)
                    try:
                        nbytes, _ = self.transfers.upload(sandbox, files, checkpoint=False)
                    except UploadFailed as exc:
                        self.stats.lost += self.now() - last_upload
                        return self._hold(
                            self.transfers.output_failure(exc), HOLD_TRANSFER_OUTPUT, 2, evicted=True,
                            starter=self.transfers.output_failure_starter(exc),
                        )
                    self.event(
                        f"evicted ({detail}); ON_EXIT_OR_EVICT uploaded {nbytes} bytes: "
                        f"{', '.join(files) or 'no files'}"
                    )
                else:
                    self.event(f"evicted ({detail}); nothing uploaded (ON_EXIT)")
                self.stats.lost += self.now() - last_upload
                self.log.evicted(sent_bytes=nbytes)
                return None
            if outcome == "crash":
                self.family.kill_all(self.sleep, self.clock)
                self.stats.lost += self.now() - last_upload
                self._crashed()
                return None
            if outcome == "hold":
                self.stats.lost += self.now() - last_upload
                self.family.kill_all(self.sleep, self.clock)
                hold_code, reason = detail.split(":", 1)
                self.runner.show_stderr_tail(sandbox)
                # HTCondor 25.0.13 logs the starter's error (021), then its end (004 with the
                # hold's code), then the hold
                message = reason.split(": ", 1)[1] if reason.startswith("Error from ") else reason
                return self._hold(reason, int(hold_code), self.runner.hold_subcode,
                                  evicted=True,
                                  starter=(message, int(hold_code), self.runner.hold_subcode))
            # final exit
            raw_status = int(detail)
            self.family.kill_all(self.sleep, self.clock)
            try:
                files = self.transfers.output_list(sandbox, baseline)
                self.log.transfer_output_started()
                nbytes = self.transfers.deliver(sandbox, files)
                self.log.transfer_output_finished()
            except UploadFailed as exc:
                self.stats.lost += self.now() - last_upload
                return self._hold(self.transfers.output_failure(exc), HOLD_TRANSFER_OUTPUT, 2,
                                  evicted=True, starter=self.transfers.output_failure_starter(exc))
            last_run = self.wall() - max(last_ckpt_wall or exec_start_wall, exec_start_wall)
            self.stats.bytes_uploaded += nbytes
            held = self.sandbox.on_exit_hold(raw_status)
            if held is not None:
                self.stats.committed += last_run
                if os.WIFSIGNALED(raw_status) or os.WEXITSTATUS(raw_status) != 0:
                    self.runner.show_stderr_tail(sandbox)
                return self._hold(held[0], HOLD_ON_EXIT_POLICY, held[1])
            self.stats.completions += 1
            if not self.sandbox.on_exit_remove(raw_status):
                # the next execution starts from the last checkpoint upload: what came after
                # it is lost, as in an eviction (report counts it the same way)
                self.stats.lost += self.now() - last_upload
                self._requeue(raw_status, nbytes)
                return None
            self.stats.committed += last_run
            if os.WIFSIGNALED(raw_status):
                sig = os.WTERMSIG(raw_status)
                self.log.terminated(signal=sig, core=os.WCOREDUMP(raw_status), sent_bytes=nbytes)
                self.event(f"job terminated by {signal_name(sig)}; outputs delivered")
                self.runner.show_stderr_tail(sandbox)
                return exitstatus.DRYRUN_JOB_SIGNALED, f"terminated by signal {sig}"
            code = os.WEXITSTATUS(raw_status)
            self.log.terminated(exit_code=code, sent_bytes=nbytes)
            self.event(
                f"job terminated normally with exit code {code}; outputs delivered "
                f"({nbytes} bytes: {', '.join(files) or 'no files'})"
            )
            if code != 0:
                self.runner.show_stderr_tail(sandbox)
            return code, f"terminated normally, exit code {code}"

    def _requeue(self, raw_status: int, nbytes: int) -> None:
        """The job ended and its OnExitRemove is false: HTCondor 25.0.13 logs a 004 ("Job
        terminated and was requeued") and runs it again, from the last checkpoint upload."""
        assert self.job.on_exit_remove is not None
        self.stats.requeues += 1
        quoted = classad.unparse(classad.parse(self.job.on_exit_remove))  # as the pool quotes it
        if os.WIFSIGNALED(raw_status):
            sig = os.WTERMSIG(raw_status)
            self.log.requeued(signal=sig, core=os.WCOREDUMP(raw_status), sent_bytes=nbytes,
                              expression=quoted)
            how = f"terminated by {signal_name(sig)}"
        else:
            self.log.requeued(exit_code=os.WEXITSTATUS(raw_status), sent_bytes=nbytes,
                              expression=quoted)
            how = f"exit code {os.WEXITSTATUS(raw_status)}"
        since = ("the last checkpoint upload" if self.checkpoint_number is not None
                 else "the start (no checkpoint uploaded yet)")
        self.event(f"job ended ({how}; NumJobCompletions {self.stats.completions}) and is "
                   f"requeued: OnExitRemove '{quoted}' is false; the next execution starts "
                   f"from {since}")

    def _crashed(self) -> None:
        self.stats.crashes += 1
        self.log.shadow_exception("dry run: emulated crash of the execute point; nothing uploaded")
        self.event("crashed: every process killed, nothing uploaded")

    def _end_interrupted(self, kind: str) -> Optional[tuple[int, str]]:
        """A crash during a checkpoint upload: nothing of it reaches the spool."""
        assert self.family is not None
        self.family.kill_all(self.sleep, self.clock)
        self.stats.crashes += 1
        self.log.shadow_exception("dry run: emulated crash during the checkpoint upload")
        return None

    def _hold(
        self, reason: str, code: int, subcode: int, *, evicted: bool = False,
        starter: Optional[tuple[str, int, int]] = None,
    ) -> tuple[int, str]:
        """Hold the job. A hold the starter causes (``starter``: its message, code, subcode) is
        logged as HTCondor 25.0.13 logs it: 021 "Error from starter", then (``evicted``) a 004
        with the hold's code and subcode, then 012."""
        if starter is not None:
            message, s_code, s_subcode = starter
            self.log.remote_error(message, slot=SLOT_NAME, code=s_code, subcode=s_subcode)
        if evicted:  # the shadow logs the starter's end as an eviction first (HTCondor 25.0.13)
            self.log.evicted(code=code, subcode=subcode, reason=reason)
        self.log.held(reason, code=code, subcode=subcode)
        self.event(f"held (code {code}, subcode {subcode}): {reason}")
        return exitstatus.DRYRUN_HELD, f"held: {reason}"

    # --- the end --------------------------------------------------------------------------

    def _summary(self, final: str, status: int) -> None:
        """The summary, on stdout, after the timeline printed as it went (never repeated).
        Time lost: after the last checkpoint upload of each interrupted execution (HTCondor's
        accounting: evictions add nothing to CommittedTime); the same figure as ``report``."""
        s = self.stats
        total = self.now()
        lines = [
            f"dry run of {self.opts.submit_file}: {final} (exit status {status})",
            f"  executions {s.executions}, runs {s.runs}, checkpoints {s.checkpoints}, "
            f"evictions {s.evictions}, crashes {s.crashes}"
            + (f", requeues {s.requeues}" if s.requeues else ""),
            f"  bytes uploaded {s.bytes_uploaded}, wall time {total:.1f}s, time committed "
            f"{s.committed:.1f}s, time lost {s.lost:.1f}s",
        ]
        self.write(self.out, "\n".join(lines))


# --- CLI --------------------------------------------------------------------------------------

def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``dry-run`` on an argparse subparsers object (its options: ``options.DRYRUN``)."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "dry-run",
        help="run a submit file's job through an emulated HTCondor execute point",
        description=(
            "Run job 1.0 of an HTCondor submit file on this machine through an emulation of the "
            "execute point: checkpoint exits and uploads, restarts, evictions, crashes and the "
            "checkpoint signal, with a classic job event log. Every option also reads the "
            "environment variable shown; the command line wins."
        ),
    )
    p.add_argument("submit_file", metavar="SUBMITFILE", help="the HTCondor submit file")
    options.add_arguments(p, options.DRYRUN)
    p.set_defaults(func=run_from_args, handler=run_from_args)
    return p


def options_from_args(args: argparse.Namespace, environ: Optional[Mapping[str, str]] = None) -> Options:
    """The dry run's settings: flags, then their ``CKPT_DRYRUN_*`` twins, then the defaults."""
    values = options.resolve("dry-run", args, dict(os.environ if environ is None else environ))
    if values["evict_random"] is not None and values["seed"] is None:
        values["seed"] = 0
    work = values.pop("work_dir")
    return Options(
        Path(args.submit_file),
        **{dest: list(v) if isinstance(v, tuple) else v for dest, v in values.items()},
        work_dir=Path(work) if work else None,
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Carry out ``dry-run``; errors become exit statuses here and only here."""
    try:
        opts = options_from_args(args)
        job = load_job(opts.submit_file)
    except SupervisorError as exc:
        print(f"{PROG} dry-run: error: {exc}", file=sys.stderr)
        return exc.exit_status
    keys: Optional[KeySource] = None
    if opts.interactive:
        if not sys.stdin.isatty():
            print(
                f"{PROG} dry-run: error: --interactive needs a terminal on stdin", file=sys.stderr
            )
            return exitstatus.EXIT_USAGE
        keys = TtyKeys(sys.stdin)
    emu = Emulator(job, opts, keys=keys)
    if keys is not None:
        emu.say("interactive: c checkpoint signal, e evict, k crash, s status, q remove")
    restore: list[tuple[int, Any]] = []

    def on_signal(signum: int, _frame: object) -> None:
        emu.stop_request = "remove"  # only record; the loop acts on it

    try:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(ValueError):  # not the main thread: leave handlers alone
                restore.append((sig, signal.signal(sig, on_signal)))
        return emu.run()
    except SupervisorError as exc:
        print(f"{PROG} dry-run: error: {exc}", file=sys.stderr)
        return exc.exit_status
    finally:
        for signum, old in restore:
            signal.signal(signum, old)
