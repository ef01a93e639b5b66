"""The dry run's end of a job whose OnExitRemove is false (max_retries, success_exit_code,
retry_until, on_exit_remove): requeued, as HTCondor 25.0.13 does it on the shared pool.

What the pool did (max_retries = 2, a job that checkpoints once with exit 85 and then exits 3):
three executions, each from the checkpoint upload, a 004 "Job was evicted." with "(0) Job
terminated and was requeued" and "The job attribute OnExitRemove expression '...' evaluated to
FALSE" after each of the first two ends (outputs transferred first: 040 040), then 005 with
return value 3; NumJobCompletions 3, JobStatus 4.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.helpers import ROOT

from supervisor import exitstatus

COUNTER = """\
#!/bin/sh
n=$(cat count 2>/dev/null || echo 0)
n=$((n+1)); echo $n > count
echo "run $n" >> runs.txt
grep '^NumJobCompletions ' "$_CONDOR_JOB_AD" >> {ads}
{body}
"""


def _job(tmp_path: Path, body: str, commands: str) -> Path:
    job = tmp_path / "job.sh"
    job.write_text(COUNTER.format(ads=tmp_path / "ads.txt", body=body))
    job.chmod(0o755)
    submit = tmp_path / "j.submit"
    submit.write_text("executable = job.sh\ncheckpoint_exit_code = 85\n"
                      "transfer_checkpoint_files = count, runs.txt\nshould_transfer_files = yes\n"
                      f"log = j.log\n{commands}queue\n")
    return submit


def _dry_run(submit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "supervisor", "dry-run", str(submit.name),
                           "--work-dir", str(submit.parent / "work")],
                          cwd=submit.parent, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def _events(log: Path) -> list[tuple[str, str]]:
    """(code, body) of every event in a classic event log."""
    out = []
    for block in log.read_text().split("...\n"):
        if block.strip():
            out.append((block[:3], block))
    return out


@pytest.mark.timeout(60)
def test_max_retries_requeues_from_the_last_checkpoint(tmp_path):
    """Rule (HTCondor 25.0.13): with max_retries = 2 a job that keeps exiting 3 runs three
    times in all, each execution from the last checkpoint upload (not from where the failed run
    left its files), with a 004 "terminated and was requeued" quoting OnExitRemove after each of
    the first two ends; the third end terminates it (005, return value 3), and the dry run exits
    with that code. NumJobCompletions in the job ad counts the ends so far."""
    submit = _job(tmp_path, '[ "$n" -eq 1 ] && exit 85\nexit 3', "max_retries = 2\n")
    done = _dry_run(submit)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "executions 3, runs 4, checkpoints 1, evictions 0, crashes 0, requeues 2" in done.stdout
    assert (tmp_path / "runs.txt").read_text() == "run 1\nrun 2\n"  # each from the checkpoint
    events = _events(tmp_path / "j.log")
    codes = [c for c, _ in events]
    assert codes.count("004") == 2 and codes[-1] == "005", codes
    requeued = [body for c, body in events if c == "004"]
    for body in requeued:
        assert "\t(0) Job terminated and was requeued\n" in body, body
        assert "\t(1) Normal termination (return value 3)\n" in body, body
        assert ("\tThe job attribute OnExitRemove expression 'NumJobCompletions > JobMaxRetries "
                "|| ExitCode =?= 0' evaluated to FALSE\n") in body, body
    # outputs transferred at every end (040 040 before each 004 and before the 005)
    for i, c in enumerate(codes):
        if c in ("004", "005"):
            assert codes[i - 2:i] == ["040", "040"], codes
    assert "return value 3" in events[-1][1]
    ads = (tmp_path / "ads.txt").read_text().split()
    assert ads == ["NumJobCompletions", "=", "0"] * 2 + ["NumJobCompletions", "=", "1",
                                                         "NumJobCompletions", "=", "2"], ads


@pytest.mark.timeout(60)
def test_success_exit_code_ends_the_job_and_zero_is_retried(tmp_path):
    """Rule: with success_exit_code = 7 an exit 7 removes the job at once; an exit 0 is then a
    failure, retried JobMaxRetries times (2 when max_retries is not given)."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    seven = _dry_run(_job(tmp_path / "a", "exit 7", "success_exit_code = 7\n"))
    assert seven.returncode == 7, seven.stdout + seven.stderr
    assert "executions 1, runs 1, checkpoints 0, evictions 0, crashes 0\n" in seven.stdout
    zero = _dry_run(_job(tmp_path / "b", "exit 0", "success_exit_code = 7\n"))
    assert zero.returncode == 0, zero.stdout + zero.stderr
    assert "executions 3, runs 3, checkpoints 0, evictions 0, crashes 0, requeues 2" in zero.stdout


@pytest.mark.timeout(60)
def test_on_exit_remove_retries_until_it_holds(tmp_path):
    """Rule: on_exit_remove = ExitCode == 0 keeps a failing job in the queue; it runs again
    until it exits 0 (here the second execution), however many times that takes."""
    flag = tmp_path / "failed-once"
    submit = _job(tmp_path, f'[ -e {flag} ] && exit 0\ntouch {flag}\nexit 1',
                  "on_exit_remove = ExitCode==0\n")
    done = _dry_run(submit)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "executions 2, runs 2, checkpoints 0, evictions 0, crashes 0, requeues 1" in done.stdout
    # quoted as the pool quotes an expression (unparsed)
    assert re.search(r"OnExitRemove expression 'ExitCode == 0' evaluated to FALSE",
                     (tmp_path / "j.log").read_text())


@pytest.mark.timeout(60)
def test_held_by_on_exit_hold_before_on_exit_remove_is_looked_at(tmp_path):
    """Rule: the shadow evaluates OnExitHold first: a job both policies would keep is held
    (code 3), not requeued."""
    submit = _job(tmp_path, "exit 3", "max_retries = 5\non_exit_hold = ExitCode == 3\n")
    done = _dry_run(submit)
    assert done.returncode == exitstatus.DRYRUN_HELD, done.stdout + done.stderr
    assert "requeues" not in done.stdout and "executions 1," in done.stdout


@pytest.mark.parametrize("command", ["max_retries = three", "retry_until = ExitCode =="])
def test_unreadable_retry_policy_is_refused_in_one_line(tmp_path, command):
    """A max_retries that is not an integer, or a retry_until that is not an expression, is a
    usage error (64) naming the line, before anything runs, as condor_submit refuses it."""
    submit = _job(tmp_path, "exit 0", f"{command}\n")
    done = _dry_run(submit)
    assert done.returncode == exitstatus.EXIT_USAGE, done.stderr
    assert f"j.submit:6: {command.split()[0]}" in done.stderr, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "j.log").exists()


@pytest.mark.timeout(60)
def test_outputs_of_a_requeued_end_are_delivered(tmp_path):
    """Rule (seen on HTCondor 25.0.13): the outputs of an end that is requeued reach the submit
    directory too: a file only the failed first execution wrote (first.txt) is there after the
    job, beside the second execution's (second.txt)."""
    job = tmp_path / "job.sh"
    job.write_text("#!/bin/sh\nc=$(grep '^NumJobCompletions ' \"$_CONDOR_JOB_AD\" | sed 's/.*= *//')\n"
                   "if [ \"$c\" = 0 ]; then echo first > first.txt; exit 3; fi\n"
                   "echo second > second.txt\nexit 0\n")
    job.chmod(0o755)
    submit = tmp_path / "j.submit"
    submit.write_text("executable = job.sh\nshould_transfer_files = YES\nlog = j.log\n"
                      "max_retries = 2\nqueue\n")
    done = _dry_run(submit)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "executions 2, runs 2, checkpoints 0, evictions 0, crashes 0, requeues 1" in done.stdout
    assert (tmp_path / "first.txt").read_text() == "first\n"
    assert (tmp_path / "second.txt").read_text() == "second\n"
