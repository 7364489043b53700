"""YAML reading that keeps line and column of every value, and refuses anything unsafe.

We compose the YAML node tree with PyYAML's safe composer and convert it ourselves, so that
(1) only the plain YAML types exist (no `!!python/...` or other tags, ever constructed),
(2) every mapping and sequence remembers where each of its entries was written, and
(3) alias expansion is bounded (a "billion laughs" document is refused, not expanded).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from ..errors import SourceLocation, SpecError, SpecSyntaxError

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SCALAR_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null",
}
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"
# Bound on converted values: a real spec has a few thousand; aliases cannot blow it up.
MAX_VALUES = 2_000_000
_scalar_constructor = yaml.SafeLoader("")
_YAML12_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


class YamlMap(dict):
    """A mapping that knows where it, each key and each value were written."""

    loc: SourceLocation
    key_locs: dict
    value_locs: dict

    def loc_of(self, key) -> SourceLocation:
        return self.value_locs.get(key, self.loc)


class YamlSeq(list):
    """A sequence that knows where it and each of its items were written."""

    loc: SourceLocation
    item_locs: list

    def loc_of(self, index: int) -> SourceLocation:
        return self.item_locs[index] if 0 <= index < len(self.item_locs) else self.loc


def location_of(value: Any, default: SourceLocation) -> SourceLocation:
    return getattr(value, "loc", default)


def _tag_error(node, loc: SourceLocation) -> SpecError:
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    return SpecError(f"YAML tag '{tag}' is not allowed; specs hold plain values only", loc)


def _mark_location(filename: str, mark) -> SourceLocation:
    if mark is None:
        return SourceLocation(filename)
    return SourceLocation(filename, mark.line + 1, mark.column + 1)


def parse_yaml(text: str, filename: str) -> Any:
    """Parse YAML text into plain values with locations; raise SpecSyntaxError/SpecError."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "invalid YAML"
        raise SpecSyntaxError(str(problem).strip(), _mark_location(filename, mark)) from None
    except yaml.YAMLError as err:
        raise SpecSyntaxError(str(err).splitlines()[0], SourceLocation(filename)) from None
    if root is None:
        raise SpecError("the spec is empty", SourceLocation(filename, 1, 1))
    budget = [MAX_VALUES]
    return _convert(root, filename, budget, text)


def _opens_call(node) -> bool:
    """A plain scalar like `conv(8` that YAML cut at a comma inside a flow collection."""
    return (isinstance(node, yaml.ScalarNode) and not node.style
            and node.value.count("(") > node.value.count(")"))


def _call_end(source: str, start: int) -> int | None:
    """Index just past the ')' that closes the call starting at `start`, quotes respected."""
    depth, quote = 0, None
    for index in range(start, len(source)):
        char = source[index]
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
            if depth == 0 and char == ")":
                return index + 1
            if depth < 0:
                return None
    return None


def _rejoin_call(node, source: str, siblings_start: list[int]) -> tuple[str, int] | None:
    """Calls may be written unquoted inside [ ... ] and { ... }: `[conv(8, 3), relu]`.
    YAML splits them at the commas; we take the call's text back from the source and say how
    many of the following siblings it swallowed."""
    if not _opens_call(node) or source is None:
        return None
    start = node.start_mark.index
    end = _call_end(source, start)
    if end is None:
        return None
    swallowed = sum(1 for index in siblings_start if start < index < end)
    return " ".join(source[start:end].split()), swallowed


def _convert(node, filename: str, budget: list, source: str | None = None) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise SpecError(f"the document expands to more than {MAX_VALUES:,} values "
                        "(recursive aliases?); refusing to expand it",
                        _mark_location(filename, node.start_mark))
    loc = _mark_location(filename, node.start_mark)
    if isinstance(node, yaml.ScalarNode):
        if node.tag not in _SCALAR_TAGS:
            raise _tag_error(node, loc)
        value = _scalar_constructor.construct_object(node)
        if isinstance(value, str) and not node.style and _YAML12_FLOAT.match(value):
            return float(value)  # YAML 1.1 reads 5.713e9 (no '.', no sign) as text; 1.2 as a number
        return value
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _SEQ_TAG:
            raise _tag_error(node, loc)
        seq, item_locs = YamlSeq(), []
        starts = [item.start_mark.index for item in node.value]
        index = 0
        while index < len(node.value):
            item = node.value[index]
            rejoined = _rejoin_call(item, source, starts) if node.flow_style else None
            seq.append(rejoined[0] if rejoined else _convert(item, filename, budget, source))
            item_locs.append(_mark_location(filename, item.start_mark))
            index += 1 + (rejoined[1] if rejoined else 0)
        seq.loc, seq.item_locs = loc, item_locs
        return seq
    if isinstance(node, yaml.MappingNode):
        if node.tag != _MAP_TAG:
            raise _tag_error(node, loc)
        mapping = YamlMap()
        mapping.loc = loc
        mapping.key_locs, mapping.value_locs = {}, {}
        starts = [key.start_mark.index for key, _ in node.value]
        pairs = iter(node.value)
        for key_node, value_node in pairs:
            key = _convert(key_node, filename, budget, source)
            key_loc = _mark_location(filename, key_node.start_mark)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise SpecError("mapping keys must be plain names", key_loc)
            if key in mapping:
                raise SpecError(f"duplicate key '{key}'", key_loc)
            rejoined = _rejoin_call(value_node, source, starts) if node.flow_style else None
            if rejoined:
                mapping[key] = rejoined[0]
                for _ in range(rejoined[1]):
                    next(pairs)
            else:
                mapping[key] = _convert(value_node, filename, budget, source)
            mapping.key_locs[key] = key_loc
            mapping.value_locs[key] = _mark_location(filename, value_node.start_mark)
        return mapping
    raise SpecError("unsupported YAML node", loc)  # pragma: no cover - composer yields only these


def read_yaml_file(path: str | Path) -> Any:
    """Read and parse a spec file; a missing or unreadable file is a SpecError, not an OSError."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("no such spec file", SourceLocation(name)) from None
    except IsADirectoryError:
        raise SpecError("is a directory, not a spec file", SourceLocation(name)) from None
    except UnicodeDecodeError as err:
        raise SpecError(f"not UTF-8 text ({err.reason} at byte {err.start})", SourceLocation(name)) from None
    except OSError as err:
        raise SpecError(f"cannot read the spec ({err.strerror})", SourceLocation(name)) from None
    return parse_yaml(text, name)


def parse_scalar(text: str) -> Any:
    """One YAML scalar from a command line (`--set lr=1e-3`), read as a spec value would be."""
    value = yaml.safe_load(text)
    if isinstance(value, str) and _YAML12_FLOAT.match(value.strip()):
        return float(value)
    return value
