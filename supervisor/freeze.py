"""Hold the program's process tree still (SIGSTOP ... SIGCONT) while its checkpoint is copied.

Why: a program that rewrites its checkpoint files in place can start on the next step while the
store copies the current one; the copy then holds files (or parts of one file) of two steps, and
their checksums verify. Stopping every process of the tree for the copy makes the copy a
snapshot of one instant; the store then checks that this instant is the one the completion
rules approved (``Store.commit(expect=...)``), and that nothing changed while it copied.

Rules kept here:

* Every process we stopped is continued, whatever happens: ``thaw()`` is idempotent and
  thread-safe, and the loop calls it in ``finally`` clauses. A process that was already stopped
  before (by the user, by a passed-on SIGTSTP) is left stopped: it is not ours to continue.
* Signals for the program that arrive while it is held are not lost: ordinary signals are sent
  at once and stay pending in the kernel until SIGCONT; a stop signal (SIGSTOP, SIGTSTP,
  SIGTTIN, SIGTTOU) or SIGCONT is held back and sent after the thaw, because the kernel discards
  a pending stop signal when SIGCONT is sent (and the reverse). SIGKILL needs no help: it ends a
  stopped process, so an eviction's kill at the end of the grace still works.
* A PID is continued only if it is still the process we stopped (its start time is compared), so
  a recycled PID is never signalled.
* Waiting for the stop is bounded: a process in uninterruptible sleep (state D) stops when its
  system call returns; after ``timeout`` the copy goes ahead, and the store's after-copy
  fingerprint check catches a write that slipped through.

If the supervisor itself is SIGKILLed while the tree is held, the tree stays stopped until
HTCondor kills the whole job (which it does whenever it kills the supervisor that way).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterable

from . import process

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Callable, Optional

STOP_SIGNALS = frozenset(int(s) for s in (signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU))
STOP_WAIT = 1.0  # seconds to wait for every process to be stopped


def _stat(pid: int) -> Optional[tuple[str, int]]:
    """(state letter, start time in ticks) of ``pid``, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data[data.rfind(b")") + 2:].split()
    try:
        return rest[0].decode(), int(rest[19])
    except (IndexError, ValueError):
        return None


class Freeze:
    """One hold of the tree below this process (minus ``exclude``): ``stop()``, then ``thaw()``."""

    def __init__(self, send: Callable[[int], None], exclude: Iterable[int] = ()) -> None:
        self._send = send  # sends a held-back signal to the program, as the loop would have
        self._exclude = list(exclude)
        self._lock = threading.Lock()
        self._stopped: dict[int, int] = {}  # pid -> start time, for the ones we stopped
        self._held: list[int] = []
        self.active = False
        self.seconds = 0.0  # how long the tree was held
        self._t0 = 0.0

    def stop(self, timeout: float = STOP_WAIT) -> bool:
        """SIGSTOP every process of the tree and wait until each is stopped (or gone).

        Returns True when every process was seen stopped within ``timeout``.
        """
        with self._lock:
            self.active = True
            self._t0 = time.monotonic()
            before: dict[int, str] = {}
            for _round in range(50):  # a process may fork before its SIGSTOP lands
                new = [p for p in process.descendants(exclude=self._exclude)
                       if p not in self._stopped and p not in before]
                if not new:
                    break
                for pid in new:
                    st = _stat(pid)
                    if st is None:
                        continue
                    state, start = st
                    if state in ("T", "t", "Z", "X"):
                        before[pid] = state  # stopped by someone else, or dead: not ours
                        continue
                    try:
                        os.kill(pid, signal.SIGSTOP)
                    except (ProcessLookupError, PermissionError):
                        continue
                    self._stopped[pid] = start
            deadline = time.monotonic() + timeout
            pending = set(self._stopped)
            while pending:
                for pid in list(pending):
                    st = _stat(pid)
                    if st is None or st[0] in ("T", "t", "Z", "X"):
                        pending.discard(pid)
                if not pending or time.monotonic() > deadline:
                    break
                time.sleep(0.0005)
            return not pending

    def hold(self, signum: int) -> bool:
        """The loop is about to send ``signum`` to the program: True if it is held back until
        the thaw (stop signals and SIGCONT), False if the loop should send it now."""
        with self._lock:
            if not self.active or (signum not in STOP_SIGNALS and signum != signal.SIGCONT):
                return False
            self._held.append(signum)
            return True

    def thaw(self) -> None:
        """SIGCONT every process we stopped (still the same process), then send held signals."""
        with self._lock:
            if not self.active:
                return
            self.active = False
            for pid, start in self._stopped.items():
                st = _stat(pid)
                if st is None or st[1] != start:
                    continue  # gone, or the PID was recycled
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGCONT)
            self._stopped.clear()
            held, self._held = self._held, []
            self.seconds = time.monotonic() - self._t0
        for signum in held:
            with contextlib.suppress(OSError):
                self._send(signum)


def open_for_writing(paths: Iterable[str], exclude: Iterable[int] = ()) -> bool:
    """Whether a process of our tree has one of ``paths`` open for writing (from /proc)."""
    wanted = {os.path.realpath(p) for p in paths}
    for pid in process.descendants(exclude=exclude):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") not in wanted:
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    flags = next((int(ln.split()[1], 8) for ln in f if ln.startswith("flags:")), 0)
            except (OSError, ValueError):
                continue
            if flags & (os.O_WRONLY | os.O_RDWR):
                return True
    return False


def _marker_not_last(sup: Any, markers: list[str], held: bool) -> bool:
    """Was a checkpoint file written after the marker (its time may still look no newer), or,
    with the tree held, is a marker open for writing (truncated, not yet written)?"""
    if held and open_for_writing(markers, exclude=[sup.validator.pid] if sup.validator else []):
        return True
    if sup.inotify is None:
        return False  # polling: only the file times tell the order
    sup.inotify.drain()  # every event up to the hold; nothing is lost: what they changed is in `now`
    sup._watch_new_dirs()
    return bool(sup.inotify.written_after(markers, [str(sup.sandbox / p) for p in sup.cfg.checkpoint]))


def hold_for_commit(sup: Any, skip: bool) -> tuple[Any, Any]:
    """Before a commit of the working files: hold the tree still (``--freeze``, default on) and
    check that the files are still the ones the completion rules approved.

    ``sup`` is the loop's Supervisor. Returns ``(expect, fingerprint)``: the fingerprint the
    store must find before and after its copy, and the one now; ``(None, None)`` when the files
    moved on since the rules looked, or a marker file is open for writing in the held tree (the
    program was stopped between truncating and writing it). Then the core has been told (``CommitFinished(changed)``)
    and, while the tree is held, has looked again: if what is there now is complete, the commit
    of it has started (held still until copied); otherwise the tree was continued.
    """
    from . import core as C

    if skip:  # a final status, or the program has exited: nothing can move under the copy
        return None, sup.store.fingerprint()
    approved = sup.core.obs.fingerprint
    mine = False
    if sup.cfg.freeze and (sup.frozen is None or not sup.frozen.active):
        exclude = [sup.validator.pid] if sup.validator is not None else []
        sup.frozen = Freeze(lambda signum: sup._send(C.SendSignal(signum)), exclude)
        sup.frozen.stop()
        mine = True
    now = sup.store.fingerprint()
    markers = [str(sup.sandbox / m) for r in (sup.complete_rule,) if r is not None for m in r.markers()]
    held = sup.frozen is not None and sup.frozen.active
    if (approved is None or now == approved) and not (markers and _marker_not_last(sup, markers, held)):
        return now, now
    sup._feed(C.CommitFinished(
        sup.clock(), False, changed=True,
        error="the checkpoint files changed after the completion rules looked; not committed"))
    if mine and sup.core.observing:
        # look again while the tree is held: what is there now cannot change under the copy
        sup._feed(C.Observed(sup.clock(), sup._observe()))
    if mine and sup.commit_thread is None:
        sup.frozen.thaw()
    return None, None
