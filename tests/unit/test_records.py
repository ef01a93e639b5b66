"""``supervisor.records.record`` behaves like a frozen dataclass for everything the package uses."""

from __future__ import annotations

import dataclasses

import pytest

from supervisor import core, rules
from supervisor.records import FrozenInstanceError, field, record


@record(frozen=True)
class Point:
    x: int
    y: int = 2
    tags: dict = field(default_factory=dict)
    hidden: str = field(default="h", repr=False)


@dataclasses.dataclass(frozen=True)
class RealPoint:
    x: int
    y: int = 2
    tags: dict = dataclasses.field(default_factory=dict)
    hidden: str = dataclasses.field(default="h", repr=False)


def test_record_matches_a_frozen_dataclass():
    """Construction, defaults, factories, equality, repr and frozenness match dataclasses."""
    for cls in (Point, RealPoint):
        p = cls(1)
        assert (p.x, p.y, p.tags, p.hidden) == (1, 2, {}, "h")
        assert cls(1, y=3) == cls(1, 3) != cls(1, 4)
        assert cls(1).tags is not cls(1).tags
        assert repr(cls(1, 5)).endswith("(x=1, y=5, tags={})")
        with pytest.raises(AttributeError):
            p.x = 3  # type: ignore[misc]
        with pytest.raises(TypeError):
            cls()  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            cls(1, z=3)  # type: ignore[call-arg]
    assert hash(Point(1, 2, ())) == hash(Point(1, 2, ()))  # type: ignore[arg-type]
    assert issubclass(FrozenInstanceError, AttributeError)


@pytest.mark.parametrize("args, kwargs", [
    ((1,), {}), ((1, 3), {}), ((1, 3, {"a": 1}), {}), ((1, 3, {}, "x"), {}), ((), {"x": 1}),
    ((), {"hidden": "z", "x": 1}), ((1,), {"tags": {"b": 2}}), ((1,), {"hidden": "q", "y": 9}),
    ((), {}), ((1, 2, {}, "h", 5), {}), ((1,), {"x": 2}), ((1, 2), {"y": 3}), ((1,), {"z": 3}), ((), {"y": 1}),
])
def test_every_call_shape_builds_or_refuses_as_a_dataclass(args, kwargs):
    """Positional, keyword and mixed calls, defaults and factories, and each kind of wrong call
    (too many, missing, unexpected, given twice): the same values or the same TypeError."""
    def build(cls):
        try:
            p = cls(*args, **kwargs)
        except TypeError as exc:
            return "TypeError", "multiple" in str(exc), "unexpected" in str(exc), "missing" in str(exc)
        return p.x, p.y, p.tags, p.hidden

    assert build(Point) == build(RealPoint)


def test_distinct_record_types_are_never_equal():
    """Two commands with the same fields but different types differ (unlike namedtuples)."""
    assert core.KillTree() != core.RunValidator()
    assert core.Tick(1.0) != core.TreeGone(1.0)
    assert core.KillTree() == core.KillTree()


def test_rules_validate_in_post_init():
    """__post_init__ runs: rule settings are checked at construction."""
    from supervisor.errors import ConfigError

    with pytest.raises(ConfigError):
        rules.Quiet(-1)
    assert rules.Marker("m").needs == frozenset({"markers"})
    assert "needs" not in repr(rules.Marker("m"))


def test_run_path_does_not_import_dataclasses():
    """The run command's modules do not pull in dataclasses (and with it inspect)."""
    import subprocess
    import sys

    code = "import sys, supervisor.loop, supervisor.config; print('dataclasses' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_class_own_init_is_kept_as_by_a_dataclass():
    """``record`` keeps an ``__init__`` the class defines (dataclass does too); equality, hash,
    repr and frozenness still come from the fields."""
    for deco in (record(frozen=True), dataclasses.dataclass(frozen=True)):
        @deco
        class Pair:
            a: int
            b: int = 0

            def __init__(self, a: int, b: int = 0) -> None:
                object.__setattr__(self, "a", a * 10)
                object.__setattr__(self, "b", b)

        assert (Pair(1).a, Pair(1, b=2).b) == (10, 2)
        assert Pair(1) == Pair(1) != Pair(2)
        assert hash(Pair(1)) == hash(Pair(1))
        assert repr(Pair(1, 2)).endswith("Pair(a=10, b=2)")
        with pytest.raises(AttributeError):
            Pair(1).a = 3  # type: ignore[misc]


@pytest.mark.parametrize("cls, args, kwargs", [
    (core.SignalReceived, (1.5, 10), {}), (core.SignalReceived, (), {"now": 1.5, "signum": 10}),
    (core.SignalReceived, (1.5,), {"signum": 10}), (core.SendSignal, (10,), {}),
    (core.SendSignal, (10, core.Target.CHILD), {}), (core.SendSignal, (), {"signum": 10, "target": core.Target.CHILD}),
    (core.Record, ("k",), {}), (core.Record, ("k", {"a": 1}), {"level": "debug"}),
    (core.Record, (), {"kind": "k", "message": "m", "level": "warning", "fields": {}}),
    (core.SignalReceived, (1.5,), {}), (core.SendSignal, (10, core.Target.CHILD, 3), {}),
    (core.Record, ("k",), {"kind": "j"}), (core.Record, ("k",), {"colour": 1}),
])
def test_the_written_out_inits_of_the_signal_path_match_the_generated_one(cls, args, kwargs):
    """SignalReceived writes its __init__ out (the signal pass-on path; SendSignal and Record, made
    once per signal number, keep the generated one): the same values, defaults, fresh factory
    dicts and refusals as the one ``record`` generates."""
    generic = record(frozen=True)(type(cls.__name__, (), {
        "__annotations__": dict(cls.__annotations__),
        **{n: getattr(cls, n) for n in cls.__annotations__ if hasattr(cls, n)},
        **({"fields": field(default_factory=dict)} if cls is core.Record else {}),
    }))

    def build(c):
        try:
            obj = c(*args, **kwargs)
        except TypeError:
            return "TypeError"
        return tuple(getattr(obj, n) for n in cls.__annotations__)

    assert build(cls) == build(generic)
    assert core.Record("k").fields == {} and core.Record("k").fields is not core.Record("k").fields
