"""The run loop with real processes: signals, exit statuses, process trees, zombies, masks."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
from support.helpers import ROOT, VICTIM, alive, sleep_until, spawned, supervisor_cmd
from support.helpers import wait_line as read_until  # the victim's stdout, through the supervisor

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def start(args, *, victim_args=(), program=None, env=None, **kw):
    """Start the supervisor on the victim; return the context manager of the supervisor process."""
    program = program or [sys.executable, str(VICTIM), *victim_args]
    return spawned(supervisor_cmd("run", *args, "--", *program), stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, env=env or ENV, text=True, **kw)


def run_status(args, program, timeout=30):
    proc = subprocess.run(supervisor_cmd("run", *args, "--", *program), env=ENV, capture_output=True,
                          text=True, timeout=timeout)
    return proc


FORWARDED = [s for s in range(1, 32)
             if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGTERM)]


@pytest.mark.timeout(120)
def test_every_catchable_signal_reaches_the_program():
    """Signals 1-31 but KILL, STOP, CHLD and the role signals (here SIGTERM) reach PROGRAM."""
    with start([], victim_args=["--sleep", "100", "--exit-on", "SIGTERM:3"]) as proc:
        ready = read_until(proc, "ready")
        for sig in FORWARDED:
            os.kill(proc.pid, sig)
            assert read_until(proc, f"signal {sig}") == f"signal {sig}", ready
        os.kill(proc.pid, signal.SIGTERM)  # the soft kill is passed on too
        assert proc.wait(timeout=15) == 3


@pytest.mark.timeout(120)
def test_exit_codes_pass_through_except_the_reserved_one():
    """Exit codes 0-255 pass through; PROGRAM's own 85 (reserved) becomes 65 with an explanation."""

    def one(code):
        return code, run_status([], ["sh", "-c", f"exit {code}"])

    with ThreadPoolExecutor(8) as pool:
        results = dict(pool.map(one, range(256)))
    for code, proc in results.items():
        expected = 65 if code == 85 else code
        assert proc.returncode == expected, (code, proc.stderr)
    assert "reserved checkpoint code 85" in results[85].stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGABRT,
                                 signal.SIGKILL, signal.SIGUSR1, signal.SIGSEGV, signal.SIGUSR2,
                                 signal.SIGPIPE, signal.SIGALRM, signal.SIGTERM])
def test_death_by_signal_gives_128_plus_n(sig):
    """A PROGRAM that dies from signal N makes the supervisor exit with 128+N."""
    proc = run_status([], ["sh", "-c", f"ulimit -c 0; kill -{int(sig)} $$"])
    assert proc.returncode == 128 + sig


@pytest.mark.timeout(30)
def test_missing_program_is_127_with_a_message():
    """PROGRAM that cannot be found: 127 and a one-line message naming it."""
    proc = run_status([], ["/no/such/program"])
    assert proc.returncode == 127
    assert "/no/such/program: not found" in proc.stderr


@pytest.mark.timeout(30)
def test_non_executable_program_is_126_with_a_message(tmp_path):
    """PROGRAM that exists but cannot be executed: 126 and a one-line message naming it."""
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    proc = run_status([], [str(script)])
    assert proc.returncode == 126
    assert "permission denied" in proc.stderr


@pytest.mark.timeout(30)
def test_usage_errors_are_64():
    """The supervisor's own usage errors (no PROGRAM, a bad flag value) exit 64 with one line."""
    proc = subprocess.run(supervisor_cmd("run"), env=ENV, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 64 and "no PROGRAM" in proc.stderr
    proc = run_status(["--kill-grace", "-3"], ["true"])
    assert proc.returncode == 64 and "--kill-grace" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.timeout(60)
def test_soft_kill_removes_the_whole_tree_within_grace(tmp_path):
    """After the soft kill, a setsid grandchild and a child ignoring SIGTERM are gone once the
    supervisor has exited (after the grace)."""
    daemon_file, stubborn_file = tmp_path / "daemon.pid", tmp_path / "stubborn.pid"
    grace = 2.0
    with start(["--kill-grace", str(grace)],
               victim_args=["--setsid-grandchild", str(daemon_file), "--stubborn-child", str(stubborn_file),
                            "--ignore", "SIGTERM", "--sleep", "100"]) as proc:
        read_until(proc, "ready")
        sleep_until(lambda: daemon_file.exists() and stubborn_file.exists())
        daemon, stubborn = int(daemon_file.read_text()), int(stubborn_file.read_text())
        assert alive(daemon) and alive(stubborn)
        assert os.getsid(daemon) != os.getsid(proc.pid)  # it left the process group and session
        os.kill(proc.pid, signal.SIGTERM)
        status = proc.wait(timeout=grace + 10)
        assert status == 128 + signal.SIGKILL  # the program ignored SIGTERM and was killed
        assert not alive(daemon) and not alive(stubborn)


@pytest.mark.timeout(60)
def test_leftover_descendants_are_killed_after_the_program_exits(tmp_path):
    """After PROGRAM exits, remaining descendants are killed and the supervisor exits after them."""
    daemon_file = tmp_path / "daemon.pid"
    with start([], victim_args=["--setsid-grandchild", str(daemon_file), "--steps", "3"]) as proc:
        sleep_until(daemon_file.exists)
        daemon = int(daemon_file.read_text())
        assert proc.wait(timeout=20) == 0
        assert not alive(daemon)


@pytest.mark.timeout(60)
def test_no_zombies_after_many_short_lived_grandchildren():
    """100 short-lived orphaned grandchildren are reaped by the subreaper: no zombie stays."""
    with start([], victim_args=["--short-children", "100", "--sleep", "100"]) as proc:
        read_until(proc, "ready")

        def no_zombies():
            try:
                kids = psutil.Process(proc.pid).children(recursive=True)
                zombies = [k for k in kids if k.status() == psutil.STATUS_ZOMBIE]
            except psutil.Error:
                return False  # a grandchild vanished while we looked: look again
            return not zombies and len(kids) == 1  # only the victim itself is left
        sleep_until(no_zombies, timeout=15)
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)


@pytest.mark.timeout(30)
def test_signal_mask_and_ignored_set_equal_the_callers(tmp_path):
    """PROGRAM starts with the caller's blocked mask and ignored set (SigBlk/SigIgn)."""
    caller = tmp_path / "caller"
    launcher = (
        "import os, signal, sys\n"
        "for s in (signal.SIGPIPE, signal.SIGXFSZ): signal.signal(s, signal.SIG_DFL)\n"
        "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGUSR1, signal.SIG_IGN)\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2, signal.SIGWINCH})\n"
        f"open({str(caller)!r}, 'w').writelines(l for l in open('/proc/self/status') "
        "if l.startswith(('SigBlk', 'SigIgn')))\n"
        "os.execvp(sys.argv[1], sys.argv[1:])\n"
    )
    # the program is not Python (Python itself ignores SIGPIPE and SIGXFSZ at start-up)
    # (nor a shell, which may reset its mask): grep reads its own status, output passes through us
    dump = ["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]
    cmd = [sys.executable, "-c", launcher, *supervisor_cmd("run", "--", *dump)]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == caller.read_text()
    assert "SigIgn:\t0000000000000201" in caller.read_text()  # HUP and USR1 ignored


@pytest.mark.timeout(30)
def test_checkpoint_by_signal_dies_from_exactly_that_signal_without_core_bit():
    """The reporting path for --exit-signal: death by exactly SIG, no core-dump bit in the wait status."""
    for sig in (signal.SIGUSR2, signal.SIGQUIT, signal.SIGABRT):
        code = f"from supervisor.process import die_by_signal; die_by_signal({int(sig)})"
        pid = os.posix_spawn(sys.executable, [sys.executable, "-c", code], ENV)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == sig
        assert not os.WCOREDUMP(status)
        assert status == int(sig)  # exactly what the starter compares with


@pytest.mark.timeout(30)
def test_signal_to_child_reaches_only_the_child(tmp_path):
    """With --signal-to child, a passed-on signal reaches the child and not its process group."""
    stubborn = tmp_path / "stubborn.pid"
    with start(["--signal-to", "child"], victim_args=["--stubborn-child", str(stubborn), "--sleep", "100"]) as proc:
        read_until(proc, "ready")
        sleep_until(stubborn.exists)
        pid = int(stubborn.read_text())
        os.kill(proc.pid, signal.SIGUSR1)
        read_until(proc, "signal 10")
        assert alive(pid)  # its child (default action for SIGUSR1: terminate) was not signalled
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
        assert not alive(pid)


@pytest.mark.timeout(30)
def test_event_log_records_the_lifecycle(tmp_path):
    """--events writes one JSON object a line: started, signal passed on, kill sent, exited, exit."""
    events = tmp_path / "events.jsonl"
    with start(["--events", str(events)], victim_args=["--sleep", "100"]) as proc:
        read_until(proc, "ready")
        os.kill(proc.pid, signal.SIGUSR1)
        read_until(proc, "signal 10")
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    records = [json.loads(line) for line in events.read_text().splitlines()]
    kinds = [r["event"] for r in records]
    for kind in ("started", "signal_forwarded", "kill_sent", "exited", "exit"):
        assert kind in kinds
    assert all(isinstance(r["time"], float) and r["iso"].endswith("Z") for r in records)


@pytest.mark.timeout(30)
def test_config_file_and_environment_twins_flags_win(tmp_path):
    """--config TOML and CKPT_* variables set options; the command line wins over both."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('kill-grace = "oops"\n')
    proc = run_status(["--config", str(cfg)], ["true"])
    assert proc.returncode == 64 and "--kill-grace" in proc.stderr
    cfg.write_text("unknown-key = 1\n")
    proc = run_status(["--config", str(cfg)], ["true"])
    assert proc.returncode == 64 and "unknown key" in proc.stderr
    cfg.write_text("kill-grace = 1\n")
    env = {**ENV, "CKPT_KILL_GRACE": "bad"}
    proc = subprocess.run(supervisor_cmd("run", "--config", str(cfg), "--", "true"), env=env,
                          capture_output=True, text=True, timeout=20)
    assert proc.returncode == 64 and "CKPT" not in proc.stdout
    proc = subprocess.run(supervisor_cmd("run", "--config", str(cfg), "--kill-grace", "2", "--", "true"),
                          env=env, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    help_text = subprocess.run(supervisor_cmd("run", "--help"), env=ENV, capture_output=True, text=True).stdout
    assert "CKPT_KILL_GRACE" in help_text and "CKPT_CHECKPOINT" in help_text


def _catches(pid: int, sig: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            caught = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt"))
    except (OSError, StopIteration):
        return False
    return bool(caught & (1 << (sig - 1)))


@pytest.mark.timeout(30)
def test_signal_during_start_up_is_kept_and_passed_on():
    """A signal that arrives while the supervisor is still importing and setting up does not kill
    it: it is caught from the first moment of the run command and passed on once PROGRAM runs.
    (The signal is sent as soon as the early handler exists; whether it lands before the loop is
    ready depends on timing, so this checks that the path is safe rather than forcing it.)"""

    with spawned(supervisor_cmd("run", "--", sys.executable, str(VICTIM), "--exit-on", "SIGUSR1:7",
                                "--sleep", "30"), env=ENV, stdout=subprocess.DEVNULL) as proc:
        sleep_until(lambda: _catches(proc.pid, signal.SIGUSR1), timeout=10, interval=0.0005)
        os.kill(proc.pid, signal.SIGUSR1)
        status = proc.wait(timeout=20)
    # the victim got it: exit 7 from its handler, or 128+10 if it came before the handler existed
    assert status in (7, 128 + signal.SIGUSR1), status


@pytest.mark.timeout(60)
def test_remove_kill_sig_from_the_job_ad_is_passed_on_and_honoured(tmp_path):
    """Rule 9 (os_proc.cpp:941): RemoveKillSig (graceful condor_rm) is a soft kill like KillSig:
    the program gets it, the supervisor logs it, and the tree is SIGKILLed after the grace."""
    ad = tmp_path / ".job.ad"
    ad.write_text('KillSig = "SIGTERM"\nRemoveKillSig = "SIGQUIT"\n')
    env = {**ENV, "_CONDOR_JOB_AD": str(ad)}
    with start(["--kill-grace", "1"], victim_args=["--ignore", "SIGQUIT", "--sleep", "100"], env=env) as proc:
        read_until(proc, "ready")
        os.kill(proc.pid, signal.SIGQUIT)
        assert proc.wait(timeout=30) == 128 + signal.SIGKILL  # ignored it: killed after the grace
        err = proc.stderr.read()
    assert f"soft-kill signal {int(signal.SIGQUIT)} received" in err, err
    assert "grace expired" in err, err


@pytest.mark.timeout(60)
def test_the_event_log_is_closed_when_the_run_fails_with_an_error_of_ours(tmp_path):
    """An error inside the run (a bug of ours) still tears down and closes the event log, as the
    normal path does (run in a child interpreter: the teardown kills that process's tree)."""
    script = (
        "import sys\n"
        "from supervisor.__main__ import main_parser\n"
        "from supervisor import config\n"
        "from supervisor.loop import Supervisor\n"
        "args = main_parser(only='run').parse_args(['run', '--events', sys.argv[1], '--', 'true'])\n"
        "sup = Supervisor(config.build(args))\n"
        "def boom():\n"
        "    sup.log.emit('before_the_error', {})\n"
        "    raise RuntimeError('boom')\n"
        "sup._run = boom\n"
        "try:\n"
        "    sup.run()\n"
        "except RuntimeError:\n"
        "    print('closed' if sup.log.file is None else 'open')\n"
    )
    events = tmp_path / "events.jsonl"
    out = subprocess.run([sys.executable, "-c", script, str(events)], capture_output=True, text=True,
                         timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    assert out.stdout.strip() == "closed", out.stderr
    assert json.loads(events.read_text().splitlines()[-1])["event"] == "before_the_error"
