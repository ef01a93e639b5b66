#!/usr/bin/env python3
"""Soak: a legacy program under ``ckpt-supervisor run``, with random checkpoint signals, evictions
and kill -9 of the supervisor; the store is checked after every execution, and every job's final
result is compared byte for byte with an uninterrupted computation.

The program (``soak.py worker``) computes a hash chain, h(i+1) = sha256(h(i) || i), one step every
``--step-time`` seconds, and on SIGUSR1 rewrites its checkpoint file *in place, slowly* (a legacy
program's habit), so a half-written checkpoint is on disk for a while. It resumes from the
checkpoint if one is there and refuses to start from a damaged one (exit 3). The result file holds
the final hash; any lost, mixed or stale checkpoint would change it.

Each execution of the job ends one of four ways, drawn at random after a random delay:

* ``signal``: HTCondor's checkpoint signal (SIGUSR2, translated to SIGUSR1): expect 85, then the
  same sandbox is reused (HTCondor restarts in place) and the store is "uploaded" to the spool;
* ``evict``: the soft kill (SIGTERM): the program dies from it; the next execution starts in a
  fresh sandbox from the spool (a new machine);
* ``kill9``: SIGKILL of the supervisor and its whole tree at a random moment; ``signal-kill9``:
  the same 0-0.3 s after a checkpoint signal, so it lands in the checkpoint's write or in the
  commit (4 MB): the local store is checked (stale staging cleaned, verify) and the next execution starts
  either in place (half of the time: it must recover from the interrupted commit) or from the spool;
* ``none``: nothing; the program finishes and the job ends with 0.

After every execution: the status is one of those allowed for the action (never 70, 74, 65, never
a death of the supervisor by a signal other than our SIGKILL; 85 only with a store that verifies;
3, the program refusing a damaged checkpoint, only when no committed store existed: a restart in
place after a crash before the first commit leaves the program's own half-written file), the store verifies after cleanup, its
committed checkpoint is complete, and its sequence never goes backwards.

Usage::

    python bench/soak.py --hours 0.17            # about 10 minutes
    python bench/soak.py --seconds 60 --seed 3   # a short one
    python bench/soak.py --hours 1 --json        # the summary as JSON

``tests/reliability/test_soak.py`` runs ``run()`` for a few seconds with several seeds.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STORE = "checkpoint.atomic"
TAG = "CKPT_SOAK_TAG"
SEED_HASH = hashlib.sha256(b"soak").hexdigest()


# ------------------------------------------------------------------ the program


def chain(h: str, i: int) -> str:
    return hashlib.sha256(f"{h}:{i}".encode()).hexdigest()


def expected(steps: int) -> str:
    h = SEED_HASH
    for i in range(steps):
        h = chain(h, i)
    return h


def parse_ckpt(text: str) -> tuple[int, str] | None:
    """(step, hash) of a complete checkpoint, else None."""
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or lines[-2] != f"end {lines[0]}":
        return None
    try:
        return int(lines[0]), lines[1]
    except ValueError:
        return None


def worker(args: argparse.Namespace) -> int:
    pending: list[int] = []
    signal.signal(signal.SIGUSR1, lambda s, f: pending.append(s))
    step, h = 0, SEED_HASH
    if os.path.exists("state"):
        with open("state") as f:
            parsed = parse_ckpt(f.read())
        if parsed is None:
            print("worker: damaged checkpoint, refusing to start", file=sys.stderr, flush=True)
            return 3
        step, h = parsed
    print(f"start {step}", flush=True)
    while step < args.steps:
        if pending:
            pending.clear()
            text = f"{step}\n{h}\n" + "x" * args.ckpt_bytes + f"\nend {step}\n"
            with open("state", "w") as f:  # in place, slowly
                for k in range(0, len(text), len(text) // 4 + 1):
                    f.write(text[k:k + len(text) // 4 + 1])
                    f.flush()
                    time.sleep(args.ckpt_time / 4)
            with open("ckpt.done", "w") as f:
                f.write(str(step))
        time.sleep(args.step_time)
        h = chain(h, step)
        step += 1
        with open("progress", "w") as f:
            f.write(str(step))
    # Python restores SIG_DFL while it shuts down: a SIGUSR1 then would kill the finished program
    # (status 138, recorded as its final status). Legacy programs have such windows; this soak
    # measures the supervisor, so the program closes it.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    with open("result", "w") as f:
        f.write(h + "\n")
    print(f"done {step}", flush=True)
    return 0


# ------------------------------------------------------------------ the driver


@dataclass
class Report:
    seconds: float = 0.0
    jobs: int = 0
    executions: int = 0
    actions: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    commits: int = 0
    store_checks: int = 0
    interrupted_commits_recovered: int = 0
    steps_lost: int = 0
    time_lost: float = 0.0
    failures: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"soak {self.seconds:.0f} s: {self.jobs} jobs finished, {self.executions} executions "
                f"({dict(self.actions)}), {self.commits} checkpoints committed, {self.store_checks} store "
                f"checks, {self.interrupted_commits_recovered} interrupted commits recovered, "
                f"{self.steps_lost} steps lost ({self.time_lost:.1f} s of work), statuses "
                f"{dict(sorted(self.statuses.items()))}, failures {len(self.failures)}")


def _tagged(tag: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if f"{TAG}={tag}".encode() in f.read().split(b"\0"):
                    out.append(int(entry))
        except OSError:
            continue
    return out


def _kill_tagged(tag: str) -> None:
    for _ in range(50):
        pids = _tagged(tag)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def check_store(sandbox: Path, last_seq: int, report: Report, where: str) -> int:
    """Clean leftovers, verify; the committed checkpoint complete; sequence monotonic."""
    from supervisor.errors import StoreError
    from supervisor.store import Store

    report.store_checks += 1
    if not (sandbox / STORE).exists():
        if last_seq:
            report.failures.append(f"{where}: the store vanished (last sequence {last_seq})")
        return last_seq
    try:
        store = Store(sandbox, sandbox / STORE, ["state"])
        if store.cleanup_staging():
            report.interrupted_commits_recovered += 1
        state = store.verify()
    except StoreError as exc:
        report.failures.append(f"{where}: store does not verify: {exc}")
        return last_seq
    seq = int(state.get("sequence", 0))
    if seq < last_seq:
        report.failures.append(f"{where}: sequence went back from {last_seq} to {seq}")
    if "final_status" not in state or (sandbox / STORE / "state").exists():
        text = (sandbox / STORE / "state").read_text()
        if parse_ckpt(text) is None:
            report.failures.append(f"{where}: committed checkpoint is incomplete: {text[:30]!r}")
    return max(seq, last_seq)


def run(seconds: float, *, seed: int = 0, steps: int = 200, step_time: float = 0.01, root: Path | None = None,
        verbose: bool = False, min_executions: int = 0) -> Report:
    """Soak for ``seconds``, finishing the job under way; past them, start more jobs only until
    ``min_executions`` executions were run (a slow machine runs fewer in the same time)."""
    rng = random.Random(seed)
    report = Report()
    want = expected(steps)
    base = Path(tempfile.mkdtemp(prefix="ckpt-soak-", dir=root))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker_cmd = [sys.executable, str(Path(__file__).resolve()), "worker", "--steps", str(steps),
                  "--step-time", str(step_time)]
    args = ["--checkpoint", "state", "--trigger-signal", "SIGUSR2", "--job-signal", "SIGUSR1",
            "--complete-when", "marker=ckpt.done", "--kill-grace", "2", "-q"]
    t_start = time.monotonic()
    try:
        while time.monotonic() - t_start < seconds or report.executions < min_executions:
            # one job: until it finishes with 0
            job = report.jobs
            spool = base / f"job{job}-spool"
            spool.mkdir()
            sandbox = None
            last_seq = 0  # the sequence of the store in the current sandbox
            spool_seq = 0  # the sequence last uploaded (at an 85 exit)
            resume_at = 0
            for execution in range(10_000):
                if sandbox is None:  # a new machine: a fresh sandbox with the spooled store
                    sandbox = base / f"job{job}-exec{execution}"
                    sandbox.mkdir()
                    last_seq = spool_seq  # a local commit that was never uploaded is gone
                    if (spool / STORE).exists():
                        shutil.copytree(spool / STORE, sandbox / STORE, symlinks=True)
                tag = f"{seed}-{job}-{execution}-{os.getpid()}"
                had_store = (sandbox / STORE).exists()
                action = rng.choice(["signal", "signal", "evict", "kill9", "signal-kill9", "signal-kill9",
                                     "none"]) if execution < 40 else "none"
                delay = rng.uniform(0.05, 1.5)
                report.executions += 1
                report.actions[action] += 1
                proc = subprocess.Popen([sys.executable, "-m", "supervisor", "run", *args, "--", *worker_cmd],
                                        cwd=sandbox, env={**env, TAG: tag}, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, start_new_session=True)
                try:
                    first = proc.stdout.readline()  # "start N": the program's handler exists
                    if action != "none":
                        try:
                            proc.wait(timeout=delay)
                        except subprocess.TimeoutExpired:
                            if action == "signal-kill9":  # aim at the checkpoint write and the commit
                                os.kill(proc.pid, signal.SIGUSR2)
                                time.sleep(rng.uniform(0.0, 0.3))
                            sig = {"signal": signal.SIGUSR2, "evict": signal.SIGTERM}.get(action, signal.SIGKILL)
                            os.kill(proc.pid, sig)
                            if sig == signal.SIGKILL:
                                _kill_tagged(tag)  # the execute point crashed: everything dies
                    out, err = proc.communicate(timeout=120)
                    out = first + out
                finally:
                    if proc.poll() is None:
                        proc.kill()
                        proc.wait()
                    _kill_tagged(tag)
                status = proc.returncode
                report.statuses[status] += 1
                where = f"seed {seed} job {job} execution {execution} ({action}, status {status})"
                first = next((ln for ln in out.splitlines() if ln.startswith("start ")), None)
                if first is not None:
                    start = int(first.split()[1])
                    if start < resume_at:
                        report.failures.append(f"{where}: resumed at {start}, below the committed {resume_at}")
                reached = resume_at
                with contextlib.suppress(OSError, ValueError):
                    reached = int((sandbox / "progress").read_text())
                if status == 3 and had_store:
                    report.failures.append(f"{where}: the program saw a damaged checkpoint although a "
                                           "committed one should have been restored")
                if status < 0 and status != -signal.SIGKILL:
                    report.failures.append(f"{where}: the supervisor died from signal {-status}")
                if status in (70, 74, 65) or "Traceback" in err or "internal error" in err:
                    report.failures.append(f"{where}: {err.strip()[-300:]}")
                last_seq = check_store(sandbox, last_seq, report, where)
                if status == 85:
                    report.commits += 1
                    if not (sandbox / STORE).exists():
                        report.failures.append(f"{where}: 85 without a store")
                    else:  # the upload to SPOOL; HTCondor restarts in place
                        shutil.rmtree(spool / STORE, ignore_errors=True)
                        shutil.copytree(sandbox / STORE, spool / STORE, symlinks=True)
                        resume_at = _committed_step(sandbox)
                        spool_seq = last_seq
                    continue
                if status == 0:
                    result = (sandbox / "result").read_text().strip() if (sandbox / "result").exists() else None
                    if result != want:
                        report.failures.append(f"{where}: result {result!r} differs from an uninterrupted "
                                               f"run's {want!r}")
                    break
                if status == 3 and not had_store:
                    # the program's own half-written file after a crash in place, before any
                    # commit: not the supervisor's to repair; HTCondor would start elsewhere
                    report.actions["refused own half-written file"] += 1
                    shutil.rmtree(sandbox, ignore_errors=True)
                    sandbox = None
                    continue
                if action == "none":
                    report.failures.append(f"{where}: an undisturbed execution did not finish: {err[-300:]}")
                    break
                # evicted or crashed: work since the last upload is lost
                report.steps_lost += max(0, reached - resume_at)
                if action.endswith("kill9") and rng.random() < 0.5:
                    continue  # restart in place: the supervisor must recover the local store
                shutil.rmtree(sandbox, ignore_errors=True)
                sandbox = None
            report.jobs += 1
            if verbose:
                print(report.line(), flush=True)
            shutil.rmtree(base, ignore_errors=True)
            base.mkdir(parents=True, exist_ok=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    report.seconds = time.monotonic() - t_start
    report.time_lost = report.steps_lost * step_time
    return report


def _committed_step(sandbox: Path) -> int:
    with contextlib.suppress(OSError):
        parsed = parse_ckpt((sandbox / STORE / "state").read_text())
        if parsed:
            return parsed[0]
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    w = sub.add_parser("worker", help="the supervised program (internal)")
    w.add_argument("--steps", type=int, default=200)
    w.add_argument("--step-time", type=float, default=0.01)
    w.add_argument("--ckpt-bytes", type=int, default=4_000_000)
    w.add_argument("--ckpt-time", type=float, default=0.1)
    parser.add_argument("--hours", type=float, default=None, help="how long to soak, in hours")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to soak, in seconds (default 60)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=200, help="steps of one job (default 200)")
    parser.add_argument("--step-time", type=float, default=0.01)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true", help="a line after every job")
    args = parser.parse_args()
    if args.command == "worker":
        return worker(args)
    seconds = args.hours * 3600 if args.hours is not None else args.seconds
    report = run(seconds, seed=args.seed, steps=args.steps, step_time=args.step_time, verbose=args.verbose)
    if args.json:
        out = {k: v for k, v in report.__dict__.items() if not k.startswith("_")}
        print(json.dumps(out, default=dict, indent=1))
    else:
        print(report.line())
        for failure in report.failures[:20]:
            print("FAIL", failure)
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
