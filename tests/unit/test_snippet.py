"""``ckpt-supervisor submit-snippet``: submit lines that match the run options, and pass check."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from support.helpers import ROOT

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
    """Rule: submit-snippet output, plus a queue statement, has no finding at all, except one
    warning that is a choice left to the user: the supervisor must be installed on the nodes
    (--installed). With --checkpoint-on-evict, the store is in the output list and shipped as
    an input, so the eviction commit travels and nothing is held."""
    text = snippet(capsys, monkeypatch, tmp_path, CASES[name]) + "queue\n"
    path = tmp_path / "job.submit"
    path.write_text(text)
    codes = {f.code for f in check_submit(path)}
    allowed = {"installed": {"supervisor-installed"}}
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
    --kill-signal, the vacate time covers kill grace + eviction budget + margin, the store is
    the checkpoint list, and (--checkpoint-on-evict) ON_EXIT_OR_EVICT uploads the store."""
    text = snippet(capsys, monkeypatch, tmp_path, CASES["trigger"]) + "queue\n"
    job = job_from_submit(parse_submit_text(text, tmp_path / "job.submit"))
    assert job.want_checkpoint_signal and job.checkpoint_sig == signal.SIGUSR2
    assert job.kill_sig == signal.SIGINT
    assert job.job_max_vacate_time == 15 + 30 + 5
    assert job.transfer_checkpoint_files == ["checkpoint.atomic"] and job.on_exit_or_evict
    assert job.transfer_output_files == ["checkpoint.atomic"]
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


def test_no_on_exit_or_evict_unless_checkpoint_on_evict(capsys, monkeypatch, tmp_path):
    """Rule (issue 11): HTCondor uploads checkpoints whatever when_to_transfer_output says;
    ON_EXIT_OR_EVICT only uploads the output list at eviction (torn working files included).
    The snippet writes it only with --checkpoint-on-evict, and no vacate time unless a grace or
    budget was given (the supervisor derives its grace from the vacate time)."""
    for name in ("default", "legacy", "exit-signal", "python", "installed", "exit-code"):
        text = snippet(capsys, monkeypatch, tmp_path, CASES[name])
        assert "ON_EXIT_OR_EVICT" not in text, name
        assert "job_max_vacate_time" not in text, name
        assert "\ntransfer_checkpoint_files = " in text, name


def test_checkpoint_on_evict_says_what_it_costs(capsys, monkeypatch, tmp_path):
    """Rule (issues 11, 12.2, 13.4): with --checkpoint-on-evict the snippet writes an explicit
    transfer_output_files (the store and the --output files, never a working checkpoint
    file), ships each of them as an input so it exists at every eviction (else hold 12), and
    says in comment lines what ON_EXIT_OR_EVICT costs and what to create before submitting."""
    text = snippet(capsys, monkeypatch, tmp_path, [*CASES["trigger"], "--output", "result.txt"])
    lines = text.splitlines()
    assert "when_to_transfer_output = ON_EXIT_OR_EVICT" in lines
    assert "transfer_output_files = checkpoint.atomic, result.txt" in lines
    assert "transfer_input_files = sim.py, checkpoint.atomic, result.txt" in lines
    comments = "\n".join(x for x in lines if x.startswith("#"))
    assert "holds the job" in comments and "(code 12)" in comments
    assert "mkdir -p checkpoint.atomic && touch result.txt" in comments
    assert "torn" in comments
    path = tmp_path / "job.submit"
    path.write_text(text + "queue\n")
    assert check_submit(path) == []


def test_checkpoint_path_as_output_with_checkpoint_on_evict_is_refused(capsys, monkeypatch, tmp_path):
    """Rule (issue 12.2): --output naming a --checkpoint path with --checkpoint-on-evict would
    upload a torn working file at eviction: no snippet, exit 64, the reason on stderr."""
    (tmp_path / "sim.py").write_text("")
    monkeypatch.chdir(tmp_path)
    status = main(["submit-snippet", "--checkpoint", "s", "--trigger-signal", "SIGUSR2",
                   "--checkpoint-on-evict", "5", "--output", "s", "--", "./sim.py"])
    out = capsys.readouterr()
    assert status == exitstatus.EXIT_USAGE and out.out == ""
    assert "--output s is a --checkpoint path" in out.err


def test_output_files_without_checkpoint_on_evict(capsys, monkeypatch, tmp_path):
    """Rule: --output FILE gives an explicit transfer_output_files (only uploaded at the job's
    end without ON_EXIT_OR_EVICT, so it is not shipped as an input)."""
    text = snippet(capsys, monkeypatch, tmp_path, [*CASES["default"], "--output", "result.txt"])
    assert "\ntransfer_output_files = result.txt\n" in text
    assert "transfer_input_files = sim.py\n" in text


def test_hold_policy_for_the_supervisors_failures(capsys, monkeypatch, tmp_path):
    """Rule (issue 12.5): the snippet holds the job when the supervisor itself exits 64, 70 or
    74 (not on a death by signal), with a reason naming the status and the status as subcode;
    an exit 0 or PROGRAM's own 1 is not held. (Verified on HTCondor 25.0.13: hold code 3,
    subcode 74, the reason in condor_q's HoldReason; exit 0 completes.)"""
    text = snippet(capsys, monkeypatch, tmp_path, CASES["default"])
    lines = text.splitlines()
    assert "on_exit_hold = ExitBySignal =?= false && member(ExitCode, {64, 70, 74, 76})" in lines
    [reason] = [x for x in lines if x.startswith("on_exit_hold_reason = ")]
    assert 'strcat("ckpt-supervisor exit status ", ExitCode' in reason
    assert "the checkpoint store could not be written or read" in reason
    assert "internal error of the supervisor" in reason
    assert "on_exit_hold_subcode = ExitCode" in lines


def test_warns_about_program_files_it_leaves_out(capsys, monkeypatch, tmp_path):
    """Rule (issue 13.6): a PROGRAM file that is not in the current directory (a relative path
    that is not here, a script outside it) is left out of transfer_input_files, and the
    snippet says so on stderr, one line each with what to do; the snippet is still printed."""
    (tmp_path / "up.py").write_text("")
    here = tmp_path / "here"
    here.mkdir()
    (here / "sim.py").write_text("")
    monkeypatch.chdir(here)
    status = main(["submit-snippet", "--checkpoint", "s", "--watch", "--",
                   "python3", "sim.py", "../up.py", "bin/helper.sh", "--steps", "10"])
    out = capsys.readouterr()
    assert status == 0
    assert "transfer_input_files = sim.py\n" in out.out
    warnings = out.err.splitlines()
    assert len(warnings) == 2, out.err
    assert warnings[0].startswith("ckpt-supervisor submit-snippet: warning: ../up.py is outside")
    assert "--input up.py" in warnings[0]
    assert "bin/helper.sh is not a file in" in warnings[1]


def test_no_warning_for_installed_programs(capsys, monkeypatch, tmp_path):
    """Rule: an absolute program (an installed /usr/bin/python3) or a plain command name is
    not a left-out file: no warning."""
    monkeypatch.chdir(tmp_path)
    assert main(["submit-snippet", "--checkpoint", "s", "--watch", "--", "/usr/bin/python3",
                 "-c", "pass"]) == 0
    assert capsys.readouterr().err == ""


def test_dmtcp_snippet_pins_the_micro_architecture(capsys, monkeypatch, tmp_path):
    """Rule (issue 16): submit-snippet --dmtcp writes a requirements line on this machine's
    Microarch family (a DMTCP image crashes on a CPU without the instructions it was made with);
    the snippet passes check with no finding, and without that line check warns about it. Without
    --dmtcp there is no requirements line."""
    from supervisor.dmtcp import microarch

    text = snippet(capsys, monkeypatch, tmp_path, ["--dmtcp", "--checkpoint-on-evict", "20"]) + "queue\n"
    line = f'requirements = (Microarch == "{microarch()}")'
    assert line in text.splitlines(), text
    path = tmp_path / "job.submit"
    path.write_text(text)
    assert [f.code for f in check_submit(path)] == [], text
    path.write_text(text.replace(line + "\n", ""))
    warnings = [f for f in check_submit(path) if "Microarch" in f.message]
    assert len(warnings) == 1 and warnings[0].severity == "warning", [f.message for f in check_submit(path)]
    plain = snippet(capsys, monkeypatch, tmp_path, ["--checkpoint", "state.dat", "--watch"])
    assert not any(x.startswith("requirements") for x in plain.splitlines()), plain
