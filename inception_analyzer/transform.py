"""Transformations of the graph IR into a variant of itself: today one, the width multiplier that
`sweep --width` (and `--width` on every command that takes a spec) applies.

`scale_widths(graph, factor, multiple)` gives every feature map's channel count c the width
`multiple x round(c x factor / multiple)` (at least `multiple`), as MobileNet's width multiplier
does: every op whose arguments hold a channel count scales it through the registry
(`OpKind.scaled_args`: a conv's `out`, a depthwise conv's groups, a channel slice's range), every
other op follows its inputs, and the shapes are inferred again. Two things keep their width: the
image, and the layers that make the network's outputs (its classes). Widths that a residual add
ties together stay equal, because equal widths scale alike. A width that does not fit (groups
that no longer divide the channels) is a located error, as in a spec.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Callable

from .errors import AnalyzerError, SpecError
from .graph import INPUT, Graph
from .ops.base import MergeKind

MAX_FACTOR = 64.0


def width_rounding(factor: float, multiple: int) -> Callable[[int], int]:
    """c -> the nearest multiple of `multiple` to c x factor, at least `multiple`."""
    return lambda channels: max(multiple, int(channels * factor / multiple + 0.5) * multiple)


def check_width(factor: float, multiple: int) -> None:
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor <= MAX_FACTOR:
        raise SpecError(f"a width multiplier is a number above 0 and at most {MAX_FACTOR:g}, got {factor!r}")
    if isinstance(multiple, bool) or not isinstance(multiple, int) or not 1 <= multiple <= 1024:
        raise SpecError(f"widths round to a multiple from 1 to 1024, got {multiple!r}")


def output_layers(graph: Graph) -> set[str]:
    """The weighted layers that make the network's outputs (walking back from each output through
    ops of one input that hold no weights): their width is the number of classes."""
    found: set[str] = set()
    for output in [graph.output, *graph.aux_outputs]:
        path = output
        while path != INPUT:
            node = graph.node(path)
            if node.op.weighted:
                found.add(path)
                break
            if len(node.inputs) != 1:
                break
            path = node.inputs[0]
    return found


def scale_widths(graph: Graph, factor: float, multiple: int = 8) -> Graph:
    """The graph with every channel count scaled (see the module's docstring)."""
    check_width(factor, multiple)
    pinned: dict[str, int] = {}
    for _ in range(MAX_PASSES):
        scaled, ties = _scaled(graph, factor, multiple, pinned)
        if not ties:
            return scaled
        pinned.update(ties)
    raise SpecError(f"the widths a residual add ties together do not settle at width x{factor:g}")


MAX_PASSES = 8   # a pass pins the layers of every tie it meets; a pinned layer's own ties need another


def _scaled(graph: Graph, factor: float, multiple: int, pinned: dict[str, int]) -> tuple[Graph, dict[str, int]]:
    """One pass: the scaled graph, and the layers whose output width a tie pins (none when the
    pass is the answer). Widths scaled one by one can disagree where a merge ties them: a residual
    trunk that is a concatenation (its width the sum of rounded widths) against the conv that
    projects a branch back onto it. The conv is free to take the trunk's width, so it is pinned
    to it, and the pass goes on as if it were, so that one more pass settles every such tie."""
    width = width_rounding(factor, multiple)
    keep = output_layers(graph)
    setters: set[str] = set()     # layers whose width the multiplier set in this pass
    ties: dict[str, int] = {}
    scaled = Graph(graph.name, graph.spec, dict(graph.arguments), graph.input_shape, scopes=dict(graph.scopes),
                   output=graph.output, aux_outputs=list(graph.aux_outputs), width=factor)

    def width_of(path: str) -> Callable[[int], int]:
        if path in keep:
            return lambda channels: channels
        def scaled_width(channels: int) -> int:
            setters.add(path)
            return pinned.get(path, width(channels))
        return scaled_width

    for node in graph.order:
        if node.path == INPUT:
            scaled.add(node)
            continue
        in_shapes = tuple(scaled.node(source).out_shape for source in node.inputs)
        try:
            # a tie met in this pass: the merge's output as it will be once its layers are pinned
            tied = _tie(graph, node, in_shapes, setters, ties) if node.op.merge_kind in TYING_MERGES else in_shapes
            args = node.op.scaled_args(node.args, list(node.in_shapes), list(tied), width_of(node.path))
            out = node.op.output_shape(args, list(tied))
        except AnalyzerError as err:
            err.hint = err.hint or f"at width x{factor:g}, rounded to multiples of {multiple}"
            raise err.located(node.loc, node.path) from None
        scaled.add(replace(node, args=args, in_shapes=in_shapes, out_shape=out))
    return scaled, ties


TYING_MERGES = (MergeKind.ADD, MergeKind.GATE)


def _tie(graph: Graph, node, in_shapes: tuple, setters: set[str], ties: dict[str, int]) -> tuple:
    """The merge's inputs with the widths it ties made equal: inputs of one width in the original
    (more than one channel: a gate's [1, 1, 1] broadcasts) take the width of the one a layer does
    not set freely (a concatenation, the image), else of the first; each free one pins its layer."""
    old = [shape[0] if len(shape) == 3 else None for shape in node.in_shapes]
    shapes = list(in_shapes)
    for channels in {c for c in old if c is not None and c > 1}:
        tied = [i for i, c in enumerate(old) if c == channels]
        if len({shapes[i][0] for i in tied}) == 1:
            continue
        setter = {i: _width_setter(graph, node.inputs[i], setters) for i in tied}
        fixed = [i for i in tied if setter[i] is None]
        target = shapes[fixed[0] if fixed else tied[0]][0]
        for i in tied:
            if shapes[i][0] != target and setter[i] is not None:
                ties[setter[i]] = target
                shapes[i] = (target, *shapes[i][1:])
    return tuple(shapes)


def _width_setter(graph: Graph, path: str, setters: set[str]) -> str | None:
    """The layer whose width multiplier sets the width of `path`, walking back through ops of one
    input that keep the channel count (norms, activations, pools, depthwise convs); None when the
    width comes from elsewhere (a concatenation, a merge, the image)."""
    while path != INPUT:
        if path in setters:
            return path
        node = graph.node(path)
        if len(node.inputs) != 1 or node.in_shapes[0][:1] != node.out_shape[:1]:
            return None
        path = node.inputs[0]
    return None
