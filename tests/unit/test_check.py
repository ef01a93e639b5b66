"""``ckpt-supervisor check``: the pitfall corpus in tests/data/submit/.

Each corpus file starts with ``# expect: code@line, ...`` (or ``# expect: nothing``): the exact
findings ``check`` must report. ``bad-*`` files hold one error each, ``warn-*`` one warning,
``good-*`` none.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.helpers import ROOT

from supervisor import exitstatus
from supervisor.__main__ import main
from supervisor.condor.check import ERROR, RULES, WARNING, check_submit
from supervisor.condor.submit import parse_submit_text
from supervisor.errors import SubmitFileError

CORPUS = ROOT / "tests" / "data" / "submit"
FILES = sorted(CORPUS.glob("*.submit"))


def expected(path: Path) -> set[tuple[str, int]]:
    head = path.read_text().splitlines()[0]
    m = re.fullmatch(r"# expect: (.*)", head)
    assert m, f"{path.name}: first line must be '# expect: ...'"
    if m.group(1) == "nothing":
        return set()
    return {(c.split("@")[0], int(c.split("@")[1])) for c in m.group(1).split(", ")}


def run_check(*args: str) -> subprocess.CompletedProcess[str]:
    """The real command line, in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "supervisor", "check", *args],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        timeout=30,
        check=False,
    )


def main_check(capsys, *args: str) -> tuple[int, str]:
    """The CLI's main() in this process (fast): (exit status, stdout)."""
    status = main(["check", *args])
    return status, capsys.readouterr().out


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_corpus_findings(path):
    """Rule: check reports exactly the findings a corpus file declares, code and line."""
    got = {(f.code, f.line) for f in check_submit(path)}
    assert got == expected(path)


def test_corpus_covers_every_rule():
    """Rule: every pitfall check knows has a corpus file of its own (bad-* for errors,
    warn-* for warnings), so no rule is untested."""
    covered: dict[str, set[str]] = {}
    for path in FILES:
        for code, _ in expected(path):
            covered.setdefault(code, set()).add(path.stem)
    assert set(RULES) <= set(covered), set(RULES) - set(covered)
    for code, (severity, _) in RULES.items():
        prefix = "bad-" if severity == ERROR else "warn-"
        assert any(name.startswith(prefix) for name in covered[code]), code


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_exit_status_and_output(path, capsys):
    """Rule: exit 1 with an error, 0 with warnings only or nothing; every finding printed has
    severity, file:line (or the file), what is wrong and a 'fix:' line."""
    status, out = main_check(capsys, str(path))
    exp = expected(path)
    has_error = any(RULES[c][0] == ERROR for c, _ in exp)
    assert status == (exitstatus.EXIT_CHECK_FAILED if has_error else 0), out
    for code, line in exp:
        where = f"{path}:{line}" if line else str(path)
        assert f"{where}: {RULES[code][0]} [{code}]: " in out
    assert out.count("\n    fix: ") == len(exp)


def test_command_line_exit_status():
    """Rule: the installed command line gives the same statuses: 1 for an error, 0 for a
    warning only."""
    assert run_check(str(CORPUS / "bad-store-trailing-slash.submit")).returncode == 1
    assert run_check(str(CORPUS / "warn-no-queue.submit")).returncode == 0


def test_json_output():
    """Rule: --json prints a list of {severity, code, line, message, fix}."""
    proc = run_check("--json", str(CORPUS / "bad-checkpoint-code-zero.submit"))
    [finding] = json.loads(proc.stdout)
    assert finding["severity"] == "error" and finding["code"] == "checkpoint-code-zero"
    assert finding["line"] == 4 and "85" in finding["fix"]


def test_unreadable_file_is_usage_error(tmp_path):
    """Rule: a submit file that cannot be read is a usage error (64), not a finding."""
    proc = run_check(str(tmp_path / "missing.submit"))
    assert proc.returncode == exitstatus.EXIT_USAGE
    assert "cannot read the submit file" in proc.stderr


def test_run_options_after_double_dash():
    """Rule: for a wrapper script, the run options given after -- are checked as if the file
    started the supervisor with them (here: a --kill-signal that contradicts kill_sig)."""
    path = CORPUS / "warn-wrapper-not-read.submit"
    codes = {
        f.code
        for f in check_submit(
            path, ["--checkpoint", "state.dat", "--watch", "--kill-signal", "SIGINT"]
        )
    }
    assert "kill-sig-mismatch" in codes


def test_options_after_double_dash_override_the_files():
    """Rule: options after -- are layered over the ones in arguments (a store the file lists
    makes the not-transferred error go away)."""
    path = CORPUS / "bad-store-not-transferred.submit"
    assert {f.code for f in check_submit(path, ["--store", "results.txt"])} == set()


def test_severities_are_known():
    """Rule: every rule is an error or a warning."""
    assert {sev for sev, _ in RULES.values()} == {ERROR, WARNING}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_corpus_parses_as_htcondor2_submit(path, htcondor2):
    """Rule: the parser check relies on makes of each corpus file what htcondor2.Submit
    (condor_submit's parser) makes of it: same commands and raw values, same expansion, same
    queue arguments; and a file it refuses, htcondor2 refuses too."""
    text = path.read_text()
    try:
        ours = parse_submit_text(text, path)
    except SubmitFileError:
        with pytest.raises(ValueError):
            htcondor2.Submit(text)
        return
    theirs = htcondor2.Submit(text)
    assert dict(ours.commands) == dict(theirs)
    assert (ours.queue_args or "") == (theirs.getQArgs() or "")
    for key in theirs:
        try:
            want = theirs.expand(key)
        except KeyError:
            want = ""
        assert ours.expand(ours.commands[key]) == want, key


def test_reference_page_lists_every_rule():
    """Rule: docs/reference/check.md names every finding code check can report."""
    page = (ROOT / "docs" / "reference" / "check.md").read_text()
    missing = [code for code in RULES if f"`{code}`" not in page]
    assert not missing, missing


def test_torn_checkpoint_upload_at_eviction_is_an_error(capsys):
    """Rule (issue 12.2): the old tutorial's vuc.submit (ON_EXIT_OR_EVICT, the working vuc.ckpt
    in transfer_output_files) fails check: exit 1, the line, the torn copy and the fix."""
    path = CORPUS / "bad-checkpoint-uploaded-at-evict.submit"
    status, out = main_check(capsys, str(path))
    assert status == exitstatus.EXIT_CHECK_FAILED
    assert f"{path}:9: error [checkpoint-uploaded-at-evict]: transfer_output_files lists vuc.ckpt" in out
    assert "torn" in out and "drop when_to_transfer_output = ON_EXIT_OR_EVICT" in out


def test_on_exit_or_evict_is_not_recommended(capsys):
    """Rule (issue 11): a supervised job without when_to_transfer_output passes check with no
    finding at all; nothing in check's output recommends ON_EXIT_OR_EVICT."""
    status, out = main_check(capsys, str(CORPUS / "good-supervised.submit"))
    assert status == 0 and out.endswith(": 0 errors, 0 warnings\n"), out
    for path in FILES:
        for f in check_submit(path):
            assert "write when_to_transfer_output = ON_EXIT_OR_EVICT" not in f.fix, path


def test_short_vacate_time_without_a_given_grace_passes(capsys):
    """Rule (issue 13.1): job_max_vacate_time = 5 with no --kill-grace is fine (the supervisor
    derives its grace from the vacate time): exit 0, no finding."""
    status, out = main_check(capsys, str(CORPUS / "good-short-vacate-default-grace.submit"))
    assert status == 0 and "0 errors, 0 warnings" in out, out


def test_given_grace_that_cannot_fit_is_an_error(capsys):
    """Rule: an explicit --kill-grace larger than the vacate time makes the supervisor refuse
    to start (exit 64): an error on the job_max_vacate_time line naming both numbers."""
    path = CORPUS / "bad-vacate-below-grace.submit"
    status, out = main_check(capsys, str(path))
    assert status == exitstatus.EXIT_CHECK_FAILED
    assert f"{path}:9: error [supervisor-refuses]: the supervisor would exit 64" in out
    assert "--kill-grace 40 do not fit in the vacate time 30 s" in out


def test_vacate_time_is_capped_by_the_machine(tmp_path):
    """Rule: the vacate time is min(job_max_vacate_time, MachineMaxVacateTime, 600 s by
    default): a 700 s grace does not fit a job_max_vacate_time of 900."""
    text = (CORPUS / "good-short-vacate-default-grace.submit").read_text()
    text = text.replace("--watch", "--watch --kill-grace 700").replace(
        "job_max_vacate_time = 5", "job_max_vacate_time = 900")
    path = tmp_path / "job.submit"
    path.write_text(text.replace("sim.py", "/bin/true"))
    [finding] = check_submit(path)
    assert finding.code == "supervisor-refuses" and "vacate time 600 s" in finding.message
    assert "MachineMaxVacateTime" in finding.message


def test_broken_checkpoint_on_evict_recipe(capsys):
    """Rule (issue 13.4): the store in transfer_output_files without being shipped as an input
    holds a job that is never evicted (code 12): an error that says how to fix it."""
    path = CORPUS / "bad-store-output-missing.submit"
    status, out = main_check(capsys, str(path))
    assert status == exitstatus.EXIT_CHECK_FAILED
    assert "error [store-output-missing]" in out and "held (code 12" in out
    assert "mkdir checkpoint.atomic" in out


def test_shell_wrapper_without_exec_warns(capsys):
    """Rule (issue 13.2): a shell script PROGRAM whose last command is not exec'ed, with a job
    signal sent to the group: a warning naming the script and the three fixes; exit 0."""
    status, out = main_check(capsys, str(CORPUS / "warn-shell-without-exec.submit"))
    assert status == 0
    assert "warning [shell-without-exec]: ./wrapper-noexec.sh is a shell script" in out
    assert "exec" in out and "trap SIGUSR1" in out and "--signal-to child" in out


def test_checkpoint_exit_signal_string_is_an_error(capsys):
    """Rule (issue 13.8): +SuccessCheckpointExitSignal = "SIGUSR1" reads as 0 in HTCondor: an
    error whose fix gives the number."""
    status, out = main_check(capsys, str(CORPUS / "bad-exit-signal-not-number.submit"))
    assert status == exitstatus.EXIT_CHECK_FAILED
    assert "error [exit-signal-not-number]" in out
    assert "+SuccessCheckpointExitSignal = 10" in out


def test_two_different_checkpoint_codes_are_an_error(capsys):
    """Rule (issue 13.8): checkpoint_exit_code = 85 and +SuccessCheckpointExitCode = 86: exit 1,
    naming the code HTCondor will use (the attribute's)."""
    status, out = main_check(capsys, str(CORPUS / "bad-checkpoint-code-conflict.submit"))
    assert status == exitstatus.EXIT_CHECK_FAILED
    assert "error [checkpoint-code-conflict]" in out and "checkpoint code is 86" in out


def test_missing_hold_policy_warns(capsys):
    """Rule (issue 12.5): a supervised job without on_exit_hold for 64/70/74: a warning whose fix
    is the snippet's on_exit_hold line; exit 0."""
    status, out = main_check(capsys, str(CORPUS / "warn-no-hold-policy.submit"))
    assert status == 0 and "warning [no-hold-policy]" in out
    assert "on_exit_hold = ExitBySignal =?= false && member(ExitCode, {64, 70, 74, 76})" in out


def test_checkpoint_on_evict_howto_recipe_passes(tmp_path):
    """Rule (issue 13.4): the submit lines of docs/howto/checkpoint-on-eviction.md (store and
    result shipped so they exist at every eviction) have no error; the only finding is that
    the supervisor must be installed (the page uses an installed ckpt-supervisor)."""
    page = (ROOT / "docs" / "howto" / "checkpoint-on-eviction.md").read_text()
    [block] = [b for b in re.findall(r"(?ms)^```[a-z]*\n(.*?)^```", page) if b.startswith("arguments")]
    hold = (CORPUS / "good-supervised.submit").read_text().splitlines()
    text = ("executable = /usr/bin/env\ntransfer_executable = false\n" + block
            + "checkpoint_exit_code = 85\n" + "\n".join(x for x in hold if x.startswith("on_exit"))
            + "\nqueue\n")
    path = tmp_path / "job.submit"
    path.write_text(text)
    assert [f.code for f in check_submit(path)] == ["supervisor-installed"], text


def test_supervisor_refuses_names_the_submit_line_not_a_temporary_file(capsys):
    """Rule: when run would refuse the job ad check builds from the submit file, the finding
    names what the user wrote (remove_kill_sig, on its line) and never the random temporary
    path of the job ad check writes; the output is the same from one run to the next."""
    path = CORPUS / "bad-supervisor-refuses-job-ad.submit"
    outputs = [main_check(capsys, str(path)) for _ in range(2)]
    assert outputs[0] == outputs[1]
    status, out = outputs[0]
    assert status == exitstatus.EXIT_CHECK_FAILED
    assert ".job.ad" not in out and "/tmp" not in out, out
    assert "bad-supervisor-refuses-job-ad.submit:12: error [supervisor-refuses]" in out
    assert "RemoveKillSig: SIGKILL cannot be caught" in out and "fix remove_kill_sig" in out


def _dmtcp_howto_block() -> str:
    page = (ROOT / "docs" / "howto" / "checkpoint-a-program-that-cannot-checkpoint.md").read_text()
    [block] = [b for b in re.findall(r"(?ms)^```[a-z]*\n(.*?)^```", page) if b.startswith("executable")]
    return block


def test_dmtcp_howto_recipe_passes(tmp_path):
    """Rule (issue 16): the submit lines of the DMTCP how-to's "A job" (the store shipped empty and
    listed as output, the hold policy, the Microarch requirement, the .pyz) pass check with no
    finding at all."""
    text = _dmtcp_howto_block() + "queue\n"
    path = tmp_path / "job.submit"
    path.write_text(text)
    assert [f"{f.code}: {f.message}" for f in check_submit(path)] == [], text


@pytest.mark.parametrize("source", ["howto", "example"])
def test_dmtcp_eviction_budget_fits_a_60_second_vacate_time(source):
    """Rule (issue 16): the --checkpoint-on-evict of the DMTCP how-to and of examples/dmtcp fits a
    pool whose MachineMaxVacateTime is 60 s (the shared test pool's): run would otherwise refuse
    the job at its start (status 64) and the hold policy would hold it."""
    from supervisor.config import derive_timing

    text = (_dmtcp_howto_block() if source == "howto"
            else (ROOT / "examples" / "dmtcp" / "memloop.submit").read_text())
    evict = float(re.search(r"--checkpoint-on-evict (\d+)", text).group(1))
    job_vacate = float(re.search(r"(?m)^job_max_vacate_time\s*=\s*(\d+)", text).group(1))
    timing = derive_timing(min(job_vacate, 60.0), "MachineMaxVacateTime", kill_grace=None,
                           checkpoint_on_evict=evict)
    assert timing.promise_budget == evict
    assert timing.upload_reserve >= 10, timing.describe()
