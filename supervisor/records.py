"""``record``: frozen dataclasses without the cost of ``dataclasses`` at start-up.

The run command's modules declare some thirty small value classes (events, commands, rules,
settings). ``dataclasses`` imports ``inspect`` and compiles each generated method with ``exec``;
measured here, that was more than half of the run command's import time. ``record`` gives the
same behaviour for what this package uses (positional/keyword ``__init__`` with defaults and
``field(default_factory=...)``, ``__post_init__``, frozen attributes, ``__eq__``, ``__hash__``,
``__repr__`` honouring ``repr=False``) by closures, with no ``exec``. Type checkers see the real
``dataclass``: the two must stay interchangeable, and ``tests/unit/test_records.py`` checks that.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from typing import Any, Callable, TypeVar


if TYPE_CHECKING:
    _T = TypeVar("_T")
_MISSING: Any = object()
setattr_ = object.__setattr__


class _Field:
    __slots__ = ("default", "default_factory", "repr")

    def __init__(self, default: Any, default_factory: Any, repr: bool) -> None:
        self.default = default
        self.default_factory = default_factory
        self.repr = repr


class FrozenInstanceError(AttributeError):
    pass


def _field(*, default: Any = _MISSING, default_factory: Any = _MISSING, repr: bool = True) -> Any:
    return _Field(default, default_factory, repr)


def _record(cls: Any = None, *, frozen: bool = False) -> Any:
    def wrap(cls: Any) -> Any:
        specs: dict[str, _Field] = {}
        for base in reversed(cls.__mro__[1:]):
            specs.update(getattr(base, "__record_specs__", {}))
        for name in cls.__dict__.get("__annotations__", {}):  # noqa: RUF063  (3.9: no get_annotations)
            value = cls.__dict__.get(name, _MISSING)
            if isinstance(value, _Field):
                specs[name] = value
                if value.default is not _MISSING:
                    setattr(cls, name, value.default)
                else:
                    delattr(cls, name)
            elif isinstance(value, (property, staticmethod, classmethod)):
                continue
            else:
                specs[name] = _Field(value, _MISSING, True)
        names = tuple(specs)
        shown = tuple(n for n in names if specs[n].repr)
        post_init = getattr(cls, "__post_init__", None)

        count = len(names)
        position = {name: i for i, name in enumerate(names)}
        defaults = tuple((n, f.default) for n, f in specs.items() if f.default is not _MISSING)
        factories = tuple((n, f.default_factory) for n, f in specs.items()
                          if f.default is _MISSING and f.default_factory is not _MISSING)
        required = tuple(n for n, f in specs.items() if f.default is _MISSING and f.default_factory is _MISSING)

        # Built once per signal passed on (the event, the commands, the step): no dict of the
        # values on the way, and each value set as object.__setattr__ does (the instance keeps
        # CPython's compact attribute storage: reading a field stays as fast as a plain class's).
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            given = len(args)
            if given > count:
                raise TypeError(f"{cls.__name__}() takes {count} positional arguments but {given} were given")
            for name, value in zip(names, args):
                setattr_(self, name, value)
            if kwargs:
                for key, value in kwargs.items():
                    at = position.get(key)
                    if at is None:
                        raise TypeError(f"{cls.__name__}() got an unexpected keyword argument {key!r}")
                    if at < given:
                        raise TypeError(f"{cls.__name__}() got multiple values for argument {key!r}")
                    setattr_(self, key, value)
            if given + len(kwargs) < count:
                for name in required:
                    if position[name] >= given and name not in kwargs:
                        raise TypeError(f"{cls.__name__}() missing required argument {name!r}")
                for name, default in defaults:
                    if position[name] >= given and name not in kwargs:
                        setattr_(self, name, default)
                for name, factory in factories:
                    if position[name] >= given and name not in kwargs:
                        setattr_(self, name, factory())
            if post_init is not None:
                post_init(self)

        def _key(self: Any) -> tuple[Any, ...]:
            return tuple(getattr(self, n) for n in names)

        def __eq__(self: Any, other: Any) -> Any:
            if other.__class__ is self.__class__:
                return _key(self) == _key(other)
            return NotImplemented

        def __repr__(self: Any) -> str:
            inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in shown)
            return f"{self.__class__.__qualname__}({inner})"

        if "__init__" not in cls.__dict__:  # a class's own __init__ is kept, as dataclass keeps it
            cls.__init__ = __init__
        cls.__eq__ = __eq__
        cls.__repr__ = __repr__
        cls.__record_specs__ = specs
        if frozen:
            def __setattr__(self: Any, name: str, value: Any) -> None:
                raise FrozenInstanceError(f"cannot assign to field {name!r}")

            def __delattr__(self: Any, name: str) -> None:
                raise FrozenInstanceError(f"cannot delete field {name!r}")

            def __hash__(self: Any) -> int:
                return hash(_key(self))

            cls.__setattr__ = __setattr__
            cls.__delattr__ = __delattr__
            cls.__hash__ = __hash__
        else:
            cls.__hash__ = None
        return cls

    return wrap if cls is None else wrap(cls)


def _replace(obj: Any, **changes: Any) -> Any:
    """A copy of the record ``obj`` with ``changes`` (``dataclasses.replace`` for records)."""
    values = {name: getattr(obj, name) for name in obj.__record_specs__}
    values.update(changes)
    return obj.__class__(**values)


if TYPE_CHECKING:
    from dataclasses import dataclass as record
    from dataclasses import field, replace
else:
    record: Callable[..., Any] = _record
    field = _field
    replace = _replace

__all__ = ["FrozenInstanceError", "field", "record", "replace"]
