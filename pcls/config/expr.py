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
