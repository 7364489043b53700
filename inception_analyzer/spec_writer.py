"""An imported model's IR -> a readable spec (YAML text) that builds the same model.

Four steps:
  1. structure: the DAG is read as series-parallel blocks wherever it is one. A merge whose
     branches start at its immediate dominator (the point where they fork) and use their layers
     alone becomes a block of branches; an auxiliary head is the chain from the main path to its
     output. Where the graph is not series-parallel (DenseNet's layers read every earlier layer;
     VoVNet's one-shot aggregation concatenates every layer of a chain), a merge reads earlier
     tensors by name (`from: [...]`) and the sequence goes on along its latest input.
  2. names: the module tree decides the rows' names and levels. A run of items inside one
     module becomes a named row of that module (`Mixed_5b: {concat: ...}`), functional ops
     (F.relu) become unnamed rows, and a container's numbered children (nn.Sequential) become
     rows numbered by position, so every weight lands on the model's own path. A module whose
     first row reads named tensors reads them itself (`denselayer2: {call: DenseLayer(), from:
     [pool0, denselayer1]}`), so that its body can be a template.
  3. templates: instances of one module class with the same structure become one module
     template, innermost first; the values that differ between instances become its arguments
     (with the commonest value as default), the rest stay literal. Inception-v3's 94
     conv-bn-relu units become `BasicConv2d(out, kernel, stride: 1, padding: 0)`.
  4. references: a tensor read by name is written as the shortest name that finds it from where
     it is read (the spec's lookup: levels innermost first, up to the module template or the top).

The result loads with the spec loader and expands to the same IR: the same ops with the same
arguments and shapes reading the same tensors, the same path for every op with weights
(tests/test_import.py checks this for every model).
"""
from __future__ import annotations

import heapq
import keyword
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from .errors import AnalyzerError
from .graph import AUX, INPUT, Graph, Node, fork_of, positions
from .ops import OPS, REQUIRED
from .spec.schema import ROW_KEYWORDS
from .spec.yaml_source import parse_scalar


class SpecWriteError(AnalyzerError):
    kind = "cannot write spec"


# ----------------------------------------------------------------------------- 1. structure
@dataclass
class _Leaf:
    node: Node
    sources: tuple[str, ...] = ()   # the tensors it reads by name (a merge of earlier tensors: all its inputs)


@dataclass
class _Merge:
    node: Node
    branches: list[list]
    fork: str                       # the tensor its branches start from
    sources: tuple[str, ...] = ()   # ... read by name: it is not the one the rows before leave


@dataclass
class _Aux:
    items: list


@dataclass
class _Ref:
    """A branch that is an earlier tensor (`{from: name}`)."""

    target: str


class _Structure:
    """The IR as nested items; every node is written exactly once, in an order where each row
    comes after what it reads."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.position = positions(graph)
        self.claimed: set[str] = set()
        self.read_by_name: set[str] = set()
        self.consumers: dict[str, list[str]] = {
            n.path: [c for c in graph.dag.successors(n.path) if graph.node(c).role != AUX] for n in graph.order}

    def items(self) -> list:
        graph = self.graph
        self.aux_after: dict[str, list[_Aux]] = {}
        for output in graph.aux_outputs:
            start = output
            while graph.node(start).role == AUX:  # walk back to where the head leaves the main path
                start = graph.node(start).inputs[0]
            self.aux_after.setdefault(start, []).append(_Aux(self.chain(output, {start})))
        main = self.chain(graph.output, {INPUT})
        # a side chain stops at what the chain it joins makes, which may itself stop at a tensor
        # another side chain made: tensors read only through such stops (NASNet's stem, read by
        # every cell of the first two) are written before the rest, by their own chains
        earlier: list = []
        while missing := {n.path for n in graph.layers()} - self.claimed:
            last = max((path for path in missing if all(c in self.claimed for c in graph.dag.successors(path))),
                       key=self.position.get, default=None)
            if last is None:
                first = min(missing, key=self.position.get)
                raise SpecWriteError(f"{first} is not on a path to the model's outputs the writer can follow; "
                                     "please report this with the model", node_path=first)
            earlier = self.chain(last, {INPUT}) + earlier
        return self._as_run(earlier + main, INPUT) if earlier else main

    def chain(self, end: str, stops: set[str], named_start: bool = False) -> list:
        """The items that, run from where the chain starts, make `end`: walking back from `end`
        until a node of `stops` (a branch's fork), or a tensor written elsewhere; the chain's first
        row then reads that tensor by name unless it is the one the rows before leave (the stop,
        and `named_start` is false)."""
        items: list = []
        current = end
        while current not in stops and current not in self.claimed and current != INPUT:
            node = self.graph.node(current)
            self.claimed.add(current)
            items.extend(reversed(self.aux_after.get(current, [])))
            if len(node.inputs) == 1:
                items.append(_Leaf(node))
                current = node.inputs[0]
                continue
            # a merge another merge reads by name is a row that can have a name, not a block
            fork = self._fork(node) if node.op.merges and node.path not in self.read_by_name else None
            if fork is not None:
                items.append(_Merge(node, [self.chain(i, {fork}) for i in node.inputs], fork))
                current = fork
                continue
            # not a block: the merge reads its inputs by name; the chain goes on along the latest one,
            # after the inputs that are not made on the way to it (written just before the merge)
            latest = max(node.inputs, key=self.position.get)
            before = nx.ancestors(self.graph.dag, latest) | {latest}
            items.append(_Leaf(node, tuple(node.inputs)))
            self.read_by_name.update(node.inputs)
            for side in sorted((i for i in set(node.inputs) if i not in before), key=self.position.get,
                               reverse=True):
                made = self.chain(side, before, named_start=True)
                if not isinstance(made[0], _Ref):   # a tensor written already: the merge names it
                    items.extend(reversed(made))
            current = latest
        items.reverse()
        if not items and (named_start or current not in stops):
            return [_Ref(current)]
        # a chain starting at a tensor made elsewhere reads it by name
        return self._as_run(items, None if named_start or current not in stops else current)

    def _as_run(self, items: list, start: str | None) -> list:
        """The items in the order the model ran them, as far as what each reads allows, so that a
        module's ops stay together: the walk back puts a side chain just before the merge that reads
        it, but a DLA tree pools its input first and only its root, many modules later, reads the
        pool. An item that then no longer follows the tensor it reads (nor starts at `start`) reads
        it by name, and one that now follows it reads it as the next row. An auxiliary head stays
        right after the tensor it leaves from."""
        groups: list[list] = []
        for item in items:
            if isinstance(item, _Aux) and groups:
                groups[-1].append(item)
            else:
                groups.append([item])
        made = [{n.path for i in g for n in _nodes(i)} for g in groups]
        maker = {path: k for k, paths in enumerate(made) for path in paths}
        needs: list[set[int]] = []
        for k, group in enumerate(groups):
            read = {source for i in group for n in _nodes(i) for source in n.inputs} - made[k]
            needs.append({maker[source] for source in read if source in maker})
        first = [min((self.position[p] for p in paths), default=-1) for paths in made]
        waiting = [len(n) for n in needs]
        readers: dict[int, list[int]] = {}
        for k, need in enumerate(needs):
            for m in need:
                readers.setdefault(m, []).append(k)
        ready = [(first[k], k) for k in range(len(groups)) if not waiting[k]]
        heapq.heapify(ready)
        ordered: list = []
        previous = start
        while ready:
            _, k = heapq.heappop(ready)
            head = groups[k][0]
            if isinstance(head, (_Leaf, _Merge)):
                reads = head.fork if isinstance(head, _Merge) else head.node.inputs[0]
                if reads != previous and not head.sources:
                    head.sources = (reads,)
                elif reads == previous and head.sources == (reads,):
                    head.sources = ()     # a side chain's start, now right after it
                previous = head.node.path
            else:
                previous = head.target
            ordered.extend(groups[k])
            for m in readers.get(k, ()):
                waiting[m] -= 1
                if not waiting[m]:
                    heapq.heappush(ready, (first[m], m))
        return ordered

    def _fork(self, merge: Node) -> str | None:
        """The merge's fork if its branches use their layers alone (a series-parallel block) and lie
        inside the merge's module: a block is one row, and a branch made by an enclosing module (a
        DLA tree's projection that its first block adds) would split that module's rows in two."""
        fork = fork_of(self.graph, merge, self.position)
        module = merge.path.rpartition(".")[0]
        members: set[str] = set()
        for source in merge.inputs:
            branch: set[str] = set()
            stack = [source] if source != fork else []
            while stack:
                path = stack.pop()
                if path in branch:
                    continue
                if path in members or path in self.claimed or path == INPUT or \
                        module and not path.startswith(module + "."):
                    return None
                branch.add(path)
                stack.extend(i for i in self.graph.node(path).inputs if i != fork)
            for path in branch:
                if any(c not in branch and c != merge.path for c in self.consumers[path]):
                    return None
            members |= branch
        return fork


def _nodes(item) -> list[Node]:
    if isinstance(item, _Leaf):
        return [item.node]
    if isinstance(item, _Merge):
        return [item.node] + [n for branch in item.branches for i in branch for n in _nodes(i)]
    if isinstance(item, _Ref):
        return []
    return [n for i in item.items for n in _nodes(i)]


# ----------------------------------------------------------------------------- 2. rows and names
@dataclass
class _Row:
    name: str | None
    kind: str                          # "call", "layers", "from", or a merge: "concat", "add", "mul"
    callee: str = ""
    values: dict = field(default_factory=dict)     # call arguments, every one (defaults included)
    rows: list = field(default_factory=list)       # layers
    branches: list = field(default_factory=list)   # merges
    aux: bool = False
    module: str | None = None          # the module this named row is
    numbered: bool = False             # its rows are named by position (nn.Sequential)
    sources: tuple = ()                # tensors it reads by name (IR paths)
    texts: tuple | None = None         # ... as written, once fixed inside a template's body
    node: str | None = None            # a call row's IR node


class _Namer:
    def __init__(self, module_paths: set[str], module_types: dict[str, str], containers: set[str]):
        self.module_paths = module_paths
        self.module_types = module_types
        self.containers = containers

    def rows(self, items: list, prefix: str, split: frozenset = frozenset()) -> list[_Row]:
        """The rows of `items` at the level `prefix`. A module whose ops do not run one after another
        (a ModuleList's children called in turn with another list's: Res2Net's convs and bns) is
        `split`: its children become rows of their own, by dotted names (`convs.0`), wherever each
        of them does run in one piece. Names are a level's, branches of an unnamed block included."""
        while True:
            runs = self._runs(items, [self._key(item, prefix, split) for item in items])
            repeated = {k for k, n in Counter(self._level_names(runs, prefix, split)).items() if n > 1}
            if not repeated or repeated <= split:   # none, or in pieces that cannot be split further
                break
            split = split | repeated
        if repeated:
            first = next(k for k in self._level_names(runs, prefix, split) if k in repeated)
            raise SpecWriteError(f"the ops of module {_join(prefix, first)} do not run one after another "
                                 "(other modules run in between), so it cannot be one row",
                                 node_path=_join(prefix, first))
        named = [k for k, _ in runs if k is not None]
        # nn.Sequential's children are numbered by position, unless some make no row (torchvision's
        # Permute modules in ConvNeXt: a change of axis order, not an op) or run out of order: then
        # every row is written with its number
        numbered = bool(named) and all(key == str(index) for index, (key, _) in enumerate(runs))
        return [self._row(key, run, prefix, numbered, split) for key, run in runs]

    def _level_names(self, runs: list, prefix: str, split: frozenset) -> list[str]:
        """The names the runs give rows at this level: a named run's, and inside an unnamed block
        (a merge of several modules' ops) its branches' runs, which are rows of this level too."""
        names = []
        for key, run in runs:
            if key is not None:
                names.append(key)
                continue
            for item in run:
                for branch in item.branches if isinstance(item, _Merge) else (item.items,) if isinstance(
                        item, _Aux) else ():
                    names += self._level_names(self._runs(branch, [self._key(i, prefix, split) for i in branch]),
                                               prefix, split)
        return names

    @staticmethod
    def _runs(items: list, keys: list) -> list[tuple[str | None, list]]:
        """Consecutive items of one module, with its name (None: unnamed items, one row each)."""
        runs: list[tuple[str | None, list]] = []
        for item, key in zip(items, keys):
            if key is not None and runs and runs[-1][0] == key and not isinstance(item, _Aux) \
                    and not isinstance(runs[-1][1][-1], _Aux):
                runs[-1][1].append(item)
            else:
                runs.append((key, [item]))
        return runs

    def _key(self, item, prefix: str, split: frozenset = frozenset()) -> str | None:
        """The module below `prefix` holding every op of the item, one of a split module's children
        rather than the split module, or None (ops of several modules, or a functional op here)."""
        keys = set()
        for node in _nodes(item):
            parts = (node.path[len(prefix) + 1:] if prefix else node.path).split(".")
            deepest = len(parts) if node.path in self.module_paths else len(parts) - 1  # an op of a module: the module
            depth = 1
            while ".".join(parts[:depth]) in split and depth < deepest:
                depth += 1
            keys.add(".".join(parts[:min(depth, deepest)]) or None)   # none: a functional op at this level
        return keys.pop() if len(keys) == 1 else None

    def _row(self, key: str | None, run: list, prefix: str, numbered: bool, split: frozenset) -> _Row:
        name = None if (key is None or numbered) else key
        if isinstance(run[0], _Aux):
            row = self._row(key, run[0].items, prefix, numbered, split)
            row.aux = True
            return row
        if key is None:  # unnamed items at this level (functional ops, merges of several modules)
            if len(run) != 1:
                return _hoisted(_Row(None, "layers", rows=[self._row(None, [i], prefix, False, split) for i in run]))
            return self._item_row(run[0], prefix, None, split)
        path = _join(prefix, key)
        if len(run) == 1 and isinstance(run[0], _Leaf) and run[0].node.path == path:
            return _call_row(name, run[0])
        if len(run) == 1 and isinstance(run[0], _Merge) and run[0].node.path.rpartition(".")[0] == path:
            merge = run[0]   # the module's own merge (a merge deeper down is a row of an inner module)
            return _Row(name, merge.node.kind, branches=[self.rows(b, path) for b in merge.branches], module=path,
                        sources=merge.sources, node=merge.node.path)
        inner = self.rows(run, path)
        return _hoisted(_Row(name, "layers", rows=inner, module=path,
                             numbered=bool(inner) and all(r.name is None for r in inner) and path in self.containers))

    def _item_row(self, item, prefix: str, name: str | None, split: frozenset) -> _Row:
        if isinstance(item, _Leaf):
            return _call_row(name, item)
        if isinstance(item, _Ref):
            return _Row(None, "from", sources=(item.target,))
        return _Row(name, item.node.kind, branches=[self.rows(b, prefix, split) for b in item.branches],
                    sources=item.sources, node=item.node.path)


def _hoisted(row: _Row) -> _Row:
    """A sequence whose first row reads named tensors reads them itself: its body then starts from
    what it is given (a merge of them, `- concat`), as a module called on several tensors does."""
    if row.rows and row.rows[0].sources and not row.sources:
        row.sources, row.rows[0].sources = row.rows[0].sources, ()
    return row


def _call_row(name: str | None, leaf: _Leaf) -> _Row:
    return _Row(name, "call", callee=leaf.node.kind, values=dict(leaf.node.args), sources=leaf.sources,
                node=leaf.node.path)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _children(row: _Row) -> list[_Row]:
    return row.rows if row.kind == "layers" else [r for b in row.branches for r in b]


def _output(row: _Row) -> str | None:
    """The IR node whose tensor a row leaves behind."""
    if row.kind == "from":
        return row.sources[0] if len(row.sources) == 1 else None
    if row.kind == "layers":
        main = [r for r in row.rows if not r.aux]
        return _output(main[-1]) if main else None
    return row.node


def _levels(rows: list[_Row], level: str, numbered: bool = False):
    """(row, the level it sits in, the name the expander gives it or None), every row in order;
    unnamed blocks and branches are in their enclosing level, and a named sequence whose rows have
    no name numbers them 0, 1, ... (as the expander does)."""
    for index, row in enumerate(rows):
        name = row.name if row.name is not None else (str(index) if numbered else None)
        yield row, level, name
        inner = _join(level, name) if name is not None and row.kind not in ("call", "from") else level
        if row.kind == "layers":
            yield from _levels(row.rows, inner, name is not None and all(r.name is None for r in row.rows))
        elif row.kind not in ("call", "from"):
            for branch in row.branches:
                yield from _levels(branch, inner)


# ----------------------------------------------------------------------------- 4. references
def _name_targets(rows: list[_Row]) -> None:
    """Every tensor read by name needs a named row: an unnamed call row making one is given the last
    part of its node's path as its name (`relu_3`), which is also where the expander puts it."""
    targets = {source for row, _, _ in _levels(rows, "") for source in row.sources}
    if not targets:
        return
    taken: dict[str, set[str]] = {}
    for row, level, name in _levels(rows, ""):
        if name is not None:
            taken.setdefault(level, set()).add(name)
    for row, level, name in list(_levels(rows, "")):
        if row.kind == "call" and name is None and row.node in targets and not row.aux:
            candidate = row.node.rpartition(".")[2]
            if candidate and not candidate[0].isdigit() and candidate not in taken.setdefault(level, set()):
                row.name = candidate
                taken[level].add(candidate)


class _Names:
    """What a reference may name, as the expander's lookup sees the written rows: every level's
    declared names, which named rows leave which tensor, where each row sits and what it reads."""

    def __init__(self, rows: list[_Row]):
        self.declared: dict[str, set[str]] = {}
        self.rows_of: dict[str, list[str]] = {}      # IR node -> paths of the named rows leaving it
        self.level_of: dict[int, str] = {}           # id(row) -> the level it sits in
        self.input_of: dict[int, Any] = {}           # id(row) -> the tensor(s) it reads
        for row, level, name in _levels(rows, ""):
            self.level_of[id(row)] = level
            if name is not None:
                self.declared.setdefault(level, set()).add(name.partition(".")[0])   # `convs.0`: convs
                out = _output(row)
                if out is not None and row.kind != "from":
                    self.rows_of.setdefault(out, []).append(_join(level, name))
        self._inputs(rows, INPUT)

    def _inputs(self, rows: list[_Row], current: Any) -> Any:
        for row in rows:
            reads = (row.sources[0] if len(row.sources) == 1 else row.sources) if row.sources else current
            self.input_of[id(row)] = reads
            if row.kind == "layers":
                out = self._inputs(row.rows, reads)
            else:
                for branch in row.branches:
                    self._inputs(branch, reads)
                out = reads if row.kind == "from" else row.node
            if not row.aux:
                current = out
        return current

    def text(self, target: str, level: str, boundary: str | None, boundary_input: Any = None) -> str | None:
        """The shortest name that finds `target` from a row at `level`, looking up to `boundary`
        (a template instance's path; None: the top), or None when no name does."""
        if target == (INPUT if boundary is None else boundary_input):
            return INPUT
        chain = [level]
        while chain[-1] != (boundary or ""):
            if not chain[-1]:
                return None
            chain.append(chain[-1].rpartition(".")[0])
        best = None
        for candidate in self.rows_of.get(target, []):
            for at in chain:
                if at and not candidate.startswith(at + "."):
                    continue
                relative = candidate[len(at) + 1:] if at else candidate
                first = relative.partition(".")[0]
                if first in self.declared.get(at, ()) and sum(first in self.declared.get(o, ()) for o in chain) == 1:
                    if best is None or len(relative) < len(best):
                        best = relative
        return best

    def texts(self, row: _Row, boundary: str | None, boundary_input: Any = None) -> tuple | None:
        texts = tuple(self.text(t, self.level_of[id(row)], boundary, boundary_input) for t in row.sources)
        return None if None in texts else texts


# ----------------------------------------------------------------------------- 3. templates
@dataclass
class _Template:
    name: str
    params: list[tuple[str, Any]]   # (name, default or REQUIRED)
    body: _Row


def _skeleton(row: _Row) -> tuple:
    texts = row.texts if row.sources else ()
    if row.kind == "call":
        return (row.name, row.callee, tuple(row.values), row.aux, texts)
    if row.kind == "from":
        return ("from", texts)
    children = _children(row) if row.kind == "layers" else [r for b in row.branches for r in (b or [None])]
    shape = tuple(len(b) for b in row.branches) if row.kind != "layers" else ()
    return (row.name, row.kind, row.aux, shape, texts, tuple(_skeleton(c) if c else None for c in children))


def _slots(row: _Row, where: tuple = ()) -> list[tuple[tuple, str, _Row]]:
    """Every argument value in the row, as (row position, argument name, the call row)."""
    if row.kind == "call":
        return [(where, key, row) for key in row.values]
    return [s for i, child in enumerate(_children(row)) for s in _slots(child, where + (i,))]


def _templates(rows: list[_Row], module_types: dict[str, str], names: _Names) -> dict[str, _Template]:
    candidates: list[tuple[int, _Row]] = []

    def collect(row: _Row) -> int:
        """Collect template candidates (modules, not a Sequential's numbered rows); return the row's
        height (0: no candidate inside)."""
        height = max((collect(child) for child in _children(row)), default=-1) + 1
        numbered = row.numbered or bool(row.rows) and all(r.name is not None and r.name.isdigit() for r in row.rows)
        if row.kind not in ("call", "from") and row.module in module_types and not numbered:
            candidates.append((height, row))
        return height

    for row in rows:
        collect(row)
    templates: dict[str, _Template] = {}
    taken = set(OPS)
    # innermost first, so an outer module's skeleton already shows its inner modules as calls
    for height in sorted({h for h, _ in candidates}):
        groups: dict[tuple, list[_Row]] = {}
        for h, row in candidates:
            if h == height and _names_inside(row, names):
                groups.setdefault((module_types[row.module], _skeleton(_anonymous(row))), []).append(row)
        for (class_name, _), members in groups.items():
            if len(members) < 2:
                continue
            name = _fresh(class_name, taken)
            templates[name] = _make_template(name, members)
    return templates


def _names_inside(row: _Row, names: _Names) -> bool:
    """Whether every tensor the rows inside a module read by name can be named from inside it (its
    own rows, and `input`: a template sees nothing else); then those names are the rows' texts."""
    inside = [r for r, _, _ in _levels(_children(row), "") if r.sources]
    found = [names.texts(r, row.module, names.input_of[id(row)]) for r in inside]
    if any(texts is None for texts in found):
        return False
    for r, texts in zip(inside, found):
        r.texts = texts
    return True


def _anonymous(row: _Row) -> _Row:
    return _Row(None, row.kind, row.callee, row.values, row.rows, row.branches, False, row.module, row.numbered)


def _fresh(base: str, taken: set[str]) -> str:
    name = base if base.isidentifier() and not keyword.iskeyword(base) else "Module"
    candidate, k = name, 2
    while candidate in taken:
        candidate, k = f"{name}_{k}", k + 1
    taken.add(candidate)
    return candidate
def _make_template(name: str, members: list[_Row]) -> _Template:
    slots = [_slots(m) for m in members]

    def column(i: int) -> tuple:
        return tuple(_hashable(s[i][2].values[s[i][1]]) for s in slots)

    # the values that differ between instances become arguments; slots that always hold the same
    # values as each other (InceptionC's seven-channel width, in five convs) share one argument
    groups: dict[tuple, list[int]] = {}
    for i in range(len(slots[0])):
        if len(set(column(i))) > 1:
            groups.setdefault(column(i), []).append(i)
    params_slots = list(groups.values())
    # a layer-like module (conv, bn, relu rows) names its arguments as the op does: out, kernel;
    # a composite one (branches, inner modules) after the rows they set: branch_pool_out
    flat = members[0].kind == "layers" and all(r.kind == "call" and r.callee in OPS for r in members[0].rows)
    names, used = [], set()
    for group in params_slots:
        key = slots[0][group[0]][1]
        rows = [slots[0][i][2].name or "" for i in group]
        stem = _common_stem(rows)
        base = key if flat or not stem else f"{stem}_{key}"
        if not base.isidentifier() or base in ("true", "false", "null", "none", "True", "False", "None"):
            base = f"arg_{key}"
        candidate, k = base, 2
        while candidate in used:
            candidate, k = f"{base}_{k}", k + 1
        used.add(candidate)
        names.append(candidate)
    # the commonest value becomes a default where it is most instances' value, as long as one
    # argument stays required (so every call shows what sets the instance apart)
    defaults: dict[int, Any] = {}
    for index, group in enumerate(params_slots):
        common, count = Counter(column(group[0])).most_common(1)[0]
        if count >= 2 and count * 2 > len(members):
            defaults[index] = next(s[group[0]][2].values[s[group[0]][1]] for s in slots
                                   if _hashable(s[group[0]][2].values[s[group[0]][1]]) == common)
    if len(defaults) == len(params_slots):
        defaults.pop(0, None)
    order = [i for i in range(len(params_slots)) if i not in defaults] + sorted(defaults)
    params = [(names[i], defaults.get(i, REQUIRED)) for i in order]
    body = _copy(members[0])
    body_slots = _slots(body)
    for index, group in enumerate(params_slots):
        for i in group:
            _, key, row = body_slots[i]
            row.values[key] = _Param(names[index])
    body.name, body.aux = None, False
    for member, member_slots in zip(members, slots):
        arguments = {}
        for index in order:
            i = params_slots[index][0]
            value = member_slots[i][2].values[member_slots[i][1]]
            if index not in defaults or _hashable(value) != _hashable(defaults[index]):
                arguments[names[index]] = value
        member.kind, member.callee, member.values = "call", name, arguments
        member.rows, member.branches = [], []
    return _Template(name, params, body)


def _common_stem(names: list[str]) -> str:
    """'branch7x7_1', 'branch7x7dbl_2' -> 'branch7x7': what the rows' names share."""
    stem = os.path.commonprefix(names).rstrip("_")
    return stem if stem.isidentifier() else ""


@dataclass(frozen=True)
class _Param:
    name: str


def _copy(row: _Row) -> _Row:
    return _Row(row.name, row.kind, row.callee, dict(row.values), [_copy(r) for r in row.rows],
                [[_copy(r) for r in b] for b in row.branches], row.aux, row.module, row.numbered, row.sources,
                row.texts, row.node)


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


# ----------------------------------------------------------------------------- text
def _value(value: Any) -> str:
    if isinstance(value, _Param):
        return value.name
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (tuple, list)):
        # [3, 3] reads as 3; a pair of pairs never shortens ([[0, 1], [0, 1]] is not [0, 1])
        if len(value) == 2 and value[0] == value[1] and not isinstance(value[0], (tuple, list)):
            return _value(value[0])
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and math.isinf(value):
        return "'-inf'" if value < 0 else "'inf'"   # a call has no literal for it (pad's fill value)
    return repr(value)


def _call_text(row: _Row, templates: dict[str, _Template]) -> str:
    if row.callee in templates:
        params = templates[row.callee].params
        required = [p for p, d in params if d is REQUIRED]
        positional = [_value(row.values[p]) for p in required]
        keywords = [f"{p}={_value(row.values[p])}" for p, d in params if d is not REQUIRED and p in row.values]
        # a lone defaulted argument reads better by name; required ones by position, like the paper's tables
        return f"{row.callee}({', '.join(positional + keywords)})"
    op = OPS[row.callee]
    positional, keywords, by_position = [], [], True
    for arg in op.args:
        value = row.values[arg.name]
        default = arg.check(arg.name, arg.default) if arg.default is not REQUIRED and arg.default is not None \
            else arg.default
        if arg.default is REQUIRED and by_position:
            positional.append(_value(value))
        elif isinstance(value, _Param) or _hashable(value) != _hashable(default):
            keywords.append(f"{arg.name}={_value(value)}")
        by_position = by_position and arg.default is REQUIRED
    arguments = positional + keywords
    return f"{row.callee}({', '.join(arguments)})" if arguments else row.callee


def _key_text(text: str) -> str:
    """A name as YAML reads it back: quoted where YAML would read another value (true, null, 1e3)."""
    return text if parse_scalar(text) == text else "'" + text.replace("'", "''") + "'"


def _from_text(row: _Row, names: _Names) -> str:
    texts = row.texts if row.texts is not None else names.texts(row, None)
    if texts is None:
        raise SpecWriteError(f"{', '.join(row.sources)} cannot be named from where it is read (a tensor a "
                             "reference reads needs a named row); please report this with the model",
                             node_path=row.sources[0])
    quoted = [_key_text(t) for t in texts]
    return quoted[0] if len(quoted) == 1 else "[" + ", ".join(quoted) + "]"


def _row_lines(row: _Row, templates: dict, names: _Names) -> list[str]:
    if row.kind == "from":
        return [f"from: {_from_text(row, names)}"]
    if row.kind == "call":
        body = [_call_text(row, templates)]
    elif row.kind == "layers":
        body = _list([_row_lines(r, templates, names) for r in row.rows])
    else:
        body = _list([_branch_lines(b, templates, names) for b in row.branches])
    name = _key_text(row.name) if row.name is not None else None
    reserved = row.name in ROW_KEYWORDS
    if not (row.sources or row.aux or reserved):   # the short forms: `name: call(...)`, `name: {layers: ...}`
        if row.kind == "call":
            return [f"{name}: {body[0]}" if name else body[0]]
        lines = [f"{row.kind}:"] + ["  " + line for line in body]
        return [f"{name}:"] + ["  " + line for line in lines] if name else lines
    # the long form: a mapping with call (or the block), from, aux; and the name inside it where
    # the name is a word of the language (a layer called `layers` or `concat`)
    entries = [f"call: {body[0]}"] if row.kind == "call" else [f"{row.kind}:"] + ["  " + line for line in body]
    if row.sources:
        entries.append(f"from: {_from_text(row, names)}")
    if row.aux:
        entries.append("aux: true")
    if name is None or reserved:
        return ([f"name: {name}"] if name else []) + entries
    return [f"{name}:"] + ["  " + line for line in entries]


def _branch_lines(rows: list[_Row], templates: dict, names: _Names) -> list[str]:
    if not rows:
        return ["[]"]     # the identity shortcut
    if len(rows) == 1:
        return _row_lines(rows[0], templates, names)
    return _list([_row_lines(r, templates, names) for r in rows])


def _list(items: list[list[str]]) -> list[str]:
    lines = []
    for item in items:
        lines.append("- " + item[0])
        lines.extend("  " + line for line in item[1:])
    return lines


def _params_text(params: list[tuple[str, Any]]) -> str:
    return "[" + ", ".join(p if d is REQUIRED else f"{p}: {_value(d)}" for p, d in params) + "]"


def write_spec(imported) -> str:
    """The spec text of an ImportedModel (importer.import_module)."""
    graph = imported.graph
    main = _Structure(graph).items()
    namer = _Namer(imported.module_paths, imported.module_types, imported.containers)
    rows = namer.rows(main, "")
    _name_targets(rows)
    names = _Names(rows)
    templates = _templates(rows, imported.module_types, names)
    for row, _, _ in _levels(rows, ""):
        row.texts = None   # outside the templates' bodies, names are looked up from the top
    c, h, w = graph.input_shape
    lines = [
        f"# Imported from {imported.reference} by `inception-analyzer import` (torch.fx, traced in "
        f"{imported.traced_in} mode).",
        "# Layer names are the model's own module names, so the model's state_dict loads into the",
        "# model this spec builds. Repeated modules of one class became the templates under `modules`.",
        f"name: {_key_text(graph.name)}",
        f"description: imported from {imported.reference}",
        f"input: [{c}, {h}, {w}]",
    ]
    if templates:
        lines.append("")
        lines.append("modules:")
        for template in templates.values():
            body = template.body
            lines.append(f"  {template.name}:")
            if template.params:
                lines.append(f"    args: {_params_text(template.params)}")
            children = (_list([_row_lines(r, templates, names) for r in body.rows]) if body.kind == "layers"
                        else _list([_branch_lines(b, templates, names) for b in body.branches]))
            lines.append(f"    {body.kind}:")
            lines.extend("      " + line for line in children)
    lines.append("")
    lines.append("layers:")
    lines.extend("  " + line for line in _list([_row_lines(r, templates, names) for r in rows]))
    return "\n".join(lines) + "\n"


__all__ = ["SpecWriteError", "write_spec"]
