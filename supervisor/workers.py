"""Blocking work off the loop: the commit in a worker thread, the validator as a child process,
and what the program's end means (DMTCP's images in a thread, the done rule's commands as child
processes).

Functions of the loop's :class:`~supervisor.loop.Supervisor` (``sup``). Each posts its result
back to the core through ``sup._feed`` as an event (``CommitFinished``, ``ValidatorFinished``,
``ChildExited`` after ``ChildGone``); the commit itself is one call, in :func:`start_commit`'s
worker. Threads post through the notify pipe (:func:`posted` reads what they left); child
processes are reaped by the loop.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import time

from . import core as C
from . import process
from .errors import ProgramError, StoreError
from .rules import View

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    import threading
    from typing import Any, Optional

VALIDATOR_TIMEOUT = 600.0


def start_commit(sup: Any, cmd: C.Commit) -> None:
    if cmd.restart and sup.store.exists() and not cmd.job_signal_deaths:
        # nothing to write: the committed store is what the next start restores
        sup._feed(C.CommitFinished(sup.clock(), True))
        return
    # a final status keeps the last committed files (or none): never the working files, which
    # a finished or crashed program may have left half-written
    final_only = cmd.final_status is not None or cmd.restart
    from .freeze import hold_for_commit
    from .store import CheckpointChanged

    expect, fingerprint = hold_for_commit(sup, final_only or cmd.program_exited)
    if fingerprint is None:
        return  # moved on since the rules looked: the core was told and looked again
    sup.sequence += 1
    state: dict[str, Any] = {"sequence": sup.sequence, "committed_at": time.time(),
                             "program": list(sup.cfg.program)}
    if cmd.final_status is not None:
        state["final_status"] = cmd.final_status
    if cmd.job_signal_deaths:
        state["job_signal_deaths"] = cmd.job_signal_deaths  # the files stay as committed
    if sup.dmtcp is not None:
        state.update(sup.dmtcp.state())
    if cmd.restart and (not sup.store.exists()
                        or (sup.start_state.get("empty") and not sup.core.commits)):
        state["empty"] = True  # a store with no checkpoint: the next start begins from scratch
    state.update(sup.progress)
    _notify_pipe(sup)
    thaw = sup.frozen.thaw if sup.frozen is not None else None


    def work() -> None:
        start = time.monotonic()
        try:
            if final_only:
                res = sup.store.commit_state(state)
            else:
                # the program is gone: its files can be renamed into the store instead of copied
                # (the next start restores them; a failed commit puts them back)
                res = sup.store.commit(state, move=cmd.program_exited, expect=expect,
                                       on_staged=thaw, allow_empty=False)

            result = C.CommitFinished(sup.clock(), True, bytes=res.bytes, seconds=res.seconds,
                                      fingerprint=res.fingerprint or fingerprint)
            if not final_only:
                sup.reference_files = res.files
            if os.environ.get("_CONDOR_CHIRP_CONFIG"):
                from . import chirp  # only on a pool with chirp; never raises, never blocks

                chirp.publish_commit(state["sequence"], state["committed_at"], res.seconds, res.bytes,
                                     log=sup.log.say)

        except CheckpointChanged as exc:
            result = C.CommitFinished(sup.clock(), False, error=str(exc), changed=True)
        except StoreError as exc:
            result = C.CommitFinished(sup.clock(), False, error=str(exc),
                                      seconds=time.monotonic() - start)
        except Exception as exc:  # a bug must not leave the loop waiting forever
            result = C.CommitFinished(sup.clock(), False, error=f"internal error during commit: {exc!r}")
        finally:
            if thaw is not None:
                thaw()  # never leave the program stopped, whatever happened
        sup.commit_result = result
        _notify(sup)

    import threading

    sup.commit_thread = threading.Thread(target=work, name="commit", daemon=True)
    sup.commit_thread.start()


def start_validator(sup: Any) -> None:
    assert sup.complete_rule is not None
    import shlex

    commands = sup.complete_rule.commands()
    argv = shlex.split(commands[0]) + list(sup.cfg.checkpoint)
    try:
        sup.validator = process.spawn(argv, setsid=True)
        sup.validator_deadline = sup.clock() + VALIDATOR_TIMEOUT
    except ProgramError as exc:
        sup.log.emit("validator_failed", {"error": str(exc)}, level="error", message=str(exc))
        sup._feed(C.ValidatorFinished(sup.clock(), False))


def _notify_pipe(sup: Any) -> None:
    """The pipe through which worker threads wake the loop (made at the first use)."""
    if sup.notify_r < 0:
        sup.notify_r, sup.notify_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        sup.sel.register(sup.notify_r, selectors.EVENT_READ, "notify")


def _notify(sup: Any) -> None:
    with contextlib.suppress(OSError):
        os.write(sup.notify_w, b"x")


def posted(sup: Any) -> list[C.Event]:
    """The events worker threads left for the loop (it was woken through the notify pipe)."""
    with contextlib.suppress(OSError):
        os.read(sup.notify_r, 64)
    out: list[C.Event] = []
    if sup.commit_result is not None:
        out.append(sup.commit_result)
        sup.commit_result = None
        sup.commit_thread = None
    settle: Optional[Settle] = sup.settle
    if settle is not None and settle.thread is not None and settle.waited:
        settle.thread.join()
        settle.thread = None
        out.extend(_after_images(sup, settle))
    return out


def helpers(sup: Any) -> list[int]:
    """Our own processes that are not the program's: the validator, the done rule's command."""
    pids = [sup.validator.pid] if sup.validator is not None else []
    if sup.settle is not None and sup.settle.proc is not None:
        pids.append(sup.settle.proc.pid)
    return pids


def join(sup: Any) -> None:
    """Wait for the worker threads (the teardown)."""
    for thread in (sup.commit_thread, sup.settle.thread if sup.settle is not None else None):
        if thread is not None:
            thread.join()


# ---------------------------------------------------------------- the program's end, settled


class Settle:
    """The program's end being settled off the loop: DMTCP's images (a thread), then the done
    rule's commands (child processes the loop reaps, one after the other)."""

    def __init__(self, code: Optional[int], signum: Optional[int]) -> None:
        self.code, self.signum = code, signum
        self.lost = False  # --dmtcp: DMTCP stopped the program but wrote no complete checkpoint
        self.obs = C.Observation()
        self.commands: list[str] = []  # the done rule's commands still to run
        self.proc: Optional[process.Child] = None  # the one running
        self.deadline: Optional[float] = None  # VALIDATOR_TIMEOUT for the command running
        self.thread: Optional[threading.Thread] = None  # waiting for DMTCP's images
        self.waited = False  # that wait is over
        self.stopped = False  # the core said stop (the kill grace ran out): not done
        self.gone = False  # ChildGone was posted


def child_reaped(sup: Any, code: Optional[int], signum: Optional[int]) -> list[C.Event]:
    """The program's main process was reaped: its ChildExited, or first ChildGone when what its
    end means needs a blocking fact (DMTCP's images, the done rule's command), found off the loop."""
    settle = Settle(code, signum)
    if sup.dmtcp is not None and sup.dmtcp.requested:  # the images may still be written
        import threading

        _notify_pipe(sup)

        def work() -> None:
            try:
                settle.lost = not sup.dmtcp.wait_complete(
                    lambda: any(not process.is_zombie(p) for p in process.descendants()))
            except Exception as exc:  # a bug must not leave the loop waiting forever
                sup.log.say(f"internal error while waiting for DMTCP's images: {exc!r}")
                settle.lost = True
            settle.waited = True
            _notify(sup)

        settle.thread = threading.Thread(target=work, name="dmtcp-wait", daemon=True)
        sup.settle = settle
        settle.thread.start()
        return _gone(sup, settle)
    return _after_images(sup, settle)


def _gone(sup: Any, settle: Settle) -> list[C.Event]:
    if settle.gone:
        return []
    settle.gone = True
    sup.settle = settle
    return [C.ChildGone(sup.clock(), settle.code, settle.signum)]


def _after_images(sup: Any, settle: Settle) -> list[C.Event]:
    """The images are there (or were not asked for): look, then the done rule (its cheap parts
    first, its commands only when those hold)."""
    if settle.lost:  # never a finished program: reported as killed
        settle.code, settle.signum = None, signal.SIGKILL
    settle.obs = obs = sup._observe()
    rule = sup.done_rule
    if rule is None:
        return _settled(sup, settle, None)
    if settle.lost or settle.stopped:
        return _settled(sup, settle, False)
    view = View(now=sup.clock(), changed=False, last_change_at=None,
                markers_present=frozenset(p for p, m in obs.markers if m is not None),
                log_matches_ever=obs.log_counts, program_exited=True, for_done=True)
    if not rule.holds(view):
        return _settled(sup, settle, False)
    settle.commands = list(rule.commands())
    if not settle.commands:
        return _settled(sup, settle, True)
    return _gone(sup, settle) + _next_command(sup, settle)


def _next_command(sup: Any, settle: Settle) -> list[C.Event]:
    import shlex

    argv = shlex.split(settle.commands.pop(0)) + list(sup.cfg.checkpoint)
    try:
        settle.proc = process.spawn(argv)
    except ProgramError as exc:
        sup.log.emit("validator_failed", {"error": str(exc)}, level="error", message=str(exc))
        return _settled(sup, settle, False)
    settle.deadline = sup.clock() + VALIDATOR_TIMEOUT
    return []


def done_command_reaped(sup: Any, code: Optional[int]) -> list[C.Event]:
    """The done rule's command ended: the next one, or the program's ChildExited."""
    settle: Settle = sup.settle
    assert settle.proc is not None
    settle.proc.close()
    settle.proc = None
    ok = code == 0 and not settle.stopped
    sup.log.emit("done_command_finished", {"ok": ok, "code": code}, level="debug")
    if ok and settle.commands:
        return _next_command(sup, settle)
    return _settled(sup, settle, ok)


def _settled(sup: Any, settle: Settle, done: Optional[bool]) -> list[C.Event]:
    sup.settle = None
    return [C.ChildExited(sup.clock(), settle.code, settle.signum, settle.obs, done)]


def stop_settling(sup: Any) -> None:
    """The core's StopSettling: kill the done rule's command (by its pidfd); not done."""
    settle: Optional[Settle] = sup.settle
    if settle is None:
        return
    settle.stopped = True
    settle.commands = []
    if settle.proc is not None:
        settle.proc.send(signal.SIGKILL)


def settle_deadline(sup: Any) -> Optional[float]:
    settle: Optional[Settle] = sup.settle
    return settle.deadline if settle is not None and settle.proc is not None else None  # (None once killed)


def check_settle_timeout(sup: Any, now: float) -> None:
    """A done rule's command that runs longer than VALIDATOR_TIMEOUT is killed (not done)."""
    settle: Optional[Settle] = sup.settle
    deadline = settle_deadline(sup)
    if settle is not None and settle.proc is not None and deadline is not None and now >= deadline:
        settle.proc.send(signal.SIGKILL)
        settle.deadline = None  # once; the loop reaps it
