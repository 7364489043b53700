"""An imported model's IR -> a readable spec (YAML text) that builds the same model.

Three steps:
  1. structure: the DAG is read as series-parallel blocks. Every merge's branches start at the
     merge's immediate dominator (the point where they fork), so walking back from a merge's
     inputs to that point gives the branches; an auxiliary head is the chain from the main path
     to its output. A graph that is not series-parallel (a node feeding a merge far downstream
     and also other layers, as DenseNet's blocks) cannot be written in the spec language and is
     refused with the node that breaks it.
  2. names: the module tree decides the rows' names and levels. A run of items inside one
     module becomes a named row of that module (`Mixed_5b: {concat: ...}`), functional ops
     (F.relu) become unnamed rows, and a container's numbered children (nn.Sequential) become
     rows numbered by position, so every weight lands on the model's own path.
  3. templates: instances of one module class with the same structure become one module
     template, innermost first; the values that differ between instances become its arguments
     (with the commonest value as default), the rest stay literal. Inception-v3's 94
     conv-bn-relu units become `BasicConv2d(out, kernel, stride: 1, padding: 0)`.

The result loads with the spec loader and expands to the same IR: same paths for every op with
weights, same arguments, same shapes (tests/test_import.py checks this for every model).
"""
from __future__ import annotations

import keyword
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .errors import AnalyzerError
from .graph import AUX, INPUT, Graph, Node, fork_of, positions
from .ops import OPS, REQUIRED


class SpecWriteError(AnalyzerError):
    kind = "cannot write spec"


# ----------------------------------------------------------------------------- 1. structure
@dataclass
class _Leaf:
    node: Node


@dataclass
class _Merge:
    node: Node
    branches: list[list]


@dataclass
class _Aux:
    items: list


def _structure(graph: Graph) -> list:
    position = positions(graph)
    aux_after: dict[str, list[_Aux]] = {}
    seen: Counter = Counter()

    def chain(end: str, stop: str) -> list:
        items, current = [], end
        while current != stop:
            if current == INPUT:
                raise SpecWriteError(f"{end} is not reached from {stop} alone: the graph is not "
                                     "series-parallel, which the spec language needs", node_path=end)
            node = graph.node(current)
            seen[current] += 1
            if seen[current] > 1:  # reached again: stop now (walking on would take exponential time)
                raise SpecWriteError(f"{current} feeds layers in more than one block: the graph is not "
                                     "series-parallel, which the spec language needs (a branch must start "
                                     "where its siblings start)", node_path=current)
            items.extend(reversed(aux_after.get(current, [])))
            if node.op.merges:
                fork = fork_of(graph, node, position)
                items.append(_Merge(node, [chain(source, fork) for source in node.inputs]))
                current = fork
            else:
                items.append(_Leaf(node))
                current = node.inputs[0]
        items.reverse()
        return items

    for output in graph.aux_outputs:
        start = output
        while graph.node(start).role == AUX:  # walk back to where the head leaves the main path
            start = graph.node(start).inputs[0]
        aux_after.setdefault(start, []).append(_Aux(chain(output, start)))
        seen.clear()
    main = chain(graph.output, INPUT)
    for head in aux_after.values():
        for aux in head:
            _count(aux.items, seen)
    expected = {n.path for n in graph.layers()}
    twice = sorted(p for p, k in seen.items() if k > 1)
    if twice or set(seen) != expected:
        culprit = twice[0] if twice else sorted(expected - set(seen))[0]
        raise SpecWriteError(f"{culprit} feeds layers in more than one block: the graph is not series-parallel, "
                             "which the spec language needs (a branch must start where its siblings start)",
                             node_path=culprit)
    return main


def _count(items: list, seen: Counter) -> None:
    for item in items:
        if isinstance(item, _Leaf):
            seen[item.node.path] += 1
        elif isinstance(item, _Merge):
            seen[item.node.path] += 1
            for branch in item.branches:
                _count(branch, seen)
        else:
            _count(item.items, seen)


def _nodes(item) -> list[Node]:
    if isinstance(item, _Leaf):
        return [item.node]
    if isinstance(item, _Merge):
        return [item.node] + [n for branch in item.branches for i in branch for n in _nodes(i)]
    return [n for i in item.items for n in _nodes(i)]


# ----------------------------------------------------------------------------- 2. rows and names
@dataclass
class _Row:
    name: str | None
    kind: str                          # "call", "layers", "concat", "add"
    callee: str = ""
    values: dict = field(default_factory=dict)     # call arguments, every one (defaults included)
    rows: list = field(default_factory=list)       # layers
    branches: list = field(default_factory=list)   # merges
    aux: bool = False
    module: str | None = None          # the module this named row is
    numbered: bool = False             # its rows are named by position (nn.Sequential)


class _Namer:
    def __init__(self, module_paths: set[str], module_types: dict[str, str], containers: set[str]):
        self.module_paths = module_paths
        self.module_types = module_types
        self.containers = containers

    def rows(self, items: list, prefix: str) -> list[_Row]:
        runs: list[tuple[str | None, list]] = []
        for item in items:
            key = self._key(item, prefix)
            if key is not None and runs and runs[-1][0] == key and not isinstance(item, _Aux) \
                    and not isinstance(runs[-1][1][-1], _Aux):
                runs[-1][1].append(item)
            else:
                runs.append((key, [item]))
        keys = [k for k, _ in runs if k is not None]
        repeated = [k for k, n in Counter(keys).items() if n > 1]
        if repeated:
            raise SpecWriteError(f"the ops of module {_join(prefix, repeated[0])} do not run one after another "
                                 "(other modules run in between), so it cannot be one row",
                                 node_path=_join(prefix, repeated[0]))
        numbered = bool(keys) and all(k.isdigit() for k in keys)
        rows = []
        for index, (key, run) in enumerate(runs):
            if numbered and key != str(index):
                raise SpecWriteError(f"the numbered children of {prefix} do not run in their order "
                                     f"(child {key} at position {index})", node_path=_join(prefix, key))
            rows.append(self._row(key, run, prefix, numbered))
        return rows

    def _key(self, item, prefix: str) -> str | None:
        firsts = set()
        for node in _nodes(item):
            relative = node.path[len(prefix) + 1:] if prefix else node.path
            first, dot, _ = relative.partition(".")
            if not dot and node.path not in self.module_paths:
                firsts.add(None)        # a functional op at this level: an unnamed row
            else:
                firsts.add(first)
        return firsts.pop() if len(firsts) == 1 else None

    def _row(self, key: str | None, run: list, prefix: str, numbered: bool) -> _Row:
        name = None if (key is None or numbered) else key
        if isinstance(run[0], _Aux):
            row = self._row(key, run[0].items, prefix, numbered)
            row.aux = True
            return row
        if key is None:  # unnamed items at this level (functional ops, merges of several modules)
            if len(run) != 1:
                return _Row(None, "layers", rows=[self._row(None, [i], prefix, False) for i in run])
            return self._item_row(run[0], prefix, None)
        path = _join(prefix, key)
        if len(run) == 1 and isinstance(run[0], _Leaf) and run[0].node.path == path:
            return _call_row(name, run[0].node)
        if len(run) == 1 and isinstance(run[0], _Merge):
            merge = run[0]
            row = _Row(name, merge.node.kind, branches=[self.rows(b, path) for b in merge.branches], module=path)
            return row
        inner = self.rows(run, path)
        return _Row(name, "layers", rows=inner, module=path,
                    numbered=bool(inner) and all(r.name is None for r in inner) and path in self.containers)

    def _item_row(self, item, prefix: str, name: str | None) -> _Row:
        if isinstance(item, _Leaf):
            return _call_row(name, item.node)
        return _Row(name, item.node.kind, branches=[self.rows(b, prefix) for b in item.branches])


def _call_row(name: str | None, node: Node) -> _Row:
    return _Row(name, "call", callee=node.kind, values=dict(node.args))


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# ----------------------------------------------------------------------------- 3. templates
@dataclass
class _Template:
    name: str
    params: list[tuple[str, Any]]   # (name, default or REQUIRED)
    body: _Row


def _skeleton(row: _Row) -> tuple:
    if row.kind == "call":
        return (row.name, row.callee, tuple(row.values), row.aux)
    children = row.rows if row.kind == "layers" else [r for b in row.branches for r in (b or [None])]
    shape = tuple(len(b) for b in row.branches) if row.kind != "layers" else ()
    return (row.name, row.kind, row.aux, shape, tuple(_skeleton(c) if c else None for c in children))


def _slots(row: _Row, where: tuple = ()) -> list[tuple[tuple, str, _Row]]:
    """Every argument value in the row, as (row position, argument name, the call row)."""
    if row.kind == "call":
        return [(where, key, row) for key in row.values]
    children = row.rows if row.kind == "layers" else [r for b in row.branches for r in b]
    return [s for i, child in enumerate(children) for s in _slots(child, where + (i,))]


def _templates(rows: list[_Row], module_types: dict[str, str]) -> dict[str, _Template]:
    candidates: list[tuple[int, _Row]] = []

    def collect(row: _Row) -> int:
        """Collect template candidates; return the row's height (0: no candidate inside)."""
        children = row.rows if row.kind == "layers" else [r for b in row.branches for r in b]
        height = max((collect(child) for child in children), default=-1) + 1
        if row.kind != "call" and row.module in module_types and not row.numbered:
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
            if h == height:
                groups.setdefault((module_types[row.module], _skeleton(_anonymous(row))), []).append(row)
        for (class_name, _), members in groups.items():
            if len(members) < 2:
                continue
            name = _fresh(class_name, taken)
            templates[name] = _make_template(name, members)
    return templates


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
                [[_copy(r) for r in b] for b in row.branches], row.aux, row.module, row.numbered)


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
        if len(value) == 2 and value[0] == value[1]:
            return _value(value[0])
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, str):
        return repr(value)
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


def _row_lines(row: _Row, templates: dict) -> list[str]:
    if row.kind == "call":
        call = _call_text(row, templates)
        if row.aux:
            lines = [f"call: {call}", "aux: true"]
            return [f"{row.name}:"] + ["  " + line for line in lines] if row.name else lines
        return [f"{row.name}: {call}" if row.name else call]
    if row.kind == "layers":
        children = _list([_row_lines(r, templates) for r in row.rows])
    else:
        children = _list([_branch_lines(b, templates) for b in row.branches])
    body = [f"{row.kind}:"] + ["  " + line for line in children] + (["aux: true"] if row.aux else [])
    return [f"{row.name}:"] + ["  " + line for line in body] if row.name else body


def _branch_lines(rows: list[_Row], templates: dict) -> list[str]:
    if not rows:
        return ["[]"]     # the identity shortcut
    if len(rows) == 1:
        return _row_lines(rows[0], templates)
    return _list([_row_lines(r, templates) for r in rows])


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
    for node in graph.layers():
        if not node.op.merges and len(node.inputs) > 1:  # an opaque op reading several tensors
            what = node.op.describe(node.args) or node.kind  # an opaque op describes itself by its traced call
            raise SpecWriteError(f"{node.path} is an unmodelled operation ({what}) on "
                                 f"{len(node.inputs)} tensors; a spec has no row for it (analyse the model "
                                 "with from_module instead)", node_path=node.path)
    main = _structure(graph)
    namer = _Namer(imported.module_paths, imported.module_types, imported.containers)
    rows = namer.rows(main, "")
    templates = _templates(rows, imported.module_types)
    c, h, w = graph.input_shape
    lines = [
        f"# Imported from {imported.reference} by `inception-analyzer import` (torch.fx, traced in "
        f"{imported.traced_in} mode).",
        "# Layer names are the model's own module names, so the model's state_dict loads into the",
        "# model this spec builds. Repeated modules of one class became the templates under `modules`.",
        f"name: {graph.name}",
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
            children = (_list([_row_lines(r, templates) for r in body.rows]) if body.kind == "layers"
                        else _list([_branch_lines(b, templates) for b in body.branches]))
            lines.append(f"    {body.kind}:")
            lines.extend("      " + line for line in children)
    lines.append("")
    lines.append("layers:")
    lines.extend("  " + line for line in _list([_row_lines(r, templates) for r in rows]))
    return "\n".join(lines) + "\n"


__all__ = ["SpecWriteError", "write_spec"]
