"""The graph IR: a spec expanded into a networkx DiGraph of ops, with every shape inferred.

Each node is keyed by its dotted path, which is also the built torch module's name
(`Mixed_5b.branch5x5_2.conv`), and carries a `Node` record: the op kind from the registry, its
resolved arguments, input and output shapes, its role (main path or auxiliary head), the block
it belongs to, and where in the spec it was written. Edges run from producer to consumer; a
node's `inputs` keeps their order (concat order matters).

Expansion is one pass over the rows: template calls are bound and expanded in place, branches
are expanded from the same input and merged, and each node's output shape is computed the
moment it is created, so the graph is shape-complete when expansion ends. A row reads the tensor
the row before it made, or the earlier tensors its `from` names (any DAG); a name is looked up in
the levels around the row, innermost first, up to the module template it is in (a template sees
its own rows and its `input`) or the spec's top level.
"""
from __future__ import annotations

import heapq
from collections import ChainMap
from dataclasses import dataclass, field
from typing import Any, Iterator

import networkx as nx

from .errors import AnalyzerError, OverrideError, SourceLocation, SpecError, did_you_mean, shown
from .ops import MAX_SIZE, OPS, OpKind, REQUIRED, Shape, STRUCTURAL_OPS
from .perf import paused_gc
from .spec.calls import Call, Ref
from .spec.schema import BlockRow, CallRow, Condition, FromRow, Source, Spec, Template, callable_names

INPUT = "input"
MAIN, AUX = "main", "aux"
# Bounds that keep a hostile spec (a template "bomb", modules nested thousands deep) from taking
# unbounded time, memory or stack. The largest real networks have a few thousand ops and nest a
# handful of levels; the 10,000-block benchmarks have about 100,000 ops. At the bound, expansion
# takes about 4 s and 400 MB.
MAX_OPS = 250_000
MAX_NESTING = 100


@dataclass
class Node:
    path: str
    op: OpKind
    args: dict
    inputs: tuple[str, ...]
    in_shapes: tuple[Shape, ...]
    out_shape: Shape
    role: str
    block: str          # outermost module instance holding the node (or the node itself)
    loc: SourceLocation

    @property
    def kind(self) -> str:
        return self.op.name


@dataclass
class Scope:
    """One level of the module tree: a template instance or a named block of rows."""

    path: str
    kind: str           # "template", "layers", "concat" or "add"
    template: str | None
    loc: SourceLocation


@dataclass
class Graph:
    name: str
    spec: Spec
    arguments: dict[str, Any]
    input_shape: Shape
    dag: nx.DiGraph = field(default_factory=nx.DiGraph)
    order: list[Node] = field(default_factory=list)   # creation order = a topological order
    scopes: dict[str, Scope] = field(default_factory=dict)
    output: str = INPUT
    aux_outputs: list[str] = field(default_factory=list)
    width: float | None = None   # the width multiplier the graph was scaled by (transform.py); None: as written
    _levels: set[str] = field(default_factory=set, repr=False)   # every proper prefix of a node's path

    def node(self, path: str) -> Node:
        return self.dag.nodes[path]["node"]

    def add(self, node: Node) -> None:
        """Insert a node after its inputs. The graph's invariants live here: paths are unique,
        every input exists already, so `order` (creation order) is always a topological order,
        the DAG's edges are exactly the nodes' inputs, each op reads as many tensors as it takes,
        and a node's input shapes are its inputs' output shapes."""
        if node.path in self.dag:
            raise SpecError(f"two layers are both called '{node.path}'", node.loc, node_path=node.path)
        # a path names a layer or a level of the module tree (the built module's container), not both
        prefixes = [node.path[:i] for i, char in enumerate(node.path) if char == "."]
        clash = node.path if node.path in self._levels else next((p for p in prefixes if p in self.dag), None)
        if clash is not None:
            raise SpecError(f"'{clash}' would be both a layer and a block holding '{node.path}'" if clash != node.path
                            else f"'{node.path}' would be both a layer and a block holding other layers",
                            node.loc, node_path=node.path)
        for source in node.inputs:
            self.require(source, node.loc, node.path)
        op, count = node.op, len(node.inputs)
        if count < op.min_inputs or (op.max_inputs is not None and count > op.max_inputs):
            hint = "merge them first (concat, add or mul)" if count > 1 and op.max_inputs == 1 else None
            raise SpecError(f"{op.name} reads {op.arity_text()}, but this row gives it {count}", node.loc,
                            node_path=node.path, hint=hint)
        if tuple(node.in_shapes) != tuple(self.node(source).out_shape for source in node.inputs):
            raise SpecError(f"'{node.path}' was given input shapes {list(node.in_shapes)} that are not its "
                            "inputs' output shapes", node.loc, node_path=node.path)
        self.dag.add_node(node.path, node=node)
        for source in node.inputs:
            self.dag.add_edge(source, node.path)
        self.order.append(node)
        self._levels.update(prefixes)

    def is_level(self, path: str) -> bool:
        """Whether `path` holds other nodes (a level of the module tree): it cannot be a node then."""
        return path in self._levels

    def require(self, path: str, loc: SourceLocation | None, reader: str | None) -> None:
        """A tensor a layer reads must have been made before it."""
        if path not in self.dag:
            raise SpecError(f"'{reader}' reads '{path}', which no earlier layer makes" if reader else
                            f"'{path}' is not made by any earlier layer", loc, node_path=reader)

    def keep_only(self, paths: set[str]) -> None:
        """Drop every node not in `paths` (an import's dead code), keeping the order of the rest."""
        self.dag.remove_nodes_from([path for path in list(self.dag.nodes) if path not in paths])
        self.order = [node for node in self.order if node.path in paths]
        self._levels = {node.path[:i] for node in self.order for i, char in enumerate(node.path) if char == "."}

    def fold(self, path: str, reader: str, args: dict) -> None:
        """Fold a node into the one layer that reads it (an import's zero padding into the
        convolution after it): the reader reads the node's input instead, with `args`, and makes
        the same tensor as before."""
        node, after = self.node(path), self.node(reader)
        if len(node.inputs) != 1 or after.inputs != (path,) or list(self.dag.successors(path)) != [reader]:
            raise ValueError(f"{path} is not read by {reader} alone, or reads several tensors")
        after.inputs, after.in_shapes, after.args = node.inputs, node.in_shapes, args
        self.dag.remove_node(path)
        self.dag.add_edge(node.inputs[0], reader)
        self.order = [n for n in self.order if n.path != path]
        self._levels = {n.path[:i] for n in self.order for i, char in enumerate(n.path) if char == "."}

    def layers(self) -> Iterator[Node]:
        """Every op node except the input, in execution order."""
        return (n for n in self.order if n.path != INPUT)

    @property
    def metadata(self) -> dict:
        return self.spec.metadata


def positions(graph: Graph) -> dict[str, int]:
    """Each node's place in execution order (a topological order), for `fork_of`."""
    return {node.path: i for i, node in enumerate(graph.order)}


def fork_of(graph: Graph, merge: Node, position: dict[str, int]) -> str:
    """Where a merge's branches start: walking back from its inputs, latest first, until one node
    is left that every path goes through (the merge's immediate dominator). Linear in the size of
    the merged block, so the review, the importer and the spec writer can ask it per merge."""
    frontier = set(merge.inputs)
    heap = [(-position[p], p) for p in frontier]
    heapq.heapify(heap)
    while len(frontier) > 1:
        _, path = heapq.heappop(heap)
        frontier.discard(path)
        for source in graph.node(path).inputs:
            if source not in frontier:
                frontier.add(source)
                heapq.heappush(heap, (-position[source], source))
    return next(iter(frontier))


def broadcast_inputs(node: Node) -> tuple[bool, ...]:
    """Which inputs of a merge are broadcast over its grid: a gate's [C, 1, 1] branch, one value
    per channel multiplied into every position of a larger feature map (squeeze-and-excitation).
    Such a branch has no position of its own: it is aligned with the map by construction."""
    out = node.out_shape
    if not node.op.merges or len(out) != 3 or out[1] * out[2] == 1:
        return (False,) * len(node.inputs)
    return tuple(len(s) == 3 and s[1] * s[2] == 1 for s in node.in_shapes)


def gate_branches(graph: Graph, position: dict[str, int] | None = None) -> set[str]:
    """Every layer on a gate branch of a merge (from the merge's fork, excluded, to the broadcast
    input): SE's global pooling, squeeze and excitation layers. They compute one scale per channel
    and carry no feature map of their own, so they are not the width of the branch they gate."""
    found: set[str] = set()
    for node in graph.layers():
        if not node.op.merges:
            continue
        wide = broadcast_inputs(node)
        if not any(wide):
            continue
        position = positions(graph) if position is None else position
        fork = fork_of(graph, node, position)
        stack = [source for source, is_gate in zip(node.inputs, wide) if is_gate and source != fork]
        while stack:
            path = stack.pop()
            if path in found or path == INPUT:
                continue
            found.add(path)
            stack.extend(p for p in graph.node(path).inputs if p != fork)
    return found


def runs_in_place(graph: Graph, node: Node) -> bool:
    """Whether an op that can overwrite its input (`in_place_capable`: the activations with torch's
    `inplace` argument) does so: exactly when that cannot overwrite a tensor anything else needs.
    Its input is new storage (the producer's `fresh_output`: not a view, not kept by autograd) that
    nothing else reads, and neither the caller's image nor a network output; where its input comes
    through ops that hand on their input itself (`passes_input`: an identity, dropout), read by
    nothing else either, the storage is the tensor before them. The builder builds such
    an activation with inplace=True (as torchvision does), the memory analysis counts no new
    output for it and the latency prediction prices it as in place; the figures and the weights
    are the same either way."""
    if not node.op.in_place_capable or len(node.inputs) != 1:
        return False

    def private(path: str) -> bool:   # read by the next op alone, and no output of the network
        return graph.dag.out_degree(path) == 1 and path != graph.output and path not in graph.aux_outputs

    (source,) = node.inputs
    # through ops that hand on their input tensor itself (an identity, dropout): the tensor overwritten is theirs
    while source != INPUT and graph.node(source).op.passes_input and private(source):
        source = graph.node(source).inputs[0]
    return source != INPUT and graph.node(source).op.fresh_output and private(source)


@dataclass(frozen=True)
class MainLayer:
    """A main-path layer with what every per-batch pass over a model reads of it (the latency
    prediction, the allocator simulation): whether it runs in place, and its signature, equal
    for layers whose op kind, arguments, shapes and in-place choice are equal (a repeated
    block's), so that such a pass works out each signature's price or blocks once:
    Inception-ResNet-v2's 823 layers have 106 signatures."""

    node: Node
    in_place: bool
    signature: tuple


def main_layers(graph: Graph) -> list[MainLayer]:
    """The main-path layers in execution order (auxiliary heads left out)."""
    layers = []
    for node in graph.layers():
        if node.role == AUX:
            continue
        in_place = runs_in_place(graph, node)
        layers.append(MainLayer(node, in_place, (id(node.op), repr(node.args), tuple(map(tuple, node.in_shapes)),
                                                 tuple(node.out_shape), in_place)))
    return layers


def grid_of(shape: Shape) -> tuple[int, int] | None:
    """The feature grid a tensor lies on, (H, W); None for a vector or a 1x1 map (the head)."""
    return tuple(shape[1:]) if len(shape) == 3 and shape[1] * shape[2] > 1 else None


def grid_units(graph: Graph, gates: set[str] | None = None) -> dict[str, str]:
    """Each layer's unit on the feature grid: its block when the block changes the grid at most
    once (a reduction block, as Inception's Mixed_6a or a stride-2 residual block, belongs to the
    grid it outputs), else the outermost module inside the block that does and holds layers of its
    own (a module made only of modules, such as a stage of blocks, is looked into), else the layer
    itself. A model whose whole trunk is one module (a custom nn.Module holding every stage, or
    RegNet's trunk_output written in a spec) is read by its grids and blocks, not its nesting. A
    gate branch (SE's squeeze on a 1x1 map) lies on the grid it gates (`gates`: gate_branches(graph),
    found here when not given). Linear: each layer's path prefixes are visited once or twice."""
    members: dict[str, list[Node]] = {}
    for node in graph.layers():
        members.setdefault(node.block, []).append(node)
    gates = gate_branches(graph) if gates is None else gates

    def grid(node: Node):
        return "gate" if node.path in gates else grid_of(node.out_shape) if node.role != AUX else None

    unit: dict[str, str] = {}
    for block, nodes in members.items():
        if len({grid(n) for n in nodes} - {"gate"}) <= 2:
            unit.update((n.path, block) for n in nodes)
            continue
        inner: dict[str, list[str]] = {}   # node -> the modules holding it inside the block, outermost first
        grids: dict[str, set] = {}
        direct: set[str] = set()            # modules that hold a layer directly (not only through modules)
        for node in nodes:
            parts = node.path.split(".")
            inner[node.path] = [p for p in (".".join(parts[:depth]) for depth in range(1, len(parts)))
                                if len(p) > len(block) and p.startswith(block + ".") and p in graph.scopes]
            for scope in inner[node.path]:
                grids.setdefault(scope, set()).add(grid(node))
            if inner[node.path]:
                direct.add(inner[node.path][-1])
        for node in nodes:
            fits = [scope for scope in inner[node.path] if len(grids[scope] - {"gate"}) <= 2]
            # a template instance (a module of its own class) before a group of rows holding it
            unit[node.path] = next((scope for scope in fits if graph.scopes[scope].kind == "template"),
                                   next((scope for scope in fits if scope in direct), fits[0] if fits else node.path))
    return unit


# ----------------------------------------------------------------------------- arguments
def resolve_arguments(spec: Spec, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The spec's argument defaults with overrides applied; wrong names or types are errors."""
    values = dict(spec.arguments)
    for key, value in (overrides or {}).items():
        if key not in spec.arguments:
            hint = did_you_mean(key, spec.arguments)
            known = ", ".join(spec.arguments) or "none"
            raise OverrideError(f"{shown(key)} is not an argument of spec {shown(spec.name)}",
                                SourceLocation(spec.file), hint=hint or f"its arguments: {known}")
        default = spec.arguments[key]
        if not _same_type(default, value):
            raise OverrideError(f"argument '{key}' takes {type(default).__name__} "
                                f"(default {shown(default)}), got {shown(value)}", spec.argument_locs[key])
        values[key] = value
    return values


def _same_type(default: Any, value: Any) -> bool:
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


# ----------------------------------------------------------------------------- namespaces
class _Namespace:
    """The names of one module level: explicit names are reserved up front, others derived.

    Levels nest (`parent`); a template instance's level is a boundary for references, and knows
    the tensor(s) the instance read (`input`). `declared` is what a reference may name here: the
    rows' written names, and the numbers of a numbered sequence's rows. A dotted name (`convs.0`)
    is a layer inside a container of this level (`convs`): the container is declared, and is no
    row's name."""

    def __init__(self, prefix: str, reserved: set[str], parent: "_Namespace | None" = None,
                 instance_input: str | tuple | None = None, numbered: int = 0):
        self.prefix = prefix
        self.reserved = reserved
        self.used: set[str] = set()
        self.next_suffix: dict[str, int] = {}  # base -> next suffix to try: derive stays O(1)
        self.parent = parent
        self.instance_input = instance_input    # set on a template instance's level (and the top level)
        self.containers = {name.rsplit(".", depth)[0] for name in reserved for depth in range(1, name.count(".") + 1)}
        self.declared = {name.partition(".")[0] for name in reserved} | {str(i) for i in range(numbered)}

    def path_of(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def claim(self, name: str, loc: SourceLocation) -> str:
        if name in self.used:
            raise SpecError(f"the name '{name}' is used twice at this level", loc,
                            node_path=self.path_of(name))
        if name.partition(".")[0] == INPUT and not self.prefix:
            raise SpecError("'input' is reserved for the network's input", loc)
        if name in self.containers:   # every explicit name is known up front: one check finds a clash
            raise SpecError(f"the name '{name}' is both a layer and, in a dotted name ('{name}.…'), a container "
                            "at this level", loc, node_path=self.path_of(name))
        self.used.add(name)
        return self.path_of(name)

    def derive(self, base: str) -> str:
        k = self.next_suffix.get(base, 0)
        name = base if k == 0 else f"{base}_{k}"
        while name in self.used or name in self.reserved or name in self.containers or \
                (name == INPUT and not self.prefix):
            k += 1
            name = f"{base}_{k}"
        self.next_suffix[base] = k + 1
        self.used.add(name)
        return self.path_of(name)


def _explicit_names(rows: list) -> set[str]:
    """Names written in these rows at this level (looking into unnamed blocks, not named ones)."""
    names: set[str] = set()
    for row in rows:
        if row.name is not None:
            names.add(row.name)
        elif isinstance(row, BlockRow):
            for branch in row.branches:
                names |= _explicit_names(branch)
    return names


# ----------------------------------------------------------------------------- expansion
class _Expander:
    """Expands rows in order. What a row reads (`current`) is the path of one tensor, or a tuple
    of several (after `from: [a, b]`, or in a module called with them): only a merge, a module
    call or another `from` can follow several."""

    def __init__(self, spec: Spec, arguments: dict[str, Any]):
        self.spec = spec
        self.arguments = arguments
        self.callables = callable_names(spec)
        self.template_stack: list[tuple[str, SourceLocation]] = []
        self.outputs: dict[str, Any] = {}   # a finished named level (block, module instance) -> its output

    def run(self, input_shape: Shape) -> Graph:
        rows = self.spec.layers.branches[0]
        at_least = _definite_ops(rows, self.spec.templates, {})
        if at_least > MAX_OPS:  # known before expanding anything: refuse at once
            raise SpecError(f"the spec expands to at least {at_least:,} ops, more than the limit of "
                            f"{MAX_OPS:,}; refusing to expand it", self.spec.layers.loc)
        self.nesting = 0
        graph = Graph(self.spec.name, self.spec, self.arguments, input_shape)
        self.graph = graph
        input_node = Node(INPUT, OPS["input"], {}, (), (), input_shape, MAIN, INPUT,
                          self.spec.input_loc or self.spec.loc)
        self._insert(input_node)
        root = _Namespace("", _explicit_names(self.spec.layers.branches[0]), instance_input=INPUT)
        env = ChainMap({}, self.arguments)
        output = self._rows(self.spec.layers.branches[0], root, env, INPUT, MAIN, None, False)
        graph.output = self._one(output, "the network's output", self.spec.layers.loc)
        if graph.output == INPUT:
            raise SpecError("the spec has no layers (after applying 'when' conditions)", self.spec.loc)
        return graph

    # -- rows
    def _rows(self, rows: list, ns: _Namespace, env, current, role: str,
              unit: str | None, index_names: bool):
        if self.nesting >= MAX_NESTING:
            modules = [name for name, _ in self.template_stack]
            chain = " -> ".join(modules if len(modules) < 6 else modules[:2] + ["..."] + modules[-2:])
            raise SpecError(f"blocks and modules nest more than {MAX_NESTING} levels deep",
                            rows[0].loc if rows else self.spec.layers.loc, node_path=ns.prefix or None,
                            hint=f"modules: {chain}" if modules else None)
        self.nesting += 1
        try:
            return self._rows_in_order(rows, ns, env, current, role, unit, index_names)
        finally:
            self.nesting -= 1

    def _rows_in_order(self, rows: list, ns: _Namespace, env, current, role: str,
                       unit: str | None, index_names: bool):
        for index, row in enumerate(rows):
            if row.when is not None and not self._holds(row.when, env):
                continue
            if isinstance(row, FromRow):
                current = self._sources(row.sources, ns)
                continue
            name = row.name if row.name is not None else (str(index) if index_names else None)
            reads = self._sources(row.sources, ns) if row.sources else current
            if row.aux:
                out = self._row(row, name, ns, env, reads, AUX, unit)
                self.graph.aux_outputs.append(self._one(out, "an auxiliary head's output", row.loc))
            else:
                current = self._row(row, name, ns, env, reads, role, unit)
        return current

    def _row(self, row, name, ns, env, current, role, unit):
        if isinstance(row, BlockRow):
            return self._block(row, name, ns, env, current, role, unit)
        callee = row.call.callee
        if callee in self.spec.templates:
            return self._instance(self.spec.templates[callee], row, name, ns, env, current, role, unit)
        op = OPS.get(callee)
        if op is None or callee in STRUCTURAL_OPS:
            hint = did_you_mean(callee, self.callables)
            raise SpecError(f"unknown op or module '{callee}'", row.call.loc or row.loc,
                            node_path=ns.prefix or None, hint=hint or "see docs/spec-format.md for the ops")
        path = ns.claim(name, row.loc) if name else ns.derive(op.name)
        try:
            args = op.bind(self._resolve(row.call.args, env, row.loc),
                           {k: self._resolve(v, env, row.loc) for k, v in row.call.kwargs.items()})
        except AnalyzerError as err:
            raise self._locate(err, row.call.loc or row.loc, path) from None
        # a merge joins every tensor the row reads; any other op reads one (Graph.add checks the count)
        inputs = current if isinstance(current, tuple) else (current,)
        return self._add(path, op, args, inputs, role, unit, row.loc)

    def _block(self, row: BlockRow, name, ns, env, current, role, unit):
        inner = ns
        if name is not None:
            path = ns.claim(name, row.loc)
            numbered = len(row.branches[0]) if row.kind == "layers" and all(r.name is None for r in row.branches[0]) \
                else 0
            # a numbered sequence's rows are all named by their number (an unnamed block among them is
            # a level of its own): the names written inside those blocks are not this level's
            reserved = set() if numbered else set().union(*(_explicit_names(b) for b in row.branches))
            inner = _Namespace(path, reserved, ns, numbered=numbered)
            self.graph.scopes[path] = Scope(path, row.kind, None, row.loc)
            # a merge block is one unit; so is a sequence of named rows (a composite layer written
            # inline); a sequence of numbered rows (nn.Sequential, VGG's features) is a container
            if unit is None and (row.kind != "layers" or all(r.name for r in row.branches[0])):
                unit = path
        if row.kind == "layers":
            # a named sequence of unnamed rows is an nn.Sequential: its rows are named 0, 1, ...;
            # where some rows have names, the others get their op's name (they make no level)
            numbered = name is not None and all(r.name is None for r in row.branches[0])
            out = self._rows(row.branches[0], inner, env, current, role, unit, index_names=numbered)
        else:
            merge_path = inner.derive(row.kind)  # named before the branches: a block's own merge is 'concat'
            # an unnamed merge outside any module (an imported model's torch.cat in its own forward) is
            # still one unit, from the fork to the merge, so the review judges it whole
            unit = unit or merge_path
            start = self._one(current, f"the branches of '{row.kind}'", row.loc)
            outs = tuple(self._one(self._rows(branch, inner, env, start, role, unit, False),
                                   f"a branch of '{row.kind}'", row.loc) for branch in row.branches)
            out = self._add(merge_path, OPS[row.kind], {}, outs, role, unit, row.loc)
        if name is not None:
            self.outputs[inner.prefix] = out
        return out

    def _instance(self, template: Template, row: CallRow, name, ns, env, current, role, unit):
        if any(t == template.name for t, _ in self.template_stack):
            chain = " -> ".join([t for t, _ in self.template_stack] + [template.name])
            raise SpecError(f"module '{template.name}' uses itself ({chain})", row.loc)
        path = ns.claim(name, row.loc) if name else ns.derive(template.name)
        try:
            bound = self._bind_template(template, row.call, env, row.loc)
        except AnalyzerError as err:
            raise self._locate(err, row.call.loc or row.loc, path) from None
        self.graph.scopes[path] = Scope(path, "template", template.name, row.loc)
        inner = _Namespace(path, set().union(*(_explicit_names(b) for b in template.body.branches)), ns,
                           instance_input=current)
        self.template_stack.append((template.name, row.loc))
        try:
            body = template.body
            unit = unit or path
            if body.kind == "layers":
                out = self._rows(body.branches[0], inner, ChainMap(bound, self.arguments), current,
                                 role, unit, index_names=False)
            else:
                out = self._block(body, None, inner, ChainMap(bound, self.arguments), current, role, unit)
        finally:
            self.template_stack.pop()
        self.outputs[path] = out
        return out

    # -- references
    def _sources(self, sources: tuple[Source, ...], ns: _Namespace):
        """The tensors `from` names: one path, or a tuple of them."""
        paths: list[str] = []
        for source in sources:
            found = self._lookup(source, ns)
            paths.extend(found if isinstance(found, tuple) else (found,))
        return paths[0] if len(paths) == 1 else tuple(paths)

    def _lookup(self, source: Source, ns: _Namespace):
        """A reference's tensor: its first name is looked up in the levels around the row, innermost
        first, up to the module instance the row is in (or the top); it must be written at exactly
        one of them, and what it names must already be made."""
        first, _, rest = source.text.partition(".")
        level, found = ns, []
        while True:
            if first in level.declared:
                found.append(level)
            if level.instance_input is not None:
                break
            level = level.parent
        where = ns.prefix or None
        if first == INPUT and not found:
            if rest:
                raise SpecError(f"'{source.text}': 'input' is a tensor, it has no rows", source.loc, node_path=where)
            return level.instance_input
        if not found:
            visible = set().union(*(n.declared for n in self._levels(ns)))
            beyond = level.parent is not None and any(first in n.declared for n in self._levels(level.parent))
            hint = did_you_mean(first, visible) or (
                "a module template sees its own rows and its 'input' only; give it the tensor with 'from' "
                "on the row that calls it" if beyond else "name a row written before this one")
            raise SpecError(f"'from' names '{source.text}', which is no row here", source.loc, node_path=where,
                            hint=hint)
        if len(found) > 1:
            inner, outer = found[0].path_of(first), found[1].path_of(first)
            raise SpecError(f"'from: {source.text}' is ambiguous: it names both {inner} and {outer}", source.loc,
                            node_path=where, hint="write more of its path, starting at a name only one level has")
        path = found[0].path_of(source.text)
        if path in self.outputs:
            return self.outputs[path]
        if path in self.graph.dag:
            return path
        if source.text in found[0].containers:
            inside = sorted(n for n in found[0].reserved if n.startswith(source.text + "."))
            shown_inside = ", ".join(inside[:3]) + (", …" if len(inside) > 3 else "")
            raise SpecError(f"'from' names '{source.text}', a container of layers ({shown_inside}), not a "
                            "tensor", source.loc, node_path=where, hint=f"name one of its layers: {inside[-1]}")
        made = found[0].path_of(first)
        if made in self.outputs or made in self.graph.dag:
            children = sorted(p[len(made) + 1:] for p in (*self.outputs, *self.graph.dag) if p.startswith(made + "."))
            raise SpecError(f"'from' names '{source.text}', but {made} has no '{rest}'", source.loc, node_path=where,
                            hint=did_you_mean(rest, children))
        inside = ns.prefix == path or ns.prefix.startswith(path + ".")
        raise SpecError(f"'from' names '{source.text}', " + (
            "the block this row is part of: its output is not made yet" if inside else
            "which is not made before this row (a reference reads an earlier tensor; a row left out by "
            "'when' makes none)"), source.loc, node_path=where)

    @staticmethod
    def _levels(ns: _Namespace | None):
        while ns is not None:
            yield ns
            if ns.instance_input is not None:
                return
            ns = ns.parent

    def _one(self, current, what: str, loc: SourceLocation) -> str:
        if isinstance(current, tuple):
            raise SpecError(f"{what} must be one tensor, but the rows before it read {len(current)} "
                            f"({', '.join(current)})", loc, hint="merge them first (concat, add or mul)")
        return current

    def _bind_template(self, template: Template, call: Call, env, loc) -> dict:
        names = [p for p, _ in template.params]
        if len(call.args) > len(names):
            raise SpecError(f"module {template.name} takes at most {len(names)} positional arguments "
                            f"({', '.join(names) or 'none'}), got {len(call.args)}", loc)
        bound = dict(zip(names, (self._resolve(a, env, loc) for a in call.args)))
        for key, value in call.kwargs.items():
            if key not in names:
                hint = did_you_mean(key, names)
                raise SpecError(f"module {template.name} has no argument '{key}'", loc,
                                hint=hint or f"it takes: {', '.join(names) or 'none'}")
            if key in bound:
                raise SpecError(f"module {template.name} got '{key}' twice", loc)
            bound[key] = self._resolve(value, env, loc)
        for pname, default in template.params:
            if pname not in bound:
                if default is REQUIRED:
                    raise SpecError(f"module {template.name} needs '{pname}'", loc)
                bound[pname] = default
        return bound

    # -- values
    def _resolve(self, value: Any, env, loc: SourceLocation) -> Any:
        if isinstance(value, Ref):
            if value.name not in env:
                hint = did_you_mean(value.name, list(env))
                raise SpecError(f"unknown argument name '{value.name}'", value.loc or loc,
                                hint=hint or "quote it if you meant a string ('same')")
            return env[value.name]
        if isinstance(value, list):
            return [self._resolve(v, env, loc) for v in value]
        if isinstance(value, dict):
            return {k: self._resolve(v, env, loc) for k, v in value.items()}
        return value

    def _holds(self, condition: Condition, env) -> bool:
        if condition.argument not in env:
            hint = did_you_mean(condition.argument, list(env))
            raise SpecError(f"'when' names an unknown argument '{condition.argument}'", condition.loc, hint=hint)
        return bool(env[condition.argument]) != condition.negated

    # -- nodes
    def _add(self, path: str, op: OpKind, args: dict, inputs: tuple[str, ...], role: str,
             unit: str | None, loc: SourceLocation) -> str:
        in_shapes = tuple(self.graph.node(i).out_shape for i in inputs)
        try:
            out = op.output_shape(args, list(in_shapes))
        except AnalyzerError as err:
            raise self._locate(err, loc, path) from None
        self._insert(Node(path, op, args, inputs, in_shapes, out, role, unit or path, loc))
        return path

    def _insert(self, node: Node) -> None:
        if len(self.graph.order) > MAX_OPS:
            raise SpecError(f"the spec expands to more than {MAX_OPS:,} ops; refusing to expand it further",
                            node.loc, node_path=node.path)
        self.graph.add(node)

    def _locate(self, err: AnalyzerError, loc: SourceLocation, path: str) -> AnalyzerError:
        err.located(loc, path)
        if self.template_stack and err.hint is None:
            name, call_loc = self.template_stack[-1]
            err.hint = f"in module {name} used at line {call_loc.line}"
        return err


def _definite_ops(rows: list, templates: dict[str, Template], sizes: dict[str, int], depth: int = 0) -> int:
    """How many ops these rows make whatever the arguments are (rows under `when` not counted): a
    lower bound on the graph's size, found in time linear in the spec's text."""
    if depth > MAX_NESTING:
        return 0  # the expansion reports the nesting
    total = 0
    for row in rows:
        if row.when is not None or isinstance(row, FromRow):
            continue
        if isinstance(row, BlockRow):
            total += sum(_definite_ops(b, templates, sizes, depth + 1) for b in row.branches) + (row.kind != "layers")
        elif row.call.callee in templates:
            name = row.call.callee
            if name not in sizes:
                sizes[name] = 0  # while counting it: a module that uses itself is reported by the expansion
                body = templates[name].body
                sizes[name] = (sum(_definite_ops(b, templates, sizes, depth + 1) for b in body.branches)
                               + (body.kind != "layers"))
            total += sizes[name]
        else:
            total += 1
    return total


def _input_shape(spec: Spec, arguments: dict[str, Any], input_size: int | None) -> Shape:
    raw = spec.input
    loc = spec.input_loc or spec.loc
    if not isinstance(raw, list) or len(raw) != 3:
        raise SpecError("'input' must be [channels, height, width], e.g. [3, 299, 299]", loc)
    dims = []
    for value in raw:
        if isinstance(value, str) and value.startswith("$"):
            if value[1:] not in arguments:
                raise SpecError(f"'input' names an unknown argument '{value[1:]}'", loc,
                                hint=did_you_mean(value[1:], arguments))
            value = arguments[value[1:]]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SIZE:
            raise SpecError(f"'input' dimensions must be positive integers up to 2**63 - 1, got {shown(value)}", loc)
        dims.append(value)
    if input_size is not None and "input_size" not in spec.arguments:
        dims[1] = dims[2] = input_size
    return tuple(dims)


def build_graph(spec: Spec, overrides: dict[str, Any] | None = None, input_size: int | None = None) -> Graph:
    """Expand a Spec into the shape-inferred graph IR, applying argument overrides."""
    overrides = dict(overrides or {})
    if input_size is not None:
        if isinstance(input_size, bool) or not isinstance(input_size, int) or not 1 <= input_size <= MAX_SIZE:
            raise OverrideError(f"--input-size must be a positive integer up to 2**63 - 1, got {shown(input_size)}",
                                SourceLocation(spec.file))
        if "input_size" in spec.arguments:
            overrides["input_size"] = input_size
    arguments = resolve_arguments(spec, overrides)
    with paused_gc():
        return _Expander(spec, arguments).run(_input_shape(spec, arguments, input_size))
