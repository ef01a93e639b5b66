"""condor_vacate_job at many points of a checkpointing job on a real pool: never held, resumed
from the last committed checkpoint, the same result.

The job: jobs/work.py counts 24 steps; the supervisor asks it for a checkpoint every 2 s on its own
timer (SIGUSR1), waits for its ``saved N`` line, commits state.txt (padded, so that the commit and
the upload take a moment) and exits 85. Each test picks the moment of the eviction by an event,
never by a sleep: a line the program writes (its journal and the sandbox's progress.log), a line
of the supervisor's ``--events`` log in the sandbox, or an event of the job's event log.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support.poolkit import (
    TIMER_JOB,
    TIMER_RUN,
    Job,
    Pool,
    is_output_start,
    journal,
    outcome,
    result_bytes,
    submitted,
    work_submit,
)

pytestmark = pytest.mark.htcondor

STEPS = 24
RUN = TIMER_RUN
PROGRAM = f"--steps {STEPS} --step-time 0.25 --save-on SIGUSR1 --save-time 0.3 --pad 8000000"
SETTINGS = TIMER_JOB


def _starts(lines: list[str]) -> list[tuple[int, int]]:
    """(journal index, value) of every ``start N`` line."""
    return [(i, int(line.split()[1])) for i, line in enumerate(lines) if line.startswith("start ")]


def _saved_before(lines: list[str], index: int) -> list[int]:
    return [int(line.split()[1]) for line in lines[:index] if line.startswith("saved ")]


def _events_file_has(job: Job, kind: str, after: int) -> bool:
    """The sandbox's ckpt-events.jsonl has at least ``after + 1`` lines of event ``kind``."""
    path = job.sandbox_file("ckpt-events.jsonl")
    if path is None:
        return False
    try:
        kinds = [json.loads(line).get("event") for line in path.read_text().splitlines() if line.strip()]
    except (OSError, ValueError):
        return False
    return kinds.count(kind) > after


def _second_run_started(job: Job) -> bool:
    return any(s > 0 for _, s in _starts(journal(job.dir)))


def moment_running(job: Job) -> None:
    # the program runs again after its first checkpoint (restarted in place from a committed one)
    def ready() -> bool:
        lines = journal(job.dir)
        starts = [i for i, s in _starts(lines) if s > 0]
        return bool(starts) and any(line.startswith("running") for line in lines[starts[0]:])
    job.wait_for_condition(ready, "the program running after its first checkpoint")


def moment_writing(job: Job) -> None:
    # the program is half-way through writing state.txt (it hangs there, once)
    job.wait_for_condition(lambda: (job.dir / "hang.once").exists() and "hang" in journal(job.dir),
                           "the program hanging half-way through writing its checkpoint")


def moment_commit(job: Job) -> None:
    # the supervisor found the second checkpoint complete and is committing it
    job.wait_for_condition(lambda: _second_run_started(job) and _events_file_has(job, "checkpoint_complete", 0),
                           "checkpoint_complete in the supervisor's events log of a resumed run")


def moment_upload(job: Job) -> None:
    # HTCondor started uploading the second checkpoint
    job.wait_event(is_output_start, 180, "the second checkpoint upload", count=2)


MOMENTS = {
    "program-running": (moment_running, ""),
    "program-writing-its-checkpoint": (moment_writing, "--hang-in-save --once {dir}/hang.once"),
    "our-commit": (moment_commit, ""),
    "the-upload": (moment_upload, ""),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_vacate_at_a_moment_is_never_held(pool: Pool, pyz: Path, folder: Path, moment: str) -> None:
    """Rule: condor_vacate_job while the program runs, while it writes its checkpoint, while we
    commit, or while HTCondor uploads: the job is never held, the next execution resumes from the
    last committed checkpoint, and the job ends with exit 0 and the uninterrupted result."""
    wait, extra = MOMENTS[moment]
    submit = work_submit(folder, pyz, RUN, f"{PROGRAM} {extra.format(dir=folder)}", SETTINGS)
    with submitted(pool, folder, submit) as job:
        wait(job)
        mark = len(journal(job.dir))
        job.vacate()
        job.wait_end(240)
        res = outcome(job, set())
        ctx = job.context()
    lines = journal(folder)
    assert res.state == "terminated", f"{res}\n{ctx}"
    assert res.exit_code == 0, ctx
    assert res.evictions == 1, ctx
    assert (folder / "result.txt").read_bytes() == result_bytes(STEPS), ctx
    assert res.uploads >= 2, ctx
    # a pair per checkpoint upload and the final transfer; none at the eviction (no ON_EXIT_OR_EVICT)
    assert res.transfers == res.uploads + 1, ctx
    # the first start after the eviction resumes from the last checkpoint that was committed:
    # the last one saved before it (a commit or upload the eviction interrupted may be lost)
    after = [(i, s) for i, s in _starts(lines) if i >= mark]
    assert after, f"no start after the eviction in the journal {lines}"
    index, value = after[0]
    saved = _saved_before(lines, index)
    allowed = set(saved[-2:]) if moment in ("our-commit", "the-upload") else set(saved[-1:])
    assert value in allowed | ({0} if not saved else set()), (
        f"restarted from {value}; saved before: {saved}\n{lines}\n{ctx}")
    assert re.search(r"Job was evicted", "\n".join(e.text for e in job.events())), ctx
