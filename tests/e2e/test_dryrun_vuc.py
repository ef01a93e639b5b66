"""The seed's vuc.py (writing its checkpoint atomically) and vuc.submit through the dry run, with and
without failures.

All scenarios start together (module fixture) so the module costs about one slow scenario; vuc.py
sleeps 1 s per step and checkpoints at steps 3, 6 and 9.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from support.dryrun import Result, Running, copy_example, events

JOBS = Path(__file__).resolve().parent / "jobs"

SCENARIOS: dict[str, tuple[str, ...]] = {
    "plain": (),
    # before the first checkpoint (vuc.py's first exit 77 comes after its 3 s of sleeps, however
    # fast the machine) and after vuc.ckpt exists (an ON_EXIT_OR_EVICT eviction without it is a
    # hold, see test_dryrun_rules: 2.4 s leaves vuc.py 1.4 s to start), just after restarts,
    # mid-step, close to the end (the job's sleeps alone last 10 s)
    "evictions": ("--evict-at", "2.4", "--evict-at", "2.5", "--evict-at", "4.6",
                  "--evict-at", "6.4", "--evict-at", "8.2", "--evict-at", "9.9"),
    # vuc exits 77 after its 3 s of sleeps, at 3.0 s at the soonest; the 3 s upload then runs
    # until 6.0 s at the soonest: the eviction at 5 s lands in it however fast the machine, and
    # on a machine that needs up to 2 s more to start vuc.py
    "upload": ("--upload-time", "3", "--evict-at", "5"),
    # seed 26: the first eviction at 2.75 s, once vuc.ckpt exists (vuc.py has 1.75 s to start)
    "random1": ("--evict-random", "2", "--seed", "26", "--max-starts", "40"),
    "random2": ("--evict-random", "2", "--seed", "2", "--max-starts", "40"),
    "every": ("--evict-every", "2.7", "--max-starts", "40"),
    "crash": ("--crash-at", "1.5", "--evict-at", "5.5"),
}


def _seed_copy(dest):
    """examples/vuc with the seed's own vuc.submit (ON_EXIT_OR_EVICT, the 8.8 attributes); the
    example's file follows the current manual, whose evictions upload nothing."""
    submit = copy_example("vuc", dest) / "vuc.submit"
    submit.write_text((JOBS / "vuc-seed.submit").read_text())
    # The seed rewrites vuc.ckpt in place, and ON_EXIT_OR_EVICT uploads it at every eviction: an
    # eviction between the truncation and the write uploads a torn file, and the next execution
    # dies reading it (issue 12.2; real HTCondor does the same, and `check` now calls that setup
    # an error). This module tests the dry run's cycle, not that hazard: the copy writes
    # atomically, so the outcome does not depend on where a busy machine puts the eviction.
    vuc = submit.parent / "vuc.py"
    text = vuc.read_text()
    torn = """    with open('vuc.ckpt', 'w') as f:
        f.write("{0}".format(value))
"""
    assert torn in text
    vuc.write_text(text.replace("import sys\n", "import os\nimport sys\n", 1).replace(torn, """    with open('vuc.ckpt.tmp', 'w') as f:
        f.write("{0}".format(value))
    os.replace('vuc.ckpt.tmp', 'vuc.ckpt')
"""))
    return submit


@pytest.fixture(scope="module")
def vuc_runs(tmp_path_factory) -> dict[str, Result]:
    base = tmp_path_factory.mktemp("vuc")
    with contextlib.ExitStack() as stack:
        running = {name: Running(stack, _seed_copy(base / name), args)
                   for name, args in SCENARIOS.items()}
        return {name: r.wait(timeout=55) for name, r in running.items()}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_vuc_completes(vuc_runs, name):
    """Rule: whatever the evictions and crashes, vuc.py ends with "Computation complete", its
    final checkpoint value 10 in the submit directory, and the dry run exits with its code 0."""
    r = vuc_runs[name]
    assert r.rc == 0, r.stdout + r.stderr
    assert (r.dir / "vuc.ckpt").read_text() == "10"
    out = (r.dir / "vuc.out").read_text().splitlines()
    assert out[-1] == "Computation complete"
    assert (r.dir / "vuc.err").read_text() == ""


def test_plain_run_checkpoints_three_times(vuc_runs):
    """Rule: exit code 77 (== SuccessCheckpointExitCode) is a checkpoint: upload, then the same
    command line again in the same sandbox, stdout appended: one execution, four runs."""
    r = vuc_runs["plain"]
    assert "executions 1, runs 4, checkpoints 3, evictions 0, crashes 0" in r.stdout
    out = (r.dir / "vuc.out").read_text()
    assert [x for x in out.splitlines() if x.startswith("Starting")] == [
        "Starting from 0", "Starting from 3", "Starting from 6", "Starting from 9"]


def test_plain_event_log_order(vuc_runs, htcondor2):
    """Rule: the log is a classic job event log: submit, execute, a started/finished 040 pair
    per checkpoint upload and for the final output transfer, then terminated (return value 0)."""
    evs = events(htcondor2, vuc_runs["plain"].dir / "vuc.log")
    assert [int(e.type) for e in evs] == [0, 40, 40, 1] + [40, 40] * 4 + [5]
    assert [e["Type"] for e in evs if int(e.type) == 40] == [2, 3] + [5, 6] * 4  # IN_STARTED, IN_FINISHED, then OUT_...
    assert evs[-1]["ReturnValue"] == 0 and evs[-1]["TerminatedNormally"]
    assert all((e.cluster, e.proc) == (1, 0) for e in evs)


def test_evictions_event_log(vuc_runs, htcondor2):
    """Rule: each eviction is an 004 event followed by a new execution (input 040 pair, 001) on
    a fresh sandbox;
    with ON_EXIT_OR_EVICT the eviction upload is a 040 pair; the log ends with 005."""
    r = vuc_runs["evictions"]
    types = [int(e.type) for e in events(htcondor2, r.dir / "vuc.log")]
    assert types[:4] == [0, 40, 40, 1] and types[-1] == 5
    assert types.count(4) == 6 and types.count(1) == 7
    for i, t in enumerate(types):
        if t == 4:
            assert types[i - 2:i] == [40, 40] and types[i + 1:i + 4] == [40, 40, 1]
    tl = r.timeline()
    first_evict = next(i for i, x in enumerate(tl) if x.startswith("evicted"))
    first_ckpt = next(i for i, x in enumerate(tl) if x.startswith("checkpoint 1 uploaded"))
    assert first_evict < first_ckpt  # one eviction came before the first checkpoint


def test_eviction_during_upload_waits_for_it(vuc_runs, htcondor2):
    """Rule: HTCondor's checkpoint upload is blocking: a soft eviction that arrives during it
    waits; the upload completes (the checkpoint counts), then the eviction proceeds (no restart
    in place) and the next execution starts from that checkpoint."""
    r = vuc_runs["upload"]
    assert any("evict during the checkpoint upload: it waits" in x for x in r.timeline())
    assert "executions 2, runs 4, checkpoints 3, evictions 1" in r.stdout
    starts = [x for x in (r.dir / "vuc.out").read_text().splitlines() if x.startswith("Starting")]
    assert starts == ["Starting from 0", "Starting from 3", "Starting from 6", "Starting from 9"]
    types = [int(e.type) for e in events(htcondor2, r.dir / "vuc.log")]
    assert types[:10] == [0, 40, 40, 1, 40, 40, 4, 40, 40, 1]  # the upload finished, then the eviction


def test_crash_logs_shadow_exception(vuc_runs, htcondor2):
    """Rule: a crash uploads nothing and is logged as a shadow exception (007)."""
    r = vuc_runs["crash"]
    types = [int(e.type) for e in events(htcondor2, r.dir / "vuc.log")]
    assert types[:5] == [0, 40, 40, 1, 7]
    assert "crashes 1" in r.stdout
