"""Processes: spawn PROGRAM in its own session, be a subreaper, find and kill the whole tree.

Only the standard library: psutil costs ~20 ms to import and is needed only by the ``closed``
completion rule, so the tree is read from ``/proc`` here.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from collections.abc import Iterable, Sequence

from . import exitstatus
from .errors import ProgramNotExecutable, ProgramNotFound
from .records import record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Optional

PR_SET_CHILD_SUBREAPER = 36
PR_SET_DUMPABLE = 4

# Python sets these to SIG_IGN at start-up, so their disposition at our own start is lost.
# HTCondor starts jobs with default dispositions, so the program gets the default for them.
PYTHON_IGNORED = frozenset(s for s in (getattr(signal, "SIGPIPE", None), getattr(signal, "SIGXFSZ", None)) if s)


def _prctl(option: int, arg: int) -> int:
    """``prctl(option, arg, 0, 0, 0)``; OSError or AttributeError where there is no prctl.

    Every run calls it (the subreaper is set before the program starts), so it goes through
    CPython's ``_ctypes`` directly: ``import ctypes`` builds its type classes, ~1.4 ms of the
    start-up target of 30 ms. ``_ctypes.call_function`` passes Python ints as C ints, exactly as
    ``ctypes.CDLL(None).prctl(...)`` does; where an interpreter lacks it, ctypes is used.
    """
    try:
        import _ctypes

        call, fn = _ctypes.call_function, _ctypes.dlsym(_ctypes.dlopen(None), "prctl")  # type: ignore[arg-type]
    except (ImportError, AttributeError):  # pragma: no cover - not CPython
        import ctypes

        return int(ctypes.CDLL(None).prctl(option, arg, 0, 0, 0))
    return int(call(fn, (option, arg, 0, 0, 0)))


def set_subreaper() -> bool:
    """Make orphaned descendants reparent to us (Linux 3.4+). Returns False where unsupported."""
    try:
        rc = _prctl(PR_SET_CHILD_SUBREAPER, 1)
    except (OSError, AttributeError):
        return False
    return rc == 0


def set_not_dumpable() -> None:
    """No core dump for this process (so a death by signal carries no core-dump bit)."""
    with contextlib.suppress(OSError, AttributeError):
        _prctl(PR_SET_DUMPABLE, 0)


@record
class Child:
    pid: int
    pidfd: Optional[int]

    def send(self, signum: int) -> bool:
        """Signal this process only; never a recycled PID when a pidfd is held."""
        try:
            if self.pidfd is not None and hasattr(signal, "pidfd_send_signal"):
                signal.pidfd_send_signal(self.pidfd, signum)
            else:
                os.kill(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def send_group(self, signum: int) -> bool:
        """Signal the child's process group (its session: it is the leader)."""
        try:
            os.killpg(self.pid, signum)
        except (ProcessLookupError, PermissionError):
            return self.send(signum)
        return True

    def close(self) -> None:
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
            self.pidfd = None


def spawn(
    argv: Sequence[str],
    *,
    env: Optional[dict[str, str]] = None,
    setsid: bool = True,
    stdout: Optional[int] = None,
    stderr: Optional[int] = None,
    close_fds: Iterable[int] = (),
    exact: bool = False,
) -> Child:
    """Start ``argv`` (searched in PATH) in a new session with our signal mask and defaults.

    Raises ProgramNotFound (127) or ProgramNotExecutable (126) with a one-line message.
    ``exact``: fork and exec, so that the program's ignored set is exactly ours (glibc's
    posix_spawn leaves its internal signals 32 and 33 ignored); use it only while no other
    thread runs. Otherwise posix_spawn.
    """
    if not argv or not argv[0]:
        raise ProgramNotFound("no PROGRAM given (or an empty name): put it after --, e.g. "
                              "ckpt-supervisor run -- ./sim")

    file_actions: list[tuple[int, ...]] = []
    if stdout is not None:
        file_actions.append((os.POSIX_SPAWN_DUP2, stdout, 1))
    if stderr is not None:
        file_actions.append((os.POSIX_SPAWN_DUP2, stderr, 2))
    for fd in close_fds:
        file_actions.append((os.POSIX_SPAWN_CLOSE, fd))
    program = argv[0]
    try:
        if exact:
            pid = _fork_exec(list(argv), os.environ if env is None else env, setsid, stdout, stderr)
        else:
            pid = os.posix_spawnp(
                program, list(argv), os.environ if env is None else env,
                setsid=setsid, setsigdef=PYTHON_IGNORED | handled_signals(), file_actions=file_actions or None,
            )
    except FileNotFoundError as exc:
        raise ProgramNotFound(f"{program}: not found (check the path, or that it is in PATH)", cause=exc) from exc
    except PermissionError as exc:
        raise ProgramNotExecutable(f"{program}: permission denied (is it executable? chmod +x {program})",
                                   cause=exc) from exc
    except OSError as exc:
        if exc.errno in (errno.ENOEXEC, errno.EISDIR, errno.ENOTDIR, errno.ELOOP, errno.ETXTBSY):
            raise ProgramNotExecutable(f"{program}: cannot be executed ({os.strerror(exc.errno or 0)})",
                                       cause=exc) from exc
        if exc.errno == errno.ENAMETOOLONG:
            raise ProgramNotFound(f"{program}: name too long", cause=exc) from exc
        raise
    pidfd: Optional[int] = None
    if hasattr(os, "pidfd_open"):
        with contextlib.suppress(OSError):
            pidfd = os.pidfd_open(pid)
    return Child(pid, pidfd)


def _fork_exec(argv: list[str], env: Any, setsid: bool, stdout: Optional[int], stderr: Optional[int]) -> int:
    """fork + exec with an error pipe: the exec's errno comes back as an OSError here."""
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # the child: only simple calls until exec
        try:
            with contextlib.suppress(ValueError, OSError):
                signal.set_wakeup_fd(-1)  # a signal now must not look like one sent to us
            for sig in PYTHON_IGNORED:
                signal.signal(sig, signal.SIG_DFL)
            if setsid:
                os.setsid()
            if stdout is not None:
                os.dup2(stdout, 1)
            if stderr is not None:
                os.dup2(stderr, 2)
            os.execvpe(argv[0], argv, env)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.write(err_w, str(exc.errno or errno.ENOEXEC).encode())
        except BaseException:
            pass
        os._exit(127)
    os.close(err_w)
    try:
        data = b""
        while True:
            try:
                chunk = os.read(err_r, 64)
            except InterruptedError:
                continue
            if not chunk:
                break
            data += chunk
    finally:
        os.close(err_r)
    if data:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        code = int(data)
        raise OSError(code, os.strerror(code), argv[0])
    return pid


_HANDLED: set[int] = set()


def handled_signals() -> frozenset[int]:
    """Signals the supervisor installed handlers for (reset to default in the program anyway)."""
    return frozenset(_HANDLED)


def note_handled(signums: Iterable[int]) -> None:
    _HANDLED.update(signums)


def status_of(wait_status: int) -> tuple[Optional[int], Optional[int]]:
    """(exit code, None) or (None, signal number) from a raw wait status."""
    if os.WIFSIGNALED(wait_status):
        return None, os.WTERMSIG(wait_status)
    if os.WIFEXITED(wait_status):
        return os.WEXITSTATUS(wait_status), None
    return None, None


def reap() -> list[tuple[int, int]]:
    """Reap every finished child (ours and re-parented orphans): [(pid, raw status)]."""
    out: list[tuple[int, int]] = []
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return out
        except InterruptedError:
            continue
        if pid == 0:
            return out
        out.append((pid, status))


def _read_ppids() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return children
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        # the command name may contain spaces and parentheses: split after the last ')'
        rest = data[data.rfind(b")") + 2:].split()
        if len(rest) < 2:
            continue
        children.setdefault(int(rest[1]), []).append(int(name))
    return children


def _children_files(pid: int) -> Optional[list[int]]:
    """Direct children from /proc/PID/task/*/children (CONFIG_PROC_CHILDREN); None if unavailable."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []
    except OSError:
        return None
    out: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(p) for p in f.read().split())
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread just ended
            return None  # the kernel has no children files
        except OSError:
            continue
    return out


def descendants(root: Optional[int] = None, exclude: Iterable[int] = ()) -> list[int]:
    """PIDs below ``root`` (default: this process), zombies included, minus ``exclude`` subtrees.

    Walks only our own tree through the kernel's children files; scans all of /proc where the
    kernel lacks them.
    """
    root = os.getpid() if root is None else root
    skip = set(exclude)
    found: list[int] = []
    stack = [root]
    while stack:
        kids = _children_files(stack.pop())
        if kids is None:
            break
        for child in kids:
            if child not in skip:
                found.append(child)
                stack.append(child)
    else:
        return found
    children = _read_ppids()

    out: list[int] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child in skip:
                continue
            out.append(child)
            stack.append(child)
    return out


def is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return True
    return data[data.rfind(b")") + 2:][:1] in (b"Z", b"X")


def kill_all(pids: Iterable[int], signum: int = signal.SIGKILL) -> int:
    """Send ``signum`` to each living pid; returns how many were signalled."""
    n = 0
    for pid in pids:
        if is_zombie(pid):
            continue
        try:
            os.kill(pid, signum)
            n += 1
        except (ProcessLookupError, PermissionError):
            pass
    return n


def die_by_signal(signum: int) -> None:
    """Report a checkpoint by signal: terminate this process with ``signum``, no core dump.

    Never returns; falls back to ``os._exit(128 + signum)`` if the signal does not kill us.
    """
    set_not_dumpable()
    with contextlib.suppress(OSError, ValueError):
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(OSError, ValueError):
        signal.set_wakeup_fd(-1)
    signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    os.kill(os.getpid(), signum)
    # A stop signal or an ignored one would not kill us: make sure we never return.
    os._exit(exitstatus.SIGNAL_BASE + signum)
