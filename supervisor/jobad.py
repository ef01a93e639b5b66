"""Read HTCondor's job ad (``$_CONDOR_JOB_AD``) and write ClassAd literals.

Interface (fixed by issue 2):

- ``parse_literal(text) -> str | int | float | bool | None | ERROR``: one ClassAd literal.
- ``read_job_ad(path) -> JobAd``: the job ad file as a case-insensitive mapping.
- ``checkpoint_defaults(ad) -> dict``: the checkpoint settings the job ad implies.
- ``format_value(value) -> str`` and ``format_ad(attrs) -> str``: write literals and a whole ad.

Theory of operation
-------------------
The starter writes ``$_CONDOR_JOB_AD`` in the *old* ClassAd syntax: one ``Name = expression``
per line, strings in double quotes. Old syntax escapes strings differently from the ClassAd
language proper: only ``\\"`` is an escape (a quote inside the string), every other backslash
is an ordinary character, and a ``\\"`` that ends the line is a backslash followed by the
closing quote. HTCondor reads such a line by rewriting it into the new syntax first (every
backslash doubled except those that escape a quote: ``ConvertEscapingOldToNew`` in
``src/condor_utils/compat_classad.cpp``) and parsing the result as a ClassAd expression. This
module does the same: ``_old_to_new`` is that rewrite, and everything after it works on
new-syntax text, where ``\\\\ \\" \\n \\t`` and octal byte escapes (``\\303\\251`` is "é")
have their usual meaning.

A value is either a *literal* (string, integer, real, boolean, undefined, error), which is
returned as a Python value, or anything else (a reference, an operator, a function call, a
list, a nested ad), which is kept as an ``Expression`` holding its new-syntax text. Only
literals are ever interpreted; expressions never fail the read, but a line that is not
``Name = value``, an unterminated string or unbalanced brackets do (a damaged file).

Writing is the inverse: ``format_value`` writes new-syntax literal text (what
``parse_literal`` and ``classad2.ExprTree`` read); ``format_value(v, old_syntax=True)`` and
``format_ad`` write the old syntax (what ``read_job_ad`` and ``condor_q -l`` read). Old syntax
cannot hold a newline, a carriage return or a NUL inside a string: writing one is a
``ValueError``, never a file that reads back differently.

This module only reads the file it is given; it imports nothing beyond the standard library.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from os import PathLike, fspath
from typing import Final, TypedDict, Union

from .errors import ConfigError, JobAdError
from .signals import parse_signal

__all__ = [
    "ERROR",
    "CheckpointDefaults",
    "ErrorValue",
    "Expression",
    "JobAd",
    "Literal",
    "Value",
    "checkpoint_defaults",
    "format_ad",
    "format_value",
    "parse_job_ad",
    "parse_literal",
    "read_job_ad",
]


class ErrorValue:
    """The ClassAd ``error`` literal; its only instance is ``ERROR``."""

    __slots__ = ()
    _instance: ErrorValue | None = None

    def __new__(cls) -> ErrorValue:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ERROR"

    def __reduce__(self) -> str:
        return "ERROR"


ERROR: Final = ErrorValue()


class Expression:
    """A value that is not a literal (``Requirements``, ``{1, 2}``, ``[a = 1]``, ``time()``).

    ``text`` is the expression in ClassAd (new) syntax, ready for ``classad2.ExprTree``.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Expression):
            return self.text == other.text
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Expression", self.text))

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"

    def __str__(self) -> str:
        return self.text


Literal = Union[str, int, float, bool, None, ErrorValue]
Value = Union[str, int, float, bool, None, ErrorValue, Expression]

# Whitespace as C isspace() sees it: HTCondor strips exactly these around names and values.
_WS: Final = " \t\n\r\f\v"
_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_NAME_AT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Decimal only; a leading zero is refused because ClassAd parsers disagree on "010".
_INT_RE: Final = re.compile(r"[+-]?(?:0|[1-9][0-9]*)\Z")
# ClassAd reals need a digit after the point ("5." is not a real) or an exponent.
_REAL_RE: Final = re.compile(
    r"[+-]?(?:(?:0|[1-9][0-9]*)?\.[0-9]+(?:[eE][+-]?[0-9]+)?|(?:0|[1-9][0-9]*)[eE][+-]?[0-9]+)\Z"
)
# How HTCondor itself writes the reals that have no decimal form.
_SPECIAL_REAL_RE: Final = re.compile(r'real[ \t]*\([ \t]*"(inf|-inf|nan)"[ \t]*\)\Z', re.IGNORECASE)
_SPECIAL_REALS: Final = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}
_KEYWORDS: Final[dict[str, Literal]] = {
    "true": True,
    "false": False,
    "undefined": None,
    "error": ERROR,
}
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_SIMPLE_ESCAPES: Final = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "b": "\b",
    "f": "\f",
    "a": "\a",
    "v": "\v",
}
_OCTAL: Final = "01234567"
_STRING_STOP: Final = {'"': re.compile(r'[\\"\x00]'), "'": re.compile(r"[\\'\x00]")}
_CLOSERS: Final = {")": "(", "]": "[", "}": "{"}
_FIX_LINE: Final = "fix that line, or point $_CONDOR_JOB_AD at the file the HTCondor starter wrote"


class _NotLiteral(ValueError):
    """Well-formed text that is not a single literal (it may still be an expression)."""


class _Malformed(ValueError):
    """Text that is not even a well-formed expression (broken string, brackets)."""


# --------------------------------------------------------------------------- reading


def _read_quoted(text: str, start: int) -> tuple[str, int]:
    """Read the new-syntax quoted token starting at ``text[start]``; return (value, end).

    Escapes as in the ClassAd lexer: ``\\n \\t \\r \\b \\f \\a \\v``, octal bytes (three digits
    when the first is 0-3, else two), and a backslash before any other character stands for
    that character. The bytes are decoded as UTF-8, as classad2 does.
    """
    delim = text[start]
    stop = _STRING_STOP[delim]
    out = bytearray()
    i = start + 1
    n = len(text)
    try:
        while True:
            m = stop.search(text, i)
            if m is None:
                raise _Malformed("unterminated string (no closing quote)")
            j = m.start()
            out += text[i:j].encode("utf-8")
            ch = text[j]
            if ch == delim:
                return out.decode("utf-8"), j + 1
            if ch == "\x00":
                raise _Malformed("NUL character inside a string")
            i = j + 1  # a backslash
            if i >= n:
                raise _Malformed("unterminated string (ends with a backslash)")
            ch = text[i]
            if ch in _OCTAL:
                end = i + 1
                limit = i + (3 if ch in "0123" else 2)
                while end < min(limit, n) and text[end] in _OCTAL:
                    end += 1
                code = int(text[i:end], 8)
                if code == 0:
                    raise _Malformed("string holds a NUL character (octal escape \\0)")
                out.append(code)
                i = end
            else:
                out += _SIMPLE_ESCAPES.get(ch, ch).encode("utf-8")
                i += 1
    except UnicodeError:
        raise _Malformed("string is not valid UTF-8 (check its octal escapes)") from None


def _old_to_new(text: str) -> str:
    """HTCondor's ConvertEscapingOldToNew: double every backslash except one that escapes a
    quote; a backslash-quote that ends the text (bar whitespace) is a backslash."""
    end = len(text.rstrip(_WS))
    out: list[str] = []
    i = 0
    while True:
        j = text.find("\\", i)
        if j < 0:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i : j + 1])
        i = j + 1
        if i >= len(text) or text[i] != '"' or i + 1 >= end:
            out.append("\\")


def _scan_literal(text: str) -> Literal:
    """The literal that ``text`` (new syntax, stripped) is; _NotLiteral or _Malformed if none."""
    if not text:
        raise _NotLiteral("empty value")
    if text[0] == '"':
        value, end = _read_quoted(text, 0)
        if end != len(text):
            raise _NotLiteral("more than one string or an expression")
        return value
    low = text.lower()
    if low in _KEYWORDS:
        return _KEYWORDS[low]
    if _INT_RE.match(text):
        number = int(text)
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise _NotLiteral("integer outside the 64-bit range of ClassAds")
        return number
    if _REAL_RE.match(text):
        return float(text)
    m = _SPECIAL_REAL_RE.match(text)
    if m:
        return _SPECIAL_REALS[m.group(1).lower()]
    raise _NotLiteral("an expression or a list, not a single value")


def _scan_expression(text: str, i: int, stops: str) -> int:
    """Index of the first top-level character of ``stops`` from ``text[i]`` on, or len(text).

    Raises _Malformed for an unterminated string, a NUL, or brackets that do not balance.
    """
    stack: list[str] = []
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'":
            _, i = _read_quoted(text, i)
            continue
        if not stack and ch in stops:
            return i
        if ch in "([{":
            stack.append(ch)
        elif ch in _CLOSERS:
            if not stack:
                raise _Malformed(f"unbalanced brackets: {ch!r} closes nothing open")
            opener = stack.pop()
            if opener != _CLOSERS[ch]:
                raise _Malformed(f"unbalanced brackets: {ch!r} closes {opener!r}")
        elif ch == "\x00":
            raise _Malformed("NUL character")
        i += 1
    if stack:
        raise _Malformed(f"unbalanced brackets: {stack[-1]!r} is never closed")
    return n


def _value_of(text: str) -> Value:
    """A literal, or an Expression for well-formed non-literal text (new syntax, stripped)."""
    try:
        return _scan_literal(text)
    except _NotLiteral:
        _scan_expression(text, 0, "")
        return Expression(text)


def parse_literal(text: str, *, old_syntax: bool = False) -> Literal:
    """Parse one ClassAd literal: ``"str"``, ``true``/``FALSE``, ``-5``, ``1.5e3``, ``undefined``.

    Strings use ClassAd escapes (``\\" \\\\ \\n \\t`` and octal bytes); with ``old_syntax``,
    the text is read the way an old-style job ad line is (only ``\\"`` is an escape).
    ``undefined`` is None and ``error`` is ``ERROR``. Raises JobAdError for anything that is
    not a single literal (an expression, a list, an unterminated string, ``5.``, ``010``).
    """
    stripped = text.strip(_WS)
    if old_syntax:
        stripped = _old_to_new(stripped)
    try:
        return _scan_literal(stripped)
    except (_NotLiteral, _Malformed) as err:
        raise JobAdError(
            f"{_short(repr(text))} is not a ClassAd literal ({err}); write a quoted string, "
            "a decimal number, true, false, undefined or error"
        ) from None


class JobAd(Mapping[str, Value]):
    """A job ad: attribute names are case-insensitive; iteration gives them as written.

    ``source`` is the file it was read from, if any; ``line(name)`` its line number there.
    """

    __slots__ = ("_items", "source")

    def __init__(
        self, attrs: Mapping[str, Value] | None = None, *, source: str | None = None
    ) -> None:
        self._items: dict[str, tuple[str, Value, int | None]] = {}
        self.source = source
        if attrs is not None:
            for name, value in attrs.items():
                self._set(name, value, None)

    def _set(self, name: str, value: Value, line: int | None) -> None:
        # A later assignment replaces an earlier one, as in HTCondor.
        self._items[name.lower()] = (name, value, line)

    def __getitem__(self, name: str) -> Value:
        if not isinstance(name, str):
            raise KeyError(name)
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        inner = ", ".join(f"{name!r}: {value!r}" for name, value, _ in self._items.values())
        return f"JobAd({{{inner}}}, source={self.source!r})"

    def line(self, name: str) -> int | None:
        """The line ``name`` was read from, or None (not from a file, or absent)."""
        item = self._items.get(name.lower())
        return item[2] if item else None

    def where(self, name: str | None = None) -> str:
        """``job ad FILE line N`` for messages (as much of it as is known)."""
        place = "job ad" if self.source is None else f"job ad {self.source}"
        line = self.line(name) if name is not None else None
        return place if line is None else f"{place} line {line}"


def read_job_ad(path: str | PathLike[str]) -> JobAd:
    """Read the job ad file at ``path`` (old-style ``Name = value`` lines, or one ``[ ... ]``).

    Raises JobAdError naming the file and line for a file that cannot be read, is not UTF-8,
    or holds a line that is not ``Name = value`` or a value that is not well formed.
    """
    name = fspath(path)
    try:
        with open(name, "rb") as stream:
            data = stream.read()
    except OSError as err:
        raise JobAdError(
            f"job ad {name}: cannot read it ({err.strerror or err}); check that "
            "$_CONDOR_JOB_AD names the job ad file, or leave it unset outside HTCondor"
        ) from err
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise JobAdError(f"job ad {name} line {line}: not valid UTF-8; {_FIX_LINE}") from err
    return parse_job_ad(text, source=name)


def parse_job_ad(text: str, *, source: str | None = None) -> JobAd:
    """Parse the text of a job ad file; ``source`` names it in error messages."""
    lines = text.split("\n")
    offset = 0
    for raw in lines:
        stripped = raw.strip(_WS)
        if stripped.startswith("["):
            return _parse_new_style(text, source, text.index("[", offset))
        if stripped and not stripped.startswith("#"):
            break
        offset += len(raw) + 1
    ad = JobAd(source=source)
    place = "job ad" if source is None else f"job ad {source}"
    for lineno, raw in enumerate(lines, 1):
        stripped = raw.strip(_WS)
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{place} line {lineno}"
        attr, sep, rest = stripped.partition("=")
        attr = attr.strip(_WS)
        rest = rest.strip(_WS)
        if not sep:
            raise JobAdError(f"{where}: {_snippet(stripped)} is not 'Name = value'; {_FIX_LINE}")
        if not _NAME_RE.match(attr):
            raise JobAdError(
                f"{where}: {attr!r} is not an attribute name (letters, digits and _, not "
                f"starting with a digit); {_FIX_LINE}"
            )
        if not rest or rest.startswith("="):
            problem = "has no value after '='" if not rest else "uses '==' instead of '='"
            raise JobAdError(f"{where}: {attr} {problem}; {_FIX_LINE}")
        try:
            value = _value_of(_old_to_new(rest))
        except _Malformed as err:
            raise JobAdError(f"{where}: {attr}: {err}; {_FIX_LINE}") from None
        ad._set(attr, value, lineno)
    return ad


def _parse_new_style(text: str, source: str | None, start: int) -> JobAd:
    """Parse one new-style ad ``[ Name = expr; ... ]`` that opens at ``text[start]``."""
    ad = JobAd(source=source)
    place = "job ad" if source is None else f"job ad {source}"

    def where(pos: int) -> str:
        return f"{place} line {text.count(chr(10), 0, pos) + 1}"

    n = len(text)
    i = start + 1
    while True:
        while i < n and (text[i] in _WS or text[i] == ";"):
            i += 1
        if i >= n:
            raise JobAdError(f"{where(n)}: the '[' ad is never closed with ']'; {_FIX_LINE}")
        if text[i] == "]":
            i += 1
            break
        m = _NAME_AT.match(text, i)
        if m is None:
            raise JobAdError(
                f"{where(i)}: {_snippet(text[i:].split(chr(10), 1)[0])} is not 'Name = value'; "
                f"{_FIX_LINE}"
            )
        attr, name_pos = m.group(), i
        i = m.end()
        while i < n and text[i] in _WS:
            i += 1
        if i >= n or text[i] != "=" or text.startswith("==", i):
            raise JobAdError(f"{where(name_pos)}: {attr} is not followed by '='; {_FIX_LINE}")
        i += 1
        try:
            end = _scan_expression(text, i, ";]")
        except _Malformed as err:
            raise JobAdError(f"{where(name_pos)}: {attr}: {err}; {_FIX_LINE}") from None
        if end >= n:
            raise JobAdError(f"{where(n)}: the '[' ad is never closed with ']'; {_FIX_LINE}")
        expr = text[i:end].strip(_WS)
        if not expr:
            raise JobAdError(f"{where(name_pos)}: {attr} has no value after '='; {_FIX_LINE}")
        try:
            value = _value_of(expr)
        except _Malformed as err:
            raise JobAdError(f"{where(name_pos)}: {attr}: {err}; {_FIX_LINE}") from None
        ad._set(attr, value, text.count("\n", 0, name_pos) + 1)
        i = end
    trailing = text[i:].strip(_WS)
    if trailing:
        raise JobAdError(f"{where(i)}: text after the closing ']' of the ad; {_FIX_LINE}")
    return ad


def _snippet(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


# --------------------------------------------------------------------------- defaults


class CheckpointDefaults(TypedDict, total=False):
    """What the job ad says about checkpointing; absent attributes are absent keys."""

    exit_code: int  # SuccessCheckpointExitCode, 1-255
    exit_by_signal: bool  # SuccessCheckpointExitBySignal
    exit_signal: int  # SuccessCheckpointExitSignal, a signal number
    want_checkpoint_signal: bool  # WantCheckpointSignal
    checkpoint_signal: int  # CheckpointSig, a signal number
    kill_signal: int  # KillSig, a signal number
    remove_kill_signal: int  # RemoveKillSig, a signal number (a soft kill too: os_proc.cpp:941)
    max_vacate_time: float  # JobMaxVacateTime, seconds >= 0
    num_job_starts: int  # NumJobStarts: earlier executions (a per-starter snapshot: rule 6)
    notes: list[str]  # warnings: a boolean attribute that HTCondor reads as false (condor.attributes)


class _Absent:
    pass


_ABSENT: Final = _Absent()


def _lookup(ad: JobAd, attr: str, flag: str) -> Literal | _Absent:
    """The literal value of ``attr``; _ABSENT if missing or undefined; JobAdError otherwise."""
    if attr not in ad:
        return _ABSENT
    value = ad[attr]
    if value is None:
        return _ABSENT
    if isinstance(value, Expression):
        raise JobAdError(
            f"{ad.where(attr)}: {attr} = {_short(value.text)} is an expression, not a plain "
            f"value; set it to a literal in the submit file, or give {flag}"
        )
    if isinstance(value, ErrorValue):
        raise JobAdError(
            f"{ad.where(attr)}: {attr} is 'error'; fix it in the submit file, or give {flag}"
        )
    return value


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _bad(ad: JobAd, attr: str, value: Literal, need: str, flag: str) -> JobAdError:
    shown = format_value(value) if not isinstance(value, str) else repr(value)
    return JobAdError(
        f"{ad.where(attr)}: {attr} = {_short(shown)} is not {need}; fix it in the submit "
        f"file, or give {flag}"
    )


def _boolean(ad: JobAd, attr: str, flag: str, notes: list[str]) -> bool | _Absent:
    """Read as the starter's LookupBool does (``condor.attributes``): a boolean or a number;
    a string or a reference to an undefined attribute (``yes``) reads as false, with a note."""
    from .condor.attributes import bool_note, evaluable, lookup_bool

    if attr not in ad or ad[attr] is None:
        return _ABSENT
    value = ad[attr]
    got = lookup_bool(value)
    if got is not None:
        return got
    if not evaluable(value) or isinstance(value, ErrorValue):
        _lookup(ad, attr, flag)  # an expression we cannot evaluate, or error: JobAdError
    shown = value.text if isinstance(value, Expression) else format_value(value)
    note = bool_note(attr, value, shown)
    if note:
        notes.append(f"{ad.where(attr)}: {note}, or give {flag}")
    return False


def _integer(ad: JobAd, attr: str, flag: str, notes: list[str], hint: str | None = None) -> int | _Absent:
    """Read as the starter's LookupInteger does (``condor.attributes``): a number (a real
    truncated), a boolean as 1/0; a string or a reference to an undefined attribute reads as 0.
    A note when the reading differs from what is written (``85.9``, ``"85"``); an expression we
    cannot evaluate, or error, raises JobAdError."""
    from .condor.attributes import int_note, starter_int

    if attr not in ad or ad[attr] is None:
        return _ABSENT
    value = ad[attr]
    number = starter_int(value)
    if number is None or isinstance(value, ErrorValue):
        _lookup(ad, attr, flag)  # an expression we cannot evaluate, or error: JobAdError
        raise AssertionError("unreachable")  # pragma: no cover
    shown = value.text if isinstance(value, Expression) else format_value(value)
    note = int_note(attr, value, shown, hint=hint)
    if note:
        notes.append(f"{ad.where(attr)}: {note}")
    return number


def _status_zero(ad: JobAd, attr: str, notes: list[str], fix: str) -> JobAdError:
    """The error for a promise HTCondor reads as status 0 (``computeDesiredExitStatus``); the
    note ``_integer`` gave for the attribute, if any, is taken out of ``notes`` into it."""
    mine = [n for n in notes if n.startswith(f"{ad.where(attr)}: {attr} ")]
    why = mine[-1] if mine else f"{ad.where(attr)}: {attr} = 0"
    if mine:
        notes.remove(why)
    return JobAdError(
        f"{why.split('; write ')[0]}. With 0, HTCondor takes a plain exit 0 for a checkpoint (with "
        "WantFTOnCheckpoint the job restarts forever) and, after its checkpoint signal, holds the "
        "job unless it exits 0: the supervisor cannot keep that promise, so it does not start; "
        f"{fix} in the submit file"
    )


def _signal(ad: JobAd, attr: str, flag: str) -> int | _Absent:
    value = _lookup(ad, attr, flag)
    if isinstance(value, _Absent):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise _bad(ad, attr, value, "a signal name or number", flag)
    try:
        return parse_signal(value, what=f"{ad.where(attr)}: {attr}")
    except ConfigError as err:
        raise JobAdError(f"{err.message}; or give {flag}") from err


def checkpoint_defaults(ad: Mapping[str, Value]) -> CheckpointDefaults:
    """The checkpoint settings a job ad implies, keyed as the CLI options they default.

    Reads SuccessCheckpointExitCode (``exit_code``, an integer 1-255),
    SuccessCheckpointExitBySignal (``exit_by_signal``), SuccessCheckpointExitSignal
    (``exit_signal``), WantCheckpointSignal (``want_checkpoint_signal``), CheckpointSig
    (``checkpoint_signal``), KillSig (``kill_signal``), RemoveKillSig (``remove_kill_signal``),
    JobMaxVacateTime (``max_vacate_time``, seconds as a float) and, when it is a plain count,
    NumJobStarts (``num_job_starts``; never an error). Signals may be names or numbers and come back
    as numbers; they must be catchable. An absent or ``undefined`` attribute is an absent key.
    The two booleans are read as HTCondor's LookupBool reads them (``condor.attributes``, shared
    with the dry run and ``check``): true/false or a number; a string or an undefined reference
    such as ``yes`` is false, and ``notes`` says so. Any other value of the wrong kind, an
    expression or ``error`` raises JobAdError naming the attribute (and its file and line).
    """
    job_ad = ad if isinstance(ad, JobAd) else JobAd(ad)
    result: CheckpointDefaults = {}
    notes: list[str] = []

    by_signal = _boolean(job_ad, "SuccessCheckpointExitBySignal", "--exit-signal", notes)
    if not isinstance(by_signal, _Absent):
        result["exit_by_signal"] = by_signal
    # Both promises are read with LookupInteger (condor.attributes): 85.0 is 85, "85" is 0. The
    # starter's checkpoint status is the signal when BySignal is true, else the code (rule 1).
    attr, flag = "SuccessCheckpointExitCode", "--exit-code"
    code = _integer(job_ad, attr, flag, notes)
    if not isinstance(code, _Absent):
        if code == 0 and by_signal is not True:
            raise _status_zero(job_ad, attr, notes, f"write {attr} = 85 (a bare number) or checkpoint_exit_code = 85")
        if 1 <= code <= 255:
            result["exit_code"] = code
        elif by_signal is not True:
            raise _bad(job_ad, attr, code, "an exit code 1-255 (85 is usual)", flag)

    attr, flag = "SuccessCheckpointExitSignal", "--exit-signal"
    if attr in job_ad and isinstance(job_ad[attr], str):
        try:  # the number to suggest for a signal written as a name
            hint: str | None = str(parse_signal(job_ad[attr], what=attr))  # type: ignore[arg-type]
        except ConfigError:
            hint = None
    else:
        hint = None
    exit_signal = _integer(job_ad, attr, flag, notes, hint)
    if not isinstance(exit_signal, _Absent):
        if exit_signal == 0 and by_signal is True:
            raise _status_zero(job_ad, attr, notes, f"write {attr} = {hint or 'N'} (the signal number)")
        if exit_signal != 0:
            try:
                result["exit_signal"] = parse_signal(exit_signal, what=f"{job_ad.where(attr)}: {attr}")
            except ConfigError as err:
                raise JobAdError(f"{err.message}; or give {flag}") from err

    want = _boolean(job_ad, "WantCheckpointSignal", "--trigger-signal", notes)
    if not isinstance(want, _Absent):
        result["want_checkpoint_signal"] = want
    checkpoint_signal = _signal(job_ad, "CheckpointSig", "--trigger-signal")
    if not isinstance(checkpoint_signal, _Absent):
        result["checkpoint_signal"] = checkpoint_signal

    kill_signal = _signal(job_ad, "KillSig", "--kill-signal")
    if not isinstance(kill_signal, _Absent):
        result["kill_signal"] = kill_signal
    remove_kill_signal = _signal(job_ad, "RemoveKillSig", "--remove-kill-signal")
    if not isinstance(remove_kill_signal, _Absent):
        result["remove_kill_signal"] = remove_kill_signal

    # advisory: a snapshot written once per starter; only used for a warning, never to decide
    starts = job_ad.get("NumJobStarts")
    if isinstance(starts, int) and not isinstance(starts, bool) and starts >= 0:
        result["num_job_starts"] = starts

    attr, flag = "JobMaxVacateTime", "--kill-grace"
    value = _lookup(job_ad, attr, flag)
    if not isinstance(value, _Absent):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            raise _bad(job_ad, attr, value, "a number of seconds >= 0", flag)
        result["max_vacate_time"] = float(value)
    if notes:
        result["notes"] = notes
    return result


# --------------------------------------------------------------------------- writing

# New syntax: escape the backslash, the quote and every control character.
_NEW_ESCAPES: Final = {
    **{code: f"\\{code:03o}" for code in (*range(1, 32), 127)},
    ord("\\"): "\\\\",
    ord('"'): '\\"',
    ord("\n"): "\\n",
    ord("\t"): "\\t",
    ord("\r"): "\\r",
}


def _quote_new(value: str) -> str:
    if "\x00" in value:
        raise ValueError("a ClassAd string cannot hold a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{value!r} cannot be written as UTF-8") from None
    return '"' + value.translate(_NEW_ESCAPES) + '"'


def _quote_old(value: str) -> str:
    # As HTCondor writes old syntax: only the quote is escaped, the rest is written raw.
    for bad, what in (("\n", "newline"), ("\r", "carriage return"), ("\x00", "NUL")):
        if bad in value:
            raise ValueError(
                f"{_short(repr(value))} holds a {what}, which old-style job ad lines cannot hold"
            )
    _quote_new(value)  # the same UTF-8 check
    return '"' + value.replace('"', '\\"') + '"'


def _segments(text: str) -> list[tuple[bool, str]]:
    """Split new-syntax text into (is_string, text-or-string-value) runs."""
    out: list[tuple[bool, str]] = []
    i = 0
    plain = 0
    while i < len(text):
        if text[i] == '"':
            if plain < i:
                out.append((False, text[plain:i]))
            value, i = _read_quoted(text, i)
            out.append((True, value))
            plain = i
        elif text[i] == "'":
            _, i = _read_quoted(text, i)
        else:
            i += 1
    if plain < len(text):
        out.append((False, text[plain:]))
    return out


def _expression_old(text: str) -> str:
    """Rewrite an expression's strings into old syntax, refusing what would read back wrong."""
    try:
        segments = _segments(text)
        old = "".join(_quote_old(s) if is_string else s for is_string, s in segments)
        if _segments(_old_to_new(old)) == segments:
            return old
    except _Malformed as err:
        raise ValueError(f"expression {_short(text)!r} is malformed: {err}") from None
    raise ValueError(
        f"expression {_short(text)!r} cannot be written in old syntax (a string ending in a "
        "backslash that is not at the end of the line)"
    )


def format_value(value: object, *, old_syntax: bool = False) -> str:
    """Write ``value`` as a ClassAd literal: ``"a\\"b"``, ``true``, ``-5``, ``0.25``, ``undefined``.

    str, bool, int (64-bit), float (inf and nan as ``real("INF")``/``real("NaN")``), None
    (undefined), ``ERROR`` and ``Expression`` are accepted. By default the text is new syntax,
    read back by ``parse_literal`` and classad2; with ``old_syntax`` it is as it appears on an
    old-style job ad line, read back by ``read_job_ad`` (a string ending in a backslash is then
    only valid at the end of the line). Raises ValueError for what cannot be written (a NUL;
    a newline in old syntax; an integer beyond 64 bits) and TypeError for other types.
    """
    if value is None:
        return "undefined"
    if isinstance(value, ErrorValue):
        return "error"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        number = int(value)
        if not _INT64_MIN <= number <= _INT64_MAX:
            raise ValueError(f"{number} is outside the 64-bit range of ClassAd integers")
        return str(number)
    if isinstance(value, float):
        real = float(value)
        if math.isnan(real):
            return 'real("NaN")'
        if math.isinf(real):
            return 'real("INF")' if real > 0 else 'real("-INF")'
        return repr(real)
    if isinstance(value, str):
        return _quote_old(value) if old_syntax else _quote_new(value)
    if isinstance(value, Expression):
        return _expression_old(value.text) if old_syntax else value.text
    raise TypeError(f"cannot write a {type(value).__name__} as a ClassAd value")


def format_ad(attrs: Mapping[str, object]) -> str:
    """Write ``attrs`` as an old-style job ad: one ``Name = value`` line each, in order.

    The result reads back with ``read_job_ad`` (and classad2's old parser) to the same values.
    Raises ValueError for a name that is not a ClassAd attribute name, two names that differ
    only in case, or a value ``format_value`` cannot write in old syntax.
    """
    lines: list[str] = []
    seen: set[str] = set()
    for name, value in attrs.items():
        if not _NAME_RE.match(name):
            raise ValueError(f"{name!r} is not a ClassAd attribute name")
        if name.lower() in seen:
            raise ValueError(f"attribute {name!r} appears twice (names ignore case)")
        seen.add(name.lower())
        lines.append(f"{name} = {format_value(value, old_syntax=True)}\n")
    return "".join(lines)


def machine_max_vacate_time(path: str | PathLike[str]) -> float | None:
    """``MachineMaxVacateTime`` from the machine ad (``$_CONDOR_MACHINE_AD``), in seconds.

    None when the file cannot be read or the attribute is absent or not a number. A product of
    numbers (``10 * 60``, as HTCondor's default configuration writes it) is evaluated.
    """
    try:
        ad = read_job_ad(path)
    except (OSError, JobAdError, ConfigError):
        return None
    value = ad.get("MachineMaxVacateTime")
    if isinstance(value, Expression):
        factors = value.text.split("*")
        try:
            product = 1.0
            for factor in factors:
                product *= float(factor.strip())
        except ValueError:
            return None
        value = product
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return float(value)
