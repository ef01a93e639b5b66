"""``ckpt-supervisor submit-snippet``: submit lines that match the run options, and pass check."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from helpers import ROOT

from supervisor import exitstatus
from supervisor.__main__ import main
from supervisor.condor.check import check_submit, find_invocation
from supervisor.condor.snippet import quote_new_syntax
from supervisor.condor.submit import job_from_submit, parse_arguments, parse_submit_text

CASES = {
    "default": ["--checkpoint", "state.dat", "--watch"],
    "legacy": ["--legacy", "--checkpoint", "state.dat", "--inspect-on-exit", "77"],
    "exit-signal": ["--checkpoint", "state.dat", "--every", "600", "--job-signal", "SIGUSR2", "--exit-signal",
                    "SIGUSR1"],
    "trigger": [
        "--checkpoint",
        "s",
        "--trigger-signal",
        "SIGUSR2",
        "--checkpoint-on-evict",
        "30",
        "--kill-signal",
        "SIGINT",
        "--kill-grace",
        "15",
    ],
    "python": ["--python", "python3.11", "--checkpoint", "state.dat", "--watch", "--store", "ck"],
    "installed": ["--installed", "--checkpoint", "state.dat", "--watch"],
    "exit-code": [
        "--exit-code",
        "86",
        "--checkpoint",
        "state.dat",
        "--watch",
        "--done-when",
        "marker=done it",
    ],
}
PROGRAM = ["./sim.py", "--steps", "10 0", "it's"]


def snippet(capsys, monkeypatch, tmp_path, args):
    (tmp_path / "sim.py").write_text("#!/usr/bin/env python3\n")
    monkeypatch.chdir(tmp_path)
    status = main(["submit-snippet", *args, "--", *PROGRAM])
    out = capsys.readouterr()
    assert status == 0, out.err
    return out.out


@pytest.mark.parametrize("name", list(CASES))
def test_snippet_passes_check(name, capsys, monkeypatch, tmp_path):
    """Rule: submit-snippet output, plus a queue statement, has no finding at all, except two
    warnings that are choices left to the user: the supervisor must be installed on the nodes
    (--installed), and the store is not in the output list uploaded at eviction
    (--checkpoint-on-evict; listing it holds the job if it ends before the first commit)."""
    text = snippet(capsys, monkeypatch, tmp_path, CASES[name]) + "queue\n"
    path = tmp_path / "job.submit"
    path.write_text(text)
    codes = {f.code for f in check_submit(path)}
    allowed = {"installed": {"supervisor-installed"}, "trigger": {"evict-commit-not-uploaded"}}
    assert codes == allowed.get(name, set()), text


@pytest.mark.parametrize("name", list(CASES))
def test_snippet_round_trips_program_and_options(name, capsys, monkeypatch, tmp_path):
    """Rule: the arguments line starts the supervisor's run with the given options and exactly
    PROGRAM ARGS (quoting survives the new-syntax arguments)."""
    text = snippet(capsys, monkeypatch, tmp_path, CASES[name]) + "queue\n"
    sub = parse_submit_text(text, tmp_path / "job.submit")
    job = job_from_submit(sub)
    inv = find_invocation(sub, job.executable, job.arguments)
    assert inv is not None
    words = inv.run_words
    assert words[words.index("--") + 1 :] == PROGRAM
    if "--checkpoint" in CASES[name]:
        assert "--checkpoint" in words


def test_snippet_settings(capsys, monkeypatch, tmp_path):
    """Rule: the trigger signal becomes +WantCheckpointSignal/+CheckpointSig, kill_sig follows
    --kill-signal, the vacate time covers kill grace + eviction budget + margin, and the store is
    the checkpoint list with ON_EXIT_OR_EVICT."""
    text = snippet(capsys, monkeypatch, tmp_path, CASES["trigger"]) + "queue\n"
    job = job_from_submit(parse_submit_text(text, tmp_path / "job.submit"))
    assert job.want_checkpoint_signal and job.checkpoint_sig == signal.SIGUSR2
    assert job.kill_sig == signal.SIGINT
    assert job.job_max_vacate_time == 15 + 30 + 5
    assert job.transfer_checkpoint_files == ["checkpoint.atomic"] and job.on_exit_or_evict
    assert job.desired_checkpoint_status() == 85 << 8
    assert job.executable == "ckpt-supervisor.pyz" and "sim.py" in job.transfer_input_files


def test_legacy_and_by_signal_forms(capsys, monkeypatch, tmp_path):
    """Rule: --legacy writes +WantFTOnCheckpoint/+SuccessCheckpointExitCode; --exit-signal writes
    the BySignal attributes (a bare signal number), never checkpoint_exit_code."""
    legacy = snippet(capsys, monkeypatch, tmp_path, CASES["legacy"])
    assert "+WantFTOnCheckpoint = true" in legacy and "+SuccessCheckpointExitCode = 85" in legacy
    assert "checkpoint_exit_code" not in legacy
    bysig = snippet(capsys, monkeypatch, tmp_path, CASES["exit-signal"]) + "queue\n"
    assert "checkpoint_exit_code" not in bysig
    job = job_from_submit(parse_submit_text(bysig, tmp_path / "job.submit"))
    assert job.checkpoint_exit_by_signal and job.desired_checkpoint_status() == signal.SIGUSR1


def test_python_form_transfers_the_pyz(capsys, monkeypatch, tmp_path):
    """Rule: --python PY starts /usr/bin/env PY ckpt-supervisor.pyz (not transferred as the
    executable) and lists the .pyz in transfer_input_files."""
    text = snippet(capsys, monkeypatch, tmp_path, CASES["python"]) + "queue\n"
    job = job_from_submit(parse_submit_text(text, tmp_path / "job.submit"))
    assert job.executable == "/usr/bin/env" and job.arguments[:2] == [
        "python3.11",
        "ckpt-supervisor.pyz",
    ]
    assert "ckpt-supervisor.pyz" in job.transfer_input_files
    assert job.transfer_checkpoint_files == ["ck"]


def test_refuses_what_run_refuses(capsys, monkeypatch, tmp_path):
    """Rule: options run would refuse (a trigger with no --checkpoint) print no snippet: exit 64."""
    monkeypatch.chdir(tmp_path)
    assert (
        main(["submit-snippet", "--trigger-signal", "SIGUSR2", "--", "./sim"])
        == exitstatus.EXIT_USAGE
    )
    out = capsys.readouterr()
    assert out.out == "" and "--checkpoint" in out.err
    assert main(["submit-snippet", "--checkpoint", "x"]) == exitstatus.EXIT_USAGE


@pytest.mark.parametrize("words", [["a"], ["a b", "it's", 'say "hi"', ""], ["--x=1", "$(y)"]])
def test_quote_new_syntax_round_trip(words):
    """Rule: quote_new_syntax is the inverse of the submit parser's new-syntax arguments."""
    assert parse_arguments(quote_new_syntax(words), where="t") == words


def test_snippet_passes_check_installed_cli():
    """Rule: the command is registered on the real CLI (python -m supervisor submit-snippet)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "supervisor",
            "submit-snippet",
            "--checkpoint",
            "s",
            "--watch",
            "--",
            "/bin/true",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=str(ROOT),
        check=False,
    )
    assert proc.returncode == 0 and "transfer_checkpoint_files = checkpoint.atomic" in proc.stdout
