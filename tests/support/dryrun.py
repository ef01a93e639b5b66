"""Helpers of the dry-run tests: run ``ckpt-supervisor dry-run`` on copies of job directories."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from support.helpers import ROOT, kill_pids, spawned, tagged_pids

EXAMPLES = ROOT / "examples"
JOBS = ROOT / "tests" / "e2e" / "jobs"
COUNTER = JOBS / "counter.py"


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    dir: Path

    def timeline(self) -> list[str]:
        return [line.split("s  ", 1)[1] for line in self.stdout.splitlines()
                if re.match(r"^\s+\d+\.\d+s  ", line)]


def dryrun_cmd(submit: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "supervisor", "dry-run", str(submit), *args]


def job_env(tag: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CKPT_DRYRUN_")}
    env["PYTHONPATH"] = str(ROOT)
    env["CKPT_TEST_TAG"] = tag
    return env


tagged_alive = tagged_pids  # the dry-run tests' name for it


class Running:
    """A dry run started in the background, its output going to files in its directory."""

    def __init__(self, stack: contextlib.ExitStack, submit: Path, args: tuple[str, ...]) -> None:
        self.dir = submit.parent
        self.tag = uuid.uuid4().hex
        self.out = open(self.dir / "dryrun.stdout", "w")  # noqa: SIM115
        self.err = open(self.dir / "dryrun.stderr", "w")  # noqa: SIM115
        stack.callback(self.out.close)
        stack.callback(self.err.close)
        stack.callback(lambda: kill_pids(tagged_alive(self.tag)))
        # the dry run keeps its work folder after a run that did not end with 0 (on purpose):
        # keep it under the test's folder, not in /tmp
        tmp = self.dir / ".dryrun-tmp"
        tmp.mkdir(exist_ok=True)
        self.proc = stack.enter_context(
            spawned(dryrun_cmd(submit, *args), stdout=self.out, stderr=self.err,
                    env={**job_env(self.tag), "TMPDIR": str(tmp)}, cwd=str(self.dir)))

    def wait(self, timeout: float = 50) -> Result:
        rc = self.proc.wait(timeout=timeout)
        self.out.flush()
        self.err.flush()
        return Result(rc, (self.dir / "dryrun.stdout").read_text(),
                      (self.dir / "dryrun.stderr").read_text(), self.dir)


def copy_example(name: str, dest: Path) -> Path:
    shutil.copytree(EXAMPLES / name, dest)
    return dest


def counter_job(dest: Path, submit_extra: str, args: str = "", *, ckpt_files: str = "count",
                when: str = "ON_EXIT_OR_EVICT") -> Path:
    """A directory with counter.py and a submit file; the witness file is dest/witness."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(COUNTER, dest / "counter.py")
    submit = dest / "counter.submit"
    submit.write_text(
        "executable = counter.py\n"
        f'arguments = "{dest / "witness"} {args}"\n'
        f"when_to_transfer_output = {when}\n"
        "checkpoint_exit_code = 85\n"
        f"transfer_checkpoint_files = {ckpt_files}\n"
        "transfer_output_files = count\n"
        "output = counter.out\n"
        "error = counter.err\n"
        "log = counter.log\n"
        f"{submit_extra}\n"
        "queue\n"
    )
    return submit


def run_dryrun(submit: Path, *args: str, timeout: float = 40) -> Result:
    """Run a dry run to its end; kill whatever it left if it hangs."""
    with contextlib.ExitStack() as s:
        return Running(s, submit, args).wait(timeout)


def events(htcondor2, path: Path) -> list:
    return list(htcondor2.JobEventLog(str(path)).events(0))

