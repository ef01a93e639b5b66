"""GROMACS under ``ckpt-supervisor run`` inside the dry run: evicted, crashed, same answer.

The example examples/gromacs (gromacs.submit, prepare.sh) runs unchanged except for two submit
macros: ``threads = 1`` (OpenMP threads that spin at barriers slow down many times over when the
test machine's cores are shared) and the shorter run that ``NSTEPS`` gives prepare.sh. The answer
is checked against an uninterrupted ``gmx mdrun`` of the same topol.tpr with the same thread
count: trajectory (.trr, .xtc), energies (.edr) and final coordinates (confout.gro) must be
byte-identical after every kind of interruption.

Every eviction is aimed at its moment by the dry run itself (``--evict-on checkpoint-signal``,
``upload``, ``run+S`` for mid-run), whatever the machine's speed; the one crash comes at a time
that falls after those evictions and well before the end. (Times derived from the uninterrupted
run's speed missed the end of the job when the reference ran slower than the dry run did.)
"""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.realapp_util import (
    DryRun,
    copy_example,
    dry_run,
    ensure_entry_point,
    require,
    run_measured,
    set_macro,
)

pytestmark = pytest.mark.realapp

NSTEPS = 15000  # 30 ps; about 7-15 s with one thread
PERIOD = 2.0  # seconds from each start to the dry run's checkpoint signal
# After the first eviction (at PERIOD) and the second (PERIOD / 2 into the next run), the third
# execution starts by ~PERIOD * 1.5 + 1 s even on a loaded machine; the job, 7-15 s of gmx
# work, runs well past this.
CRASH_AT = 5.0
RESULTS = ("traj.trr", "traj_comp.xtc", "ener.edr", "confout.gro")


@dataclass(frozen=True)
class Prepared:
    inputs: Path  # examples/gromacs with topol.tpr
    reference: Path  # outputs of an uninterrupted run
    seconds: float  # its wall time


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    gmx = require("gmx")
    ensure_entry_point()
    base = tmp_path_factory.mktemp("gromacs")
    inputs = copy_example("gromacs", base)
    env = dict(os.environ, NSTEPS=str(NSTEPS), GMX_MAXBACKUP="-1")
    subprocess.run(["sh", "prepare.sh"], cwd=inputs, env=env, check=True, capture_output=True,
                   timeout=60)
    set_macro(inputs / "gromacs.submit", "threads", "1")
    reference = base / "reference"
    reference.mkdir()
    shutil.copy2(inputs / "topol.tpr", reference)
    # The same mdrun command line as the submit file, with one thread.
    status, seconds, _ = run_measured(
        [gmx, "mdrun", "-s", "topol.tpr", "-nt", "1", "-reprod", "-cpi", "state.cpt"], reference,
        env=env, timeout=240)
    assert status == 0, f"the uninterrupted reference run failed ({status})"
    return Prepared(inputs, reference, seconds)


def _job(prepared: Prepared, tmp_path: Path) -> Path:
    folder = tmp_path / "job"
    shutil.copytree(prepared.inputs, folder)
    return folder


def _assert_same_results(res: DryRun, prepared: Prepared) -> None:
    for name in RESULTS:
        got = res.folder / name
        assert got.is_file(), f"{name} was not delivered\n{res.context()}"
        assert filecmp.cmp(got, prepared.reference / name, shallow=False), (
            f"{name} differs from the uninterrupted run\n{res.context()}")


def _finished_as_signalled(res: DryRun) -> bool:
    """The last periodic checkpoint signal reached gmx as it wrote its final output: gmx answers
    SIGTERM with exit 1 (as it does at every checkpoint), its done rule (confout.gro) held, and
    the supervisor reported that real status (1) after recording it. Whether a signal lands in
    those last ~0.1 s depends on the machine's speed; the results must be complete either way."""
    recorded = [e for e in res.events() if e["event"] == "final_status_recorded"]
    return res.status == 1 and bool(recorded) and recorded[-1].get("status") == 1


@pytest.mark.timeout(240)
def test_evicted_during_a_checkpoint_and_later_crashed(prepared: Prepared, tmp_path: Path) -> None:
    """An eviction while GROMACS writes the checkpoint the signal asked for, a second eviction
    mid-run and a crash: the job still finishes, with exit status 0 (or gmx's own 1 when the
    last checkpoint signal reached it as it finished) and results byte-identical to an
    uninterrupted run, and no gmx process outlives the dry run."""
    folder = _job(prepared, tmp_path)
    w = prepared.seconds
    # The first eviction follows the first checkpoint signal at once, the second lands half a
    # period into the next run (--evict-on run+S), whatever the machine's speed; the crash comes
    # at CRASH_AT, mid-run in the third execution (or as it starts, on a loaded machine).
    res = dry_run(folder, "gromacs.submit",
                  ["--checkpoint-period", str(PERIOD), "--evict-on", "checkpoint-signal",
                   "--evict-on", f"run+{PERIOD / 2:g}", "--crash-at", f"{CRASH_AT:g}"],
                  timeout=200)
    assert res.status == 0 or _finished_as_signalled(res), res.context()
    summary = res.summary()
    assert summary["evictions"] == 2 and summary["crashes"] == 1, res.context()
    assert summary["checkpoints"] >= 1, res.context()
    _assert_same_results(res, prepared)
    phases = res.eviction_phases()
    assert phases and phases[0] in ("checkpoint", "commit", "exiting"), (
        f"the first eviction did not arrive during a checkpoint: {phases}\n{res.context()}")
    assert phases[-1] == "running", f"the second eviction was not mid-run: {phases}\n{res.context()}"
    assert not res.leftovers, f"processes left behind: {res.leftovers}"
    print(f"reference {w:.1f}s; dry run {res.seconds:.1f}s; {summary}; eviction phases {phases}")


@pytest.mark.timeout(240)
def test_evicted_during_a_checkpoint_upload(prepared: Prepared, tmp_path: Path) -> None:
    """An eviction while HTCondor uploads a committed checkpoint (the upload is aborted and the
    spool keeps the previous one) and one later: results byte-identical, exit status 0."""
    folder = _job(prepared, tmp_path)
    w = prepared.seconds
    upload = 1.0
    period = PERIOD + 1.0  # every checkpoint now costs an upload second too: fewer of them
    # The first eviction arrives as the first checkpoint upload starts, the second half a
    # period into the next run, mid-run (--evict-on upload, run+S), whatever the machine's speed.
    res = dry_run(folder, "gromacs.submit",
                  ["--checkpoint-period", str(period), "--upload-time", str(upload),
                   "--evict-on", "upload", "--evict-on", f"run+{period / 2:g}"], timeout=200)
    assert res.status == 0 or _finished_as_signalled(res), res.context()
    summary = res.summary()
    assert summary["evictions"] == 2, res.context()
    assert any("during the checkpoint upload" in text for _, text in res.timeline()), (
        f"the first eviction did not hit the upload\n{res.context()}")
    assert res.eviction_phases() == ["running"], (
        f"the second eviction was not mid-run: {res.eviction_phases()}\n{res.context()}")
    _assert_same_results(res, prepared)
    assert not res.leftovers, f"processes left behind: {res.leftovers}"
    print(f"reference {w:.1f}s; dry run {res.seconds:.1f}s; {summary}; "
          f"eviction phases {res.eviction_phases()}")
