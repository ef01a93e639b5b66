"""Blocking work off the loop: the commit in a worker thread, the validator as a child process,
the done rule's command.

Functions of the loop's :class:`~supervisor.loop.Supervisor` (``sup``). Each posts its result
back to the core through ``sup._feed`` as an event (``CommitFinished``, ``ValidatorFinished``);
the commit itself is one call, in :func:`start_commit`'s worker.
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

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any

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
    if sup.notify_r < 0:
        sup.notify_r, sup.notify_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        sup.sel.register(sup.notify_r, selectors.EVENT_READ, "commit")
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
        with contextlib.suppress(OSError):
            os.write(sup.notify_w, b"x")

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


def run_sync(sup: Any, argv: list[str]) -> bool:
    try:
        child = process.spawn(argv)
    except ProgramError as exc:
        sup.log.emit("validator_failed", {"error": str(exc)}, level="error", message=str(exc))
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
