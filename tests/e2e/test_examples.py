"""Every folder of examples/ runs to completion under ``ckpt-supervisor dry-run``, evicted twice.

Each case runs in a temporary copy of its folder (the dry run delivers outputs into the submit
directory) with ``--work-dir`` in tmp, all cases at once in threads (each dry run is a child
process; four at a time, about 30 s in all on two cores). The tests
assert what a user sees: the dry run's exit status, its summary line and the delivered answer.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.helpers import job_environment

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
# Real-application examples with their own prepare scripts and tests (marker "realapp").
NOT_HERE = {"gromacs", "john", "dmtcp"}  # dmtcp needs DMTCP: tests/dmtcp runs it
WORKERS = 4


@dataclass(frozen=True)
class Case:
    folder: str
    submit: str
    args: tuple[str, ...]  # dry-run options: the evictions, the checkpoint period
    answer_file: str
    answer: str
    status: int = 0
    min_checkpoints: int = 1


CASES = (
    # 77.py can only exit 77: the supervisor reserves the checkpoint code and ends the job (65)
    # instead of letting HTCondor restart it forever.
    Case("77", "77.submit", (), "77.out", "Now exiting with code 77.", status=65,
         min_checkpoints=0),
    # Each last eviction comes before the job's shortest possible end, its sleeps alone (how much
    # work an eviction throws away only adds to that), so both evictions land however fast the
    # machine: 77-time ends no sooner than 3.5 s (evicted at 1.5 s, before its checkpoint at step
    # 8, then 8 steps of 0.25 s), atomic 3.6 s, signal-legacy 4.5 s (its first checkpoint comes at
    # 2 s), resume-args 2.2 s, vuc 10 s.
    Case("77-time", "77-time.submit", ("--evict-at", "1.5", "--evict-at", "3.0"),
         "result.txt", "sum of 1..12 = 78"),
    Case("vuc", "vuc.submit", ("--evict-at", "4.6", "--evict-at", "8.5"), "vuc.ckpt", "10"),
    Case("vuc-supervised", "vuc.submit", ("--evict-at", "4", "--evict-at", "9"), "vuc.ckpt", "10"),
    Case("atomic", "atomic.submit", ("--evict-at", "1.3", "--evict-at", "3.1"),
         "result.txt", "sum of squares 1..20 = 2870"),
    Case("signal-legacy", "legacy.submit", ("--evict-at", "1.5", "--evict-at", "4.0"),
         "result.txt", "fib(30) = 832040"),
    Case("signal-legacy", "legacy-by-signal.submit", ("--evict-at", "1.5", "--evict-at", "4.0"),
         "result.txt", "fib(30) = 832040"),
    Case("resume-args", "resume.submit", ("--evict-at", "1.2", "--evict-at", "1.9"),
         "result.txt", "product after 20 steps = 21"),
    Case("want-checkpoint-signal", "ckptsig.submit",
         ("--checkpoint-period", "1.5", "--evict-at", "2.8"), "result.txt", "2**40 = 1099511627776"),
    # fails once (exit 3) after its checkpoint at 10; max_retries requeues it and the next
    # execution resumes from 10
    Case("retry", "retry.submit", (), "result.txt", "sum of 1..20 = 210", min_checkpoints=3),
)


@dataclass
class Result:
    status: int
    stdout: str
    stderr: str
    seconds: float
    folder: Path


def _run(case: Case, tmp: Path) -> Result:
    folder = tmp / f"{case.folder}-{case.submit}"
    shutil.copytree(EXAMPLES / case.folder, folder)
    for name in (case.answer_file,):  # never let a stale answer from the source folder count
        (folder / name).unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "supervisor", "dry-run", case.submit, *case.args,
           "--work-dir", str(tmp / f"work-{case.folder}-{case.submit}"), "--quiet"]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=folder, env=job_environment(), capture_output=True, text=True,
                          timeout=100, check=False)
    return Result(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start, folder)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[Case, Result]:
    if shutil.which("ckpt-supervisor", path=job_environment()["PATH"]) is None:
        pytest.fail("ckpt-supervisor is not on PATH: install the package (pip install -e .)")
    tmp = tmp_path_factory.mktemp("examples")
    # A few at a time: on a small loaded machine, Python start-up times stretch and the examples'
    # timings (sub-second steps, evictions at fixed seconds) would drift. Longest first.
    order = sorted(CASES, key=lambda c: not c.folder.startswith("vuc"))
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {case: pool.submit(_run, case, tmp) for case in order}
        return {case: f.result() for case, f in futures.items()}


def _summary(stdout: str) -> dict[str, int]:
    match = re.search(r"executions (\d+), runs (\d+), checkpoints (\d+), evictions (\d+)", stdout)
    assert match, f"no summary line in:\n{stdout}"
    return dict(zip(("executions", "runs", "checkpoints", "evictions"), map(int, match.groups())))


@pytest.mark.timeout(150)
@pytest.mark.parametrize("case", CASES, ids=[f"{c.folder}/{c.submit}" for c in CASES])
def test_example_runs_to_its_answer(case: Case, results: dict[Case, Result]) -> None:
    """The example finishes under the dry run with its documented status and answer, evicted
    as its README says, and (when supervised) with at least one checkpoint uploaded."""
    res = results[case]
    context = f"{case.folder}/{case.submit} ({res.seconds:.1f}s):\n{res.stdout}\n{res.stderr}"
    assert res.status == case.status, context
    answer = (res.folder / case.answer_file).read_text().strip()
    assert case.answer in answer, context
    summary = _summary(res.stdout)
    assert summary["checkpoints"] >= case.min_checkpoints, context
    evictions = sum(1 for a in case.args if a == "--evict-at")
    assert summary["evictions"] == evictions, context
    if case.folder == "retry":
        assert ", requeues 1\n" in res.stdout and summary["executions"] == 2, context
        assert "starting after 10 (sum 55); earlier ends of this job: 1" in (
            res.folder / "retry.out").read_text(), context


def test_every_example_is_run() -> None:
    """Each folder of examples/ (but the real-application ones) has a README.md, a submit file
    and a case above for every submit file, and each README shows a dry-run command."""
    folders = {p.name for p in EXAMPLES.iterdir() if p.is_dir()} - NOT_HERE
    tested = {(c.folder, c.submit) for c in CASES}
    for name in sorted(folders):
        folder = EXAMPLES / name
        readme = folder / "README.md"
        assert readme.is_file(), f"examples/{name} has no README.md"
        assert "ckpt-supervisor dry-run" in readme.read_text(), f"examples/{name}: no command"
        submits = sorted(p.name for p in folder.glob("*.submit"))
        assert submits, f"examples/{name} has no submit file"
        for submit in submits:
            assert (name, submit) in tested, f"examples/{name}/{submit} is not run by this test"


def test_readme_commands_match_the_test() -> None:
    """The dry-run command in each example's README is the one this test runs."""
    for case in CASES:
        if case.submit.startswith("legacy-by-signal"):
            continue  # the README shows the main submit file
        text = (EXAMPLES / case.folder / "README.md").read_text()
        command = " ".join(["ckpt-supervisor dry-run", case.submit, *case.args])
        assert command in text, f"examples/{case.folder}/README.md should show: {command}"


SUBMITS = sorted(EXAMPLES.glob("*/*.submit"))


@pytest.mark.parametrize("submit", SUBMITS, ids=[f"{p.parent.name}/{p.name}" for p in SUBMITS])
def test_example_passes_check(submit: Path) -> None:
    """Every example's submit file, GROMACS and John included, passes ``ckpt-supervisor check``:
    exit 0 and no error (warnings allowed: the examples use an installed ckpt-supervisor), and
    none uses ON_EXIT_OR_EVICT but the --checkpoint-on-evict one (examples/dmtcp); every supervised
    one has the hold policy for the supervisor's own failures."""
    proc = subprocess.run([sys.executable, "-m", "supervisor", "check", str(submit)],
                          capture_output=True, text=True, timeout=60, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ": 0 errors," in proc.stdout and "[no-hold-policy]" not in proc.stdout, proc.stdout
    text = "".join(line for line in submit.read_text().splitlines(True) if not line.startswith("#"))
    if "--checkpoint-on-evict" not in text:  # only that recipe needs the eviction upload
        assert "ON_EXIT_OR_EVICT" not in text
