"""John the Ripper under ``ckpt-supervisor run`` inside the dry run: evicted, crashed, cracked.

The example examples/john (john.submit, prepare.sh, run-john.sh) runs unchanged except for the
``mode`` macro (``Digits5``: 111,110 candidates instead of Digits6's 1,111,110) and two more
uncrackable hashes with their own salts appended to hashes.txt, which multiply the work by three
(about 25 CPU-seconds, 12-40 s of wall time on two cores) without changing where 7391 is found
(56% of the way). The answer is John's pot file: 7391 cracked, the non-digit passwords not, the
session completed. The work is John's CPU time summed over every process of the dry run, which
must stay within 1.5 times that of an uninterrupted run of the same session (CPU time rather than
wall time, so that other work on a shared test machine does not decide the outcome).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.realapp_util import (
    CpuMeter,
    copy_example,
    dry_run,
    ensure_entry_point,
    require,
    run_measured,
    set_macro,
)

pytestmark = pytest.mark.realapp

MODE = "Digits5"
EXTRA_SALTS = ("bbbbbbbb", "cccccccc")
CRACKED = "$1$aaaaaaaa$LTe87lnvK04LKv6YKnHUK/:7391"
PERIOD = 8.0  # seconds from each start to the dry run's checkpoint signal
RUN_EVICT = 4.0  # seconds into a run of the second eviction (--evict-on run+S)
# Without ON_EXIT_OR_EVICT (and so without --checkpoint-on-evict) an eviction uploads nothing:
# the work since the last checkpoint upload is done again. Here up to ~PERIOD + 0.5 s before
# the first eviction, ~1.5 s before the crash and RUN_EVICT before the second eviction, and a
# loaded machine stretches each of those: 2.39 was seen with two busy loops. Starting from scratch
# at each of the four executions would cost about 4 times an uninterrupted session.
MAX_WORK_RATIO = 3.2


@dataclass(frozen=True)
class Prepared:
    inputs: Path  # examples/john with hashes.txt and john.conf
    cpu: float  # CPU seconds of an uninterrupted session
    seconds: float  # its wall time


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Prepared:
    require("john", "/usr/sbin/john")
    openssl = require("openssl")
    ensure_entry_point()
    base = tmp_path_factory.mktemp("john")
    inputs = copy_example("john", base)
    subprocess.run(["sh", "prepare.sh"], cwd=inputs, check=True, capture_output=True, timeout=60)
    with (inputs / "hashes.txt").open("a") as f:
        for i, salt in enumerate(EXTRA_SALTS):
            digest = subprocess.run([openssl, "passwd", "-1", "-salt", salt, "kX9#q"], check=True,
                                    capture_output=True, text=True, timeout=30).stdout.strip()
            f.write(f"x{i}:{digest}\n")
    set_macro(inputs / "john.submit", "mode", MODE)
    reference = base / "reference"
    shutil.copytree(inputs, reference)
    status, seconds, cpu = run_measured(
        ["sh", "run-john.sh", "--session=job", f"--incremental={MODE}", "--format=md5crypt",
         "hashes.txt"], reference, timeout=240)
    assert status == 0, f"the uninterrupted reference session failed ({status})"
    assert CRACKED in (reference / "john.pot").read_text()
    assert not (reference / "job.rec").exists(), "a completed session leaves no job.rec"
    return Prepared(inputs, cpu, seconds)


@pytest.mark.timeout(300)
def test_cracked_through_evictions_and_a_crash(prepared: Prepared, tmp_path: Path) -> None:
    """Evicted while a SIGHUP checkpoint is being taken, crashed soon after the next start,
    evicted again mid-run: the session still completes (exit status 0), the delivered pot file
    holds 7391 and no other password, John's total CPU time stays within MAX_WORK_RATIO times
    an uninterrupted session (the work lost at the evictions and the crash is done again), and
    no john process outlives the dry run."""
    folder = tmp_path / "job"
    shutil.copytree(prepared.inputs, folder)
    w = prepared.seconds
    # The first eviction follows the first SIGHUP checkpoint signal (sent at PERIOD) at once
    # (--evict-on), whatever the machine's speed; the quiet=1 wait runs until ~PERIOD + 1.
    crash = PERIOD + 2.0  # while the next execution restores and restarts John
    # The second eviction lands RUN_EVICT s into the first run that lasts so long: the crash
    # comes before that in execution 2 (which starts after PERIOD), so it is execution 3, mid-run,
    # whatever the machine's speed (a time from the reference's speed missed the end of a
    # session that ran faster than its reference).
    with CpuMeter("john", tmp_path) as meter:
        res = dry_run(folder, "john.submit",
                      ["--checkpoint-period", str(PERIOD), "--evict-on", "checkpoint-signal",
                       "--crash-at", f"{crash:.2f}", "--evict-on", f"run+{RUN_EVICT:g}"],
                      timeout=280)
    summary = res.summary()
    phases = res.eviction_phases()
    ratio = meter.total / prepared.cpu
    print(f"reference {w:.1f}s {prepared.cpu:.1f} CPU-s; dry run {res.seconds:.1f}s, john "
          f"{meter.total:.1f} CPU-s in {meter.processes} processes (x{ratio:.2f}); {summary}; "
          f"eviction phases {phases}")
    assert res.status == 0, res.context()
    assert summary["evictions"] == 2 and summary["crashes"] == 1, res.context()
    pot = (folder / "john.pot").read_text().splitlines()
    assert pot == [CRACKED], f"pot file: {pot}\n{res.context()}"
    assert "Session completed" in (folder / "john.err").read_text(), res.context()
    assert phases and phases[0] in ("checkpoint", "commit", "exiting"), (
        f"the first eviction did not arrive during a checkpoint: {phases}\n{res.context()}")
    assert phases[-1] == "running", f"the second eviction was not mid-run: {phases}\n{res.context()}"
    assert ratio <= MAX_WORK_RATIO, (
        f"John used {meter.total:.1f} CPU-s in {meter.processes} processes, {ratio:.2f} times "
        f"the {prepared.cpu:.1f} CPU-s of an uninterrupted session\n{res.context()}")
    assert not res.leftovers, f"processes left behind: {res.leftovers}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("way", ["unshare", "nss_wrapper"])
def test_run_john_gives_john_a_private_home(way: str, tmp_path: Path) -> None:
    """run-john.sh makes John read john.conf from the sandbox and write john.pot at the top of
    the sandbox, with either way of isolating the home (skipped, with the reason, where that
    way is not available), and leaves the user's own ~/.john/john.pot alone."""
    require("john", "/usr/sbin/john")
    folder = copy_example("john", tmp_path)
    subprocess.run(["sh", "prepare.sh"], cwd=folder, check=True, capture_output=True, timeout=60)
    (folder / "words.txt").write_text("7391\n")
    own_pot = Path(pwd.getpwuid(os.getuid()).pw_dir) / ".john" / "john.pot"
    before = own_pot.stat() if own_pot.exists() else None
    proc = subprocess.run(
        ["sh", "run-john.sh", "--wordlist=words.txt", "--format=md5crypt", "hashes.txt"],
        cwd=folder, env=dict(os.environ, JOHN_ISOLATION=way), capture_output=True, text=True,
        timeout=50, check=False)
    if proc.returncode == 2 and "cannot give John a private home" in proc.stderr:
        pytest.skip(f"{way} is not available here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (folder / "john.pot").read_text().splitlines() == [CRACKED]
    assert (folder / "john-home" / ".john" / "john.conf").read_text() == (
        folder / "john.conf").read_text()
    after = own_pot.stat() if own_pot.exists() else None
    assert (before and (before.st_size, before.st_mtime_ns)) == (
        after and (after.st_size, after.st_mtime_ns)), f"{own_pot} was changed"
