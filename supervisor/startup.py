"""The supervisor's start and its very end, around the loop: what the store says, the plan.

Functions of the loop's :class:`~supervisor.loop.Supervisor` (``sup``), kept out of it so that
the loop is only the loop: the settings the user should know about, the store probed, verified and
restored (or a program that had already finished reported), working files left by a run that
ended without a checkpoint set aside; and a checkpoint signal that lands while the program's own
end is being reported.
"""

from __future__ import annotations

import os
import signal
import time

from . import core as C
from .errors import CorruptStore, StoreError, SupervisorError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)

if TYPE_CHECKING:
    from typing import Any, Optional, Union

    from .loop import Outcome


def prepare(sup: Any) -> Union[Outcome, tuple[bool, int]]:
    """Probe, verify and restore the store and decide how to start: ``(resume, job signal deaths
    recorded)``, or the loop's Outcome when the job ends without starting the program."""
    from .loop import Outcome

    probe_store(sup)
    state = open_store(sup)
    sup.start_state = dict(state or {})
    value = sup.start_state.get("job_signal_deaths")
    deaths = value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
    if state is None:
        warn_working_files_without_store(sup)
    plan = C.plan_start(state)
    if plan.exit_now is not None:
        sup.log.emit("finished_earlier", {"status": plan.exit_now}, message=plan.reason)
        return Outcome(plan.exit_now, reason=plan.reason)
    if plan.set_aside_working:
        set_aside_working_files(sup)
    if not plan.resume:
        return False, deaths
    from .progress import check_at_start

    stop = check_at_start(sup, state or {})
    if stop is not None:
        return stop  # type: ignore[no-any-return]
    result = sup.store.restore()
    sup.reference_files = result.files
    sup.sequence = int((state or {}).get("sequence", 0))
    sup.log.emit("restored", {"sequence": sup.sequence, "bytes": result.bytes,
                              "seconds": round(result.seconds, 6), "files": result.files})
    return True, deaths


def say_settings(sup: Any) -> None:
    """What the user should know before the program starts: ignored settings, the timing."""
    cfg = sup.cfg
    for text in cfg.warnings:
        sup.log.emit("config_warning", {"warning": text}, level="warning", message=text)
    if cfg.timing is not None:
        t = cfg.timing
        sup.log.emit("timing", {"vacate": t.vacate, "source": t.source, "kill_grace": t.kill_grace,
                                "kill_grace_derived": t.kill_grace_derived,
                                "promise_budget": t.promise_budget, "upload_reserve": t.upload_reserve},
                     message=t.describe(checkpointing=bool(cfg.checkpoint)))


def probe_store(sup: Any) -> None:
    """The store's directory must take new files: find out now, not at the first commit."""
    store = os.path.join(str(sup.sandbox), sup.cfg.store)
    where = os.path.dirname(os.path.abspath(store))
    probe = os.path.join(where, f".ckpt-probe-{os.getpid()}")
    try:
        fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise StoreError(f"--store {sup.cfg.store}: cannot create files in {where} ({exc.strerror}); "
                         "no checkpoint could be committed there: make the sandbox writable or give "
                         "another --store") from None


def open_store(sup: Any) -> Optional[dict[str, Any]]:
    """Clean leftovers, verify the committed store, restore it: returns its state or None."""
    from .store import Store

    store_path = sup.sandbox / sup.cfg.store
    if sup.cfg.dmtcp:  # the program runs in DMTCP's stable work directory: paths live there
        from . import dmtcp

        sup.dmtcp = dmtcp.Session(sup.cfg, sup.log.emit)
        try:
            kept = Store(sup.sandbox, store_path, [dmtcp.IMAGES]).read_state()
        except SupervisorError:
            kept = None
        sup.sandbox = sup.sandbox.__class__(sup.dmtcp.prepare(kept))
    sup.store = Store(sup.sandbox, store_path, list(sup.cfg.checkpoint))
    for leftover in sup.store.cleanup_staging():
        sup.log.emit("staging_cleaned", {"path": str(leftover)})
    if not sup.store.exists():
        return None
    try:
        state: dict[str, Any] = sup.store.verify()
    except CorruptStore as exc:
        aside = sup.store.quarantine()
        sup.log.emit("store_corrupt", {"error": str(exc), "moved_to": str(aside)}, level="warning",
                     message=f"committed store does not verify ({exc}); moved aside to {aside}; "
                             "starting from scratch")
        return None
    return state


def warn_working_files_without_store(sup: Any) -> None:
    """A job that ran before but has no committed store: its checkpoints never came back."""
    starts = sup.cfg.job_ad.get("num_job_starts")
    if not isinstance(starts, int) or starts <= 0:
        return
    present = [p for p in sup.cfg.checkpoint if os.path.lexists(os.path.join(str(sup.sandbox), p))]
    if present:
        sup.log.emit("store_missing", {"num_job_starts": starts, "present": present}, level="warning",
                     message=f"this job ran {starts} time(s) before, and {', '.join(present)} exist, but "
                             f"there is no committed store {sup.cfg.store}: is {sup.cfg.store} listed in "
                             "transfer_checkpoint_files? The working files are not trusted; starting "
                             "from scratch")


def set_aside_working_files(sup: Any) -> None:
    """The last run here ended without a checkpoint (our kill may have torn its files): its
    working checkpoint files are not a checkpoint, so the fresh start must not find them."""
    moved = []
    for rel in sup.cfg.checkpoint:
        path = os.path.join(str(sup.sandbox), rel)
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
        sup.log.emit("working_set_aside", {"paths": moved}, level="warning",
                     message=f"{', '.join(moved)} left by the last run, which ended without a checkpoint "
                             "(maybe torn), moved aside to *.stale: starting from scratch")


def watch_late_signals(sup: Any) -> Optional[list[int]]:
    """HTCondor's checkpoint signal may land after the core planned the program's own exit
    (while we tear down and return): the checkpoint status is owed all the same (rule 8). When
    it is owed, the trigger signals are blocked from here on (exit discards them) and those
    already read are returned; :func:`settle_late_signals` looks at the pending ones as late as
    it can, after the teardown. None: nothing is owed."""
    core = getattr(sup, "core", None)
    if core is None or sup.store is None or not core.owed_after_exit():
        return None
    triggers = set(sup.cfg.trigger_signal)
    signal.pthread_sigmask(signal.SIG_BLOCK, triggers)
    return [ev.signum for ev in sup._read_signals() if ev.signum in triggers]


def settle_late_signals(sup: Any, outcome: Outcome, seen: Optional[list[int]]) -> Outcome:
    """The last look before we exit (the teardown is over): a trigger signal read, or pending
    (blocked since :func:`watch_late_signals`), means the program's status is recorded in the
    store as for a signal seen in time, and the checkpoint status is reported."""
    from .loop import Outcome

    if seen is None:
        return outcome
    cfg = sup.cfg
    core = sup.core
    triggers = set(cfg.trigger_signal)
    late = list(seen) + sorted(triggers & set(signal.sigpending()))
    if not late:
        return outcome
    sup.sequence += 1
    state: dict[str, Any] = {"sequence": sup.sequence, "committed_at": time.time(),
                             "program": list(cfg.program), "final_status": outcome.status}
    try:
        sup.store.commit_state(state)
    except StoreError as exc:
        sup.log.emit("commit_failed", {"error": str(exc)}, level="error", message=str(exc))
        return outcome
    plan = core.checkpoint_status()
    sup.log.emit("final_status_recorded", {"status": outcome.status, "late": True},
                 message=f"HTCondor's checkpoint signal {late[0]} came as the program's end ({outcome.status}) "
                         "was being reported: recording that status and reporting the checkpoint status")
    return Outcome(plan.status, plan.by_signal, "checkpoint signal during the exit: final status recorded")
