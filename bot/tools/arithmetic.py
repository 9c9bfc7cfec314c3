"""Safe arithmetic for the `calculate` tool: the expression is parsed with `ast` and walked
node by node (no `eval`); only numbers, + - * / // % **, a few math functions and constants are
allowed, and exponents and intermediate integers are bounded so no expression can eat the CPU
or the memory."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from bot.tools.errors import ToolError

MAX_CHARS = 500
MAX_NODES = 200
MAX_BITS = 4096  # about 1,233 decimal digits
MAX_EXPONENT = 10_000
MAX_NDIGITS = 1_300  # round(x, n): past the largest allowed number's digits n changes nothing

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def _round(value: Number, ndigits: Number | None = None) -> Number:
    """`round`, with the digits bounded: `round(1, -10**9)` would compute 10**(10**9)."""
    if ndigits is None:
        return round(value)
    if not isinstance(ndigits, int) or isinstance(ndigits, bool):
        raise ToolError("round() takes a whole number of digits")
    if abs(ndigits) > MAX_NDIGITS:
        raise ToolError(f"round() takes at most {MAX_NDIGITS:,} digits either way")
    return round(value, ndigits)


_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "abs": abs,
    "round": _round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def calculate(expression: str) -> Number:
    """The value of `expression`; `ToolError` with a plain reason when it cannot be computed."""
    text = expression.strip()
    if not text:
        raise ToolError("the expression is empty")
    if len(text) > MAX_CHARS:
        raise ToolError(f"the expression is longer than {MAX_CHARS} characters")
    try:
        tree = ast.parse(text.replace("^", "**"), mode="eval")
    except SyntaxError:
        raise ToolError(f"cannot parse {text!r} as arithmetic") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ToolError("the expression is too long")
    try:
        return _check(_eval(tree.body))
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except OverflowError:
        raise ToolError("the result is too large") from None
    except (ValueError, TypeError) as exc:
        raise ToolError(f"math error: {exc}") from None


def format_number(value: Number) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return format(value, ".15g")
    return str(value)


def _check(value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ToolError("only numbers are allowed")
    if isinstance(value, int) and value.bit_length() > MAX_BITS:
        raise ToolError("the result is too large")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError("the result is not a finite number")
    return value


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Constant):
        return _check(node.value)
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            return _check(_power(left, right))
        if type(node.op) not in _BINARY:
            raise ToolError(f"the operator {type(node.op).__name__} is not allowed")
        return _check(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check(_UNARY[type(node.op)](_eval(node.operand)))
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolError(f"unknown name {node.id!r}")
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else ""
        if name not in _FUNCTIONS or node.keywords:
            raise ToolError(f"the function {name or '?'!r} is not allowed")
        if not node.args:
            raise ToolError(f"{name}() needs an argument")
        return _check(_FUNCTIONS[name](*(_eval(arg) for arg in node.args)))
    raise ToolError(f"{type(node).__name__} is not allowed in arithmetic")


def _power(base: Number, exponent: Number) -> Number:
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"exponents are limited to {MAX_EXPONENT:,}")
    exact = isinstance(base, int) and isinstance(exponent, int) and exponent > 0
    if exact and abs(base) > 1 and (abs(base).bit_length() - 1) * exponent > MAX_BITS:
        raise ToolError("the result is too large")
    result = base**exponent
    if isinstance(result, complex):
        raise ToolError("the result is not a real number")
    return result
