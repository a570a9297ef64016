"""An evaluator for the Batch autoscale language: statements `name = expression;`,
doubles, strings, doubleVecs, timestamps and timeintervals with the operators and
functions of formula_values, `?:`, `//` comments, the TimeInterval_* constants, the
$NodeDeallocationOption keywords, and the service-defined sample data sets
($PendingTasks, $CPUPercent ...) read through their methods (GetSample, GetSamplePercent,
GetSamplePeriod, Count, HistoryBeginTime) from a `Samples` history. What it cannot
compile raises `FormulaError` (kind "syntax") naming the position; what fails while
running raises kind "evaluation", or "insufficient" when GetSample's percent is not met.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from batchimage.sandbox.services.batch_data.models import formula_values as fv
from batchimage.sandbox.services.batch_data.models.formula_values import (
    Interval,
    Problem,
    Stamp,
    Value,
)

MAX_LENGTH = 8192
SETTABLE = ("$TargetDedicatedNodes", "$TargetLowPriorityNodes", "$NodeDeallocationOption")
SCALARS = ("$CurrentDedicatedNodes", "$CurrentLowPriorityNodes", "$TaskSlotsPerNode")
SAMPLES = (
    "$CPUPercent", "$WallClockSeconds", "$MemoryBytes", "$DiskBytes", "$DiskReadBytes",
    "$DiskWriteBytes", "$DiskReadOps", "$DiskWriteOps", "$NetworkInBytes", "$NetworkOutBytes",
    "$SampleNodeCount", "$ActiveTasks", "$RunningTasks", "$PendingTasks", "$SucceededTasks",
    "$FailedTasks", "$PreemptedNodeCount", "$UsableNodeCount", *SCALARS,
)  # fmt: skip
METHODS = ("GetSample", "GetSamplePercent", "GetSamplePeriod", "Count", "HistoryBeginTime")
OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")
CONSTANTS = {
    "TimeInterval_Zero": 0.0,
    "TimeInterval_100ns": 1e-7,
    "TimeInterval_Microsecond": 1e-6,
    "TimeInterval_Millisecond": 1e-3,
    "TimeInterval_Second": 1.0,
    "TimeInterval_Minute": 60.0,
    "TimeInterval_Hour": 3600.0,
    "TimeInterval_Day": 86400.0,
    "TimeInterval_Week": 604800.0,
    "TimeInterval_Year": 31536000.0,
}
_TOKEN = re.compile(
    r"\s+|//[^\n]*|(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<name>\$?[A-Za-z_]\w*)"
    r"|(?P<str>\"[^\"\n]*\")|(?P<op>==|!=|<=|>=|&&|\|\||[-+*/%<>!?:=;(),.])"
)


class FormulaError(Exception):
    """A formula that cannot compile ("syntax"), fails while running ("evaluation"), or
    asks GetSample for more samples than the history has ("insufficient")."""

    def __init__(self, kind: str, message: str, formula: str, position: int) -> None:
        self.kind = kind
        self.message = message
        self.position = position
        self.line = formula.count("\n", 0, position) + 1
        self.column = position - (formula.rfind("\n", 0, position) + 1) + 1
        super().__init__(f"{message} (line {self.line}, column {self.column})")


@dataclass
class Samples:
    """A pool's metric history: `count` samples `period` simulated seconds apart, the
    newest taken `now` (sandbox clock); `value(name, age)` reads one, `age` in simulated
    seconds; `scale` is clock seconds per simulated second."""

    now: float = field(default_factory=time.time)
    scale: float = 1.0
    period: float = 30.0
    count: int = 0
    value: Callable[[str, float], float] = lambda name, age: 0.0

    def age(self, when: Value) -> float:
        """A look-back time (timeinterval, or timestamp) as an age in simulated seconds."""
        if isinstance(when, Interval):
            return max(when.seconds, 0.0)
        if isinstance(when, Stamp):
            return max((self.now - when.at) / self.scale, 0.0) if self.scale else 0.0
        raise Problem(f"Expected a timeinterval or timestamp but found a {fv.kind(when)}")

    def window(self, low: float, high: float) -> tuple[list[float], float]:
        """Ages of the available samples in [low, high) ago, oldest first; and percent."""
        first, stop = math.ceil(low / self.period), math.ceil(high / self.period)
        wanted = max(stop - first, 0)
        ages = [k * self.period for k in range(first, min(stop, self.count))]
        percent = 100.0 * len(ages) / wanted if wanted else 100.0
        return ages[::-1], percent


@dataclass
class Result:
    """Variables after a run; `results` is the `$A=1;$B=2` string Batch reports."""

    values: dict[str, Value] = field(default_factory=dict)

    @property
    def results(self) -> str:
        first = [v for v in SETTABLE if v in self.values]
        rest = sorted((k for k in self.values if k not in SETTABLE), key=str.lower)
        return ";".join(f"{k}={fv.show(self.values[k])}" for k in first + rest)


@dataclass
class _Env:
    values: dict[str, Value]
    samples: Samples


Fn = Callable[[_Env], Value]


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _tokens(formula: str) -> list[_Tok]:
    out, pos = [], 0
    while pos < len(formula):
        m = _TOKEN.match(formula, pos)
        if not m:
            raise FormulaError("syntax", f"Unexpected character '{formula[pos]}'", formula, pos)
        if m.lastgroup:
            out.append(_Tok(m.lastgroup, m.group(), pos))
        pos = m.end()
    out.append(_Tok("end", "", len(formula)))
    return out


class _Parser:
    """Recursive descent over the tokens; builds closures evaluated against an _Env."""

    LEVELS = (("||",), ("&&",), ("==", "!=", "<", "<=", ">", ">="), ("+", "-"), ("*", "/", "%"))

    def __init__(self, formula: str) -> None:
        self.formula = formula
        self.toks = _tokens(formula)
        self.i = 0

    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def take(self, text: str | None = None) -> _Tok:
        tok = self.toks[self.i]
        if text is not None and tok.text != text:
            raise self.error(f"Expected '{text}' but found '{tok.text or 'end of formula'}'", tok)
        self.i += 1
        return tok

    def error(self, message: str, tok: _Tok, kind: str = "syntax") -> FormulaError:
        return FormulaError(kind, message, self.formula, tok.pos)

    def guard(self, tok: _Tok, fn: Callable[[], Value]) -> Value:
        """Run `fn`; a Problem becomes an evaluation error at `tok`."""
        try:
            return fn()
        except Problem as exc:
            raise self.error(str(exc), tok, "evaluation") from exc

    def statements(self) -> list[tuple[_Tok | None, Fn]]:
        """`name = expression` statements, or a bare call such as `stop()` (no target)."""
        out: list[tuple[_Tok | None, Fn]] = []
        while self.peek().kind != "end":
            if self.peek().text == ";":
                self.take()
                continue
            if self.peek().kind == "name" and self.peek(1).text == "(":
                out.append((None, self.expr()))
                if self.peek().kind != "end":
                    self.take(";")
                continue
            target = self.take()
            if target.kind != "name":
                raise self.error(f"Expected a variable name but found '{target.text}'", target)
            if target.text in SAMPLES:
                raise self.error(f"'{target.text}' is a read-only system variable", target)
            self.take("=")
            out.append((target, self.expr()))
            if self.peek().kind != "end":
                self.take(";")
        return out

    def expr(self) -> Fn:
        cond = self.binary(0)
        if self.peek().text != "?":
            return cond
        tok = self.take()
        yes = self.expr()
        self.take(":")
        no = self.expr()
        return lambda e: yes(e) if self.guard(tok, lambda: fv.truth(cond(e))) else no(e)

    def binary(self, level: int) -> Fn:
        if level == len(self.LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek().text in self.LEVELS[level]:
            op = self.take()
            right = self.binary(level + 1)
            left = self._apply(op, left, right)
        return left

    def _apply(self, op: _Tok, left: Fn, right: Fn) -> Fn:
        def run(e: _Env) -> Value:
            a, b = left(e), right(e)
            return self.guard(op, lambda: fv.binary(op.text, a, b, e.samples.scale))

        return run

    def unary(self) -> Fn:
        tok = self.peek()
        if tok.text in ("-", "!", "+"):
            self.take()
            inner = self.unary()
            if tok.text == "-":
                return lambda e: self.guard(tok, lambda: fv.negate(inner(e)))
            if tok.text == "!":
                return lambda e: float(not self.guard(tok, lambda: fv.truth(inner(e))))
            return inner
        return self.primary()

    def primary(self) -> Fn:
        tok = self.take()
        if tok.kind == "num":
            number = float(tok.text)
            return lambda e: number
        if tok.kind == "str":
            text = tok.text[1:-1]
            return lambda e: text
        if tok.text == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if tok.kind != "name":
            raise self.error(f"Unexpected '{tok.text or 'end of formula'}'", tok)
        if self.peek().text == "." and tok.text in SAMPLES:
            return self.method(tok)
        if self.peek().text == ".":
            return self.member(tok)
        if self.peek().text == "(":
            return self.call(tok)
        if tok.text in SAMPLES and tok.text not in SCALARS:
            raise self.error(
                f"'{tok.text}' is a sample data set: read it with a method such as GetSample(...)",
                tok,
            )
        if tok.text in CONSTANTS:
            constant = Interval(CONSTANTS[tok.text])
            return lambda e: constant
        if tok.text.lower() in OPTIONS:
            option = tok.text.lower()
            return lambda e: option
        return self.variable(tok)

    def variable(self, tok: _Tok) -> Fn:
        name = tok.text

        def read(e: _Env) -> Value:
            if name not in e.values:
                raise self.error(f"The variable '{name}' is not defined", tok, "evaluation")
            return e.values[name]

        return read

    def member(self, tok: _Tok) -> Fn:
        self.take(".")
        name = self.take()
        if name.kind != "name" or self.peek().text == "(":
            raise self.error(
                f"'{tok.text}' is not a sample data set: '{name.text}' cannot be called on it",
                name,
            )
        read = self.variable(tok)

        def run(e: _Env) -> Value:
            value = read(e)
            if not isinstance(value, Stamp):
                raise self.error(
                    f"'{tok.text}' is a {fv.kind(value)}, it has no member '{name.text}'",
                    name,
                    "evaluation",
                )
            return value.member(name.text)

        return lambda e: self.guard(name, lambda: run(e))

    def arguments(self) -> list[Fn]:
        self.take("(")
        args: list[Fn] = []
        if self.peek().text != ")":
            args.append(self.expr())
            while self.peek().text == ",":
                self.take()
                args.append(self.expr())
        self.take(")")
        return args

    def method(self, data: _Tok) -> Fn:
        self.take(".")
        name = self.take()
        if name.text not in METHODS:
            raise self.error(
                f"'{name.text}' is not a method of a sample data set (one of {', '.join(METHODS)})",
                name,
            )
        args = self.arguments()

        def run(e: _Env) -> Value:
            values = [a(e) for a in args]
            return self.guard(name, lambda: self.sample(data, name.text, values, e.samples))

        return run

    def sample(self, data: _Tok, method: str, args: list[Value], s: Samples) -> Value:
        takes = {"GetSample": (1, 3), "GetSamplePercent": (1, 2)}.get(method, (0, 0))
        if not takes[0] <= len(args) <= takes[1]:
            raise Problem(f"{method} takes {takes[0]} to {takes[1]} arguments, not {len(args)}")
        if method == "Count":
            return float(s.count)
        if method == "GetSamplePeriod":
            return Interval(s.period)
        if method == "HistoryBeginTime":
            return Stamp(s.now - max(s.count - 1, 0) * s.period * s.scale)
        if method == "GetSample" and isinstance(args[0], float):
            if len(args) > 1:
                raise Problem("GetSample(count) takes no other argument")
            last = max(int(args[0]), 0)
            ages = [k * s.period for k in range(min(last, s.count))][::-1]
            return tuple(s.value(data.text, age) for age in ages)
        ages, percent = self.span(args, s)
        if method == "GetSamplePercent":
            return percent
        wanted = fv.number(args[-1]) if isinstance(args[-1], float) else 0.0
        if percent < wanted:
            raise self.error(
                f"Insufficient data from data set: {data.text} wanted {fv.show(wanted)}%, "
                f"received {int(percent)}%",
                data,
                "insufficient",
            )
        return tuple(s.value(data.text, age) for age in ages)

    def span(self, args: list[Value], s: Samples) -> tuple[list[float], float]:
        times = [a for a in args if not isinstance(a, float)]
        if len(args) - len(times) > 1 or (times and args.index(times[-1]) != len(times) - 1):
            raise Problem("Expected look-back times first, then at most one percentage")
        if not times or len(times) > 2:
            raise Problem("Expected one or two look-back times (timeinterval or timestamp)")
        ages = [s.age(t) for t in times]
        low, high = (0.0, ages[0]) if len(ages) == 1 else (min(ages), max(ages))
        return s.window(low, high)

    def call(self, name: _Tok) -> Fn:
        if name.text != "time" and name.text not in fv.FUNCTIONS:
            raise self.error(f"The function '{name.text}' is not modelled by the sandbox", name)
        args = self.arguments()
        if name.text == "time":
            if len(args) > 1:
                raise self.error("time takes at most one argument", name)
            return lambda e: self.guard(name, lambda: self.time([a(e) for a in args], e))
        fn = fv.FUNCTIONS[name.text]
        return lambda e: self.guard(name, lambda: fn([a(e) for a in args]))

    def time(self, args: list[Value], e: _Env) -> Stamp:
        if not args or args[0] == "":
            return Stamp(e.samples.now)
        if not isinstance(args[0], str):
            raise Problem(f"time takes a string but found a {fv.kind(args[0])}")
        return Stamp(fv.parse_time(args[0]))


def compile_formula(formula: str) -> Callable[..., Result]:
    """Compile `formula` into `run(system, samples=None) -> Result`; raises
    FormulaError("syntax", ...) if it cannot be compiled."""
    if len(formula) > MAX_LENGTH:
        raise FormulaError("too_long", f"The formula exceeds {MAX_LENGTH} characters", formula, 0)
    statements = _Parser(formula).statements()

    def run(system: dict[str, Value], samples: Samples | None = None) -> Result:
        env = _Env(dict(system), samples or Samples())
        assigned: dict[str, Value] = {}
        try:
            for target, expr in statements:
                value = expr(env)
                if target is not None:
                    assigned[target.text] = env.values[target.text] = value
        except fv.Stop:
            pass
        out = {k: env.values[k] for k in SETTABLE if k in env.values}
        out.update({k: v for k, v in assigned.items() if k not in SETTABLE})
        return Result(out)

    return run
