"""Signal names and numbers, as HTCondor and users write them."""

from __future__ import annotations

import signal

from .errors import ConfigError

UNCATCHABLE = frozenset({signal.SIGKILL, signal.SIGSTOP})
# Signals that cannot serve as a role (trigger, job, kill, exit signal): the supervisor needs
# SIGCHLD itself, and 32/33 belong to the C library's threads.
RESERVED = frozenset({signal.SIGCHLD, 32, 33})
# Signals whose default action does not terminate a process: they cannot report a checkpoint.
NON_FATAL = frozenset({signal.SIGCHLD, signal.SIGCONT, signal.SIGURG, signal.SIGWINCH, signal.SIGSTOP,
                       signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
# Signals the supervisor never passes on: uncatchable, its own child notification, and the
# terminal stop family that would stop the supervisor itself.
NOT_FORWARDED = frozenset({signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD})


def parse_signal(value: str | int, *, what: str = "signal", catchable: bool = True) -> int:
    """Parse ``SIGUSR2``, ``USR2``, ``usr2`` or ``12`` into a signal number.

    Raises ConfigError naming the option (``what``) when the value is not a signal, or when
    ``catchable`` is required and the signal cannot be caught (SIGKILL, SIGSTOP).
    """
    num: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        num = value
    elif isinstance(value, str):
        text = value.strip().strip('"').upper()
        if text.isdigit():
            num = int(text)
        else:
            if not text.startswith("SIG"):
                text = "SIG" + text
            member = getattr(signal.Signals, text, None) if text.isidentifier() else None
            if isinstance(member, signal.Signals):
                num = int(member)
    if num is None or not 1 <= num < signal.NSIG:
        raise ConfigError(
            f"{what}: {value!r} is not a signal; use a name such as SIGUSR2 or a number 1-{signal.NSIG - 1}"
        )
    if catchable and num in UNCATCHABLE:
        raise ConfigError(
            f"{what}: {signal_name(num)} cannot be caught by a program; choose a catchable signal such as SIGUSR2"
        )
    if catchable and num in RESERVED:
        raise ConfigError(f"{what}: {signal_name(num)} is reserved (the supervisor or the C library needs it); "
                          "choose another signal such as SIGUSR2")
    return num


def parse_fatal_signal(value: str | int, *, what: str) -> int:
    """A signal whose default action kills a process (for reporting a checkpoint by signal)."""
    num = parse_signal(value, what=what)
    if num in NON_FATAL:
        raise ConfigError(f"{what}: {signal_name(num)} does not terminate a process by default, so it cannot "
                          "report a checkpoint; choose one such as SIGUSR2")
    return num



def signal_name(num: int) -> str:
    try:
        return signal.Signals(num).name
    except ValueError:
        return f"SIG{num}"
