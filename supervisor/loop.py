"""The I/O loop around the decision core (tini's ``main`` shape).

spawn; then repeat {wait for the next event with a deadline; hand it to the core; carry out its
commands; reap}; then return the outcome. Every event reaches the core through one method,
:meth:`Supervisor._feed`; the loop decides nothing about the lifecycle: the core says when the
next deadline is, whether to observe, and when it needs a fresh look before an event.

Signal handlers only wake the loop (``supervisor/wakeup.py``): the C-level handler writes the
signal number to the wakeup fd, the Python-level handler does nothing. The program's end is seen
through its pidfd (and SIGCHLD), file changes through inotify (with a polling fallback). Blocking
work runs off the loop and posts its event back (``supervisor/workers.py``: the commit in a worker
thread, so signals are still passed on while a large checkpoint is copied, and the validator as a
child process). Before the start and at the very end: ``supervisor/startup.py``; the program's
output through pipes: ``supervisor/output.py``.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import time

from . import core as C
from . import process, startup, workers
from .config import RunConfig
from .errors import ProgramError, SupervisorError
from .events import EventLog
from .output import ProgramOutput
from .records import record
from .rules import Rule, parse_rules, ready
from .wakeup import Wakeup
from .workers import VALIDATOR_TIMEOUT

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)

if TYPE_CHECKING:
    import threading  # imported at the first commit: a supervisor that never commits needs no thread
    from typing import Any, Callable, Optional

KILL_POLL = 0.02
SAFETY_POLL = 30.0  # with inotify: a re-check in case an event was missed


@record(frozen=True)
class Outcome:
    status: int
    by_signal: Optional[int] = None
    reason: str = ""


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
        self.settle: Optional[workers.Settle] = None  # the program's end being settled (ChildGone)
        self.sel = selectors.DefaultSelector()
        self.inotify: Any = None
        self.output = ProgramOutput(self.sel)
        self.commit_thread: Optional[threading.Thread] = None
        self.commit_result: Optional[C.CommitFinished] = None
        self.outcome: Optional[Outcome] = None  # set by the core's Exit command
        self.sequence = 0
        self.killing = False
        self.last_observe = 0.0
        self.wakeup = Wakeup()
        self.notify_r = self.notify_w = -1
        self.validator_deadline = 0.0
        self.kill_checked = False
        self.tree_gone = False
        self.start_state: dict[str, Any] = {}
        self.dmtcp: Any = None  # a dmtcp.Session with --dmtcp
        self.frozen: Any = None  # supervisor.freeze.Freeze while the tree is held for a copy
        self.progress: dict[str, Any] = {}  # what this execution restored (supervisor.progress)
        self.reference_files = 0  # files in the last checkpoint restored or committed
        # read once: a setting is looked up through ByRow.__getattr__ (a Python call), and this
        # one is asked for every signal passed on
        self.signal_child_only = cfg.signal_to == "child"


    # ------------------------------------------------------------------ set-up
    def _install_signals(self) -> None:
        roles = {self.cfg.kill_signal, *self.cfg.trigger_signal}
        if self.cfg.remove_kill_signal is not None:
            roles.add(self.cfg.remove_kill_signal)
        self.sel.register(self.wakeup.install(roles), selectors.EVENT_READ, "signal")

    def _replay_early_signals(self) -> None:
        """Signals caught before the loop was ready are handled now, once the program runs."""
        if self.early_signals:
            self.log.emit("early_signals", {"signals": list(self.early_signals)}, level="debug")
            self.wakeup.replay(self.early_signals)
            self.early_signals.clear()

    # ------------------------------------------------------------------ run
    def run(self) -> Outcome:
        seen: Optional[list[int]] = None
        try:  # the event log is closed whatever happens, an error of ours included
            try:
                outcome = self._run()
                seen = startup.watch_late_signals(self)
            finally:
                self._teardown()
            # the last look for a late checkpoint signal, after the teardown: the closer to our
            # exit, the narrower the window in which one would go unseen
            return startup.settle_late_signals(self, outcome, seen)
        finally:
            self.log.close()

    def _run(self) -> Outcome:
        cfg = self.cfg
        process.set_subreaper()
        self._install_signals()
        startup.say_settings(self)
        resume = False
        deaths = 0
        if cfg.checkpoint:
            prepared = startup.prepare(self)
            if isinstance(prepared, Outcome):
                return prepared
            resume, deaths = prepared
        argv = list(cfg.program)
        if resume and cfg.resume_args is not None:
            argv = [argv[0], *cfg.resume_args]
        if self.dmtcp is not None:
            self.dmtcp.link_inputs()
            argv = self.dmtcp.argv(argv, resume)
        self.output.setup([r for r in (self.complete_rule, self.done_rule) if r is not None])
        self._setup_watch()
        before = self._observe()  # the baseline: what was there before the program ran
        out_fd = err_fd = None
        if self.output.patterns:
            out_fd, err_fd = self.output.make_pipes()
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
        self._feed(C.Started(self.clock(), self.child.pid, before, resumed=resume, job_signal_deaths=deaths))
        self.log.emit("argv", {"argv": argv}, level="debug")
        self._replay_early_signals()
        while self.outcome is None:
            self._step()
        return self.outcome

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
    def _step(self) -> None:
        """One turn: wait for the next event with the core's deadline, hand the events to the
        core (signals first: their latency is what the program sees), reap."""
        ready = self.sel.select(self._timeout())
        events: list[C.Event] = []
        changed = False
        for key, _mask in ready:
            tag = key.data
            if tag == "signal":
                for ev in self._read_signals():  # SignalReceived events only
                    self._feed(ev)
                if self.outcome is not None:
                    return
            elif tag == "inotify":
                if self.inotify.drain():
                    changed = True
                    self._watch_new_dirs()
            elif tag == "notify":  # a worker thread posted
                events.extend(workers.posted(self))
            elif tag == "pipe":
                self.output.pump(key.fd)
        events.extend(self._reap())
        if self.output.matched:  # a matching output line is news, like a file event
            self.output.matched = False
            changed = True
        now = self.clock()
        if self.core.observing and (changed or now - self.last_observe >= self._poll_interval()):
            events.append(C.Observed(now, self._observe()))
        deadline = self.core.deadline()
        if deadline is not None and now >= deadline:
            events.append(C.Tick(now))
        if self.validator is not None and now >= self.validator_deadline:
            self.log.emit("validator_timeout", {"seconds": VALIDATOR_TIMEOUT}, level="warning",
                          message=f"the validator ran longer than {VALIDATOR_TIMEOUT:g} s; killed")
            self.validator.send(signal.SIGKILL)
        if self.settle is not None:
            workers.check_settle_timeout(self, now)
        if self.killing:
            self.kill_checked = True
            gone, reaped = self._tree_gone()
            events.extend(reaped)  # a reaped child or validator must still reach the core
            if gone:
                self.killing = False
                self.tree_gone = True
                events.append(C.TreeGone(self.clock()))
        for event in events:
            self._feed(event)  # nothing after an Exit

    def _feed(self, event: C.Event) -> None:
        """The one place an event reaches the core; its commands are carried out at once (an
        Exit among them becomes :attr:`outcome`; nothing is handed to the core after it). When
        the event would start a checkpoint request, the core first gets a fresh look at the
        sandbox: the request's baseline must be what is on disk now, not at the last look."""
        if self.outcome is not None:
            return
        if self.core.needs_fresh_look(event):
            self._execute(self.core.handle(C.Observed(event.now, self._observe())))
        if self.outcome is None:
            self._execute(self.core.handle(event))

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
        settle = workers.settle_deadline(self)
        if settle is not None:
            waits.append(settle - now)
        if self.child is not None and self.child.pidfd is None and self.core.child_alive:
            waits.append(0.05)  # no pidfd: SIGCHLD still wakes us, this is a safety net
        if not waits:
            return None
        return max(0.0, min(waits))

    def _read_signals(self) -> list[C.SignalReceived]:
        now = self.clock()
        events = [C.SignalReceived(now, signum) for signum in self.wakeup.read()]
        if len(events) > 1:
            # Signals read together say nothing of the order they were sent in: when several are
            # pending at once the kernel stacks their handlers, so the last one delivered runs
            # first (HTCondor's checkpoint signal followed at once by its soft kill reads as
            # [15, 12]). A checkpoint request among them is handled first: the eviction then
            # finds it in flight and gives it its time, instead of passing the soft kill on.
            triggers = self.cfg.trigger_signal
            events.sort(key=lambda ev: ev.signum not in triggers)
        return events

    def _reap(self) -> list[C.Event]:
        out: list[C.Event] = []
        for pid, status in process.reap():
            code, signum = process.status_of(status)
            if self.child is not None and pid == self.child.pid:
                if self.child.pidfd is not None:
                    with contextlib.suppress(KeyError, ValueError):
                        self.sel.unregister(self.child.pidfd)
                self.child.close()
                self.output.drain()
                out.extend(workers.child_reaped(self, code, signum))  # or ChildGone, then later
            elif self.validator is not None and pid == self.validator.pid:
                self.validator.close()
                self.validator = None
                out.append(C.ValidatorFinished(self.clock(), code == 0))
            elif self.settle is not None and self.settle.proc is not None and pid == self.settle.proc.pid:
                out.extend(workers.done_command_reaped(self, code))
        return out

    def _tree_gone(self) -> tuple[bool, list[C.Event]]:
        """SIGKILL what is left of the tree; (nothing is left, events of what was reaped)."""
        exclude = workers.helpers(self)
        left = process.descendants(exclude=exclude)
        if not left:
            return True, self._reap()
        living = [p for p in left if not process.is_zombie(p)]
        if living:
            process.kill_all(living)
        reaped = self._reap()
        return not process.descendants(exclude=exclude), reaped


    # ------------------------------------------------------------------ commands
    def _execute(self, cmds: list[C.Command_]) -> None:
        """Carry out the core's commands; an Exit sets :attr:`outcome` (it is the last command)."""
        request_sig = None  # with --dmtcp a checkpoint request goes to DMTCP, not to the program
        for cmd in cmds:
            if isinstance(cmd, C.SendSignal):  # first: the signal path's latency
                if self.dmtcp is not None and (cmd.signum == request_sig or (
                        self.core.phase == C.Phase.CHECKPOINTING and cmd.signum in self.core.sent_job_signals)):
                    continue
                self._send(cmd)
            elif isinstance(cmd, C.Record):
                self.log.emit(cmd.kind, cmd.fields, level=cmd.level, message=cmd.message)
                if self.dmtcp is not None and cmd.kind == "checkpoint_requested":
                    request_sig = cmd.fields.get("signal")
                    self.dmtcp.request()
            elif isinstance(cmd, C.KillTree):
                self.killing = True
                self.kill_checked = False  # look at once whether anything is left: usually nothing is
                process.kill_all(process.descendants(exclude=workers.helpers(self)))
            elif isinstance(cmd, C.Commit):
                workers.start_commit(self, cmd)
            elif isinstance(cmd, C.RunValidator):
                workers.start_validator(self)
            elif isinstance(cmd, C.Redeliver):  # held while the program's end was settled
                self._feed(cmd.event)
            elif isinstance(cmd, C.StopSettling):
                workers.stop_settling(self)
            elif isinstance(cmd, C.Exit):
                self.outcome = Outcome(cmd.status, cmd.by_signal, cmd.reason)
                return

    def _send(self, cmd: C.SendSignal) -> None:
        if self.child is None or (self.frozen is not None and self.frozen.hold(cmd.signum)):
            return
        if self.signal_child_only or cmd.target is C.Target.CHILD:
            self.child.send(cmd.signum)
        else:
            self.child.send_group(cmd.signum)

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
                             log_counts=tuple(sorted(self.output.log_counts.items())), open_for_write=open_for_write,
                             present=present, missing=missing, newest_ns=newest)



    def _open_for_write(self) -> bool:
        import psutil

        targets = [str((self.sandbox / p).resolve()) for p in self.cfg.checkpoint]
        for pid in process.descendants(exclude=workers.helpers(self)):
            try:
                files = psutil.Process(pid).open_files()
            except psutil.Error:
                continue
            for f in files:
                if any(ch in f.mode for ch in "wa+") and any(
                        f.path == t or f.path.startswith(t + os.sep) for t in targets):
                    return True
        return False

    # ------------------------------------------------------------------ output and watches
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
        workers.join(self)
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
        self.wakeup.restore()
        for fd in (self.notify_r, self.notify_w, *self.output.pipes):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        if self.inotify is not None:
            self.inotify.close()
        if self.child is not None:
            self.child.close()
        self.sel.close()  # the log stays open for the last look at late signals (run)
