"""Every example of examples/ on a real HTCondor pool, with the .pyz as the job's executable.

Each example's submit file is used as it is, except for the lines docs/howto/ship-the-supervisor.md
says to change on a pool without ckpt-supervisor installed (``executable = ckpt-supervisor.pyz``,
``arguments`` starting with ``run``) and, for GROMACS and John, the macros that make the run short
(one thread, fewer steps; Digits5) and, for DMTCP, the lines that ship DMTCP with the job. Each test asserts what HTCondor reports (event log, condor_q /
condor_history) and the delivered files byte for byte, as the example's README documents them.
"""

from __future__ import annotations

import contextlib
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import psutil
import pytest
from support.helpers import kill_pids, set_macro
from support.poolkit import EXAMPLES, Job, Pool, outcome, output_pairs, pyz_submit, read_events, submitted

from supervisor import dmtcp

pytestmark = pytest.mark.htcondor


@dataclass(frozen=True)
class Example:
    folder: str
    submit: str
    exit_code: int
    files: dict[str, bytes]  # name -> exact bytes delivered
    min_uploads: int = 0
    max_uploads: Optional[int] = None
    starts: Optional[int] = None  # NumJobStarts when it is fixed


EXAMPLE_CASES = [
    # 77.py's own 77 is not a committed checkpoint: the supervisor ends the job with 65 at once
    Example("77", "77.submit", 65, {}, 0, 0, starts=1),
    Example("77-time", "77-time.submit", 0, {"result.txt": b"sum of 1..12 = 78\n"}, 2, 2),
    Example("atomic", "atomic.submit", 0, {"result.txt": b"sum of squares 1..20 = 2870\n"}, 1),
    Example("resume-args", "resume.submit", 0, {"result.txt": b"product after 20 steps = 21\n"}, 1),
    Example("signal-legacy", "legacy.submit", 0, {"result.txt": b"fib(30) = 832040\n"}, 1),
    Example("signal-legacy", "legacy-by-signal.submit", 0, {"result.txt": b"fib(30) = 832040\n"}, 1),
    Example("vuc", "vuc.submit", 0, {"vuc.ckpt": b"10"}, 3, 3),
    Example("vuc-supervised", "vuc.submit", 0, {"vuc.ckpt": b"10"}, 3, 3),
    Example("want-checkpoint-signal", "ckptsig.submit", 0, {"result.txt": b"2**40 = 1099511627776\n"}, 0),
]


def _copy_example(name: str, folder: Path) -> None:
    for item in (EXAMPLES / name).iterdir():
        if item.is_file():
            shutil.copy2(item, folder / item.name)


def _run_example(pool: Pool, pyz: Path, folder: Path, ex: Example, *, edit: Callable[[str], str] = lambda s: s,
                 timeout: float = 240, check: Callable[[Job], None] = lambda j: None) -> None:
    _copy_example(ex.folder, folder)
    shutil.copy2(pyz, folder / "ckpt-supervisor.pyz")
    text = edit(pyz_submit((folder / ex.submit).read_text()))
    (folder / ex.submit).write_text(text)
    with submitted(pool, folder, ex.submit) as job:
        end = job.wait_end(timeout)
        res = outcome(job, set())
        ctx = job.context()
        check(job)
    assert end.code == 5, f"the job did not terminate normally\n{ctx}"
    assert res.exit_code == ex.exit_code, ctx
    n = res.uploads
    assert n >= ex.min_uploads and (ex.max_uploads is None or n <= ex.max_uploads), f"{n} checkpoint uploads\n{ctx}"
    # one 040 pair per checkpoint upload and one for the final transfer (no evictions here)
    assert output_pairs(job.events()) == n + 1, f"CheckpointNumber says {n} uploads\n{ctx}"
    if ex.starts is not None:
        assert res.extra["NumJobStarts"] == str(ex.starts), ctx
    for name, data in ex.files.items():
        got = (folder / name).read_bytes() if (folder / name).exists() else None
        assert got == data, f"{name}: {got!r}, documented {data!r}\n{ctx}"


@pytest.mark.timeout(300)
@pytest.mark.parametrize("ex", EXAMPLE_CASES, ids=[f"{e.folder}/{e.submit}" for e in EXAMPLE_CASES])
def test_example_completes_with_its_documented_result(pool: Pool, pyz: Path, folder: Path, ex: Example) -> None:
    """Rule: every example's submit file, shipped with the .pyz, ends on a real pool as its
    README says (exit code, result bytes), never held, with one CheckpointNumber per upload pair."""
    if ex.folder == "vuc" and not any(os.access(f"{d}/python", os.X_OK) for d in ("/usr/bin", "/bin")):
        pytest.skip("vuc.py starts with #!/usr/bin/env python and this execute point has no 'python' "
                    "in /usr/bin or /bin (a job gets no PATH): install python-is-python3")
    _run_example(pool, pyz, folder, ex)


# Long enough (about 20 s with one thread on a quiet machine) for the tier pool's checkpoint
# signal to come first: its 6 s period is counted by the startd's own timers, and a quiet CI run
# saw gmx finish 16,000 steps in 8.4 s with no signal yet. gromacs.submit lists checkpoint.atomic
# in transfer_output_files, and a run that ends before its first checkpoint has none, which
# HTCondor's final transfer turns into hold 12/2.
GROMACS_STEPS = 40000


@pytest.mark.timeout(300)
def test_gromacs_example(pool: Pool, pyz: Path, folder: Path, tmp_path: Path) -> None:
    """Rule: the GROMACS example (one thread, a short run) finishes with exit 0 on the pool and
    delivers trajectory, energies and final coordinates byte-identical to an uninterrupted run."""
    gmx = shutil.which("gmx")
    if gmx is None:
        pytest.skip("gmx is not installed (apt-get install gromacs)")
    _copy_example("gromacs", folder)
    env = dict(os.environ, NSTEPS=str(GROMACS_STEPS), GMX_MAXBACKUP="-1")
    subprocess.run(["sh", "prepare.sh"], cwd=folder, env=env, check=True, capture_output=True, timeout=120)
    reference = tmp_path / "reference"
    reference.mkdir()
    shutil.copy2(folder / "topol.tpr", reference)
    ex = Example("gromacs", "gromacs.submit", 0, {}, 1)
    ref = subprocess.Popen([gmx, "-quiet", "mdrun", "-s", "topol.tpr", "-nt", "1", "-reprod", "-cpi", "state.cpt"],
                           cwd=reference, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _run_example(pool, pyz, folder, ex, edit=lambda s: set_macro(s, "threads", "1"))
        assert ref.wait(timeout=240) == 0, "the uninterrupted reference run failed"
    finally:
        if ref.poll() is None:
            ref.kill()
            ref.wait()
    for name in ("traj.trr", "traj_comp.xtc", "ener.edr", "confout.gro"):
        assert (folder / name).is_file(), f"{name} was not delivered"
        assert filecmp.cmp(folder / name, reference / name, shallow=False), f"{name} differs from the reference run"


@pytest.mark.timeout(300)
def test_john_example(pool: Pool, pyz: Path, folder: Path) -> None:
    """Rule: the John the Ripper example (Digits5) finishes with exit 0 on the pool and delivers a
    john.pot holding the documented cracked password."""
    if shutil.which("john") is None and not os.access("/usr/sbin/john", os.X_OK):
        pytest.skip("john is not installed (apt-get install john)")
    _copy_example("john", folder)
    subprocess.run(["sh", "prepare.sh"], cwd=folder, check=True, capture_output=True, timeout=60)
    ex = Example("john", "john.submit", 0, {}, 0)
    _run_example(pool, pyz, folder, ex, edit=lambda s: set_macro(s, "mode", "Digits5"))
    pot = (folder / "john.pot").read_text()
    assert "$1$aaaaaaaa$LTe87lnvK04LKv6YKnHUK/:7391" in pot, pot


# --- examples/dmtcp: a program with no checkpoint at all, under run --dmtcp ---------------------

MEMLOOP_STEPS = 120  # memloop.submit's: 6 s of work uninterrupted


def _dmtcp_ready(folder: Path) -> Callable[[str], str]:
    """Make ``folder`` ship DMTCP as users do (the how-to): the installed DMTCP packed into
    dmtcp.tar.gz, the store shipped empty. Returns the edit of memloop.submit (after
    :func:`pyz_submit`): --dmtcp-prefix dmtcp.tar.gz, the supervisor's events appended to
    ckpt-events.jsonl in the job directory, the archive shipped, this machine's Microarch."""
    found = dmtcp.available()
    if found is None:
        pytest.skip("DMTCP is not installed (no dmtcp_launch on PATH or in $CKPT_DMTCP_PREFIX)")
    with tarfile.open(folder / "dmtcp.tar.gz", "w:gz") as tar:
        tar.add(str(Path(found).parent), arcname="dmtcp")
    (folder / "checkpoint.atomic").mkdir()

    def edit(text: str) -> str:
        text = text.replace("run --dmtcp ", f"run --dmtcp --dmtcp-prefix dmtcp.tar.gz --events {folder}/ckpt-events.jsonl ", 1)
        text = re.sub(r"(?m)^(transfer_input_files\s*=.*)$", r"\1, dmtcp.tar.gz", text)
        return set_macro(text, "requirements", f'(Microarch == "{dmtcp.microarch()}")')
    return edit


def _memloop_reference(tmp_path: Path) -> subprocess.Popen[bytes]:
    """An uninterrupted ``python3 memloop.py 120``, started at once (it runs while the job does)."""
    ref = tmp_path / "reference"
    ref.mkdir()
    shutil.copy2(EXAMPLES / "dmtcp" / "memloop.py", ref)
    return subprocess.Popen([sys.executable, "memloop.py", str(MEMLOOP_STEPS)], cwd=ref, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)


def _supervisor_events(folder: Path) -> list[dict[str, object]]:
    path = folder / "ckpt-events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _sandboxes(job: Job) -> list[str]:
    """Every execution's sandbox (the 001 events' CondorScratchDir)."""
    return [m.group(1) for e in read_events(job.log) if e.code == 1
            for m in [re.search(r'CondorScratchDir = "([^"]+)"', e.body)] if m]


def _job_processes(markers: list[str]) -> dict[int, float]:
    """Processes whose working directory or command line names one of ``markers`` (the job's
    sandboxes, its DMTCP work directory, its job directory), by PID and start time."""
    out: dict[int, float] = {}
    for p in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            where = [p.cwd(), *p.cmdline()]
            if any(m in w for m in markers for w in where):
                for q in [p, *p.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        out[q.pid] = q.create_time()
    return out


def _markers(job: Job, folder: Path) -> list[str]:
    """What names the job's processes: its sandboxes and the DMTCP work directory the supervisor's
    events name (dmtcp_launch, dmtcp_restart)."""
    work = {str(e["workdir"]) for e in _supervisor_events(folder) if "workdir" in e}
    return [*_sandboxes(job), *sorted(work)]


def _alive(seen: dict[int, float]) -> list[int]:
    out = []
    for pid, started in seen.items():
        with contextlib.suppress(psutil.Error):
            p = psutil.Process(pid)
            if p.create_time() == started and p.status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
    return out


@pytest.mark.timeout(300)
def test_dmtcp_example(pool: Pool, pyz: Path, folder: Path, tmp_path: Path) -> None:
    """Rule (issue 16): examples/dmtcp, as its submit file says (DMTCP shipped as an archive with
    --dmtcp-prefix), ends with exit 0 on a pool whose MachineMaxVacateTime is 60 s (never held
    for its eviction budget), and memloop.out equals an uninterrupted run's, byte for byte."""
    edit = _dmtcp_ready(folder)
    ref = _memloop_reference(tmp_path)
    try:
        ex = Example("dmtcp", "memloop.submit", 0, {}, 0, 0, starts=1)
        _run_example(pool, pyz, folder, ex, edit=edit)
        expected, _ = ref.communicate(timeout=120)
    finally:
        if ref.poll() is None:
            ref.kill()
            ref.wait()
    assert (folder / "memloop.out").read_bytes() == expected


@pytest.mark.timeout(300)
def test_dmtcp_example_vacated_resumes_from_its_images(pool: Pool, pyz: Path, folder: Path, tmp_path: Path) -> None:
    """Rule (issue 16): condor_vacate_job while the DMTCP example runs: the supervisor asks DMTCP
    for an eviction checkpoint and commits the images, HTCondor uploads them, and the next
    execution (in a new sandbox) resumes the program from them; the job is never held, ends with
    exit 0, its memloop.out is byte-identical to an uninterrupted run's, and no coordinator or
    program process of the job is left on the machine."""
    edit = _dmtcp_ready(folder)
    _copy_example("dmtcp", folder)
    shutil.copy2(pyz, folder / "ckpt-supervisor.pyz")
    (folder / "memloop.submit").write_text(edit(pyz_submit((folder / "memloop.submit").read_text())))
    ref = _memloop_reference(tmp_path)
    seen: dict[int, float] = {}
    try:
        with submitted(pool, folder, "memloop.submit") as job:
            def running() -> bool:
                # the program printed 10 of its 120 lines: vacate now, with 5.5 s of work left
                seen.update(_job_processes(_markers(job, folder)))
                out = job.sandbox_file("_condor_stdout")
                return out is not None and out.read_bytes().count(b"\n") >= 10
            job.wait_for_condition(running, "memloop.py printing its 10th line", timeout=180)
            job.vacate()
            def ended() -> bool:
                seen.update(_job_processes(_markers(job, folder)))
                return any(e.code in (5, 9, 12) for e in job.events())
            job.wait_for_condition(ended, "the job ending", timeout=240)
            res = outcome(job, set())
            ctx = job.context()
            sandboxes = _sandboxes(job)
        expected, _ = ref.communicate(timeout=120)
        events = _supervisor_events(folder)
        ctx += "\n--- supervisor events:\n" + "\n".join(json.dumps(e) for e in events)
        assert res.state == "terminated", f"{res}\n{ctx}"
        assert res.exit_code == 0, ctx
        assert res.evictions >= 1, ctx
        assert (folder / "memloop.out").read_bytes() == expected, ctx
        # the eviction made a DMTCP checkpoint, and a later execution restarted from its images
        kinds = [e["event"] for e in events]
        assert "dmtcp_checkpoint" in kinds, ctx
        assert "dmtcp_restart" in kinds[kinds.index("dmtcp_checkpoint"):], ctx
        assert len(set(sandboxes)) >= 2, f"every execution has its own sandbox path: {sandboxes}\n{ctx}"
        ckpt = next(e for e in events if e["event"] == "dmtcp_checkpoint")
        print(f"dmtcp on the pool, job {job.cluster}: image {ckpt['bytes']} bytes in {ckpt['seconds']} s; "
              f"NumJobStarts {res.extra.get('NumJobStarts')}; sandboxes {sandboxes}; "
              f"{len(seen)} processes of the job watched")
        assert seen, "no process of the job was ever seen: the leftover check would prove nothing"
        # nothing of the job is left: no coordinator, no program, no work directory
        token = json.loads((folder / "checkpoint.atomic" / "state.json").read_text())["dmtcp_token"]
        workdir = f"/tmp/ckpt-dmtcp-{token}"
        seen.update(_job_processes([workdir, *sandboxes]))
        assert not os.path.exists(workdir), f"the DMTCP work directory {workdir} was left behind"
        left = _alive(seen)
        assert left == [], f"processes of the job outlived it: {left}\n{ctx}"
    finally:
        if ref.poll() is None:
            ref.kill()
            ref.wait()
        kill_pids(_alive(seen))  # only processes of this job (its sandboxes and work directory)
