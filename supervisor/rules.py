"""Completion rules ("is this checkpoint complete?") and done rules ("has the program finished?").

Each rule is a small object whose settings are checked at construction (tenacity's stop/wait
style). Rules combine with ``&`` (all must hold) and ``|`` (any may hold). They are pure: they
read a :class:`View`, a snapshot of facts that the I/O loop gathered and the decision core
(``supervisor.core``) put together with its baselines. A rule never touches the file system.

Syntax on the command line (``--complete-when`` / ``--done-when``)::

    quiet=SECONDS   no size or mtime change in any checkpoint path for that long (default quiet=2)
    marker=PATH     PATH was created or updated after the trigger (done: PATH exists)
    log=REGEX       a line of the program's stdout/stderr matched after the trigger (done: ever)
    command=CMD     CMD, given the checkpoint paths as arguments, exits 0
    closed          no process of the program's tree holds a checkpoint path open for writing
    exit            the program exited by itself
"""

from __future__ import annotations

from .errors import ConfigError
from .records import field, record

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Callable, Optional, Union

DEFAULT_QUIET = 2.0


@record(frozen=True)
class View:
    """What the core knows when it asks a rule; every time is on the supervisor's monotonic clock."""

    now: float
    changed: bool  # checkpoint paths changed since the baseline (request or last commit)
    last_change_at: Optional[float]  # when the core last saw them change (None: never)
    markers_changed: frozenset[str] = frozenset()  # markers created/updated since the baseline
    markers_present: frozenset[str] = frozenset()
    log_matches: tuple[tuple[str, int], ...] = ()  # (pattern, matches since the baseline)
    log_matches_ever: tuple[tuple[str, int], ...] = ()
    open_for_write: Optional[bool] = None  # None: not measured
    program_exited: bool = False
    for_done: bool = False  # evaluated as a done rule (marker exists, log ever matched)


class Rule:
    """Base class: ``holds(view)`` and ``deadline(view)`` (the time it may start to hold)."""

    #: facts the I/O loop must gather for this rule: "markers", "log", "open_files", "command"
    needs: frozenset[str] = frozenset()

    def holds(self, view: View) -> bool:
        raise NotImplementedError

    def deadline(self, view: View) -> Optional[float]:
        return None

    def markers(self) -> tuple[str, ...]:
        return ()

    def patterns(self) -> tuple[str, ...]:
        return ()

    def commands(self) -> tuple[str, ...]:
        return ()

    def names(self) -> tuple[str, ...]:
        return (str(self),)

    def __and__(self, other: RuleLike) -> AllOf:
        return AllOf((self, as_rule(other)))

    def __or__(self, other: RuleLike) -> AnyOf:
        return AnyOf((self, as_rule(other)))


if TYPE_CHECKING:
    RuleLike = Union[Rule, Callable[[View], bool]]


@record(frozen=True)
class _Func(Rule):
    func: Callable[[View], bool]

    def holds(self, view: View) -> bool:
        return bool(self.func(view))

    def __str__(self) -> str:
        return getattr(self.func, "__name__", "function")


def as_rule(rule: RuleLike) -> Rule:
    """Accept a Rule or a plain function of a View."""
    if isinstance(rule, Rule):
        return rule
    if callable(rule):
        return _Func(rule)
    raise TypeError(f"not a rule: {rule!r}")


@record(frozen=True)
class _Combined(Rule):
    rules: tuple[Rule, ...]

    @property
    def needs(self) -> frozenset[str]:  # type: ignore[override]
        out: frozenset[str] = frozenset()
        for r in self.rules:
            out |= r.needs
        return out

    def markers(self) -> tuple[str, ...]:
        return tuple(m for r in self.rules for m in r.markers())

    def patterns(self) -> tuple[str, ...]:
        return tuple(p for r in self.rules for p in r.patterns())

    def commands(self) -> tuple[str, ...]:
        return tuple(c for r in self.rules for c in r.commands())

    def names(self) -> tuple[str, ...]:
        return tuple(n for r in self.rules for n in r.names())


class AllOf(_Combined):
    def holds(self, view: View) -> bool:
        return all(r.holds(view) for r in self.rules)

    def deadline(self, view: View) -> Optional[float]:
        times = [t for t in (r.deadline(view) for r in self.rules) if t is not None]
        return max(times) if times else None

    def __str__(self) -> str:
        return " & ".join(str(r) for r in self.rules)


class AnyOf(_Combined):
    def holds(self, view: View) -> bool:
        return any(r.holds(view) for r in self.rules)

    def deadline(self, view: View) -> Optional[float]:
        times = [t for t in (r.deadline(view) for r in self.rules) if t is not None]
        return min(times) if times else None

    def __str__(self) -> str:
        return " | ".join(str(r) for r in self.rules)


@record(frozen=True)
class Quiet(Rule):
    seconds: float = DEFAULT_QUIET

    def __post_init__(self) -> None:
        if not 0 <= self.seconds <= 86400:
            raise ConfigError(f"quiet={self.seconds}: the quiet time must be 0-86400 seconds")

    def holds(self, view: View) -> bool:
        if view.program_exited or self.seconds == 0:
            return True
        return view.last_change_at is not None and view.now - view.last_change_at >= self.seconds

    def deadline(self, view: View) -> Optional[float]:
        if view.last_change_at is None:
            return None
        return view.last_change_at + self.seconds

    def __str__(self) -> str:
        return f"quiet={self.seconds:g}"


@record(frozen=True)
class Marker(Rule):
    path: str
    needs: frozenset[str] = field(default=frozenset({"markers"}), repr=False)

    def __post_init__(self) -> None:
        if not self.path:
            raise ConfigError("marker=: give the path of the marker file, e.g. marker=ckpt.done")

    def holds(self, view: View) -> bool:
        if view.for_done:
            return self.path in view.markers_present
        return self.path in view.markers_changed

    def markers(self) -> tuple[str, ...]:
        return (self.path,)

    def __str__(self) -> str:
        return f"marker={self.path}"


@record(frozen=True)
class Log(Rule):
    pattern: str
    needs: frozenset[str] = field(default=frozenset({"log"}), repr=False)

    def __post_init__(self) -> None:
        import re  # here: a run without log= rules does not import re

        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ConfigError(f"log={self.pattern}: not a valid regular expression ({exc})") from exc

    def holds(self, view: View) -> bool:
        counts = dict(view.log_matches_ever if view.for_done else view.log_matches)
        return counts.get(self.pattern, 0) > 0

    def patterns(self) -> tuple[str, ...]:
        return (self.pattern,)

    def __str__(self) -> str:
        return f"log={self.pattern}"


@record(frozen=True)
class Command(Rule):
    """Holds when the validator command exits 0; the core runs it last, after the others hold."""

    command: str
    needs: frozenset[str] = field(default=frozenset({"command"}), repr=False)

    def __post_init__(self) -> None:
        if not self.command.strip():
            raise ConfigError("command=: give the validator command, e.g. command='h5check state.h5'")

    def holds(self, view: View) -> bool:
        return True  # the core asks the loop to run it; see Core._after_rules_hold

    def commands(self) -> tuple[str, ...]:
        return (self.command,)

    def __str__(self) -> str:
        return f"command={self.command}"


@record(frozen=True)
class Closed(Rule):
    needs: frozenset[str] = field(default=frozenset({"open_files"}), repr=False)

    def holds(self, view: View) -> bool:
        return view.program_exited or view.open_for_write is False

    def __str__(self) -> str:
        return "closed"


@record(frozen=True)
class Exit(Rule):
    def holds(self, view: View) -> bool:
        return view.program_exited

    def __str__(self) -> str:
        return "exit"


def parse_rule(text: str, *, option: str = "--complete-when") -> Rule:
    """Parse one ``NAME[=VALUE]`` rule; raises ConfigError naming the option."""
    name, sep, value = text.partition("=")
    name = name.strip().lower()
    try:
        if name == "quiet":
            return Quiet(float(value) if sep else DEFAULT_QUIET)
        if name == "marker" and sep:
            return Marker(value)
        if name == "log" and sep:
            return Log(value)
        if name == "command" and sep:
            return Command(value)
        if name == "closed" and not sep:
            return Closed()
        if name == "exit" and not sep:
            return Exit()
    except ValueError as exc:
        raise ConfigError(f"{option} {text}: {value!r} is not a number of seconds") from exc
    raise ConfigError(
        f"{option} {text}: unknown rule; use quiet=SECONDS, marker=PATH, log=REGEX, command=CMD, closed or exit"
    )


DONE_RULES = (Marker, Log, Command)


def guesses_only(rule: Optional[Rule]) -> bool:
    """True when only ``quiet=`` and ``closed`` decide: rules that judge a moment, not a set of
    files, and so cannot tell a pause between two files of one checkpoint from its end."""
    if rule is None:
        return False
    return all(n == "closed" or n.startswith("quiet=") for n in rule.names())


def ready(fingerprint: object, rule: Optional[Rule], reference_files: int) -> bool:
    """Whether checkpoint paths with this ``fingerprint`` (``Store.fingerprint()``) may be judged
    complete at all: they hold at least one byte (an empty directory, or files just created or
    truncated, are never a checkpoint), and, when only guesses decide (:func:`guesses_only`),
    no fewer files than the last checkpoint committed or restored (``reference_files``)."""
    if not isinstance(fingerprint, tuple):
        return True  # not measured: the other facts decide
    entries = [e for e in fingerprint if isinstance(e, tuple) and len(e) > 2]
    files = [e for e in entries if e[1] == "f"]
    if any(e[1] in ("l", "s") for e in entries):
        return True  # a symlink or special file: the store refuses it, with a message saying why
    if sum(e[2] for e in files if isinstance(e[2], int)) == 0:
        return False
    return not guesses_only(rule) or len(files) >= reference_files


def parse_rules(texts: list[str], *, option: str = "--complete-when", done: bool = False) -> Optional[Rule]:
    """All of ``texts`` must hold; None when empty."""
    rules = [parse_rule(t, option=option) for t in texts]
    if done:
        for r in rules:
            if not isinstance(r, DONE_RULES):
                raise ConfigError(f"{option} {r}: a done rule must be marker=PATH, log=REGEX or command=CMD")
    if not rules:
        return None
    return rules[0] if len(rules) == 1 else AllOf(tuple(rules))
