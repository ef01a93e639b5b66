"""One reading of HTCondor's checkpoint attributes (supervisor/condor/attributes.py): the
supervisor (from the job ad), the dry run and check (from the submit file) agree with each other
and with the starter's LookupBool, which takes true/false or a number. On the real pool
(HTCondor 25.0.13) ``+WantCheckpointSignal = yes`` and ``= "yes"`` sent no checkpoint signal,
``= 1`` and ``= true`` did."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

import pytest
from support.helpers import ROOT

from supervisor import config, exitstatus
from supervisor.condor.check import check_submit
from supervisor.condor.submit import job_from_submit, parse_submit_text
from supervisor.errors import ConfigError

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


CODE_VALUES = [("85", 85, False), ("85.0", 85, False), ("85.9", 85, True), ('"85"', 0, True), ("SIGUSR2", 0, True),
               ("true", 1, True)]


def _supervisor_code(value: str, tmp_path: Path) -> tuple[Any, list[str]]:
    """run's reading of the job ad condor_submit writes from ``+SuccessCheckpointExitCode = value``:
    the exit code it would use (with its warnings), or the refusal (exit 64) as a string."""
    ad = tmp_path / ".job.ad"
    ad.write_text(f"ClusterId = 1\nWantFTOnCheckpoint = true\nSuccessCheckpointExitCode = {value}\n")
    args = argparse.Namespace(program=["--", "x"], checkpoint=["state"])
    try:
        cfg = config.build(args, environ={"_CONDOR_JOB_AD": str(ad), "_CONDOR_SCRATCH_DIR": str(tmp_path)})
    except ConfigError as exc:
        assert exc.exit_status == exitstatus.EXIT_USAGE
        return str(exc), []
    return cfg.exit_code, [w for w in cfg.warnings if "SuccessCheckpointExitCode" in w]


@pytest.mark.parametrize(("value", "expected", "warned"), CODE_VALUES)
def test_checkpoint_exit_code_attribute_read_alike(value: str, expected: int, warned: bool, tmp_path: Path) -> None:
    """Rule: +SuccessCheckpointExitCode is read with LookupInteger by the supervisor, the dry run
    and check alike: a real is truncated (85.0 is 85 with no warning, 85.9 is 85 with one), true is
    1, a string or a bare word is 0 (so a plain exit 0 is the checkpoint status, which check reports
    as checkpoint-code-zero, naming the value). Each warns where the value reads as something else
    than it is written; the supervisor, which cannot keep a promise of 0, refuses to start (64) with
    a one-line message that says LookupInteger reads 0, and check reports that mistake once."""
    text = (f"executable = sim.py\n+WantFTOnCheckpoint = true\n+SuccessCheckpointExitCode = {value}\n"
            "transfer_checkpoint_files = state\nqueue\n")
    job = job_from_submit(parse_submit_text(text, ROOT / "x.submit"))
    assert job.checkpoint_exit_code == expected
    assert any("SuccessCheckpointExitCode" in w for w in job.warnings) is warned, job.warnings
    got, notes = _supervisor_code(value, tmp_path)
    if expected == 0:
        assert isinstance(got, str) and "LookupInteger" in got and "0" in got and "\n" not in got
    else:
        assert got == expected and len(notes) == warned and all("LookupInteger" in n for n in notes), (got, notes)
    path = tmp_path / "job.submit"
    path.write_text(text)
    findings = {f.code: f.message for f in check_submit(path)}
    assert "syntax" not in findings
    assert ("checkpoint-code-zero" in findings) is (expected == 0)
    assert ("int-reads-otherwise" in findings) is (warned and expected != 0)
    if expected == 0:
        assert value in findings["checkpoint-code-zero"] and "LookupInteger" in findings["checkpoint-code-zero"]


def test_check_of_a_supervised_job_reports_a_string_code_once(tmp_path: Path) -> None:
    """Rule: for a supervised job with +SuccessCheckpointExitCode = "85", check reports the one
    mistake once (checkpoint-code-zero, which says the supervisor refuses to start and to write
    the bare number), not a second supervisor-refuses finding; with 85.0 it reports nothing about
    the code (before, the supervisor refused 85.0 and check said supervisor-refuses)."""
    for value, codes in (('"85"', {"checkpoint-code-zero"}), ("85.0", set())):
        path = tmp_path / "job.submit"
        path.write_text("executable = ckpt-supervisor.pyz\n"
                        'arguments = "run --checkpoint state --watch -- ./sim.py"\n'
                        "transfer_input_files = sim.py\n+WantFTOnCheckpoint = true\n"
                        f"+SuccessCheckpointExitCode = {value}\n"
                        "transfer_checkpoint_files = checkpoint.atomic\njob_max_vacate_time = 120\n"
                        "on_exit_hold = ExitBySignal =?= false && member(ExitCode, {64, 70, 74, 76})\nqueue\n")
        findings = [f for f in check_submit(path) if f.severity == "error"]
        assert {f.code for f in findings} == codes, findings
        for f in findings:
            assert f.line == 5 and "exit 64" in f.message and "= 85" in f.fix


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
