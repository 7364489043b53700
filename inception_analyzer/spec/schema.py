"""The spec's structure: top-level keys, module templates and rows, checked with locations.

The full language is described in docs/spec-format.md. In short, a row of `layers` is one of

    - relu                                   an op (or template) with no arguments, unnamed
    - maxpool(3, stride=2)                   a call, unnamed
    - Conv2d_1a_3x3: BasicConv2d(32, 3, stride=2)    a named call
    - {conv: [8, 3, {stride: 2}]}            an unnamed call with YAML arguments ($name = argument)
    - concat: [branch, branch, ...]          branches merged along channels (add: summed)
    - Mixed_5b: {concat: [...], when: flag}  a named block, with optional keys
    - AuxLogits: {call: InceptionAux(num_classes), aux: true, when: aux_logits}
    - denselayer2: {call: DenseLayer(32), from: [pool0, denselayer1]}   reads earlier tensors
    - concat: [from: pool0, []]              a branch that is an earlier tensor
    - concat                                 a merge of the tensors the row reads (from, or a module's input)

A name makes a level in the module tree (the built module's attribute); rows without a name
live in the enclosing level. `from` names earlier rows by their path (docs/spec-format.md).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import SourceLocation, SpecError, did_you_mean, shown
from ..ops import MERGE_OPS, OPS, STRUCTURAL_OPS, REQUIRED
from .calls import Call, Ref, parse_call
from .yaml_source import YamlMap, YamlSeq, location_of

BLOCK_KINDS = ("layers", *MERGE_OPS)   # a sequence, or a merge of branches (concat, add, mul)
_BLOCK_NAMES = ", ".join(f"'{k}'" for k in BLOCK_KINDS[:-1]) + f" or '{BLOCK_KINDS[-1]}'"
TOP_LEVEL_KEYS = ("name", "description", "metadata", "arguments", "input", "modules", "layers", "notes")
TEMPLATE_KEYS = ("args", "doc", *BLOCK_KINDS)
LONG_ROW_KEYS = ("name", "call", *BLOCK_KINDS, "from", "when", "aux", "doc")
# words a row's key cannot be a layer name in the short form `- word: ...` (they start a block, a
# long row or a reference); such a layer is written `- {name: word, call: ...}`
ROW_KEYWORDS = frozenset({*BLOCK_KINDS, "call", "from"})


@dataclass(frozen=True)
class Source:
    """A reference to an earlier tensor, by the path of the row that made it (`from: pool0`)."""

    text: str
    loc: SourceLocation


@dataclass
class Condition:
    """`when: flag` or `when: not flag`: the row exists only if the argument is truthy/falsy."""

    argument: str
    negated: bool
    loc: SourceLocation


@dataclass
class CallRow:
    name: str | None
    call: Call
    loc: SourceLocation
    when: Condition | None = None
    aux: bool = False
    sources: tuple[Source, ...] = ()   # `from`: the tensors it reads instead of the current one


@dataclass
class BlockRow:
    """A sequence (`layers`) or a merge of branches (`concat`, `add`); each branch is a row list."""

    name: str | None
    kind: str
    branches: list[list]  # for 'layers': exactly one branch, the rows in order
    loc: SourceLocation
    when: Condition | None = None
    aux: bool = False
    sources: tuple[Source, ...] = ()


@dataclass
class FromRow:
    """`- from: name` (or a branch `{from: name}`): the current tensor becomes that earlier one;
    no op. With several names, the next row reads them all (a merge, or a module given them)."""

    sources: tuple[Source, ...]
    loc: SourceLocation
    name: None = None
    when: Condition | None = None
    aux: bool = False


@dataclass
class Template:
    """A reusable parameterised module: `InceptionA(pool_features)`."""

    name: str
    params: list[tuple[str, Any]]  # (name, default or REQUIRED), in positional order
    body: BlockRow
    loc: SourceLocation
    doc: str = ""


@dataclass
class Spec:
    name: str
    file: str
    loc: SourceLocation
    description: str = ""
    metadata: dict = field(default_factory=dict)
    arguments: dict[str, Any] = field(default_factory=dict)
    argument_locs: dict[str, SourceLocation] = field(default_factory=dict)
    input: Any = None
    input_loc: SourceLocation | None = None
    templates: dict[str, Template] = field(default_factory=dict)
    layers: BlockRow | None = None
    notes: Any = None


def _check_keys(mapping: YamlMap, allowed, what: str) -> None:
    for key in mapping:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed)
            if ")" in str(key):
                hint = ("inside { ... } YAML splits at every comma: quote the call "
                        "(call: \"f(1, 2)\") or write the keys one per line")
            raise SpecError(f"unknown key '{key}' in {what}", mapping.key_locs.get(key, mapping.loc),
                            hint=hint or f"allowed: {', '.join(allowed)}")


def _is_identifier(name: Any) -> bool:
    return isinstance(name, str) and name.isidentifier()


_LAYER_NAME_PART = r"(?:[A-Za-z_][A-Za-z0-9_-]*|[0-9]+)"
# a dotted name (`convs.0`) puts the layer in a container of the level: a ModuleList whose children
# run one at a time between other layers (Res2Net's convs and bns, called in turn in one loop)
_LAYER_NAME = re.compile(rf"{_LAYER_NAME_PART}(?:\.{_LAYER_NAME_PART})*")
# a reference: names joined by dots, numbered rows (an nn.Sequential's children) included
_REFERENCE = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")


def _check_layer_name(name: Any, loc: SourceLocation) -> str:
    """A layer (module attribute) name; torch allows '-' in them (torchvision's RegNet: block1-0),
    an nn.Sequential's children are numbers (`- 2: layer_norm(...)`, where child 1 makes no row),
    and a dotted name is a child of a container of the level (`convs.0`)."""
    if isinstance(name, int) and not isinstance(name, bool) and name >= 0:
        name = str(name)
    if not isinstance(name, str) or not _LAYER_NAME.fullmatch(name):
        raise SpecError(f"'{name}' is not a valid layer name (letters, digits, _ and -, not starting "
                        "with -, or a number; parts joined by dots)", loc)
    return name


def _check_name(name: Any, loc: SourceLocation) -> str:
    if not _is_identifier(name):
        raise SpecError(f"'{name}' is not a valid layer name (letters, digits and _, not starting "
                        "with a digit)", loc)
    return name


def parse_spec(doc: Any, filename: str) -> Spec:
    """Turn the parsed YAML document into a Spec; every error names the file, line and column."""
    if not isinstance(doc, YamlMap):
        raise SpecError("a spec is a mapping with at least 'name', 'input' and 'layers'",
                        location_of(doc, SourceLocation(filename, 1, 1)))
    _check_keys(doc, TOP_LEVEL_KEYS, "the spec")
    for required in ("name", "input", "layers"):
        if required not in doc:
            raise SpecError(f"the spec has no '{required}'", doc.loc)
    if not isinstance(doc["name"], str) or not doc["name"]:
        raise SpecError("'name' must be a non-empty string", doc.loc_of("name"))
    spec = Spec(name=doc["name"], file=filename, loc=doc.loc,
                description=doc.get("description") or "", notes=doc.get("notes"))
    metadata = doc.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise SpecError("'metadata' must be a mapping", doc.loc_of("metadata"))
    if "published" in metadata:
        _check_published(metadata["published"], metadata.loc_of("published"))
    spec.metadata = _plain(metadata)
    arguments = doc.get("arguments") or YamlMap()
    if not isinstance(arguments, dict):
        raise SpecError("'arguments' must be a mapping of name: default", doc.loc_of("arguments"))
    for key, value in arguments.items():
        loc = arguments.key_locs[key] if isinstance(arguments, YamlMap) else doc.loc
        _check_name(key, loc)
        spec.arguments[key] = _plain(value)
        spec.argument_locs[key] = loc
    spec.input, spec.input_loc = doc["input"], doc.loc_of("input")
    modules = doc.get("modules") or YamlMap()
    if not isinstance(modules, YamlMap):
        raise SpecError("'modules' must be a mapping of template name: definition", doc.loc_of("modules"))
    for name, body in modules.items():
        loc = modules.key_locs[name]
        _check_name(name, loc)
        if name in OPS:
            raise SpecError(f"module '{name}' has the name of a built-in op; choose another", loc)
        spec.templates[name] = _parse_template(name, body, loc)
    layers = doc["layers"]
    if not isinstance(layers, YamlSeq) or not layers:
        raise SpecError("'layers' must be a non-empty list of rows", doc.loc_of("layers"))
    spec.layers = BlockRow(None, "layers", [_parse_rows(layers)], doc.loc_of("layers"))
    return spec


PUBLISHED_KEYS = ("top1", "top5", "crops", "models", "kind", "source")
# what a published figure measured: the paper's own network, or weights released for this one
PUBLISHED_KINDS = ("paper", "weights")


def _check_published(entries: Any, loc: SourceLocation) -> None:
    """metadata.published: a list of results, each with top1/top5 accuracies in percent, the
    number of crops and of models (an ensemble), what it measured (`kind`: the paper's network,
    or released weights) and the source (compare and report show them beside the figures)."""
    if not isinstance(entries, list):
        raise SpecError("'published' must be a list of results like {top1: 77.3, top5: 93.5, crops: 1, "
                        "source: \"...\"}", loc)
    for index, entry in enumerate(entries):
        where = location_of(entry, entries.loc_of(index) if isinstance(entries, YamlSeq) else loc)
        if not isinstance(entry, YamlMap):
            raise SpecError(f"a published result must be a mapping of {', '.join(PUBLISHED_KEYS)}, got {shown(entry)}",
                            where)
        _check_keys(entry, PUBLISHED_KEYS, "a published result")
        for key in ("top1", "top5"):
            value = entry.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not 0 <= value <= 100):
                raise SpecError(f"'{key}' is an accuracy in percent (0 to 100), got {shown(value)}", entry.loc_of(key))
        for key in ("crops", "models"):
            count = entry.get(key, 1)
            if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10**6:
                raise SpecError(f"'{key}' must be a positive integer, got {shown(count)}", entry.loc_of(key))
        if entry.get("kind", "paper") not in PUBLISHED_KINDS:
            raise SpecError(f"'kind' is one of {', '.join(PUBLISHED_KINDS)}, got {shown(entry['kind'])}",
                            entry.loc_of("kind"))
        if not isinstance(entry.get("source", ""), str):
            raise SpecError(f"'source' must be text, got {shown(entry['source'])}", entry.loc_of("source"))


def _plain(value: Any) -> Any:
    """Strip location wrappers: metadata and argument defaults are plain data."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _parse_template(name: str, body: Any, loc: SourceLocation) -> Template:
    if not isinstance(body, YamlMap):
        raise SpecError(f"module '{name}' must be a mapping with 'args' and one of "
                        f"{_BLOCK_NAMES}", location_of(body, loc))
    _check_keys(body, TEMPLATE_KEYS, f"module '{name}'")
    params = _parse_params(body.get("args"), body.loc_of("args") if "args" in body else body.loc)
    kinds = [k for k in BLOCK_KINDS if k in body]
    if len(kinds) != 1:
        raise SpecError(f"module '{name}' needs exactly one of {_BLOCK_NAMES}", body.loc)
    block = _parse_block(None, kinds[0], body[kinds[0]], body.loc_of(kinds[0]))
    return Template(name, params, block, loc, str(body.get("doc") or ""))


def _parse_params(raw: Any, loc: SourceLocation) -> list[tuple[str, Any]]:
    """`[out, kernel, stride: 1]`: bare names are required, `name: default` have defaults."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SpecError("'args' must be a list like [out, kernel, stride: 1]", loc)
    params: list[tuple[str, Any]] = []
    seen_default = False
    for index, item in enumerate(raw):
        item_loc = raw.loc_of(index) if isinstance(raw, YamlSeq) else loc
        if isinstance(item, dict) and len(item) == 1:
            (pname, default), = item.items()
            seen_default = True
        elif isinstance(item, str):
            if seen_default:
                raise SpecError(f"required argument '{item}' follows one with a default", item_loc)
            pname, default = item, REQUIRED
        else:
            raise SpecError(f"cannot read argument {shown(item)}: write a name or name: default", item_loc)
        _check_name(pname, item_loc)
        if any(pname == p for p, _ in params):
            raise SpecError(f"argument '{pname}' declared twice", item_loc)
        params.append((pname, _plain(default)))
    return params


def _parse_rows(raw: Any) -> list:
    if not isinstance(raw, YamlSeq):
        raise SpecError("expected a list of rows", location_of(raw, SourceLocation("?")))
    return [_parse_row(item, raw.loc_of(index)) for index, item in enumerate(raw)]


def _parse_condition(raw: Any, loc: SourceLocation) -> Condition:
    text = raw.strip() if isinstance(raw, str) else raw
    if isinstance(text, str):
        negated = text.startswith("not ")
        name = text[4:].strip() if negated else text
        if name.isidentifier():
            return Condition(name, negated, loc)
    raise SpecError(f"'when' takes an argument name or 'not name', got {shown(raw)}", loc)


def _parse_sources(raw: Any, loc: SourceLocation) -> tuple[Source, ...]:
    """`from: name`, `from: [a, b.c, 0]`: references to earlier rows by their path."""
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise SpecError("'from' takes a row's name or a list of them, got an empty list", loc)
    sources = []
    for index, item in enumerate(items):
        item_loc = raw.loc_of(index) if isinstance(raw, YamlSeq) else loc
        text = str(item) if isinstance(item, int) and not isinstance(item, bool) and item >= 0 else item
        if not isinstance(text, str) or not _REFERENCE.fullmatch(text):
            raise SpecError(f"'from' takes names of earlier rows (name or block.name), got {item!r}", item_loc)
        sources.append(Source(text, item_loc))
    return tuple(sources)


def _parse_row(raw: Any, loc: SourceLocation):
    if isinstance(raw, str):
        return CallRow(None, parse_call(raw, loc), loc)
    if not isinstance(raw, YamlMap) or not raw:
        raise SpecError(f"cannot read row {shown(raw)}: expected 'op(...)', 'name: op(...)' or a mapping", loc)
    if len(raw) == 1:
        (key, value), = raw.items()
        value_loc = raw.loc_of(key)
        if key in BLOCK_KINDS:
            return _parse_block(None, key, value, value_loc)
        if key == "from":  # `- from: name`: continue from an earlier tensor
            return FromRow(_parse_sources(value, value_loc), loc)
        if key == "call":  # `- {call: conv(8, 3)}`: the long form without a name, not a layer named "call"
            return _parse_long_row(None, raw, loc)
        if isinstance(value, str):
            return CallRow(_check_layer_name(key, loc), parse_call(value, value_loc), loc)
        if isinstance(value, YamlMap) and any(k in value for k in ("call", *BLOCK_KINDS)):
            return _parse_long_row(_check_layer_name(key, loc), value, value_loc)
        return CallRow(None, _structured_call(key, value, loc, value_loc), loc)
    if any(k in raw for k in ("call", *BLOCK_KINDS)):
        name = raw.get("name")
        return _parse_long_row(None if name is None else _check_layer_name(name, raw.loc_of("name")), raw, loc)
    raise SpecError(f"a row with several keys needs one of 'call', {_BLOCK_NAMES}", loc)


def _parse_long_row(name: str | None, fields: YamlMap, loc: SourceLocation):
    _check_keys(fields, LONG_ROW_KEYS, f"row '{name or '?'}'")
    body_keys = [k for k in ("call", *BLOCK_KINDS) if k in fields]
    if len(body_keys) != 1:
        raise SpecError(f"a row needs exactly one of 'call', {_BLOCK_NAMES}", loc)
    key = body_keys[0]
    when = _parse_condition(fields["when"], fields.loc_of("when")) if "when" in fields else None
    aux = fields.get("aux", False)
    if not isinstance(aux, bool):
        raise SpecError("'aux' must be true or false", fields.loc_of("aux"))
    sources = _parse_sources(fields["from"], fields.loc_of("from")) if "from" in fields else ()
    if key == "call":
        if not isinstance(fields["call"], str):
            raise SpecError("'call' takes a call like InceptionAux(768, num_classes)", fields.loc_of("call"))
        return CallRow(name, parse_call(fields["call"], fields.loc_of("call")), loc, when, aux, sources)
    block = _parse_block(name, key, fields[key], fields.loc_of(key))
    block.when, block.aux, block.loc, block.sources = when, aux, loc, sources
    return block


def _parse_block(name: str | None, kind: str, raw: Any, loc: SourceLocation) -> BlockRow:
    if not isinstance(raw, YamlSeq) or not raw:
        raise SpecError(f"'{kind}' takes a non-empty list", location_of(raw, loc))
    if kind == "layers":
        return BlockRow(name, kind, [_parse_rows(raw)], loc)
    branches = []
    for index, item in enumerate(raw):
        item_loc = raw.loc_of(index)
        # a branch is one row, or a list of rows run in sequence (empty list = identity shortcut)
        branches.append(_parse_rows(item) if isinstance(item, YamlSeq) else [_parse_row(item, item_loc)])
    if len(branches) < 2:
        # one branch merged with nothing is that branch; the builder also relies on a merge's
        # output being new storage (fresh_output), which a one-tensor add or mul would not be
        raise SpecError(f"'{kind}' needs at least two branches", loc,
                        hint="write the branch's rows in sequence instead")
    return BlockRow(name, kind, branches, loc)


def _structured_call(callee: Any, value: Any, loc: SourceLocation, value_loc: SourceLocation) -> Call:
    """`{conv: [8, 3, {stride: 2}]}` or `{conv: {out: 8, kernel: 3}}`; strings '$x' are references."""
    if not isinstance(callee, str):
        raise SpecError(f"cannot read row key {shown(callee)} as an op name", loc)
    if isinstance(value, YamlMap):
        args, kwargs = [], dict(value)
    elif isinstance(value, YamlSeq):
        args = list(value)
        kwargs = dict(args.pop()) if args and isinstance(args[-1], dict) else {}
    elif value is None:
        args, kwargs = [], {}
    else:
        args, kwargs = [value], {}
    refs = lambda v: _dollar_refs(v, value_loc)  # noqa: E731 - tiny local helper
    return Call(callee, [refs(a) for a in args], {k: refs(v) for k, v in kwargs.items()}, loc)


def _dollar_refs(value: Any, loc: SourceLocation) -> Any:
    if isinstance(value, str) and value.startswith("$") and value[1:].isidentifier():
        return Ref(value[1:], loc)
    if isinstance(value, list):
        return [_dollar_refs(v, loc) for v in value]
    if isinstance(value, dict):
        return {k: _dollar_refs(v, loc) for k, v in value.items()}
    return value


def callable_names(spec: Spec) -> set[str]:
    """Everything a row may call: ops (except the input) and the spec's templates."""
    return (set(OPS) - STRUCTURAL_OPS) | set(spec.templates)
