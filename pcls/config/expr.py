"""Safe evaluation of the arithmetic strings published configs use for numbers ("1.0/255.0", "1e-4").

Never `eval()`: a tiny parser over Python's ast accepting only numbers and + - * / ** and parentheses.
Every operation is done in floats, so its cost is constant: Python's integer powers are exact and unbounded
("(((9**64)**64)**64)**64" takes 33 s of CPU, one more level hours). A result that is not a finite real
number (an overflow, a complex root) is one PclsError naming the expression.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Optional

from pcls.errors import PclsError, short_repr

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


MAX_EXPRESSION_CHARS = 100  # longer strings are text, never evaluated


class _NotFinite(ArithmeticError):
    pass


def parse_number(text) -> Optional[float]:
    """The value of an arithmetic expression over numeric literals, or None if `text` is not one.

    Raises PclsError when `text` is arithmetic but its value is not a finite real number ("9**999", "1e400",
    "(-1)**0.5") or it divides by zero."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str) or len(text) > MAX_EXPRESSION_CHARS:
        return None
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None
    try:
        return _evaluate(tree.body)
    except ValueError:  # not arithmetic: a name, a call, a string...
        return None
    except (_NotFinite, OverflowError, ZeroDivisionError) as err:
        reason = "divides by zero" if isinstance(err, ZeroDivisionError) else "is not a finite real number"
        raise PclsError(f"the expression {short_repr(text)} {reason}; write the number itself") from None


def _evaluate(node) -> float:
    """The value of `node` in floats: each operation costs the same whatever its operands (an integer power
    would be exact, and grow without bound). Raises _NotFinite at the first overflow or complex value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        value = float(node.value)  # OverflowError for an integer literal beyond the float range
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        value = _BINARY[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        value = _UNARY[type(node.op)](_evaluate(node.operand))
    else:
        raise ValueError("not an arithmetic expression")
    if not isinstance(value, float) or not math.isfinite(value):  # a complex root, an inf, a nan
        raise _NotFinite(value)
    return value


LITERALS = {"None": None, "True": True, "False": False}  # strings PaddleClas's config loader literal-evaluates


def evaluate_strings(value, where: str = ""):
    """`value` with the strings PaddleClas evaluates turned into values, the way its configs rely on: arithmetic
    ("1.0/3.0", "1e-6", "224") and None/True/False. Maps and lists recurse; every other string stays a string.
    A whole-number result written without a point, exponent or division stays an int (sizes, counts).
    `where` (e.g. "transform_ops[2] RandomErasing") prefixes the one-line error of a non-finite expression."""
    if isinstance(value, dict):
        return {key: evaluate_strings(item, f"{where}.{key}" if where else str(key)) for key, item in value.items()}
    if isinstance(value, list):
        return [evaluate_strings(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if not isinstance(value, str):
        return value
    if value in LITERALS:
        return LITERALS[value]
    try:
        number = parse_number(value)
    except PclsError as err:
        raise PclsError(f"{where}: {err.message}" if where else err.message) from None
    if number is None:
        return value
    integral = number.is_integer() and not any(c in value for c in ".eE/")
    return int(number) if integral else number
