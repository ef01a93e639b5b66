"""``ckpt-supervisor report``: checkpoints, their cost, time lost, Young's and Daly's intervals."""

from __future__ import annotations

import json
import math

import pytest
from support.helpers import ROOT
from support.timed_log import timed_log

from supervisor import exitstatus
from supervisor.__main__ import main
from supervisor.condor.eventlog import EventLog
from supervisor.condor.report import daly, report, young


def write_events(path, records):
    with open(path, "w") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")
    return path


def ev(t, pid, kind, **fields):
    return {"time": t, "iso": "x", "pid": pid, "event": kind, **fields}


def history():
    """Three supervisor runs: two commits then a checkpoint exit; a restored run evicted 30 s
    after its commit; a last run that finishes. The started events carry the program's pid."""
    return [
        ev(0.0, 100, "argv", argv=["sim"]),
        ev(1.0, 900, "started", resumed=False),
        ev(10.0, 100, "checkpoint_requested", reason="timer"),
        ev(12.0, 100, "checkpoint_complete", rule="quiet=2", latency=2.0),
        ev(13.0, 100, "committed", bytes=1000, seconds=1.0),
        ev(20.0, 100, "checkpoint_complete", rule="quiet=2", latency=2.0),
        ev(21.0, 100, "committed", bytes=2000, seconds=1.0),
        ev(21.5, 100, "exit", status=85, reason="checkpoint committed"),
        ev(30.0, 200, "restored", sequence=2, bytes=2000, seconds=0.5, files=1),
        ev(32.0, 901, "started", resumed=True),
        ev(40.0, 200, "checkpoint_complete", rule="quiet=2", latency=2.0),
        ev(41.0, 200, "committed", bytes=3000, seconds=1.0),
        ev(71.0, 200, "evicting", signal=15, budget=None),
        ev(72.0, 200, "exit", status=143, reason="evicted"),
        ev(80.0, 300, "restored", sequence=3, bytes=3000, seconds=0.5, files=1),
        ev(82.0, 902, "started", resumed=True),
        ev(90.0, 300, "done", code=0),
        ev(91.0, 300, "exit", status=0, reason="program exited"),
    ]


def test_formulas():
    """Rule: Young is sqrt(2CM); Daly is sqrt(2CM)(1 + sqrt(C/2M)/3 + (C/2M)/9) - C below
    C = 2M, and M from there on."""
    assert young(2.0, 3600.0) == pytest.approx(120.0)
    r = 2.0 / 7200.0
    assert daly(2.0, 3600.0) == pytest.approx(120.0 * (1 + math.sqrt(r) / 3 + r / 9) - 2.0)
    assert daly(100.0, 40.0) == 40.0


def test_supervisor_log_summary(tmp_path):
    """Rule: runs are split per supervisor process; checkpoint cost C = mean commit + mean
    completion latency + mean restart overhead (the runs exit at checkpoints); the time lost is
    HTCondor's: everything after the last checkpoint upload, so the whole evicted run (its own
    commit does not count: evictions add nothing to CommittedTime); M observed is time running
    over interruptions."""
    s = report(str(write_events(tmp_path / "e.jsonl", history())))
    assert s["runs"] == 3 and s["ends"] == {"checkpoint": 1, "evicted": 1, "finished": 1}
    assert s["checkpoints"] == 3 and s["bytes_last"] == 3000
    assert s["commit_seconds_mean"] == pytest.approx(1.0)
    assert s["latency_mean"] == pytest.approx(2.0)
    assert s["restart_overhead_mean"] == pytest.approx(2.0)
    assert s["checkpoint_cost"] == pytest.approx(5.0)
    assert s["time_lost"] == pytest.approx(72.0 - 30.0)
    assert s["interruptions"] == 1
    assert s["cost_includes"] == ["completion latency", "commit", "restart overhead (restore)"]
    assert s["cost_excludes"] == ["HTCondor's upload and restart (give --job-log JOBLOG)"]
    assert s["time_running"] == pytest.approx(21.5 + 42.0 + 11.0)
    assert s["mtbf"] == pytest.approx(74.5) and s["mtbf_source"] == "observed"
    assert s["young"] == pytest.approx(young(5.0, 74.5))
    assert s["daly"] == pytest.approx(daly(5.0, 74.5))


def test_unuploaded_commit_is_lost(tmp_path):
    """Rule: a run whose last commit the next run did not restore (the upload never happened)
    counts as interrupted, and all of it is lost (nothing of it was uploaded as a checkpoint)."""
    records = history()
    records[8] = ev(30.0, 200, "restored", sequence=1, bytes=1000, seconds=0.5, files=1)
    records[14] = ev(80.0, 300, "restored", sequence=2, bytes=3000, seconds=0.5, files=1)
    s = report(str(write_events(tmp_path / "e.jsonl", records)))
    assert s["ends"]["evicted"] == 2
    assert s["time_lost"] == pytest.approx(21.5 + (72.0 - 30.0))


def test_killed_run_without_exit(tmp_path):
    """Rule: a run with no exit event before the next one (SIGKILL, crash) is 'killed' and loses
    everything since its start (its first event)."""
    records = [
        *history()[:8],
        ev(30.0, 200, "restored", sequence=2, bytes=2000, seconds=0.5, files=1),
        ev(31.0, 901, "started", resumed=True),
        ev(45.0, 200, "signal_forwarded", signal=10),
        ev(50.0, 300, "restored", sequence=2, bytes=2000, seconds=0.5, files=1),
        ev(51.0, 902, "started", resumed=True),
        ev(60.0, 300, "exit", status=0, reason="x"),
    ]
    s = report(str(write_events(tmp_path / "e.jsonl", records)))
    assert s["ends"]["killed"] == 1
    assert s["time_lost"] == pytest.approx(45.0 - 30.0)


def test_soft_kill_is_an_eviction_not_a_failure(tmp_path, capsys):
    """Rule (issue 13.5): a run the soft kill reached (kill_sent, without --checkpoint-on-evict)
    is counted as evicted whatever its exit status (143 here), not as failed, and its time is
    lost."""
    records = [*history()[:12], ev(71.0, 200, "kill_sent", signal=15, grace=10.0),
               ev(72.0, 200, "exit", status=143, reason="program exited"), *history()[14:]]
    s = report(str(write_events(tmp_path / "e.jsonl", records)))
    assert s["ends"] == {"checkpoint": 1, "evicted": 1, "finished": 1}
    assert s["time_lost"] == pytest.approx(72.0 - 30.0)
    assert main(["report", str(tmp_path / "e.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "1 evicted" in out and "failed" not in out


def test_job_log_adds_htcondor_upload_and_restart(tmp_path, capsys):
    """Rule (issue 13.5): with --job-log, C includes HTCondor's upload and restart: the time
    from a checkpoint exit to the next run, for restarts in place (no 001 in between); the text
    says what C includes."""
    events_path = write_events(tmp_path / "e.jsonl", history())
    log, at = timed_log(tmp_path / "job.log", start=0.0)
    at(0, log.submit)
    at(0, log.execute)  # t = 0: one execution; run 2 (t = 30) restarts in place after 21.5
    at(60, log.evicted)
    at(79, log.execute)
    s = report(str(events_path), job_log=str(tmp_path / "job.log"))
    assert s["htcondor_restart_mean"] == pytest.approx(30.0 - 21.5)
    assert s["checkpoint_cost"] == pytest.approx(5.0 + 8.5)
    assert "HTCondor's upload and restart (from the job log)" in s["cost_includes"]
    assert main(["report", str(events_path), "--job-log", str(tmp_path / "job.log"),
                 "--mtbf", "3600"]) == 0
    out = capsys.readouterr().out
    assert "cost per checkpoint C: 13.5 s = completion latency + commit + restart overhead " \
           "(restore) + HTCondor's upload and restart (from the job log)" in out


def test_given_mtbf_wins(tmp_path, capsys):
    """Rule: --mtbf replaces the observed rate, and the text output states both formulas and
    the --every they suggest."""
    path = write_events(tmp_path / "e.jsonl", history())
    assert main(["report", str(path), "--mtbf", "3600"]) == 0
    out = capsys.readouterr().out
    assert "T = sqrt(2*C*M)" in out and "C/(2*M)" in out and "(given)" in out
    assert f"--every {round(daly(5.0, 3600.0))}" in out


def test_no_eviction_no_interval(tmp_path, capsys):
    """Rule: with no eviction observed and no --mtbf, M is unknown and no interval is printed."""
    path = write_events(tmp_path / "e.jsonl", history()[:8])
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert "give --mtbf" in out and "Young" not in out


def test_htcondor_job_event_log(tmp_path):
    """Rule: a classic job event log works too: 001 starts a run; a 040 pair not followed by
    an eviction or termination is a checkpoint upload (its cost, to the second); 004 is an
    eviction losing the time since the last upload."""
    log, at = timed_log(tmp_path / "job.log")
    at(0, log.submit)
    at(10, log.execute)
    at(100, log.transfer_output_started)
    at(103, log.transfer_output_finished)
    at(200, log.transfer_output_started)
    at(205, log.transfer_output_finished)
    at(250, log.transfer_output_started)
    at(251, log.transfer_output_finished)
    at(251, log.evicted, sent_bytes=10)
    at(300, log.execute)
    at(400, log.terminated, exit_code=0)
    s = report(str(tmp_path / "job.log"), mtbf=1000.0)
    assert s["runs"] == 2 and s["ends"] == {"evicted": 1, "finished": 1}
    assert s["checkpoints"] == 2
    assert s["commit_seconds_mean"] == pytest.approx(4.0)
    assert s["time_lost"] == pytest.approx(251 - 205)
    assert s["young"] == pytest.approx(young(4.0, 1000.0))


def test_htcondor_log_read_by_htcondor2_too(tmp_path, htcondor2):
    """Rule: the log the report test builds is one htcondor2.JobEventLog reads (so the format
    report parses is HTCondor's)."""
    log = EventLog(tmp_path / "job.log")
    log.submit()
    log.execute()
    log.evicted()
    events = list(htcondor2.JobEventLog(str(tmp_path / "job.log")).events(0))
    assert [int(e.type) for e in events] == [0, 1, 4]
    assert report(str(tmp_path / "job.log"))["ends"] == {"evicted": 1}


@pytest.mark.parametrize("text", ["not a log\n", '{"broken json\n', ""])
def test_bad_input_is_usage_error(tmp_path, capsys, text):
    """Rule: a file that is neither log, or unreadable, is a usage error (64) with a message."""
    path = tmp_path / "x"
    path.write_text(text)
    assert main(["report", str(path)]) == exitstatus.EXIT_USAGE
    assert main(["report", str(tmp_path / "missing")]) == exitstatus.EXIT_USAGE
    assert "error:" in capsys.readouterr().err


def test_checkpoint_upload_then_later_eviction(tmp_path):
    """Rule: a checkpoint upload followed (seconds later, with no event in between: the restart
    in place writes none) by an eviction is a checkpoint, so only the time after it is lost;
    an upload in the same second as the 004 is the eviction's own (ON_EXIT_OR_EVICT)."""
    log, at = timed_log(tmp_path / "job.log")
    at(0, log.submit)
    at(10, log.execute)
    at(20, log.transfer_output_started)
    at(20, log.transfer_output_finished)
    at(27, log.evicted)  # no upload at this eviction (ON_EXIT)
    at(30, log.execute)
    at(40, log.transfer_output_started)
    at(40, log.transfer_output_finished)
    at(40, log.evicted)  # ON_EXIT_OR_EVICT: the upload just before, same second
    at(50, log.execute)
    at(60, log.terminated, exit_code=0)
    s = report(str(tmp_path / "job.log"))
    assert s["checkpoints"] == 1
    assert s["time_lost"] == pytest.approx((27 - 20) + (40 - 30))


def test_requeued_end_is_not_an_eviction():
    """Rule: a 004 "Job terminated and was requeued" (OnExitRemove false: max_retries ...) ends
    the run as requeued, not evicted: no interruption for the eviction rate, and its time after
    the last checkpoint upload is lost (the next execution starts from that upload). The log is
    the real pool's (HTCondor 25.0.13, max_retries = 2, a job that checkpoints once and then
    keeps exiting 3)."""
    s = report(str(ROOT / "tests/data/eventlogs/max_retries_2.pool.log"))
    assert s["runs"] == 3 and s["ends"] == {"failed": 1, "requeued": 2}, s["ends"]
    assert s["checkpoints"] == 1 and s["interruptions"] == 0 and s["mtbf"] is None


def test_requeued_time_after_the_last_upload_is_lost(tmp_path):
    """Rule: the time from the last checkpoint upload to a requeued end is lost, as for an
    eviction, and the run's exit status is read from the 004."""
    log, at = timed_log(tmp_path / "job.log")
    at(0, log.submit)
    at(10, log.execute)
    at(100, log.transfer_output_started)
    at(103, log.transfer_output_finished)
    at(160, log.transfer_output_started)
    at(160, log.transfer_output_finished)
    at(160, log.requeued, exit_code=3, expression="ExitCode == 0")
    at(200, log.execute)
    at(300, log.terminated, exit_code=0)
    s = report(str(tmp_path / "job.log"))
    assert s["ends"] == {"finished": 1, "requeued": 1}
    assert s["time_lost"] == pytest.approx(160 - 103)


def test_requeue_event_read_by_htcondor2_as_the_pools(tmp_path, htcondor2):
    """Rule: the dry run's requeue 004 is one htcondor2.JobEventLog reads as it reads the real
    pool's (type 4, the same "terminated and was requeued" attributes)."""
    log = EventLog(tmp_path / "job.log")
    log.submit()
    log.execute()
    log.requeued(exit_code=3, sent_bytes=14, expression="NumJobCompletions > JobMaxRetries || ExitCode =?= 0")
    ours = list(htcondor2.JobEventLog(str(tmp_path / "job.log")).events(0))[-1]
    pool = next(e for e in htcondor2.JobEventLog(
        str(ROOT / "tests/data/eventlogs/max_retries_2.pool.log")).events(0) if int(e.type) == 4)
    assert int(ours.type) == 4
    assert {k: ours.get(k) for k in ("TerminatedAndRequeued", "TerminatedNormally", "ReturnValue",
                                     "Reason", "SentBytes")} == {
        k: pool.get(k) for k in ("TerminatedAndRequeued", "TerminatedNormally", "ReturnValue",
                                 "Reason", "SentBytes")}
