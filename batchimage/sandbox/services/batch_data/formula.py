"""A small evaluator for Batch autoscale formulas: assignments separated by `;`, numbers,
variables, `+ - * / %`, comparisons, `&& || !`, `?:`, parentheses, `//` comments, the
functions min, max, avg, sum, ceil, floor, round, ln, lg, log, the TimeInterval_*
constants and the $NodeDeallocationOption keywords. Sample variables and their methods
($PendingTasks.GetSample(...)) and other functions are not modelled: they raise
`FormulaError` (kind "syntax") naming the position, so the caller can answer as Batch
answers a formula it cannot compile.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

Value = float | str
Fn = Callable[[dict[str, Value]], Value]
MAX_LENGTH = 8192
SETTABLE = ("$TargetDedicatedNodes", "$TargetLowPriorityNodes", "$NodeDeallocationOption")
READ_ONLY = ("$CurrentDedicatedNodes", "$CurrentLowPriorityNodes", "$TaskSlotsPerNode")
SAMPLES = (
    "$CPUPercent", "$WallClockSeconds", "$MemoryBytes", "$DiskBytes", "$DiskReadBytes",
    "$DiskWriteBytes", "$DiskReadOps", "$DiskWriteOps", "$NetworkInBytes", "$NetworkOutBytes",
    "$SampleNodeCount", "$ActiveTasks", "$RunningTasks", "$PendingTasks", "$SucceededTasks",
    "$FailedTasks", "$TaskSlotsPerNode", "$PreemptedNodeCount", "$UsableNodeCount",
)  # fmt: skip
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
}
FUNCTIONS: dict[str, Callable[[list[float]], float]] = {
    "min": lambda a: min(a),
    "max": lambda a: max(a),
    "avg": lambda a: sum(a) / len(a),
    "sum": lambda a: sum(a),
    "ceil": lambda a: float(math.ceil(a[0])),
    "floor": lambda a: float(math.floor(a[0])),
    "round": lambda a: float(round(a[0])),
    "ln": lambda a: math.log(a[0]),
    "lg": lambda a: math.log2(a[0]),
    "log": lambda a: math.log10(a[0]),
}
_TOKEN = re.compile(
    r"\s+|//[^\n]*|(?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<name>\$?[A-Za-z_]\w*)"
    r"|(?P<op>==|!=|<=|>=|&&|\|\||[-+*/%<>!?:=;(),.])"
)


class FormulaError(Exception):
    """A formula the sandbox cannot compile (`kind` "syntax") or evaluate ("evaluation")."""

    def __init__(self, kind: str, message: str, formula: str, position: int) -> None:
        self.kind = kind
        self.position = position
        self.line = formula.count("\n", 0, position) + 1
        self.column = position - (formula.rfind("\n", 0, position) + 1) + 1
        super().__init__(f"{message} (line {self.line}, column {self.column})")


@dataclass
class Result:
    """Variables after a run; `results` is the `$A=1;$B=2` string Batch reports."""

    values: dict[str, Value] = field(default_factory=dict)

    @property
    def results(self) -> str:
        first = [v for v in SETTABLE if v in self.values]
        rest = sorted((k for k in self.values if k not in SETTABLE), key=str.lower)
        return ";".join(f"{k}={_show(self.values[k])}" for k in first + rest)


def _show(value: Value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


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
    """Recursive descent over the tokens; builds closures evaluated against variables."""

    def __init__(self, formula: str) -> None:
        self.formula = formula
        self.toks = _tokens(formula)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self, text: str | None = None) -> _Tok:
        tok = self.toks[self.i]
        if text is not None and tok.text != text:
            raise self.error(f"Expected '{text}' but found '{tok.text or 'end of formula'}'", tok)
        self.i += 1
        return tok

    def error(self, message: str, tok: _Tok, kind: str = "syntax") -> FormulaError:
        return FormulaError(kind, message, self.formula, tok.pos)

    def statements(self) -> list[tuple[_Tok, Fn]]:
        out = []
        while self.peek().kind != "end":
            if self.peek().text == ";":
                self.take()
                continue
            target = self.take()
            if target.kind != "name":
                raise self.error(f"Expected a variable name but found '{target.text}'", target)
            if target.text in READ_ONLY or target.text in SAMPLES:
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
        self.take()
        yes = self.expr()
        self.take(":")
        no = self.expr()
        return lambda v: yes(v) if _truth(cond(v)) else no(v)

    LEVELS = (("||",), ("&&",), ("==", "!=", "<", "<=", ">", ">="), ("+", "-"), ("*", "/", "%"))

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
        fns: dict[str, Callable[[float, float], float]] = {
            "||": lambda a, b: float(bool(a) or bool(b)),
            "&&": lambda a, b: float(bool(a) and bool(b)),
            "==": lambda a, b: float(a == b),
            "!=": lambda a, b: float(a != b),
            "<": lambda a, b: float(a < b),
            "<=": lambda a, b: float(a <= b),
            ">": lambda a, b: float(a > b),
            ">=": lambda a, b: float(a >= b),
            "+": lambda a, b: a + b,
            "-": lambda a, b: a - b,
            "*": lambda a, b: a * b,
            "/": lambda a, b: a / b,
            "%": lambda a, b: math.fmod(a, b),
        }
        fn = fns[op.text]

        def run(v: dict[str, Value]) -> Value:
            a, b = self.number(left(v), op), self.number(right(v), op)
            if op.text in ("/", "%") and b == 0:
                raise self.error("Division by zero", op, "evaluation")
            return fn(a, b)

        return run

    def number(self, value: Value, tok: _Tok) -> float:
        if isinstance(value, str):
            raise self.error(f"'{value}' is not a number", tok, "evaluation")
        return value

    def unary(self) -> Fn:
        tok = self.peek()
        if tok.text in ("-", "!", "+"):
            self.take()
            inner = self.unary()
            if tok.text == "-":
                return lambda v: -self.number(inner(v), tok)
            if tok.text == "!":
                return lambda v: float(not _truth(inner(v)))
            return inner
        return self.primary()

    def primary(self) -> Fn:
        tok = self.take()
        if tok.kind == "num":
            number = float(tok.text)
            return lambda v: number
        if tok.text == "(":
            inner = self.expr()
            self.take(")")
            return inner
        if tok.kind != "name":
            raise self.error(f"Unexpected '{tok.text or 'end of formula'}'", tok)
        if self.peek().text == ".":
            raise self.error(
                f"'{tok.text}.{self.toks[self.i + 1].text}' (sample data) is not modelled by "
                "the batchimage sandbox",
                self.peek(),
            )
        if self.peek().text == "(":
            return self.call(tok)
        if tok.text in SAMPLES and tok.text not in READ_ONLY:
            raise self.error(f"'{tok.text}' (sample data) is not modelled by the sandbox", tok)
        if tok.text in CONSTANTS:
            constant = CONSTANTS[tok.text]
            return lambda v: constant
        if tok.text.lower() in OPTIONS:
            option = tok.text.lower()
            return lambda v: option
        name = tok.text

        def read(v: dict[str, Value]) -> Value:
            if name not in v:
                raise self.error(f"The variable '{name}' is not defined", tok, "evaluation")
            return v[name]

        return read

    def call(self, name: _Tok) -> Fn:
        fn = FUNCTIONS.get(name.text)
        if fn is None:
            raise self.error(f"The function '{name.text}' is not modelled by the sandbox", name)
        self.take("(")
        args = [self.expr()]
        while self.peek().text == ",":
            self.take()
            args.append(self.expr())
        self.take(")")
        return lambda v: fn([self.number(a(v), name) for a in args])


def _truth(value: Value) -> bool:
    return bool(value) if isinstance(value, float) else True


def compile_formula(formula: str) -> Callable[[dict[str, Value]], Result]:
    """Compile `formula`; raises FormulaError("syntax", ...) if it cannot be."""
    if len(formula) > MAX_LENGTH:
        raise FormulaError("too_long", f"The formula exceeds {MAX_LENGTH} characters", formula, 0)
    statements = _Parser(formula).statements()

    def run(system: dict[str, Value]) -> Result:
        values: dict[str, Value] = dict(system)
        assigned: dict[str, Value] = {}
        for target, expr in statements:
            assigned[target.text] = values[target.text] = expr(values)
        out = {k: values[k] for k in SETTABLE if k in values}
        out.update({k: v for k, v in assigned.items() if k not in SETTABLE})
        return Result(out)

    return run
