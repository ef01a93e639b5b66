"""Torn and mixed checkpoints (issue 12, items 1 and 3), end to end through ``ckpt-supervisor run``.

The rule: an eviction at any moment leaves only a complete checkpoint behind. Every committed
store is checked with the program's own consistency check (``tests/victims/rewriter.py
--check``: every file complete and all of one step), never only with the store's checksums,
which a mixed store passes.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support.relutil import CHECKPOINT_STATUS, PY, STORE, VICTIMS, events, run, verify_store

REWRITER = str(VICTIMS / "rewriter.py")
NAMES = "a.bin,b.bin,meta.json"


def rewriter(*args: str) -> list[str]:
    return [PY, REWRITER, *args]


def store_check(sandbox: Path, top: str = "ckpt", names: str = NAMES) -> tuple[bool, str]:
    """(complete, message) of the committed store's copy of ``top``, by the program's own check."""
    res = subprocess.run([PY, REWRITER, "--check", "--names", names, str(sandbox / STORE / top)],
                         capture_output=True, text=True, timeout=30)
    return res.returncode == 0, (res.stdout + res.stderr).strip()


def committed(sandbox: Path) -> int:
    return sum(1 for e in events(sandbox) if e.get("event") == "committed")


@pytest.mark.timeout(180)
@pytest.mark.parametrize("freeze", ["true", "false"])
def test_a_continuous_multi_file_writer_gets_only_whole_checkpoints_committed(sandbox, freeze):
    """Item 1: a program rewriting ckpt/a.bin, ckpt/b.bin (2 MiB each, in place) and then
    ckpt/meta.json every 1-10 ms, under --watch --complete-when marker=ckpt/meta.json: every
    store committed holds one step in every file (checked by the program's own check after each
    commit), and checkpoints are still committed; with the program held still during the copy
    (the default) and without (--freeze false: the store's after-copy check alone)."""
    args = ["--checkpoint", "ckpt", "--watch", "--complete-when", "marker=ckpt/meta.json",
            "--freeze", freeze]
    # held still, even a writer that never pauses for more than 10 ms gets its checkpoints
    # committed; without the hold a commit must fall between two writes: give it pauses to 50 ms
    top = "0.01" if freeze == "true" else "0.05"
    program = rewriter("--dir", "ckpt", "--meta", "meta.json", "--min", "0.001", "--max", top,
                       "--report", str(sandbox / "report.txt"))
    mixed: list[str] = []
    commits = 0
    for _ in range(10):
        res = run(sandbox, args, program, timeout=90)
        assert res.returncode == CHECKPOINT_STATUS, res.stderr
        verify_store(sandbox, paths=("ckpt",))  # the checksums always verify, mixed or not
        ok, why = store_check(sandbox)
        commits += 1
        if not ok:
            mixed.append(why)
    assert commits == 10
    assert mixed == [], f"{len(mixed)} of 10 committed stores were mixed or torn: {mixed[:3]}"
    torn_starts = [ln for ln in (sandbox / "report.txt").read_text().splitlines() if ln.startswith("TORN")]
    assert torn_starts == []


def commit_store(sandbox: Path, step: int, names=("a.bin", "b.bin"), size: int = 65536) -> None:
    """A committed store of ``ckpt`` holding a complete checkpoint of ``step`` (no working files)."""
    import shutil
    import struct

    from supervisor.store import Store

    work = sandbox / "ckpt"
    work.mkdir()
    for n in names:
        (work / n).write_bytes(struct.pack("<Q", step) * (size // 8))
    Store(sandbox, sandbox / STORE, ["ckpt"]).commit({"sequence": 1})
    shutil.rmtree(work)


@pytest.mark.timeout(120)
def test_closed_never_commits_an_empty_checkpoint_and_a_loop_without_progress_ends_with_76(sandbox):
    """Item 3: a program that recreates ckpt/ (an empty directory first), writes a.bin, pauses
    2 s and writes b.bin, under --watch --complete-when closed: no store is ever committed
    empty; `closed` cannot know b.bin is coming, so the first commit holds a.bin only and every
    restart resumes from step 0 and commits the same bytes again: after --max-no-progress 3 such
    executions the job ends with status 76 and one line saying why, instead of looping."""
    args = ["--checkpoint", "ckpt", "--watch", "--complete-when", "closed", "--max-no-progress", "3"]
    # the 2 s pause lets a loaded machine commit a.bin before b.bin comes (the run ends at that
    # commit, so the pause costs nothing); with 0.6 s a late commit could hold both files
    program = rewriter("--dir", "ckpt", "--files", "a.bin,b.bin", "--fresh", "--gap", "2",
                       "--size", "65536", "--min", "0.3", "--max", "0.3")
    statuses = []
    for _ in range(8):
        res = run(sandbox, args, program, timeout=60)
        statuses.append(res.returncode)
        if res.returncode != CHECKPOINT_STATUS:
            break
        verify_store(sandbox, paths=("ckpt",))
        stored = [p for p in (sandbox / STORE / "ckpt").iterdir()]
        assert stored and sum(p.stat().st_size for p in stored) > 0, "an empty checkpoint was committed"
    assert statuses[-1] == 76, statuses
    assert len(statuses) <= 6, statuses
    lines = [ln for ln in res.stderr.splitlines() if "no progress" in ln]
    assert len(lines) == 1 and "--max-no-progress 3" in lines[0], res.stderr
    assert verify_store(sandbox, paths=("ckpt",))  # kept for inspection


@pytest.mark.timeout(120)
@pytest.mark.parametrize("rule", ["closed", "quiet=0.3"])
def test_after_a_restore_guesses_never_commit_fewer_files_than_the_last_checkpoint(sandbox, rule):
    """Item 3: after restoring a complete two-file checkpoint (step 5), a program that recreates
    its files with 0.6 s between a.bin and b.bin, under `closed` or a short `quiet=`, gets the
    whole next checkpoint committed (both files of step 6), never an empty or half one."""
    commit_store(sandbox, 5)
    args = ["--checkpoint", "ckpt", "--watch", "--complete-when", rule]
    program = rewriter("--dir", "ckpt", "--files", "a.bin,b.bin", "--fresh", "--gap", "0.6",
                       "--size", "65536", "--min", "1", "--max", "1",
                       "--report", str(sandbox / "report.txt"))
    res = run(sandbox, args, program, timeout=60)
    assert res.returncode == CHECKPOINT_STATUS, res.stderr
    ok, why = store_check(sandbox, names="a.bin,b.bin")
    assert ok, why
    assert (sandbox / "report.txt").read_text().splitlines() == ["start 5"]


@pytest.mark.timeout(180)
def test_the_dry_run_of_a_job_without_progress_ends_with_76(tmp_path):
    """Item 3, through the dry run: the same program and rules in a submit file; instead of
    restarting forever (the dry run counted executions, never ending), the job terminates with
    exit code 76 after --max-no-progress 3 executions that committed what they had restored."""
    from support.relutil import ENV, ROOT

    words = [PY, "-m", "supervisor", "run", "--checkpoint", "ckpt", "--watch", "--complete-when", "closed",
             "--max-no-progress", "3", "--", PY, REWRITER, "--dir", "ckpt", "--files", "a.bin,b.bin", "--fresh",
             "--gap", "2", "--size", "65536", "--min", "0.3", "--max", "0.3"]  # see the test above
    (tmp_path / "job.submit").write_text("\n".join([
        "executable = /usr/bin/env",
        "transfer_executable = false",
        'arguments = "' + " ".join(words) + '"',
        f'environment = "PYTHONPATH={ROOT}"',
        "should_transfer_files = YES",
        "when_to_transfer_output = ON_EXIT",
        "checkpoint_exit_code = 85",
        "transfer_checkpoint_files = checkpoint.atomic",
        "log = job.log",
        "queue",
    ]) + "\n")
    res = subprocess.run([PY, "-m", "supervisor", "dry-run", "job.submit", "--max-starts", "20",
                          "--work-dir", str(tmp_path / "work")], cwd=tmp_path,
                         env=ENV, capture_output=True, text=True, timeout=150)
    assert res.returncode == 76, res.stdout + res.stderr
    assert "exit code 76" in res.stdout, res.stdout


STEP_AFTER_MARKER = r"""
import os, struct, sys, time
def put(name, step, size, upto=None):
    fd = os.open(os.path.join("ckpt", name), os.O_WRONLY | os.O_CREAT, 0o644)
    data = struct.pack("<Q", step) * (size // 8)
    os.pwrite(fd, data[:upto] if upto is not None else data, 0)
    os.ftruncate(fd, size)
    os.close(fd)
def meta(step):
    with open(os.path.join("ckpt", "meta.json"), "w") as f:
        f.write('{"step": %d}\n' % step)
os.makedirs("ckpt", exist_ok=True)
size = 1 << 20
put("a.bin", 1, size); put("b.bin", 1, size); meta(1)
put("a.bin", 2, size, upto=size // 2)   # the next step starts at once: a.bin half rewritten
print("ready", flush=True)
time.sleep(1.5)
put("a.bin", 2, size); put("b.bin", 2, size); meta(2)
time.sleep(60)
"""


@pytest.mark.timeout(60)
def test_a_file_written_after_the_marker_in_the_same_clock_tick_is_not_complete(sandbox):
    """Item 1: the program writes step 1 (a.bin, b.bin, then the marker meta.json) and at once
    rewrites half of a.bin for step 2, then pauses: a.bin's time is the marker's (Linux gives a
    file nobody looked at since its last write the same coarse timestamp), so file times cannot
    tell that a.bin came after the marker. The order of inotify events can: that state is never
    committed; step 2, once complete, is."""
    args = ["--checkpoint", "ckpt", "--watch", "--complete-when", "marker=ckpt/meta.json"]
    res = run(sandbox, args, [PY, "-c", STEP_AFTER_MARKER], timeout=50)
    assert res.returncode == CHECKPOINT_STATUS, res.stderr
    ok, why = store_check(sandbox)
    assert ok, why


@pytest.mark.timeout(30)
def test_inotify_order_tells_a_write_after_the_marker(tmp_path):
    """watch.Inotify.written_after: a checkpoint file written after the marker is seen as such
    even when its time equals the marker's; a marker written last clears it."""
    from supervisor.watch import Inotify

    ino = Inotify()
    try:
        ckpt = tmp_path / "ckpt"
        ckpt.mkdir()
        ino.watch_dirs([tmp_path, ckpt])
        marker, roots = [str(ckpt / "meta.json")], [str(ckpt)]
        (ckpt / "a.bin").write_bytes(b"1")
        (ckpt / "meta.json").write_text("1")
        ino.drain()
        assert not ino.written_after(marker, roots)
        (ckpt / "a.bin").write_bytes(b"2")
        ino.drain()
        assert ino.written_after(marker, roots)
        (ckpt / "meta.json").write_text("2")
        ino.drain()
        assert not ino.written_after(marker, roots)
    finally:
        ino.close()
