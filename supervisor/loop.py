"""The I/O loop around the decision core (tini's ``main`` shape).

spawn; then repeat {wait for the next event with a deadline; hand it to the core; carry out its
commands; reap}; then return the outcome. Signal handlers only wake the loop: the C-level
handler writes the signal number to the wakeup fd (``signal.set_wakeup_fd``), the Python-level
handler does nothing. The program's end is seen through its pidfd (and SIGCHLD), file changes
through inotify (with a polling fallback), commits run in a worker thread so signals are still
passed on while a large checkpoint is copied.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shlex
import signal
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

from . import core as C
from . import process
from .config import RunConfig
from .errors import CorruptStore, ProgramError, StoreError, SupervisorError
from .events import EventLog
from .records import record
from .rules import Rule, View, parse_rules, ready
from .signals import NOT_FORWARDED

if TYPE_CHECKING:
    import threading  # imported at the first commit: a supervisor that never commits needs no thread

KILL_POLL = 0.02
SAFETY_POLL = 30.0  # with inotify: a re-check in case an event was missed
VALIDATOR_TIMEOUT = 600.0


@record(frozen=True)
class Outcome:
    status: int
    by_signal: Optional[int] = None
    reason: str = ""


def _noop(signum: int, frame: Any) -> None:
    """Python-level handler: nothing. The wakeup fd already carries the signal number."""


class Supervisor:
    """Runs one execution of PROGRAM under the rules of ``cfg``; ``run()`` returns the Outcome."""

    def __init__(self, cfg: RunConfig, *, clock: Callable[[], float] = time.monotonic,
                 log: Optional[EventLog] = None, early_signals: Optional[list[int]] = None) -> None:
        self.cfg = cfg
        self.early_signals = early_signals if early_signals is not None else []
        self.clock = clock
        self.log = log or EventLog(cfg.events, verbosity=cfg.verbosity)
        # pathlib costs a few ms to import: only the checkpoint machinery needs it
        self.sandbox: Any = cfg.sandbox
        if cfg.checkpoint:
            from pathlib import Path

            self.sandbox = Path(cfg.sandbox)
        self.complete_rule = parse_rules(list(cfg.complete_when), option="--complete-when")
        self.done_rule = parse_rules(list(cfg.done_when), option="--done-when", done=True)
        if cfg.checkpoint and self.complete_rule is None:
            self.complete_rule = parse_rules(["quiet=2"])
        self.store: Any = None
        self.child: Optional[process.Child] = None
        self.validator: Optional[process.Child] = None
        self.sel = selectors.DefaultSelector()
        self.inotify: Any = None
        self.patterns: list[tuple[str, re.Pattern[str]]] = []
        self.log_counts: dict[str, int] = {}
        self.pipes: dict[int, tuple[int, bytearray]] = {}  # read fd -> (our output fd, partial line)
        self.commit_thread: Optional[threading.Thread] = None
        self.commit_result: Optional[C.CommitFinished] = None
        self.sequence = 0
        self.killing = False
        self.last_observe = 0.0
        self.wake_r = self.wake_w = -1
        self.notify_r = self.notify_w = -1
        self.installed: dict[int, Any] = {}
        self.validator_deadline = 0.0
        self.kill_checked = False
        self.tree_gone = False
        self.log_matched = False
        self.start_state: dict[str, Any] = {}
        self.dmtcp: Any = None  # a dmtcp.Session with --dmtcp
        self.frozen: Any = None  # supervisor.freeze.Freeze while the tree is held for a copy
        self.progress: dict[str, Any] = {}  # what this execution restored (supervisor.progress)
        self.reference_files = 0  # files in the last checkpoint restored or committed


    # ------------------------------------------------------------------ set-up
    def _install_signals(self) -> None:
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        roles = {self.cfg.kill_signal, *self.cfg.trigger_signal}
        if self.cfg.remove_kill_signal is not None:
            roles.add(self.cfg.remove_kill_signal)
        for sig in sorted(signal.valid_signals()):
            if sig in NOT_FORWARDED and sig != signal.SIGCHLD:
                continue
            if 31 < sig < signal.SIGRTMIN:
                continue  # reserved by the C library's threads
            if sig in (signal.SIGKILL, signal.SIGSTOP):
                continue
            try:
                current = signal.getsignal(sig)
            except (OSError, ValueError):
                continue
            if current == signal.SIG_IGN and sig not in roles and sig not in process.PYTHON_IGNORED:
                continue  # ignored by whoever started us: the program inherits that, we leave it
            try:
                self.installed[sig] = signal.signal(sig, _noop)
            except (OSError, ValueError, RuntimeError):
                continue
        process.note_handled(self.installed)
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, "signal")

    def _replay_early_signals(self) -> None:
        """Signals caught before the loop was ready are handled now, once the program runs."""
        if self.early_signals:
            self.log.emit("early_signals", {"signals": list(self.early_signals)}, level="debug")
            # standard signals do not queue in the kernel either: one of each is the same event
            with contextlib.suppress(OSError):
                os.write(self.wake_w, bytes(s for s in dict.fromkeys(self.early_signals) if 0 < s < 256))
            self.early_signals.clear()


    def _restore_signals(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(-1)
        for sig, old in self.installed.items():
            with contextlib.suppress(OSError, ValueError, TypeError):
                signal.signal(sig, old if old is not None else signal.SIG_DFL)

    def _open_store(self) -> Optional[dict[str, Any]]:
        """Clean leftovers, verify the committed store, restore it: returns its state or None."""
        from .store import Store

        store_path = self.sandbox / self.cfg.store
        if self.cfg.dmtcp:  # the program runs in DMTCP's stable work directory: paths live there
            from . import dmtcp

            self.dmtcp = dmtcp.Session(self.cfg, self.log.emit)
            try:
                kept = Store(self.sandbox, store_path, [dmtcp.IMAGES]).read_state()
            except SupervisorError:
                kept = None
            self.sandbox = self.sandbox.__class__(self.dmtcp.prepare(kept))
        self.store = Store(self.sandbox, store_path, list(self.cfg.checkpoint))
        for leftover in self.store.cleanup_staging():
            self.log.emit("staging_cleaned", {"path": str(leftover)})
        if not self.store.exists():
            return None
        try:
            state: dict[str, Any] = self.store.verify()
        except CorruptStore as exc:
            aside = self.store.quarantine()
            self.log.emit("store_corrupt", {"error": str(exc), "moved_to": str(aside)}, level="warning",
                          message=f"committed store does not verify ({exc}); moved aside to {aside}; "
                                  "starting from scratch")
            return None
        return state

    # ------------------------------------------------------------------ run
    def run(self) -> Outcome:
        try:
            return self._settle_late_signals(self._run())
        finally:
            self._teardown()

    def _settle_late_signals(self, outcome: Outcome) -> Outcome:
        """HTCondor's checkpoint signal may land after the core planned the program's own exit
        (while we return): the checkpoint status is owed all the same (rule 8). The trigger
        signals are blocked from here on (exit discards them), those that came are looked at,
        and the program's status is recorded in the store as for a signal seen in time."""
        cfg = self.cfg
        core = getattr(self, "core", None)
        if (not cfg.checkpoint or not cfg.trigger_signal or core is None or self.store is None
                or not core.plan_is_program_end or core.exit_plan is None
                or (outcome.status, outcome.by_signal) != (core.exit_plan.status, core.exit_plan.by_signal)):
            return outcome
        triggers = set(cfg.trigger_signal)
        signal.pthread_sigmask(signal.SIG_BLOCK, triggers)
        late = [ev.signum for ev in self._read_signals() if ev.signum in triggers]
        late += sorted(triggers & set(signal.sigpending()))
        if not late:
            return outcome
        self.sequence += 1
        state: dict[str, Any] = {"sequence": self.sequence, "committed_at": time.time(),
                                 "program": list(cfg.program), "final_status": outcome.status}
        try:
            self.store.commit_state(state)
        except StoreError as exc:
            self.log.emit("commit_failed", {"error": str(exc)}, level="error", message=str(exc))
            return outcome
        plan = core.checkpoint_status()
        self.log.emit("final_status_recorded", {"status": outcome.status, "late": True},
                      message=f"HTCondor's checkpoint signal {late[0]} came as the program's end ({outcome.status}) "
                              "was being reported: recording that status and reporting the checkpoint status")
        return Outcome(plan.status, plan.by_signal, "checkpoint signal during the exit: final status recorded")

    def _say_settings(self) -> None:
        """What the user should know before the program starts: ignored settings, the timing."""
        cfg = self.cfg
        for text in cfg.warnings:
            self.log.emit("config_warning", {"warning": text}, level="warning", message=text)
        if cfg.timing is not None:
            t = cfg.timing
            self.log.emit("timing", {"vacate": t.vacate, "source": t.source, "kill_grace": t.kill_grace,
                                     "kill_grace_derived": t.kill_grace_derived,
                                     "promise_budget": t.promise_budget, "upload_reserve": t.upload_reserve},
                          message=t.describe(checkpointing=bool(cfg.checkpoint)))

    def _probe_store(self) -> None:
        """The store's directory must take new files: find out now, not at the first commit."""
        store = os.path.join(str(self.sandbox), self.cfg.store)
        where = os.path.dirname(os.path.abspath(store))
        probe = os.path.join(where, f".ckpt-probe-{os.getpid()}")
        try:
            fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise StoreError(f"--store {self.cfg.store}: cannot create files in {where} ({exc.strerror}); "
                             "no checkpoint could be committed there: make the sandbox writable or give "
                             "another --store") from None

    def _warn_working_files_without_store(self) -> None:
        """A job that ran before but has no committed store: its checkpoints never came back."""
        starts = self.cfg.job_ad.get("num_job_starts")
        if not isinstance(starts, int) or starts <= 0:
            return
        present = [p for p in self.cfg.checkpoint if os.path.lexists(os.path.join(str(self.sandbox), p))]
        if present:
            self.log.emit("store_missing", {"num_job_starts": starts, "present": present}, level="warning",
                          message=f"this job ran {starts} time(s) before, and {', '.join(present)} exist, but "
                                  f"there is no committed store {self.cfg.store}: is {self.cfg.store} listed in "
                                  "transfer_checkpoint_files? The working files are not trusted; starting "
                                  "from scratch")

    def _set_aside_working_files(self) -> None:
        """The last run here ended without a checkpoint (our kill may have torn its files): its
        working checkpoint files are not a checkpoint, so the fresh start must not find them."""
        moved = []
        for rel in self.cfg.checkpoint:
            path = os.path.join(str(self.sandbox), rel)
            if not os.path.lexists(path):
                continue
            aside = path + ".stale"
            try:
                if os.path.isdir(aside) and not os.path.islink(aside):
                    import shutil

                    shutil.rmtree(aside)
                os.replace(path, aside)
            except OSError as exc:
                raise StoreError(f"--checkpoint {rel}: cannot move the working copy left by the last run "
                                 f"aside to {rel}.stale ({exc.strerror})") from None
            moved.append(rel)
        if moved:
            self.log.emit("working_set_aside", {"paths": moved}, level="warning",
                          message=f"{', '.join(moved)} left by the last run, which ended without a checkpoint "
                                  "(maybe torn), moved aside to *.stale: starting from scratch")

    def _run(self) -> Outcome:
        cfg = self.cfg
        process.set_subreaper()
        self._install_signals()
        self._say_settings()
        resume = False
        deaths = 0
        if cfg.checkpoint:
            self._probe_store()
            state = self._open_store()
            self.start_state = dict(state or {})
            value = self.start_state.get("job_signal_deaths")
            deaths = value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
            if state is None:
                self._warn_working_files_without_store()
            plan = C.plan_start(state)
            if plan.exit_now is not None:
                self.log.emit("finished_earlier", {"status": plan.exit_now}, message=plan.reason)
                return Outcome(plan.exit_now, reason=plan.reason)
            if plan.set_aside_working:
                self._set_aside_working_files()
            if plan.resume:
                from .progress import check_at_start

                stop = check_at_start(self, state or {})
                if stop is not None:
                    return stop  # type: ignore[no-any-return]
                result = self.store.restore()
                self.reference_files = result.files
                self.sequence = int((state or {}).get("sequence", 0))
                self.log.emit("restored", {"sequence": self.sequence, "bytes": result.bytes,
                                           "seconds": round(result.seconds, 6), "files": result.files})
                resume = True
        argv = list(cfg.program)
        if resume and cfg.resume_args is not None:
            argv = [argv[0], *cfg.resume_args]
        if self.dmtcp is not None:
            self.dmtcp.link_inputs()
            argv = self.dmtcp.argv(argv, resume)
        self._setup_output()
        self._setup_watch()
        before = self._observe()  # the baseline: what was there before the program ran
        out_fd = err_fd = None
        if self.patterns:
            out_fd, err_fd = self._make_pipes()
        try:
            self.child = process.spawn(argv, stdout=out_fd, stderr=err_fd, exact=True)
        except ProgramError as exc:
            self.log.emit("spawn_failed", {"status": exc.exit_status}, level="error", message=str(exc))
            return Outcome(exc.exit_status, reason=str(exc))
        finally:
            for fd in (out_fd, err_fd):
                if fd is not None:
                    os.close(fd)
        if self.child.pidfd is not None:
            self.sel.register(self.child.pidfd, selectors.EVENT_READ, "child")
        self.core = C.Core(self._core_settings())
        now = self.clock()
        cmds = self.core.handle(C.Started(now, self.child.pid, before, resumed=resume, job_signal_deaths=deaths))
        self.log.emit("argv", {"argv": argv}, level="debug")
        outcome = self._execute(cmds)
        self._replay_early_signals()

        while outcome is None:
            outcome = self._step()
        return outcome

    def _core_settings(self) -> C.CoreSettings:
        cfg = self.cfg
        return C.CoreSettings(
            kill_signal=cfg.kill_signal, remove_kill_signal=cfg.remove_kill_signal,
            kill_grace=cfg.kill_grace, promise_budget=cfg.promise_budget, exit_code=cfg.exit_code,
            exit_signal=cfg.exit_signal, checkpointing=bool(cfg.checkpoint),
            trigger_signals=frozenset(cfg.trigger_signal), job_signal=cfg.job_signal, every=cfg.every,
            watch=cfg.watch, inspect_on_exit=cfg.inspect_on_exit, complete=self.complete_rule,
            checkpoint_on_evict=cfg.checkpoint_on_evict, checkpoint_timeout=cfg.checkpoint_timeout,
            on_timeout=cfg.on_timeout, min_run=cfg.min_run,
        )

    # ------------------------------------------------------------------ one turn of the loop
    def _step(self) -> Optional[Outcome]:
        timeout = self._timeout()
        ready = self.sel.select(timeout)
        events: list[C.Event] = []
        changed = False
        for key, _mask in ready:
            tag = key.data
            if tag == "signal":
                # pass signals on first: their latency is what the program sees
                for ev in self._read_signals():  # SignalReceived events only
                    if self._asks_for_checkpoint(ev):
                        # the request's baseline must be what is on disk now, not at the last look
                        self._execute(self.core.handle(C.Observed(ev.now, self._observe())))
                    outcome = self._execute(self.core.handle(ev))
                    if outcome is not None:
                        return outcome
            elif tag == "inotify":
                if self.inotify.drain():
                    changed = True
                    self._watch_new_dirs()
            elif tag == "commit":
                with contextlib.suppress(OSError):
                    os.read(self.notify_r, 64)
                if self.commit_result is not None:
                    events.append(self.commit_result)
                    self.commit_result = None
                    self.commit_thread = None
            elif tag == "pipe":
                self._pump(key.fd)
        events.extend(self._reap())
        if self.log_matched:  # a matching output line is news, like a file event
            self.log_matched = False
            changed = True
        now = self.clock()
        if self.core.observing and (changed or now - self.last_observe >= self._poll_interval()):
            events.append(C.Observed(now, self._observe()))
        deadline = self.core.deadline()
        if deadline is not None and now >= deadline:
            if self.core.phase == C.Phase.RUNNING and self.cfg.every and not self.core.observing:
                events.append(C.Observed(now, self._observe()))  # a fresh baseline for the timer
            events.append(C.Tick(now))
        if self.validator is not None and now >= self.validator_deadline:
            self.log.emit("validator_timeout", {"seconds": VALIDATOR_TIMEOUT}, level="warning",
                          message=f"the validator ran longer than {VALIDATOR_TIMEOUT:g} s; killed")
            self.validator.send(signal.SIGKILL)
        if self.killing:
            self.kill_checked = True
            gone, reaped = self._tree_gone()
            events.extend(reaped)  # a reaped child or validator must still reach the core
            if gone:
                self.killing = False
                self.tree_gone = True
                events.append(C.TreeGone(self.clock()))
        for event in events:
            outcome = self._execute(self.core.handle(event))
            if outcome is not None:
                return outcome
        return None

    def _poll_interval(self) -> float:
        return SAFETY_POLL if self.inotify is not None else self.cfg.poll_interval

    def _timeout(self) -> Optional[float]:
        now = self.clock()
        waits: list[float] = []
        deadline = self.core.deadline()
        if deadline is not None:
            waits.append(deadline - now)
        if self.core.observing:
            waits.append(self.last_observe + self._poll_interval() - now)
        if self.killing:
            waits.append(KILL_POLL if self.kill_checked else 0.0)
        if self.validator is not None:
            waits.append(self.validator_deadline - now)
        if self.child is not None and self.child.pidfd is None and self.core.child_alive:
            waits.append(0.05)  # no pidfd: SIGCHLD still wakes us, this is a safety net
        if not waits:
            return None
        return max(0.0, min(waits))

    def _read_signals(self) -> list[C.SignalReceived]:
        out: list[C.SignalReceived] = []
        try:
            data = os.read(self.wake_r, 4096)
        except (BlockingIOError, InterruptedError):
            return out
        now = self.clock()
        seen: set[int] = set()
        for signum in data:
            if signum == signal.SIGCHLD:
                continue  # reaping happens every turn
            if signum < signal.SIGRTMIN:
                # a standard signal that arrived again before we looked was pending: one event, as
                # the kernel would coalesce it (real-time signals queue, and are passed on each)
                if signum in seen:
                    continue
                seen.add(signum)
            out.append(C.SignalReceived(now, signum))
        # Signals read together say nothing of the order they were sent in: when several are
        # pending at once the kernel stacks their handlers, so the last one delivered runs first
        # (HTCondor's checkpoint signal followed at once by its soft kill reads as [15, 12]).
        # A checkpoint request among them is handled first: the eviction then finds it in
        # flight and gives it its time, instead of passing the soft kill on and losing it.
        triggers = self.cfg.trigger_signal
        out.sort(key=lambda ev: ev.signum not in triggers)
        return out


    def _reap(self) -> list[C.Event]:
        out: list[C.Event] = []
        for pid, status in process.reap():
            code, signum = process.status_of(status)
            if self.child is not None and pid == self.child.pid:
                if self.child.pidfd is not None:
                    with contextlib.suppress(KeyError, ValueError):
                        self.sel.unregister(self.child.pidfd)
                self.child.close()
                self._drain_pipes()
                lost = False  # --dmtcp: DMTCP stopped the program but wrote no complete checkpoint
                if self.dmtcp is not None and self.dmtcp.requested:  # the images may still be written
                    lost = not self.dmtcp.wait_complete(
                        lambda: any(not process.is_zombie(p) for p in process.descendants()))
                    if lost:  # never a finished program: reported as killed
                        code, signum = None, signal.SIGKILL
                now = self.clock()
                obs = self._observe()
                done = self._done(obs) if self.done_rule is not None else None
                if lost:
                    done = False
                out.append(C.ChildExited(now, code, signum, obs, done))
            elif self.validator is not None and pid == self.validator.pid:
                self.validator.close()
                self.validator = None
                out.append(C.ValidatorFinished(self.clock(), code == 0))
        return out

    def _asks_for_checkpoint(self, ev: C.SignalReceived) -> bool:
        cfg = self.cfg
        soft_kill = ev.signum in (cfg.kill_signal, cfg.remove_kill_signal)
        return bool(cfg.checkpoint) and self.core.phase == C.Phase.RUNNING and (
            ev.signum in cfg.trigger_signal or (soft_kill and bool(cfg.checkpoint_on_evict)))

    def _tree_gone(self) -> tuple[bool, list[C.Event]]:
        """SIGKILL what is left of the tree; (nothing is left, events of what was reaped)."""
        exclude = [self.validator.pid] if self.validator else []
        left = process.descendants(exclude=exclude)
        if not left:
            return True, self._reap()
        living = [p for p in left if not process.is_zombie(p)]
        if living:
            process.kill_all(living)
        reaped = self._reap()
        return not process.descendants(exclude=exclude), reaped


    # ------------------------------------------------------------------ commands
    def _execute(self, cmds: list[C.Command_]) -> Optional[Outcome]:
        request_sig = None  # with --dmtcp a checkpoint request goes to DMTCP, not to the program
        for cmd in cmds:
            if isinstance(cmd, C.Record):
                self.log.emit(cmd.kind, cmd.fields, level=cmd.level, message=cmd.message)
                if self.dmtcp is not None and cmd.kind == "checkpoint_requested":
                    request_sig = cmd.fields.get("signal")
                    self.dmtcp.request()
            elif isinstance(cmd, C.SendSignal):
                if self.dmtcp is not None and (cmd.signum == request_sig or (
                        self.core.phase == C.Phase.CHECKPOINTING and cmd.signum in self.core.sent_job_signals)):
                    continue
                self._send(cmd)
            elif isinstance(cmd, C.KillTree):
                self.killing = True
                self.kill_checked = False  # look at once whether anything is left: usually nothing is
                process.kill_all(process.descendants(exclude=[self.validator.pid] if self.validator else []))
            elif isinstance(cmd, C.Commit):
                self._start_commit(cmd)
            elif isinstance(cmd, C.RunValidator):
                self._start_validator()
            elif isinstance(cmd, C.Exit):
                return Outcome(cmd.status, cmd.by_signal, cmd.reason)
        return None

    def _send(self, cmd: C.SendSignal) -> None:
        if self.child is None or (self.frozen is not None and self.frozen.hold(cmd.signum)):
            return
        if cmd.target == C.Target.CHILD or self.cfg.signal_to == "child":
            self.child.send(cmd.signum)
        else:
            self.child.send_group(cmd.signum)

    def _start_commit(self, cmd: C.Commit) -> None:
        if cmd.restart and self.store.exists() and not cmd.job_signal_deaths:
            # nothing to write: the committed store is what the next start restores
            self._execute(self.core.handle(C.CommitFinished(self.clock(), True)))
            return
        # a final status keeps the last committed files (or none): never the working files, which
        # a finished or crashed program may have left half-written
        final_only = cmd.final_status is not None or cmd.restart
        from .freeze import hold_for_commit
        from .store import CheckpointChanged

        expect, fingerprint = hold_for_commit(self, final_only or cmd.program_exited)
        if fingerprint is None:
            return  # moved on since the rules looked: the core was told and looked again
        self.sequence += 1
        state: dict[str, Any] = {"sequence": self.sequence, "committed_at": time.time(),
                                 "program": list(self.cfg.program)}
        if cmd.final_status is not None:
            state["final_status"] = cmd.final_status
        if cmd.job_signal_deaths:
            state["job_signal_deaths"] = cmd.job_signal_deaths  # the files stay as committed
        if self.dmtcp is not None:
            state.update(self.dmtcp.state())
        if cmd.restart and (not self.store.exists()
                            or (self.start_state.get("empty") and not self.core.commits)):
            state["empty"] = True  # a store with no checkpoint: the next start begins from scratch
        state.update(self.progress)
        if self.notify_r < 0:
            self.notify_r, self.notify_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
            self.sel.register(self.notify_r, selectors.EVENT_READ, "commit")
        thaw = self.frozen.thaw if self.frozen is not None else None


        def work() -> None:
            start = time.monotonic()
            try:
                if final_only:
                    res = self.store.commit_state(state)
                else:
                    # the program is gone: its files can be renamed into the store instead of copied
                    # (the next start restores them; a failed commit puts them back)
                    res = self.store.commit(state, move=cmd.program_exited, expect=expect,
                                            on_staged=thaw, allow_empty=False)

                result = C.CommitFinished(self.clock(), True, bytes=res.bytes, seconds=res.seconds,
                                          fingerprint=res.fingerprint or fingerprint)
                if not final_only:
                    self.reference_files = res.files
                if os.environ.get("_CONDOR_CHIRP_CONFIG"):
                    from . import chirp  # only on a pool with chirp; never raises, never blocks

                    chirp.publish_commit(state["sequence"], state["committed_at"], res.seconds, res.bytes,
                                         log=self.log.say)

            except CheckpointChanged as exc:
                result = C.CommitFinished(self.clock(), False, error=str(exc), changed=True)
            except StoreError as exc:
                result = C.CommitFinished(self.clock(), False, error=str(exc),
                                          seconds=time.monotonic() - start)
            except Exception as exc:  # a bug must not leave the loop waiting forever
                result = C.CommitFinished(self.clock(), False, error=f"internal error during commit: {exc!r}")
            finally:
                if thaw is not None:
                    thaw()  # never leave the program stopped, whatever happened
            self.commit_result = result
            with contextlib.suppress(OSError):
                os.write(self.notify_w, b"x")

        import threading

        self.commit_thread = threading.Thread(target=work, name="commit", daemon=True)
        self.commit_thread.start()

    def _start_validator(self) -> None:
        assert self.complete_rule is not None
        commands = self.complete_rule.commands()
        argv = shlex.split(commands[0]) + list(self.cfg.checkpoint)
        try:
            self.validator = process.spawn(argv, setsid=True)
            self.validator_deadline = self.clock() + VALIDATOR_TIMEOUT
        except ProgramError as exc:
            self.log.emit("validator_failed", {"error": str(exc)}, level="error", message=str(exc))
            self._execute(self.core.handle(C.ValidatorFinished(self.clock(), False)))

    # ------------------------------------------------------------------ observations
    def _observe(self) -> C.Observation:
        self.last_observe = self.clock()
        if not self.cfg.checkpoint:
            return C.Observation()
        rules: list[Rule] = [r for r in (self.complete_rule, self.done_rule) if r is not None]
        markers: list[tuple[str, Optional[int]]] = []
        for rel in sorted({m for r in rules for m in r.markers()}):
            try:
                markers.append((rel, os.stat(self.sandbox / rel).st_mtime_ns))
            except OSError:
                markers.append((rel, None))
        try:
            fp = self.store.fingerprint()
        except (OSError, SupervisorError):
            fp = None
        open_for_write = None
        core = getattr(self, "core", None)
        # scanning the tree's open files is the expensive fact: only when a checkpoint may be new
        if any("open_files" in r.needs for r in rules) and (core is None or fp != core.committed_fp):
            open_for_write = self._open_for_write()
        missing = tuple(p for p in self.cfg.checkpoint if not os.path.lexists(self.sandbox / p))
        present = not missing and ready(fp, self.complete_rule, self.reference_files)  # never empty or half
        newest = max((entry[3] for entry in fp or () if len(entry) > 3 and isinstance(entry[3], int)),
                     default=None) if markers else None
        return C.Observation(fingerprint=fp, markers=tuple(markers),
                             log_counts=tuple(sorted(self.log_counts.items())), open_for_write=open_for_write,
                             present=present, missing=missing, newest_ns=newest)



    def _open_for_write(self) -> bool:
        import psutil

        targets = [str((self.sandbox / p).resolve()) for p in self.cfg.checkpoint]
        for pid in process.descendants(exclude=[self.validator.pid] if self.validator else []):
            try:
                files = psutil.Process(pid).open_files()
            except psutil.Error:
                continue
            for f in files:
                if any(ch in f.mode for ch in "wa+") and any(
                        f.path == t or f.path.startswith(t + os.sep) for t in targets):
                    return True
        return False

    def _done(self, obs: C.Observation) -> bool:
        assert self.done_rule is not None
        view = View(now=self.clock(), changed=False, last_change_at=None,
                    markers_present=frozenset(p for p, m in obs.markers if m is not None),
                    log_matches_ever=obs.log_counts, program_exited=True, for_done=True)
        if not self.done_rule.holds(view):
            return False
        for command in self.done_rule.commands():
            if not self._run_sync(shlex.split(command) + list(self.cfg.checkpoint)):
                return False
        return True

    def _run_sync(self, argv: list[str]) -> bool:
        try:
            child = process.spawn(argv)
        except ProgramError as exc:
            self.log.emit("validator_failed", {"error": str(exc)}, level="error", message=str(exc))
            return False
        deadline = time.monotonic() + VALIDATOR_TIMEOUT
        try:
            while True:
                pid, status = os.waitpid(child.pid, os.WNOHANG)
                if pid:
                    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
                if time.monotonic() > deadline:
                    child.send(signal.SIGKILL)
                time.sleep(0.005)
        finally:
            child.close()

    # ------------------------------------------------------------------ output and watches
    def _setup_output(self) -> None:
        rules = [r for r in (self.complete_rule, self.done_rule) if r is not None]
        for pattern in sorted({p for r in rules for p in r.patterns()}):
            self.patterns.append((pattern, re.compile(pattern)))
            self.log_counts[pattern] = 0

    def _make_pipes(self) -> tuple[int, int]:
        fds = []
        for ours in (1, 2):
            r, w = os.pipe2(os.O_CLOEXEC)
            os.set_blocking(r, False)
            self.pipes[r] = (ours, bytearray())
            self.sel.register(r, selectors.EVENT_READ, "pipe")
            fds.append(w)
        return fds[0], fds[1]

    def _pump(self, fd: int) -> int:
        """Copy what is readable from one of the program's pipes to our own fd; scan its lines.

        Returns the bytes read: 0 when nothing was ready, -1 at end of file.
        """
        ours, partial = self.pipes[fd]
        try:
            data = os.read(fd, 65536)
        except (BlockingIOError, InterruptedError):
            return 0
        if not data:
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(fd)
            os.close(fd)
            del self.pipes[fd]
            if partial:
                self._scan(bytes(partial))
            return -1
        view = memoryview(data)
        while view:
            try:
                n = os.write(ours, view)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except OSError:
                break
            view = view[n:]
        partial.extend(data)
        if b"\n" in partial:
            *lines, rest = bytes(partial).split(b"\n")
            partial[:] = rest
            for line in lines:
                self._scan(line)
        return len(data)

    def _scan(self, line: bytes) -> None:
        text = line.decode("utf-8", "replace")
        for pattern, regex in self.patterns:
            if regex.search(text):
                self.log_counts[pattern] += 1
                self.log_matched = True

    def _drain_pipes(self) -> None:
        """Read what the program wrote before it exited, so a last log line still counts."""
        for fd in list(self.pipes):
            while fd in self.pipes and self._pump(fd) > 0:
                pass

    def _watch_new_dirs(self) -> None:
        """Directories created inside a checkpoint directory are watched as they appear."""
        from .watch import dirs_to_watch

        self.inotify.watch_dirs(dirs_to_watch(self.sandbox, list(self.cfg.checkpoint)))

    def _setup_watch(self) -> None:

        if not self.cfg.checkpoint:
            return
        from .watch import dirs_to_watch, open_inotify

        self.inotify = open_inotify()
        if self.inotify is None:
            self.log.emit("polling", {"interval": self.cfg.poll_interval}, level="debug")
            return
        rules = [r for r in (self.complete_rule, self.done_rule) if r is not None]
        paths = list(self.cfg.checkpoint) + [m for r in rules for m in r.markers()]
        self.inotify.watch_dirs(dirs_to_watch(self.sandbox, paths))
        self.sel.register(self.inotify.fileno(), selectors.EVENT_READ, "inotify")

    # ------------------------------------------------------------------ teardown
    def _teardown(self) -> None:
        if self.commit_thread is not None:
            self.commit_thread.join()
        if self.frozen is not None:
            self.frozen.thaw()
        # never leave a process behind, whatever went wrong (nothing to do when the tree is known gone)
        for _ in range(0 if self.tree_gone else 100):

            left = [p for p in process.descendants() if not process.is_zombie(p)]
            if not left:
                break
            process.kill_all(left)
            time.sleep(KILL_POLL)
            process.reap()
        process.reap()
        if self.dmtcp is not None:
            self.dmtcp.finish()
        self._restore_signals()
        for fd in (self.wake_r, self.wake_w, self.notify_r, self.notify_w, *self.pipes):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self.inotify is not None:
            self.inotify.close()
        if self.child is not None:
            self.child.close()
        self.sel.close()
        self.log.close()
