"""The checkpoint signal, the reserved code, exit by signal, short vacate times, hold/release,
graceful removal and leftover processes, each on a real pool with the .pyz as the executable.

What is right is /work/shared/htcondor-semantics.md (HTCondor's source): rule 8 (after the
checkpoint signal every exit must be the checkpoint status, an eviction included), rule 9 (the
soft kill is RemoveKillSig when set), the vacate time (the smaller of job_max_vacate_time and the
machine's MachineMaxVacateTime). Moments are picked by events the program or HTCondor writes.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import psutil
import pytest
from support.poolkit import (
    SIGNAL_JOB,
    TIMER_JOB,
    TIMER_RUN,
    Pool,
    journal,
    outcome,
    result_bytes,
    submitted,
    wait_for,
    work_submit,
)

pytestmark = pytest.mark.htcondor



@pytest.mark.timeout(300)
def test_eviction_while_the_program_saves_after_the_checkpoint_signal_is_not_held(
        pool: Pool, pyz: Path, folder: Path) -> None:
    """Rule 8 (the issue's held case): the program needs 7 s to save after the translated
    checkpoint signal (SIGINT) and exits 130; condor_vacate_job during those seconds must not put
    the job on hold (36 "Job did not exit as promised"): the job resumes and finishes with 0."""
    steps = 100  # 25 s: long enough that the pool's periodic signal comes first, even on a busy machine
    submit = work_submit(folder, pyz, "run --checkpoint state.txt --job-signal SIGINT --complete-when exit",
                         f"--steps {steps} --step-time 0.25 --on-signal-sleep-exit 7:130", SIGNAL_JOB)
    with submitted(pool, folder, submit) as job:
        job.wait_for_condition(lambda: any(x.startswith("saving") for x in journal(folder)),
                               "the program saving after the checkpoint signal")
        job.vacate()
        job.wait_end(240)
        res = outcome(job, set())
        ctx = job.context()
    assert res.state != "held", f"held: {res.hold_code}/{res.hold_subcode} {res.hold_reason}\n{ctx}"
    assert res.state == "terminated" and res.exit_code == 0, ctx
    assert res.evictions == 1, ctx
    assert (folder / "result.txt").read_bytes() == result_bytes(steps), ctx


@pytest.mark.timeout(300)
def test_program_that_finishes_right_after_the_checkpoint_signal(pool: Pool, pyz: Path, folder: Path) -> None:
    """Rule 8: a program that ends (status 7, result written) right after the translated
    checkpoint signal is not held: the supervisor reports the checkpoint status over the
    unchanged store, and the next execution reports the program's real status, 7, which
    condor_history shows as ExitCode."""
    submit = work_submit(folder, pyz, "run --checkpoint state.txt --job-signal SIGINT --complete-when exit",
                         "--steps 100000 --step-time 0.1 --save-on SIGINT --finish-on-signal 7", SIGNAL_JOB)
    with submitted(pool, folder, submit) as job:
        job.wait_end(240)
        res = outcome(job, set())
        ctx = job.context()
    assert res.state == "terminated", f"{res.state}: {res.hold_code}/{res.hold_subcode} {res.hold_reason}\n{ctx}"
    assert res.exit_code == 7, ctx
    assert res.uploads == 1, ctx
    assert res.extra["NumJobStarts"] == "1", ctx  # restarted in place, one execution
    assert (folder / "result.txt").read_bytes() == result_bytes(100000), ctx


@pytest.mark.timeout(240)
def test_program_exiting_with_the_reserved_code(pool: Pool, pyz: Path, folder: Path) -> None:
    """Rule: the program's own exit 85 is not a committed checkpoint: the supervisor ends the
    job with 65 at once; HTCondor uploads nothing and starts it once."""
    submit = work_submit(folder, pyz, "run --checkpoint state.txt",
                         "--steps 4 --step-time 0.1 --exit-code 85", "checkpoint_exit_code = 85\n"
                         "transfer_checkpoint_files = checkpoint.atomic\ntransfer_output_files = result.txt")
    with submitted(pool, folder, submit) as job:
        job.wait_end(180)
        res = outcome(job, set())
        ctx = job.context()
    assert res.state == "terminated" and res.exit_code == 65, ctx
    assert res.uploads == 0, ctx
    assert res.extra["NumJobStarts"] == "1", ctx
    assert (folder / "result.txt").read_bytes() == result_bytes(4), ctx


@pytest.mark.timeout(240)
def test_checkpoint_reported_by_signal(pool: Pool, pyz: Path, folder: Path) -> None:
    """Rule: with +SuccessCheckpointExitBySignal and a numeric +SuccessCheckpointExitSignal (12),
    the supervisor reports each committed checkpoint by dying from SIGUSR2; HTCondor uploads and
    restarts; the job ends with exit 0 and the full result."""
    steps = 24
    submit = work_submit(folder, pyz, TIMER_RUN, f"--steps {steps} --step-time 0.25 --save-on SIGUSR1",
                         "+WantFTOnCheckpoint = true\n+SuccessCheckpointExitBySignal = true\n"
                         "+SuccessCheckpointExitSignal = 12\ntransfer_checkpoint_files = checkpoint.atomic\n"
                         "transfer_output_files = result.txt")
    with submitted(pool, folder, submit) as job:
        job.wait_end(180)
        res = outcome(job, set())
        ctx = job.context()
    assert res.state == "terminated" and res.exit_code == 0, ctx
    assert res.uploads >= 2, ctx
    assert res.extra["NumJobStarts"] == "1", ctx
    assert (folder / "result.txt").read_bytes() == result_bytes(steps), ctx


@pytest.mark.timeout(300)
def test_job_max_vacate_time_shorter_than_our_defaults(pool: Pool, pyz: Path, folder: Path) -> None:
    """Rule: job_max_vacate_time = 5 (shorter than the default kill grace) is a valid setting:
    the job runs (no usage error 64), survives a condor_vacate_job and finishes with 0."""
    steps = 24
    submit = work_submit(folder, pyz, TIMER_RUN, f"--steps {steps} --step-time 0.25 --save-on SIGUSR1",
                         TIMER_JOB + "job_max_vacate_time = 5\n")
    with submitted(pool, folder, submit) as job:
        wait_for(lambda: any(x.startswith("saved") for x in journal(folder))
                 or any(e.code in (5, 12) for e in job.events()), 180, "a first checkpoint or the end",
                 context=job.context)
        if not any(e.code in (5, 12) for e in job.events()):
            job.vacate()
        job.wait_end(240)
        res = outcome(job, set())
        ctx = job.context()
    assert res.extra["ExitCode"] != "64", f"the supervisor refused job_max_vacate_time = 5 (exit 64)\n{ctx}"
    assert res.state == "terminated", ctx
    assert res.exit_code == 0, ctx
    assert res.evictions == 1, ctx
    assert (folder / "result.txt").read_bytes() == result_bytes(steps), ctx


@pytest.mark.timeout(300)
def test_hold_then_release(pool: Pool, pyz: Path, folder: Path) -> None:
    """Rule: condor_hold after a committed checkpoint holds the job with code 1 (by the user);
    condor_release runs it again from that checkpoint; it ends with 0 and the full result."""
    steps = 24
    submit = work_submit(folder, pyz, TIMER_RUN, f"--steps {steps} --step-time 0.25 --save-on SIGUSR1", TIMER_JOB)
    with submitted(pool, folder, submit) as job:
        job.wait_event(lambda e: e.code == 40 and e.text.startswith("Finished transferring output"), 180,
                       "the first checkpoint upload")
        mark = len(journal(folder))
        pool.tool("condor_hold", str(job.cluster))
        held = job.wait_event(lambda e: e.code == 12, 120, "the hold")
        ad = job.ad()
        pool.tool("condor_release", str(job.cluster))
        job.wait_event(lambda e: e.code == 5, 240, "the end after the release")
        res = outcome(job, set())
        ctx = job.context()
    assert ad.get("HoldReasonCode") == "1", f"{ad}\n{held}\n{ctx}"
    assert res.state == "terminated" and res.exit_code == 0, ctx
    lines = journal(folder)
    restart = [int(x.split()[1]) for x in lines[mark:] if x.startswith("start ")]
    saved = [int(x.split()[1]) for x in lines[:mark] if x.startswith("saved ")]
    assert restart and saved and restart[0] >= saved[0], f"{lines}\n{ctx}"
    assert (folder / "result.txt").read_bytes() == result_bytes(steps), ctx


def _processes_with(text: str) -> list[int]:
    found = []
    for p in psutil.process_iter(["cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            if p.info["status"] != psutil.STATUS_ZOMBIE and text in " ".join(p.info["cmdline"] or []):
                found.append(p.pid)
    return found


@pytest.mark.timeout(240)
def test_graceful_remove_passes_remove_kill_sig(pool: Pool, pyz: Path, folder: Path) -> None:
    """Rule 9: condor_rm of a running job sends RemoveKillSig (here SIGQUIT, kill_sig SIGTERM) to
    the supervisor, which passes it on: the program sees SIGQUIT, not SIGTERM; the job is
    removed (009), never held, and no process of it is left."""
    submit = work_submit(folder, pyz, "run --checkpoint state.txt",
                         "--steps 100000 --step-time 0.2 --log-signals SIGQUIT,SIGTERM",
                         "kill_sig = SIGTERM\nremove_kill_sig = SIGQUIT\ncheckpoint_exit_code = 85\n"
                         "transfer_checkpoint_files = checkpoint.atomic")
    with submitted(pool, folder, submit) as job:
        job.wait_for_condition(lambda: "running 3" in journal(folder), "the program running")
        pool.tool("condor_rm", str(job.cluster))
        job.wait_end(120, ends=(9, 12))
        res = outcome(job, set())
        ctx = job.context()
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not _processes_with(str(folder)), 30, "the job's processes gone")
    assert res.state == "removed", ctx
    lines = journal(folder)
    assert not _processes_with(str(folder)), f"processes left: {_processes_with(str(folder))}"
    assert "signal 3" in lines, f"the program did not get RemoveKillSig (SIGQUIT): {lines}\n{ctx}"
    assert "signal 15" not in lines, f"the program got KillSig instead of RemoveKillSig: {lines}"


@pytest.mark.timeout(240)
def test_leftover_grandchild_is_gone_at_the_restart(pool: Pool, pyz: Path, folder: Path) -> None:
    """Rule 2: the starter restarts a checkpointed job in place without killing leftovers, so the
    supervisor must: a grandchild in its own session, left by the first run, is gone once the
    first checkpoint is uploaded, and nothing of the job is left at the end."""
    steps = 12
    submit = work_submit(folder, pyz, "run --checkpoint state.txt --inspect-on-exit 77",
                         f"--steps {steps} --step-time 0.2 --every-steps 4 --exit-after-save 77 "
                         f"--grandchild {folder}/grandchild.pid", TIMER_JOB)
    with submitted(pool, folder, submit) as job:
        job.wait_event(lambda e: e.code == 40 and e.text.startswith("Finished transferring output"), 180,
                       "the first checkpoint upload")
        wait_for((folder / "grandchild.pid").exists, 30, "grandchild.pid", context=job.context)
        pid = int((folder / "grandchild.pid").read_text())

        def grandchild_alive() -> bool:
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(pid)
                return p.status() != psutil.STATUS_ZOMBIE and "time.sleep(600)" in " ".join(p.cmdline())
            return False
        alive_at_restart = grandchild_alive()
        job.wait_end(180)
        res = outcome(job, set())
        ctx = job.context()
    try:
        assert not alive_at_restart, f"the grandchild {pid} outlived the checkpoint exit\n{ctx}"
        assert res.state == "terminated" and res.exit_code == 0, ctx
        assert res.uploads == 2, ctx
        assert (folder / "result.txt").read_bytes() == result_bytes(steps), ctx
    finally:
        if grandchild_alive():
            psutil.Process(pid).kill()
