"""The execute-point rules of the dry run, each on a small counter job (tests/condor/jobs)."""

from __future__ import annotations

import shutil
import signal

from conftest import COUNTER, counter_job, events, run_dryrun, tagged_alive
from helpers import sleep_until

from supervisor import exitstatus
from supervisor.jobad import read_job_ad


def witness(d):
    return (d / "witness").read_text().splitlines()


def test_crash_loses_exactly_the_work_since_the_last_upload(tmp_path, htcondor2):
    """Rule: a crash uploads nothing; the next execution starts from the last checkpoint that
    was uploaded, so exactly the steps done since that upload are done again, no others."""
    submit = counter_job(tmp_path, "", "--every 5 --total 15 --step 0.15")
    r = run_dryrun(submit, "--crash-at", "1.5")
    assert r.rc == 0, r.stdout + r.stderr
    lines = witness(tmp_path)
    starts = [i for i, x in enumerate(lines) if x.startswith("start ")]
    values = [int(lines[i].split()[1]) for i in starts]
    # exec 1: start 0, start 5 (restart after the checkpoint at 5), crash during 5..9;
    # exec 2 starts again from 5, the last value uploaded.
    assert values[:3] == [0, 5, 5], lines
    crashed = lines[starts[1] + 1:starts[2]]
    redone = [x for x in crashed if x.startswith("step ")]
    assert redone and all(5 <= int(x.split()[1]) < 10 for x in redone)
    steps = [int(x.split()[1]) for x in lines if x.startswith("step ")]
    for n in range(15):
        expected = 2 if f"step {n}" in redone else 1
        assert steps.count(n) == expected, (n, lines)
    assert (tmp_path / "count").read_text() == "15"
    assert [int(e.type) for e in events(htcondor2, tmp_path / "counter.log")].count(7) == 1


def test_ignored_checkpoint_signal_is_a_hold(tmp_path, htcondor2):
    """Rule: after the checkpoint signal, an exit that is not the checkpoint status puts the
    job on hold with code 36 and the starter's message; the dry run exits DRYRUN_HELD."""
    submit = counter_job(tmp_path, '+WantCheckpointSignal = true\n+CheckpointSig = "SIGUSR2"',
                         "--every 0 --total 20 --step 0.1 --ignore SIGUSR2")
    # the period leaves time for the job's interpreter to start and set its handlers, even on a
    # loaded machine: a signal before that would kill it and test something else
    r = run_dryrun(submit, "--checkpoint-period", "1.0")
    assert r.rc == exitstatus.DRYRUN_HELD, r.stdout + r.stderr
    evs = events(htcondor2, tmp_path / "counter.log")
    assert [int(e.type) for e in evs] == [0, 1, 12]
    held = evs[-1]
    assert held["HoldReasonCode"] == 36
    assert held["HoldReason"].startswith(
        "Job did not exit as promised when sent its checkpoint signal.  Promised exit was "
        "with exit code 85, actual exit status was with exit code 0.")
    assert held["HoldReasonSubCode"] == 0
    assert not (tmp_path / "count").exists()  # nothing delivered on hold


def test_checkpoint_signal_obeyed(tmp_path):
    """Rule: CheckpointSig goes to the main process every period after each start; a checkpoint
    exit after it is uploaded and the job restarts in place until it finishes."""
    submit = counter_job(tmp_path, '+WantCheckpointSignal = true\n+CheckpointSig = "SIGUSR2"',
                         "--every 0 --total 25 --step 0.1 --ckpt-on SIGUSR2")
    r = run_dryrun(submit, "--checkpoint-period", "1.0")
    assert r.rc == 0, r.stdout + r.stderr
    assert "checkpoint signal SIGUSR2" in r.stdout
    assert "executions 1," in r.stdout and "checkpoints 0," not in r.stdout
    assert (tmp_path / "count").read_text() == "25"



def test_checkpoint_by_signal_exact_match(tmp_path):
    """Rule: with SuccessCheckpointExitBySignal the desired status is the raw signal number:
    death by SIGUSR1 is a checkpoint (upload, restart in place); death by another signal is a
    final termination (the dry run exits DRYRUN_JOB_SIGNALED)."""
    extra = (
        "+WantFTOnCheckpoint = true\n+SuccessCheckpointExitBySignal = true\n"
        "+SuccessCheckpointExitSignal = 10"
    )
    submit = counter_job(tmp_path / "a", extra, "--every 2 --total 4 --step 0.05 "
                         "--ckpt-signal SIGUSR1")
    r = run_dryrun(submit)
    assert r.rc == 0, r.stdout + r.stderr
    assert "runs 2, checkpoints 1," in r.stdout
    submit = counter_job(tmp_path / "b", extra, "--every 2 --total 4 --step 0.05 "
                         "--ckpt-signal SIGUSR2")
    r = run_dryrun(submit)
    assert r.rc == exitstatus.DRYRUN_JOB_SIGNALED, r.stdout + r.stderr
    assert "runs 1, checkpoints 0," in r.stdout


def test_death_by_signal_is_reported(tmp_path):
    """Rule: a final death by a signal ends the dry run with DRYRUN_JOB_SIGNALED and an 005
    event with the signal number."""
    submit = counter_job(tmp_path, "", "--every 0 --total 2 --step 0.05 --die-by SIGUSR1")
    r = run_dryrun(submit)
    assert r.rc == exitstatus.DRYRUN_JOB_SIGNALED, r.stdout + r.stderr
    assert "(signal 10)" in (tmp_path / "counter.log").read_text()


def test_leftover_processes_warned_then_killed(tmp_path):
    """Rule: at a checkpoint restart, leftover processes are not killed but reported; when the
    job ends, every process it started is gone (even one that called setsid)."""
    submit = counter_job(tmp_path, 'environment = "CKPT_TEST_TAG=leftover-test"',
                         "--every 2 --total 4 --step 0.05 --leftover")
    r = run_dryrun(submit)
    assert r.rc == 0, r.stdout + r.stderr
    assert "is still running after the checkpoint exit" in r.stderr
    leftovers = [int(x.split()[1]) for x in witness(tmp_path) if x.startswith("leftover")]
    assert len(leftovers) == 2
    sleep_until(lambda: not tagged_alive("leftover-test"), timeout=5)


def test_eviction_sigkill_after_vacate_time_and_max_starts(tmp_path, htcondor2):
    """Rule: eviction sends KillSig to the main process only; after the vacate time (the
    smaller of job_max_vacate_time and --vacate-time) SIGKILL hits every process. --max-starts
    ends the dry run with DRYRUN_MAX_STARTS."""
    submit = counter_job(tmp_path, "job_max_vacate_time = 1\nkill_sig = SIGUSR1",
                         "--every 0 --total 1000 --step 0.05 --ignore SIGUSR1")
    r = run_dryrun(submit, "--evict-every", "0.5", "--max-starts", "2", "--vacate-time", "30")
    assert r.rc == exitstatus.DRYRUN_MAX_STARTS, r.stdout + r.stderr
    assert "SIGUSR1 to pid" in r.stdout
    assert r.stdout.count("vacate time over: SIGKILL to every process") == 2
    types = [int(e.type) for e in events(htcondor2, tmp_path / "counter.log")]
    assert types == [0, 1, 40, 40, 4, 1, 40, 40, 4, 9]


def test_missing_checkpoint_file_is_a_hold(tmp_path):
    """Rule: a file listed for the checkpoint that does not exist at upload time is a hold."""
    submit = counter_job(tmp_path, "", "--every 2 --total 4 --step 0.05", ckpt_files="count, nope")
    r = run_dryrun(submit)
    assert r.rc == exitstatus.DRYRUN_HELD, r.stdout + r.stderr
    assert "nope does not exist" in r.stdout


def test_environment_job_ad_and_default_outputs(tmp_path):
    """Rule: the job sees _CONDOR_SCRATCH_DIR (its cwd), TMPDIR, BATCH_SYSTEM=HTCondor and
    _CONDOR_JOB_AD naming a ClassAd file with the submit file's attributes; without
    transfer_output_files, files created or changed at the sandbox top come back."""
    (tmp_path / "input.txt").write_text("in\n")
    (tmp_path / "job.sh").write_text(
        "#!/bin/sh\n"
        'echo "scratch=$_CONDOR_SCRATCH_DIR pwd=$(pwd) tmp=$TMPDIR batch=$BATCH_SYSTEM"\n'
        'echo "args=$1|$2|$3"\n'
        'echo "foo=$FOO"\n'
        'cp "$_CONDOR_JOB_AD" ad.copy\n'
        "echo made > made.txt\n"
        "mkdir subdir; echo x > subdir/inner\n"
    )
    (tmp_path / "job.sh").chmod(0o755)
    (tmp_path / "j.submit").write_text(
        "executable = job.sh\n"
        "arguments = \"one 'two three' four\"\n"
        "environment = \"FOO='bar baz'\"\n"
        "transfer_input_files = input.txt\n"
        "+SuccessCheckpointExitCode = 85\n"
        "+MyCustom = \"hello\"\n"
        "request_memory = 100\n"
        "output = j.out\n"
        "queue\n"
    )
    r = run_dryrun(tmp_path / "j.submit")
    assert r.rc == 0, r.stdout + r.stderr
    out = (tmp_path / "j.out").read_text().splitlines()
    first = dict(kv.split("=", 1) for kv in out[0].split())
    assert first["scratch"] == first["pwd"] == first["tmp"]
    assert first["batch"] == "HTCondor"
    assert out[1] == "args=one|two three|four"
    assert out[2] == "foo=bar baz"
    assert (tmp_path / "made.txt").read_text() == "made\n"
    assert not (tmp_path / "subdir").exists()  # directories are not default outputs
    assert "ignored submit commands (not emulated): request_memory" in r.stderr
    ad = read_job_ad(tmp_path / "ad.copy")
    assert ad["SuccessCheckpointExitCode"] == 85
    assert ad["MyCustom"] == "hello"
    assert ad["ClusterId"] == 1 and ad["ProcId"] == 0


def test_counter_job_is_executable():
    """Rule (fixture sanity): the counter job is a runnable script."""
    assert shutil.which(str(COUNTER)) is not None
    assert signal.SIGUSR2  # the tests rely on SIGUSR1/2 existing (Linux)
