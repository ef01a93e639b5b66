"""The torn-checkpoint torture (issue 12): programs that rewrite their checkpoint in place at
random intervals, every trigger mode and completion rule, evictions at random moments; every
committed store is checked by the program's own consistency check.

Shared by the quick test (``tests/reliability/test_torture.py``) and the long run
(``bench/torture.py``). Two ways to drive a job:

* ``via_run``: ``ckpt-supervisor run`` again and again, as HTCondor would: in place after a
  checkpoint exit (85, whose store is copied to a "spool"), in a fresh sandbox holding only the
  spool's store after an eviction (SIGTERM, the default KillSig, at a random moment from 1 ms to
  1.5 s in a share of the executions); after each execution the committed store is verified and
  checked by ``rewriter.py --check``: every commit is checked, because every execution commits
  at most once (no ``--min-run``).
* ``via_dryrun``: ``ckpt-supervisor dry-run`` of a submit file with ``--evict-random``: evictions
  at random moments, restarts from the emulated spool in a fresh sandbox; the program checks the
  store it was restored from at each start (``--report``: "TORN ..." lines) and the final store is
  checked at the end.

A scenario pairs a trigger mode and a completion rule with a writer that the docs
(docs/howto/non-atomic-checkpoints.md) call safe for that rule.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REWRITER = str(ROOT / "tests" / "support" / "victims" / "rewriter.py")
# the supervisor under test (default: this tree); CKPT_TORTURE_CODE=DIR runs another checkout's,
# e.g. the code before a fix, with this tree's victim and checks
CODE = Path(os.environ.get("CKPT_TORTURE_CODE", str(ROOT)))
PY = sys.executable
STORE = "checkpoint.atomic"
MULTI = "a.bin,b.bin,meta.json"


@dataclass(frozen=True)
class Scenario:
    name: str
    args: tuple[str, ...]  # supervisor options (before --)
    program: tuple[str, ...]  # rewriter options
    top: str  # the checkpoint path to check in the store
    names: str  # the files a complete checkpoint has (in a directory checkpoint)
    signal_period: float = 0.0  # dry run: +WantCheckpointSignal every S seconds (0: none)


def _validator() -> str:
    return f"command={PY} {REWRITER} --check --names {MULTI}"


CONT = ("--min", "0.001", "--max", "1.0")  # rewrite at random intervals from 1 ms to 1 s
DIR = ("--dir", "ckpt", "--meta", "meta.json")
ONE = ("--files", "state.bin")

SCENARIOS: tuple[Scenario, ...] = (
    # the program checkpoints on its own schedule (--watch)
    Scenario("watch-marker-multi", ("--checkpoint", "ckpt", "--watch", "--complete-when",
                                    "marker=ckpt/meta.json"), DIR + CONT, "ckpt", MULTI),
    Scenario("watch-quiet-multi", ("--checkpoint", "ckpt", "--watch", "--complete-when", "quiet=0.3"),
             DIR + CONT, "ckpt", MULTI),
    Scenario("watch-command-multi", ("--checkpoint", "ckpt", "--watch", "--complete-when", _validator()),
             DIR + CONT, "ckpt", MULTI),
    Scenario("watch-closed-single", ("--checkpoint", "state.bin", "--watch", "--complete-when", "closed"),
             ONE + CONT, "state.bin", ""),
    Scenario("watch-quiet-single", ("--checkpoint", "state.bin", "--watch", "--complete-when", "quiet=0.3"),
             ONE + CONT, "state.bin", ""),
    # our own timer asks (job signal SIGWINCH: ignored by default, so a request that comes before
    # the program's handler exists is lost, not fatal); the program also rewrites on its own
    Scenario("timer-marker-multi", ("--checkpoint", "ckpt", "--every", "0.4", "--job-signal", "SIGWINCH",
                                    "--complete-when", "marker=ckpt/meta.json", "--checkpoint-timeout", "5"),
             DIR + CONT + ("--on-signal", "SIGWINCH", "--also-auto"), "ckpt", MULTI),
    Scenario("timer-closed-single", ("--checkpoint", "state.bin", "--every", "0.4", "--job-signal", "SIGWINCH",
                                     "--complete-when", "closed", "--checkpoint-timeout", "5"),
             ONE + CONT + ("--on-signal", "SIGWINCH", "--also-auto"), "state.bin", ""),
    # the program writes only when asked and says so on stdout (log=): safe when it does not
    # write again before it is asked again
    Scenario("timer-log-multi", ("--checkpoint", "ckpt", "--every", "0.4", "--job-signal", "SIGWINCH",
                                 "--complete-when", "log=^checkpoint [0-9]+ done$", "--checkpoint-timeout", "5"),
             DIR + ("--on-signal", "SIGWINCH", "--log"), "ckpt", MULTI),
    # the program exits after each checkpoint (the seed's 77 case): --inspect-on-exit
    Scenario("exit-multi", ("--checkpoint", "ckpt", "--inspect-on-exit", "17", "--complete-when", "exit"),
             DIR + CONT + ("--exit-after-ckpt", "17"), "ckpt", MULTI),
    # HTCondor's checkpoint signal (the dry run sends it: +WantCheckpointSignal), SIGUSR2
    Scenario("signal-marker-multi", ("--checkpoint", "ckpt", "--trigger-signal", "SIGUSR2", "--job-signal",
                                     "SIGWINCH", "--complete-when", "marker=ckpt/meta.json"),
             DIR + CONT + ("--on-signal", "SIGWINCH", "--also-auto"), "ckpt", MULTI, signal_period=0.7),
)
BY_NAME = {s.name: s for s in SCENARIOS}


@dataclass
class Result:
    scenario: str
    via: str
    executions: int = 0
    evictions: int = 0
    commits: int = 0
    checks: int = 0  # committed stores checked by the program's own check
    bad: list[str] = field(default_factory=list)  # mixed or torn stores, and TORN starts
    mixed: int = 0  # committed stores that failed the program's check
    torn_starts: int = 0  # starts that found their restored checkpoint torn
    seconds: float = 0.0
    status: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"scenario": self.scenario, "via": self.via, "executions": self.executions,
                "evictions": self.evictions, "commits": self.commits, "checks": self.checks,
                "bad": len(self.bad), "mixed": self.mixed, "torn_starts": self.torn_starts,
                "examples": self.bad[:3], "seconds": round(self.seconds, 1),
                "status": self.status}


def _env(tag: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(CODE), "CKPT_TEST_TAG": tag}


def check_store(sandbox: Path, sc: Scenario) -> tuple[bool, str]:
    """(complete, why) of the committed store in ``sandbox`` (verify, then the program's check)."""
    sys.path.insert(0, str(ROOT))
    from supervisor.errors import StoreError
    from supervisor.store import Store

    try:
        state = Store(sandbox, sandbox / STORE, [sc.top]).verify()
    except StoreError as e:
        return False, f"verify: {e}"
    if state.get("empty") or ("final_status" in state and not (sandbox / STORE / sc.top).exists()):
        return True, "a store without checkpoint files (nothing committed yet; the next start is fresh)"
    cmd = [PY, REWRITER, "--check"] + (["--names", sc.names] if sc.names else []) + [str(sandbox / STORE / sc.top)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    return res.returncode == 0, (res.stdout + res.stderr).strip()


def _count(path: Path, kind: str) -> int:
    if not path.exists():
        return 0
    n = 0
    for line in path.read_text().splitlines():
        try:
            n += json.loads(line).get("event") == kind
        except ValueError:
            continue
    return n


def _torn_starts(report: Path) -> list[str]:
    if not report.exists():
        return []
    return [ln for ln in report.read_text().splitlines() if ln.startswith("TORN")]


def _kill_tree(proc: subprocess.Popen[bytes], tag: str) -> None:
    import psutil

    pids = []
    for p in psutil.process_iter(["environ"]):
        try:
            if (p.info.get("environ") or {}).get("CKPT_TEST_TAG") == tag:
                pids.append(p.pid)
        except psutil.Error:
            continue
    for pid in [proc.pid, *pids]:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def via_run(sc: Scenario, work: Path, *, seconds: float, seed: int, size: int = 1 << 20,
            max_executions: int = 1_000_000, evict_share: float = 0.5, min_commits: int = 0,
            max_seconds: float = 0.0) -> Result:
    """Drive ``sc`` with ``ckpt-supervisor run``; evict at random moments; check every store."""
    rng = random.Random(seed)
    res = Result(sc.name, "run")
    sandbox = work / sc.name
    if sandbox.exists():
        shutil.rmtree(sandbox)
    sandbox.mkdir(parents=True)
    events = work / f"{sc.name}.events.jsonl"
    report = work / f"{sc.name}.report.txt"
    for p in (events, report):
        if p.exists():
            p.unlink()
    spool = work / f"{sc.name}.spool"
    if spool.exists():
        shutil.rmtree(spool)
    tag = f"torture-{sc.name}-{os.getpid()}-{seed}"
    prog = [PY, REWRITER, *sc.program, "--size", str(size), "--report", str(report), "--seed", str(seed)]
    t0 = time.monotonic()
    def more() -> bool:
        spent = time.monotonic() - t0
        if spent < seconds:
            return res.executions < max_executions
        # past the planned time: go on (up to max_seconds) only until min_commits were seen
        return spent < max_seconds and _count(events, "committed") < min_commits

    while more():
        before = _count(events, "committed")
        argv = [PY, "-m", "supervisor", "run", "-q", "--events", str(events), "--kill-grace", "2",
                *sc.args, "--", *prog]
        proc = subprocess.Popen(argv, cwd=sandbox, env=_env(tag), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, start_new_session=True)
        evict = rng.random() < evict_share
        at = time.monotonic() + (math_exp_uniform(rng, 0.001, 1.5) if evict else 30.0)
        # HTCondor's checkpoint signal, for the scenarios that expect it, at a random moment
        ask = time.monotonic() + rng.uniform(0.05, sc.signal_period) if sc.signal_period else None
        try:
            while proc.poll() is None and time.monotonic() < at:
                if ask is not None and time.monotonic() >= ask:
                    ask = None
                    proc.send_signal(signal.SIGUSR2)
                time.sleep(0.001)
            if proc.poll() is None:
                res.evictions += 1
                proc.send_signal(signal.SIGTERM)
            status = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            status = -1
        finally:
            if proc.poll() is None:
                _kill_tree(proc, tag)
            else:
                _kill_tree(proc, tag)  # anything the execution left (there should be nothing)
            stderr = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            if proc.stderr:
                proc.stderr.close()
        res.executions += 1
        if status not in (0, 85, 143, 137, 128 + 10, -15, -9) and "Traceback" in stderr:
            res.bad.append(f"execution ended {status}: {stderr.strip()[-300:]}")
        if status == 85 and (sandbox / STORE).exists():  # HTCondor uploads the store to its spool
            if spool.exists():
                shutil.rmtree(spool)
            shutil.copytree(sandbox / STORE, spool, symlinks=True)
        elif status != 0:  # evicted (or failed): HTCondor starts over in a fresh sandbox
            checked_here = _count(events, "committed") > before and (sandbox / STORE).exists()
            if checked_here:
                ok, why = check_store(sandbox, sc)
                res.checks += 1
                if not ok:
                    res.mixed += 1
                    res.bad.append(why)
            shutil.rmtree(sandbox)
            sandbox.mkdir()
            if spool.exists():
                shutil.copytree(spool, sandbox / STORE, symlinks=True)
            continue
        if _count(events, "committed") > before and (sandbox / STORE).exists():
            ok, why = check_store(sandbox, sc)
            res.checks += 1
            if not ok:
                res.mixed += 1
                res.bad.append(why)
    res.commits = _count(events, "committed")
    res.torn_starts = len(_torn_starts(report))
    res.bad.extend(_torn_starts(report))
    res.seconds = time.monotonic() - t0
    res.status = "done"
    return res


def math_exp_uniform(rng: random.Random, lo: float, hi: float) -> float:
    """A random time from ``lo`` to ``hi``, uniform on a log scale (as many 1-10 ms as 0.1-1 s)."""
    import math

    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def _quote(word: str) -> str:
    return "'" + word.replace("'", "''") + "'" if (" " in word or "'" in word or '"' in word) else word


def via_dryrun(sc: Scenario, work: Path, *, steps: int, seed: int, evict_mean: float = 1.0,
               size: int = 1 << 20, timeout: float = 600.0) -> Result:
    """Drive ``sc`` through ``ckpt-supervisor dry-run`` with random evictions, until the program
    has written ``steps`` checkpoints and exits 0."""
    res = Result(sc.name, "dry-run")
    job = work / f"{sc.name}.dryrun"
    if job.exists():
        shutil.rmtree(job)
    job.mkdir(parents=True)
    events = work / f"{sc.name}.dryrun.events.jsonl"
    report = work / f"{sc.name}.dryrun.report.txt"
    for p in (events, report):
        if p.exists():
            p.unlink()
    words = [PY, "-m", "supervisor", "run", "-q", "--events", str(events), "--kill-grace", "2", *sc.args, "--",
             PY, REWRITER, *sc.program, "--size", str(size), "--report", str(report), "--steps", str(steps),
             "--seed", str(seed)]  # the program's pauses are seeded too: its shortest run is known
    lines = [
        "executable = /usr/bin/env",  # the sandbox gets a copy of the executable: not the venv's python
        "transfer_executable = false",
        'arguments = "' + " ".join(_quote(w) for w in words) + '"',
        f'environment = "PYTHONPATH={CODE}"',
        "should_transfer_files = YES",
        "when_to_transfer_output = ON_EXIT",
        "checkpoint_exit_code = 85",
        "transfer_checkpoint_files = checkpoint.atomic",
        "transfer_output_files = result.txt",
        "job_max_vacate_time = 5",
        "log = job.log",
    ]
    if sc.signal_period:
        lines += ["+WantCheckpointSignal = true", '+CheckpointSig = "SIGUSR2"']
    lines.append("queue")
    (job / "job.submit").write_text("\n".join(lines) + "\n")
    argv = [PY, "-m", "supervisor", "dry-run", "job.submit", "--quiet", "--evict-random", str(evict_mean),
            "--seed", str(seed), "--max-starts", "100000", "--work-dir", str(job / "work"), "--keep"]
    if sc.signal_period:
        argv += ["--checkpoint-period", str(sc.signal_period)]
    tag = f"torture-dry-{sc.name}-{os.getpid()}-{seed}"
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=job, env=_env(tag), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        res.status = f"exit {proc.returncode}: " + out.decode(errors="replace").strip().splitlines()[-1:][0] \
            if out.strip() else f"exit {proc.returncode}"
        if proc.returncode != 0:
            res.bad.append(f"dry run did not finish the job: {res.status}")
    except subprocess.TimeoutExpired:
        _kill_tree(proc, tag)
        res.status = "timeout"
    res.commits = _count(events, "committed")
    res.executions = _count(events, "started") or len(report.read_text().splitlines() if report.exists() else [])
    if report.exists():
        res.executions = len(report.read_text().splitlines())
    res.torn_starts = len(_torn_starts(report))
    res.bad.extend(_torn_starts(report))
    # the store each execution left in its sandbox (--keep): every commit's result, checked
    for sandbox in sorted((job / "work").glob("execute-*")):
        if (sandbox / STORE).exists():
            ok, why = check_store(sandbox, sc)
            res.checks += 1
            if not ok:
                res.mixed += 1
                res.bad.append(why)
    log = job / "job.log"
    if log.exists():
        res.evictions = sum(1 for ln in log.read_text().splitlines() if ln.startswith("004 "))
    res.seconds = time.monotonic() - t0
    return res
