"""Bad input (issue 6, "Bad input"): every run option with wrong values, from each of its three
sources; signals that cannot serve; bad PROGRAMs; a malformed job ad; a malformed submit file.

The rule for each: a one-line error naming the problem, the documented status (64 for usage and
configuration, 127 not found, 126 not executable), never the checkpoint status 85, the program
never started, and nothing written to the store (checksummed before and after).

The sweep iterates ``supervisor.config.OPTIONS``: an option added without bad values here fails
``test_every_option_has_bad_values``. Values the supervisor wrongly accepts are listed in
FORMER_BUGS: bugs this sweep found, fixed, and kept as regression tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.helpers import supervisor_cmd
from support.relutil import CHECKPOINT_STATUS, ENV, STORE, tree_digest

from supervisor.config import OPTIONS

# Wrong values per option: on the command line (strings), in the TOML file (any TOML value, wrong
# types first), in the CKPT_* variable (strings; lists are shell-split).
BAD: dict[str, dict[str, list[Any]]] = {
    "checkpoint": {"cli": ["/etc/passwd", "../up", "", ".", "checkpoint.atomic"],
                   "toml": [5, ["state", 5], {"a": 1}, True], "env": ["/abs", "../x", "."]},
    "store": {"cli": ["", "/", "..", "."], "toml": [3, True, ["x"]], "env": ["/", ".."]},
    "sandbox": {"cli": ["/nonexistent-ckpt-sandbox", "/etc/passwd"], "toml": [1, ["."]],
                "env": ["/nonexistent-ckpt-sandbox"]},
    "trigger-signal": {"cli": ["SIGFOO", "0", "65", "-1", "1.5", "SIGKILL", "SIGSTOP", "SIGTERM"],
                       "toml": [True, 1.5, {"a": 1}, "SIGKILL", 0], "env": ["SIGFOO", "SIGKILL", "9"]},
    "job-signal": {"cli": ["SIGFOO", "0", "SIGKILL", "SIGSTOP", "99"], "toml": [False, 2.5, [10]],
                   "env": ["bogus", "19"]},
    "every": {"cli": ["-1", "0", "abc", "nan", "inf", "1e400", "1e9"], "toml": [True, "x", -1, [1], "nan"],
              "env": ["-1", "0", "x"]},
    "watch": {"cli": ["--watch=maybe"], "toml": [3, "maybe", [True]], "env": ["maybe", "2", "yes please"]},
    "inspect-on-exit": {"cli": ["-1", "256", "abc", "1,x", "1.5"], "toml": [1.5, "x", [300], {"a": 1}],
                        "env": ["-1", "1;2"]},
    "done-when": {"cli": ["quiet=1", "bogus", "marker=", "log=(", "closed", "exit"], "toml": [1, [1]],
                  "env": ["quiet=1", "log=("]},
    "complete-when": {"cli": ["bogus", "quiet=-1", "quiet=abc", "log=(", "command=", "marker="],
                      "toml": [1, [True]], "env": ["bogus", "quiet=-1"]},
    "checkpoint-on-evict": {"cli": ["0", "-1", "abc", "1e12"], "toml": [True, "x", -5], "env": ["0", "x"]},
    "checkpoint-timeout": {"cli": ["0", "-1", "abc", "nan"], "toml": [True, [], -5], "env": ["0", "-2"]},
    "on-timeout": {"cli": ["explode", "", "FAIL!"], "toml": [1, True, ["fail"]], "env": ["explode"]},
    "min-run": {"cli": ["-1", "abc", "1e9", "nan"], "toml": [True, "x", -1], "env": ["-1"]},
    "resume-args": {"cli": ["'unterminated", 'a "b'], "toml": [1, ["a"], True], "env": ["'x"]},
    "exit-code": {"cli": ["0", "256", "-1", "abc", "85.0", "0x55", ""], "toml": [85.5, True, "x", 0, 300],
                  "env": ["0", "abc"]},
    "exit-signal": {"cli": ["SIGKILL", "SIGSTOP", "SIGFOO", "0"], "toml": [True, 1.5],
                    "env": ["SIGKILL", "x"]},
    "kill-signal": {"cli": ["SIGKILL", "SIGSTOP", "SIGFOO", "0"], "toml": [True, 1.5, [15]],
                    "env": ["SIGSTOP", "x"]},
    "remove-kill-signal": {"cli": ["SIGKILL", "SIGSTOP", "SIGFOO", "0"], "toml": [True, 1.5, [3]],
                           "env": ["SIGSTOP", "x"]},
    "kill-grace": {"cli": ["-3", "abc", "nan", "86401", "inf"], "toml": [True, "x", -1, [1]],
                   "env": ["-3", "x"]},
    "signal-to": {"cli": ["everyone", "", "GROUP!"], "toml": [1, ["group"]], "env": ["everyone"]},
    "events": {"cli": [], "toml": [5, True, ["e.jsonl"]], "env": []},
    "poll-interval": {"cli": ["0", "-1", "3601", "abc", "nan"], "toml": [True, "x", 0], "env": ["0", "x"]},
    "freeze": {"cli": ["maybe", "2", "stop"], "toml": [3, "maybe", [True]], "env": ["maybe", "yes please"]},
    "dmtcp": {"cli": ["--dmtcp=maybe"], "toml": [3, "maybe", [True]], "env": ["maybe", "2"]},
    "dmtcp-prefix": {"cli": ["", "/nonexistent-dmtcp"], "toml": [5, True, ["dmtcp"]], "env": ["", "/nonexistent-dmtcp"]},
    "max-no-progress": {"cli": ["-1", "abc", "1.5", "1e9", ""], "toml": [True, "x", -1, 2.5, [3]],
                        "env": ["-1", "x"]},
}

# Wrong values the supervisor once accepted, or answered with an internal error: each was a bug
# (found by this sweep, fixed in the supervisor) and stays here as a regression test.
FORMER_BUGS: dict[tuple[str, str, str], str] = {
    ("cli", "events", "/nonexistent-dir/e.jsonl"):
        "bug: an --events FILE that cannot be opened is an internal error (70, traceback) "
        "instead of a one-line usage error (64)",
    ("env", "events", "/nonexistent-dir/e.jsonl"):
        "bug: CKPT_EVENTS that cannot be opened is an internal error (70, traceback)",
    ("env", "trigger-signal", "'"):
        "bug: a CKPT_* list variable with an unbalanced quote is an internal error (70, traceback: "
        "shlex.split's ValueError escapes config.build)",
    ("cli", "trigger-signal", "SIGCHLD"):
        "bug: SIGCHLD is accepted as --trigger-signal but the loop drops every SIGCHLD: the trigger "
        "never fires",
    ("cli", "kill-signal", "SIGCHLD"):
        "bug: SIGCHLD is accepted as --kill-signal but the loop drops every SIGCHLD: evictions are "
        "never seen",
    ("cli", "exit-signal", "SIGCHLD"):
        "bug: SIGCHLD is accepted as --exit-signal but cannot kill the supervisor (ignored by "
        "default): a checkpoint is reported as exit 145, which HTCondor never matches",
    ("cli", "trigger-signal", "32"):
        "bug: signals 32 and 33 (reserved by glibc's threads) are accepted as --trigger-signal but "
        "the loop never installs a handler for them",
    ("cli", "sandbox-unused", "/nonexistent-ckpt-sandbox"):
        "bug: --sandbox naming a directory that does not exist is accepted (exit 0) when no "
        "--checkpoint is given",
}

TRIGGERS = {"trigger-signal", "job-signal", "every", "watch", "inspect-on-exit", "checkpoint-on-evict"}


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


@pytest.fixture(scope="module")
def committed_store(tmp_path_factory) -> Path:
    """A sandbox with a committed store, copied for every case."""
    root = tmp_path_factory.mktemp("committed")
    proc = subprocess.run(supervisor_cmd("run", "--checkpoint", "state", "--inspect-on-exit", "0", "--", "sh",
                                         "-c", "echo 1 > state"), cwd=root, env=ENV, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == CHECKPOINT_STATUS, proc.stderr
    return root


PROGRAM = ["sh", "-c", "echo started > started; echo 2 > state"]


def prepare(template: Path, work: Path, source: str, option: str, value: Any) -> dict[str, Any]:
    """A sandbox copy and the command line and environment that carry one wrong value."""
    sandbox = work
    shutil.copytree(template, sandbox)
    # The other settings a run needs, from a source the bad one overrides (flags beat env/TOML).
    base = {"checkpoint": "state", "inspect-on-exit": "0"}
    base.pop(option, None)
    if option == "inspect-on-exit":
        base["watch"] = "true"
    env = {k: v for k, v in ENV.items() if not k.startswith("CKPT_")}
    for k, v in base.items():
        env["CKPT_" + k.upper().replace("-", "_")] = v
    cli: list[str] = []
    if source == "cli":
        cli = [value] if isinstance(value, str) and value.startswith(f"--{option}=") else [f"--{option}", value]
    elif source == "env":
        env["CKPT_" + option.upper().replace("-", "_")] = value
    else:
        toml = sandbox.parent / f"{sandbox.name}.toml"
        toml.write_text(f"{option} = {toml_value(value)}\n")
        cli = ["--config", str(toml)]
    return {"argv": ["run", *cli, "--", *PROGRAM], "env": env, "cwd": str(sandbox),
            "name": f"{source} {option}={value!r}", "option": option, "value": value,
            "digest": tree_digest(sandbox / STORE)}


def judge(case: dict[str, Any], status: int, stderr: str) -> str | None:
    """The failure description of one case, or None when the rule holds."""
    option, value, sandbox = case["option"], case["value"], Path(case["cwd"])
    problems = []
    # argparse's own usage errors print the usage line first: the error is the line after it
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("usage:")]
    if status != 64:
        problems.append(f"status {status}")
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines of error")
    elif not (option in lines[0] or str(value) in lines[0] or (isinstance(value, str) and value and
                                                                value.split("=")[0] in lines[0])):
        problems.append("the message names neither the option nor the value")
    if (sandbox / "started").exists():
        problems.append("the program was started")
    if tree_digest(sandbox / STORE) != case["digest"]:
        problems.append("the store changed")
    if not problems:
        return None
    return f"{case['name']}: {', '.join(problems)}: {stderr.strip()[:300]}"


def run_batch(cases: list[dict[str, Any]], tmp: Path) -> list[tuple[int, str]]:
    """Run the cases through tests/support/batch_cli.py (one import, a fork per case)."""
    spec, out = tmp / "cases.json", tmp / "results.json"
    spec.write_text(json.dumps([{k: c[k] for k in ("argv", "env", "cwd")} for c in cases]))
    proc = subprocess.run([sys.executable, str(Path(__file__).parents[1] / "support" / "batch_cli.py"), str(spec), str(out)],
                          env=ENV, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stderr
    return [(r["status"], r["stderr"]) for r in json.loads(out.read_text())]


def attempt(template: Path, work: Path, source: str, option: str, value: Any) -> tuple[str, str | None]:
    """One case in its own ``ckpt-supervisor`` process (for the known bugs)."""
    case = prepare(template, work, source, option, value)
    proc = subprocess.run(supervisor_cmd(*case["argv"]), cwd=case["cwd"], env=case["env"],
                          capture_output=True, text=True, timeout=30)
    return case["name"], judge(case, proc.returncode, proc.stderr)


def cases() -> list[tuple[str, str, Any]]:
    out = []
    for opt in OPTIONS:
        for source in ("cli", "toml", "env"):
            for value in BAD.get(opt.name, {}).get(source, []):
                if (source, opt.name, str(value)) not in FORMER_BUGS:
                    out.append((source, opt.name, value))
    return out


def test_every_option_has_bad_values():
    """Every option of supervisor.config.OPTIONS has wrong values in each source it can come from."""
    missing = [o.name for o in OPTIONS if o.name not in BAD]
    assert missing == [], f"add bad values for {missing}"
    for o in OPTIONS:
        assert BAD[o.name]["toml"], f"{o.name}: no wrong TOML value"
        if o.name != "events":  # any string names a file; the bad ones are in FORMER_BUGS
            assert BAD[o.name]["cli"] and BAD[o.name]["env"], o.name


@pytest.mark.timeout(180)
@pytest.mark.parametrize("source", ["cli", "toml", "env"])
def test_every_option_with_wrong_values(committed_store, tmp_path, source):
    """Every option with each wrong value from this source: 64, one line naming the option or the
    value, the program not started, the store unchanged (never 85)."""
    todo = [prepare(committed_store, tmp_path / f"c{i}", *c) for i, c in enumerate(cases()) if c[0] == source]
    results = run_batch(todo, tmp_path)
    failures = [f for case, (status, err) in zip(todo, results) if (f := judge(case, status, err))]
    print(f"{source}: {len(results)} wrong values tried, {len(failures)} failures")
    assert failures == [], "\n".join(failures)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", sorted(FORMER_BUGS), ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_former_bugs(committed_store, tmp_path, case):
    """Each value that was once wrongly accepted (see FORMER_BUGS): the same rule as the sweep."""
    source, option, value = case
    if option == "sandbox-unused":
        proc = subprocess.run(supervisor_cmd("run", "--sandbox", value, "--", "true"), env=ENV,
                              capture_output=True, text=True, timeout=30, cwd=tmp_path)
        assert proc.returncode == 64, proc.stderr
        return
    _name, failure = attempt(committed_store, tmp_path / "case", source, option, value)
    assert failure is None, failure


# ---------------------------------------------------------------------------------------------
# PROGRAM


@pytest.mark.timeout(60)
@pytest.mark.parametrize("program,status,words", [
    ([], 64, "no PROGRAM"),
    (["/nonexistent/prog"], 127, "not found"),
    (["no-such-program-ckpt"], 127, "not found"),
    (["/etc/passwd"], 126, "permission denied"),
    (["/tmp"], 126, "/tmp"),
], ids=["none", "missing-path", "missing-in-PATH", "not-executable", "a-directory"])
def test_bad_program(committed_store, tmp_path, program, status, words):
    """No, a missing or a non-executable PROGRAM: its documented status, one line naming it,
    nothing written to the store."""
    sandbox = tmp_path / "s"
    shutil.copytree(committed_store, sandbox)
    digest = tree_digest(sandbox / STORE)
    proc = subprocess.run(supervisor_cmd("run", "-q", "--checkpoint", "state", "--", *program), cwd=sandbox,
                          env=ENV, capture_output=True, text=True, timeout=30)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == status, proc.stderr
    assert len(lines) == 1 and words in lines[0], proc.stderr
    assert tree_digest(sandbox / STORE) == digest


@pytest.mark.timeout(60)
def test_empty_program_name(committed_store, tmp_path):
    """`run -- ''`: a one-line error naming the empty PROGRAM (64 or 127), nothing written."""
    sandbox = tmp_path / "s"
    shutil.copytree(committed_store, sandbox)
    proc = subprocess.run(supervisor_cmd("run", "-q", "--checkpoint", "state", "--", ""), cwd=sandbox, env=ENV,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode in (64, 127)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "PROGRAM" in lines[0], proc.stderr


# ---------------------------------------------------------------------------------------------
# the job ad


JOB_ADS = {
    "not-name-value": "garbage ][\n",
    "bad-exit-code": 'SuccessCheckpointExitCode = "abc"\n',
    "exit-code-range": "SuccessCheckpointExitCode = 300\n",
    "uncatchable-ckpt-sig": 'WantCheckpointSignal = true\nCheckpointSig = "SIGKILL"\n',
    "unknown-ckpt-sig": 'WantCheckpointSignal = true\nCheckpointSig = "SIGFOO"\n',
    "bad-kill-sig": 'KillSig = "NOTASIGNAL"\n',
    "unterminated-string": 'KillSig = "SIGTERM\n',
    "binary": "\x00\x01\x02\xff\n",
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("ad", list(JOB_ADS))
def test_malformed_job_ad(committed_store, tmp_path, ad):
    """A malformed $_CONDOR_JOB_AD: 64 with one line naming the file, nothing written, never 85."""
    sandbox = tmp_path / "s"
    shutil.copytree(committed_store, sandbox)
    digest = tree_digest(sandbox / STORE)
    path = tmp_path / ".job.ad"
    path.write_bytes(JOB_ADS[ad].encode("latin-1"))
    proc = subprocess.run(supervisor_cmd("run", "--checkpoint", "state", "--inspect-on-exit", "0", "--", *PROGRAM),
                          cwd=sandbox, env={**ENV, "_CONDOR_JOB_AD": str(path)}, capture_output=True, text=True,
                          timeout=30)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 64, proc.stderr
    assert len(lines) == 1 and "job ad" in lines[0], proc.stderr
    assert not (sandbox / "started").exists()
    assert tree_digest(sandbox / STORE) == digest


# ---------------------------------------------------------------------------------------------
# the submit file of the dry run


SUBMITS = {
    "no-executable": "arguments = 1\nqueue\n",
    "no-equals": "executable /bin/true\nqueue\n",
    "bad-exit-code": "executable = /bin/true\ncheckpoint_exit_code = abc\nqueue\n",
    "garbage": "}}}{{{\n",
    "empty": "",
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("sub", list(SUBMITS))
def test_malformed_submit_file_for_the_dry_run(tmp_path, sub):
    """A malformed submit file: the dry run stops with 64 and one line naming the file, before
    creating its work directory; never 85."""
    path = tmp_path / "job.submit"
    path.write_text(SUBMITS[sub])
    work = tmp_path / "work"
    proc = subprocess.run(supervisor_cmd("dry-run", "--work-dir", str(work), "--quiet", str(path)), cwd=tmp_path,
                          env=ENV, capture_output=True, text=True, timeout=60)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 64, (proc.returncode, proc.stderr)
    assert len(lines) == 1 and "job.submit" in lines[0], proc.stderr
    assert not work.exists() or not any(work.iterdir())


# ---------------------------------------------------------------------------------------------
# Settings that are valid alone but cannot work together (issue 13)


def _run_cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
             program: tuple[str, ...] = ("sh", "-c", "touch started")) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in ENV.items() if not k.startswith("CKPT_")}
    return subprocess.run(supervisor_cmd("run", *args, "--", *program), cwd=tmp_path, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=30)


@pytest.mark.timeout(60)
def test_every_without_any_signal_is_a_usage_error(tmp_path):
    """Issue 13.3: --every with no job signal and no trigger signal asks for checkpoints nobody
    hears: 64 with one line naming the fix; with --watch (the program checkpoints on its own) or
    a --job-signal it runs."""
    proc = _run_cli(tmp_path, "--checkpoint", "state", "--every", "1")
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 64, proc.stderr
    assert len(lines) == 1 and "--every" in lines[0] and "--job-signal" in lines[0] and "--watch" in lines[0]
    assert not (tmp_path / "started").exists()
    assert _run_cli(tmp_path, "--checkpoint", "state", "--every", "100", "--watch").returncode == 0
    assert _run_cli(tmp_path, "--checkpoint", "state", "--every", "100", "--job-signal", "SIGUSR1").returncode == 0


def _job_ad(tmp_path: Path, vacate: int, machine: int | None = None) -> dict[str, str]:
    ad = tmp_path / ".job.ad"
    ad.write_text(f"JobMaxVacateTime = {vacate}\nNumJobStarts = 0\n")
    env = {"_CONDOR_JOB_AD": str(ad)}
    if machine is not None:
        (tmp_path / ".machine.ad").write_text(f"MachineMaxVacateTime = {machine}\n")
        env["_CONDOR_MACHINE_AD"] = str(tmp_path / ".machine.ad")
    return env


@pytest.mark.timeout(60)
def test_short_vacate_time_derives_the_grace_instead_of_refusing(tmp_path):
    """Issue 13.1: job_max_vacate_time = 5 and nothing set by the user: the run starts (it used to
    exit 64), with the grace derived from the vacate time and logged."""
    proc = _run_cli(tmp_path, "--checkpoint", "state", "--inspect-on-exit", "0", env=_job_ad(tmp_path, 5, 60))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "started").exists()
    assert "vacate time 5 s" in proc.stderr and "kill grace 1.875 s (derived)" in proc.stderr, proc.stderr


@pytest.mark.timeout(60)
def test_machine_vacate_time_is_the_limit_when_smaller(tmp_path):
    """Rule 9: the vacate time is the smaller of JobMaxVacateTime and the machine ad's
    MachineMaxVacateTime."""
    proc = _run_cli(tmp_path, "--checkpoint", "state", "--inspect-on-exit", "0", env=_job_ad(tmp_path, 300, 8))
    assert proc.returncode == 0, proc.stderr
    assert "vacate time 8 s" in proc.stderr and "MachineMaxVacateTime" in proc.stderr, proc.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("source", ["cli", "env", "toml"])
def test_explicit_grace_that_cannot_fit_the_vacate_time_is_refused(tmp_path, source):
    """Issue 13.1: only a value the user gave (flag, CKPT_* variable, TOML) that cannot fit in the
    vacate time is refused: 64, one line naming the option, the vacate time and where it came from."""
    env = _job_ad(tmp_path, 5)
    args = ["--checkpoint", "state", "--inspect-on-exit", "0"]
    if source == "cli":
        args += ["--kill-grace", "10"]
    elif source == "env":
        env["CKPT_KILL_GRACE"] = "10"
    else:
        (tmp_path / "c.toml").write_text("kill-grace = 10\n")
        args += ["--config", str(tmp_path / "c.toml")]
    proc = _run_cli(tmp_path, *args, env=env)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 64, proc.stderr
    assert len(lines) == 1 and "--kill-grace 10" in lines[0] and "vacate time 5 s" in lines[0], proc.stderr
    if source != "cli":
        assert ("environment" if source == "env" else "config") in lines[0]
    assert not (tmp_path / "started").exists()


@pytest.mark.timeout(60)
def test_unknown_ckpt_variable_is_named_with_the_nearest_known_one(tmp_path):
    """Issue 13.6: CKPT_EVREY is not a setting: one warning line naming CKPT_EVERY; the run goes on."""
    proc = _run_cli(tmp_path, env={"CKPT_EVREY": "5"})
    assert proc.returncode == 0, proc.stderr
    warn = [ln for ln in proc.stderr.splitlines() if "CKPT_EVREY" in ln]
    assert len(warn) == 1 and "CKPT_EVERY" in warn[0] and warn[0].startswith("ckpt-supervisor["), proc.stderr


@pytest.mark.timeout(60)
def test_errors_carry_the_name_and_pid_prefix(tmp_path):
    """Issue 13.6: the one-line error has the same ``ckpt-supervisor[PID]:`` prefix as the log."""
    proc = _run_cli(tmp_path, "--checkpoint", "state", "--every", "1")
    assert re.match(r"ckpt-supervisor\[\d+\]: error: ", proc.stderr), proc.stderr


@pytest.mark.timeout(60)
def test_unwritable_store_location_is_refused_at_start(tmp_path):
    """Issue 12.5: a store directory that cannot take files is found before the program starts:
    one line naming --store and the directory, exit 74 (the store could not be written)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    args = ["--checkpoint", "state", "--inspect-on-exit", "0", "--store", "ro/checkpoint.atomic"]
    mounted = False
    if os.geteuid() == 0:  # root ignores permissions: a read-only tmpfs stops it
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)],
                                 capture_output=True, check=False).returncode == 0
        if not mounted:
            pytest.skip("root, and cannot mount a read-only tmpfs here")
    else:
        ro.chmod(0o555)
    try:
        proc = _run_cli(tmp_path, *args)
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(ro)], check=False)
        else:
            ro.chmod(0o755)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 74, proc.stderr
    assert len(lines) == 1 and "--store" in lines[0] and "ro" in lines[0], proc.stderr
    assert not (tmp_path / "started").exists()
