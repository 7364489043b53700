"""The one-line call syntax of spec rows: `BasicConv2d(64, 3, stride=2, padding='same')`.

Parsed with Python's `ast` in expression mode and then *interpreted*, never evaluated: the
only things allowed are literals (numbers, quoted strings, true/false/null, lists/tuples of
those) and bare names, which refer to template or spec arguments and are resolved later.
"""
from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass, field
from typing import Any

from ..errors import SourceLocation, SpecError

_NAMED_CONSTANTS = {"true": True, "false": False, "True": True, "False": False,
                    "null": None, "None": None, "none": None}


@dataclass(frozen=True)
class Ref:
    """A reference to a template argument or spec argument, resolved at expansion time."""

    name: str
    loc: SourceLocation

    def __str__(self) -> str:
        return self.name


@dataclass
class Call:
    """`callee(args..., key=value...)`: an op or a module template applied to arguments."""

    callee: str
    args: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)
    loc: SourceLocation | None = None


def parse_call(text: str, loc: SourceLocation) -> Call:
    """Parse `op`, `op(...)` into a Call, with a clear error for anything else."""
    source = text.strip()
    try:
        with warnings.catch_warnings():  # Python prints some (`1if x else 2`) on stderr: make them errors
            warnings.simplefilter("error", SyntaxWarning)
            tree = ast.parse(source, mode="eval")
    except SyntaxError as err:
        col = (loc.column or 1) + max((err.offset or 1) - 1, 0) if loc.column else None
        hint = None
        if source.count("(") > source.count(")"):
            hint = ("inside [ ... ] YAML splits at every comma: quote the call "
                    "(\"conv(8, 3)\") or write the rows one per line with '- '")
        raise SpecError(f"cannot read '{source}' as a call like conv(64, 3, stride=2): {err.msg}",
                        SourceLocation(loc.file, loc.line, col), hint=hint) from None
    except (MemoryError, RecursionError):  # what Python's parser raises for very deep nesting
        raise SpecError(f"cannot read '{_abridged(source)}' as a call: it nests too deeply", loc) from None
    body = tree.body
    if isinstance(body, ast.Name):
        return Call(body.id, loc=loc)
    if not isinstance(body, ast.Call) or not isinstance(body.func, ast.Name):
        raise SpecError(f"expected a call like conv(64, 3, stride=2), got '{source}'", loc)
    args = [_literal(arg, source, loc) for arg in body.args]
    kwargs = {}
    for kw in body.keywords:
        if kw.arg is None:
            raise SpecError(f"'**' is not allowed in '{source}'", loc)
        if kw.arg in kwargs:  # Python's parser lets `f(a=1, a=2)` through; a call gives each name once
            raise SpecError(f"'{kw.arg}' is given twice in '{_abridged(source)}'", loc)
        kwargs[kw.arg] = _literal(kw.value, source, loc)
    return Call(body.func.id, args, kwargs, loc)


def _abridged(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."


def _literal(node: ast.AST, source: str, loc: SourceLocation) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool, type(None))):
        return node.value
    if isinstance(node, ast.Name):
        if node.id in _NAMED_CONSTANTS:
            return _NAMED_CONSTANTS[node.id]
        return Ref(node.id, loc)
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(elt, source, loc) for elt in node.elts]
    if (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
            and isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float))):
        return -node.operand.value
    fragment = ast.get_source_segment(source, node) or type(node).__name__
    raise SpecError(f"'{fragment}' in '{source}' is not allowed: arguments are literals or "
                    "argument names, never expressions", loc)
