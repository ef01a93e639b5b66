"""The execute-point rules of the dry run, each on a small counter job (tests/e2e/jobs)."""

from __future__ import annotations

import contextlib
import shutil
import signal

import pytest
from support.dryrun import COUNTER, Running, counter_job, events, run_dryrun, tagged_alive
from support.helpers import sleep_until

from supervisor import exitstatus
from supervisor.jobad import read_job_ad


def witness(d):
    return (d / "witness").read_text().splitlines()


def test_crash_loses_exactly_the_work_since_the_last_upload(tmp_path, htcondor2):
    """Rule: a crash uploads nothing; the next execution starts from the last checkpoint that
    was uploaded, so exactly the steps done since that upload are done again, no others."""
    # the crash at 3 s comes before the checkpoint at step 10 (4 s of sleeps at the soonest) and
    # after the one at step 5 (2 s of sleeps), on a machine that needs up to 1 s more to start
    submit = counter_job(tmp_path, "", "--every 5 --total 15 --step 0.4")
    r = run_dryrun(submit, "--crash-at", "3")
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
                         "--every 0 --total 40 --step 0.1 --ignore SIGUSR2")
    # the period leaves time for the job's interpreter to start and set its handlers, even on a
    # loaded machine (a signal before that would kill it and test something else), and the job's
    # 4 s of sleeps outlast it
    r = run_dryrun(submit, "--checkpoint-period", "2.0")
    assert r.rc == exitstatus.DRYRUN_HELD, r.stdout + r.stderr
    evs = events(htcondor2, tmp_path / "counter.log")
    assert [int(e.type) for e in evs] == [0, 40, 40, 1, 21, 4, 12]  # as HTCondor 25.0.13 logs it
    held = evs[-1]
    assert held["HoldReasonCode"] == 36
    assert held["HoldReason"] == (
        "Error from slot1@dry-run: "
        "Job did not exit as promised when sent its checkpoint signal.  Promised exit was "
        "with exit code 85, actual exit status was with exit code 0.")
    assert held["HoldReasonSubCode"] == 0
    assert not (tmp_path / "count").exists()  # nothing delivered on hold


def test_checkpoint_signal_obeyed(tmp_path):
    """Rule: CheckpointSig goes to the main process every period after each start; a checkpoint
    exit after it is uploaded and the job restarts in place until it finishes."""
    # The first run's 5 s of sleeps outlast the 3 s period whatever the load, so the signal meets
    # it; the run after its checkpoint finishes at once (--finish-on-restart), long before the
    # next signal: a program that finishes as the signal comes is held (36/0), as on a pool.
    submit = counter_job(tmp_path, '+WantCheckpointSignal = true\n+CheckpointSig = "SIGUSR2"',
                         "--every 0 --total 50 --step 0.1 --ckpt-on SIGUSR2 --finish-on-restart")
    r = run_dryrun(submit, "--checkpoint-period", "3")
    assert r.rc == 0, r.stdout + r.stderr
    assert "checkpoint signal SIGUSR2" in r.stdout
    assert "executions 1, runs 2, checkpoints 1," in r.stdout
    witness = (tmp_path / "witness").read_text().split("\n")
    checkpointed = [line.split()[1] for line in witness if line.startswith("checkpoint ")]
    assert len(checkpointed) == 1 and 0 < int(checkpointed[0]) < 50
    assert (tmp_path / "count").read_text() == checkpointed[0]  # the restart resumed from it



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


def test_eviction_sigkill_after_vacate_time_uploads_nothing(tmp_path, htcondor2):
    """Rule: eviction sends KillSig to the main process only; after the vacate time (the
    smaller of job_max_vacate_time and --vacate-time) SIGKILL hits every process and nothing is
    uploaded, even with ON_EXIT_OR_EVICT (fast shutdown: no 040 events, 0 bytes sent, as on
    HTCondor 25.0.13). --max-starts ends the dry run with DRYRUN_MAX_STARTS."""
    submit = counter_job(tmp_path, "job_max_vacate_time = 1\nkill_sig = SIGUSR1",
                         "--every 0 --total 1000 --step 0.05 --ignore SIGUSR1")
    # every 3 s: each execution has at least 2 s (the vacate time takes 1 s) to ignore SIGUSR1
    # before its eviction; a SIGUSR1 before that would kill it and test something else
    r = run_dryrun(submit, "--evict-every", "3", "--max-starts", "2", "--vacate-time", "30")
    assert r.rc == exitstatus.DRYRUN_MAX_STARTS, r.stdout + r.stderr
    assert "SIGUSR1 to pid" in r.stdout
    assert r.stdout.count("vacate time over: SIGKILL to every process") == 2
    assert r.stdout.count("fast shutdown, nothing uploaded") == 2
    evs = events(htcondor2, tmp_path / "counter.log")
    assert [int(e.type) for e in evs] == [0, 40, 40, 1, 4, 40, 40, 1, 4, 9]
    assert "bytes uploaded 0," in r.stdout
    assert not (tmp_path / "count").exists()


def test_missing_output_file_at_eviction_is_a_hold(tmp_path, htcondor2):
    """Rule: with ON_EXIT_OR_EVICT, a file named in transfer_output_files that does not exist
    when the evicted job has exited puts the job on hold: 021 (the starter's "Code 13 Subcode 2"),
    004 "Code 12 Subcode 2", then 012
    with HTCondor 25.0.13's reason text (seen on the real pool)."""
    submit = counter_job(tmp_path, "", "--every 0 --total 1000 --step 0.05")
    submit.write_text(submit.read_text().replace("transfer_output_files = count",
                                                 "transfer_output_files = count, missing.txt"))
    r = run_dryrun(submit, "--evict-at", "2.0")  # count exists by then: only missing.txt is missing
    assert r.rc == exitstatus.DRYRUN_HELD, r.stdout + r.stderr
    evs = events(htcondor2, tmp_path / "counter.log")
    assert [int(e.type) for e in evs] == [0, 40, 40, 1, 40, 40, 21, 4, 12]
    held = evs[-1]
    assert (held["HoldReasonCode"], held["HoldReasonSubCode"]) == (12, 2)
    assert held["HoldReason"].startswith(
        "Transfer output files failure at execution point slot1@dry-run while sending files to "
        "access point dry-run. Details: 1 total failures: first failure: reading from file ")
    assert held["HoldReason"].endswith("/missing.txt: (errno 2) No such file or directory")
    assert "Job was evicted. Code 12 Subcode 2" in (tmp_path / "counter.log").read_text()


def test_missing_checkpoint_file_is_a_hold(tmp_path, htcondor2):
    """Rule: a file listed in transfer_checkpoint_files that does not exist at the checkpoint
    upload holds the job with code 36, subcode -1, "Error from <slot>: Starter failed to upload
    checkpoint" (HTCondor 25.0.13: 040 started, 021, 004 with that code, 012)."""
    submit = counter_job(tmp_path, "", "--every 2 --total 4 --step 0.05", ckpt_files="count, nope")
    r = run_dryrun(submit)
    assert r.rc == exitstatus.DRYRUN_HELD, r.stdout + r.stderr
    evs = events(htcondor2, tmp_path / "counter.log")
    assert [int(e.type) for e in evs] == [0, 40, 40, 1, 40, 21, 4, 12]
    held = evs[-1]
    assert (held["HoldReasonCode"], held["HoldReasonSubCode"]) == (36, -1)
    assert held["HoldReason"] == "Error from slot1@dry-run: Starter failed to upload checkpoint"
    assert "nope: does not exist" in r.stderr


def test_symlink_to_directory_in_checkpoint_is_a_hold(tmp_path):
    """Rule: a symlink to a directory in transfer_checkpoint_files fails the checkpoint
    upload (36/-1), as on HTCondor 25.0.13."""
    (tmp_path / "job.sh").write_text(
        "#!/bin/sh\nmkdir -p d; echo x > d/f; ln -sfn d l\nexit 85\n")
    (tmp_path / "job.sh").chmod(0o755)
    (tmp_path / "j.submit").write_text(
        "executable = job.sh\ncheckpoint_exit_code = 85\ntransfer_checkpoint_files = l\n"
        "log = j.log\nqueue\n")
    r = run_dryrun(tmp_path / "j.submit")
    assert r.rc == exitstatus.DRYRUN_HELD, r.stdout + r.stderr
    assert "Code 36 Subcode -1" in (tmp_path / "j.log").read_text()
    assert "Starter failed to upload checkpoint" in r.stdout


def test_environment_job_ad_and_default_outputs(tmp_path):
    """Rule: the job sees _CONDOR_SCRATCH_DIR (its cwd), TMPDIR=/tmp, BATCH_SYSTEM=HTCondor and
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
    assert first["scratch"] == first["pwd"]
    assert first["tmp"] == "/tmp"  # as on HTCondor 25.0.13 (MOUNT_UNDER_SCRATCH names /tmp)
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


@pytest.mark.parametrize("remove_kill_sig", ["SIGQUIT", None])
def test_remove_sends_remove_kill_sig(tmp_path, remove_kill_sig):
    """Rule: a graceful shutdown (here a remove: the dry run's own SIGTERM, like its q key) soft-
    kills the main process with RemoveKillSig when remove_kill_sig is set, else with KillSig
    (os_proc.cpp:941, as the real pool does for condor_rm); the dry run exits DRYRUN_REMOVED."""
    (tmp_path / "job.sh").write_text(
        "#!/bin/sh\n"
        "trap 'echo QUIT >> \"$1/got\"; exit 3' QUIT\n"
        "trap 'echo TERM >> \"$1/got\"; exit 4' TERM\n"
        'echo ready > "$1/ready"\n'
        "while :; do sleep 0.1; done\n")
    (tmp_path / "job.sh").chmod(0o755)
    extra = f"remove_kill_sig = {remove_kill_sig}\n" if remove_kill_sig else ""
    (tmp_path / "j.submit").write_text(
        f'executable = job.sh\narguments = "{tmp_path}"\n{extra}log = j.log\nqueue\n')
    with contextlib.ExitStack() as stack:
        running = Running(stack, tmp_path / "j.submit", ())
        sleep_until((tmp_path / "ready").exists, timeout=20)
        running.proc.send_signal(signal.SIGTERM)  # the dry run's stop request: a remove
        r = running.wait(30)
    assert r.rc == exitstatus.DRYRUN_REMOVED, r.stdout + r.stderr
    expected = remove_kill_sig or "SIGTERM"
    assert (tmp_path / "got").read_text() == expected.removeprefix("SIG") + "\n"
    assert f"removing: {expected} to pid" in r.stdout, r.stdout
    assert "ignored submit commands" not in r.stderr, r.stderr
