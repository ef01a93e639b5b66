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
4. *Eviction*: KillSig to the main process only; after the vacate time (the smaller of
   ``JobMaxVacateTime`` and the machine's ``MachineMaxVacateTime``) SIGKILL to the whole family
   and nothing is uploaded (fast shutdown); when the job exits within the vacate time and
   ON_EXIT_OR_EVICT is set, the output list is uploaded (a missing file is a hold, 12/2) and
   event 004 is written. The next execution is a fresh sandbox. *Crash*: SIGKILL to the family,
   nothing uploaded (event 007). *Remove*: like eviction without upload (event 009).
5. *Accounting*: ``CommittedTime`` grows by each run that ends with a checkpoint and by the
   final run; evictions add nothing. Time lost is the time after the last checkpoint upload (or
   the execution's start) of each interrupted execution; ``report`` computes the same figure.

The clock, sleep, launcher and key source are parameters of ``Emulator`` so tests can drive it.
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
from ..errors import ConfigError, SupervisorError
from ..jobad import format_ad
from ..signals import signal_name
from . import classad
from .attributes import with_attrs
from .eventlog import EventLog
from .submit import Job, load_job

FAMILY_ENV = "CKPT_DRYRUN_FAMILY"
STDOUT_NAME = "_condor_stdout"
STDERR_NAME = "_condor_stderr"
JOB_AD_NAME = ".job.ad"
MACHINE_AD_NAME = ".machine.ad"
INTERNAL_NAMES = frozenset(
    {STDOUT_NAME, STDERR_NAME, JOB_AD_NAME, MACHINE_AD_NAME, ".chirp.config", ".update.ad"}
)
DEFAULT_MACHINE_VACATE_TIME: float = options.default("dry-run", "vacate-time")
DEFAULT_MAX_RUNS: int = options.default("dry-run", "max-runs")
POLL = 0.02

HOLD_FAILED_TO_CHECKPOINT = 36  # CONDOR_HOLD_CODE::FailedToCheckpoint
HOLD_TRANSFER_OUTPUT = 12  # CONDOR_HOLD_CODE::TransferOutputError
HOLD_TRANSFER_INPUT = 13  # CONDOR_HOLD_CODE::TransferInputError
HOLD_FAILED_TO_EXECUTE = 6  # CONDOR_HOLD_CODE::FailedToCreateProcess
HOLD_ON_EXIT_POLICY = 3  # CONDOR_HOLD_CODE::JobPolicy (on_exit_hold)


# --- options ----------------------------------------------------------------------------------


class Options:
    """The dry run's settings: the submit file, and one value for every row of
    ``options.DRYRUN``, read as attributes (``opts.max_starts``); a row not given has its
    default (a list for a repeatable one). A new dry-run option is one row plus its use."""

    def __init__(self, submit_file: Path, **values: Any) -> None:
        rows = {o.dest: o for o in options.DRYRUN}
        unknown = sorted(set(values) - set(rows))
        if unknown:
            raise TypeError(f"Options() got unknown options {unknown}")
        self.submit_file = submit_file
        self.values: dict[str, Any] = {d: list(o.empty) if o.multiple else o.empty for d, o in rows.items()}
        self.values.update(values)

    def __getattr__(self, name: str) -> Any:  # only called for names that are not attributes
        values = self.__dict__.get("values")
        if values is not None and name in values:
            return values[name]
        raise AttributeError(f"dry-run Options have no option {name!r}")

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


# --- ClassAd writing ----------------------------------------------------------------------------


def _quote_new_syntax(words: Sequence[str]) -> str:
    out = []
    for w in words:
        w2 = w.replace('"', '""')
        if not w2 or any(c in w2 for c in " \t'"):
            w2 = "'" + w2.replace("'", "''") + "'"
        out.append(w2)
    return " ".join(out)


# --- the emulator -----------------------------------------------------------------------------

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


@dataclass
class Stats:
    executions: int = 0
    runs: int = 0
    checkpoints: int = 0
    evictions: int = 0
    crashes: int = 0
    bytes_uploaded: int = 0
    committed: float = 0.0  # HTCondor's CommittedTime: runs ended by a checkpoint or the end
    lost: float = 0.0  # time after the last checkpoint upload of interrupted executions


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
        self.injections: list[tuple[float, str]] = sorted(
            [(t, "evict") for t in options.evict_at] + [(t, "crash") for t in options.crash_at]
        )
        self.evict_on: list[str] = list(options.evict_on)  # the first one is armed
        self.rng = random.Random(options.seed)
        self.next_every = options.evict_every
        self.next_random: Optional[float] = None
        if options.evict_random:
            self.next_random = self.rng.expovariate(1.0 / options.evict_random)
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
        self.log = EventLog(self._submit_path(job.log) if job.log else None, wall=wall)
        self.family: Optional[Family] = None
        self.broken: set[int] = set()  # ids of output streams whose reader went away

    # --- small helpers --------------------------------------------------------------------

    def _submit_path(self, name: str) -> Path:
        return self.job.submit_dir / name

    def now(self) -> float:
        return self.clock() - self.t0

    def _write(self, stream: TextIO, text: str) -> None:
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
            self._write(self.err, f"{PROG} dry-run[{os.getpid()}]: {text}")

    def warn(self, text: str) -> None:
        """Warnings are printed even with --quiet."""
        self._write(self.err, f"{PROG} dry-run[{os.getpid()}]: warning: {text}")

    def event(self, text: str) -> None:
        """A timeline entry, printed once, as it happens (stdout; not with --quiet)."""
        self.timeline.append((self.now(), text))
        if not self.opts.quiet:
            self._write(self.out, f"  {self.now():8.2f}s  {text}")

    # --- injections -----------------------------------------------------------------------

    def _due(self) -> Optional[str]:
        """The injection or key that is due now, if any (consumed)."""
        if self.stop_request:
            kind = self.stop_request
            self.stop_request = None
            return kind
        now = self.now()
        if self.injections and self.injections[0][0] <= now:
            return self.injections.pop(0)[1]
        if self.next_every is not None and self.opts.evict_every and now >= self.next_every:
            self.next_every += self.opts.evict_every
            return "evict"
        if self.next_random is not None and self.opts.evict_random and now >= self.next_random:
            self.next_random = now + self.rng.expovariate(1.0 / self.opts.evict_random)
            return "evict"
        if self.keys is not None:
            key = self.keys.read()
            if key is not None:
                return {
                    "c": "checkpoint",
                    "e": "evict",
                    "k": "crash",
                    "s": "status",
                    "q": "remove",
                }.get(key.lower(), "unknown-key")
        return None

    def _evict_on(self, moment: str) -> bool:
        """True (consumed) when the next ``--evict-on`` eviction is aimed at ``moment``."""
        if self.evict_on and self.evict_on[0] == moment:
            self.evict_on.pop(0)
            return True
        return False

    def _next_injection_text(self) -> str:
        times = []
        if self.evict_on:
            times.append(f"evict on the next {self.evict_on[0]}")
        if self.injections:
            times.append(f"{self.injections[0][1]} at {self.injections[0][0]:.1f}s")
        if self.next_every is not None and self.opts.evict_every:
            times.append(f"evict at {self.next_every:.1f}s")
        if self.next_random is not None:
            times.append(f"random evict at {self.next_random:.1f}s")
        return ", ".join(times) or "none scheduled"

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
            log_path = self._submit_path(self.job.log)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text("")  # one dry run, one log (HTCondor would append)
        for streamed, name in (
            (self.job.stream_output, self.job.output),
            (self.job.stream_error, self.job.error),
        ):
            if streamed and name:
                target = self._submit_path(name)
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
            exe = self._populate(sandbox)
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
        self._write_ads(sandbox)  # once per starter (starter.cpp): not before each restart
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
            outcome, detail, fast = self._run_once(sandbox, exe)
            if outcome == "checkpoint":
                exit_wall = self.wall()
                leftovers = self.family.alive()
                for proc in leftovers:
                    self.warn(
                        f"{_describe(proc)} is still running after the checkpoint exit;"
                        " HTCondor does not kill it before the restart either"
                    )
                files = self._checkpoint_list(sandbox, baseline)
                try:
                    nbytes, pending = self._upload(sandbox, files, checkpoint=True)
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
                    files = self._output_list(sandbox, baseline)
                    try:
                        nbytes, _ = self._upload(sandbox, files, checkpoint=False)
                    except UploadFailed as exc:
                        self.stats.lost += self.now() - last_upload
                        return self._hold(
                            self._output_failure(exc), HOLD_TRANSFER_OUTPUT, 2, evicted=True,
                            starter=self._output_failure_starter(exc),
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
                self._show_stderr_tail(sandbox)
                # HTCondor 25.0.13 logs the starter's error (021), then its end (004 with the
                # hold's code), then the hold
                message = reason.split(": ", 1)[1] if reason.startswith("Error from ") else reason
                return self._hold(reason, int(hold_code), self._hold_subcode,
                                  evicted=True,
                                  starter=(message, int(hold_code), self._hold_subcode))
            # final exit
            raw_status = int(detail)
            self.family.kill_all(self.sleep, self.clock)
            try:
                files = self._output_list(sandbox, baseline)
                self.log.transfer_output_started()
                nbytes = self._deliver(sandbox, files)
                self.log.transfer_output_finished()
            except UploadFailed as exc:
                self.stats.lost += self.now() - last_upload
                return self._hold(self._output_failure(exc), HOLD_TRANSFER_OUTPUT, 2,
                                  evicted=True, starter=self._output_failure_starter(exc))
            end_wall = self.wall()
            self.stats.committed += end_wall - max(last_ckpt_wall or exec_start_wall,
                                                   exec_start_wall)
            self.stats.bytes_uploaded += nbytes
            held = self._on_exit_hold(raw_status)
            if held is not None:
                if os.WIFSIGNALED(raw_status) or os.WEXITSTATUS(raw_status) != 0:
                    self._show_stderr_tail(sandbox)
                return self._hold(held[0], HOLD_ON_EXIT_POLICY, held[1])
            if os.WIFSIGNALED(raw_status):
                sig = os.WTERMSIG(raw_status)
                self.log.terminated(signal=sig, core=os.WCOREDUMP(raw_status), sent_bytes=nbytes)
                self.event(f"job terminated by {signal_name(sig)}; outputs delivered")
                self._show_stderr_tail(sandbox)
                return exitstatus.DRYRUN_JOB_SIGNALED, f"terminated by signal {sig}"
            code = os.WEXITSTATUS(raw_status)
            self.log.terminated(exit_code=code, sent_bytes=nbytes)
            self.event(
                f"job terminated normally with exit code {code}; outputs delivered "
                f"({nbytes} bytes: {', '.join(files) or 'no files'})"
            )
            if code != 0:
                self._show_stderr_tail(sandbox)
            return code, f"terminated normally, exit code {code}"

    _hold_subcode = 0

    def _on_exit_hold(self, raw_status: int) -> Optional[tuple[str, int]]:
        """The job policy the shadow applies when the job ends (HTCondor 25.0.13, seen on a
        real pool): ``on_exit_hold`` true holds the job, code 3, after its outputs were
        transferred (040 040 012, no 005); the subcode and reason come from
        ``on_exit_hold_subcode`` / ``on_exit_hold_reason`` or are 0 and "The job attribute
        OnExitHold expression '...' evaluated to TRUE". None: the job terminates."""
        job = self.job
        if job.on_exit_hold is None:
            return None
        ad = self._job_ad()
        if os.WIFSIGNALED(raw_status):
            ad.update(ExitBySignal=True, ExitSignal=os.WTERMSIG(raw_status))
        else:
            ad.update(ExitBySignal=False, ExitCode=os.WEXITSTATUS(raw_status))
        ad.update(JobStatus=4)
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

    def _output_failure(self, exc: UploadFailed) -> str:
        """The hold reason HTCondor 25.0.13 gives for a missing output file (code 12/2)."""
        return (
            f"Transfer output files failure at execution point {SLOT_NAME} while sending "
            f"files to access point {ACCESS_POINT}. Details: 1 total failures: first failure: "
            f"reading from file {exc.path}: (errno 2) No such file or directory"
        )

    @staticmethod
    def _output_failure_starter(exc: UploadFailed) -> tuple[str, int, int]:
        """The starter's own report of a missing output file (event 021 on HTCondor 25.0.13:
        code 13, subcode 2, although the hold is 12/2)."""
        return (
            f"STARTER at 127.0.0.1 failed to send file(s) to <127.0.0.1:0>: |Error: 1 total "
            f"failures: first failure: reading from file {exc.path}: (errno 2) No such file or "
            f"directory; SHADOW failed to receive file(s) from <127.0.0.1:0>",
            13,
            2,
        )

    def _show_stderr_tail(self, sandbox: Path) -> None:
        """The job ended with a status nobody expected: show the end of its stderr, where the
        supervisor (or the program) says why."""
        path = sandbox / STDERR_NAME
        if self.job.stream_error and self.job.error:
            path = self._submit_path(self.job.error)
        try:
            with open(path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - 8192))
                tail = fh.read().decode(errors="replace").splitlines()[-TAIL_LINES:]
        except OSError:
            return
        if not tail:
            self._write(self.err, f"{PROG} dry-run[{os.getpid()}]: the job's stderr is empty")
            return
        lines = [f"{PROG} dry-run[{os.getpid()}]: the job's stderr ends with:"]
        lines += [f"  | {line}" for line in tail]
        self._write(self.err, "\n".join(lines))

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

    # --- one run of the command line ------------------------------------------------------

    def _open_output(self, sandbox: Path, name: Optional[str], streamed: bool, internal: str,
                     *, keep: bool) -> int:
        """The file descriptor the job's stdout or stderr goes to: the sandbox file when the
        submit file names one (the submit-side file itself when streamed); else /dev/null
        (``keep``: a sandbox file the dry run reads but never transfers)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        if name and streamed:
            return os.open(self._submit_path(name), flags, 0o644)
        if name or keep:
            return os.open(sandbox / internal, flags, 0o644)
        return os.open(os.devnull, os.O_WRONLY)

    def _run_once(self, sandbox: Path, exe: Path) -> tuple[str, str, bool]:
        """Start the command line once and watch it until it ends.

        Returns (outcome, detail, fast): ("checkpoint", ""), ("evict", why), ("remove", ""),
        ("crash", ""), ("hold", "36:reason") or ("exit", raw wait status); ``fast`` is true when
        the vacate time ran out and the family was SIGKILLed (nothing is uploaded then).
        """
        assert self.family is not None
        job = self.job
        self.stats.runs += 1
        env = self._environment(sandbox)
        out_fd = self._open_output(sandbox, job.output, job.stream_output, STDOUT_NAME,
                                   keep=False)
        err_fd = self._open_output(sandbox, job.error, job.stream_error, STDERR_NAME, keep=True)
        try:
            proc = self.launcher(
                [str(exe), *job.arguments], cwd=sandbox, env=env, stdout=out_fd, stderr=err_fd
            )
        except OSError as exc:
            self._hold_subcode = exc.errno or 0
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
        self.family.add_main(pid)
        self.event(f"run {self.stats.runs} started: pid {pid}")
        start = self.now()
        period = self.opts.checkpoint_period if job.want_checkpoint_signal else None
        checkpointing = False  # a checkpoint signal is outstanding (unanswered)
        evicting: Optional[str] = None
        kill_deadline: Optional[float] = None
        fast = False
        signalled = False  # a checkpoint signal went out in this pass of the loop
        last_scan = -1.0
        raw: Optional[int] = None
        while raw is None:
            raw = _reap(proc)
            if raw is not None:
                break
            now = self.now()
            if now - last_scan >= 0.1:
                self.family.scan()
                last_scan = now
            if (
                self.next_signal is not None
                and period
                and now >= self.next_signal
                and evicting is None
            ):
                # The startd asks once a period, counted from its last ask; the starter sends
                # the signal unless one is still unanswered. A declined ask restarts the period
                # too (seen on HTCondor 25.0.13: a job that answered 28 s late got the next
                # signal 23 s after its restart, not at once).
                if checkpointing:
                    self.event("checkpoint signal due but the last one is unanswered: not sent")
                else:
                    checkpointing = signalled = self._send_checkpoint_signal(pid)
                self.next_signal = now + period
            kind = self._due()
            if kind is None and signalled and self._evict_on("checkpoint-signal"):
                kind = "evict"  # aimed at this moment: the soft kill follows the signal at once
            signalled = False
            if kind == "crash":
                self.event("crash injected: SIGKILL to every process")
                self.family.kill_all(self.sleep, self.clock)
                _reap_blocking(proc)
                return "crash", "", False
            if kind in ("evict", "remove"):
                if evicting is None:
                    evicting = kind
                    kill_deadline = now + self.vacate
                    self.event(
                        f"{'removing' if kind == 'remove' else 'evicting'}: "
                        f"{signal_name(job.kill_sig)} to pid {pid}; SIGKILL to all in "
                        f"{self.vacate:g}s"
                    )
                    _signal(pid, job.kill_sig)
                else:
                    self.event(f"{kind} ignored: a shutdown is already in progress")
            elif kind == "checkpoint":
                if evicting or checkpointing:
                    self.event(
                        "checkpoint signal not sent: a checkpoint or shutdown is in progress"
                    )
                else:
                    checkpointing = signalled = self._send_checkpoint_signal(pid)
                    if checkpointing and period:
                        self.next_signal = now + period
            elif kind == "status":
                self._print_status(pid, start)
            elif kind == "unknown-key":
                self.say("keys: c checkpoint signal, e evict, k crash, s status, q remove")
            if kill_deadline is not None and now >= kill_deadline:
                self.event("vacate time over: SIGKILL to every process (fast shutdown)")
                self.family.kill_all(self.sleep, self.clock)
                kill_deadline = None
                fast = True
            self.sleep(POLL)
        self.family.scan()
        self.event(f"run {self.stats.runs} ended: {_describe_status(raw)}")
        desired = job.desired_checkpoint_status()
        if checkpointing and raw != desired and not fast:
            # Rule 8: once the signal is sent, the next exit must be the checkpoint status,
            # during an eviction too.
            self._hold_subcode = raw
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

    def _send_checkpoint_signal(self, pid: int) -> bool:
        sig = self.job.checkpoint_sig if self.job.checkpoint_sig is not None else self.job.kill_sig
        if not self.job.want_checkpoint_signal:
            self.event("checkpoint signal not sent: the job does not set +WantCheckpointSignal")
            return False
        self.event(f"checkpoint signal {signal_name(sig)} to pid {pid} (main process only)")
        _signal(pid, sig)
        return True

    def _print_status(self, pid: int, start: float) -> None:
        assert self.family is not None
        procs = [pid] + [p.pid for p in self.family.alive(exclude=pid)]
        self.say(
            f"status: t={self.now():.1f}s execution {self.stats.executions}, run "
            f"{self.stats.runs} up {self.now() - start:.1f}s, processes {procs}; "
            f"checkpoints {self.stats.checkpoints}, evictions {self.stats.evictions}, crashes "
            f"{self.stats.crashes}; next: {self._next_injection_text()}"
        )

    # --- files ----------------------------------------------------------------------------

    def _populate(self, sandbox: Path) -> Path:
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
        for item in self.spool.iterdir():
            if item.name.startswith(".incoming"):
                continue
            if item.is_dir():
                shutil.copytree(item, sandbox / item.name, dirs_exist_ok=True)
            else:
                shutil.copy2(item, sandbox / item.name)
        return exe

    def _environment(self, sandbox: Path) -> dict[str, str]:
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
        assert self.family is not None
        env[FAMILY_ENV] = self.family.token
        return env

    def _job_ad(self) -> dict[str, object]:
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
            "QDate": self.qdate,
            "Iwd": str(job.submit_dir),
            "Cmd": str(job.submit_dir / job.executable),
            "Arguments": _quote_new_syntax(job.arguments),
            "Environment": _quote_new_syntax([f"{k}={v}" for k, v in job.environment.items()]),
            "NumJobStarts": self.stats.executions - 1,
            "JobRunCount": self.stats.executions,
            "NumShadowStarts": self.stats.executions,
            "JobStartDate": self.qdate,
            "JobCurrentStartDate": int(self.wall()),
            "ShouldTransferFiles": job.should_transfer_files,
            "WhenToTransferOutput": job.when_to_transfer_output,
            "TransferIn": False,
            "KillSig": signal_name(job.kill_sig),
            "CommittedTime": int(self.stats.committed),
        }
        if job.output:
            ad["Out"] = job.output if job.stream_output else STDOUT_NAME
        if job.error:
            ad["Err"] = job.error if job.stream_error else STDERR_NAME
        if self.checkpoint_number is not None:
            ad["CheckpointNumber"] = self.checkpoint_number
        if job.transfer_input_files:
            ad["TransferInput"] = ",".join(job.transfer_input_files)
        if job.transfer_output_files is not None:
            ad["TransferOutput"] = ",".join(job.transfer_output_files)
        if job.transfer_checkpoint_files is not None:
            ad["TransferCheckpoint"] = ",".join(job.transfer_checkpoint_files)
        if job.job_max_vacate_time is not None:
            ad["JobMaxVacateTime"] = job.job_max_vacate_time
        if job.checkpoint_exit_code is not None:
            ad["SuccessCheckpointExitCode"] = job.checkpoint_exit_code
        if job.want_ft_on_checkpoint:
            ad["WantFTOnCheckpoint"] = True
        if job.log:
            ad["UserLog"] = str(self._submit_path(job.log))
        return with_attrs(ad, job.attrs)

    def _write_ads(self, sandbox: Path) -> None:
        try:
            text = format_ad(self._job_ad())
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

    def _changed(self, sandbox: Path, baseline: Mapping[str, tuple[int, int]]) -> list[str]:
        now = _snapshot(sandbox)
        # Only plain files at the top: HTCondor does not scan subdirectories for default output.
        return sorted(
            n
            for n, sig in now.items()
            if n not in INTERNAL_NAMES and baseline.get(n) != sig and (sandbox / n).is_file()
        )

    def _output_list(self, sandbox: Path, baseline: Mapping[str, tuple[int, int]]) -> list[str]:
        if self.job.transfer_output_files is not None:
            return list(self.job.transfer_output_files)
        return self._changed(sandbox, baseline)

    def _checkpoint_list(self, sandbox: Path, baseline: Mapping[str, tuple[int, int]]) -> list[str]:
        if self.job.transfer_checkpoint_files is not None:
            return list(self.job.transfer_checkpoint_files)
        if self.job.transfer_output_files is not None:
            return list(self.job.transfer_output_files)
        return self._changed(sandbox, baseline)

    def _std_names(self) -> list[str]:
        """stdout and stderr go with an upload only when the submit file names them and does
        not stream them."""
        out = []
        if self.job.output and not self.job.stream_output:
            out.append(STDOUT_NAME)
        if self.job.error and not self.job.stream_error:
            out.append(STDERR_NAME)
        return out

    def _upload(
        self, sandbox: Path, files: Sequence[str], *, checkpoint: bool
    ) -> tuple[int, Optional[str]]:
        """Copy ``files`` (plus stdout/stderr) to the spool, all or nothing.

        Returns the bytes and, for a checkpoint upload, the soft eviction or removal that
        arrived during it (the upload is blocking: it completes first). A crash during a
        checkpoint upload raises _Interrupt; a missing file (or, in a checkpoint, a symlink to
        a directory) raises UploadFailed before anything reaches the spool.
        """
        self.log.transfer_output_started()
        for name in files:
            src = sandbox / name
            if checkpoint and src.is_symlink() and src.is_dir():
                raise UploadFailed(name, src, "a symbolic link to a directory")
            if not src.exists():
                if not checkpoint:
                    self.log.transfer_output_finished()
                raise UploadFailed(name, src, "does not exist")
        staging = self.spool / f".incoming-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        pending: Optional[str] = None
        if checkpoint and self._evict_on("upload"):
            pending = "evict"
            self.event("evict during the checkpoint upload: it waits for the end of the upload "
                       "(HTCondor's upload is blocking)")
        try:
            nbytes = 0
            for name in [*files, *self._std_names()]:
                src = sandbox / name
                dst = staging / Path(name).name
                if src.is_dir():
                    shutil.copytree(src, dst, symlinks=True)
                    nbytes += sum(p.stat().st_size for p in dst.rglob("*") if p.is_file())
                elif src.is_file():
                    shutil.copy2(src, dst)
                    nbytes += dst.stat().st_size
            if checkpoint and self.opts.upload_time > 0:
                end = self.clock() + self.opts.upload_time
                while self.clock() < end:
                    kind = self._due()
                    if kind == "crash":
                        raise _Interrupt(kind)
                    if kind in ("evict", "remove") and pending is None:
                        pending = kind
                        self.event(f"{kind} during the checkpoint upload: it waits for the end "
                                   "of the upload (HTCondor's upload is blocking)")
                    self.sleep(POLL)
            for item in staging.iterdir():  # commit: replace entry by entry; never delete others
                target = self.spool / item.name
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target)
                os.replace(item, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.log.transfer_output_finished()
        self.stats.bytes_uploaded += nbytes
        return nbytes, pending

    def _deliver(self, sandbox: Path, files: Sequence[str]) -> int:
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
            if internal in self._std_names() and target and (sandbox / internal).exists():
                dst = self._submit_path(target)
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(sandbox / internal, dst)
                nbytes += dst.stat().st_size
        return nbytes

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
            f"evictions {s.evictions}, crashes {s.crashes}",
            f"  bytes uploaded {s.bytes_uploaded}, wall time {total:.1f}s, time committed "
            f"{s.committed:.1f}s, time lost {s.lost:.1f}s",
        ]
        self._write(self.out, "\n".join(lines))


def _snapshot(sandbox: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for entry in os.scandir(sandbox):
        with contextlib.suppress(OSError):
            st = entry.stat(follow_symlinks=False)
            out[entry.name] = (st.st_mtime_ns, st.st_size)
    return out


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
