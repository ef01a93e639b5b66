"""The decision core: the checkpoint lifecycle as a pure state machine.

Theory of operation
-------------------
The I/O loop (``supervisor.loop``) owns every process, file and signal. It turns what happens into
*events* (a signal arrived, the program exited, the checkpoint files look like this now, a commit
finished, the clock reached a deadline) and hands each to :meth:`Core.handle`, which returns
*commands* (send this signal, commit, kill the tree, exit with this status, record this event).
The core imports no ``os``, ``signal``, ``psutil`` or ``time``: it is tested in memory with a fake
clock, and the state diagram in the docs is drawn from :data:`TRANSITIONS`.

Rules it enforces (see ``docs/explanation/htcondor-semantics.md``):

* The checkpoint status (``exit_code`` or death by ``exit_signal``) is reported only after a
  commit succeeded *and* the whole process tree is gone.
* One checkpoint is in flight at a time; triggers that arrive meanwhile are coalesced.
* A checkpoint is complete only when the checkpoint paths changed since the request (in watch
  mode: since the last commit) and then every completion rule holds; a ``command`` rule runs last.
* After HTCondor's checkpoint signal (a trigger signal) the job owes HTCondor the checkpoint
  status (:class:`Promise`, semantics rule 8): *every* way out is then the checkpoint status, an
  eviction included. A program that just finished has its real status committed into the store
  (``final_status``) and reported at the next start (:func:`plan_start`); a program that ended
  without a new checkpoint (killed by the soft kill, the grace, or the job signal) leaves the
  committed store unchanged, and the checkpoint status makes HTCondor restart from it.
* The program's own exit with the reserved checkpoint code is a distinct failure, unless
  post-exit inspection (``inspect_on_exit``) turns it into a checkpoint.
* On a soft-kill signal (``KillSig`` or ``RemoveKillSig``): pass it on, wait ``kill_grace``,
  SIGKILL the tree (or first try a checkpoint within ``checkpoint_on_evict`` seconds; a checkpoint
  already in flight under a promise gets ``promise_budget`` seconds). Exit status then is the
  program's own, unless a promise is owed.
* A program killed by the job signal we sent (a shell wrapper without ``exec``) has not finished:
  the checkpoint status is reported over the unchanged store, with a line saying how to fix it.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from typing import Any, Optional, Union

from . import exitstatus
from .records import field, record
from .rules import Exit as ExitRule
from .rules import Rule, View

# --------------------------------------------------------------------------------------------
# Settings


@record(frozen=True)
class CoreSettings:
    kill_signal: int = 15
    remove_kill_signal: Optional[int] = None  # RemoveKillSig: a soft kill too (os_proc.cpp:941)
    kill_grace: float = 10.0
    exit_code: int = exitstatus.DEFAULT_CHECKPOINT_EXIT_CODE
    exit_signal: Optional[int] = None
    checkpointing: bool = False  # checkpoint paths configured
    trigger_signals: frozenset[int] = frozenset()
    job_signal: Optional[int] = None  # None: the trigger signal itself
    every: Optional[float] = None
    watch: bool = False
    inspect_on_exit: frozenset[int] = frozenset()
    complete: Optional[Rule] = None
    checkpoint_on_evict: Optional[float] = None
    promise_budget: Optional[float] = None  # evicted with a promised checkpoint in flight: its time
    checkpoint_timeout: Optional[float] = None
    on_timeout: str = "continue"  # or "fail"
    min_run: float = 0.0
    exit_after_checkpoint: bool = True  # for timer and watch checkpoints


@record(frozen=True)
class Promise:
    """The promise owed to HTCondor after its checkpoint signal (semantics rule 8).

    Once the starter sent ``signal`` at ``at``, the job's next exit must be the checkpoint status,
    whatever happens meanwhile (an eviction included), or HTCondor holds the job (code 36).
    ``fallback``: the last resort (report the checkpoint status over the unchanged store) was
    already tried; if that failed too, the failure is reported as it is.
    """

    signal: int
    at: float
    fallback: bool = False


# --------------------------------------------------------------------------------------------
# Events (in)


@record(frozen=True)
class Observation:
    """Facts the loop gathered about the sandbox; only those the rules need are filled in."""

    fingerprint: Hashable = None
    markers: tuple[tuple[str, Optional[int]], ...] = ()  # (path, mtime_ns or None)
    log_counts: tuple[tuple[str, int], ...] = ()  # (pattern, matches since start)
    open_for_write: Optional[bool] = None
    present: bool = True  # every checkpoint path exists
    missing: tuple[str, ...] = ()  # the checkpoint paths that do not exist
    newest_ns: Optional[int] = None  # newest mtime among the checkpoint files (for marker rules)


@record(frozen=True)
class Started:
    now: float
    pid: int
    observation: Observation
    resumed: bool = False  # working paths were restored from the store
    job_signal_deaths: int = 0  # earlier runs in a row killed by our job signal with no checkpoint


@record(frozen=True)
class SignalReceived:
    now: float
    signum: int


@record(frozen=True)
class ChildExited:
    """The main process ended. ``code``/``signum`` as from a wait status; ``done``: the done rule."""

    now: float
    code: Optional[int]
    signum: Optional[int]
    observation: Observation
    done: Optional[bool] = None


@record(frozen=True)
class Observed:
    now: float
    observation: Observation


@record(frozen=True)
class Tick:
    now: float


@record(frozen=True)
class ValidatorFinished:
    now: float
    ok: bool


@record(frozen=True)
class CommitFinished:
    now: float
    ok: bool
    error: str = ""
    bytes: int = 0
    seconds: float = 0.0
    fingerprint: Hashable = None
    changed: bool = False  # nothing committed: the files changed before or during the copy


@record(frozen=True)
class TreeGone:
    now: float


Event = Union[Started, SignalReceived, ChildExited, Observed, Tick, ValidatorFinished,
              CommitFinished, TreeGone]


# --------------------------------------------------------------------------------------------
# Commands (out)


class Target(str, enum.Enum):
    DEFAULT = "default"  # the --signal-to setting: the program's process group, or the child
    CHILD = "child"


@record(frozen=True)
class SendSignal:
    signum: int
    target: Target = Target.DEFAULT


@record(frozen=True)
class RunValidator:
    pass


@record(frozen=True)
class Commit:
    """Commit the checkpoint paths with this state; ``final_status`` records a finished program."""

    final_status: Optional[int] = None
    program_exited: bool = False
    restart: bool = False  # keep the committed store as it is (or mark a fresh start): no new files
    job_signal_deaths: int = 0  # with restart: record this many runs in a row killed by our job signal


@record(frozen=True)
class KillTree:
    """SIGKILL every process of the program's tree; the loop answers with TreeGone."""


@record(frozen=True)
class Exit:
    status: int
    by_signal: Optional[int] = None  # die from this signal instead (checkpoint by signal)
    reason: str = ""


@record(frozen=True)
class Record:
    """An event-log entry: ``kind`` plus fields."""

    kind: str
    fields: dict[str, Any] = field(default_factory=dict)
    level: str = "info"  # "info", "warning", "error", "debug"
    message: str = ""


Command_ = Union[SendSignal, RunValidator, Commit, KillTree, Exit, Record]


# --------------------------------------------------------------------------------------------
# States and the transition table (data, so the docs can draw it)


class Phase(str, enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    CHECKPOINTING = "checkpointing"
    VALIDATING = "validating"
    COMMITTING = "committing"
    STOPPING = "stopping"
    KILLING = "killing"
    EXITED = "exited"


S = Phase
TRANSITIONS: tuple[tuple[Phase, Phase, str], ...] = (
    (S.STARTING, S.RUNNING, "Started"),
    (S.RUNNING, S.CHECKPOINTING, "trigger signal / timer / evict with budget: send job signal"),
    (S.RUNNING, S.COMMITTING, "watch: changed and rules hold; exit inspected as checkpoint"),
    (S.RUNNING, S.VALIDATING, "watch: rules hold, run the validator"),
    (S.RUNNING, S.STOPPING, "soft-kill signal: pass it on, start the grace timer"),
    (S.RUNNING, S.KILLING, "program exited: kill what is left"),
    (S.CHECKPOINTING, S.VALIDATING, "changed and rules hold, run the validator"),
    (S.CHECKPOINTING, S.COMMITTING, "changed and rules hold"),
    (S.CHECKPOINTING, S.RUNNING, "timeout (--on-timeout continue)"),
    (S.CHECKPOINTING, S.STOPPING, "soft-kill signal, or the evict budget ran out"),
    (S.CHECKPOINTING, S.KILLING, "program exited without a checkpoint; timeout with fail"),
    (S.VALIDATING, S.COMMITTING, "validator exited 0"),
    (S.VALIDATING, S.CHECKPOINTING, "validator failed: wait for the next change"),
    (S.VALIDATING, S.RUNNING, "validator failed in watch mode"),
    (S.VALIDATING, S.KILLING, "validator failed after the program exited"),
    (S.VALIDATING, S.STOPPING, "validator failed while evicting"),
    (S.COMMITTING, S.RUNNING, "committed, keep running (watch/--min-run) or commit failed"),
    (S.COMMITTING, S.KILLING, "committed: kill the tree, then report the checkpoint"),
    (S.COMMITTING, S.STOPPING, "soft-kill signal arrived during the commit"),
    (S.COMMITTING, S.CHECKPOINTING, "the files changed during the copy: the request stands"),
    (S.STOPPING, S.KILLING, "program exited, or the grace ran out"),
    (S.KILLING, S.EXITED, "tree gone: exit with the planned status"),
    (S.KILLING, S.COMMITTING, "tree gone, the checkpoint status owed: record the final status or keep the store"),
    (S.STARTING, S.EXITED, "the program could not be started"),
)
_ALLOWED = frozenset((a, b) for a, b, _ in TRANSITIONS)


# --------------------------------------------------------------------------------------------
# Start-up decision (from the files on disk, never from HTCondor's advisory counters)


@record(frozen=True)
class StartPlan:
    resume: bool
    exit_now: Optional[int] = None
    reason: str = ""
    set_aside_working: bool = False  # working files were left by a run that ended without a checkpoint


def plan_start(state: Optional[dict[str, Any]]) -> StartPlan:
    """Decide from the committed store's state: run fresh, resume, or report a finished program."""
    if state is None:
        return StartPlan(resume=False, reason="no committed checkpoint: starting from scratch")
    final = state.get("final_status")
    if isinstance(final, int) and not isinstance(final, bool):
        return StartPlan(resume=False, exit_now=final,
                         reason=f"the program had already finished with status {final}")
    if state.get("empty"):
        # written when a run ended without a checkpoint (killed, interrupted): its working files
        # may be torn by that end, and are not a checkpoint
        return StartPlan(resume=False, reason="the store holds no checkpoint yet: starting from scratch",
                         set_aside_working=True)

    return StartPlan(resume=True, reason=f"resuming from committed checkpoint {state.get('sequence', '?')}")


def program_status(code: Optional[int], signum: Optional[int]) -> int:
    """The exit status the supervisor reports for the program's own end (128+N for signal N)."""
    if signum is not None:
        return exitstatus.SIGNAL_BASE + signum
    assert code is not None
    return code


# --------------------------------------------------------------------------------------------
# The machine


class Core:
    """Feed events with :meth:`handle`; read :attr:`phase`, :meth:`deadline`, :attr:`observing`."""

    def __init__(self, settings: CoreSettings) -> None:
        self.s = settings
        self.phase = Phase.STARTING
        self.started_at = 0.0
        self.child_alive = False
        self.child_result: Optional[tuple[Optional[int], Optional[int]]] = None
        self.promise: Optional[Promise] = None  # owed to HTCondor after its checkpoint signal
        self.failed_commits = 0
        self.last_commit_error = ""
        self.commit_kept_store = False  # the commit in flight (or done) only keeps the store as it is
        self.evicting = False
        self.exit_plan: Optional[Exit] = None
        # checkpoint bookkeeping
        self.request_reason = ""
        self.request_at: Optional[float] = None
        self.request_deadline: Optional[float] = None
        self.coalesced = 0
        self.obs = Observation()
        self.start_fp: Hashable = None
        self.committed_fp: Hashable = None
        self.baseline_fp: Hashable = None
        self.baseline_markers: dict[str, Optional[int]] = {}
        self.baseline_logs: dict[str, int] = {}
        self.last_change_at: Optional[float] = None
        self.rejected_fp: Hashable = object()  # the fingerprint a validator rejected
        self.complete_rule: Optional[str] = None
        self.commit_exit_after = False
        self.commit_final_status: Optional[int] = None
        self.next_timer: Optional[float] = None
        self.grace_deadline: Optional[float] = None
        self.commits = 0
        self.exit_event: Optional[ChildExited] = None
        self.exited_while_busy = False  # the program ended on its own during a validation or commit
        self.plan_is_program_end = False  # the planned exit reports the program's own end
        self.sent_job_signals: set[int] = set()  # signals we sent to make the program checkpoint
        self.prior_job_signal_deaths = 0  # from the store: earlier runs killed by our job signal


    # ---------------------------------------------------------------- public API
    @property
    def observing(self) -> bool:
        """True while the loop should gather Observations (a checkpoint may complete)."""
        return self.s.checkpointing and (
            self.phase == Phase.CHECKPOINTING or (self.phase == Phase.RUNNING and self.s.watch)
        )

    def deadline(self) -> Optional[float]:
        """The next time a Tick is needed, or None."""
        times: list[float] = []
        if self.phase == Phase.RUNNING and self.next_timer is not None:
            times.append(self.next_timer)
        if self.phase == Phase.CHECKPOINTING and self.request_deadline is not None:
            times.append(self.request_deadline)
        if self._evict_budget_applies():
            assert self.request_deadline is not None
            times.append(self.request_deadline)
        if self.phase == Phase.STOPPING and self.grace_deadline is not None:
            times.append(self.grace_deadline)
        if self.phase == Phase.COMMITTING and self.grace_deadline is not None and self.child_alive:
            times.append(self.grace_deadline)
        if self.observing and self.s.complete is not None:
            t = self.s.complete.deadline(self._view(self._now_hint))
            # a time the rules were already evaluated at (or after) brings nothing new
            if t is not None and (self._evaluated_at is None or t > self._evaluated_at):
                times.append(t)
        if self.phase == Phase.RUNNING and self.s.watch and self.s.min_run and self._pending_exit_at:
            times.append(self._pending_exit_at)
        return min(times) if times else None

    def handle(self, event: Event) -> list[Command_]:
        self._now_hint = event.now
        out: list[Command_] = []
        method = getattr(self, "_on_" + type(event).__name__)
        method(event, out)
        return out

    # ---------------------------------------------------------------- helpers
    _now_hint = 0.0
    _pending_exit_at: Optional[float] = None
    _evaluated_at: Optional[float] = None  # when the completion rules were last evaluated
    _soft_kill_sent = False
    soft_kill_received: Optional[int] = None  # the soft-kill signal HTCondor sent

    def _evict_budget_applies(self) -> bool:
        """A validator runs for an eviction checkpoint: the budget bounds it too."""
        return (self.phase == Phase.VALIDATING and self.request_reason == "evict"
                and self.request_deadline is not None and self.child_alive)

    def _is_soft_kill(self, sig: int) -> bool:
        return sig == self.s.kill_signal or (self.s.remove_kill_signal is not None
                                              and sig == self.s.remove_kill_signal)

    def _soft_kill(self, now: float, out: list[Command_], sig: Optional[int] = None) -> None:
        """Pass the soft-kill signal on (the one HTCondor sent); the grace starts with the first."""
        if sig is None:
            sig = self.soft_kill_received or self.s.kill_signal
        out.append(SendSignal(sig))
        out.append(Record("kill_sent", {"signal": sig, "grace": self.s.kill_grace}))
        if not self._soft_kill_sent:
            self._soft_kill_sent = True
            self.grace_deadline = now + self.s.kill_grace

    def _goto(self, phase: Phase) -> None:
        if phase != self.phase:
            assert (self.phase, phase) in _ALLOWED, f"transition {self.phase} -> {phase} not in table"
            self.phase = phase

    def _update_obs(self, now: float, obs: Observation) -> None:
        if obs.fingerprint != self.obs.fingerprint:
            self.last_change_at = now
        self.obs = obs

    def _view(self, now: float, *, exited: bool = False) -> View:
        markers_now = dict(self.obs.markers)
        logs_now = dict(self.obs.log_counts)
        return View(
            now=now,
            changed=self.obs.fingerprint != self.baseline_fp,
            last_change_at=self.last_change_at,
            # a marker counts once it changed and is not older than the checkpoint files it marks
            # (a program that starts rewriting its checkpoint right after a marker is not complete)
            markers_changed=frozenset(
                p for p, m in markers_now.items()
                if m is not None and m != self.baseline_markers.get(p)
                and (self.obs.newest_ns is None or m >= self.obs.newest_ns)
            ),
            markers_present=frozenset(p for p, m in markers_now.items() if m is not None),
            log_matches=tuple((p, n - self.baseline_logs.get(p, 0)) for p, n in logs_now.items()),
            log_matches_ever=tuple(logs_now.items()),
            open_for_write=self.obs.open_for_write,
            program_exited=exited or not self.child_alive,
        )

    def _set_baseline(self) -> None:
        self.baseline_fp = self.obs.fingerprint
        self.baseline_markers = dict(self.obs.markers)
        self.baseline_logs = dict(self.obs.log_counts)

    def _checkpoint_status(self) -> Exit:
        reason = "checkpoint committed"
        if self.commit_kept_store:
            reason = "no new checkpoint: the committed store is kept unchanged for the restart"
        if self.s.exit_signal is not None:
            return Exit(exitstatus.SIGNAL_BASE + self.s.exit_signal, by_signal=self.s.exit_signal,
                        reason=reason)
        return Exit(self.s.exit_code, reason=reason)

    def checkpoint_status(self) -> Exit:
        """The Exit that reports a checkpoint (by exit code or by signal)."""
        return self._checkpoint_status()

    def _is_checkpoint_status(self, plan: Exit) -> bool:
        want = self._checkpoint_status()
        return (plan.status, plan.by_signal) == (want.status, want.by_signal)

    def _report_program(self, code: Optional[int], signum: Optional[int]) -> Exit:
        status = program_status(code, signum)
        if signum is None and code == self.s.exit_code and self.s.exit_signal is None:
            return Exit(exitstatus.EXIT_PROGRAM_USED_CHECKPOINT_CODE,
                        reason=f"the program itself exited with the reserved checkpoint code {code}; "
                               "HTCondor would restart it forever, so this is reported as a failure "
                               "(use --inspect-on-exit or another --exit-code)")
        return Exit(status, reason="program exited" if signum is None else "program killed by a signal")

    def _kill_then(self, plan: Exit, out: list[Command_], *, program_end: bool = False) -> None:
        self.exit_plan = plan
        self.plan_is_program_end = program_end
        out.append(KillTree())
        out.append(Record("kill_tree", {"signal": 9}, level="debug"))
        self._goto(Phase.KILLING)

    def _rules_hold(self, view: View) -> bool:
        rule = self.s.complete
        return rule is None or rule.holds(view)

    def _has_command(self) -> bool:
        return bool(self.s.complete is not None and self.s.complete.commands())

    def _has_exit_rule(self) -> bool:
        rule = self.s.complete
        if rule is None:
            return False
        return isinstance(rule, ExitRule) or "exit" in rule.names()

    # ---------------------------------------------------------------- checkpoint request
    def _request(self, now: float, reason: str, out: list[Command_], *,
                 budget: Optional[float] = None, trigger: Optional[int] = None) -> None:
        self.request_reason = reason
        self.request_at = now
        self._set_baseline()
        self.coalesced = 0
        deadline = self.s.checkpoint_timeout
        if budget is not None:
            deadline = budget if deadline is None else min(deadline, budget)
        self.request_deadline = None if deadline is None else now + deadline
        sig = self.s.job_signal if self.s.job_signal is not None else trigger
        if sig is None:
            sig = next(iter(sorted(self.s.trigger_signals)), None)
        if sig is None:
            sig = self.s.kill_signal if reason == "evict" else None
        if sig is not None and self.child_alive:
            out.append(SendSignal(sig))
            self.sent_job_signals.add(sig)
        out.append(Record("checkpoint_requested", {"reason": reason, "signal": sig}))
        self._goto(Phase.CHECKPOINTING)

    def _maybe_complete(self, now: float, out: list[Command_], *, exited: bool = False) -> bool:
        """If the in-flight (or watched) checkpoint is complete, start validating or committing."""
        view = self._view(now, exited=exited)
        self._evaluated_at = now
        if not self.obs.present or not view.changed or self.obs.fingerprint == self.rejected_fp:
            return False
        if not self._rules_hold(view):
            return False
        self.complete_rule = str(self.s.complete) if self.s.complete is not None else "changed"
        latency = None if self.request_at is None else now - self.request_at
        after = "" if latency is None else f" {latency:.3f} s after the request"
        if exited and self.exit_event is not None and self.exit_event.code in self.s.inspect_on_exit \
                and self.request_reason == "exit":
            how = (f"the program exited {self.exit_event.code} (--inspect-on-exit) and its checkpoint changed "
                   f"since this start; completion rule {self.complete_rule!r} holds")
        else:
            how = f"the checkpoint changed and completion rule {self.complete_rule!r} holds{after}"
        out.append(Record("checkpoint_complete", {"rule": self.complete_rule, "latency": latency},
                          message=f"checkpoint complete: {how}"))
        if self._has_command():
            out.append(RunValidator())
            self._goto(Phase.VALIDATING)
        else:
            self._start_commit(out)
        return True

    def _start_commit(self, out: list[Command_], final_status: Optional[int] = None) -> None:
        self.commit_kept_store = False
        out.append(Commit(final_status=final_status, program_exited=not self.child_alive))
        self.commit_final_status = final_status
        self._goto(Phase.COMMITTING)

    def _exit_after_commit(self, now: float) -> bool:
        reason = self.request_reason
        if reason in ("signal", "evict", "exit") or not self.child_alive:
            return True
        if not self.s.exit_after_checkpoint:
            return False
        return now - self.started_at >= self.s.min_run

    def _back_to_running(self, now: float) -> None:
        self.request_at = None
        self.request_deadline = None
        self.request_reason = ""
        if self.s.every is not None:
            self.next_timer = now + self.s.every
        self._set_baseline_for_watch()
        self._goto(Phase.RUNNING)

    def _set_baseline_for_watch(self) -> None:
        # in watch mode a checkpoint is "new" once it differs from the last commit
        self.baseline_fp = self.committed_fp
        self.baseline_markers = dict(self.obs.markers)
        self.baseline_logs = dict(self.obs.log_counts)

    # ---------------------------------------------------------------- program end
    def _program_ended(self, ev: ChildExited, out: list[Command_]) -> None:
        """The program exited while no checkpoint completion is pending (or it failed)."""
        code, signum = ev.code, ev.signum
        if self.s.checkpointing and self.promise is not None:
            # HTCondor sent its checkpoint signal: the job must exit with the checkpoint status.
            # During an eviction only the done rule can say the program had finished.
            if not self._finished(ev) or (self.evicting and ev.done is not True):
                self._keep_promise_over_store(ev, out)
                return
            status = self._report_program(code, signum).status
            out.append(Record("final_status_recorded", {"status": status},
                              message=f"program finished with status {status} after the checkpoint "
                                      "signal; recording it and reporting the checkpoint status"))
            self.request_reason = "exit"
            self._start_commit(out, final_status=status)
            return
        if self.s.checkpointing and self._killed_by_our_job_signal(ev) and not self.evicting:
            if ev.done:
                # the program had finished its work when our signal landed (during its shutdown)
                out.append(Record("finished_before_job_signal", {"signal": signum},
                                  message=f"the program was killed by signal {signum}, the job signal we sent, "
                                          "after its done rule held: reporting it as finished (0)"))
                self._kill_then(Exit(0, reason="program finished (done rule)"), out, program_end=True)
                return
            assert signum is not None
            if not self.commits and self.prior_job_signal_deaths:
                # the run before ended the same way, and nothing was committed since: a restart
                # would repeat it forever (a wrapper that never passes the signal on)
                out.append(Record("killed_by_job_signal", {"signal": signum, "again": True}, level="error",
                                  message=self._job_signal_death_text(signum) + "; the run before ended the same "
                                          "way with no checkpoint since, so the job ends here instead of "
                                          "restarting forever"))
                self._kill_then(self._report_program(code, signum), out, program_end=True)
                return
            self._restart_from_last_commit(ev, out)
            return
        self._kill_then(self._report_program(code, signum), out, program_end=True)

    @staticmethod
    def _job_signal_death_text(signum: int) -> str:
        return (f"the program was killed by signal {signum}, the job signal we sent to ask for a checkpoint: "
                "the process that got it has no handler (a shell wrapper?); fix: `exec` the program in the "
                "wrapper, `trap` the signal, or --signal-to child")

    def _killed_by_our_job_signal(self, ev: ChildExited) -> bool:
        return ev.signum is not None and ev.signum in self.sent_job_signals

    def _finished(self, ev: ChildExited) -> bool:
        """Did the program end its work (rather than die from our request)? The done rule decides
        when there is one; a death by the job signal we sent is never 'finished'."""
        if ev.signum is not None and ev.signum in self.sent_job_signals:
            return False
        return ev.done is not False

    def _keep_promise_over_store(self, ev: Optional[ChildExited], out: list[Command_]) -> None:
        """The last resort of a promise: the checkpoint status over the unchanged store."""
        assert self.promise is not None
        self.promise = Promise(self.promise.signal, self.promise.at, fallback=True)
        if ev is not None:
            self._restart_from_last_commit(ev, out)
            return
        self._restart_from_last_commit(ChildExited(self._now_hint, None, None, self.obs), out)

    def _restart_from_last_commit(self, ev: ChildExited, out: list[Command_]) -> None:
        """The program ended without a checkpoint and without finishing (after the checkpoint
        signal, or killed by the job signal we sent): report the checkpoint status over the last
        committed store (unchanged), so that HTCondor restarts the job from there instead of
        holding it (rule 8) or ending it."""
        if ev.code is None and ev.signum is None:
            status_text = "ended"
        else:
            status_text = f"ended with status {program_status(ev.code, ev.signum)}"
        deaths = 0
        if self._killed_by_our_job_signal(ev) and not self.evicting:
            assert ev.signum is not None
            deaths = 1 if self.commits else self.prior_job_signal_deaths + 1
            out.append(Record("killed_by_job_signal", {"signal": ev.signum}, level="warning",
                              message=self._job_signal_death_text(ev.signum)
                              + "; restarting from the last committed checkpoint"))
        else:
            why = "during the eviction" if self.evicting else "after the checkpoint signal"
            out.append(Record("interrupted", {"status": program_status(ev.code, ev.signum)
                                              if ev.code is not None or ev.signum is not None else None},
                              level="warning",
                              message=f"the program {status_text} {why} without a new checkpoint and without "
                                      "finishing; reporting the checkpoint status over the last committed "
                                      "checkpoint (unchanged), so that HTCondor restarts the job from it"))
        self.request_reason = "exit"
        self.commit_kept_store = True
        out.append(Commit(program_exited=True, restart=True, job_signal_deaths=deaths))
        self.commit_final_status = None
        self._goto(Phase.COMMITTING)

    # ---------------------------------------------------------------- event handlers
    def _on_Started(self, ev: Started, out: list[Command_]) -> None:
        self.started_at = ev.now
        self.prior_job_signal_deaths = ev.job_signal_deaths
        self.child_alive = True
        self.obs = ev.observation
        self.start_fp = ev.observation.fingerprint
        # what was there at the start (restored or left over) is not a new checkpoint
        self.committed_fp = ev.observation.fingerprint
        self._set_baseline_for_watch()
        if self.s.every is not None:
            self.next_timer = ev.now + self.s.every
        out.append(Record("started", {"child_pid": ev.pid, "resumed": ev.resumed}, level="debug"))
        self._goto(Phase.RUNNING)

    def _on_SignalReceived(self, ev: SignalReceived, out: list[Command_]) -> None:
        sig = ev.signum
        if self._is_soft_kill(sig):
            self._on_kill_signal(ev, out)
            return
        if sig in self.s.trigger_signals and self.s.checkpointing:
            if self.promise is None:
                self.promise = Promise(sig, ev.now)
            if self.phase == Phase.RUNNING and self.child_alive:
                self._request(ev.now, "signal", out, trigger=sig)
            elif self.phase in (Phase.CHECKPOINTING, Phase.VALIDATING, Phase.COMMITTING):
                self.coalesced += 1
                if self.request_reason not in ("evict",):
                    self.request_reason = "signal"
                out.append(Record("trigger_coalesced", {"signal": sig}, level="debug"))
            return
        if self.child_alive and self.phase not in (Phase.KILLING, Phase.EXITED):
            out.append(SendSignal(sig))
            out.append(Record("signal_forwarded", {"signal": sig}, level="debug"))

    def _on_kill_signal(self, ev: SignalReceived, out: list[Command_]) -> None:
        sig = ev.signum
        if self.phase == Phase.EXITED:
            return
        first = not self.evicting
        self.evicting = True
        if first:
            self.soft_kill_received = sig
        busy = self.child_alive and self.phase not in (Phase.KILLING, Phase.EXITED)
        budget = self.s.checkpoint_on_evict if busy else None
        in_flight = self.phase in (Phase.CHECKPOINTING, Phase.VALIDATING)
        if busy and in_flight and not budget and self.promise is not None:
            budget = self.s.promise_budget  # the promised checkpoint may still complete in time
        if first:
            fields: dict[str, Any] = {"signal": sig, "budget": budget, "during": self.phase.value,
                                      "promise": self.promise is not None}
            owed = " (the checkpoint status is owed to HTCondor)" if self.promise is not None else ""
            then = (f"a checkpoint gets {budget:g} s, then the soft kill is passed on" if budget
                    and (in_flight or (self.phase == Phase.RUNNING and self.s.checkpointing))
                    else "passing it on")
            out.append(Record("evicting", fields, message=f"soft-kill signal {sig} received while "
                              f"{self.phase.value}{owed}: evicting; {then}"))
        if not busy:
            return  # we are already finishing; the commit or kill in progress completes
        if first and budget and self.s.checkpointing and self.phase == Phase.RUNNING:
            self._request(ev.now, "evict", out, budget=budget)
            return
        if first and budget and in_flight:
            self.request_reason = "evict"
            end = ev.now + budget
            self.request_deadline = end if self.request_deadline is None else min(self.request_deadline, end)
            return
        self._soft_kill(ev.now, out)
        if self.phase == Phase.COMMITTING:
            return  # the commit finishes (or rolls back) first; the grace keeps running
        self._goto(Phase.STOPPING)

    def _on_ChildExited(self, ev: ChildExited, out: list[Command_]) -> None:
        self.child_alive = False
        self.child_result = (ev.code, ev.signum)
        self.exit_event = ev
        self._update_obs(ev.now, ev.observation)
        out.append(Record("exited", {"code": ev.code, "signal": ev.signum}, level="debug"))
        phase = self.phase
        if phase in (Phase.KILLING, Phase.EXITED):
            return  # the exit status is already planned
        if phase in (Phase.VALIDATING, Phase.COMMITTING):
            self.exited_while_busy = True
            return  # decided when the validator or the commit finishes
        if phase == Phase.STOPPING:
            self._kill_then(self._report_program(ev.code, ev.signum), out)
            return
        if ev.done:
            out.append(Record("done", {"code": ev.code, "signal": ev.signum}))
            self._program_ended(ev, out)
            return
        exit_counts = self._has_exit_rule() and (
            phase == Phase.CHECKPOINTING or (phase == Phase.RUNNING and self.s.watch))
        inspected = ev.signum is None and ev.code in self.s.inspect_on_exit and self.s.checkpointing
        if inspected and not ev.observation.present:
            missing = ", ".join(ev.observation.missing) or "a checkpoint path"
            out.append(Record("checkpoint_missing", {"code": ev.code, "missing": list(ev.observation.missing)},
                              level="warning",
                              message=f"the program exited {ev.code} (--inspect-on-exit), but {missing} does not "
                                      "exist: no checkpoint to inspect (is --checkpoint spelled as the program "
                                      f"writes it?); passing {ev.code} through"))
        if exit_counts or inspected:
            if phase == Phase.RUNNING:
                # the seed's first work-around: a new complete checkpoint since this start?
                self.request_reason = "exit"
                self.request_at = ev.now
                if self.commits and self.obs.fingerprint == self.committed_fp:
                    out.append(Record("checkpoint_complete", {"rule": "already committed", "latency": 0.0}))
                    self._kill_then(self._checkpoint_status(), out)
                    return
                self.baseline_fp = self.start_fp
            if self._maybe_complete(ev.now, out, exited=True):
                return
        self._program_ended(ev, out)

    def _on_Observed(self, ev: Observed, out: list[Command_]) -> None:
        self._update_obs(ev.now, ev.observation)
        if self.phase == Phase.CHECKPOINTING or (self.phase == Phase.RUNNING and self.s.watch and self.s.checkpointing):
            if self.phase == Phase.RUNNING:
                self.request_reason = "watch"
            self._maybe_complete(ev.now, out)
            if self.phase == Phase.RUNNING:
                self.request_reason = ""

    def _on_Tick(self, ev: Tick, out: list[Command_]) -> None:
        now = ev.now
        if self.phase == Phase.RUNNING:
            if self._pending_exit_at is not None and now >= self._pending_exit_at:
                self._pending_exit_at = None
                self.request_reason = "watch"
                self._kill_then(self._checkpoint_status(), out)
                return
            if self.next_timer is not None and now >= self.next_timer and self.s.checkpointing:
                self.next_timer = None
                self._request(now, "timer", out)
                return
            if self.s.watch:
                self._on_Observed(Observed(now, self.obs), out)
            return
        if self._evict_budget_applies():
            assert self.request_deadline is not None
            if now >= self.request_deadline:
                self._timed_out(now, out)
            return
        if self.phase == Phase.CHECKPOINTING:
            if self._maybe_complete(now, out):
                return
            if self.request_deadline is not None and now >= self.request_deadline:
                self._timed_out(now, out)
            return
        if (self.phase in (Phase.STOPPING, Phase.COMMITTING) and self.grace_deadline is not None
                and now >= self.grace_deadline and self.child_alive):
                self.grace_deadline = None
                out.append(Record("grace_expired", {"grace": self.s.kill_grace}, level="warning"))
                if self.phase == Phase.STOPPING:
                    self._kill_then(Exit(exitstatus.SIGNAL_BASE + 9, reason="killed after the grace"), out)
                else:
                    out.append(KillTree())

    def _timed_out(self, now: float, out: list[Command_]) -> None:
        reason = self.request_reason
        out.append(Record("checkpoint_timed_out", {"reason": reason, "waited": now - (self.request_at or now)},
                          level="warning"))
        if reason == "evict":
            self._soft_kill(now, out)
            self._goto(Phase.STOPPING)
            return
        if self.s.on_timeout == "fail":
            self._kill_then(Exit(exitstatus.EXIT_CHECKPOINT_TIMEOUT,
                                 reason="the checkpoint did not complete in time (--on-timeout fail)"), out)
            return
        self._back_to_running(now)

    def _on_ValidatorFinished(self, ev: ValidatorFinished, out: list[Command_]) -> None:
        if self.phase != Phase.VALIDATING:
            return
        out.append(Record("validator_finished", {"ok": ev.ok}))
        if ev.ok:
            self._start_commit(out)
            return
        self.rejected_fp = self.obs.fingerprint
        if not self.child_alive:
            code, signum = self.child_result or (None, None)
            self._program_ended(ChildExited(ev.now, code, signum, self.obs), out)
            return
        if self.request_reason == "watch" or (self.request_at is None and self.s.watch):
            self._back_to_running(ev.now)
            return
        self._goto(Phase.CHECKPOINTING)
        if self.request_reason == "evict" and self.request_deadline is not None and ev.now >= self.request_deadline:
            self._timed_out(ev.now, out)

    def _on_CommitFinished(self, ev: CommitFinished, out: list[Command_]) -> None:
        if self.phase != Phase.COMMITTING:
            return
        if not ev.ok and ev.changed and not (self.evicting and self.request_reason != "evict"):
            # not a failure: the copy would have mixed two versions; wait for the next complete one
            out.append(Record("checkpoint_changed", {"reason": self.request_reason}, level="debug",
                              message=ev.error))
            if not self.child_alive and self.exit_event is not None:
                self._back_to_running(ev.now)
                self._on_ChildExited(self.exit_event, out)
            elif self.request_reason in ("signal", "timer", "evict"):
                self._goto(Phase.CHECKPOINTING)  # the request stands, with its baseline and deadline
            else:
                self._back_to_running(ev.now)
            return
        if not ev.ok:
            self.failed_commits += 1
            self.last_commit_error = ev.error
            out.append(Record("commit_failed", {"error": ev.error}, level="error", message=ev.error))
            self.rejected_fp = self.obs.fingerprint  # retried only once the files change again

            if not self.child_alive:
                self._kill_then(Exit(exitstatus.EXIT_STORE, reason=ev.error), out)
                return
            if self.evicting:
                self._after_evict_commit(ev.now, out)
                return
            self._back_to_running(ev.now)
            return
        if not self.commit_kept_store:
            self.commits += 1
        self.committed_fp = ev.fingerprint if ev.fingerprint is not None else self.obs.fingerprint
        if self.commit_kept_store:
            out.append(Record("store_kept", {"seconds": ev.seconds},
                              message="no new checkpoint: the committed store is kept as it is (an empty "
                                      "one marks 'start from scratch' when there was none)"))
        else:
            out.append(Record("committed", {"bytes": ev.bytes, "seconds": ev.seconds,
                                            "final_status": self.commit_final_status}))
        if self.evicting and self.request_reason != "evict" and self.promise is None:
            self._after_evict_commit(ev.now, out)
            return
        if self.exited_while_busy and self.request_reason in ("watch", "timer") and self.exit_event:
            # the program ended on its own while we committed: decide about that exit now
            self._back_to_running(ev.now)
            self._on_ChildExited(self.exit_event, out)
            return
        if self._exit_after_commit(ev.now):
            self._kill_then(self._checkpoint_status(), out)
            return
        self._back_to_running(ev.now)
        if self.s.watch and self.s.min_run and self.s.exit_after_checkpoint:
            self._pending_exit_at = self.started_at + self.s.min_run

    def _after_evict_commit(self, now: float, out: list[Command_]) -> None:
        """A soft-kill signal arrived during the commit: carry on with the soft kill."""
        if not self.child_alive:
            code, signum = self.child_result or (None, None)
            self._kill_then(self._report_program(code, signum), out)
            return
        if not self._soft_kill_sent:  # an eviction checkpoint asked with the job signal only
            self._soft_kill(now, out)
        self._goto(Phase.STOPPING)

    def _on_TreeGone(self, ev: TreeGone, out: list[Command_]) -> None:
        if self.phase != Phase.KILLING:
            return
        plan = self.exit_plan or Exit(exitstatus.EXIT_INTERNAL, reason="no exit planned")
        if (self.promise is not None and self.s.checkpointing and not self.promise.fallback
                and not self._is_checkpoint_status(plan) and plan.status != exitstatus.EXIT_CHECKPOINT_TIMEOUT):
            # (--on-timeout fail is the user's explicit choice to stop: 75, which HTCondor holds)
            # HTCondor's checkpoint signal came (before or while we killed what was left): the
            # job must still exit with the checkpoint status, or it is held (rule 8)
            exited = self.exit_event
            finished = (exited is not None and self.plan_is_program_end and self.commit_final_status is None
                        and self._finished(exited) and not (self.evicting and exited.done is not True))
            if not finished:
                self._keep_promise_over_store(exited, out)
                return
            out.append(Record("final_status_recorded", {"status": plan.status},
                              message=f"program ended with status {plan.status} around the checkpoint "
                                      "signal; recording it and reporting the checkpoint status"))
            self.request_reason = "exit"
            self._start_commit(out, final_status=plan.status)
            return

        if self.failed_commits:
            out.append(Record("commit_summary", {"failed": self.failed_commits, "committed": self.commits,
                                                 "error": self.last_commit_error}, level="warning",
                              message=f"{self.failed_commits} commit(s) failed in this run ({self.commits} "
                                      f"succeeded); last error: {self.last_commit_error}"))
        how = f"dying from signal {plan.by_signal}" if plan.by_signal is not None else f"exit status {plan.status}"
        out.append(Record("exit", {"status": plan.status, "signal": plan.by_signal, "reason": plan.reason},
                          level="debug" if plan.reason.startswith("program") else "info",
                          message=f"{how}: {plan.reason}"))
        out.append(plan)
        self._goto(Phase.EXITED)



