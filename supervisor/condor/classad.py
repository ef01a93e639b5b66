"""A small ClassAd expression language: enough for a submit file's job policy.

The dry run evaluates ``on_exit_hold``, ``on_exit_hold_reason`` and ``on_exit_hold_subcode`` when
the job ends, as the shadow does (HTCondor 25.0.13: hold code 3, the subcode and reason from
those expressions, or "The job attribute OnExitHold expression '...' evaluated to TRUE"). Only
the dry run needs this, never the supervisor, and the ``htcondor`` wheel stays an optional test
oracle, so the language is implemented here: literals (integers, reals, strings, ``true``,
``false``, ``undefined``, ``error``), lists, attribute references (case-insensitive, ``MY.``),
``?:``, ``||``, ``&&``, the comparisons with ``=?=``/``is`` and ``=!=``/``isnt``, ``+ - * / %``,
unary ``! - +`` and the functions policy expressions use (``member``, ``strcat``,
``ifThenElse``, ``isUndefined`` ...). Semantics follow the ClassAd reference: three-valued
logic with UNDEFINED and ERROR, ``==`` on strings ignores case and ``=?=`` does not, integer
division truncates, an unknown function is ERROR. ``unparse`` prints an expression as HTCondor's
compact unparser does (the text of the default hold reason).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Optional, Union

from ..errors import SubmitFileError


class _Special:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


UNDEFINED: Any = _Special("undefined")
ERROR: Any = _Special("error")

Value = Any  # bool | int | float | str | list | UNDEFINED | ERROR
Node = tuple[Any, ...]  # ("lit", v) ("attr", name) ("list", [..]) ("call", name, [..]) ("un", op, x)
# ("bin", op, l, r) ("cond", c, a, b) ("paren", x)

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<real>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
    | (?P<int>\d+)
    | (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)
    | (?P<op>=\?=|=!=|==|!=|<=|>=|&&|\|\||[-+*/%<>!?:(){},])
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"true": True, "false": False, "undefined": UNDEFINED, "error": ERROR}
_COMPARE = {"==", "!=", "=?=", "=!=", "<", "<=", ">", ">="}


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise SubmitFileError(f"cannot read the expression {text!r} at {text[pos:pos + 10]!r}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "name" and value.lower() in ("is", "isnt"):
            kind, value = "op", "=?=" if value.lower() == "is" else "=!="
        out.append((kind, value))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> Optional[str]:
        return self.toks[self.i][1] if self.i < len(self.toks) and self.toks[self.i][0] == "op" else None

    def take(self, op: str) -> None:
        if self.peek() != op:
            got = self.toks[self.i][1] if self.i < len(self.toks) else "the end"
            raise SubmitFileError(f"expression {self.text!r}: expected {op!r}, found {got!r}")
        self.i += 1

    def parse(self) -> Node:
        node = self.cond()
        if self.i != len(self.toks):
            raise SubmitFileError(f"expression {self.text!r}: unexpected {self.toks[self.i][1]!r}")
        return node

    def cond(self) -> Node:
        c = self.binary(0)
        if self.peek() == "?":
            self.i += 1
            a = self.cond()
            self.take(":")
            b = self.cond()
            return ("cond", c, a, b)
        return c

    _LEVELS = (("||",), ("&&",), ("==", "!=", "=?=", "=!="), ("<", "<=", ">", ">="), ("+", "-"),
               ("*", "/", "%"))

    def binary(self, level: int) -> Node:
        if level == len(self._LEVELS):
            return self.unary()
        node = self.binary(level + 1)
        while self.peek() in self._LEVELS[level]:
            op = self.peek() or ""
            self.i += 1
            node = ("bin", op, node, self.binary(level + 1))
        return node

    def unary(self) -> Node:
        op = self.peek()
        if op in ("!", "-", "+"):
            self.i += 1
            return ("un", op, self.unary())
        return self.primary()

    def primary(self) -> Node:
        if self.i >= len(self.toks):
            raise SubmitFileError(f"expression {self.text!r} ends too early")
        kind, value = self.toks[self.i]
        self.i += 1
        if kind == "int":
            return ("lit", int(value))
        if kind == "real":
            return ("lit", float(value))
        if kind == "str":
            return ("lit", re.sub(r"\\(.)", r"\1", value[1:-1]))
        if kind == "name":
            if value.lower() in _KEYWORDS:
                return ("lit", _KEYWORDS[value.lower()])
            if self.peek() == "(":
                self.i += 1
                return ("call", value, self.items(")"))
            return ("attr", value)
        if value == "(":
            node = self.cond()
            self.take(")")
            return ("paren", node)
        if value == "{":
            return ("list", self.items("}"))
        raise SubmitFileError(f"expression {self.text!r}: unexpected {value!r}")

    def items(self, close: str) -> list[Node]:
        out: list[Node] = []
        if self.peek() == close:
            self.i += 1
            return out
        while True:
            out.append(self.cond())
            if self.peek() == ",":
                self.i += 1
                continue
            self.take(close)
            return out


def parse(text: str) -> Node:
    """The tree of an expression; SubmitFileError naming it when it cannot be read."""
    return _Parser(text).parse()


# --- printing -----------------------------------------------------------------------------------


def _literal(v: Value) -> str:
    if isinstance(v, _Special):
        return v.name
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, float):
        return _real(v)
    return str(v)


def unparse(node: Node) -> str:
    """The compact text HTCondor prints for an expression (``member(ExitCode,{ 64,70 })``,
    `` !(x)``): what the default on_exit_hold reason quotes."""
    kind = node[0]
    if kind == "lit":
        return _literal(node[1])
    if kind == "attr":
        return str(node[1])
    if kind == "paren":
        return f"({unparse(node[1])})"
    if kind == "list":
        return "{ " + ",".join(unparse(n) for n in node[1]) + " }"
    if kind == "call":
        return f"{node[1]}({','.join(unparse(n) for n in node[2])})"
    if kind == "un":
        return f" {node[1]}{unparse(node[2])}"
    if kind == "bin":
        return f"{unparse(node[2])} {node[1]} {unparse(node[3])}"
    return f"{unparse(node[1])} ? {unparse(node[2])} : {unparse(node[3])}"


def _real(v: float) -> str:
    """Reals as ClassAds print them in strcat() and unparse: %.15E."""
    return f"{v:.15E}"


# --- evaluation ---------------------------------------------------------------------------------


def _num(v: Value) -> Union[int, float, None]:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        return v
    return None


def _truth(v: Value) -> Value:
    """A value as a boolean operand: True/False, UNDEFINED, or ERROR."""
    if v is UNDEFINED or v is ERROR:
        return v
    n = _num(v)
    return ERROR if n is None else n != 0


def _same(a: Value, b: Value) -> bool:
    """``=?=``: same type and value; strings compared with case."""
    if isinstance(a, _Special) or isinstance(b, _Special):
        return a is b
    if type(a) is not type(b):
        return False
    return bool(a == b)


def _compare(op: str, a: Value, b: Value) -> Value:
    if op == "=?=":
        return _same(a, b)
    if op == "=!=":
        return not _same(a, b)
    if a is ERROR or b is ERROR:
        return ERROR
    if a is UNDEFINED or b is UNDEFINED:
        return UNDEFINED
    if isinstance(a, str) and isinstance(b, str):
        x: Any = a.lower()
        y: Any = b.lower()
    else:
        x, y = _num(a), _num(b)
        if x is None or y is None:
            return ERROR
    return {"==": x == y, "!=": x != y, "<": x < y, "<=": x <= y, ">": x > y, ">=": x >= y}[op]


def _arith(op: str, a: Value, b: Value) -> Value:
    if a is ERROR or b is ERROR:
        return ERROR
    if a is UNDEFINED or b is UNDEFINED:
        return UNDEFINED
    x, y = _num(a), _num(b)
    if x is None or y is None:
        return ERROR
    if op == "+":
        return x + y
    if op == "-":
        return x - y
    if op == "*":
        return x * y
    if y == 0:
        return ERROR
    if isinstance(x, int) and isinstance(y, int):
        q = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)  # C: towards zero
        return q if op == "/" else x - q * y
    if op == "/":
        return x / y
    return ERROR


def _string(v: Value) -> Value:
    if isinstance(v, str):
        return v
    if isinstance(v, (bool, int, float)):
        return _literal(v)
    return ERROR if v is ERROR else UNDEFINED


def _call(name: str, args: list[Value]) -> Value:
    fn = name.lower()
    if fn in ("isundefined", "iserror", "isstring", "isinteger", "isreal", "isboolean", "islist"):
        if len(args) != 1:
            return ERROR
        v = args[0]
        return {"isundefined": v is UNDEFINED, "iserror": v is ERROR,
                "isstring": isinstance(v, str), "isboolean": isinstance(v, bool),
                "isinteger": isinstance(v, int) and not isinstance(v, bool),
                "isreal": isinstance(v, float), "islist": isinstance(v, list)}[fn]
    if fn == "ifthenelse":
        if len(args) != 3:
            return ERROR
        c = _truth(args[0])
        return c if isinstance(c, _Special) else (args[1] if c else args[2])
    if fn == "member":
        if len(args) != 2 or not isinstance(args[1], list):
            return ERROR
        if args[0] is UNDEFINED or args[0] is ERROR:
            return args[0]
        return any(_compare("==", args[0], item) is True for item in args[1])
    if fn == "strcat":
        parts = [_string(a) for a in args]
        for bad in (ERROR, UNDEFINED):
            if any(p is bad for p in parts):
                return bad
        return "".join(parts)
    if fn == "size" and len(args) == 1 and isinstance(args[0], (str, list)):
        return len(args[0])
    if fn in ("toupper", "tolower") and len(args) == 1 and isinstance(args[0], str):
        return args[0].upper() if fn == "toupper" else args[0].lower()
    if fn == "string" and len(args) == 1:
        return _string(args[0])
    if fn in ("int", "real") and len(args) == 1:
        n = _num(args[0])
        if n is None and isinstance(args[0], str):
            try:
                n = float(args[0])
            except ValueError:
                return ERROR
        if n is None:
            return args[0] if args[0] is UNDEFINED else ERROR
        return int(n) if fn == "int" else float(n)
    return ERROR


class Evaluator:
    """Evaluates expressions against one ad: a mapping of attribute names (any case) to Python
    values, or to objects with a ``text`` attribute holding an expression (evaluated on use)."""

    def __init__(self, ad: Mapping[str, object]) -> None:
        self.ad = {k.lower(): v for k, v in ad.items()}
        self.busy: set[str] = set()

    def attribute(self, name: str) -> Value:
        key = name.lower()
        if key.startswith("my."):
            key = key[3:]
        elif "." in key:
            return UNDEFINED  # TARGET. and other scopes: no other ad here
        if key not in self.ad or key in self.busy:
            return UNDEFINED
        value = self.ad[key]
        text = getattr(value, "text", None)
        if isinstance(text, str):
            self.busy.add(key)
            try:
                return self.eval(parse(text))
            except SubmitFileError:
                return ERROR
            finally:
                self.busy.discard(key)
        return value

    def eval(self, node: Node) -> Value:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "attr":
            return self.attribute(node[1])
        if kind == "paren":
            return self.eval(node[1])
        if kind == "list":
            return [self.eval(n) for n in node[1]]
        if kind == "call":
            if node[1].lower() == "ifthenelse" and len(node[2]) == 3:  # lazy, as HTCondor's
                c = _truth(self.eval(node[2][0]))
                return c if isinstance(c, _Special) else self.eval(node[2][1 if c else 2])
            return _call(node[1], [self.eval(n) for n in node[2]])
        if kind == "cond":
            c = _truth(self.eval(node[1]))
            return c if isinstance(c, _Special) else self.eval(node[2] if c else node[3])
        if kind == "un":
            v = self.eval(node[2])
            if node[1] == "!":
                t = _truth(v)
                return t if isinstance(t, _Special) else not t
            return _arith("-" if node[1] == "-" else "+", 0, v)
        op = node[1]
        if op in ("&&", "||"):
            return self._logic(op, node[2], node[3])
        a, b = self.eval(node[2]), self.eval(node[3])
        return _compare(op, a, b) if op in _COMPARE else _arith(op, a, b)

    def _logic(self, op: str, left: Node, right: Node) -> Value:
        a = _truth(self.eval(left))
        if a is ERROR:
            return ERROR
        if op == "&&" and a is False:
            return False
        if op == "||" and a is True:
            return True
        b = _truth(self.eval(right))
        if b is ERROR:
            return ERROR
        if a is UNDEFINED:
            if op == "&&":
                return False if b is False else UNDEFINED
            return True if b is True else UNDEFINED
        return b


def evaluate(text: str, ad: Mapping[str, object]) -> Value:
    return Evaluator(ad).eval(parse(text))


def as_bool(v: Value) -> bool:
    """EvalBool: true, or a number other than 0; anything else (UNDEFINED too) is false."""
    return _truth(v) is True


def as_int(v: Value, default: int = 0) -> int:
    n = _num(v)
    return int(n) if n is not None else default

