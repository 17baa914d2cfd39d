"""Indicator formulas: arithmetic over named aggregates, parsed with :mod:`ast`, never eval'd.

A city writes formulas such as ``(parts_damaged + parts_missing) / area_km2`` in a data file.
Only numbers, names, ``+ - * /`` and parentheses are accepted, so a formula can never run code.
A formula whose operand is undefined (``None``) or that divides by zero is undefined: an
indicator without data is reported as such instead of pretending to be 0.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gridcore.errors import ValidationError

# Over floats and over numpy arrays alike (operator's functions are generic).
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg, ast.UAdd: operator.pos,
}
_MAX_LENGTH = 500


def _check(node: ast.AST, text: str, names: set[str]) -> None:
    if isinstance(node, ast.Expression):
        _check(node.body, text, names)
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, text, names)
        _check(node.right, text, names)
    elif isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        _check(node.operand, text, names)
    elif isinstance(node, ast.Name):
        names.add(node.id)
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        pass
    else:
        raise ValidationError(
            f"formula {text!r}: {type(node).__name__} is not allowed; use numbers, aggregate "
            "names, + - * / and parentheses", field="formula", value=text)


@dataclass(frozen=True)
class Formula:
    """A parsed, checked formula. ``names`` are the aggregates it reads."""

    text: str
    names: frozenset[str]
    _tree: ast.Expression

    @classmethod
    def parse(cls, text: str) -> Formula:
        if not isinstance(text, str) or not text.strip():
            raise ValidationError("formula is empty", field="formula", value=text)
        if len(text) > _MAX_LENGTH:
            raise ValidationError(f"formula longer than {_MAX_LENGTH} characters",
                                  field="formula", value=text[:80])
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ValidationError(f"formula {text!r} is not valid arithmetic: {exc.msg}",
                                  field="formula", value=text) from None
        names: set[str] = set()
        _check(tree, text, names)
        return cls(text.strip(), frozenset(names), tree)

    def evaluate(self, values: Mapping[str, float | None]) -> float | None:
        """The value over ``values``; None when an operand is None or a division is by 0.
        A name missing from ``values`` is a programming error (models are validated on load)."""
        return _eval(self._tree.body, values)

    def evaluate_arrays(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """The same over columns of many grids at once: NaN stands for None, x/0 is NaN."""
        with np.errstate(divide="ignore", invalid="ignore"):
            out = _eval_arrays(self._tree.body, values)
        out = np.asarray(out, dtype=float)
        out[~np.isfinite(out)] = np.nan
        return out


def _eval(node: ast.AST, values: Mapping[str, float | None]) -> float | None:
    if isinstance(node, ast.Constant):
        return float(node.value)  # type: ignore[arg-type]  # _check admits numbers only
    if isinstance(node, ast.Name):
        value = values[node.id]
        return None if value is None else float(value)
    if isinstance(node, ast.UnaryOp):
        operand = _eval(node.operand, values)
        return None if operand is None else float(_UNARY[type(node.op)](operand))
    assert isinstance(node, ast.BinOp)
    left, right = _eval(node.left, values), _eval(node.right, values)
    if left is None or right is None:
        return None
    if isinstance(node.op, ast.Div) and right == 0:
        return None
    return float(_BINARY[type(node.op)](left, right))


def _eval_arrays(node: ast.AST, values: Mapping[str, np.ndarray]) -> np.ndarray | float:
    if isinstance(node, ast.Constant):
        return float(node.value)  # type: ignore[arg-type]  # _check admits numbers only
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.UnaryOp):
        result: np.ndarray | float = _UNARY[type(node.op)](_eval_arrays(node.operand, values))
        return result
    assert isinstance(node, ast.BinOp)
    left, right = _eval_arrays(node.left, values), _eval_arrays(node.right, values)
    if isinstance(node.op, ast.Div):
        right = np.where(np.asarray(right) == 0, np.nan, right)
    combined: np.ndarray | float = _BINARY[type(node.op)](left, right)
    return combined
