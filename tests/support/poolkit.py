"""Helpers of the real-HTCondor tier: find or start a pool, submit jobs, read what HTCondor says.

Everything a test asserts comes from HTCondor itself: the job's classic event log (parsed here),
``condor_q`` while the job is queued and ``condor_history`` once it has left, and the files the
pool delivered into the job's directory. :func:`outcome` reduces that to an :class:`Outcome`, and
:func:`dry_run_outcome` reduces a ``ckpt-supervisor dry-run`` of the same submit file to the same
shape, so that :func:`differences` can compare the two field by field.

Pool discovery (see docs/howto/test-on-a-real-pool.md):
1. an HTCondor the environment already has: ``condor_submit`` on PATH and ``condor_q`` answers
   (with CONDOR_CONFIG from the environment; the suite's ``/dev/null`` placeholder is dropped);
2. else ``../shared/htcondor/pool`` beside the checkout, when we are root: used if it runs in
   ``$HTCONDOR_POOL_DIR`` (``.ci/run`` starts it), else started for the session (see
   :func:`start_shared_pool`);
3. else the tier skips with the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from support.helpers import sleep_until

ROOT = Path(__file__).resolve().parents[2]
JOBS = ROOT / "tests" / "htcondor" / "jobs"
EXAMPLES = ROOT / "examples"
# ../shared/htcondor/pool beside the checkout; CKPT_TEST_POOL_SCRIPT names another copy.
SHARED_POOL = Path(os.environ.get("CKPT_TEST_POOL_SCRIPT") or ROOT.parent / "shared" / "htcondor" / "pool")
# Settings the tier starts the shared pool with (the same in .ci/run): a short checkpoint-signal
# period keeps +WantCheckpointSignal scenarios fast; six slots let jobs of three workers overlap.
POOL_DEFAULTS = {"HTCONDOR_POOL_CHECKPOINT_PERIOD": "6", "HTCONDOR_POOL_SLOTS": "6"}
SUBMITTER = os.environ.get("HTCONDOR_POOL_USER", "condortest")


class PoolUnavailable(Exception):
    """No HTCondor to test against; the message says why (it becomes the skip reason)."""


# --- the pool -------------------------------------------------------------------------------


def _tool_env(extra: Optional[dict[str, str]] = None) -> dict[str, str]:
    env = dict(os.environ)
    if env.get("CONDOR_CONFIG") == "/dev/null":  # tests/conftest.py's placeholder for the wheel
        del env["CONDOR_CONFIG"]
    env.update(extra or {})
    return env


@dataclass
class Pool:
    """A reachable schedd and the way to run its tools as the submitting user."""

    how: str  # "found" (the environment's HTCondor) or "shared" (../shared/htcondor/pool)
    env: dict[str, str]  # CONDOR_CONFIG and PATH for the tools
    user: Optional[str]  # run the tools as this user (root cannot submit); None: as ourselves
    execute: Optional[Path]  # EXECUTE directory (sandboxes dir_*), when we can read it
    description: str = ""

    def tool(self, *argv: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run an HTCondor tool (as the submitter); fail the test with its output if it fails."""
        cmd = list(argv)
        if self.user is not None and os.geteuid() == 0 and pwd.getpwuid(0).pw_name != self.user:
            cmd = ["runuser", "-u", self.user, "--", "env", f"CONDOR_CONFIG={self.env.get('CONDOR_CONFIG', '')}",
                   f"PATH={self.env['PATH']}", *cmd]
        proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return proc

    def give(self, path: Path) -> None:
        """Make the submitter own ``path`` (recursively): HTCondor refuses other users' files."""
        if self.user is None or os.geteuid() != 0:
            return
        ent = pwd.getpwnam(self.user)
        for dirpath, dirnames, filenames in os.walk(path):
            os.chown(dirpath, ent.pw_uid, ent.pw_gid)
            for name in dirnames + filenames:
                os.lchown(os.path.join(dirpath, name), ent.pw_uid, ent.pw_gid)

    def answers(self) -> bool:
        try:
            return self.tool("condor_q", "-totals", timeout=20, check=False).returncode == 0
        except (OSError, subprocess.SubprocessError):
            return False


def _found_pool() -> Optional[Pool]:
    if shutil.which("condor_submit") is None:
        return None
    env = _tool_env()
    user = None
    if os.geteuid() == 0:  # condor_submit refuses root: submit as the pool's test user
        try:
            pwd.getpwnam(SUBMITTER)
        except KeyError:
            raise PoolUnavailable(f"HTCondor found on PATH, but we are root and there is no user "
                                  f"{SUBMITTER!r} to submit as (set HTCONDOR_POOL_USER)") from None
        user = SUBMITTER
    pool = Pool("found", env, user, None, "the HTCondor on PATH")
    if not pool.answers():
        return None
    execute = pool.tool("condor_config_val", "EXECUTE", check=False).stdout.strip()
    pool.execute = Path(execute) if execute and os.access(execute, os.R_OK | os.X_OK) else None
    return pool


def shared_pool_env() -> dict[str, str]:
    """The environment ``../shared/htcondor/pool`` runs with: ours plus the tier's defaults."""
    env = _tool_env()
    for key, value in POOL_DEFAULTS.items():
        env.setdefault(key, value)
    return env


def _shared_dir() -> Path:
    return Path(shared_pool_env().get("HTCONDOR_POOL_DIR", "/tmp/htcondor-pool"))


def _shared_pool() -> Pool:
    pdir = _shared_dir()
    rel = pdir / "htcondor"
    env = _tool_env({"CONDOR_CONFIG": str(pdir / "condor_config"),
                     "PATH": f"{rel}/bin:{rel}/sbin:{os.environ.get('PATH', '/usr/bin:/bin')}"})
    return Pool("shared", env, SUBMITTER, pdir / "local" / "execute",
                f"{SHARED_POOL} in {pdir} (port {shared_pool_env().get('HTCONDOR_POOL_PORT', '9618')})")


def _master_running(pdir: Path) -> bool:
    try:
        pid = int((pdir / "local" / "run" / "master.pid").read_text())
        os.kill(pid, 0)
        return True
    except (OSError, ValueError):
        return False


def _marker_path() -> Path:
    """Present while the pool runs because a test session started it (not .ci/run or a user)."""
    return Path(f"{_shared_dir()}.started-by-pytest")


def _pool_cmd(action: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SHARED_POOL), action], env=shared_pool_env(), capture_output=True,
                          text=True, timeout=120, check=False)


@contextlib.contextmanager
def shared_pool_session() -> Iterator[Pool]:
    """Use the shared pool for a test session (one per xdist worker), starting it if needed.

    Two lock files beside the pool's folder: ``.pytest-start`` serialises starting and stopping
    (an exclusive ``flock`` held for a moment), ``.pytest-users`` is held shared by every session
    while it uses the pool. The session that ends and can take ``.pytest-users`` exclusively
    (nobody else uses the pool) stops it, but only if a test session started it (the marker
    file): a pool that ``.ci/run`` or a user started is never stopped here. A session that
    starts later simply starts it again.
    """
    if not SHARED_POOL.is_file():
        raise PoolUnavailable("no HTCondor: condor_submit is not on PATH and "
                              f"{SHARED_POOL} does not exist")
    if os.geteuid() != 0:
        raise PoolUnavailable(f"no HTCondor on PATH, and {SHARED_POOL} needs root to start")
    # held across the yield, closed in the finally below
    starting = Path(f"{_shared_dir()}.pytest-start").open("a+")  # noqa: SIM115
    users = Path(f"{_shared_dir()}.pytest-users").open("a+")  # noqa: SIM115
    try:
        fcntl.flock(starting, fcntl.LOCK_EX)
        try:
            if not _master_running(_shared_dir()):
                proc = _pool_cmd("start")
                if proc.returncode != 0:
                    raise PoolUnavailable(f"{SHARED_POOL} start failed: {proc.stderr.strip()[-500:]}")
                _marker_path().write_text(f"{os.getpid()}\n")
            fcntl.flock(users, fcntl.LOCK_SH)
        finally:
            fcntl.flock(starting, fcntl.LOCK_UN)
        pool = _shared_pool()
        if not pool.answers():
            raise PoolUnavailable(f"the pool in {_shared_dir()} runs but condor_q does not answer")
        yield pool
    finally:
        fcntl.flock(users, fcntl.LOCK_UN)
        fcntl.flock(starting, fcntl.LOCK_EX)
        try:
            fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if _marker_path().exists():
                _pool_cmd("stop")
                _marker_path().unlink()
        except OSError:
            pass  # another session still uses the pool
        finally:
            fcntl.flock(users, fcntl.LOCK_UN)
            fcntl.flock(starting, fcntl.LOCK_UN)
            users.close()
            starting.close()


@contextlib.contextmanager
def pool_session() -> Iterator[Pool]:
    found = _found_pool()
    if found is not None:
        yield found
        return
    with shared_pool_session() as pool:
        yield pool


# --- job directories and submit files --------------------------------------------------------


@contextlib.contextmanager
def job_dir(pool: Pool, name: str) -> Iterator[Path]:
    """A fresh job directory under /tmp owned by the submitter; removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"ckpt-pool-{name}-", dir="/tmp"))
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def pyz_submit(text: str) -> str:
    """An example's submit file rewritten to ship the single-file supervisor, as users do on a
    pool without ckpt-supervisor installed (docs/howto/ship-the-supervisor.md):
    ``executable = ckpt-supervisor.pyz`` and ``arguments`` starting with ``run``."""
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for original in joined.splitlines():
        line = original
        key = line.split("=", 1)[0].strip().lower() if "=" in line and not line.lstrip().startswith("#") else ""
        if key == "transfer_executable":
            continue
        if key == "executable" and "/usr/bin/env" in line:
            line = "executable = ckpt-supervisor.pyz"
        if key == "arguments":
            line = re.sub(r'=\s*"\s*ckpt-supervisor\s+', '= "', line, count=1)
        out.append(line)
    return "\n".join(out) + "\n"


# --- the event log ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    code: int
    text: str  # the header's text after the date, e.g. "Job was evicted."
    body: str  # the indented lines


_HEADER = re.compile(r"^(\d{3}) \((\d+)\.(\d+)\.(\d+)\) (\S+ \S+) (.*)$")


def read_events(log: Path) -> list[Event]:
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    events = []
    for chunk in text.split("...\n"):
        lines = chunk.strip("\n").splitlines()
        if not lines:
            continue
        m = _HEADER.match(lines[0])
        if m is None:
            continue
        events.append(Event(int(m.group(1)), m.group(6).strip(), "\n".join(lines[1:])))
    return events


def is_output_start(e: Event) -> bool:
    return e.code == 40 and e.text.startswith("Started transferring output files")


def starter_errors(events: Sequence[Event]) -> tuple[str, ...]:
    """The 021 events ("Error from starter on SLOT:"), each as the "code/subcode" it carries."""
    out = []
    for e in events:
        if e.code == 21:
            m = re.search(r"Code (-?\d+) Subcode (-?\d+)", e.body)
            out.append(f"{m.group(1)}/{m.group(2)}" if m else "?")
    return tuple(out)


def output_pairs(events: Sequence[Event]) -> int:
    """Output transfers (040 "Started transferring output files"): checkpoint uploads, eviction
    uploads (ON_EXIT_OR_EVICT) and the final transfer alike; the log alone cannot tell a
    checkpoint upload followed by an eviction from an eviction upload."""
    return sum(1 for e in events if is_output_start(e))


def checkpoints_from_ad(ad: dict[str, str]) -> int:
    """Checkpoint uploads from CheckpointNumber (0 at the first, absent before any)."""
    value = ad.get("CheckpointNumber", "")
    return int(value) + 1 if value not in ("", "undefined") else 0


def last_sandbox(events: Sequence[Event]) -> Optional[Path]:
    """The execute directory of the latest execution (the 001 event's CondorScratchDir)."""
    for e in reversed(events):
        if e.code == 1:
            m = re.search(r'CondorScratchDir = "([^"]+)"', e.body)
            return Path(m.group(1)) if m else None
    return None


# --- jobs ------------------------------------------------------------------------------------


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.1,
             context: Callable[[], str] = lambda: "") -> object:
    """``helpers.sleep_until`` with the pool's pace: poll every 0.1 s, say ``what`` on failure."""
    return sleep_until(condition, timeout, interval, what=what, context=context)


ATTRS = ("JobStatus", "ExitCode", "ExitBySignal", "ExitSignal", "HoldReasonCode",
         "HoldReasonSubCode", "HoldReason", "CheckpointNumber", "NumJobStarts", "NumVacates",
         "CommittedTime", "JobLastCheckpointTime", "NumJobCompletions")


@dataclass
class Job:
    pool: Pool
    dir: Path
    cluster: int
    log: Path

    def events(self) -> list[Event]:
        return read_events(self.log)

    def codes(self) -> list[int]:
        return [e.code for e in self.events()]

    def ad(self) -> dict[str, str]:
        """The job's attributes (ATTRS) from condor_q, else condor_history; 'undefined' if absent."""
        args = ["-af", *ATTRS]
        for tool in ("condor_q", "condor_history"):
            extra = ["-limit", "1"] if tool == "condor_history" else []
            proc = self.pool.tool(tool, str(self.cluster), *extra, *args, check=False)
            line = proc.stdout.strip().splitlines()
            if proc.returncode == 0 and line:
                return _split_af(line[0], len(ATTRS))
        return {}

    def sandbox(self) -> Optional[Path]:
        return last_sandbox(self.events())

    def sandbox_file(self, name: str) -> Optional[Path]:
        """``name`` in the current execution's sandbox, if it exists."""
        box = self.sandbox()
        if box is None:
            return None
        path = box / name
        return path if path.exists() else None

    def context(self) -> str:
        """What to print when an assertion fails: the event log, the job ad, the job's stderr."""
        parts = [f"--- job {self.cluster} in {self.dir}"]
        with contextlib.suppress(Exception):
            parts.append(f"--- ad: {self.ad()}")
        parts.append("--- event log:\n" + "\n".join(f"{e.code:03d} {e.text} {e.body.strip()[:300]}" for e in self.events()))
        for name in sorted(os.listdir(self.dir)):
            if name.endswith((".err", ".out", ".jsonl")):
                with contextlib.suppress(OSError):
                    parts.append(f"--- {name} (tail):\n" + (self.dir / name).read_text(errors="replace")[-3000:])
        return "\n".join(parts)

    def wait_event(self, predicate: Callable[[Event], bool], timeout: float, what: str, count: int = 1) -> Event:
        def seen() -> Optional[Event]:
            hits = [e for e in self.events() if predicate(e)]
            return hits[count - 1] if len(hits) >= count else None
        return wait_for(seen, timeout, what, context=self.context)  # type: ignore[return-value]

    def wait_sandbox_file(self, name: str, timeout: float, predicate: Callable[[bytes], bool] = lambda b: True,
                          after: int = 0) -> Path:
        """Wait until the sandbox of an execution (the ``after``-th 001 or later) has ``name``
        and its content satisfies ``predicate``."""
        def seen() -> Optional[Path]:
            if sum(1 for e in self.events() if e.code == 1) <= after:
                return None
            path = self.sandbox_file(name)
            try:
                return path if path is not None and predicate(path.read_bytes()) else None
            except OSError:
                return None
        return wait_for(seen, timeout, f"{name} in the sandbox", context=self.context)  # type: ignore[return-value]

    def wait_for_condition(self, condition: Callable[[], object], what: str, timeout: float = 180) -> object:
        return wait_for(condition, timeout, what, context=self.context)

    def wait_end(self, timeout: float, ends: Sequence[int] = (5, 9, 12)) -> Event:
        """Wait until the job terminated (005), was removed (009) or held (012)."""
        return self.wait_event(lambda e: e.code in ends, timeout, f"job {self.cluster} ending with one of {ends}")

    def vacate(self) -> None:
        self.pool.tool("condor_vacate_job", str(self.cluster))

    def remove(self) -> None:
        """condor_rm (also a held job), then wait until it has left the queue."""
        q = self.pool.tool("condor_q", str(self.cluster), "-af", "ClusterId", check=False)
        if not q.stdout.strip():
            return
        self.pool.tool("condor_rm", str(self.cluster), check=False)
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not self.pool.tool("condor_q", str(self.cluster), "-af", "ClusterId",
                                                check=False).stdout.strip(), 60, "job left the queue", 0.5)
        if self.pool.tool("condor_q", str(self.cluster), "-af", "ClusterId", check=False).stdout.strip():
            self.pool.tool("condor_rm", "-forcex", str(self.cluster), check=False)


def _split_af(line: str, n: int) -> dict[str, str]:
    # -af separates values by single spaces; HoldReason (a string) may hold spaces: it is the
    # only free-text attribute, so the values before and after it are split off first.
    parts = line.split(" ")
    i = ATTRS.index("HoldReason")
    head, rest = parts[:i], parts[i:]
    tail_n = n - i - 1
    tail = rest[len(rest) - tail_n:] if tail_n else []
    reason = " ".join(rest[: len(rest) - tail_n])
    return dict(zip(ATTRS, [*head, reason, *tail]))


@contextlib.contextmanager
def submitted(pool: Pool, folder: Path, submit: str) -> Iterator[Job]:
    """condor_submit ``folder/submit`` as the submitter; condor_rm and wait afterwards."""
    pool.give(folder)
    proc = pool.tool("sh", "-c", f"cd {folder} && condor_submit {submit}")
    m = re.search(r"submitted to cluster (\d+)", proc.stdout)
    assert m, proc.stdout + proc.stderr
    log = _submit_value(folder / submit, "log")
    job = Job(pool, folder, int(m.group(1)), folder / log)
    try:
        yield job
    finally:
        job.remove()


def _submit_value(path: Path, key: str) -> str:
    for line in path.read_text().splitlines():
        k, _, v = line.partition("=")
        if k.strip().lower() == key:
            return v.strip()
    raise AssertionError(f"{path} has no {key}")


# --- outcomes and the comparison ------------------------------------------------------------

IGNORED_FILES = re.compile(r".*\.(log|out|err|submit|jsonl|pyz|py|sh|once|pid)$|^_condor_std(out|err)$|^journal\.txt$")


@dataclass
class Outcome:
    """What a user sees when the job has ended, from HTCondor or from the dry run."""

    state: str  # terminated, held, removed
    exit_code: Optional[int] = None
    exit_signal: Optional[int] = None
    hold_code: Optional[int] = None
    hold_subcode: Optional[int] = None
    hold_reason: str = ""
    uploads: int = 0  # checkpoint uploads (pool: CheckpointNumber + 1; dry run: its summary)
    transfers: int = 0  # 040 "Started transferring output files" events in the log
    evictions: int = 0  # 004 events
    starter_errors: tuple[str, ...] = ()  # 021 events, "code/subcode" each
    files: dict[str, bytes] = field(default_factory=dict)  # delivered into the job directory
    extra: dict[str, str] = field(default_factory=dict)  # attributes only the pool has


def delivered(folder: Path, before: set[str]) -> dict[str, bytes]:
    """Files that appeared in the job directory (not logs, stdout/stderr or inputs)."""
    out = {}
    for p in sorted(folder.iterdir()):
        if p.name in before or IGNORED_FILES.match(p.name):
            continue
        if p.is_file():
            out[p.name] = p.read_bytes()
        elif p.is_dir():
            for q in sorted(p.rglob("*")):
                if q.is_file():
                    out[str(q.relative_to(folder))] = q.read_bytes()
    return out


def _num(v: Optional[str]) -> Optional[int]:
    try:
        return int(float(v)) if v not in (None, "", "undefined") else None
    except ValueError:
        return None



def _terminated(o: Outcome, body: str) -> None:
    """Fill ``o`` from a 005 event's body: its return value, or the signal that ended it."""
    o.state = "terminated"
    m = re.search(r"return value (-?\d+)", body)
    s = re.search(r"signal (\d+)", body)
    o.exit_code = int(m.group(1)) if m else None
    o.exit_signal = int(s.group(1)) if s and not m else None

def outcome(job: Job, before: set[str]) -> Outcome:
    events = job.events()
    end = next((e for e in reversed(events) if e.code in (5, 9, 12)), None)
    ad = job.ad()
    o = Outcome("unknown", evictions=sum(1 for e in events if e.code == 4), files=delivered(job.dir, before))
    o.uploads = checkpoints_from_ad(ad)
    o.transfers = output_pairs(events)
    o.starter_errors = starter_errors(events)
    o.extra = {k: ad.get(k, "") for k in ("ExitCode", "CheckpointNumber", "NumJobStarts", "NumVacates", "CommittedTime",
                                           "JobLastCheckpointTime")}
    if end is None:
        return o
    if end.code == 5:
        _terminated(o, end.body)
    elif end.code == 12:
        o.state = "held"
        o.hold_code = _num(ad.get("HoldReasonCode"))
        o.hold_subcode = _num(ad.get("HoldReasonSubCode"))
        o.hold_reason = ad.get("HoldReason", "") or end.body.strip()
    else:
        o.state = "removed"
    return o



def _reason(text: str) -> str:
    """A hold reason without what differs by machine: slot and host names, sandbox paths."""
    text = re.sub(r"slot[\w.]*@\S+?(?=[:\s]|$)", "SLOT", text)
    text = re.sub(r"access point \S+?(?=\.\s|\s|$)", "access point HOST", text)
    return re.sub(r"/\S*/([^/\s:]+)", r"SANDBOX/\1", text)

def differences(dry: Outcome, real: Outcome) -> list[str]:
    """Each field where the dry run and the real pool disagree, one readable line each."""
    out = []
    for name in ("state", "exit_code", "exit_signal", "hold_code", "hold_subcode", "uploads", "transfers",
                 "evictions", "starter_errors"):
        a, b = getattr(dry, name), getattr(real, name)
        if a != b:
            out.append(f"{name}: dry run {a!r}, real pool {b!r}")
    if dry.state == "held" and real.state == "held" and _reason(dry.hold_reason) != _reason(real.hold_reason):
        out.append(f"hold reason: dry run {dry.hold_reason!r}, real pool {real.hold_reason!r}")
    for name in sorted(set(dry.files) | set(real.files)):
        a, b = dry.files.get(name), real.files.get(name)
        if a != b:
            out.append(f"delivered {name}: dry run {_show(a)}, real pool {_show(b)}")
    return out


def _show(data: Optional[bytes]) -> str:
    if data is None:
        return "absent"
    return repr(data[:60]) + (f"... ({len(data)} bytes)" if len(data) > 60 else "")


@dataclass
class DryRun:
    status: int
    stdout: str
    stderr: str
    folder: Path


def dry_run(folder: Path, submit: str, args: Sequence[str], timeout: float) -> DryRun:
    """``ckpt-supervisor dry-run SUBMIT ARGS`` in ``folder`` (this checkout's package); every
    process it leaves is killed by PID (its process group) afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CKPT_", "_CONDOR"))}
    env["PYTHONPATH"] = str(ROOT)
    work = folder.parent / (folder.name + "-dryrun-work")
    proc = subprocess.Popen([sys.executable, "-m", "supervisor", "dry-run", submit, "--keep",
                             "--work-dir", str(work), *args], cwd=folder, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    return DryRun(proc.returncode, out, err, folder)


def dry_run_outcome(res: DryRun, log: str, before: set[str]) -> Outcome:
    events = read_events(res.folder / log)
    end = next((e for e in reversed(events) if e.code in (5, 9, 12)), None)
    o = Outcome("unknown", evictions=sum(1 for e in events if e.code == 4), files=delivered(res.folder, before))
    m = re.search(r"checkpoints (\d+)", res.stdout)
    o.uploads = int(m.group(1)) if m else -1
    o.transfers = output_pairs(events)
    o.starter_errors = starter_errors(events)
    if end is None:
        return o
    if end.code == 5:
        _terminated(o, end.body)
    elif end.code == 12:
        o.state = "held"
        m = re.search(r"Code (-?\d+) Subcode (-?\d+)", end.body)
        o.hold_code, o.hold_subcode = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        o.hold_reason = end.body.strip().splitlines()[0].strip() if end.body.strip() else ""
    else:
        o.state = "removed"
    return o


# --- jobs of jobs/work.py --------------------------------------------------------------------

# The submit settings and `run` options the tier's jobs share.
SIGNAL_JOB = """
+WantCheckpointSignal = true
+CheckpointSig = "SIGUSR2"
checkpoint_exit_code = 85
transfer_checkpoint_files = checkpoint.atomic
transfer_output_files = result.txt
"""
TIMER_JOB = """
checkpoint_exit_code = 85
transfer_checkpoint_files = checkpoint.atomic
transfer_output_files = result.txt
"""
TIMER_RUN = "run --checkpoint state.txt --every 2 --job-signal SIGUSR1 --complete-when 'log=^saved'"


def work_submit(folder: Path, pyz: Path, run: str, program: str, settings: str = "", *, name: str = "job") -> str:
    """Write ``folder/NAME.submit``: the .pyz runs ``run -- python3 work.py PROGRAM`` with
    ``--journal`` in the job directory (``run`` empty: work.py is the executable itself);
    ``settings`` are extra submit lines. Returns its name."""
    shutil.copy2(JOBS / "work.py", folder / "work.py")
    shutil.copy2(pyz, folder / "ckpt-supervisor.pyz")
    journal = folder / "journal.txt"
    if run:
        head = (f'executable = ckpt-supervisor.pyz\narguments = "{run} --events ckpt-events.jsonl -- python3 work.py '
                f'--journal {journal} {program}"\ntransfer_input_files = work.py')
    else:  # no supervisor: the program is the job
        head = f'executable = work.py\narguments = "--journal {journal} {program}"'
    text = f"""{head}
should_transfer_files = yes
{settings.strip()}
output = {name}.out
error = {name}.err
log = {name}.log
queue
"""
    (folder / f"{name}.submit").write_text(text)
    return f"{name}.submit"


def journal(folder: Path) -> list[str]:
    try:
        return (folder / "journal.txt").read_text().splitlines()
    except OSError:
        return []


def result_bytes(steps: int) -> bytes:
    """What work.py writes into result.txt after ``steps`` steps."""
    return f"steps {steps} sum {steps * (steps + 1) // 2}\n".encode()
