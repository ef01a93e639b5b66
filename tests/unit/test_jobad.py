"""Tests of supervisor.jobad: ClassAd literals, the job ad file, checkpoint defaults, writing.

The oracle is the ``classad2`` module of the htcondor wheel (the ClassAd library HTCondor itself
uses). Tests that need it skip, with the reason, when the wheel is not installed.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.errors import ConfigError, JobAdError
from supervisor.jobad import (
    ERROR,
    Expression,
    JobAd,
    checkpoint_defaults,
    format_ad,
    format_value,
    parse_job_ad,
    parse_literal,
    read_job_ad,
)

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parents[1] / "data" / "jobads"
CORPUS_FILES = sorted(CORPUS.glob("*.job.ad"))
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Any string classad2 can hold: no NUL (the C++ library ends strings there).
CLASSAD_TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
# What an old-style line can hold besides: no newline or carriage return either.
OLD_TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\n\r"))


@pytest.fixture(scope="session")
def classad2() -> Any:
    """The classad2 module, imported with no HTCondor configuration; skip if absent."""
    first = "classad2" not in sys.modules
    old = os.environ.get("CONDOR_CONFIG")
    if first:
        os.environ["CONDOR_CONFIG"] = "/dev/null"  # read when the wheel is imported
    try:
        return pytest.importorskip(
            "classad2", reason="the htcondor wheel (classad2, the test oracle) is absent"
        )
    finally:
        if first and old is None:
            del os.environ["CONDOR_CONFIG"]
        elif first and old is not None:
            os.environ["CONDOR_CONFIG"] = old


def oracle_ad(classad2: Any, path: Path) -> Any:
    """The ad classad2 reads from ``path`` (old syntax, or new syntax when it opens with '[')."""
    text = path.read_text(encoding="utf-8")
    new = text.lstrip().startswith("[")
    parser = classad2.ParserType.New if new else classad2.ParserType.Old
    return classad2.parseOne(text, parser=parser)


def from_classad2(classad2: Any, value: Any) -> Any:
    """classad2's evaluated value in this module's terms (undefined -> None, error -> ERROR)."""
    if value is classad2.Value.Undefined:
        return None
    if value is classad2.Value.Error:
        return ERROR
    return value


def same(a: Any, b: Any) -> bool:
    """Equal with the same type, NaN equal to NaN, and -0.0 distinct from 0.0."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return bool(a == b)


def classad2_literal(classad2: Any, ad: Any, name: str) -> bool:
    """Whether classad2 holds attribute ``name`` as a plain literal (not an expression)."""
    value = ad.eval(name)
    if isinstance(value, (list, classad2.ClassAd)):
        return False
    return bool(ad.lookup(name) == classad2.ClassAd({"x": value}).lookup("x"))


# --------------------------------------------------------------------------- corpus


def test_corpus_has_the_cases_the_issue_asks_for() -> None:
    """The corpus holds at least 6 ads covering signal names and numbers and a plain job."""
    assert len(CORPUS_FILES) >= 6
    ads = {path.name: read_job_ad(path) for path in CORPUS_FILES}
    values = [(name.lower(), value) for ad in ads.values() for name, value in ad.items()]
    assert ("checkpointsig", "SIGUSR2") in values
    assert ("checkpointsig", 12) in values
    assert any(name == "killsig" for name, _ in values)
    assert any(name == "jobmaxvacatetime" for name, _ in values)
    assert any(name == "requirements" and len(str(v)) > 300 for name, v in values)
    assert any(value is None for _, value in values)
    assert any(isinstance(value, float) for _, value in values)
    assert any(isinstance(value, int) and value < 0 for _, value in values)
    assert checkpoint_defaults(ads["no_checkpoint.job.ad"]) == {}


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_values_match_classad2(classad2: Any, path: Path) -> None:
    """Every attribute classad2 holds as a literal reads as the same value and type; every
    other attribute reads as an Expression that classad2 parses to the same expression tree."""
    oracle = oracle_ad(classad2, path)
    ours = read_job_ad(path)
    assert sorted(k.lower() for k in ours) == sorted(k.lower() for k in oracle)
    for name in oracle:
        value = ours[name]
        if classad2_literal(classad2, oracle, name):
            expected = from_classad2(classad2, oracle.eval(name))
            assert same(value, expected), (name, value, expected)
        elif isinstance(value, Expression):
            # compared unparsed: ExprTree's == (SameAs) also compares how each tree was built
            # (old or new syntax, the library's expression cache) and failed once in a full
            # run for two trees that unparse identically
            assert str(classad2.ExprTree(value.text)) == str(oracle.lookup(name)), name
        else:
            # Tolerated non-literal forms (a leading '+'): the value must still agree.
            assert same(value, from_classad2(classad2, oracle.eval(name))), name


EXPECTED_DEFAULTS = {
    "checkpoint_exit_code.job.ad": {
        "exit_code": 85,
        "kill_signal": signal.SIGTERM,
        "max_vacate_time": 300.0,
        "num_job_starts": 0,
    },
    "checkpoint_signal_name.job.ad": {
        "exit_code": 85,
        "want_checkpoint_signal": True,
        "checkpoint_signal": signal.SIGUSR2,
        "kill_signal": signal.SIGINT,
        "max_vacate_time": 120.0,
        "num_job_starts": 4,
    },
    "checkpoint_signal_number.job.ad": {
        "exit_code": 77,
        "want_checkpoint_signal": True,
        "checkpoint_signal": 12,
        "kill_signal": 15,
        "max_vacate_time": 45.5,
    },
    "escapes_and_values.job.ad": {},
    "exit_by_signal.job.ad": {
        "exit_by_signal": True,
        "exit_signal": signal.SIGUSR1,
        "kill_signal": signal.SIGQUIT,
        "max_vacate_time": 0.0,
    },
    "new_style.job.ad": {
        "exit_code": 85,
        "want_checkpoint_signal": True,
        "checkpoint_signal": signal.SIGUSR2,
        "kill_signal": signal.SIGTERM,
        "max_vacate_time": 600.0,
    },
    "no_checkpoint.job.ad": {},
}


def test_every_corpus_file_has_expected_defaults() -> None:
    """The table of expected checkpoint defaults covers exactly the corpus files."""
    assert sorted(EXPECTED_DEFAULTS) == [p.name for p in CORPUS_FILES]


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_corpus_checkpoint_defaults(path: Path) -> None:
    """checkpoint_defaults maps the checkpoint attributes to numbers and booleans, signals
    (names or numbers) to signal numbers, and leaves absent attributes out."""
    assert checkpoint_defaults(read_job_ad(path)) == EXPECTED_DEFAULTS[path.name]


def writable(ad: JobAd) -> JobAd:
    """``ad`` without the strings old syntax cannot hold (a newline, from new-syntax ads)."""
    return JobAd(
        {k: v for k, v in ad.items() if not (isinstance(v, str) and ("\n" in v or "\r" in v))}
    )


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: p.name)
def test_format_ad_round_trips_corpus_through_classad2(classad2: Any, path: Path) -> None:
    """format_ad writes an ad that classad2's old-syntax parser reads to the same values and
    expression trees, and that read_job_ad reads back to the same JobAd."""
    ours = writable(read_job_ad(path))
    text = format_ad(ours)
    oracle = oracle_ad(classad2, path)
    back = classad2.parseOne(text, parser=classad2.ParserType.Old)
    assert sorted(back.keys()) == sorted(ours)
    for name in ours:
        if isinstance(ours[name], Expression):
            assert str(back.lookup(name)) == str(oracle.lookup(name)), name  # unparsed, as above
        else:
            expected = from_classad2(classad2, oracle.eval(name))
            assert same(from_classad2(classad2, back.eval(name)), expected), name
    assert parse_job_ad(text) == ours


def test_format_ad_refuses_new_syntax_newline() -> None:
    """A string with a newline (possible in a new-syntax ad) cannot be written in old syntax:
    format_ad raises ValueError instead of writing a line that reads back differently."""
    ad = read_job_ad(CORPUS / "new_style.job.ad")
    assert ad["Escapes"] == 'tab\tnewline\nquote"'
    with pytest.raises(ValueError, match="newline"):
        format_ad(ad)


# --------------------------------------------------------------------------- literals

LITERALS = [
    ('"hello"', "hello"),
    ('""', ""),
    ('"a\\"b"', 'a"b'),
    ('"c\\\\d"', "c\\d"),
    ('"line\\nnext\\ttab"', "line\nnext\ttab"),
    ('"\\101\\102"', "AB"),
    ('"caf\\303\\251"', "café"),
    ('"\\0015"', "\x015"),
    ("true", True),
    ("TRUE", True),
    ("True", True),
    ("false", False),
    ("FaLsE", False),
    ("0", 0),
    ("85", 85),
    ("-42", -42),
    ("+42", 42),
    ("9223372036854775807", 2**63 - 1),
    ("-9223372036854775808", -(2**63)),
    ("3.25", 3.25),
    ("-2.5e-3", -0.0025),
    ("1.000000000000000E+30", 1e30),
    (".5", 0.5),
    ("1e5", 100000.0),
    ("-0.0", -0.0),
    ('real("INF")', math.inf),
    ('real("-INF")', -math.inf),
    ("undefined", None),
    ("UNDEFINED", None),
    ("error", ERROR),
    ("ERROR", ERROR),
    ("  7  ", 7),
]


@pytest.mark.parametrize(("text", "expected"), LITERALS)
def test_parse_literal(text: str, expected: object) -> None:
    """parse_literal reads each kind of ClassAd literal, with ClassAd string escapes,
    booleans in any case, signed decimal integers, reals, undefined and error."""
    assert same(parse_literal(text), expected)


@pytest.mark.parametrize(("text", "expected"), LITERALS)
def test_parse_literal_agrees_with_classad2(classad2: Any, text: str, expected: object) -> None:
    """classad2 evaluates every literal of the table to what parse_literal returns."""
    assert same(from_classad2(classad2, classad2.ExprTree(text.strip()).eval()), expected)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "abc",
        "5.",
        "1.",
        "010",
        "0x10",
        "1_000",
        "- 5",
        '"unterminated',
        '"a" "b"',
        '"a" + 1',
        "{ 1, 2 }",
        "[ a = 1 ]",
        "time()",
        "99999999999999999999",
        '"\\0"',
        '"\\377"',
        "'name'",
        "nan",
        "INF",
    ],
)
def test_parse_literal_rejects_non_literals(text: str) -> None:
    """Anything that is not exactly one literal raises JobAdError (a ConfigError) whose
    message quotes the text and says what to write instead."""
    with pytest.raises(JobAdError, match="is not a ClassAd literal") as info:
        parse_literal(text)
    assert isinstance(info.value, ConfigError)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"C:\\temp\\new"', "C:\\temp\\new"),
        ('"end\\"', "end\\"),
        ('"a\\"b"', 'a"b'),
        ('"q\\\\"x"', 'q\\"x'),
        ('"\\303"', "\\303"),
    ],
)
def test_old_syntax_only_escapes_quotes(classad2: Any, text: str, expected: str) -> None:
    """In old syntax (job ad lines) a backslash is literal except before a quote, and a
    backslash-quote that ends the line is a backslash: as classad2's old parser reads it."""
    assert parse_literal(text, old_syntax=True) == expected
    oracle = classad2.parseOne(f"X = {text}\n", parser=classad2.ParserType.Old)
    assert oracle.eval("X") == expected


def test_integer_beyond_64_bits_is_kept_as_expression(classad2: Any) -> None:
    """An integer beyond 64 bits is not read as a number (classad2 silently reads 0; we keep
    the text as an Expression, so using it for a checkpoint setting is an error)."""
    ad = parse_job_ad("ImageSize = 99999999999999999999\nKillSig = 99999999999999999999\n")
    assert ad["ImageSize"] == Expression("99999999999999999999")
    assert classad2.ExprTree("99999999999999999999").eval() == 0  # the disagreement
    with pytest.raises(JobAdError, match="KillSig"):
        checkpoint_defaults(ad)


# --------------------------------------------------------------------------- the file


def test_names_are_case_insensitive(tmp_path: Path) -> None:
    """Attribute lookup ignores case; iteration gives names as written; a later line for the
    same name (in any case) replaces the earlier one."""
    path = tmp_path / "job.ad"
    path.write_text('KillSig = "SIGTERM"\nClusterId = 5\nkillsig = "SIGINT"\n')
    ad = read_job_ad(path)
    assert ad["KILLSIG"] == ad["killSig"] == "SIGINT"
    not_a_name: object = 5
    assert "clusterid" in ad and not_a_name not in ad
    assert list(ad) == ["killsig", "ClusterId"]
    assert len(ad) == 2
    assert ad.line("KillSig") == 3 and ad.source == str(path)


def test_blank_lines_comments_crlf_and_spacing_are_tolerated(tmp_path: Path) -> None:
    """Blank lines, '#' comment lines, CRLF line ends and any spacing around '=' are fine."""
    path = tmp_path / "job.ad"
    path.write_bytes(b'# comment\r\n\r\n   A=1\r\nB   =   "x y"   \r\n\tC = true\n')
    assert dict(read_job_ad(path)) == {"A": 1, "B": "x y", "C": True}


def test_expressions_are_kept_and_never_fail_the_read() -> None:
    """References, operators, calls, lists and nested ads are kept as Expression text."""
    ad = parse_job_ad(
        'Requirements = (TARGET.Memory >= RequestMemory) && (TARGET.Arch == "X86_64")\n'
        'Tags = { "a", "b" }\n'
        'Meta = [ x = 1; y = "]" ]\n'
        "Now = time()\n"
        "Odd = 1 + * 2\n"
    )
    assert all(isinstance(v, Expression) for v in ad.values())
    assert ad["Now"] == Expression("time()") and str(ad["Now"]) == "time()"


def test_new_style_ad_is_read_with_line_numbers() -> None:
    """A new-style '[ Name = expr; ... ]' ad is read, with ClassAd escapes and line numbers."""
    ad = read_job_ad(CORPUS / "new_style.job.ad")
    assert ad["WinPath"] == "C:\\temp\\out"
    assert ad["Accented"] == "café"
    assert ad["Tags"] == Expression('{ "a", "b;c" }')
    assert ad.line("ClusterId") == 4


MALFORMED = [
    ("A = 1\nthis line has no equals sign\n", 2, "is not 'Name = value'"),
    ("A = 1\n\nB = 2\n---\n", 4, "is not 'Name = value'"),
    ("1abc = 2\n", 1, "is not an attribute name"),
    ("A = 1\nFoo.Bar = 1\n", 2, "is not an attribute name"),
    ("My Attr = 1\n", 1, "is not an attribute name"),
    (" = 5\n", 1, "is not an attribute name"),
    ("A = 1\nB =\n", 2, "has no value"),
    ("A == 5\n", 1, "'=='"),
    ('A = 1\nB = 2\nC = "unterminated\n', 3, "unterminated string"),
    ('A = "ends with escaped quote\\" && x\n', 1, "unterminated string"),
    ("A = (x && (y)\n", 1, "never closed"),
    ("A = x)\n", 1, "closes nothing"),
    ("A = { 1, 2 ]\n", 1, "']' closes '{'"),
    ('A = 1\nB = "raw nul \x00 inside"\n', 2, "NUL"),
    ("[ A = 1;\n  B = (2;\n]\n", 2, "']' closes '('"),
    ("[ A = 1;\n  B = 2\n", 3, "never closed"),
    ("[ A = 1;\n  2B = 3 ]\n", 2, "is not 'Name = value'"),
    ("[ A = 1;\n  B 3 ]\n", 2, "not followed by '='"),
    ("[ A = 1 ]\nB = 2\n", 1, "after the closing ']'"),
]


@pytest.mark.parametrize(("content", "line", "problem"), MALFORMED)
def test_malformed_line_is_an_error_with_its_line_number(
    tmp_path: Path, content: str, line: int, problem: str
) -> None:
    """A damaged line raises JobAdError: one line, 'job ad FILE line N: problem; what to do'."""
    path = tmp_path / "job.ad"
    path.write_text(content)
    with pytest.raises(JobAdError) as info:
        read_job_ad(path)
    message = str(info.value)
    assert message.startswith(f"job ad {path} line {line}: "), message
    assert problem in message
    assert "; " in message and "\n" not in message


def test_invalid_utf8_names_its_line(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 raise JobAdError naming the line they are on."""
    path = tmp_path / "job.ad"
    path.write_bytes(b'A = 1\nB = "caf\xe9"\n')
    with pytest.raises(JobAdError, match=r"line 2: not valid UTF-8"):
        read_job_ad(path)


def test_missing_file_is_a_job_ad_error(tmp_path: Path) -> None:
    """A job ad file that cannot be read raises JobAdError naming it and $_CONDOR_JOB_AD."""
    path = tmp_path / "absent.ad"
    with pytest.raises(JobAdError, match=r"absent\.ad: cannot read it .*\$_CONDOR_JOB_AD"):
        read_job_ad(path)


# --------------------------------------------------------------------------- defaults


def test_checkpoint_defaults_accepts_a_plain_mapping() -> None:
    """checkpoint_defaults takes any mapping, looks names up ignoring case, and treats an
    undefined attribute as absent."""
    assert checkpoint_defaults(
        {"successcheckpointexitcode": 85, "CHECKPOINTSIG": "usr2", "KillSig": None}
    ) == {"exit_code": 85, "checkpoint_signal": signal.SIGUSR2}


BAD_DEFAULTS = [
    ("SuccessCheckpointExitCode", 256, "--exit-code"),
    ("SuccessCheckpointExitCode", -1, "--exit-code"),
    ("CheckpointSig", "SIGKILL", "--trigger-signal"),
    ("CheckpointSig", 12.0, "--trigger-signal"),
    ("CheckpointSig", True, "--trigger-signal"),
    ("KillSig", 9, "--kill-signal"),
    ("KillSig", "SIGSTOP", "--kill-signal"),
    ("KillSig", 1000, "--kill-signal"),
    ("JobMaxVacateTime", -1, "--kill-grace"),
    ("JobMaxVacateTime", "600", "--kill-grace"),
    ("JobMaxVacateTime", math.inf, "--kill-grace"),
    ("JobMaxVacateTime", False, "--kill-grace"),
    ("KillSig", ERROR, "--kill-signal"),
    ("SuccessCheckpointExitCode", Expression("80 + 5"), "--exit-code"),
    ("JobMaxVacateTime", Expression("MachineMaxVacateTime"), "--kill-grace"),
]


BY_SIGNAL = {"SuccessCheckpointExitBySignal": True}
LOOKUP_INTEGER = [  # (attributes, expected defaults without notes, note or error expected)
    ({"SuccessCheckpointExitCode": 85.0}, {"exit_code": 85}, None),
    ({"SuccessCheckpointExitCode": 85.9}, {"exit_code": 85}, "note"),
    ({"SuccessCheckpointExitCode": True}, {"exit_code": 1}, "note"),
    ({"SuccessCheckpointExitCode": "85"}, None, "error"),
    ({"SuccessCheckpointExitCode": Expression("yes")}, None, "error"),
    ({"SuccessCheckpointExitCode": 0}, None, "error"),
    ({**BY_SIGNAL, "SuccessCheckpointExitSignal": 12.0}, {"exit_by_signal": True, "exit_signal": 12}, None),
    ({**BY_SIGNAL, "SuccessCheckpointExitSignal": "SIGUSR2"}, None, "error"),
    ({**BY_SIGNAL, "SuccessCheckpointExitSignal": 0}, None, "error"),
    ({**BY_SIGNAL, "SuccessCheckpointExitSignal": 12, "SuccessCheckpointExitCode": "85"},
     {"exit_by_signal": True, "exit_signal": 12}, "note"),
    ({"SuccessCheckpointExitSignal": "SIGNOPE"}, {}, "note"),
]


@pytest.mark.parametrize(("attrs", "expected", "outcome"), LOOKUP_INTEGER)
def test_checkpoint_promise_is_read_with_lookup_integer(attrs: dict[str, Any], expected: Any, outcome: Any) -> None:
    """Rule: SuccessCheckpointExitCode and SuccessCheckpointExitSignal are read as the starter's
    LookupInteger reads them: a real is truncated (85.0 is 85, 85.9 is 85 with a note), a boolean
    is 1/0 (a note), a string or a bare word is 0. A promise HTCondor reads as status 0 (a code
    without BySignal, a signal with it) is one the supervisor cannot keep (exit 0 is its success):
    a JobAdError that says LookupInteger reads 0 and what to write; an attribute HTCondor does not
    use (the code under BySignal, the signal without it) only gets a note."""
    if outcome == "error":
        with pytest.raises(JobAdError) as info:
            checkpoint_defaults(JobAd(attrs))
        message = str(info.value)
        assert "With 0" in message and "\n" not in message
        name = next(n for n in attrs if n != "SuccessCheckpointExitBySignal")
        assert f"write {name} = " in message
        if isinstance(attrs[name], (str, Expression)):
            assert "LookupInteger reads no number" in message
        return
    got = dict(checkpoint_defaults(JobAd(attrs)))
    notes = got.pop("notes", [])
    assert got == expected
    assert len(notes) == (outcome == "note") and all("LookupInteger" in n for n in notes), notes


def test_exit_signal_name_suggests_its_number() -> None:
    """Rule: SuccessCheckpointExitSignal = "SIGUSR2" under BySignal is refused with the bare number
    to write instead (12), not a generic N."""
    with pytest.raises(JobAdError, match=r"SuccessCheckpointExitSignal = 12 \(the signal number\)"):
        checkpoint_defaults(JobAd({**BY_SIGNAL, "SuccessCheckpointExitSignal": "SIGUSR2"}))


@pytest.mark.parametrize(("attr", "value", "flag"), BAD_DEFAULTS)
def test_bad_checkpoint_attribute_is_an_error(attr: str, value: Any, flag: str) -> None:
    """A checkpoint attribute of the wrong kind (exit code outside 1-255, a non-boolean, an
    uncatchable or unknown signal, a negative vacate time, an expression, error) raises
    JobAdError naming the attribute and the flag that overrides it."""
    with pytest.raises(JobAdError) as info:
        checkpoint_defaults(JobAd({attr: value}))
    message = str(info.value)
    assert attr in message and flag in message and "\n" not in message


# Formerly in BAD_DEFAULTS (a JobAdError): HTCondor's LookupBool reads a number as a boolean and a
# string as false (supervisor/condor/attributes.py; seen on HTCondor 25.0.13), and the supervisor
# now reads them as the dry run and check do.
LOOKUPBOOL_DEFAULTS = [
    ("SuccessCheckpointExitBySignal", 1, "exit_by_signal", True),
    ("SuccessCheckpointExitBySignal", "true", "exit_by_signal", False),
    ("WantCheckpointSignal", 1, "want_checkpoint_signal", True),
    ("WantCheckpointSignal", 0, "want_checkpoint_signal", False),
    ("WantCheckpointSignal", Expression("yes"), "want_checkpoint_signal", False),
]


@pytest.mark.parametrize(("attr", "value", "key", "expected"), LOOKUPBOOL_DEFAULTS)
def test_boolean_attribute_is_read_like_lookupbool(attr: str, value: Any, key: str, expected: bool) -> None:
    """A boolean checkpoint attribute is read as the starter's LookupBool reads it: a number is
    true when non-zero; a string or a bare word (an undefined reference) is false, with a note
    naming the attribute and the flag that overrides it."""
    got = checkpoint_defaults(JobAd({attr: value}))
    assert got[key] is expected  # type: ignore[literal-required]
    notes = got.get("notes", [])
    assert (len(notes) == 1) is isinstance(value, (str, Expression))
    assert all(attr in n and "LookupBool" in n and "\n" not in n for n in notes)


def test_bad_checkpoint_attribute_names_file_and_line(tmp_path: Path) -> None:
    """The error for a bad attribute read from a file names the file and its line."""
    path = tmp_path / "job.ad"
    path.write_text('ClusterId = 1\nCheckpointSig = "SIGKILL"\n')
    with pytest.raises(JobAdError, match=rf"^job ad {path} line 2: CheckpointSig"):
        checkpoint_defaults(read_job_ad(path))


def test_expression_checkpoint_attribute_is_an_error_but_others_are_not() -> None:
    """Expressions elsewhere in the ad are fine; only a checkpoint attribute must be literal."""
    ad = parse_job_ad("Requirements = (TARGET.Memory > 1)\nKillSig = SIGTERM\n", source="f")
    assert isinstance(ad["Requirements"], Expression)
    with pytest.raises(JobAdError, match=r"^job ad f line 2: KillSig = SIGTERM is an expression"):
        checkpoint_defaults(ad)


# --------------------------------------------------------------------------- writing


@pytest.mark.parametrize(
    ("value", "new", "old"),
    [
        (True, "true", "true"),
        (False, "false", "false"),
        (85, "85", "85"),
        (-3, "-3", "-3"),
        (signal.SIGUSR2, "12", "12"),
        (0.25, "0.25", "0.25"),
        (1e300, "1e+300", "1e+300"),
        (math.inf, 'real("INF")', 'real("INF")'),
        (-math.inf, 'real("-INF")', 'real("-INF")'),
        (None, "undefined", "undefined"),
        (ERROR, "error", "error"),
        ('say "hi"', '"say \\"hi\\""', '"say \\"hi\\""'),
        ("C:\\temp", '"C:\\\\temp"', '"C:\\temp"'),
        ("a\tb\x01", '"a\\tb\\001"', '"a\tb\x01"'),
        ("café", '"café"', '"café"'),
        (Expression("(a == 1)"), "(a == 1)", "(a == 1)"),
        (Expression('regexp("x\\\\.y", A)'), 'regexp("x\\\\.y", A)', 'regexp("x\\.y", A)'),
    ],
)
def test_format_value(value: object, new: str, old: str) -> None:
    """format_value writes ClassAd literals (new syntax by default, old syntax on request):
    lower-case booleans, decimal integers, shortest round-trip reals, escaped strings."""
    assert format_value(value) == new
    assert format_value(value, old_syntax=True) == old


@pytest.mark.parametrize(
    ("value", "old_syntax", "error"),
    [
        ("nul\x00", False, ValueError),
        ("line\nbreak", True, ValueError),
        ("carriage\rreturn", True, ValueError),
        (2**63, False, ValueError),
        (Expression('strcat("a\\\\", X)'), True, ValueError),
        ([1, 2], False, TypeError),
        (b"bytes", False, TypeError),
    ],
)
def test_format_value_refuses_what_cannot_round_trip(
    value: object, old_syntax: bool, error: type[Exception]
) -> None:
    """What cannot be written so that it reads back the same raises instead (a NUL; a newline
    or a mid-line trailing backslash in old syntax; an integer beyond 64 bits; other types)."""
    with pytest.raises(error):
        format_value(value, old_syntax=old_syntax)


def test_format_ad_writes_name_value_lines() -> None:
    """format_ad writes one 'Name = value' line per attribute, in order, in old syntax."""
    text = format_ad({"ClusterId": 7, "Iwd": "C:\\jobs\\", "WantCheckpointSignal": True})
    assert text == 'ClusterId = 7\nIwd = "C:\\jobs\\"\nWantCheckpointSignal = true\n'
    assert dict(parse_job_ad(text)) == {
        "ClusterId": 7,
        "Iwd": "C:\\jobs\\",
        "WantCheckpointSignal": True,
    }


@pytest.mark.parametrize("attrs", [{"bad name": 1}, {"1st": 1}, {"A": 1, "a": 2}])
def test_format_ad_refuses_bad_or_duplicate_names(attrs: dict[str, object]) -> None:
    """Names that are not ClassAd attribute names, or repeat ignoring case, raise ValueError."""
    with pytest.raises(ValueError):
        format_ad(attrs)


SCALARS = st.one_of(
    CLASSAD_TEXT, INT64, st.floats(allow_nan=True, allow_infinity=True), st.booleans()
)


@given(SCALARS)
def test_format_value_round_trips_through_parse_literal(value: object) -> None:
    """parse_literal(format_value(x)) == x for any string, 64-bit int, float or bool."""
    assert same(parse_literal(format_value(value)), value)


@settings(deadline=None)
@given(value=SCALARS)
def test_format_value_round_trips_through_classad2(classad2: Any, value: object) -> None:
    """classad2 evaluates format_value(x) to x for any string, 64-bit int, float or bool."""
    assert same(classad2.ExprTree(format_value(value)).eval(), value)


@settings(deadline=None)
@given(value=st.one_of(OLD_TEXT, INT64, st.floats(), st.booleans()))
def test_format_ad_round_trips_through_classad2_and_read(classad2: Any, value: object) -> None:
    """A one-attribute ad written by format_ad reads back to x with classad2's old-syntax
    parser and with parse_job_ad, for any value old syntax can hold."""
    text = format_ad({"X": value})
    back = classad2.parseOne(text, parser=classad2.ParserType.Old)
    assert same(back.eval("X"), value)
    assert same(parse_job_ad(text)["X"], value)
    assert same(parse_literal(format_value(value, old_syntax=True), old_syntax=True), value)


# --------------------------------------------------------------------------- import


def test_import_is_cheap_and_stdlib_only() -> None:
    """Importing supervisor.jobad pulls in neither psutil, tenacity nor the htcondor wheel."""
    code = (
        "import sys, supervisor.jobad; "
        "print(sorted(m for m in ('psutil', 'tenacity', 'classad2', 'htcondor2', "
        "'dataclasses', 'inspect') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_remove_kill_sig_is_read_as_a_soft_kill_signal() -> None:
    """Rule 9 (os_proc.cpp:941): RemoveKillSig, a name or a number, is read like KillSig."""
    ad = parse_job_ad('KillSig = "SIGTERM"\nRemoveKillSig = "SIGQUIT"\n')
    assert checkpoint_defaults(ad)["remove_kill_signal"] == signal.SIGQUIT
    assert checkpoint_defaults(parse_job_ad("RemoveKillSig = 3\n"))["remove_kill_signal"] == 3


def test_machine_max_vacate_time_from_the_machine_ad(tmp_path: Path) -> None:
    """MachineMaxVacateTime is read from the machine ad: a number, or a product as HTCondor's
    default configuration writes it; anything else (or no file) is None, never an error."""
    from supervisor.jobad import machine_max_vacate_time

    ad = tmp_path / ".machine.ad"
    for text, want in (("MachineMaxVacateTime = 60\n", 60.0), ("MachineMaxVacateTime = 10 * 60\n", 600.0),
                       ("MachineMaxVacateTime = Foo + 1\n", None), ("Cpus = 1\n", None)):
        ad.write_text(text)
        assert machine_max_vacate_time(ad) == want
    assert machine_max_vacate_time(tmp_path / "absent") is None
