"""Property-based tests: random specs, written as YAML text, against the builder and the CLI.

A generator (below) writes random *valid* specs the way a person would: rows in every syntax the
language has (calls, named calls, `{op: [args]}`, long rows with `when`/`aux`, flow collections
with unquoted calls), templates with arguments, nested concat and add blocks, strided and padded
convolutions and pools (rectangular kernels, dilation, groups, ceil mode, 'same' padding),
auxiliary heads, rows switched off by `when`, and heads on vectors. It tracks every shape itself,
so what it writes is valid by construction and its own shape arithmetic is one more oracle.

For a valid spec:
  - params, buffers, every leaf's output shape and every conv/linear layer's MACs of the analysis
    equal those of the built torch model (forward hooks, training mode so aux heads run too);
  - receptive fields grow monotonically along every edge, a merge keeps the largest and smallest
    of its inputs, and both equal what enumerating every path separately gives;
  - the review and every renderer (tables, CSV, JSON, review, block diagram collapsed) run;
  - the CLI writes the JSON report and exits 0.
For an invalid spec (a valid one with its text mutated, or one argument or branch made wrong):
  - the CLI exits 2 with one line on stderr naming the file (and line:column for anything in the
    spec's text), never a traceback, and leaves no output file and no temp file behind.

Profiles: `ci` (default: derandomized, well under a minute on 2 cores) and `long`
(`INCEPTION_ANALYZER_FUZZ=long`: random, many more examples, fvcore cross-check too).
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import re
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, note, settings, strategies as st

import inception_analyzer as ia
from inception_analyzer import cli
from inception_analyzer.errors import AnalyzerError
from inception_analyzer.graph import INPUT

torch = pytest.importorskip("torch")
from inception_analyzer.build import build_model  # noqa: E402

# Profiles, applied to this file's tests only (not loaded globally): `ci` is derandomized (the same
# examples every run, so CI never flakes) and fast; `long` is random and 15 times larger.
LONG = os.environ.get("INCEPTION_ANALYZER_FUZZ", "").lower() == "long"
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large]
FUZZ = (settings(max_examples=1500, deadline=None, print_blob=True, suppress_health_check=_QUIET) if LONG else
        settings(max_examples=100, deadline=None, derandomize=True, database=None, print_blob=True,
                 suppress_health_check=_QUIET))
# the cheap properties (no torch model) get more examples than the ones that build a model
MORE = settings(FUZZ, max_examples=4 * FUZZ.max_examples)

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
LOCATED = re.compile(r"^inception-analyzer: (?P<file>.+?):(?P<line>\d+)(:(?P<col>\d+))?: ")
MAX_CHANNELS = 24
MAX_GRID = 40


# ============================================================================ the spec model
@dataclass(frozen=True)
class Ref:
    """A template or spec argument: `w` in a call, `$w` in a YAML-valued row."""

    name: str


@dataclass
class Op:
    """One row calling an op or a template."""

    callee: str
    args: list = field(default_factory=list)
    kwargs: dict = field(default_factory=dict)
    name: str | None = None
    style: str = "call"          # call | struct | long
    when: str | None = None      # 'flag' / 'not flag'
    aux: bool = False
    line: int = 0                # where it was written (set when the text is written)


@dataclass
class Block:
    kind: str                    # layers | concat | add
    branches: list               # list of row lists
    name: str | None = None
    when: str | None = None
    aux: bool = False
    flow: bool = False
    line: int = 0


class Spec:
    """A generated spec: its parts, the output shape the generator worked out, and its YAML text."""

    def __init__(self, name: str, input_shape: tuple, input_text: str, arguments: dict, templates: dict,
                 rows: list, output_shape: tuple):
        self.name, self.input, self.input_text = name, input_shape, input_text
        self.arguments = arguments
        self.templates = templates   # name -> (args text, body kind, rows)
        self.rows = rows
        self.output_shape = output_shape
        self.text = ""

    def __repr__(self) -> str:  # what hypothesis prints for a failing example: the YAML itself
        return f"<spec>\n{self.text}"


# ============================================================================ writing YAML
def _call_value(value) -> str:
    if isinstance(value, Ref):
        return value.name
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return f"({', '.join(_call_value(v) for v in value)})"
    if isinstance(value, str):
        return f"'{value}'"
    return repr(value)


def _yaml_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, Ref):
        return f"${value.name}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return f"[{', '.join(_yaml_value(v) for v in value)}]"
    return str(value)


def call_text(op: Op) -> str:
    parts = [_call_value(a) for a in op.args] + [f"{k}={_call_value(v)}" for k, v in op.kwargs.items()]
    return f"{op.callee}({', '.join(parts)})" if parts else op.callee


def _struct_text(op: Op) -> str:
    items = [_yaml_value(a) for a in op.args]
    if op.kwargs:
        items.append("{" + ", ".join(f"{k}: {_yaml_value(v)}" for k, v in op.kwargs.items()) + "}")
    return f"{{{op.callee}: [{', '.join(items)}]}}"


def _flowable(rows) -> bool:
    return all(isinstance(r, Op) and r.style == "call" and not r.name and not r.when and not r.aux for r in rows)


class Writer:
    """Rows -> YAML lines, recording the line each row starts on."""

    def __init__(self):
        self.lines: list[str] = []

    def put(self, text: str) -> None:
        self.lines.append(text)

    def rows(self, rows, indent: int) -> None:
        for row in rows:
            self.row(row, indent)

    def row(self, row, indent: int, prefix: str = "- ") -> None:
        pad = " " * indent
        row.line = len(self.lines) + 1
        if isinstance(row, Op):
            self._op(row, pad, prefix)
        else:
            self._block(row, pad, indent, prefix)

    def _op(self, op: Op, pad: str, prefix: str) -> None:
        extra = {k: v for k, v in (("when", op.when), ("aux", "true" if op.aux else None)) if v}
        if op.style == "struct" and not op.name and not extra:
            self.put(f"{pad}{prefix}{_struct_text(op)}")
        elif op.style == "long" or extra:
            fields = ", ".join([f"call: {call_text(op)}"] + [f"{k}: {v}" for k, v in extra.items()])
            if op.name:
                self.put(f"{pad}{prefix}{op.name}: {{{fields}}}")
            else:
                self.put(f"{pad}{prefix}{{{fields}}}")
        elif op.name:
            self.put(f"{pad}{prefix}{op.name}: {call_text(op)}")
        else:
            self.put(f"{pad}{prefix}{call_text(op)}")

    def _block(self, block: Block, pad: str, indent: int, prefix: str) -> None:
        extra = [f"{k}: {v}" for k, v in (("when", block.when), ("aux", "true" if block.aux else None)) if v]
        if block.flow and all(_flowable(b) for b in block.branches):
            for branch in block.branches:
                for row in branch:
                    row.line = block.line
            items = [call_text(b[0]) if len(b) == 1 and block.kind != "layers" else
                     "[" + ", ".join(call_text(r) for r in b) + "]" for b in block.branches]
            body = ", ".join(items) if block.kind != "layers" else ", ".join(call_text(r) for r in block.branches[0])
            if block.name:
                self.put(f"{pad}{prefix}{block.name}: {{{', '.join([f'{block.kind}: [{body}]'] + extra)}}}")
            elif extra:
                self.put(f"{pad}{prefix}{{{', '.join([f'{block.kind}: [{body}]'] + extra)}}}")
            else:
                self.put(f"{pad}{prefix}{block.kind}: [{body}]")
            return
        inner = indent + 2
        if block.name:
            self.put(f"{pad}{prefix}{block.name}:")
            inner = indent + 4
            self.put(" " * inner + f"{block.kind}:")
        else:
            self.put(f"{pad}{prefix}{block.kind}:")
            inner = indent + 2
        item_indent = inner + 2
        if block.kind == "layers":
            self.rows(block.branches[0], item_indent)
        else:
            for branch in block.branches:
                if not branch:
                    self.put(" " * item_indent + "- []")
                elif len(branch) == 1 and not isinstance(branch[0], Block):
                    self.row(branch[0], item_indent)
                else:  # a list of rows: `- - row` then the others under it
                    start = len(self.lines)
                    self.rows(branch, item_indent + 2)
                    first = self.lines[start]
                    self.lines[start] = " " * item_indent + "- " + first.lstrip()
        for line in extra:
            self.put(" " * (inner if block.name else indent + 2) + line)


def spec_text(spec: Spec) -> str:
    out = Writer()
    out.put(f"name: {spec.name}")
    out.put("description: generated by tests/test_fuzz.py")
    if spec.arguments:
        out.put("arguments: {" + ", ".join(f"{k}: {_yaml_value(v)}" for k, v in spec.arguments.items()) + "}")
    out.put(f"input: {spec.input_text}")
    if spec.templates:
        out.put("modules:")
        for name, (params, kind, rows) in spec.templates.items():
            out.put(f"  {name}:")
            out.put(f"    args: {params}")
            out.put(f"    {kind}:")
            if kind == "layers":
                out.rows(rows, 6)
            else:
                for branch in rows:
                    start = len(out.lines)
                    out.rows(branch, 8)
                    out.lines[start] = "      - " + out.lines[start].lstrip()
    out.put("layers:")
    out.rows(spec.rows, 2)
    return "\n".join(out.lines) + "\n"


# ============================================================================ shape arithmetic
def conv_len(size, k, s, p, d):
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def pool_len(size, k, s, p, d, ceil):
    room = size + 2 * p - d * (k - 1) - 1
    if not ceil:
        return room // s + 1
    out = -(-room // s) + 1
    if (out - 1) * s >= size + p:
        out -= 1
    return out


def pair(v):
    return v if isinstance(v, tuple) else (v, v)


def compact(v):
    """(3, 3) -> 3 sometimes written as one integer."""
    return v[0] if isinstance(v, tuple) and v[0] == v[1] else v


# ============================================================================ the generator
CBR = ("[out, kernel, stride: 1, padding: 0]", "layers", [
    Op("conv", [Ref("out"), Ref("kernel")], {"stride": Ref("stride"), "padding": Ref("padding"), "bias": False},
       name="conv"),
    Op("bn", [], {"eps": 0.001}, name="bn"), Op("relu")])
MIX = ("[a, b]", "concat", [
    [Op("CBR", [Ref("a"), 1], name="branch1x1")],
    [Op("CBR", [Ref("b"), 1], name="branch3x3_1"), Op("CBR", [Ref("b"), 3], {"padding": 1}, name="branch3x3_2")],
    [Op("maxpool", [3], {"stride": 1, "padding": 1}), Op("CBR", [Ref("a"), 1], name="branch_pool")]])
ACTIVATIONS = [Op("relu"), Op("relu", [], {"inplace": True}), Op("relu6"), Op("leaky_relu", [0.1]),
               Op("gelu"), Op("gelu", [], {"approximate": "tanh"}), Op("silu"), Op("sigmoid"), Op("tanh")]


class Gen:
    def __init__(self, draw):
        self.draw = draw
        self.count = 0
        self.templates: dict = {}
        self.flag = draw(st.booleans())
        self.width = draw(st.integers(1, 8))
        self.uses_width = False
        self.uses_flag = False

    # -- helpers
    def i(self, lo, hi):
        return self.draw(st.integers(lo, hi))

    def pick(self, items):
        return self.draw(st.sampled_from(items))

    def chance(self, p=0.5):
        return self.draw(st.floats(0, 1)) < p

    def name(self, prefix="l"):
        self.count += 1
        return f"{prefix}{self.count}"

    def maybe_name(self, op: Op | Block, p=0.5) -> Op | Block:
        if self.chance(p):
            op.name = self.name("b" if isinstance(op, Block) else "l")
        return op

    def style(self, op: Op) -> Op:
        op.style = self.pick(["call", "call", "struct", "long"])
        self.maybe_name(op, 0.4)
        if op.style == "long" and not op.name:
            op.style = "call"  # `- {call: conv(8, 3)}` alone is a row *named* call (name: op form)
        return op

    def channels(self, c_in, groups=1):
        out = self.i(1, max(1, min(MAX_CHANNELS, 16) // groups)) * groups
        if self.chance(0.15) and groups == 1:
            self.uses_width = True
            return Ref("width"), self.width
        return out, out

    # -- grid-preserving rows (stride 1): (row, out shape)
    def keep(self, shape, depth):
        c, h, w = shape
        kind = self.pick(["conv", "conv", "cbr", "bn", "act", "pool", "misc", "block", "layers", "off",
                          "template"] if depth > 0 else ["conv", "conv", "cbr", "bn", "act", "pool", "misc"])
        if kind == "conv":
            return self.conv_keep(shape)
        if kind == "cbr":
            self.templates.setdefault("CBR", CBR)
            out = self.i(1, 16)
            k = self.pick([1, 3, 5])
            return self.style(Op("CBR", [out, k], {"padding": k // 2} if k > 1 else {})), (out, h, w)
        if kind == "bn":
            return self.style(Op("bn", [], self.pick([{}, {"eps": 0.001}, {"momentum": None}, {"affine": False}]))), shape
        if kind == "act":
            op = self.pick(ACTIVATIONS)
            return self.style(Op(op.callee, list(op.args), dict(op.kwargs))), shape
        if kind == "pool":
            k = self.pick([1, 3, 5])
            op = self.pick(["maxpool", "avgpool"])
            kwargs = {"stride": 1, "padding": k // 2}
            if op == "avgpool" and self.chance(0.3):
                kwargs["count_include_pad"] = False
            return self.style(Op(op, [k], kwargs)), shape
        if kind == "misc":
            groups = [g for g in range(2, c) if c % g == 0]
            return self.style(self.pick([Op("dropout", [0.2]), Op("identity"), Op("lrn", [self.i(1, 5)]),
                                         Op("dropout"), Op("layer_norm", [], self.pick([{}, {"eps": 1e-6},
                                                                                        {"affine": False, "bias": False}])),
                                         Op("layer_scale", [], self.pick([{}, {"param_shape": "C"}])),
                                         Op("channel_linear", [c]),
                                         Op("channel_shuffle", [self.pick(groups)]) if groups else Op("identity")])), shape
        if kind == "block":
            return self.merge(shape, depth - 1, reduce=False)
        if kind == "layers":
            rows, out = self.sequence(shape, depth - 1, self.i(1, 3), reduce=False)
            return Block("layers", [rows], name=self.name("s")), out
        if kind == "off":  # switched off by `when`: never expanded, so its shape does not matter
            self.uses_flag = True
            row, _ = self.conv_keep(shape)
            row.when = "not flag" if self.flag else "flag"
            return row, shape
        return self.template_call(shape, depth)

    def conv_keep(self, shape, out=None, value=None):
        """A stride-1 conv keeping the grid; `out` forces its channels (value: what `out` is)."""
        c, h, w = shape
        if out is None:
            groups = self.pick([g for g in (1, 1, 1, 2, 3, 4, c) if c % g == 0])
            out, out_value = self.channels(c, groups)
        else:
            groups, out_value = 1, (c if value is None else value) if isinstance(out, Ref) else out
        kind = self.pick(["odd", "rect", "same", "dilated"])
        kwargs: dict[str, Any] = {}
        if kind == "odd":
            k = self.pick([1, 3, 5])
            args = [out, k]
            if k > 1:
                kwargs["padding"] = k // 2
        elif kind == "rect":
            k = self.pick([(1, 3), (3, 1), (1, 5), (5, 1)])
            args = [out, k]
            kwargs["padding"] = (k[0] // 2, k[1] // 2)
        elif kind == "same":
            args = [out, self.pick([2, 3, 4, (2, 3)])]
            kwargs["padding"] = "same"
            if self.chance(0.3):
                kwargs["dilation"] = 2
        else:
            d = self.pick([2, 3])
            args = [out, 3]
            kwargs.update(padding=d, dilation=d)
        if groups > 1:
            kwargs["groups"] = groups
        if self.chance(0.3):
            kwargs["bias"] = False
        if self.chance(0.3):
            kwargs["stride"] = 1
        return self.style(Op("conv", args, kwargs)), (out_value, h, w)

    # -- rows that may change the grid
    def reduce(self, shape):
        """A conv or pool with stride, padding, dilation, maybe ceil mode; None if the grid is too small."""
        c, h, w = shape
        k = (self.pick([1, 2, 3]), self.pick([1, 2, 3])) if self.chance(0.3) else pair(self.pick([1, 2, 3, 5]))
        s = (self.pick([1, 2, 3]), self.pick([1, 2])) if self.chance(0.2) else pair(self.pick([1, 2, 2, 3]))
        op = self.pick(["conv", "conv", "maxpool", "avgpool"])
        d = pair(self.pick([1, 1, 2])) if op != "avgpool" else (1, 1)
        if op == "conv":
            p = (self.i(0, k[0] + 1), self.i(0, k[1] + 1))
        else:
            p = (self.i(0, k[0] // 2), self.i(0, k[1] // 2))
        ceil = op != "conv" and self.chance(0.3)
        size = pool_len if op != "conv" else (lambda n, k, s, p, d, ceil: conv_len(n, k, s, p, d))
        oh, ow = size(h, k[0], s[0], p[0], d[0], ceil), size(w, k[1], s[1], p[1], d[1], ceil)
        if oh < 1 or ow < 1 or oh > MAX_GRID or ow > MAX_GRID:
            return None
        kwargs: dict[str, Any] = {}
        if s != (1, 1) or op != "conv":
            kwargs["stride"] = compact(s)
        if p != (0, 0):
            kwargs["padding"] = compact(p)
        if d != (1, 1):
            kwargs["dilation"] = compact(d)
        if ceil:
            kwargs["ceil_mode"] = True
        if op == "conv":
            out, out_value = self.channels(c)
            return self.style(Op("conv", [out, compact(k)], kwargs)), (out_value, oh, ow)
        return self.style(Op(op, [compact(k)], kwargs)), (c, oh, ow)

    def branch_reduction(self, shape):
        """(k, s, p) for a merge whose every branch reduces the grid alike, or None."""
        _, h, w = shape
        k, s = self.pick([(3, 2), (2, 2), (3, 1), (1, 2), (3, 3)])
        p = self.i(0, k // 2)
        if conv_len(min(h, w), k, s, p, 1) < 1:
            return None
        return k, s, p

    def reducing_row(self, shape, kind, end_channels=None):
        c, h, w = shape
        k, s, p = kind
        oh, ow = conv_len(h, k, s, p, 1), conv_len(w, k, s, p, 1)
        kwargs = {"stride": s, "padding": p} if p else {"stride": s}
        if end_channels is not None or self.chance(0.6):
            out = end_channels if end_channels is not None else self.i(1, 16)
            if self.chance(0.3):
                self.templates.setdefault("CBR", CBR)
                return self.style(Op("CBR", [out, k], kwargs)), (out, oh, ow)
            return self.style(Op("conv", [out, k], kwargs)), (out, oh, ow)
        return self.style(Op(self.pick(["maxpool", "avgpool"]), [k], kwargs)), (c, oh, ow)

    # -- merges
    def merge(self, shape, depth, reduce=True):
        c, h, w = shape
        kind = self.pick(["concat", "concat", "add", "mix"])
        reduction = self.branch_reduction(shape) if reduce and self.chance(0.4) else None
        if kind == "mix" and reduction is None:
            self.templates.setdefault("CBR", CBR)
            self.templates.setdefault("Mix", MIX)
            a, b = self.i(1, 8), self.i(1, 8)
            call = Op("Mix", [a, b]) if self.chance() else Op("Mix", [a], {"b": b})
            return self.style(call), (2 * a + b, h, w)
        if kind == "mix":
            kind = "concat"
        n = self.i(2, 3)
        end = (self.i(1, 12) if self.chance(0.5) else c) if kind == "add" else None
        branches, outs = [], []
        for index in range(n):
            if kind == "add" and reduction is None and end == c and index > 0 and self.chance(0.3):
                branches.append([])  # identity shortcut
                outs.append(shape)
                continue
            rows, out = self.branch(shape, depth, reduction, end)
            branches.append(rows)
            outs.append(out)
        grid = outs[0][1:]
        assert all(o[1:] == grid for o in outs), outs
        channels = sum(o[0] for o in outs) if kind == "concat" else end
        block = Block(kind, branches, flow=self.chance(0.3))
        self.maybe_name(block, 0.6)
        return block, (channels, *grid)

    def branch(self, shape, depth, reduction, end):
        rows, current = [], shape
        for _ in range(self.i(0, 2)):
            row, current = self.keep(current, depth)
            rows.append(row)
        if reduction is not None:
            row, current = self.reducing_row(current, reduction, end)
            rows.append(row)
            if end is not None:
                return rows, current
        if end is not None and (current[0] != end or not rows or self.chance(0.5)):
            row, current = self.conv_keep(current, out=end)
            rows.append(row)
        if not rows:
            row, current = self.keep(current, 0)
            rows.append(row)
        return rows, current

    # -- templates written for this spec
    def template_call(self, shape, depth):
        c, h, w = shape
        self.template_count = getattr(self, "template_count", 0) + 1
        name = f"T{self.template_count}"
        self.templates[name] = None  # reserved: templates used inside get other names
        body, out = self.sequence((c, h, w), max(depth - 1, 0), self.i(1, 3), reduce=False)
        row, out = self.conv_keep(out, out=Ref("w"), value=c)
        body.append(row)
        self.templates[name] = ("[w, unused: 0]", "layers", body)
        repeat = self.i(1, 3)
        calls = [self.style(Op(name, [c])) for _ in range(repeat)]
        result = Block("layers", [calls], name=self.name("rep")) if repeat > 1 else calls[0]
        return result, (c, h, w)

    def aux_head(self, shape):
        c, h, w = shape
        rows = [Op("adaptive_avgpool", [self.pick([1, 2])]), Op("flatten"), Op("linear", [self.i(1, 5)])]
        if self.chance(0.5):
            return Block("layers", [rows], name=self.name("aux"), aux=True)
        self.templates.setdefault("Head", ("[n]", "layers", [Op("adaptive_avgpool", [1]), Op("flatten"),
                                                              Op("linear", [Ref("n")], name="fc")]))
        return Op("Head", [self.i(1, 5)], name=self.name("aux"), aux=True)

    # -- sequences
    def sequence(self, shape, depth, length, reduce=True):
        rows, current = [], shape
        for _ in range(length):
            choice = self.pick(["keep", "keep", "reduce", "merge", "aux"] if reduce else ["keep"])
            if choice == "reduce":
                made = self.reduce(current)
                if made is None:
                    continue
                row, current = made
            elif choice == "merge":
                row, current = self.merge(current, depth)
            elif choice == "aux":
                row = self.aux_head(current)
            else:
                row, current = self.keep(current, depth)
            rows.append(row)
            if current[0] > 48:  # keep channels small: squeeze
                row, current = self.conv_keep(current, out=8)
                rows.append(row)
        return rows, current

    def head(self, shape):
        c, h, w = shape
        kind = self.pick(["none", "gap", "flatten", "adaptive", "vector_merge"])
        if kind == "none":
            return [], shape
        rows = []
        if kind == "gap":
            rows.append(self.style(Op("adaptive_avgpool", self.pick([[], [1]]))))
            rows.append(self.style(Op("flatten")))
        elif kind == "adaptive":
            size = self.pick([2, (1, 2), 3])
            rows.append(self.style(Op(self.pick(["adaptive_avgpool", "adaptive_maxpool"]), [size])))
            rows.append(self.style(Op("flatten")))
        else:
            rows.append(self.style(Op("flatten")))
        if self.chance(0.3):
            rows.append(self.style(Op("dropout", [0.5])))
        if kind == "vector_merge":
            a, b = self.i(1, 6), self.i(1, 6)
            if self.chance(0.5):
                rows.append(Block("concat", [[Op("linear", [a])], [Op("linear", [b]), Op("relu")]],
                                  name=self.name("vec")))
            else:
                rows.append(Block("add", [[Op("linear", [a])], [Op("linear", [a], {"bias": False})]]))
        out = self.i(1, 10)
        rows.append(self.style(Op("linear", [out])))
        if self.chance(0.2):
            rows.append(Op("softmax"))
        return rows, (out,)


@st.composite
def valid_specs(draw) -> Spec:
    gen = Gen(draw)
    c = draw(st.integers(1, 4))
    square = draw(st.booleans())
    h = draw(st.integers(8, 32))
    w = h if square else draw(st.integers(8, 32))
    arguments: dict[str, Any] = {}
    if square and draw(st.booleans()):
        arguments["input_size"] = h
        input_text = f"[{c}, $input_size, $input_size]"
    else:
        input_text = f"[{c}, {h}, {w}]"
    rows, shape = gen.sequence((c, h, w), draw(st.integers(0, 2)), draw(st.integers(1, 6)))
    if all(row.aux or row.when for row in rows):  # aux heads and rows switched off alone: no network
        rows.append(Op("relu"))
    head, shape = gen.head(shape)
    rows += head
    if gen.uses_width:
        arguments["width"] = gen.width
    if gen.uses_flag:
        arguments["flag"] = gen.flag
    spec = Spec(f"fuzz{gen.count}", (c, h, w), input_text, arguments, gen.templates, rows, shape)
    spec.text = spec_text(spec)
    return spec


# ============================================================================ running the CLI
HIDDEN_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def run_cli(*args: str) -> tuple[int, str, str]:
    """The CLI in this process (much faster than a subprocess); an exception that is not an
    AnalyzerError escapes, and fails the test: the user would have seen a traceback. A warning
    Python would print (pytest records them instead) is a second line on stderr: it fails too."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = cli.main(list(args))
    shown = [str(w.message) for w in caught if not issubclass(w.category, HIDDEN_WARNINGS)]
    assert not shown, shown
    return code, out.getvalue(), err.getvalue()


def write_spec(directory: Path, text: str) -> Path:
    path = directory / "fuzz.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def fresh(workdir: Path) -> Path:
    """A new empty directory per example (hypothesis reuses the fixture across examples)."""
    fresh.count = getattr(fresh, "count", 0) + 1
    directory = workdir / f"case{fresh.count}"
    directory.mkdir()
    return directory


# ============================================================================ valid specs
def check_receptive_fields(graph, fields) -> None:
    """Monotone along every edge; merges keep the largest and smallest; equal to all paths."""
    for node in graph.layers():
        rf = fields[node.path]
        assert all(lo <= hi for lo, hi in zip(rf.size_min, rf.size)), node.path
        ins = [fields[i] for i in node.inputs]
        for axis in (0, 1):
            if node.op.merges:
                assert rf.size[axis] == max(f.size[axis] for f in ins), node.path
                assert rf.size_min[axis] == min(f.size_min[axis] for f in ins), node.path
            else:
                assert rf.size[axis] >= ins[0].size[axis], node.path
                assert rf.size_min[axis] >= ins[0].size_min[axis], node.path
                assert rf.stride[axis] >= ins[0].stride[axis], node.path
                assert rf.padding[axis] >= ins[0].padding[axis], node.path
    # every path on its own, by the recurrences (small graphs: the number of paths is bounded)
    paths: dict[str, list[tuple]] = {INPUT: [((1, 1), (1, 1))]}
    for node in graph.layers():
        if node.op.merges:
            paths[node.path] = [p for i in node.inputs for p in paths[i]]
        else:
            step = node.op.rf_step(node.args, list(node.in_shapes), fields[node.inputs[0]].grid)
            grown = []
            for size, stride in paths[node.inputs[0]]:
                if step is not None:
                    size = tuple(size[a] + (step.kernel[a] - 1) * step.dilation[a] * stride[a] for a in (0, 1))
                    stride = tuple(stride[a] * step.stride[a] for a in (0, 1))
                grown.append((size, stride))
            paths[node.path] = grown
        if len(paths[node.path]) > 5000:
            return
        sizes = [size for size, _ in paths[node.path]]
        rf = fields[node.path]
        for axis in (0, 1):
            assert rf.size[axis] == max(s[axis] for s in sizes), node.path
            assert rf.size_min[axis] == min(s[axis] for s in sizes), node.path


def measured(model, input_shape) -> dict[str, tuple]:
    """Each leaf module's (output shape, MACs by the convention), from forward hooks."""
    seen: dict[str, tuple] = {}

    def hook(module, inputs, output, name):
        out = tuple(output.shape[1:])
        if isinstance(module, torch.nn.Conv2d):
            kh, kw = module.kernel_size
            macs = math.prod(out) * (module.in_channels // module.groups) * kh * kw
        elif isinstance(module, torch.nn.Linear):   # on a vector, or at every position (channel_linear)
            macs = math.prod(out) * module.in_features
        else:
            macs = 0
        seen[name] = (out, macs)

    hooks = [m.register_forward_hook(lambda m, i, o, name=name: hook(m, i, o, name))
             for name, m in model.named_modules() if not list(m.children())]
    model.train()
    with torch.no_grad():
        model(torch.randn(2, *input_shape))
    for handle in hooks:
        handle.remove()
    return seen


@FUZZ
@given(spec=valid_specs())
def test_analysis_equals_the_built_model(spec, workdir):
    note(spec.text)
    path = write_spec(fresh(workdir), spec.text)
    graph = ia.load_graph(str(path))
    report = ia.analyze(graph)
    assert tuple(graph.node(graph.output).out_shape) == spec.output_shape
    torch.manual_seed(0)
    model = build_model(graph)
    assert sum(p.numel() for p in model.parameters()) == report.totals.params
    assert sum(b.numel() for b in model.buffers()) == report.totals.buffers
    seen = measured(model, graph.input_shape)
    expected = {r.path: (tuple(r.output_shape), r.macs) for r in report.layers if graph.node(r.path).op.builds_module}
    assert seen == expected
    main_macs = sum(r.macs for r in report.layers if r.role == "main")
    assert main_macs == report.totals.macs
    with torch.no_grad():
        out = model.eval()(torch.zeros(1, *graph.input_shape))
    assert tuple(out.shape[1:]) == spec.output_shape
    # activations the builder runs in place overwrite nothing another op still reads
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    image = torch.randn(2, *graph.input_shape)
    with torch.no_grad():
        torch.testing.assert_close(model(image), twin(image), rtol=0, atol=0)


@MORE
@given(spec=valid_specs())
def test_receptive_fields_review_and_renderers(spec):
    from inception_analyzer.render import diagram
    from inception_analyzer.render.review import render_review
    from inception_analyzer.render.tables import render

    note(spec.text)
    graph = ia.load_graph(ia.load_spec_text(spec.text, "fuzz.yaml"))
    report = ia.analyze(graph)
    check_receptive_fields(graph, report.receptive_fields)
    for fmt in ("table", "csv", "json"):
        assert render(report, fmt, "layer", fmt == "table")
    assert render(report, "markdown", "stage")
    assert render(report, "csv", "block")
    for fmt in ("table", "json"):
        assert render_review(report, fmt)
    for level in ("block", "layer"):
        picture = diagram.build_diagram(report, level, collapse=True)
        assert diagram.diagram_source(picture).startswith("digraph")


@FUZZ
@given(spec=valid_specs())
def test_cli_writes_the_json_report(spec, workdir):
    note(spec.text)
    directory = fresh(workdir)
    path = write_spec(directory, spec.text)
    out = directory / "report.json"
    code, stdout, stderr = run_cli("analyze", str(path), "--format", "json", "-o", str(out))
    assert (code, stdout, stderr) == (0, "", "")
    data = json.loads(out.read_text())
    assert tuple(data["layers"][-1]["output_shape"]) == spec.output_shape or data["layers"][-1]["role"] == "aux"
    assert sorted(p.name for p in directory.iterdir()) == ["fuzz.yaml", "report.json"]


# ============================================================================ invalid specs
JUNK = list("[]{}:,-&*!|>'\"#%@`()=$ \t") + ["\n", "  ", "- ", ": ", "!!python/name:os.system ", "*x ", "&x ",
                                              "0", "-1", "1e99", "null", "true", "é", "\x00", "\ufeff"]
BAD_VALUES = ["0", "-1", "-3", "1.5", "'x'", "true", "null", "[]", "[1, 2, 3]", "99999999999999999999999",
              "''", "nan", "(1, 0)", "(2, 2, 2)", "{}", "x", "same", "'valid'", "1e9"]


@st.composite
def mutated_texts(draw) -> tuple[str, str]:
    spec = draw(valid_specs())
    text = spec.text
    lines = text.splitlines(keepends=True)
    kind = draw(st.sampled_from(["insert", "delete", "replace", "line_delete", "line_dup", "indent",
                                 "number", "swap_lines", "truncate"]))
    if kind in ("insert", "delete", "replace"):
        at = draw(st.integers(0, len(text) - 1))
        junk = draw(st.sampled_from(JUNK))
        text = {"insert": text[:at] + junk + text[at:], "delete": text[:at] + text[at + 1:],
                "replace": text[:at] + junk + text[at + 1:]}[kind]
    elif kind in ("line_delete", "line_dup", "indent", "swap_lines"):
        at = draw(st.integers(0, len(lines) - 1))
        if kind == "line_delete":
            del lines[at]
        elif kind == "line_dup":
            lines.insert(at, lines[at])
        elif kind == "indent":
            lines[at] = draw(st.sampled_from([" ", "   ", "\t"])) + lines[at]
        else:
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        text = "".join(lines)
    elif kind == "number":
        numbers = list(re.finditer(r"(?<![\w.])\d+(?![\w.])", text))
        assume(numbers)
        match = draw(st.sampled_from(numbers))
        text = text[:match.start()] + draw(st.sampled_from(BAD_VALUES)) + text[match.end():]
    else:
        text = text[:draw(st.integers(0, len(text) - 1))]
    return kind, text


def assert_clean_failure_or_success(directory: Path, path: Path, code: int, stdout: str, stderr: str,
                                    out: Path, need_line: bool = True) -> None:
    if code == 0:
        assert stderr == "" and out.exists()
        return
    assert code == 2, stderr
    assert stdout == ""
    message = stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    match = LOCATED.match(message)
    if need_line:
        assert match and match["file"] == str(path), message
    else:
        assert message.startswith(f"inception-analyzer: {path}"), message
    assert sorted(p.name for p in directory.iterdir()) == ["fuzz.yaml"], message  # nothing half-written


@MORE
@given(case=mutated_texts())
def test_mutated_yaml_is_analyzed_or_refused_cleanly(case, workdir):
    kind, text = case
    note(f"{kind}:\n{text}")
    directory = fresh(workdir)
    path = write_spec(directory, text)
    out = directory / "out.json"
    code, stdout, stderr = run_cli("analyze", str(path), "--format", "json", "-o", str(out))
    assert_clean_failure_or_success(directory, path, code, stdout, stderr, out)


@st.composite
def broken_specs(draw) -> tuple[Spec, Op | Block, str]:
    """A valid spec with one thing made wrong: an op argument, or one branch of a merge."""
    spec = draw(valid_specs())
    ops, merges = [], []

    def walk(rows, active=True):
        for row in rows:
            live = active and not (row.when and (row.when == "flag") != spec.arguments.get("flag"))
            if isinstance(row, Op):
                if live and not row.callee[0].isupper():
                    ops.append(row)
            else:
                if live and row.kind in ("concat", "add") and not row.flow:
                    merges.append(row)
                for branch in row.branches:
                    walk(branch, live)

    walk(spec.rows)
    assume(ops or merges)
    what = draw(st.sampled_from(["argument", "unknown"] * bool(ops) + ["merge"] * bool(merges)))
    if what == "merge":
        block = draw(st.sampled_from(merges))
        branch = draw(st.sampled_from([b for b in block.branches]))
        branch.append(Op("conv", [3, 1], {"padding": 1}) if block.kind == "concat" else Op("conv", [97, 1]))
        target = block
    else:
        target = draw(st.sampled_from(ops))
        if what == "unknown":
            target.callee = draw(st.sampled_from(["convv", "Conv", "maxpool2d", "batchnorm", "reluu", "lineer"]))
        else:
            slots = [("args", i) for i in range(len(target.args))] + [("kwargs", k) for k in target.kwargs]
            if not slots or draw(st.booleans()):
                target.kwargs[draw(st.sampled_from(["kernal", "strides", "pad", "out_channels", "grups"]))] = 1
            else:
                where, key = draw(st.sampled_from(slots))
                bad = [(1, 2, 3), "x", ()]  # wrong for every argument of every op
                if target.callee in ("conv", "linear") and where == "args":  # out, kernel
                    bad += [0, -1, 1.5, True, None, 2 ** 63]
                getattr(target, where)[key] = draw(st.sampled_from(bad))
    spec.text = spec_text(spec)
    return spec, target, what


@MORE
@given(case=broken_specs())
def test_broken_spec_is_refused_with_its_location(case, workdir):
    spec, target, what = case
    note(f"{what} at line {target.line}:\n{spec.text}")
    directory = fresh(workdir)
    path = write_spec(directory, spec.text)
    out = directory / "out.csv"
    code, stdout, stderr = run_cli("analyze", str(path), "--format", "csv", "-o", str(out))
    assert code != 0, f"accepted a broken spec ({what} at line {target.line})"
    assert_clean_failure_or_success(directory, path, code, stdout, stderr, out)
    line = int(LOCATED.match(stderr)["line"])
    if what != "merge":
        assert line == target.line, stderr
    else:  # the merge is reported at the block, or at the branch row whose shape it is
        assert line >= target.line, stderr


# ============================================================================ what the fuzzer found
@pytest.mark.parametrize("size, kernel, stride, padding", [(4, 5, 2, 0), (3, 5, 2, 1), (2, 3, 2, 0), (4, 6, 4, 0),
                                                           (4, 5, 1, 0), (4, 6, 2, 0), (7, 5, 2, 0)])
def test_ceil_mode_pool_wider_than_its_input(size, kernel, stride, padding):
    """With ceil_mode, torch makes one output from a window a little wider than the (padded)
    input; the registry called that a collapsed grid (found by test_receptive_fields_...)."""
    text = (f"name: t\ninput: [1, {size}, {size}]\nlayers:\n"
            f"  - maxpool({kernel}, stride={stride}, padding={padding}, ceil_mode=true)\n")
    pool = torch.nn.MaxPool2d(kernel, stride, padding, ceil_mode=True)
    try:
        expected = tuple(pool(torch.zeros(1, 1, size, size)).shape[1:])
    except RuntimeError:
        expected = None
    try:
        graph = ia.load_graph(ia.load_spec_text(text, "t.yaml"))
        got = tuple(graph.node(graph.output).out_shape)
    except AnalyzerError as err:
        assert "grid collapses" in str(err)
        got = None
    assert got == expected


def test_python_syntax_warning_is_an_error_not_a_second_line(tmp_path):
    """`conv(8, 1if 1 else 2)`: Python's parser printed a SyntaxWarning on stderr before our
    error (found by test_mutated_yaml_...: the warnings pytest recorded)."""
    spec = tmp_path / "w.yaml"
    spec.write_text("name: w\ninput: [3, 8, 8]\nlayers:\n  - conv(8, 1if 1 else 2)\n")
    proc = subprocess.run([sys.executable, "-m", "inception_analyzer", "analyze", str(spec)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"inception-analyzer: {spec}:4:13: spec error: cannot read 'conv(8, 1if 1 else 2)' "
                                   "as a call like conv(64, 3, stride=2): invalid decimal literal")


def test_review_of_a_model_without_parameters(tmp_path):
    """A model of pools alone has 0 params and 0 MACs: a finding's effect divided by them
    (ZeroDivisionError in the review table; found by test_receptive_fields_...)."""
    spec = write_spec(tmp_path, "name: p\ninput: [1, 8, 8]\nlayers:\n  - avgpool(1, stride=2, ceil_mode=true)\n")
    code, out, err = run_cli("review", str(spec))
    assert code == 0 and err == "" and "design review" in out


def test_review_of_a_large_kernel_padded_on_one_axis(tmp_path):
    """A 5x5 conv padded (0, 2) on a 5x2 grid: the review priced its 3x3 replacement with the
    height's padding on both axes, the chain did not fit the width, and the review raised a
    ShapeError on a valid spec (found by the long profile of test_receptive_fields_...)."""
    spec = write_spec(tmp_path, "name: k\ninput: [1, 5, 2]\nlayers:\n  - conv(4, 5, padding=(0, 2))\n")
    code, out, err = run_cli("review", str(spec))
    assert code == 0 and err == "", err
    wide = write_spec(tmp_path, "name: k\ninput: [64, 12, 12]\nlayers:\n  - conv(64, 5, padding=(0, 2))\n")
    assert [f.check for f in ia.analyze(str(wide)).findings if f.path == "conv"] == ["§3.1.large_kernel"]


def test_nul_byte_is_located(tmp_path):
    """A NUL (or another control character) was reported without its line and column (found by
    test_mutated_yaml_...)."""
    spec = tmp_path / "fuzz.yaml"
    spec.write_bytes(b"name: n\ninput: [3, 8, 8]\nlayers: [re\x00lu]\n")
    code, out, err = run_cli("analyze", str(spec))
    assert code == 2 and err.startswith(f"inception-analyzer: {spec}:3:12: YAML syntax error: unacceptable character")


@pytest.mark.parametrize("row", ["conv(2, 3, padding='same')", "conv(2, 2, padding='same', dilation=2)",
                                 "conv(2, 2, padding='same')", "conv(2, 3, padding='valid')", "conv(2, (1, 4), padding='same')"])
def test_fvcore_total_with_string_padding(row, fvcore_flops):
    """fvcore 0.1.5 counts nothing for torch's padding='same'/'valid' (aten::_convolution_mode):
    the fvcore-compatible total claimed the conv's MACs (found by the long profile's fvcore check).
    Now string paddings that pad both sides alike are built as numbers, and the rest count 0."""
    graph = ia.load_graph(ia.load_spec_text(f"name: s\ninput: [2, 8, 8]\nlayers: [\"{row}\"]\n", "s.yaml"))
    report = ia.analyze(graph)
    model = build_model(graph).eval()
    analysis = fvcore_flops(model, torch.zeros(1, *graph.input_shape))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    assert analysis.total() == report.totals.fvcore_flops
    assert report.totals.macs == report.layers[0].macs > 0


@pytest.mark.parametrize("rows", [["pad([0, 1, 2, 3])", "conv(2, 3)"], ["conv(4, 3, stride=2, padding=[[0, 1], [1, 0]])"],
                                  ["upsample(2)"], ["upsample([2, 3], mode='bilinear')"],
                                  ["upsample(size=[11, 13], mode='bilinear', align_corners=true)"],
                                  ["conv(4, 3)", "flatten", "bn", "linear(5)"]])
def test_fvcore_total_of_padding_and_upsampling(rows, fvcore_flops):
    """fvcore counts no padding (aten::constant_pad_nd has no rule), a convolution by its MACs,
    upsampling by 1 (nearest) or 4 (bilinear) per output element, and batch norm on a vector
    (BatchNorm1d) as on a map: as the analysis does."""
    text = "name: s\ninput: [2, 8, 8]\nlayers:\n" + "".join(f"  - \"{row}\"\n" for row in rows)
    graph = ia.load_graph(ia.load_spec_text(text, "s.yaml"))
    report = ia.analyze(graph)
    model = build_model(graph).eval()
    analysis = fvcore_flops(model, torch.zeros(1, *graph.input_shape))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    assert analysis.total() == report.totals.fvcore_flops > 0


# ============================================================================ the long profile
@pytest.mark.skipif(not LONG, reason="fvcore cross-check runs in the long profile (INCEPTION_ANALYZER_FUZZ=long)")
@settings(FUZZ, max_examples=200)
@given(spec=valid_specs())
def test_fvcore_total_equals_the_analysis(spec, fvcore_flops):
    note(spec.text)
    graph = ia.load_graph(ia.load_spec_text(spec.text, "fuzz.yaml"))
    report = ia.analyze(graph)
    model = build_model(graph).eval()
    analysis = fvcore_flops(model, torch.zeros(1, *graph.input_shape))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    assert analysis.total() == report.totals.fvcore_flops
