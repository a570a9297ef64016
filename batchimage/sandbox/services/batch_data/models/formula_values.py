"""The autoscale language's values (double, doubleVec, string, timestamp, timeinterval),
its operators by type and its functions. A wrong type or an impossible value raises
`Problem`; the parser turns it into a located FormulaError.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Callable
from dataclasses import dataclass


class Problem(Exception):
    """A value the operation cannot take (the parser adds the position)."""


class Stop(Exception):
    """`stop()` was called: evaluation ends with the values set so far."""


@dataclass(frozen=True)
class Interval:
    """A timeinterval, in simulated seconds."""

    seconds: float


@dataclass(frozen=True)
class Stamp:
    """A timestamp: epoch seconds of the sandbox clock (the time Batch reports)."""

    at: float

    def member(self, name: str) -> float:
        when = dt.datetime.fromtimestamp(self.at, dt.UTC)
        members = {
            "year": when.year,
            "month": when.month,
            "day": when.day,
            "weekday": when.isoweekday() % 7,  # 0 Sunday, 1 Monday ... 6 Saturday
            "hour": when.hour,
            "minute": when.minute,
            "second": when.second,
        }
        if name not in members:
            raise Problem(f"A timestamp has no member '{name}'")
        return float(members[name])


Vec = tuple[float, ...]
Value = float | str | Vec | Interval | Stamp


def show(value: Value) -> str:
    """A value as Batch writes it in `results`."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, tuple):
        return "[" + ",".join(show(v) for v in value) + "]"
    if isinstance(value, Stamp):
        when = dt.datetime.fromtimestamp(value.at, dt.UTC)
        return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
    if isinstance(value, Interval):
        return _timespan(value.seconds)
    return value


def _timespan(seconds: float) -> str:
    """A timeinterval as .NET writes a TimeSpan: `[-][d.]hh:mm:ss[.fffffff]`."""
    sign, ticks = ("-" if seconds < 0 else ""), round(abs(seconds) * 10_000_000)
    whole, fraction = divmod(ticks, 10_000_000)
    days, rest = divmod(whole, 86400)
    text = f"{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"
    return sign + (f"{days}." if days else "") + text + (f".{fraction:07d}" if fraction else "")


def kind(value: Value) -> str:
    """The language's name for the value's type."""
    if isinstance(value, float):
        return "double"
    if isinstance(value, tuple):
        return "doubleVec"
    if isinstance(value, Interval):
        return "timeinterval"
    if isinstance(value, Stamp):
        return "timestamp"
    return "string"


def number(value: Value) -> float:
    if not isinstance(value, float):
        raise Problem(f"Expected a double but found a {kind(value)} ({show(value)})")
    return value


def truth(value: Value) -> bool:
    """A condition: a double, nonzero is true."""
    return number(value) != 0.0


_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "%": math.fmod,
}
_COMPARE: dict[str, Callable[[object, object], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,  # type: ignore[operator]
    "<=": lambda a, b: a <= b,  # type: ignore[operator]
    ">": lambda a, b: a > b,  # type: ignore[operator]
    ">=": lambda a, b: a >= b,  # type: ignore[operator]
}


def binary(op: str, a: Value, b: Value, scale: float = 1.0) -> Value:
    """`a op b` for the type pairs the language defines (`scale`: clock seconds per
    simulated second, for timestamp arithmetic)."""
    if op in ("&&", "||"):
        x, y = truth(a), truth(b)
        return float(x and y) if op == "&&" else float(x or y)
    if op in _COMPARE:
        return _compare(op, a, b)
    if isinstance(a, float) and isinstance(b, float):
        return _arith(op, a, b)
    if isinstance(a, tuple) or isinstance(b, tuple):
        return _vector(op, a, b)
    if isinstance(a, Stamp) or isinstance(b, Stamp):
        return _stamp(op, a, b, scale)
    return _time(op, a, b)


def _stamp(op: str, a: Value, b: Value, scale: float) -> Value:
    if isinstance(a, Stamp) and isinstance(b, Stamp) and op == "-":
        return Interval((a.at - b.at) / scale if scale else 0.0)
    if isinstance(a, Stamp) and isinstance(b, Interval) and op in "+-":
        return Stamp(_ARITH[op](a.at, b.seconds * scale))
    if isinstance(a, Interval) and isinstance(b, Stamp) and op == "+":
        return Stamp(b.at + a.seconds * scale)
    raise Problem(f"'{op}' does not apply to a {kind(a)} and a {kind(b)}")


def _arith(op: str, a: float, b: float) -> float:
    if op in ("/", "%") and b == 0:
        raise Problem("Division by zero")
    return _ARITH[op](a, b)


def _vector(op: str, a: Value, b: Value) -> Vec:
    if op == "%" or not all(isinstance(v, float | tuple) for v in (a, b)):
        raise Problem(f"'{op}' does not apply to a {kind(a)} and a {kind(b)}")
    left = a if isinstance(a, tuple) else None
    right = b if isinstance(b, tuple) else None
    if left is not None and right is not None and len(left) != len(right):
        raise Problem(f"The vectors have different lengths ({len(left)} and {len(right)})")
    size = len(left if left is not None else right or ())
    xs = left if left is not None else (number(a),) * size
    ys = right if right is not None else (number(b),) * size
    return tuple(_arith(op, x, y) for x, y in zip(xs, ys, strict=True))


def _time(op: str, a: Value, b: Value) -> Value:
    if isinstance(a, Interval) and isinstance(b, Interval) and op in "+-":
        return Interval(_ARITH[op](a.seconds, b.seconds))
    if isinstance(a, Interval) and isinstance(b, float) and op in "*/":
        return Interval(_arith(op, a.seconds, b))
    if isinstance(a, float) and isinstance(b, Interval) and op == "*":
        return Interval(a * b.seconds)
    raise Problem(f"'{op}' does not apply to a {kind(a)} and a {kind(b)}")


def _compare(op: str, a: Value, b: Value) -> float:
    if type(a) is not type(b) or isinstance(a, tuple):
        raise Problem(f"'{op}' does not compare a {kind(a)} with a {kind(b)}")
    if isinstance(a, Interval | Stamp):
        key = "seconds" if isinstance(a, Interval) else "at"
        return float(_COMPARE[op](getattr(a, key), getattr(b, key)))
    return float(_COMPARE[op](a, b))


def negate(value: Value) -> Value:
    if isinstance(value, Interval):
        return Interval(-value.seconds)
    if isinstance(value, tuple):
        return tuple(-v for v in value)
    return -number(value)


def flatten(args: list[Value]) -> Vec:
    """A doubleVecList (doubles and doubleVecs) as one doubleVec."""
    out: list[float] = []
    for arg in args:
        out.extend(arg if isinstance(arg, tuple) else (number(arg),))
    return tuple(out)


def _nonempty(args: list[Value]) -> Vec:
    values = flatten(args)
    if not values:
        raise Problem("The list of values is empty")
    return values


def _std(args: list[Value]) -> float:
    values = _nonempty(args)
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _percentile(args: list[Value]) -> float:
    if len(args) != 2:
        raise Problem("percentile takes a doubleVec and a percentage")
    values, p = sorted(_nonempty(args[:1])), number(args[1])
    if not 0 <= p <= 100:
        raise Problem(f"The percentile {show(p)} is not between 0 and 100")
    rank = max(math.ceil(p / 100 * len(values)), 1)
    return values[rank - 1]


def _val(args: list[Value]) -> float:
    if len(args) != 2 or not isinstance(args[0], tuple):
        raise Problem("val takes a doubleVec and an index")
    index = number(args[1])
    if not index.is_integer() or not 0 <= index < len(args[0]):
        raise Problem(f"The index {show(index)} is outside the vector of {len(args[0])}")
    return args[0][int(index)]


def _log(fn: Callable[[float], float]) -> Callable[[list[Value]], Value]:
    def run(args: list[Value]) -> Value:
        if len(args) == 1 and isinstance(args[0], float):
            return _positive(fn, args[0])
        return tuple(_positive(fn, v) for v in flatten(args))

    return run


def _positive(fn: Callable[[float], float], value: float) -> float:
    if value <= 0:
        raise Problem(f"The logarithm of {show(value)} is undefined")
    return fn(value)


def _one(fn: Callable[[float], float]) -> Callable[[list[Value]], Value]:
    def run(args: list[Value]) -> Value:
        if len(args) != 1:
            raise Problem("The function takes one double")
        return fn(number(args[0]))

    return run


def _stop(args: list[Value]) -> Value:
    raise Stop


FUNCTIONS: dict[str, Callable[[list[Value]], Value]] = {
    "avg": lambda a: sum(_nonempty(a)) / len(_nonempty(a)),
    "len": lambda a: float(len(flatten(a))),
    "max": lambda a: max(_nonempty(a)),
    "min": lambda a: min(_nonempty(a)),
    "sum": lambda a: sum(flatten(a)),
    "norm": lambda a: math.sqrt(sum(v * v for v in flatten(a))),
    "range": lambda a: max(_nonempty(a)) - min(_nonempty(a)),
    "std": _std,
    "percentile": _percentile,
    "val": _val,
    "rand": lambda a: random.random(),
    "stop": _stop,
    "ln": _log(math.log),
    "lg": _log(math.log2),
    "log": _log(math.log10),
    "ceil": _one(lambda v: float(math.ceil(v))),
    "floor": _one(lambda v: float(math.floor(v))),
    "round": _one(lambda v: float(round(v))),
}


def parse_time(text: str) -> float:
    """`time("...")`'s argument (W3C-DTF or RFC 1123) as epoch seconds."""
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = dt.datetime.strptime(text, "%a, %d %b %Y %H:%M:%S GMT")
        except ValueError as exc:
            raise Problem(f"'{text}' is neither a W3C-DTF nor an RFC 1123 time") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()
