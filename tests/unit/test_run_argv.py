"""The run command's fast argv reader (``options.parse_run_argv``): for every plain form it gives
what the argparse run parser gives, built from the one option table; anything else falls back to
argparse, whose messages and exit statuses stay the only ones."""

from __future__ import annotations

import os
import subprocess
import sys
import types

import pytest
from support.helpers import ROOT

from supervisor import config, exitstatus, options
from supervisor.__main__ import RUN_COUNTS, main, main_parser

COUNTS = [names[:2] for names in RUN_COUNTS]


def _value(opt: options.Option, n: int) -> str:
    """A value for ``opt`` (the readers store strings; conversion comes later, the same for both)."""
    return {"SIG": "SIGUSR1", "SECONDS": f"{n + 1}.5", "CODES": "0,3", "ACTION": "fail", "WHO": "child",
            "BOOL": "false", "N": str(n)}.get(opt.metavar or "", f"v{n} with space")


def _forms() -> list[list[str]]:
    """Argument lists (after ``run``) covering every row of the table in each plain form."""
    forms: list[list[str]] = []
    everything: list[str] = []
    for n, opt in enumerate(options.RUN):
        flag = f"--{opt.name}"
        if opt.flag:
            forms.append([flag, "--", "prog"])
            forms.append([flag, flag, "prog", "arg"])
            everything.append(flag)
            continue
        forms.append([flag, _value(opt, n), "--", "prog"])
        forms.append([f"{flag}={_value(opt, n)}", "prog"])
        forms.append([f"{flag}={_value(opt, n)}=x", "--", "prog"])
        forms.append([flag, "", "--", "prog"])  # an empty value is a value
        forms.append([flag, "first", flag, "second", "--", "prog"])  # repeated: appended or the last wins
        everything += [flag, _value(opt, n)]
    for names in RUN_COUNTS:
        forms.append([names[0], names[1], names[0], "--", "prog"])
    forms += [
        ["--config", "run.toml", "--", "prog"], ["--config=run.toml", "prog"],
        ["--", "prog", "--every", "3", "-v", "--"], ["prog", "--every", "3"], ["--"], [], ["--", "--", "x"],
        ["", "x"], ["-v", "prog", "--", "y"], ["--every", "3", "prog", "-h"],
        [*everything, "--config", "c.toml", "-v", "-q", "--verbose", "--", "prog", "a", "-b"],
    ]
    return forms


@pytest.mark.parametrize("argv", _forms(), ids=lambda a: " ".join(a) or "(nothing)")
def test_fast_reader_gives_what_argparse_gives(argv: list[str]) -> None:
    """Rule: for a plain argv, the fast reader's values are argparse's, key for key (values as
    strings, None when absent, lists for repeated options, counts, PROGRAM with its ``--``)."""
    fast = options.parse_run_argv(argv, COUNTS)
    assert fast is not None, argv
    slow = vars(main_parser(only="run").parse_args(["run", *argv]))
    assert {"command": "run", **fast} == slow


def test_same_run_config_from_both() -> None:
    """Rule: the RunConfig built from the fast reader's values equals the one from argparse's,
    environment twins and all."""
    argv = ["--checkpoint", "a", "--checkpoint=b", "--every", "30", "--job-signal", "SIGUSR1", "--watch",
            "--resume-args=--resume 1", "--kill-grace=3", "-v", "--", "prog", "x"]
    environ = {"CKPT_STORE": "elsewhere", "CKPT_COMPLETE_WHEN": "quiet=1 marker=done", "PATH": "/bin"}
    fast = options.parse_run_argv(argv, COUNTS)
    assert fast is not None
    built = config.build(types.SimpleNamespace(command="run", **fast), environ=environ)
    assert built == config.build(main_parser(only="run").parse_args(["run", *argv]), environ=environ)
    assert built.store == "elsewhere" and built.checkpoint == ("a", "b") and built.verbosity == 1


UNUSUAL = [
    ["--bogus", "--", "prog"],  # unknown option
    ["--check", "ck", "--", "prog"],  # an abbreviation of --checkpoint
    ["--every", "--", "prog"],  # a missing value
    ["--every"],  # a missing value at the end
    ["--watch=yes", "--", "prog"],  # a value given to a switch
    ["--verbose=2", "--", "prog"],
    ["-v=1", "--", "prog"],  # = after a short option
    ["-h"], ["--help"], ["--every", "3", "--help", "--", "prog"],
]
# forms argparse accepts that the fast reader leaves to it all the same
LEFT_TO_ARGPARSE = [
    ["--every=", "--", "prog"],  # = with nothing
    ["-vv", "--", "prog"],  # combined short flags
    ["-", "prog"],
    ["--resume-args", "--resume 1", "--", "prog"],  # a value with a space that starts with -
    ["--kill-grace", "-1", "--", "prog"],  # a negative number
]


@pytest.mark.parametrize("argv", LEFT_TO_ARGPARSE, ids=" ".join)
def test_unusual_but_valid_argv_is_read_by_argparse(argv: list[str]) -> None:
    """Rule: a form the fast reader is not sure of is declined, whatever argparse makes of it."""
    assert options.parse_run_argv(argv, COUNTS) is None
    main_parser(only="run").parse_args(["run", *argv])  # argparse reads it


@pytest.mark.parametrize("argv", UNUSUAL, ids=" ".join)
def test_unusual_argv_falls_back_to_argparse(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Rule: anything unusual is left to argparse: the fast reader declines, and the command's
    output and exit status are exactly argparse's (usage error 64, --help 0)."""
    assert options.parse_run_argv(argv, COUNTS) is None
    status = main(["run", *argv])
    got = capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main_parser(only="run").parse_args(["run", *argv])
    want = capsys.readouterr()
    assert (got.out, got.err) == (want.out, want.err)
    assert status == (0 if exc.value.code == 0 else exitstatus.EXIT_USAGE)


def test_plain_run_imports_no_parser_library() -> None:
    """Rule: ``ckpt-supervisor run -- PROGRAM`` starts without importing argparse, typing or re
    (their import is most of what separated the start-up from its target)."""
    code = ("import sys; sys.argv = ['ckpt-supervisor', 'run', '--', '/bin/true']\n"
            "from supervisor.__main__ import main\n"
            "status = main()\n"
            "print(status, sorted(m for m in ('argparse', 'typing', 're', 'shlex') if m in sys.modules))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CKPT_", "_CONDOR_"))}
    done = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=30,
                          env={**env, "PYTHONPATH": str(ROOT)}, check=False)
    assert done.stdout.strip() == "0 []", done.stdout + done.stderr
