"""Safe evaluation of the arithmetic strings published configs use for numbers ("1.0/255.0", "1e-4").

Never `eval()`: a tiny parser over Python's ast accepting only numbers and + - * / ** and parentheses.
"""

from __future__ import annotations

import ast
import operator
from typing import Optional

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def parse_number(text) -> Optional[float]:
    """The value of an arithmetic expression over numeric literals, or None if `text` is not one."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str) or len(text) > 100:
        return None
    try:
        tree = ast.parse(text.strip(), mode="eval")
        return float(_evaluate(tree.body))
    except (SyntaxError, ValueError, TypeError, ZeroDivisionError, OverflowError):
        return None


def _evaluate(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ValueError("exponent too large")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    raise ValueError("not an arithmetic expression")


LITERALS = {"None": None, "True": True, "False": False}  # strings PaddleClas's config loader literal-evaluates


def evaluate_strings(value):
    """`value` with the strings PaddleClas evaluates turned into values, the way its configs rely on: arithmetic
    ("1.0/3.0", "1e-6", "224") and None/True/False. Maps and lists recurse; every other string stays a string.
    A whole-number result written without a point, exponent or division stays an int (sizes, counts)."""
    if isinstance(value, dict):
        return {key: evaluate_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [evaluate_strings(item) for item in value]
    if not isinstance(value, str):
        return value
    if value in LITERALS:
        return LITERALS[value]
    number = parse_number(value)
    if number is None:
        return value
    integral = number.is_integer() and not any(c in value for c in ".eE/")
    return int(number) if integral else number
