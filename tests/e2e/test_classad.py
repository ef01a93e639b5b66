"""The dry run's ClassAd expressions (supervisor/condor/classad.py) against HTCondor's own
evaluator (the ``htcondor`` wheel's classad2, an optional test oracle) and against what the real
pool printed for on_exit_hold (HTCondor 25.0.13)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from support.helpers import ROOT

from supervisor import exitstatus
from supervisor.condor import classad

AD = {"ExitCode": 64, "ExitBySignal": False, "Name": "Foo", "Half": 0.5}
EXPRESSIONS = [
    "ExitBySignal =?= false && member(ExitCode, {64, 70, 74, 76})",
    'strcat("ckpt-supervisor exit status ", ExitCode, ": ", ifThenElse(ExitCode == 76, "a", '
    'ifThenElse(ExitCode == 64, "b", "c")), "; see the job\'s stderr")',
    'strcat("s ", ExitCode, true, 1.5, undefined)', '"ABC" == "abc"', '"ABC" =?= "abc"',
    'member("A", {"a"})', "Missing && false", "Missing && true", "Missing || true",
    "Missing || false", "1 == 1.0", "1 =?= 1.0", "ifThenElse(Missing, 1, 2)", "5/2", "-7/2",
    "-7 % 3", "5.0/2", "7 % 3", "member(64, {64.0})", 'ExitCode == "64"', "isUndefined(Missing)",
    "ExitBySignal == 0", "true + 1", "strcat(2.0)", "strcat(Half)", "!Missing", "!ExitCode",
    'ExitCode > 3 ? "big" : "small"', 'Name == "foo"', 'Name is "foo"', 'Name isnt "Foo"',
    "size({1,2,3})", 'int("12")', "1/0", "undefined =?= undefined", "error == 1",
    '"a" < "B"', "-ExitCode + 2*3 < 0", "ExitCode == 64 && (ExitBySignal || true)",
    "ExitCode =!= undefined", '"x" && true', "1 && true", "0 || false", "noSuchFunction(1)",
]


def _ours(v):
    return "undefined" if v is classad.UNDEFINED else "error" if v is classad.ERROR else v


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_evaluation_agrees_with_htcondor(text):
    """Rule: a policy expression has the value HTCondor gives it (three-valued logic, strings
    compared without case by == and with case by =?=, integer division, strcat's formats)."""
    c = pytest.importorskip("classad2", reason="the htcondor wheel (test oracle) is not installed")
    theirs = c.ExprTree(text).eval(c.ClassAd(AD))
    if isinstance(theirs, c.Value):
        theirs = "undefined" if theirs == c.Value.Undefined else "error"
    ours = _ours(classad.evaluate(text, AD))
    assert (type(ours), ours) == (type(theirs), theirs)


def test_unparse_is_the_text_the_pool_quotes():
    """Rule (HTCondor 25.0.13 on a real pool): without on_exit_hold_reason the hold reason quotes
    the expression in the compact unparsed form: lists as ``{ 64,70 }``, calls without spaces,
    unary operators with a space before them."""
    text = ("ExitBySignal =?= false && member(ExitCode, {64, 70}) && !(ExitCode == 1) && "
            "-ExitCode + 2*3 < 0")
    assert classad.unparse(classad.parse(text)) == (
        "ExitBySignal =?= false && member(ExitCode,{ 64,70 }) &&  !(ExitCode == 1) &&  "
        "-ExitCode + 2 * 3 < 0")


def _dry_run(tmp_path, policy: str, status: int):
    (tmp_path / "job.sh").write_text(f"#!/bin/sh\necho out\nexit {status}\n")
    (tmp_path / "job.sh").chmod(0o755)
    (tmp_path / "j.submit").write_text(
        f"executable = job.sh\nshould_transfer_files = yes\noutput = j.out\nlog = j.log\n{policy}queue\n")
    return subprocess.run([sys.executable, "-m", "supervisor", "dry-run", "--quiet", "j.submit",
                           "--work-dir", str(tmp_path / "work")],  # a held dry run keeps its folder
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.timeout(60)
def test_on_exit_hold_holds_after_the_outputs_with_code_3(tmp_path):
    """Rule (seen on HTCondor 25.0.13): on_exit_hold true at the job's end holds it, code 3,
    subcode and reason from on_exit_hold_subcode/_reason; the outputs are transferred first
    (040 040 012, no 005); the dry run exits with its held status (80)."""
    done = _dry_run(tmp_path, "on_exit_hold = ExitCode == 64\n"
                    'on_exit_hold_reason = strcat("failed with ", ExitCode)\n'
                    "on_exit_hold_subcode = ExitCode + 1\n", 64)
    assert done.returncode == exitstatus.DRYRUN_HELD, done.stdout + done.stderr
    log = (tmp_path / "j.log").read_text()
    codes = [line[:3] for line in log.splitlines() if line[:3].isdigit()]
    assert codes[-3:] == ["040", "040", "012"] and "005" not in codes, log
    assert "\tfailed with 64\n\tCode 3 Subcode 65\n" in log
    assert (tmp_path / "j.out").read_text() == "out\n"


@pytest.mark.timeout(60)
def test_on_exit_hold_false_or_undefined_terminates(tmp_path):
    """Rule: on_exit_hold false, or undefined (an attribute the ad does not have), lets the job
    terminate with its own exit code; the default reason is only for a true policy."""
    for policy in ("on_exit_hold = ExitCode == 1\n", "on_exit_hold = NoSuchAttr\n"):
        done = _dry_run(tmp_path, policy, 3)
        assert done.returncode == 3, done.stdout + done.stderr
        assert "005 (" in (tmp_path / "j.log").read_text()


@pytest.mark.timeout(60)
def test_on_exit_hold_default_reason(tmp_path):
    """Rule (HTCondor 25.0.13): without a reason the hold says "The job attribute OnExitHold
    expression '<expression>' evaluated to TRUE", subcode 0."""
    done = _dry_run(tmp_path, "on_exit_hold = ExitCode == 64\n", 64)
    assert done.returncode == exitstatus.DRYRUN_HELD
    assert ("\tThe job attribute OnExitHold expression 'ExitCode == 64' evaluated to TRUE\n"
            "\tCode 3 Subcode 0\n") in (tmp_path / "j.log").read_text()


def test_unreadable_policy_is_refused_in_one_line(tmp_path):
    """An on_exit_hold that is not an expression is a usage error (64) naming the line, before
    anything runs, as condor_submit refuses it."""
    done = _dry_run(tmp_path, "on_exit_hold = ExitCode == (64\n", 0)
    assert done.returncode == exitstatus.EXIT_USAGE, done.stderr
    assert "j.submit:5: on_exit_hold" in done.stderr and done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "j.log").exists()
