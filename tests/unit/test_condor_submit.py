"""Submit-file parsing: agreement with htcondor2.Submit, value syntaxes, errors with lines."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest
from support.dryrun import EXAMPLES, dryrun_cmd, job_env
from support.helpers import ROOT

from supervisor import exitstatus
from supervisor.condor.submit import (
    job_from_submit,
    parse_arguments,
    parse_environment,
    parse_submit_file,
    parse_submit_text,
)
from supervisor.errors import SubmitFileError

CORPUS = {
    "vuc": (EXAMPLES / "vuc" / "vuc.submit").read_text(),
    "mixed": """\
  # indented comment
Executable   =   vuc.py
arguments = "a 'b c' d""e"
  environment = "A=1 B='x y'"
+WantFTOnCheckpoint = TRUE
MY.SuccessCheckpointExitCode = 85
transfer_output_files = a.txt, \\
    b.txt
foo = bar # not a comment
Empty =
output = out.$(Cluster).$(Process).$(Foo)
error = err.$(ClusterId)_$(ProcId)
queue 3
""",
    "signals": """\
executable = /bin/true
checkpoint_exit_code = 85
+WantCheckpointSignal = true
+CheckpointSig = "SIGUSR2"
kill_sig = SIGINT
job_max_vacate_time = 20
when_to_transfer_output = ON_EXIT_OR_EVICT
transfer_checkpoint_files = state, state.json
log = x.log
queue
""",
    "last-wins": "executable = a\nExecutable = b\nqueue\n",
    "queue-from": "executable = a\narguments = $(item)\nqueue item from (\n  x\n  y\n)\n",
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_agrees_with_htcondor2_submit(name, htcondor2, tmp_path):
    """Rule: commands, their raw values, macro expansion for job 1.0 and the queue arguments
    are what htcondor2.Submit (condor_submit's own parser) makes of the same text."""
    text = CORPUS[name]
    ours = parse_submit_text(text, tmp_path / "x.submit")
    theirs = htcondor2.Submit(text)
    assert dict(ours.commands) == dict(theirs)
    assert (ours.queue_args or "") == (theirs.getQArgs() or "")
    for key in theirs:
        try:
            expected = theirs.expand(key)
        except KeyError:  # htcondor2 raises for a value that expands to nothing
            expected = ""
        assert ours.expand(ours.commands[key]) == expected, key


def test_job_interpretation():
    """Rule: the commands the emulator acts on become a Job: exact checkpoint status, signals
    as numbers, file lists split on commas."""
    sub = parse_submit_text(CORPUS["signals"], ROOT / "x.submit")
    job = job_from_submit(sub)
    assert job.desired_checkpoint_status() == 85 << 8
    assert job.want_ft_on_checkpoint and job.want_checkpoint_signal
    assert job.checkpoint_sig == signal.SIGUSR2 and job.kill_sig == signal.SIGINT
    assert job.job_max_vacate_time == 20 and job.on_exit_or_evict
    assert job.transfer_checkpoint_files == ["state", "state.json"]
    vuc = job_from_submit(parse_submit_file(EXAMPLES / "vuc" / "vuc.submit"))
    assert vuc.desired_checkpoint_status() == 77 << 8 and vuc.want_ft_on_checkpoint
    assert vuc.transfer_output_files == ["vuc.ckpt"] and vuc.ignored == []


def test_exit_by_signal_status_and_core_bit():
    """Rule: by signal, the desired status is the bare signal number, so the same death with
    the core-dump bit (0x80) set does not match."""
    text = ("executable = a\n+WantFTOnCheckpoint = true\n+SuccessCheckpointExitBySignal = true\n"
            "+SuccessCheckpointExitSignal = 10\nqueue\n")
    job = job_from_submit(parse_submit_text(text, ROOT / "x.submit"))
    assert job.desired_checkpoint_status() == signal.SIGUSR1
    assert job.desired_checkpoint_status() != (signal.SIGUSR1 | 0x80)


@pytest.mark.parametrize("value", ['"SIGUSR1"', "SIGUSR1", '"10"'])
def test_exit_signal_is_read_as_a_number_only(value):
    """Rule: the starter reads +SuccessCheckpointExitSignal with LookupInteger: a string (or a
    bare word, an undefined reference) reads as 0, so the checkpoint status is 0, with a
    warning that names the attribute and the fix."""
    text = ("executable = a\n+WantFTOnCheckpoint = true\n+SuccessCheckpointExitBySignal = true\n"
            f"+SuccessCheckpointExitSignal = {value}\nqueue\n")
    job = job_from_submit(parse_submit_text(text, ROOT / "x.submit"))
    assert job.desired_checkpoint_status() == 0
    assert any("+SuccessCheckpointExitSignal" in w and "number only" in w for w in job.warnings)


def test_absent_or_zero_checkpoint_code_is_status_zero():
    """Rule: computeDesiredExitStatus gives 0 for an absent or zero code: the desired status is
    a plain exit 0 (which counts only with WantFTOnCheckpoint or after a checkpoint signal)."""
    for extra in ("", "+SuccessCheckpointExitCode = 0\n", "+WantFTOnCheckpoint = true\n"):
        job = job_from_submit(parse_submit_text(f"executable = a\n{extra}queue\n",
                                                ROOT / "x.submit"))
        assert job.desired_checkpoint_status() == 0
    job = job_from_submit(parse_submit_text("executable = a\n+WantFTOnCheckpoint = true\nqueue\n",
                                            ROOT / "x.submit"))
    assert any("plain exit 0 counts as a checkpoint" in w for w in job.warnings)


@pytest.mark.parametrize(("value", "expected"), [
    ("true", True), ("TRUE", True), ("1", True), ("2.5", True),
    ("false", False), ("0", False), ("yes", False), ('"yes"', False), ('"true"', False),
])
def test_want_checkpoint_signal_read_like_lookupbool(value, expected):
    """Rule: +WantCheckpointSignal is read with LookupBool: true/false or a number. On the real
    pool (HTCondor 25.0.13) `= yes` and `= "yes"` sent no signal in 50 s (period 20 s), `= 1`
    did; a value that reads as false is warned about."""
    job = job_from_submit(parse_submit_text(
        f"executable = a\n+WantCheckpointSignal = {value}\nqueue\n", ROOT / "x.submit"))
    assert job.want_checkpoint_signal is expected
    warned = any("+WantCheckpointSignal" in w for w in job.warnings)
    assert warned is (not expected and value.lower() not in ("false", "0"))


def test_stream_output_read():
    """Rule: stream_output / stream_error are understood (streamed files are not uploaded)."""
    job = job_from_submit(parse_submit_text(
        "executable = a\noutput = o\nstream_output = true\nqueue\n", ROOT / "x.submit"))
    assert job.stream_output and not job.stream_error and job.ignored == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"a \'b c\' d""e"', ["a", "b c", 'd"e']),
        ("\"'it''s' two\"", ["it's", "two"]),
        ('"  "', []),
        ("old style  words", ["old", "style", "words"]),
        ('old \\"quoted\\"', ["old", '"quoted"']),
        ("", []),
    ],
)
def test_arguments_syntaxes(value, expected):
    """Rule: arguments in double quotes use the new syntax (single quotes group, doubled quotes
    are literal); otherwise the old syntax splits on blanks with \\" for a quote."""
    assert parse_arguments(value, where="t") == expected


def test_environment_syntaxes():
    """Rule: environment in double quotes is new syntax (blank separated, single quotes group);
    otherwise old syntax separated by semicolons."""
    assert parse_environment("\"A=1 B='x y' C=\"", where="t") == {"A": "1", "B": "x y", "C": ""}
    assert parse_environment("A=1;B=two words", where="t") == {"A": "1", "B": "two words"}


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("executable = a\nthis is not a command\nqueue\n", 2),
        ("# c\nexecutable = a\narguments = \"a 'b\"\nqueue\n", 3),
        ("executable = a\n\ncheckpoint_exit_code = eighty\nqueue\n", 3),
        ("executable = a\nkill_sig = SIGNOPE\nqueue\n", 2),
        ("executable = a\n+ = 3\nqueue\n", 2),
    ],
)
def test_malformed_file_names_the_line(text, line, tmp_path):
    """Rule: a malformed submit file is a SubmitFileError whose message has file:line."""
    path = tmp_path / "bad.submit"
    path.write_text(text)
    with pytest.raises(SubmitFileError, match=rf"bad\.submit:{line}:"):
        job_from_submit(parse_submit_file(path))


def test_malformed_file_cli_exit_status(tmp_path):
    """Rule: the CLI reports a malformed submit file on stderr with its line number and exits
    with the usage status, starting nothing."""
    path = tmp_path / "bad.submit"
    path.write_text("executable = a\nqueue 1 2 3 (\nwhat\n")
    path.write_text("executable = a\noops\nqueue\n")
    r = subprocess.run(dryrun_cmd(path), check=False, capture_output=True, text=True, timeout=30,
                       env=job_env("malformed"))
    assert r.returncode == exitstatus.EXIT_USAGE
    assert f"{path}:2:" in r.stderr
    assert sys.executable  # the CLI ran under this interpreter


def test_unknown_commands_reported_once(tmp_path):
    """Rule: commands the dry run does not emulate are listed once as ignored, never fatal."""
    sub = parse_submit_text("executable = a\nrequest_cpus = 2\nRequest_Cpus = 3\n"
                            "notification = never\nqueue\n", tmp_path / "x.submit")
    assert job_from_submit(sub).ignored == ["request_cpus", "notification"]


@pytest.mark.parametrize(("lines", "expected"), [
    ("", None),
    ("remove_kill_sig = SIGQUIT\n", signal.SIGQUIT),
    ("remove_kill_sig = 3\n", signal.SIGQUIT),
    ('remove_kill_sig = SIGQUIT\n+RemoveKillSig = "SIGUSR1"\n', signal.SIGUSR1),
])
def test_remove_kill_sig_is_the_soft_kill_of_a_graceful_shutdown(lines, expected):
    """Rule: remove_kill_sig (or +RemoveKillSig, applied after it) is read by the dry run and
    becomes the signal of every graceful shutdown (os_proc.cpp:941); without it, KillSig."""
    job = job_from_submit(parse_submit_text(f"executable = a\nkill_sig = SIGINT\n{lines}queue\n",
                                            ROOT / "x.submit"))
    assert job.remove_kill_sig == expected
    assert job.soft_kill_sig == (expected or signal.SIGINT)
    assert "remove_kill_sig" not in job.ignored


def test_bad_remove_kill_sig_is_a_submit_error():
    """Rule: a remove_kill_sig that is not a signal is refused with the line named."""
    with pytest.raises(SubmitFileError, match=r"x\.submit:2: remove_kill_sig"):
        job_from_submit(parse_submit_text("executable = a\nremove_kill_sig = SIGNOPE\nqueue\n", ROOT / "x.submit"))


# What condor_submit -dump wrote for these commands (HTCondor 25.0.13 on the shared pool):
# OnExitRemove, JobMaxRetries, JobSuccessExitCode.
ON_EXIT_REMOVE_DUMPS = [
    ("", None, None, None),
    ("on_exit_remove = ExitCode == 9\n", "ExitCode == 9", None, None),
    ("max_retries = 2\n", "NumJobCompletions > JobMaxRetries || ExitCode =?= 0", 2, None),
    ("max_retries = 0\n", "NumJobCompletions > JobMaxRetries || ExitCode =?= 0", 0, None),
    ("max_retries = -1\n", "NumJobCompletions > JobMaxRetries || ExitCode =?= 0", -1, None),
    ("max_retries = 2\nsuccess_exit_code = 7\n",
     "NumJobCompletions > JobMaxRetries || ExitCode =?= JobSuccessExitCode", 2, 7),
    ("success_exit_code = 7\n",
     "NumJobCompletions > JobMaxRetries || ExitCode =?= JobSuccessExitCode", 2, 7),
    ("max_retries = 2\nretry_until = ExitCode == 5\n",
     "NumJobCompletions > JobMaxRetries || ExitCode =?= 0 || ExitCode == 5", 2, None),
    ("retry_until = 5\n", "NumJobCompletions > JobMaxRetries || ExitCode =?= 0 || ExitCode =?= 5", 2, None),
    ("max_retries = 2\non_exit_remove = ExitCode == 9\n",
     "NumJobCompletions > JobMaxRetries || ExitCode =?= 0 || ExitCode == 9", 2, None),
    ("retry_until = ExitCode == 5\non_exit_remove = ExitCode == 9\n",
     "NumJobCompletions > JobMaxRetries || ExitCode =?= 0 || ExitCode == 5 || ExitCode == 9", 2, None),
]


@pytest.mark.parametrize("commands, remove, retries, success", ON_EXIT_REMOVE_DUMPS)
def test_on_exit_remove_as_condor_submit_builds_it(commands, remove, retries, success):
    """Rule (condor_submit 25.0.13, -dump): max_retries, success_exit_code and retry_until
    become ``NumJobCompletions > JobMaxRetries || ExitCode =?= <JobSuccessExitCode or 0>``, then
    retry_until (an integer N as ``ExitCode =?= N``), then on_exit_remove; JobMaxRetries is 2
    when max_retries is not given; on_exit_remove alone stays as written."""
    sub = parse_submit_text(f"executable = x\n{commands}queue\n", ROOT / "x.submit")
    job = job_from_submit(sub)
    assert (job.on_exit_remove, job.job_max_retries, job.job_success_exit_code) == (
        remove, retries, success)
    assert job.ignored == []


@pytest.mark.parametrize("command", ["max_retries = x", "success_exit_code = abc",
                                     "retry_until = ExitCode ==", "on_exit_remove = (1"])
def test_on_exit_remove_commands_condor_submit_refuses(command):
    """Rule: what condor_submit refuses (no job: a non-integer max_retries or success_exit_code,
    an expression that does not parse) is refused with the line and the command named."""
    sub = parse_submit_text(f"executable = x\n{command}\nqueue\n", ROOT / "x.submit")
    with pytest.raises(SubmitFileError, match=rf"x\.submit:2: {command.split()[0]}"):
        job_from_submit(sub)
