"""The dry run against what the real condor_starter (HTCondor 25.0.13) did on a real pool:
the job ad per execution, accounting, the checkpoint-signal period, stdout/stderr, the limits
and the output of the dry run itself (issues 11, 12.3, 13.7, 13.8)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from support.dryrun import counter_job, dryrun_cmd, events, job_env, run_dryrun
from support.helpers import ROOT

from supervisor import exitstatus


def script_job(d, body: str, submit_extra: str = "") -> object:
    d.mkdir(parents=True, exist_ok=True)
    (d / "job.sh").write_text("#!/bin/sh\n" + body)
    (d / "job.sh").chmod(0o755)
    submit = d / "j.submit"
    submit.write_text(
        "executable = job.sh\ncheckpoint_exit_code = 85\ntransfer_checkpoint_files = count\n"
        f"log = j.log\n{submit_extra}queue\n")
    return submit


AD_WITNESS = """\
n=$(cat count 2>/dev/null || echo 0)
{ echo "run $n"; grep -E '^(CheckpointNumber|NumJobStarts|CommittedTime|JobRunCount|JobLastCheckpointTime) ' \
"$_CONDOR_JOB_AD" | sort; grep -E 'VacateTime' "$_CONDOR_MACHINE_AD"; } >> "$W"
n=$((n+1)); echo $n > count
starts=$(sed -n 's/^NumJobStarts = //p' "$_CONDOR_JOB_AD")
[ "$starts" -ge 1 ] && exit 0
[ $n -lt 3 ] && { sleep 1.1; exit 85; }
sleep 60
"""


@pytest.mark.timeout(60)
def test_job_ad_once_per_execution_and_committed_time(tmp_path, htcondor2):
    """Rule (seen on HTCondor 25.0.13): .job.ad is written once per execution, not before each
    in-place restart: within the first execution every run reads NumJobStarts 0, JobRunCount 1,
    no CheckpointNumber, CommittedTime 0. The next execution reads NumJobStarts 1,
    CheckpointNumber 1 (the first checkpoint is 0), no JobLastCheckpointTime, and a CommittedTime that holds the two
    checkpointed runs only (the evicted run adds nothing). The machine ad carries
    MachineMaxVacateTime. The eviction is logged as 004 "Code 1009 Subcode 0"."""
    witness = tmp_path / "witness"
    submit = script_job(tmp_path, AD_WITNESS, f'environment = "W={witness}"\n')
    r = run_dryrun(submit, "--evict-at", "8", "--vacate-time", "30")
    assert r.rc == 0, r.stdout + r.stderr
    runs = witness.read_text().split("run ")[1:]
    first = "0\nCommittedTime = 0\nJobRunCount = 1\nNumJobStarts = 0\nMachineMaxVacateTime = 30\n"
    assert runs[:3] == [first, first.replace("0\n", "1\n", 1), first.replace("0\n", "2\n", 1)]
    last = dict(line.split(" = ") for line in runs[3].splitlines()[1:])
    assert runs[3].startswith("2\n")
    assert last["CheckpointNumber"] == "1" and last["NumJobStarts"] == "1"
    assert last["JobRunCount"] == "2" and last["MachineMaxVacateTime"] == "30"
    # the 2 checkpointed runs of at least 1.1 s each, which ended before the eviction at 8 s; with
    # the evicted run it would be 8 or more, however slow the machine
    assert 2 <= int(last["CommittedTime"]) < 8, runs[3]
    assert "MaxVacateTime = " not in runs[3].replace("MachineMaxVacateTime", "")
    # HTCondor 25.0.13 left JobLastCheckpointTime undefined, even after checkpoint uploads
    assert "JobLastCheckpointTime" not in witness.read_text()
    evs = events(htcondor2, tmp_path / "j.log")
    assert [int(e.type) for e in evs] == [0, 40, 40, 1, 40, 40, 40, 40, 4, 40, 40, 1, 40, 40, 5]
    assert "Job was evicted. Code 1009 Subcode 0" in (tmp_path / "j.log").read_text()
    assert "\tReason: Claim deactivated" in (tmp_path / "j.log").read_text()


@pytest.mark.timeout(60)
def test_checkpoint_signal_period_runs_from_the_last_signal(tmp_path):
    """Rule: the periodic checkpoint signal is due one period after the last signal (or the
    execution's start), not one period after each restart in place."""
    period = 3.0
    # The job answers the signal 1 s after it (the trap's sleep; the loop's 0.1 s sleeps delay
    # the trap by at most 0.1 s), whatever the machine's speed, and finishes in its third run.
    body = ("n=$(cat count 2>/dev/null || echo 0)\n"
            "trap 'sleep 1; echo $((n+1)) > count; exit 85' USR2\n"
            '[ "$n" -ge 2 ] && exit 0\n'
            "i=0; while [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done\n")
    submit = script_job(tmp_path, body, '+WantCheckpointSignal = true\n+CheckpointSig = "SIGUSR2"\n')
    r = run_dryrun(submit, "--checkpoint-period", str(period))
    assert r.rc == 0, r.stdout + r.stderr
    tl = [(float(t), text) for t, text in
          re.findall(r"(?m)^\s+(\d+\.\d+)s  (.*)$", r.stdout)]
    signals = [t for t, text in tl if text.startswith("checkpoint signal SIGUSR2")]
    run_starts = [t for t, text in tl if re.match(r"run \d+ started", text)]
    assert len(signals) >= 2, r.stdout
    second_run = run_starts[1]
    assert second_run > signals[0]
    # the restart follows the signal at 3 s by 1 s: the next signal comes one period after the
    # first one, at 6 s, so about 2 s after the restart; restarting the period at each run would
    # put it a full period (3 s) after
    assert signals[1] - second_run < period - 0.5, r.stdout


@pytest.mark.timeout(60)
def test_no_new_signal_while_one_is_unanswered(tmp_path):
    """Rule: while a checkpoint signal is unanswered no other is sent; the ask that finds it
    unanswered still restarts the period, so the restart after the late answer does not get a
    signal at once (HTCondor 25.0.13: a job that answered 28 s late got its next signal 23 s
    after its restart). Here the job answers at the end of its 4.5 s step, after the ask at 4 s,
    and its second run (which only finishes) gets no signal."""
    submit = counter_job(tmp_path, '+WantCheckpointSignal = true\n+CheckpointSig = "SIGUSR2"',
                         "--every 0 --total 1 --step 4.5 --ckpt-on SIGUSR2")
    r = run_dryrun(submit, "--checkpoint-period", "2.0")
    assert r.rc == 0, r.stdout + r.stderr
    tl = [(float(t), text) for t, text in re.findall(r"(?m)^\s+(\d+\.\d+)s  (.*)$", r.stdout)]
    sent = [t for t, text in tl if text.startswith("checkpoint signal SIGUSR2")]
    declined = [t for t, text in tl if "the last one is unanswered: not sent" in text]
    assert len(sent) == 1 and declined and declined[0] > sent[0], r.stdout
    assert "executions 1, runs 2, checkpoints 1," in r.stdout


@pytest.mark.timeout(60)
def test_promise_broken_during_eviction_is_a_hold(tmp_path, htcondor2):
    """Rule 8: once the checkpoint signal is sent, the next exit must be the checkpoint status,
    an eviction's too. As on HTCondor 25.0.13 (same job on the real pool): exit 143 after the
    soft kill is hold 36, subcode 36608 (the raw wait status), "Error from <slot>: Job did not
    exit as promised ...", logged as 021 (the starter's error), 004 with that code, then 012."""
    body = ("trap 'echo usr2 >> seen' USR2\ntrap 'exit 143' TERM\n"
            "i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n")
    submit = script_job(tmp_path, body, '+WantCheckpointSignal = true\n+CheckpointSig = "SIGUSR2"\n')
    # 2 s for sh to set its traps (USR2 would kill it before), the eviction after the signal
    r = run_dryrun(submit, "--checkpoint-period", "2.0", "--evict-at", "3.5")
    assert r.rc == exitstatus.DRYRUN_HELD, r.stdout + r.stderr
    evs = events(htcondor2, tmp_path / "j.log")
    assert [int(e.type) for e in evs] == [0, 40, 40, 1, 21, 4, 12]
    held = evs[-1]
    assert (held["HoldReasonCode"], held["HoldReasonSubCode"]) == (36, 143 << 8)
    assert held["HoldReason"] == (
        "Error from slot1@dry-run: Job did not exit as promised when sent its checkpoint "
        "signal.  Promised exit was with exit code 85, actual exit status was with exit code 143.")


def test_stdout_stderr_only_when_named_and_not_streamed(tmp_path):
    """Rule: stdout/stderr travel with uploads only when the submit file names them and does
    not stream them: without `output` nothing of stdout is kept; with `stream_output` the
    submit-side file receives every run's lines and the spool holds no copy."""
    body = ('n=$(cat count 2>/dev/null || echo 0); echo "out $n"; echo "err $n" >&2\n'
            "n=$((n+1)); echo $n > count; [ $n -lt 2 ] && exit 85; exit 0\n")
    plain = script_job(tmp_path / "plain", body)
    r = run_dryrun(plain, "--work-dir", str(tmp_path / "w1"))
    assert r.rc == 0, r.stdout + r.stderr
    assert not (tmp_path / "w1" / "spool" / "_condor_stdout").exists()
    assert not (tmp_path / "w1" / "spool" / "_condor_stderr").exists()
    streamed = script_job(tmp_path / "streamed", body,
                          "output = o.txt\nerror = e.txt\nstream_output = true\n")
    r = run_dryrun(streamed, "--work-dir", str(tmp_path / "w2"))
    assert r.rc == 0, r.stdout + r.stderr
    assert (tmp_path / "streamed" / "o.txt").read_text() == "out 0\nout 1\n"
    assert (tmp_path / "streamed" / "e.txt").read_text() == "err 0\nerr 1\n"
    assert not (tmp_path / "w2" / "spool" / "_condor_stdout").exists()
    assert (tmp_path / "w2" / "spool" / "_condor_stderr").exists()


def test_max_runs_bounds_restarts_in_place(tmp_path, htcondor2):
    """Rule (issue 12.3): a job that checkpoints without end restarts in place forever on
    HTCondor; the dry run stops after --max-runs runs with DRYRUN_MAX_STARTS (82), says why,
    and logs 009."""
    submit = script_job(tmp_path, "echo 1 > count; exit 85\n")
    r = run_dryrun(submit, "--max-runs", "5")
    assert r.rc == exitstatus.DRYRUN_MAX_STARTS, r.stdout + r.stderr
    assert "gave up: 5 runs (--max-runs)" in r.stdout
    assert "executions 1, runs 5, checkpoints 5," in r.stdout
    assert [int(e.type) for e in events(htcondor2, tmp_path / "j.log")][-1] == 9


def test_timeline_printed_once_and_not_with_quiet(tmp_path):
    """Rule (issue 13.7): the timeline is printed once, as it happens; --quiet prints the
    summary only."""
    submit = script_job(tmp_path, "echo 1 > count; exit 0\n")
    r = run_dryrun(submit)
    assert r.rc == 0, r.stdout + r.stderr
    both = r.stdout + r.stderr
    assert both.count("run 1 started") == 1 and both.count("submitted job 1.0") == 1
    assert "timeline:" not in both
    q = run_dryrun(submit, "--quiet")
    assert q.rc == 0
    assert "run 1 started" not in q.stdout + q.stderr
    assert "executions 1, runs 1," in q.stdout


@pytest.mark.timeout(60)
def test_pipe_into_head_ends_quietly(tmp_path):
    """Rule (issue 13.7): `dry-run ... | head -1` ends without a traceback, with the job's
    status (not 70), and leaves no work folder behind."""
    submit = script_job(tmp_path / "job", "i=0; while [ $i -lt 5 ]; do echo $i > count; "
                        "i=$((i+1)); done; exit 0\n")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**job_env("pipe"), "TMPDIR": str(tmp)}
    cmd = " ".join(f"'{a}'" for a in dryrun_cmd(submit)) + " | head -1; exit ${PIPESTATUS[0]}"
    done = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True,
                          timeout=50, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.stdout.count("\n") == 1
    assert list(tmp.iterdir()) == []


def test_unexpected_exit_shows_stderr_tail(tmp_path):
    """Rule (issue 13.7): when the job exits with a status nobody expected, the dry run shows
    the end of the job's stderr (where the supervisor writes its one-line reason)."""
    submit = script_job(tmp_path, "echo 'ckpt-supervisor[1]: error: the reason' >&2; exit 3\n")
    r = run_dryrun(submit)
    assert r.rc == 3, r.stdout + r.stderr
    assert "the job's stderr ends with:" in r.stderr
    assert "  | ckpt-supervisor[1]: error: the reason" in r.stderr


@pytest.mark.parametrize("args", [("--evict-at", "-1"), ("--crash-at", "nan"),
                                  ("--evict-at", "inf"), ("--evict-every", "nan"),
                                  ("--upload-time", "-2")])
def test_negative_or_nan_times_refused(tmp_path, args):
    """Rule (issue 13.8): a negative, NaN or infinite time is a usage error (64) naming the
    option, before anything runs."""
    submit = script_job(tmp_path, "exit 0\n")
    done = subprocess.run([sys.executable, "-m", "supervisor", "dry-run", str(submit), *args],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == exitstatus.EXIT_USAGE, done.stderr
    assert args[0] in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "j.log").exists()


# Writes its checkpoint for 0.2 s when asked (SIGUSR2), ignores the soft kill; once it has a
# checkpoint it finishes at once (the next periodic signal is due 0.8 s after the restart).
SLOW_WRITER = """\
trap 'sleep 0.2; echo 1 > count; exit 85' USR2
trap '' TERM
n=$(cat count 2>/dev/null || echo 0)
[ "$n" -ge 1 ] && exit 0
i=0; while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
"""


def _timeline(stdout: str) -> list[str]:
    return re.findall(r"(?m)^\s+\d+\.\d+s  (.*)$", stdout)


@pytest.mark.timeout(60)
def test_evict_on_checkpoint_signal_follows_the_signal_at_once(tmp_path):
    """``--evict-on checkpoint-signal``: the soft kill goes out right after the checkpoint
    signal, whatever the machine's speed, so the job is evicted while it writes the checkpoint
    it was asked for; its checkpoint exit (85) is an eviction (nothing uploaded), the next
    execution is asked again and finishes."""
    submit = script_job(tmp_path, SLOW_WRITER,
                        '+WantCheckpointSignal = true\n+CheckpointSig = "SIGUSR2"\n')
    r = run_dryrun(submit, "--checkpoint-period", "1.0", "--evict-on", "checkpoint-signal")
    assert r.rc == 0, r.stdout + r.stderr
    tl = _timeline(r.stdout)
    first = next(i for i, text in enumerate(tl) if text.startswith("checkpoint signal SIGUSR2"))
    pid = tl[first].split("to pid ")[1].split()[0]
    assert tl[first + 1] == f"evicting: SIGTERM to pid {pid}; SIGKILL to all in 600s", r.stdout
    assert tl[first + 2].endswith("exit code 85, wait status 0x5500"), r.stdout
    assert "executions 2, runs 3, checkpoints 1, evictions 1, crashes 0" in r.stdout


@pytest.mark.timeout(60)
def test_evict_on_upload_waits_for_the_upload(tmp_path):
    """``--evict-on upload``: the eviction arrives as the first checkpoint upload starts; the
    upload is blocking, so it completes, the job is not restarted in place, and the next
    execution resumes from that checkpoint."""
    submit = script_job(tmp_path, "n=$(cat count 2>/dev/null || echo 0)\n"
                        "[ \"$n\" -ge 1 ] && exit 0\necho 1 > count\nexit 85\n")
    r = run_dryrun(submit, "--upload-time", "0.5", "--evict-on", "upload")
    assert r.rc == 0, r.stdout + r.stderr
    tl = _timeline(r.stdout)
    assert any(t.startswith("evict during the checkpoint upload") for t in tl), r.stdout
    assert any("that arrived during the upload proceeds now: no restart" in t for t in tl), r.stdout
    assert "executions 2, runs 2, checkpoints 1, evictions 1, crashes 0" in r.stdout


def _timed(stdout: str) -> list[tuple[float, str]]:
    return [(float(t), text) for t, text in re.findall(r"(?m)^\s+(\d+\.\d+)s  (.*)$", stdout)]


@pytest.mark.timeout(60)
def test_evict_on_run_lands_that_long_into_the_first_run_that_lasts(tmp_path):
    """``--evict-on upload --evict-on run+1``: after the upload eviction, the first run that
    lasts a second is evicted a second in (mid-run, whatever the machine's speed); a run that
    ends sooner (the quick checkpoint of execution 2's first run) is passed over."""
    marker = tmp_path / "long-run-started"
    submit = script_job(tmp_path, f"""\
n=$(cat count 2>/dev/null || echo 0)
[ "$n" -eq 0 ] && {{ echo 1 > count; exit 85; }}
[ "$n" -eq 1 ] && {{ echo 2 > count; exit 85; }}
[ -e {marker} ] && exit 0
touch {marker}
trap 'exit 143' TERM
sleep 30 & wait
""")
    r = run_dryrun(submit, "--upload-time", "0.2", "--evict-on", "upload", "--evict-on", "run+1")
    assert r.rc == 0, r.stdout + r.stderr
    tl = _timed(r.stdout)
    texts = [text for _, text in tl]
    i = next(i for i, text in enumerate(texts) if text.startswith("evict ") and "into run" in text)
    assert re.fullmatch(r"evict \d+\.\d\ds into run 3 \(--evict-on run\+S\)", texts[i]), r.stdout
    started = next(t for t, text in tl if text.startswith("run 3 started"))
    assert tl[i][0] - started >= 1.0 - 0.01, r.stdout  # printed to 0.01 s
    assert texts[i + 1].startswith("evicting: SIGTERM to pid"), r.stdout
    assert "executions 3, runs 4, checkpoints 2, evictions 2, crashes 0" in r.stdout


@pytest.mark.parametrize("how, moment", [("flag", "checkpoint"), ("env", "checkpoint"),
                                         ("flag", "run+0"), ("flag", "run+x"), ("flag", "run+inf")])
def test_evict_on_unknown_moment_refused(tmp_path, how, moment):
    """An ``--evict-on`` moment (or ``CKPT_DRYRUN_EVICT_ON``) that is not checkpoint-signal,
    upload or run+S with S a positive number is a usage error (64) in one line naming it,
    before anything runs."""
    submit = script_job(tmp_path, "exit 0\n")
    args = ["--evict-on", moment] if how == "flag" else []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if how == "env":
        env["CKPT_DRYRUN_EVICT_ON"] = moment
    done = subprocess.run([sys.executable, "-m", "supervisor", "dry-run", str(submit), *args],
                          capture_output=True, text=True, timeout=30, env=env)
    assert done.returncode == exitstatus.EXIT_USAGE, done.stderr
    assert repr(moment) in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "j.log").exists()


ENV_WITNESS = """\
env | sort > env.txt
ls -d var/tmp > var.txt
exit 0
"""


@pytest.mark.timeout(60)
def test_job_environment_is_the_pools(tmp_path, monkeypatch):
    """Rule (seen on HTCondor 25.0.13 with a job that printed its environment): without getenv
    the job gets no LANG/LC_ALL from the submitter, TMPDIR, TMP and TEMP are /tmp (not the
    sandbox), the thread-count variables are 1 (one CPU), the sandbox holds var/tmp (which never
    comes back as an output); the submit file's environment wins over the thread limits. PATH
    is the dry run's documented exception (kept so that /usr/bin/env finds ckpt-supervisor)."""
    submit = script_job(tmp_path, ENV_WITNESS, 'environment = "GOMAXPROCS=4"\n'
                        "transfer_output_files = env.txt, var.txt\n")
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    r = run_dryrun(submit)
    assert r.rc == 0, r.stdout + r.stderr
    lines = (tmp_path / "env.txt").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    assert (env["TMPDIR"], env["TMP"], env["TEMP"]) == ("/tmp", "/tmp", "/tmp")
    assert "LANG" not in env and "LC_ALL" not in env
    assert env["OMP_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["PYTHON_CPU_COUNT"] == "1"
    assert env["GOMAXPROCS"] == "4"
    assert env["APPTAINER_CACHEDIR"] == env["_CONDOR_SCRATCH_DIR"]
    assert (tmp_path / "var.txt").read_text() == "var/tmp\n"
    assert not (tmp_path / "var").exists()


@pytest.mark.timeout(60)
def test_starter_holds_log_021_004_012(tmp_path, htcondor2):
    """Rule (seen on HTCondor 25.0.13): every hold the starter causes is logged as 021 "Error
    from starter on SLOT:" with the starter's code and subcode, then 004 with the hold's code
    and subcode, then 012. A missing output file at the final transfer: 040 started, 021 with
    code 13/2, 004 and 012 with 12/2. An executable that cannot start: 021, 004, 012 with
    code 6 and the errno, reason "Error from <slot>: Failed to execute ...". A missing input
    file: the input 040 pair, 021, 004, 012 with 13/2 and no 001 (the job never started).
    Every execution starts with the input 040 pair, before its 001."""
    out = tmp_path / "out"
    submit = script_job(out, "exit 0\n", "transfer_output_files = missing.txt\n")
    r = run_dryrun(submit)
    assert r.rc == exitstatus.DRYRUN_HELD, r.stdout + r.stderr
    evs = events(htcondor2, out / "j.log")
    assert [int(e.type) for e in evs] == [0, 40, 40, 1, 40, 21, 4, 12]
    assert (evs[5]["HoldReasonCode"], evs[5]["HoldReasonSubCode"]) == (13, 2)
    assert "Error from starter on slot1@dry-run:" in (out / "j.log").read_text()
    assert (evs[-1]["HoldReasonCode"], evs[-1]["HoldReasonSubCode"]) == (12, 2)
    assert "Job was evicted. Code 12 Subcode 2" in (out / "j.log").read_text()

    bad = tmp_path / "bad"
    submit = script_job(bad, "exit 0\n")
    (bad / "job.sh").write_text("#!/nonexistent/interpreter\n")
    r = run_dryrun(submit)
    assert r.rc == exitstatus.DRYRUN_HELD, r.stdout + r.stderr
    evs = events(htcondor2, bad / "j.log")
    assert [int(e.type) for e in evs] == [0, 40, 40, 1, 21, 4, 12]
    assert (evs[-1]["HoldReasonCode"], evs[-1]["HoldReasonSubCode"]) == (6, 2)
    assert evs[-1]["HoldReason"].startswith("Error from slot1@dry-run: Failed to execute ")

    missing = tmp_path / "missing"
    submit = script_job(missing, "exit 0\n", "transfer_input_files = nothere.txt\n")
    r = run_dryrun(submit)
    assert r.rc == exitstatus.DRYRUN_HELD, r.stdout + r.stderr
    evs = events(htcondor2, missing / "j.log")
    assert [int(e.type) for e in evs] == [0, 40, 40, 21, 4, 12]
    assert (evs[-1]["HoldReasonCode"], evs[-1]["HoldReasonSubCode"]) == (13, 2)
    assert evs[-1]["HoldReason"] == (
        "Transfer input files failure at access point dry-run while sending files to execution "
        "point slot1@dry-run. Details: 1 total failures: first failure: reading from file "
        f"{missing / 'nothere.txt'}: (errno 2) No such file or directory")
