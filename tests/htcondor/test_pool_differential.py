"""Differential tests: the same submit file and the same injected events through
``ckpt-supervisor dry-run`` and through the real pool must end the same way.

Compared (``poolkit.differences``, one line per difference): terminated/held/removed, exit code
or signal, hold code and subcode (and the reason text when both held), checkpoint uploads
(CheckpointNumber + 1 on the pool, the dry run's summary), output transfers in the event log,
evictions, the 021 events (code/subcode each) and the bytes of every delivered file. The pool's events are driven by what the job
writes (an eviction once the program hangs or saves); the dry run gets the same event at a time
by which the program is surely at that point (``--evict-at``), and its checkpoint signal with
``--checkpoint-period``. Where the two clocks differ by design, a scenario's ``ignore`` names the
fields not compared: the pool's startd asks for the periodic checkpoint signal on its polling
(up to 5 s after it is due, docs/reference/dry-run.md) while the dry run sends it when due, so
in a scenario whose program runs on after its first checkpoint the number of checkpoint uploads
(and the output transfers that come with each) before the eviction differs, though both end the
same way.
"""

from __future__ import annotations

import concurrent.futures
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest
from support.poolkit import (
    SIGNAL_JOB,
    TIMER_JOB,
    Job,
    Pool,
    differences,
    dry_run,
    dry_run_outcome,
    journal,
    outcome,
    submitted,
    work_submit,
)

from supervisor.condor.snippet import hold_policy_lines

pytestmark = pytest.mark.htcondor

POLICY = "\n".join(hold_policy_lines()) + "\n"
INSPECT = "run --checkpoint state.txt --inspect-on-exit 77"
SELF_CKPT = "--steps 12 --step-time 0.2 --every-steps 4 --exit-after-save 77"


def _hang_once(job: Job) -> None:
    job.wait_for_condition(lambda: "hang" in journal(job.dir), "the program hanging (once)")
    job.vacate()


def _saving(job: Job) -> None:
    job.wait_for_condition(lambda: any(x.startswith("saving") for x in journal(job.dir)),
                           "the program saving after the checkpoint signal")
    job.vacate()


@dataclass(frozen=True)
class Scenario:
    run: str
    program: str  # {dir} is the job directory
    settings: str
    dry_args: tuple[str, ...] = ()
    drive: Optional[Callable[[Job], None]] = None  # the pool's injected event
    ignore: tuple[str, ...] = ()  # fields not compared, with the reason in the docstring


SCENARIOS = {
    # a program that checkpoints by itself (exit 77) twice and finishes
    "self-checkpoints": Scenario(INSPECT, SELF_CKPT, TIMER_JOB),
    # evicted while it runs after its first checkpoint (it hangs at step 6, once)
    "evicted-while-running": Scenario(INSPECT, f"{SELF_CKPT} --hang-at 6 --once {{dir}}/hang.once", TIMER_JOB,
                                      ("--evict-at", "8"), _hang_once),
    # the same with ON_EXIT_OR_EVICT: result.txt (listed) does not exist yet at the eviction;
    # the dry run aims at the hang by the run's own start (--evict-on run+S: run 1 checkpoints
    # after 0.8 s and is passed over; run 2 hangs 0.4 s in)
    "evicted-on-exit-or-evict-missing-output": Scenario(
        INSPECT, f"{SELF_CKPT} --hang-at 6 --once {{dir}}/hang.once",
        TIMER_JOB + "when_to_transfer_output = ON_EXIT_OR_EVICT\n", ("--evict-on", "run+3"), _hang_once),
    # a file of transfer_checkpoint_files that never exists: the checkpoint upload fails
    "checkpoint-file-missing": Scenario(INSPECT, SELF_CKPT, TIMER_JOB.replace(
        "transfer_checkpoint_files = checkpoint.atomic", "transfer_checkpoint_files = checkpoint.atomic, missing.dat")),
    # the program's own exit with the reserved code
    "reserved-code": Scenario("run --checkpoint state.txt", "--steps 4 --step-time 0.1 --exit-code 85", TIMER_JOB),
    # the held case: 7 s save after the translated signal, evicted meanwhile
    "evicted-while-saving-after-the-signal": Scenario(
        "run --checkpoint state.txt --job-signal SIGINT --complete-when exit",
        # 25 s of steps: the pool's first periodic signal (period 6 s, evaluated on the startd's
        # polling) once came after a 10 s program had finished on a busy machine
        "--steps 100 --step-time 0.25 --on-signal-sleep-exit 7:130", SIGNAL_JOB,
        ("--checkpoint-period", "3", "--evict-at", "5"), _saving, ("uploads", "transfers")),
    # no supervisor: a program that dies from the soft kill while it saves after the checkpoint
    # signal (rule 8 holds the job on the pool: code 36, subcode = the raw status 15)
    "unsupervised-evicted-after-the-signal": Scenario(
        "", "--steps 1000 --step-time 0.1 --save-on SIGUSR2 --save-time 15 --exit-on-save 0", SIGNAL_JOB,
        ("--checkpoint-period", "3", "--evict-at", "5"), _saving),
    # the supervisor's own usage error (64) under the hold policy submit-snippet writes: held
    # by on_exit_hold, code 3, subcode 64, the policy's reason (outputs transferred first)
    "supervisor-error-held-by-the-policy": Scenario(
        "run --checkpoint state.txt --every banana", "--steps 2 --step-time 0.1",
        TIMER_JOB.replace("transfer_output_files = result.txt\n", "") + POLICY),
    # the program's own failure (3) under the same policy: it terminates, not held
    "program-failure-not-held-by-the-policy": Scenario(
        "run --checkpoint state.txt", "--steps 2 --step-time 0.1 --exit-code 3",
        TIMER_JOB.replace("transfer_output_files = result.txt\n", "") + POLICY),
    # the program's own failure (3) with max_retries = 1: requeued once (a 004 "terminated and
    # was requeued"), run again, then terminated with 3
    "requeued-by-max-retries": Scenario(
        "run --checkpoint state.txt", "--steps 4 --step-time 0.1 --exit-code 3",
        TIMER_JOB + "max_retries = 1\n"),
    # the program finishes right after the checkpoint signal (status 7)
    "finishes-after-the-signal": Scenario(
        "run --checkpoint state.txt --job-signal SIGINT --complete-when exit",
        "--steps 100000 --step-time 0.1 --save-on SIGINT --finish-on-signal 7", SIGNAL_JOB,
        ("--checkpoint-period", "3")),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_dry_run_matches_the_pool(pool: Pool, pyz: Path, folder: Path, tmp_path: Path, name: str) -> None:
    """Rule: the dry run emulates HTCondor: for the same submit file and the same injected events
    it ends like the real pool (state, exit, hold code/subcode, uploads, transfers, evictions,
    delivered bytes). Every difference is printed on its own line."""
    sc = SCENARIOS[name]
    dry_dir = tmp_path / "dry"
    dry_dir.mkdir()
    pool_submit = work_submit(folder, pyz, sc.run, sc.program.format(dir=folder), sc.settings)
    dry_submit = work_submit(dry_dir, pyz, sc.run, sc.program.format(dir=dry_dir), sc.settings)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        dry_future = ex.submit(dry_run, dry_dir, dry_submit, list(sc.dry_args), 240)
        with submitted(pool, folder, pool_submit) as job:
            if sc.drive is not None:
                sc.drive(job)
            job.wait_end(240)
            real = outcome(job, set())
            ctx = job.context()
        dry = dry_run_outcome(dry_future.result(), "job.log", set())
    res = dry_future.result()
    diffs = [d for d in differences(dry, real) if d.split(":")[0] not in sc.ignore]
    print(f"{name}: real {real.state} exit={real.exit_code} hold={real.hold_code}/{real.hold_subcode} "
          f"uploads={real.uploads} transfers={real.transfers} evictions={real.evictions} {real.extra}")
    assert not diffs, (f"{name}: the dry run and the real pool differ:\n  " + "\n  ".join(diffs)
                       + f"\n--- real pool:\n{ctx}\n--- dry run (status {res.status}):\n{res.stdout[-3000:]}{res.stderr[-2000:]}")


ENV_JOB = """#!/bin/sh
# what the job's environment is made of, with the sandbox path and the per-run values removed
for name in $(env | sed -n 's/^\\([A-Za-z_][A-Za-z0-9_]*\\)=.*/\\1/p' | sort); do
  case $name in
    _CONDOR_ANCESTOR_*|_CONDOR_BIN|_CONDOR_CHIRP_CONFIG|_CHIRP_DELAYED_UPDATE_PREFIX) ;;
    CKPT_DRYRUN_FAMILY|PATH|PWD|SHLVL|_) ;;
    *) echo "$name" ;;
  esac
done > names.txt
{ echo "PATH set: $(env | grep -q '^PATH=' && echo yes)"; echo "TMPDIR=$TMPDIR TMP=$TMP TEMP=$TEMP OMP=$OMP_NUM_THREADS"
  [ "$APPTAINER_CACHEDIR" = "$_CONDOR_SCRATCH_DIR" ] && echo "cache in the sandbox"
  [ -d var/tmp ] && echo "var/tmp in the sandbox"
  /usr/bin/python3 -c 'import sys; print("sys.executable", repr(sys.executable))'
} > values.txt
"""
ENV_SUBMIT = """executable = env.sh
should_transfer_files = yes
transfer_output_files = names.txt, values.txt
log = job.log
queue
"""


@pytest.mark.timeout(300)
def test_job_environment_matches_the_pool(pool: Pool, folder: Path, tmp_path: Path) -> None:
    """Rule: without getenv the job's environment in the dry run is the pool's (the same
    variable names; TMPDIR/TMP/TEMP, thread limits, caches, var/tmp), except PATH, which the
    dry run keeps so that /usr/bin/env finds ckpt-supervisor (docs/reference/dry-run.md)."""
    dry_dir = tmp_path / "dry"
    dry_dir.mkdir()
    for d in (folder, dry_dir):
        (d / "env.sh").write_text(ENV_JOB)
        (d / "env.sh").chmod(0o755)
        (d / "job.submit").write_text(ENV_SUBMIT)
    res = dry_run(dry_dir, "job.submit", [], 120)
    with submitted(pool, folder, "job.submit") as job:
        job.wait_end(240)
    real_values = (folder / "values.txt").read_text()
    dry_values = (dry_dir / "values.txt").read_text()
    assert (folder / "names.txt").read_text() == (dry_dir / "names.txt").read_text(), res.stderr
    assert real_values.splitlines()[0] == "PATH set: "
    assert dry_values.splitlines()[0] == "PATH set: yes"  # the documented difference
    assert real_values.splitlines()[1:4] == dry_values.splitlines()[1:4], real_values + dry_values
    print(real_values + dry_values)
