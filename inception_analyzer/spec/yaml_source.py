"""YAML reading that keeps line and column of every value, and refuses anything unsafe.

We compose the YAML node tree with PyYAML's safe composer and convert it ourselves, so that
(1) only the plain YAML types exist (no `!!python/...` or other tags, ever constructed),
(2) every mapping and sequence remembers where each of its entries was written,
(3) alias expansion is bounded (a "billion laughs" document is refused, not expanded), and so
    is nesting (a document nested thousands deep is refused before anything recurses into it),
(4) plain scalars are read by YAML 1.2's core schema, by one reader with the project's bounds
    (`scalar_value`), for spec files and `--set` alike: integers are decimal, 0o octal or 0x hex
    (no YAML 1.1 base-60 `1:30`, no `0b`, no `_`, and `017` is seventeen), `5.713e9` is a number,
    only true/false are booleans, and an integer longer than MAX_INT_CHARS digits is refused
    instead of being converted (Python refuses 4,300 decimal digits; hex digits pass that and
    then cannot be printed).
"""
from __future__ import annotations

import bisect
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
# Bounds on what is read: a real spec has a few thousand values in a few tens of kB (the
# 10,000-block benchmark: about 40,000 values in 200 kB). PyYAML's nodes cost about 200 bytes of
# memory per byte of text: at these bounds reading takes a few seconds and a few hundred MB.
MAX_SPEC_BYTES = 16 * 2**20
MAX_VALUES = 500_000
# Bound on values made by aliases: each alias is a whole copy of its anchor's subtree, so a few
# lines of nested aliases ("billion laughs") would otherwise make MAX_VALUES values.
MAX_ALIAS_VALUES = 100_000
# Bound on nesting of mappings and sequences: real specs nest under 10 deep; the composer and the
# conversion recurse once per level (libyaml's composer in C: deep enough, it crashes the process).
MAX_DEPTH = 100
MAX_INT_CHARS = 3_000
_STR_TAG = "tag:yaml.org,2002:str"
# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution)
_NULL = re.compile(r"(?:~|null|Null|NULL|)")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"(?P<decimal>[-+]?[0-9]+)|0o(?P<octal>[0-7]+)|0x(?P<hex>[0-9a-fA-F]+)")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INFINITY = re.compile(r"(?P<sign>[-+]?)\.(?:inf|Inf|INF)")
_NAN = re.compile(r"\.(?:nan|NaN|NAN)")


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


def scalar_value(text: str, loc: SourceLocation, tag: str | None = None) -> Any:
    """A plain scalar's value by YAML 1.2's core schema; `tag` forces one (`!!str 123`)."""
    if tag == _STR_TAG:
        return text
    if tag in (None, "tag:yaml.org,2002:null") and _NULL.fullmatch(text):
        return None
    if tag in (None, "tag:yaml.org,2002:bool") and text in _BOOL:
        return _BOOL[text]
    if tag in (None, "tag:yaml.org,2002:int") and (match := _INT.fullmatch(text)):
        digits = match["decimal"] or match["octal"] or match["hex"]
        if len(digits.lstrip("+-")) > MAX_INT_CHARS:
            raise SpecError(f"an integer of {len(digits):,} digits; a spec's integers are sizes of at most "
                            "2**63 - 1 (19 digits)", loc)
        base = 10 if match["decimal"] else 8 if match["octal"] else 16
        return int(digits, base)
    if tag in (None, "tag:yaml.org,2002:float"):
        if _FLOAT.fullmatch(text):
            return float(text)
        if match := _INFINITY.fullmatch(text):
            return float(f"{match['sign']}inf")
        if _NAN.fullmatch(text):
            return float("nan")
    if tag is None:
        return text
    kind = tag.replace("tag:yaml.org,2002:", "!!")
    raise SpecError(f"'{_abridged(text)}' is not a {kind} value (YAML 1.2 core schema)", loc)


def _abridged(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def _explicit_tag(node) -> str | None:
    """The tag written on a plain scalar (`!!str 123`), or None where the tag was only guessed
    by PyYAML's YAML 1.1 resolver (which we replace by YAML 1.2's)."""
    guessed = _Loader.resolve(_Loader, yaml.ScalarNode, node.value, (True, False))
    return None if node.tag == guessed else node.tag


def _tag_error(node, loc: SourceLocation) -> SpecError:
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    return SpecError(f"YAML tag '{tag}' is not allowed; specs hold plain values only", loc)


def _mark_location(filename: str, mark) -> SourceLocation:
    if mark is None:
        return SourceLocation(filename)
    return SourceLocation(filename, mark.line + 1, mark.column + 1)


def _offset_location(filename: str, text: str | bytes, offset: int) -> SourceLocation:
    """Line and column of a character (or byte) offset."""
    newline = "\n" if isinstance(text, str) else b"\n"
    line_start = text.rfind(newline, 0, offset) + 1
    column = offset - line_start
    if isinstance(text, bytes):  # count characters, not bytes, up to the offending byte
        column = len(text[line_start:offset].decode("utf-8", errors="replace"))
    return SourceLocation(filename, text.count(newline, 0, offset) + 1, column + 1)


def parse_yaml(text: str, filename: str, what: str = "spec") -> Any:
    """Parse YAML text into plain values with locations; raise SpecSyntaxError/SpecError. `what`
    names the kind of document in the messages (a spec, a device profile)."""
    try:
        _check_bounds(text, filename)
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = err.problem or err.context or "invalid YAML"
        raise SpecSyntaxError(str(problem).strip(), _mark_location(filename, mark)) from None
    except yaml.reader.ReaderError as err:  # a character YAML refuses (NUL, control characters)
        raise SpecSyntaxError(str(err).splitlines()[0],
                              _offset_location(filename, text, err.position)) from None
    except yaml.YAMLError as err:
        raise SpecSyntaxError(str(err).splitlines()[0], SourceLocation(filename)) from None
    if root is None:
        raise SpecError(f"the {what} is empty", SourceLocation(filename, 1, 1))
    return _convert(root, filename, _Budget(), text)


def _check_bounds(text: str, filename: str) -> None:
    """Refuse a document nested deeper than MAX_DEPTH or holding more than MAX_VALUES values, from
    the parser's stream of events: before the composer recurses into it or builds its nodes."""
    depth, values = 0, 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecError(f"mappings and lists nest more than {MAX_DEPTH} levels deep",
                                _mark_location(filename, event.start_mark))
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1
            continue
        elif not isinstance(event, yaml.ScalarEvent):
            continue  # an alias is counted by the conversion, as the copy it makes
        values += 1
        if values > MAX_VALUES:
            raise SpecError(f"the document holds more than {MAX_VALUES:,} values; refusing to read it",
                            _mark_location(filename, event.start_mark))


class _Budget:
    """What the conversion may still make through aliases (the document's own values are bounded
    before composing it)."""

    def __init__(self):
        self.aliased = MAX_ALIAS_VALUES
        self.seen: set[int] = set()  # ids of the nodes converted once: meeting one again is an alias

    def spend(self, node, aliased: bool, filename: str) -> bool:
        """Count one value; return whether it is (part of) an alias's copy."""
        aliased = aliased or id(node) in self.seen
        self.seen.add(id(node))
        self.aliased -= aliased
        if self.aliased < 0:
            raise SpecError(f"aliases expand to more than {MAX_ALIAS_VALUES:,} values (nested aliases, "
                            "a 'billion laughs'?); refusing to expand them", _mark_location(filename, node.start_mark))
        return aliased


def _opens_call(node) -> bool:
    """A plain scalar like `conv(8` that YAML cut at a comma inside a flow collection."""
    return (isinstance(node, yaml.ScalarNode) and not node.style
            and node.value.count("(") > node.value.count(")"))


_CALL_CHARS = re.compile(r"""[()\[\]'"]""")


def _call_end(source: str, start: int, limit: int) -> int | None:
    """Index just past the ')' that closes the call starting at `start` (before `limit`), quotes
    respected."""
    depth, quote = 0, None
    for match in _CALL_CHARS.finditer(source, start, limit):
        char, index = match.group(), match.start()
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


class _Rejoiner:
    """Calls may be written unquoted inside [ ... ] and { ... }: `[conv(8, 3), relu]`.
    YAML splits them at the commas; we take the call's text back from the source and say how
    many of the following siblings it swallowed.

    In linear time: a call is looked for only inside its collection, and after a call that does
    not close there, no later one in the collection is (each would scan to the collection's end:
    a few thousand unclosed calls took minutes)."""

    def __init__(self, collection, source: str | None, siblings_start: list[int]):
        self.active = bool(collection.flow_style) and source is not None
        self.source, self.starts = source, siblings_start
        self.limit = collection.end_mark.index

    def rejoin(self, node) -> tuple[str, int] | None:
        if not self.active or not _opens_call(node):
            return None
        start = node.start_mark.index
        end = _call_end(self.source, start, self.limit)
        if end is None:
            self.active = False
            return None
        swallowed = bisect.bisect_left(self.starts, end) - bisect.bisect_right(self.starts, start)
        return " ".join(self.source[start:end].split()), swallowed


def _convert(node, filename: str, budget: _Budget, source: str | None = None, aliased: bool = False) -> Any:
    aliased = budget.spend(node, aliased, filename)
    loc = _mark_location(filename, node.start_mark)
    if isinstance(node, yaml.ScalarNode):
        if node.tag not in _SCALAR_TAGS:
            raise _tag_error(node, loc)
        if node.style:  # quoted or a block: text, unless a tag says otherwise
            return node.value if node.tag == _STR_TAG else scalar_value(node.value, loc, node.tag)
        return scalar_value(node.value, loc, _explicit_tag(node))
    if isinstance(node, yaml.SequenceNode):
        if node.tag != _SEQ_TAG:
            raise _tag_error(node, loc)
        seq, item_locs = YamlSeq(), []
        rejoiner = _Rejoiner(node, source, [item.start_mark.index for item in node.value])
        index = 0
        while index < len(node.value):
            item = node.value[index]
            rejoined = rejoiner.rejoin(item)
            seq.append(rejoined[0] if rejoined else _convert(item, filename, budget, source, aliased))
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
        rejoiner = _Rejoiner(node, source, [key.start_mark.index for key, _ in node.value])
        pairs = iter(node.value)
        for key_node, value_node in pairs:
            key = _convert(key_node, filename, budget, source, aliased)
            key_loc = _mark_location(filename, key_node.start_mark)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise SpecError("mapping keys must be plain names", key_loc)
            if key in mapping:
                raise SpecError(f"duplicate key '{key}'", key_loc)
            rejoined = rejoiner.rejoin(value_node)
            if rejoined:
                mapping[key] = rejoined[0]
                for _ in range(rejoined[1]):
                    next(pairs)
            else:
                mapping[key] = _convert(value_node, filename, budget, source, aliased)
            mapping.key_locs[key] = key_loc
            mapping.value_locs[key] = _mark_location(filename, value_node.start_mark)
        return mapping
    raise SpecError("unsupported YAML node", loc)  # pragma: no cover - composer yields only these


def read_yaml_file(path: str | Path, what: str = "spec", max_bytes: int | None = None) -> Any:
    """Read and parse a YAML file (a spec, or another document `what` names, of at most
    `max_bytes`, MAX_SPEC_BYTES unless given); a missing or unreadable file is a SpecError, not an OSError."""
    return parse_yaml(read_text(path, what, max_bytes), str(path), what)


def read_text(path: str | Path, what: str = "spec", max_bytes: int | None = None) -> str:
    """A YAML file's text, bounded (MAX_SPEC_BYTES unless given) and decoded; a missing or
    unreadable file is a SpecError."""
    max_bytes = MAX_SPEC_BYTES if max_bytes is None else max_bytes   # read at call time: tests lower it
    name = str(path)
    try:
        with open(path, "rb") as handle:  # at most one byte past the bound: not all of /dev/zero
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise SpecError(f"no such {what} file", SourceLocation(name)) from None
    except IsADirectoryError:
        raise SpecError(f"is a directory, not a {what} file", SourceLocation(name)) from None
    except OSError as err:
        raise SpecError(f"cannot read the {what} ({err.strerror})", SourceLocation(name)) from None
    if len(data) > max_bytes:
        size = (f"{max_bytes // 2**20} MiB" if max_bytes >= 2**20 else f"{max_bytes // 2**10} KiB"
                if max_bytes >= 2**10 else f"{max_bytes} bytes")
        raise SpecError(f"the {what} is larger than {size}; refusing to read it", SourceLocation(name))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"not UTF-8 text ({err.reason} at byte {err.start})",
                        _offset_location(name, data, err.start)) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # newlines as text mode reads them


def parse_scalar(text: str, label: str = "--set") -> Any:
    """One value from a command line (`--set lr=1e-3`), read exactly as a spec's value is."""
    return parse_yaml(text, label)
