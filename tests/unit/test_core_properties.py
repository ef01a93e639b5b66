"""Property tests of the decision core: random event sequences, invariants after every step.

A harness plays the I/O loop: it starts the core, then feeds random signals (including the trigger
and soft-kill signals), ticks with increasing time (often exactly at ``core.deadline()``),
observations with random fingerprints, markers and log counts, and the program's exit; it answers
a RunValidator, a Commit or a KillTree only when the core asked for one, as the loop does. After
every step it checks the invariants that keep a job from being lost or held by HTCondor.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.core_api import *  # noqa: F403  (the core's names, one list)

from supervisor import exitstatus

SIGHUP, SIGINT, SIGUSR1, SIGUSR2, SIGTERM, SIGCONT = 1, 2, 10, 12, 15, 18
ALLOWED = {(a, b) for a, b, _ in TRANSITIONS}
# about 10 s of CPU by default; raise it for a long run (CORE_PROPERTY_EXAMPLES=20000)
EXAMPLES = int(os.environ.get("CORE_PROPERTY_EXAMPLES", "500"))
# the table-coverage test's seeded sequences (a second or two of CPU)
SEEDS = int(os.environ.get("CORE_COVERAGE_SEEDS", "3000"))

RULES: list[Rule] = [
    Quiet(0), Quiet(2), Marker("m"), Log("ok"), Closed(), ExitRule(), CommandRule("check"),
    Quiet(1) & CommandRule("check"), Quiet(2) | Marker("m"), Marker("m") & Log("ok"),
    ExitRule() | Quiet(3), Closed() & Quiet(1),
]


class Drawn:
    """The harness's choices, drawn by Hypothesis (``data.draw`` or a composite's ``draw``)."""

    def __init__(self, draw: Any) -> None:
        self.draw = draw.draw if hasattr(draw, "draw") else draw

    def bool(self) -> bool:
        return bool(self.draw(st.booleans()))

    def int(self, lo: int, hi: int) -> int:
        return int(self.draw(st.integers(lo, hi)))

    def float(self, lo: float, hi: float) -> float:
        return float(self.draw(st.floats(lo, hi)))

    def pick(self, seq: Any) -> Any:
        return self.draw(st.sampled_from(list(seq)))

    def subset(self, seq: Any, max_size: int) -> frozenset[Any]:
        return frozenset(self.draw(st.sets(st.sampled_from(list(seq)), max_size=max_size)))


class Seeded(Drawn):
    """The same choices from a seeded ``random.Random``: what the table-coverage test explores
    depends on its seeds only, never on the Hypothesis release or the Python version (Hypothesis
    derandomizes from the test's bytecode, and its search changes between releases)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def bool(self) -> bool:
        return self.rng.random() < 0.5

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def float(self, lo: float, hi: float) -> float:
        return self.rng.uniform(lo, hi)

    def pick(self, seq: Any) -> Any:
        return self.rng.choice(list(seq))

    def subset(self, seq: Any, max_size: int) -> frozenset[Any]:
        items = sorted(set(seq))
        return frozenset(self.rng.sample(items, self.rng.randint(0, min(max_size, len(items)))))


def make_settings(d: Drawn, evict: bool = False) -> CoreSettings:
    checkpointing = True if evict else d.pick([False, True, True])
    kill_signal = d.pick([SIGTERM, SIGINT])
    triggers = d.subset([SIGUSR1, SIGUSR2], 2)
    every = (d.float(1, 50) if d.bool() else None) if checkpointing else None  # config: needs paths
    return CoreSettings(
        kill_signal=kill_signal,
        kill_grace=d.float(0.5, 20),
        exit_code=d.pick([85, 77, 99]),
        exit_signal=d.pick([None, None, SIGHUP]),
        checkpointing=checkpointing,
        trigger_signals=triggers,
        job_signal=d.pick([None, SIGUSR1, SIGUSR2]),
        every=every,
        watch=d.bool(),
        inspect_on_exit=d.subset([0, 1, 77, 85], 2),
        complete=d.pick(RULES),
        checkpoint_on_evict=d.pick([0.5, 5.0, 20.0] if evict else [None, 5.0]),
        promise_budget=d.pick([None, 3.0]),
        checkpoint_timeout=d.float(1, 60) if d.bool() else None,
        on_timeout=d.pick(["continue", "fail"]),
        min_run=d.pick([0.0, 0.0, 30.0, 100.0]),
        exit_after_checkpoint=d.pick([False, True, True]),
    )


@st.composite
def core_settings(draw: Any, evict: bool = False) -> CoreSettings:
    return make_settings(Drawn(draw), evict)


@dataclass
class Harness:
    """Plays the loop's part and checks the invariants on every batch of commands."""

    s: CoreSettings
    core: Core = field(init=False)
    now: float = 0.0
    child_alive: bool = True
    validator_pending: bool = False
    commit_pending: bool = False
    kill_pending: bool = False  # a KillTree not yet answered by TreeGone
    settling: Optional[tuple[Optional[int], Optional[int]]] = None  # ChildGone (code, signal) fed, no ChildExited yet
    settle_stopped: bool = False  # the core said StopSettling: the done command was killed (not done)
    plan: Optional[Exit] = None  # the core's planned exit when it entered KILLING
    evicting: bool = False  # KillSig arrived while the program lived
    promised: bool = False  # HTCondor's checkpoint signal arrived: rule 8 applies
    commits_ok: int = 0
    exited: Optional[Exit] = None
    mtime: int = 0
    fp_count: int = 0
    log_count: int = 0
    last_obs: Observation = field(default_factory=Observation)
    trace: list[str] = field(default_factory=list)
    strays: bool = False  # the loop's rarer answers too: unasked results, a copy that raced a change
    settles: bool = False  # the program's end may come as ChildGone, then ChildExited (SETTLING)
    reached: set[tuple[Phase, type, int, Phase]] = field(default_factory=set)  # the table's branches taken

    def __post_init__(self) -> None:
        self.core = Core(self.s)

    def is_checkpoint_status(self, ex: Exit) -> bool:
        if self.s.exit_signal is not None:
            return ex.by_signal is not None
        return ex.by_signal is None and ex.status == self.s.exit_code

    def feed(self, event: Any) -> None:
        before = self.core.phase
        self.trace.append(f"{before.value}: {event}")
        if isinstance(event, SignalReceived) and event.signum == self.s.kill_signal:
            self.evicting = self.evicting or self.child_alive
        if (isinstance(event, SignalReceived) and event.signum in self.s.trigger_signals
                and self.s.checkpointing and self.exited is None):
            self.promised = True
        out = self.core.handle(event)  # never raises: an exception fails the property
        after = self.core.phase
        assert before == after or (before, after) in ALLOWED, f"{before} -> {after}"
        # the transition is one the table names: its entry, one of its branches, a phase it names
        step = self.core.last_step
        assert step is not None and (step.phase, step.event) == (before, type(event)), step
        assert step.to == after and after in TABLE[(before, type(event))][step.branch].to, step
        self.reached.add((step.phase, step.event, step.branch, step.to))
        if self.exited is not None:
            assert out == [], f"commands after Exit: {out}"
            return
        saw_tree_gone = isinstance(event, TreeGone)
        again: list[Any] = []
        for cmd in out:
            if isinstance(cmd, Redeliver):  # the loop hands held events in again, in their order
                assert isinstance(event, ChildExited) and before == Phase.SETTLING, "Redeliver out of settling"
                again.append(cmd.event)
            elif isinstance(cmd, StopSettling):
                assert self.settling is not None, "StopSettling while not settling"
                self.settle_stopped = True
            elif isinstance(cmd, SendSignal):
                assert self.child_alive, f"signal {cmd.signum} sent after the program exited"
            elif isinstance(cmd, Commit):
                assert not self.commit_pending, "a second Commit while one is in flight"
                self.commit_pending = True
            elif isinstance(cmd, RunValidator):
                assert not self.validator_pending, "a second validator while one runs"
                self.validator_pending = True
            elif isinstance(cmd, KillTree):
                self.kill_pending = True
                saw_tree_gone = False  # an Exit must follow a TreeGone *after* this KillTree
            elif isinstance(cmd, Exit):
                assert saw_tree_gone and before == Phase.KILLING, "Exit before the tree was gone"
                assert not self.commit_pending, "Exit while a commit is in flight"
                if self.is_checkpoint_status(cmd):
                    assert self.commits_ok > 0, f"checkpoint status {cmd} without a commit"
                # rule 8: after the checkpoint signal every way out is the checkpoint status
                # (eviction included); only a store that cannot even be kept, and --on-timeout fail,
                # are reported as they are
                if self.promised:
                    assert self.is_checkpoint_status(cmd) or cmd.status in (
                        exitstatus.EXIT_STORE, exitstatus.EXIT_CHECKPOINT_TIMEOUT), (
                        f"promised the checkpoint status, exited {cmd}")
                self.exited = cmd
        if self.exited is not None:
            assert out[-1] is self.exited, "Exit is the last command"
            assert self.core.phase == Phase.EXITED
            assert self.plan is None or self.exited == self.plan, "the planned exit changed"
        # once the tree is being killed for an exit, the planned status is fixed
        if after == Phase.KILLING:
            if before != Phase.KILLING:
                self.plan = self.core.exit_plan
            assert self.core.exit_plan == self.plan, "exit plan changed while KILLING"
        # liveness: a soft kill always ends in SIGKILL (a grace deadline or a tree kill pending)
        if self.core.phase == Phase.STOPPING:
            assert self.core.deadline() is not None or self.kill_pending, "STOPPING, no deadline"
        # evicted: the program's remaining time is bounded (budget or grace) except while the
        # commit, which must not be cut, finishes
        if (self.evicting and self.child_alive and not self.kill_pending
                and after not in (Phase.COMMITTING, Phase.KILLING, Phase.EXITED)):
            assert self.core.deadline() is not None, f"evicted, {after.value} without a deadline"
        # no busy loop: a Tick that changed nothing leaves no deadline at or before it
        progress = before != after or any(not isinstance(c, Record) for c in out)
        if isinstance(event, Tick) and not progress:
            d = self.core.deadline()
            assert d is None or d > event.now, f"deadline {d} not after idle tick {event.now}"
        for held in again:
            if self.exited is not None:
                break  # the loop hands nothing in after the Exit
            self.feed(held)

    # ---------------------------------------------------------------- the loop's answers
    def commit_done(self, ok: bool, fingerprint: Any = None, changed: bool = False) -> None:
        self.commit_pending = False
        self.commits_ok += ok
        self.feed(CommitFinished(self.now, ok, error="" if ok else "changed" if changed else "ENOSPC",
                                 fingerprint=fingerprint, changed=changed))

    def validator_done(self, ok: bool) -> None:
        self.validator_pending = False
        self.feed(ValidatorFinished(self.now, ok))

    def at(self, now: float, event_type: Any, *args: Any) -> None:
        """Feed ``event_type(now, *args)`` at ``now``."""
        self.now = now
        self.feed(event_type(now, *args))

    # ---------------------------------------------------------------- the loop's events
    def observation(self, data: Any) -> Observation:
        if data.bool():
            self.mtime += data.int(1, 3)
        if data.bool():
            self.log_count += data.int(0, 2)
        marker = data.pick([None, self.mtime, self.mtime])
        # usually a new fingerprint (the program wrote), sometimes the same, an old one or None
        kind = data.pick(["new", "new", "same", "old", "none"])
        if kind == "new":
            self.fp_count += 1
        fp = {"new": f"f{self.fp_count}", "same": self.last_obs.fingerprint, "old": "a",
              "none": None}[kind]
        o = Observation(
            fingerprint=fp,
            markers=(("m", marker),),
            log_counts=(("ok", self.log_count),),
            open_for_write=data.pick([None, True, False]),
        )
        self.last_obs = o
        return o

    def advance(self, data: Any) -> None:
        self.now += data.pick([0.0, 0.001, 0.5, 1.0, 3.0, 10.0, 40.0])

    def step(self, data: Any) -> None:
        # weighted: the program usually lives a while, requests are usually answered
        choices = ["signal"] * 2 + ["tick"] + ["tick_deadline"] * 3 + ["observe"] * 3
        if self.child_alive:
            choices += ["child_exit", "child_gone"] if self.settles else ["child_exit"]
        if self.settling is not None:
            choices += ["settled"] * 2
        if self.validator_pending:
            choices += ["validator"] * 2
        if self.commit_pending:
            choices += ["commit"] * 2
        if self.kill_pending:
            choices += ["tree_gone"] * 2
        if self.strays:
            choices += [w for w, pending in (("stray_validator", self.validator_pending),
                                             ("stray_commit", self.commit_pending)) if not pending]
        what = data.pick(choices)
        if what == "tick_deadline":
            d = self.core.deadline()
            if d is not None and d > self.now:
                self.now = d
            else:
                self.advance(data)
            self.feed(Tick(self.now))
            return
        self.advance(data)
        if what == "signal":
            sig = data.pick([SIGHUP, SIGINT, SIGUSR1, SIGUSR2, SIGTERM, SIGCONT,
                                             self.s.kill_signal, *self.s.trigger_signals])
            self.feed(SignalReceived(self.now, sig))
        elif what == "tick":
            self.feed(Tick(self.now))
        elif what == "observe":
            self.feed(Observed(self.now, self.observation(data)))
        elif what == "child_exit":
            self.exit_child(data)
        elif what == "child_gone":
            self.child_gone(data)
        elif what == "settled":
            self.settled(data)
        elif what == "validator":
            self.validator_pending = False
            self.feed(ValidatorFinished(self.now, data.bool()))
        elif what == "commit":
            self.commit_pending = False
            ok = data.bool()
            if ok:
                self.commits_ok += 1
            elif self.strays and data.bool():  # the files changed during the copy
                self.feed(CommitFinished(self.now, False, error="changed", changed=True))
                return
            self.feed(CommitFinished(self.now, ok, error="" if ok else "ENOSPC",
                                     fingerprint=self.last_obs.fingerprint))
        elif what == "stray_validator":  # the loop passes on what it reaped; the core ignores it
            self.feed(ValidatorFinished(self.now, data.bool()))
        elif what == "stray_commit":
            self.feed(CommitFinished(self.now, data.bool(), fingerprint=self.last_obs.fingerprint))
        elif what == "tree_gone":
            if self.child_alive:  # the tree kill took the main process too: it is reaped first
                self.child_alive = False
                self.feed(ChildExited(self.now, None, 9, self.last_obs))
                if self.exited is not None:
                    return
            self.kill_pending = False
            self.feed(TreeGone(self.now))

    def exit_child(self, data: Any) -> None:
        self.child_alive = False
        if data.bool():
            code, signum = data.pick([0, 1, 3, 77, 85, 99]), None
        else:
            code, signum = None, data.pick([9, 11, 15])
        done = data.pick([None, True, False])
        self.feed(ChildExited(self.now, code, signum, self.observation(data), done))


    def child_gone(self, data: Any) -> None:
        """The main process reaped while its end needs a blocking fact: ChildGone, ChildExited later."""
        self.child_alive = False
        self.settle_stopped = False
        code, signum = data.pick([(0, None), (1, None), (85, None), (None, 9), (None, 15)])
        self.settling = (code, signum)
        self.feed(ChildGone(self.now, code, signum))

    def settled_with(self, now: float, done: Optional[bool]) -> None:
        assert self.settling is not None
        code, signum = self.settling
        self.settling = None
        self.at(now, ChildExited, code, signum, self.last_obs, done)

    def settled(self, data: Any) -> None:
        assert self.settling is not None
        code, signum = self.settling
        self.settling = None
        done = False if self.settle_stopped else data.pick([None, True, False])
        self.feed(ChildExited(self.now, code, signum, self.observation(data), done))


def run_sequence(s: CoreSettings, data: Any, max_steps: int, *, evict: bool = False,
                 strays: bool = False, settles: bool = False) -> Harness:
    h = Harness(s, strays=strays, settles=settles)
    h.feed(Started(0.0, 4242, Observation(fingerprint="a", markers=(("m", 0),),
                                          log_counts=(("ok", 0),)),
                   resumed=data.bool()))
    h.last_obs = Observation(fingerprint="a")
    if evict:  # HTCondor evicts at once, or after a checkpoint signal
        if s.trigger_signals and data.bool():
            h.feed(SignalReceived(0.0, min(s.trigger_signals)))
            h.feed(Observed(0.1, h.observation(data)))
        h.now = 0.2
        h.feed(SignalReceived(h.now, s.kill_signal))
    for _ in range(data.int(1, max_steps)):
        if h.exited is not None:
            # after Exit every further event is ignored
            h.feed(SignalReceived(h.now, s.kill_signal))
            h.feed(Tick(h.now + 1000))
            if strays:
                for late in (ChildExited(h.now, 0, None, h.last_obs), ChildGone(h.now, 0, None),
                             Observed(h.now, h.last_obs),
                             ValidatorFinished(h.now, True), CommitFinished(h.now, True), TreeGone(h.now)):
                    h.feed(late)
            break
        h.step(data)
    return h


@pytest.mark.timeout(300)  # ~30 s of CPU: minutes on a loaded machine
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(s=core_settings(), data=st.data())
def test_random_event_sequences_keep_the_invariants(s: CoreSettings, data: Any) -> None:
    """At most one commit and one validator in flight; the checkpoint status only after a
    successful commit; Exit only after TreeGone following the last KillTree; nothing after Exit;
    only transitions from the table; no signal to a dead program; a soft kill (or an eviction
    budget) always has a deadline; no past deadline after an idle tick; the core never raises."""
    d = Drawn(data)
    run_sequence(s, d, max_steps=60, settles=d.bool())


@pytest.mark.timeout(300)
@settings(max_examples=max(1, EXAMPLES // 4), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(s=core_settings(evict=True), data=st.data())
def test_eviction_sequences_keep_the_invariants(s: CoreSettings, data: Any) -> None:
    """The same invariants when HTCondor evicts the job early (--checkpoint-on-evict set): the
    eviction checkpoint, its budget, a failed commit, a second KillSig, the grace."""
    d = Drawn(data)
    run_sequence(s, d, max_steps=25, evict=True, settles=d.bool())


@pytest.mark.timeout(300)
@settings(max_examples=max(1, EXAMPLES // 4), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(s=core_settings(), data=st.data())
def test_every_run_can_be_finished(s: CoreSettings, data: Any) -> None:
    """Whatever happened, once the program has exited and every pending request is answered,
    the core reaches Exit: it never waits forever for something the loop cannot deliver."""
    data = Drawn(data)
    h = run_sequence(s, data, max_steps=30, settles=data.bool())
    for _ in range(50):
        if h.exited is not None:
            return
        if h.child_alive:
            h.exit_child(data)
        elif h.settling is not None:
            h.settled(data)
        elif h.commit_pending:
            h.commit_pending = False
            h.commits_ok += 1
            h.feed(CommitFinished(h.now, True, fingerprint=h.last_obs.fingerprint))
        elif h.validator_pending:
            h.validator_pending = False
            h.feed(ValidatorFinished(h.now, True))
        elif h.kill_pending:
            h.kill_pending = False
            h.feed(TreeGone(h.now))
        else:
            d = h.core.deadline()
            h.now = max(h.now + 1, d if d is not None else 0)
            h.feed(Tick(h.now))
    raise AssertionError(f"stuck in {h.core.phase}:\n" + "\n".join(h.trace[-15:]))


# ------------------------------------------------------------------------------------------------
# Every branch of the table is taken


def _o(fp: str) -> Observation:
    return Observation(fingerprint=fp)


def _harness(**kw: Any) -> Harness:
    kw.setdefault("checkpointing", True)
    h = Harness(CoreSettings(**kw))
    h.feed(Started(0.0, 4242, _o("a")))
    return h


def _directed() -> list[Harness]:
    """Short sequences for branches random sequences seldom take (each names what it reaches)."""
    out = []
    # --watch --min-run: a watched commit before min-run, then the exit at min-run
    h = _harness(watch=True, complete=Quiet(0), min_run=30.0)
    h.at(1.0, Observed, _o("f1"))
    h.commit_done(True, "f1")
    h.at(30.0, Tick)
    out.append(h)
    # a watched checkpoint validated: an unasked commit result, the soft kill with no budget
    h = _harness(watch=True, complete=CommandRule("check"))
    h.at(1.0, Observed, _o("f1"))
    h.at(2.0, CommitFinished, True)
    h.at(3.0, SignalReceived, SIGTERM)
    out.append(h)
    # ... rejected: back to running
    h = _harness(watch=True, complete=CommandRule("check"))
    h.at(1.0, Observed, _o("f1"))
    h.validator_done(False)
    out.append(h)
    # an eviction checkpoint committed; the second soft kill's grace ends during the commit, the
    # program's exit (inspected) raced the copy: its checkpoint is validated while the tree dies
    h = _harness(complete=CommandRule("check"), inspect_on_exit=frozenset({0}), checkpoint_on_evict=5.0)
    h.at(1.0, SignalReceived, SIGTERM)
    h.at(2.0, Observed, _o("f1"))
    h.validator_done(True)
    h.at(3.0, SignalReceived, SIGTERM)
    h.at(13.0, Tick)
    h.child_alive = False
    h.at(13.5, ChildExited, 0, None, _o("f2"))
    h.commit_done(False, changed=True)
    h.kill_pending = False
    h.at(14.0, TreeGone)
    h.validator_done(False)
    out.append(h)
    # the checkpoint signal, then the program ends while its checkpoint is validated, rejected
    h = _harness(trigger_signals=frozenset({SIGUSR1}), complete=CommandRule("check"))
    h.at(1.0, SignalReceived, SIGUSR1)
    h.at(2.0, Observed, _o("f1"))
    h.child_alive = False
    h.at(3.0, ChildExited, 0, None, _o("f1"))
    h.validator_done(False)
    out.append(h)
    # an eviction checkpoint rejected after its budget ran out
    h = _harness(complete=CommandRule("check"), checkpoint_on_evict=5.0)
    h.at(1.0, SignalReceived, SIGTERM)
    h.at(2.0, Observed, _o("f1"))
    h.now = 6.0
    h.validator_done(False)
    out.append(h)
    # --inspect-on-exit with a validator, while running and while checkpointing
    for signals in ((), (SIGUSR1,)):
        h = _harness(trigger_signals=frozenset({SIGUSR1}), complete=CommandRule("check"),
                     inspect_on_exit=frozenset({0}))
        for sig in signals:
            h.at(1.0, SignalReceived, sig)
        h.child_alive = False
        h.at(2.0, ChildExited, 0, None, _o("f1"))
        out.append(h)
    # a watched commit while evicting, the program exits during it
    h = _harness(watch=True, complete=Quiet(0))
    h.at(1.0, Observed, _o("f1"))
    h.at(2.0, SignalReceived, SIGTERM)
    h.child_alive = False
    h.at(2.5, ChildExited, None, SIGTERM, _o("f1"))
    h.commit_done(True, "f1")
    out.append(h)
    # a watched commit, the program ends (inspected) with a newer checkpoint during it
    h = _harness(watch=True, complete=CommandRule("check"), inspect_on_exit=frozenset({0}))
    h.at(1.0, Observed, _o("f1"))
    h.validator_done(True)
    h.child_alive = False
    h.at(2.0, ChildExited, 0, None, _o("f2"))
    h.commit_done(True, "f1")
    out.append(h)
    # the program ends while a checkpoint is waited for: the checkpoint signal's promise, the done rule
    h = _harness(trigger_signals=frozenset({SIGUSR1}))
    h.at(1.0, SignalReceived, SIGUSR1)
    h.child_alive = False
    h.at(2.0, ChildExited, 1, None, _o("a"))
    out.append(h)
    h = _harness(every=5.0)
    h.at(5.0, Tick)
    h.child_alive = False
    h.at(6.0, ChildExited, 0, None, _o("a"), True)
    out.append(h)
    # the rules hold at a tick (quiet period over) and a validator runs
    h = _harness(trigger_signals=frozenset({SIGUSR1}), complete=Quiet(2) & CommandRule("check"))
    h.at(1.0, SignalReceived, SIGUSR1)
    h.at(1.5, Observed, _o("f1"))
    h.at(3.5, Tick)
    out.append(h)
    # a timer checkpoint committed while the job signal killed the program (a wrapper): restart
    h = _harness(every=5.0, job_signal=SIGUSR1, complete=Quiet(0))
    h.at(5.0, Tick)
    h.at(6.0, Observed, _o("f1"))
    h.child_alive = False
    h.at(6.5, ChildExited, None, SIGUSR1, _o("f1"))
    h.commit_done(True, "f1")
    out.append(h)
    # a watched commit while the program exits: committed, or the copy raced a change
    for raced in (False, True):
        h = _harness(watch=True, complete=Quiet(0))
        h.at(1.0, Observed, _o("f1"))
        h.child_alive = False
        h.at(1.5, ChildExited, 1, None, _o("f1"))
        h.commit_done(not raced, "f1", changed=raced)
        out.append(h)
    # the checkpoint signal while the tree is killed for the program's own end: its status recorded
    h = _harness(trigger_signals=frozenset({SIGUSR1}))
    h.child_alive = False
    h.at(1.0, ChildExited, 3, None, _o("a"))
    h.at(1.5, SignalReceived, SIGUSR1)
    h.kill_pending = False
    h.at(2.0, TreeGone)
    out.append(h)
    # the request's deadline passes with the checkpoint complete at that tick: committed
    h = _harness(trigger_signals=frozenset({SIGUSR1}), checkpoint_timeout=5.0, complete=Quiet(2))
    h.at(1.0, SignalReceived, SIGUSR1)
    h.at(1.5, Observed, _o("f1"))
    h.at(6.0, Tick)
    out.append(h)
    # --inspect-on-exit while a timer checkpoint is waited for, nothing new: the tree is killed
    h = _harness(every=5.0, inspect_on_exit=frozenset({0}))
    h.at(5.0, Tick)
    h.child_alive = False
    h.at(6.0, ChildExited, 0, None, _o("a"))
    out.append(h)
    # --inspect-on-exit while running, a new checkpoint complete at once: committed
    h = _harness(inspect_on_exit=frozenset({0}), complete=Quiet(0))
    h.child_alive = False
    h.at(1.0, ChildExited, 0, None, _o("f1"))
    out.append(h)
    # the request's deadline passes with the rules holding and a validator to run
    h = _harness(trigger_signals=frozenset({SIGUSR1}), checkpoint_timeout=5.0,
                 complete=Quiet(2) & CommandRule("check"))
    h.at(1.0, SignalReceived, SIGUSR1)
    h.at(1.5, Observed, _o("f1"))
    h.at(6.0, Tick)
    out.append(h)
    # the files of a requested checkpoint changed during the copy: the request stands
    h = _harness(trigger_signals=frozenset({SIGUSR1}), complete=Quiet(0))
    h.at(1.0, SignalReceived, SIGUSR1)
    h.at(1.5, Observed, _o("f1"))
    h.commit_done(False, "f1", changed=True)
    out.append(h)
    # the tree is gone while the last commit still runs
    h = _harness(watch=True, complete=Quiet(0))
    h.at(1.0, Observed, _o("f1"))
    h.child_alive = False
    h.at(1.5, ChildExited, 1, None, _o("f1"))
    h.kill_pending = False
    h.at(1.6, TreeGone)
    h.commit_done(True, "f1")
    out.append(h)
    # a requested checkpoint rejected by its validator while the program runs: asked again
    h = _harness(trigger_signals=frozenset({SIGUSR1}), complete=CommandRule("check"))
    h.at(1.0, SignalReceived, SIGUSR1)
    h.at(2.0, Observed, _o("f1"))
    h.validator_done(False)
    out.append(h)
    # a watched commit fails while evicting: the soft kill is passed on
    h = _harness(watch=True, complete=Quiet(0))
    h.at(1.0, Observed, _o("f1"))
    h.at(2.0, SignalReceived, SIGTERM)
    h.commit_done(False)
    out.append(h)
    # the request timed out (continue), the promise stands; the program finishes (done rule)
    h = _harness(trigger_signals=frozenset({SIGUSR1}), checkpoint_timeout=5.0)
    h.at(1.0, SignalReceived, SIGUSR1)
    h.at(6.0, Tick)
    h.child_alive = False
    h.at(7.0, ChildExited, 0, None, _o("a"), True)
    out.append(h)
    # --inspect-on-exit, nothing new
    h = _harness(inspect_on_exit=frozenset({0}), complete=Quiet(0))
    h.child_alive = False
    h.at(1.0, ChildExited, 0, None, _o("a"))
    out.append(h)
    # signals while a watched checkpoint is validated and the program has exited
    h = _harness(watch=True, complete=CommandRule("check"))
    h.at(1.0, Observed, _o("f1"))
    h.child_alive = False
    h.at(2.0, ChildExited, 1, None, _o("f1"))
    h.at(3.0, SignalReceived, SIGHUP)
    h.at(4.0, SignalReceived, SIGTERM)
    out.append(h)
    # the program's end settled off the loop after the soft kill: the grace runs out meanwhile
    h = _harness()
    h.at(1.0, SignalReceived, SIGTERM)
    h.child_alive = False
    h.settling = (0, None)
    h.at(2.0, ChildGone, 0, None)
    h.at(3.0, SignalReceived, SIGTERM)
    h.at(11.0, Tick)
    h.settled_with(12.0, done=False)
    out.append(h)
    # ... while a watched checkpoint is validated: the validator's answer is held
    h = _harness(watch=True, complete=CommandRule("check"))
    h.at(1.0, Observed, _o("f1"))
    h.child_alive = False
    h.settling = (0, None)
    h.at(2.0, ChildGone, 0, None)
    h.validator_done(True)
    h.settled_with(3.0, done=True)
    out.append(h)
    return out


@pytest.mark.timeout(300)
def test_every_branch_of_the_table_is_taken() -> None:
    """Every branch of the transition table, and every phase each names, is taken: by random
    event sequences from fixed seeds (``random.Random``: what they explore depends on the seeds
    only, not on the Hypothesis release or the Python version; with the loop's rarer answers:
    unasked results, a copy that raced a change, events after the exit; and, in a second pass of
    their own, the program's end settled off the loop) and directed ones for what random
    sequences seldom reach. So the table has no dead entry, and the diagram drawn from it shows
    only what can happen; each transition is checked against the table as it is made
    (Harness.feed)."""
    reached: set[tuple[Phase, type, int, Phase]] = set()
    for settles, seeds in ((False, range(SEEDS)), (True, range(SEEDS, SEEDS + SEEDS // 2))):
        for seed in seeds:
            d = Seeded(seed)
            evict = d.bool()
            s = make_settings(d, evict)
            reached.update(run_sequence(s, d, max_steps=25 if evict else 60, evict=evict, strays=True,
                                        settles=settles).reached)
    for h in _directed():
        reached.update(h.reached)
    every = {(phase, event, i, to) for (phase, event), branches in TABLE.items()
             for i, b in enumerate(branches) for to in b.to}
    missing = sorted(f"{p.value} {e.__name__} [{label(TABLE[(p, e)][i].guard)}] "
                     f"{TABLE[(p, e)][i].action.__name__} -> {to.value}" for p, e, i, to in every - reached)
    assert not missing, "never taken:\n" + "\n".join(missing)
