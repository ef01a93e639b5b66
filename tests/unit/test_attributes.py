"""One reading of HTCondor's checkpoint attributes (supervisor/condor/attributes.py): the
supervisor (from the job ad), the dry run and check (from the submit file) agree with each other
and with the starter's LookupBool, which takes true/false or a number. On the real pool
(HTCondor 25.0.13) ``+WantCheckpointSignal = yes`` and ``= "yes"`` sent no checkpoint signal,
``= 1`` and ``= true`` did."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

import pytest
from support.helpers import ROOT

from supervisor import config
from supervisor.condor.check import check_submit
from supervisor.condor.submit import job_from_submit, parse_submit_text

VALUES = [("yes", False), ('"yes"', False), ("true", True), ("TRUE", True), ("True", True), ("1", True),
          ("2.5", True), ("0", False), ("false", False)]


def _supervisor_reads(value: str, tmp_path: Path) -> tuple[bool, list[str]]:
    """run's reading: the job ad as condor_submit writes it (the +Attr text as it is)."""
    ad = tmp_path / ".job.ad"
    ad.write_text(f'ClusterId = 1\nWantCheckpointSignal = {value}\nCheckpointSig = "SIGUSR2"\n')
    args = argparse.Namespace(program=["--", "x"], checkpoint=["state"])
    cfg = config.build(args, environ={"_CONDOR_JOB_AD": str(ad), "_CONDOR_SCRATCH_DIR": str(tmp_path)})
    return cfg.trigger_signal == (signal.SIGUSR2,), [w for w in cfg.warnings if "WantCheckpointSignal" in w]


def _dry_run_reads(value: str) -> tuple[bool, list[str]]:
    job = job_from_submit(parse_submit_text(
        f'executable = a\n+WantCheckpointSignal = {value}\n+CheckpointSig = "SIGUSR2"\nqueue\n', ROOT / "x.submit"))
    return job.want_checkpoint_signal, [w for w in job.warnings if "WantCheckpointSignal" in w]


def _check_reads(value: str, tmp_path: Path) -> tuple[bool, list[str]]:
    path = tmp_path / "job.submit"
    path.write_text(f'executable = sim.py\ncheckpoint_exit_code = 85\ntransfer_checkpoint_files = state\n'
                    f'+WantCheckpointSignal = {value}\n+CheckpointSig = "SIGUSR2"\nqueue\n')
    findings = check_submit(path)
    codes = {f.code for f in findings}
    assert "syntax" not in codes
    return "checkpoint-sig-without-want" not in codes, [f.message for f in findings if f.code == "bool-reads-false"]


@pytest.mark.parametrize(("value", "expected"), VALUES)
def test_want_checkpoint_signal_read_alike(value: str, expected: bool, tmp_path: Path) -> None:
    """Rule: +WantCheckpointSignal = yes/"yes"/true/TRUE/1/... is read the same by the supervisor
    (its trigger signal comes from CheckpointSig only when true), the dry run (it sends the
    signal only when true) and check (it reports CheckpointSig without WantCheckpointSignal
    only when false); each warns, in one line, about a value that is not false yet reads as false."""
    readings = {"supervisor": _supervisor_reads(value, tmp_path), "dry run": _dry_run_reads(value),
                "check": _check_reads(value, tmp_path)}
    assert {who: got for who, (got, _) in readings.items()} == dict.fromkeys(readings, expected)
    warned = value.lower() not in ("true", "1", "2.5", "0", "false")
    for who, (_, notes) in readings.items():
        assert len(notes) == warned, (who, notes)
        assert all("LookupBool" in n and "\n" not in n for n in notes), (who, notes)


@pytest.mark.parametrize(("value", "expected"), [("85", 85), ("85.0", 85), ("85.9", 85), ('"85"', 0), ("SIGUSR2", 0),
                                                 ("true", 1)])
def test_checkpoint_exit_code_attribute_read_alike(value: str, expected: int, tmp_path: Path) -> None:
    """Rule: +SuccessCheckpointExitCode is read with LookupInteger by the dry run and check alike:
    a real is truncated, a string or a bare word is 0 (so a plain exit 0 is the checkpoint status,
    which check reports as checkpoint-code-zero, naming the value)."""
    text = (f"executable = sim.py\n+WantFTOnCheckpoint = true\n+SuccessCheckpointExitCode = {value}\n"
            "transfer_checkpoint_files = state\nqueue\n")
    job = job_from_submit(parse_submit_text(text, ROOT / "x.submit"))
    assert job.checkpoint_exit_code == expected
    path = tmp_path / "job.submit"
    path.write_text(text)
    findings = {f.code: f.message for f in check_submit(path)}
    assert "syntax" not in findings
    assert ("checkpoint-code-zero" in findings) is (expected == 0)
    if expected == 0:
        assert value in findings["checkpoint-code-zero"] and "LookupInteger" in findings["checkpoint-code-zero"]


def test_check_sees_remove_kill_sig_as_the_job_ad_carries_it(tmp_path: Path) -> None:
    """Rule: condor_submit writes remove_kill_sig into the job ad as RemoveKillSig, from which run
    takes its --remove-kill-signal default; check's job ad carries it too, so a trigger signal
    equal to it is reported as a start the supervisor would refuse (exit 64)."""
    path = tmp_path / "job.submit"
    path.write_text("executable = ckpt-supervisor.pyz\n"
                    'arguments = "run --checkpoint state --trigger-signal SIGUSR2 -- ./sim.py"\n'
                    "transfer_input_files = sim.py\ncheckpoint_exit_code = 85\n"
                    "transfer_checkpoint_files = checkpoint.atomic\nremove_kill_sig = SIGUSR2\nqueue\n")
    refusals = [f.message for f in check_submit(path) if f.code == "supervisor-refuses"]
    assert len(refusals) == 1 and "--remove-kill-signal" in refusals[0], refusals
