"""A latency profile as a YAML file: written by `calibrate`, read by `analyze --device FILE` and
`bench --profile FILE`. Torch-free.

A profile file is input like a spec: read with the spec reader (spec/yaml_source.py: safe, no
tags, aliases and nesting bounded, every value located), at most MAX_PROFILE_BYTES, then checked
key by key; any fault is one line naming file:line:column. Times are in microseconds, rates in
GFLOP/s and GB/s, so the file reads as the device's figures do:

    format: inception-analyzer latency profile
    version: 1
    name, title, device (cpu | cuda), dtype, execution (sync | queue), threads, date
    machine: {device, torch, python, ...}          # where and with what it was calibrated
    calibration: {grid, samples, seconds, ...}
    roofs: {matmul_gflops, vector_gflops, memory_gbps[, memory_gb]}
    forward_overhead_us: calling the built model, beyond its layers
    layer_overhead_us: what each layer adds in a model beyond its entry's overhead
    weighted_layer_overhead_us: what a convolution or linear layer adds beyond that
    cold_weights: {ns_per_byte, cache_bytes}     # weights up to the cache's size, fetched anew in a model
    activations_ns_per_byte: what a byte of a layer's activations (read and written) costs in a model
    allocator: {kind: glibc, fault_ns_per_byte, ...}   # fresh pages (a CPU's; analysis/allocator.py)
    fallback: {overhead_us, roofline_efficiency}   # op kinds without an entry
    entries:
      conv 3x3/1:                                  # efficiency: kernel = FLOPs / (peak x factors)
        model: efficiency
        overhead_us: 21.5
        peak_gflops: 301.2
        factors: {in_channels: [[3, 0.21], ...], out_channels: [...], work: [...], alignment: [...]}
        data: {input: 1.1, output: 0.9}           # copies of each tensor, at the copy curve's time
        residuals: [[64, 64, 3136, 1, 32, 1.08], ...]  # per sample: in, out, pixels, groups, alignment, measured / fit
        native_up_to: [[1, 20480], [2, 0]]        # batch, the largest input (elements) the framework's
                                                   # native kernel runs: priced by 'conv 3x3/1 native'
        host: [[1.2e6, 21.5], [3.4e9, 38.0]]       # a queue device's: the host's us to enqueue a call by its
                                                   # FLOPs (a curve's: by its feature), the overhead's place
      relu (in place):                             # curve: kernel us at sizes of a feature
        model: curve
        overhead_us: 2.9
        feature: elements
        points: [[512, 0.05], [1024, 0.1], ...]
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from ..dtypes import DTYPES
from ..errors import SourceLocation, SpecError, did_you_mean, shown
from ..spec.yaml_source import YamlMap, YamlSeq, read_yaml_file
from .allocator import Allocator
from .latency import (CURVE, DATA, EFFICIENCY, EXECUTIONS, FACTOR_NAMES, FEATURES, LOCATION, LOCATION_WITHOUT_ALIGNMENT,
                      CurveEntry, EfficiencyEntry, Fallback, LatencyError, LatencyProfile, Roofs)

FORMAT = "inception-analyzer latency profile"
VERSION = 1
MAX_PROFILE_BYTES = 2 * 2**20    # a full CPU profile is about 40 kB
MAX_ENTRIES = 1000
MAX_POINTS = 1000
MAX_TEXT = 500
US = 1e-6
GIGA = 1e9
DEVICES = ("cpu", "cuda")
HEADER = """\
# A latency profile fitted by `inception-analyzer calibrate` to microbenchmarks of single ops on
# one device (docs/benchmarks.md: the model, and one layer's prediction followed by hand). Read by
# `analyze SPEC --device THIS.yaml` and `bench SPEC --profile THIS.yaml`.
#   layer time = overhead_us + kernel;  efficiency entries: kernel = FLOPs / (peak_gflops x the
#   factors at the layer's in/out channels per group, work (FLOPs of the call), groups; linear in
#   log2 between points, held beyond them) + data copies, times the residuals' correction (the
#   4 samples nearest in log2 of in, out, pixels, groups: their measured / fitted ratios, weighted
#   by 1 / (distance + 1/2)); a class with `native_up_to` prices the layers the framework runs
#   on its own kernel (a batch of at least the row's batch, an input of at most its elements) by
#   its 'native' entry; curve entries: kernel us at sizes of the feature, linear between points
#   (a curve of one point prices no layer beyond it where its family has a longer curve).
#   In a model a layer also adds layer_overhead_us and its activations' bytes (read and written)
#   x activations_ns_per_byte; a convolution or linear layer weighted_layer_overhead_us and, for
#   weights within cache_bytes, their bytes x cold_weights' ns_per_byte; a layer a curve prices
#   by its elements no less than those elements at the curve's own rate beyond cache_bytes.
#   On a queue device (execution: queue) an entry with `host` points costs the host, in place of
#   its overhead, the time at the call's FLOPs (a curve's: its feature) between those points,
#   linear in log2, held beyond them. Times in us, rates in GFLOP/s and GB/s.
"""


def looks_like_profile_file(text: str) -> bool:
    """`--device` takes a profile's name or a file: a path with a YAML suffix or a separator."""
    return text.endswith((".yaml", ".yml")) or "/" in text or "\\" in text


# ----------------------------------------------------------------------------- writing
def _points(points) -> list[list[float]]:
    return [[_number(x), _number(y)] for x, y in points]


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)


def profile_data(profile: LatencyProfile) -> dict[str, Any]:
    entries: dict[str, Any] = {}
    for key, entry in profile.entries.items():
        if isinstance(entry, EfficiencyEntry):
            entries[key] = {"model": EFFICIENCY, "overhead_us": _us(entry.overhead),
                            "peak_gflops": _number(round(entry.peak_flops / GIGA, 6)), "samples": entry.samples,
                            "factors": {name: _points(points) for name, points in entry.factors.items()}}
            if entry.data:
                entries[key]["data"] = {name: _number(value) for name, value in entry.data.items()}
            if entry.residuals:
                entries[key]["residuals"] = [[_number(v) for v in row] for row in entry.residuals]
            if entry.native_up_to:
                entries[key]["native_up_to"] = [[batch, most] for batch, most in entry.native_up_to]
        else:
            entries[key] = {"model": CURVE, "overhead_us": _us(entry.overhead), "feature": entry.feature,
                            "samples": entry.samples, "points": [[_number(x), _us(y)] for x, y in entry.points]}
        if entry.host:
            entries[key]["host"] = [[_number(x), _us(y)] for x, y in entry.host]
    roofs = {"matmul_gflops": _number(round(profile.roofs.matmul_flops / GIGA, 6)),
             "vector_gflops": _number(round(profile.roofs.vector_flops / GIGA, 6)),
             "memory_gbps": _number(round(profile.roofs.memory_bandwidth / GIGA, 6))}
    if profile.roofs.memory_bytes is not None:
        roofs["memory_gb"] = _number(round(profile.roofs.memory_bytes / GIGA, 6))
    data: dict[str, Any] = {"format": FORMAT, "version": VERSION, "name": profile.name, "title": profile.title,
                            "device": profile.device, "dtype": profile.dtype, "execution": profile.execution}
    if profile.threads is not None:
        data["threads"] = profile.threads
    data.update({"date": profile.date, "machine": {str(k): str(v) for k, v in profile.machine.items()},
                 "calibration": {str(k): (v if isinstance(v, (int, float)) else str(v)) for k, v in profile.calibration.items()},
                 "roofs": roofs, "forward_overhead_us": _us(profile.forward_overhead),
                 "layer_overhead_us": _us(profile.layer_overhead),
                 "weighted_layer_overhead_us": _us(profile.weighted_layer_overhead),
                 **({"cold_weights": {"ns_per_byte": _number(float(f"{profile.cold_weights_seconds_per_byte * 1e9:.10g}")),
                                      "cache_bytes": profile.cache_bytes}} if profile.cache_bytes is not None else {}),
                 "activations_ns_per_byte": _number(float(f"{profile.activations_seconds_per_byte * 1e9:.10g}")),
                 **({"allocator": {"kind": profile.allocator.kind,
                                   "fault_ns_per_byte": _number(float(f"{profile.allocator.fault_seconds_per_byte * 1e9:.10g}")),
                                   "mmap_threshold_bytes": profile.allocator.mmap_threshold,
                                   "mmap_threshold_max_bytes": profile.allocator.mmap_threshold_max,
                                   "top_pad_bytes": profile.allocator.top_pad,
                                   "layout_copies": profile.allocator.layout_copies,
                                   "channel_block": profile.allocator.channel_block}} if profile.allocator else {}),
                 "fallback": {"overhead_us": _us(profile.fallback.overhead),
                              "roofline_efficiency": _number(profile.fallback.efficiency)},
                 "entries": entries})
    return data


def _us(seconds: float) -> float | int:
    """Seconds as microseconds, keeping the digits the fit kept (no binary noise: 1.23e-05 s ->
    12.3 us, and back to exactly 1.23e-05 on reading)."""
    return _number(float(f"{seconds / US:.10g}"))


def profile_text(profile: LatencyProfile) -> str:
    body = yaml.safe_dump(profile_data(profile), sort_keys=False, default_flow_style=None, width=110,
                          allow_unicode=True)
    return HEADER + body


# ----------------------------------------------------------------------------- reading
class _Reader:
    """Checks one mapping of the file, with every fault located."""

    def __init__(self, mapping: Any, where: SourceLocation, what: str):
        if not isinstance(mapping, dict):
            raise LatencyError(f"{what} must be a mapping, got {shown(mapping)}", getattr(mapping, "loc", where))
        self.mapping = mapping
        self.where = getattr(mapping, "loc", where)
        self.what = what

    def loc(self, key: str) -> SourceLocation:
        return self.mapping.loc_of(key) if isinstance(self.mapping, YamlMap) else self.where

    def only(self, allowed: tuple[str, ...]) -> None:
        for key in self.mapping:
            if key not in allowed:
                hint = did_you_mean(str(key), allowed)
                where = self.mapping.key_locs.get(key, self.where) if isinstance(self.mapping, YamlMap) else self.where
                raise LatencyError(f"{self.what} has no key {shown(key)}"
                                   + (f"; {hint}" if hint else f" (it takes: {', '.join(allowed)})"), where)

    def get(self, key: str, required: bool = True) -> Any:
        if key not in self.mapping:
            if required:
                raise LatencyError(f"{self.what} needs '{key}'", self.where)
            return None
        return self.mapping[key]

    def text(self, key: str, required: bool = True, choices: tuple[str, ...] | None = None) -> str | None:
        value = self.get(key, required)
        if value is None and not required:
            return None
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise LatencyError(f"'{key}' must be text of at most {MAX_TEXT} characters, got {shown(value)}",
                               self.loc(key))
        if choices is not None and value not in choices:
            hint = did_you_mean(value, choices)
            raise LatencyError(f"'{key}' must be one of {', '.join(choices)}, got {shown(value)}"
                               + (f"; {hint}" if hint else ""), self.loc(key))
        return value

    def number(self, key: str, required: bool = True, positive: bool = False, low: float = 0.0,
               high: float = 1e18) -> float | None:
        value = self.get(key, required)
        if value is None and not required:
            return None
        return checked_number(value, f"'{key}'", self.loc(key), positive, low, high)

    def integer(self, key: str, required: bool = True, low: int = 0, high: int = 10**9) -> int | None:
        value = self.get(key, required)
        if value is None and not required:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise LatencyError(f"'{key}' must be an integer from {low} to {high:,}, got {shown(value)}", self.loc(key))
        return value

    def sub(self, key: str, required: bool = True) -> _Reader | None:
        value = self.get(key, required)
        if value is None and not required:
            return None
        return _Reader(value, self.loc(key), f"'{key}'")


def checked_number(value: Any, what: str, where: SourceLocation, positive: bool = False, low: float = 0.0,
                   high: float = 1e18) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LatencyError(f"{what} must be a number, got {shown(value)}", where)
    value = float(value)
    if not math.isfinite(value) or value < low or value > high or (positive and value <= 0):
        bound = "above 0" if positive else f"at least {low:g}"
        raise LatencyError(f"{what} must be a finite number {bound} and at most {high:g}, got {shown(value)}", where)
    return value


def _point_list(value: Any, what: str, where: SourceLocation, x_positive: bool = True, high_y: float = 1e18,
                allow_empty: bool = False) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list):
        raise LatencyError(f"{what} must be a list of [x, y] pairs, got {shown(value)}", where)
    if len(value) > MAX_POINTS:
        raise LatencyError(f"{what} has {len(value):,} points; at most {MAX_POINTS:,}", where)
    if not value and not allow_empty:
        raise LatencyError(f"{what} has no points", where)
    points = []
    for index, item in enumerate(value):
        at = value.loc_of(index) if isinstance(value, YamlSeq) else where
        if not isinstance(item, list) or len(item) != 2:
            raise LatencyError(f"{what}: each point is a pair [x, y], got {shown(item)}", at)
        x = checked_number(item[0], f"{what}: a point's x", at, positive=x_positive, high=1e15)
        y = checked_number(item[1], f"{what}: a point's y", at, high=high_y)
        if points and x <= points[-1][0]:
            raise LatencyError(f"{what}: the points' x must increase, got {_number(x)} after {_number(points[-1][0])}",
                               at)
        points.append((x, y))
    return tuple(points)


def _efficiency_entry(key: str, reader: _Reader) -> EfficiencyEntry:
    reader.only(("model", "overhead_us", "peak_gflops", "samples", "factors", "data", "residuals", "native_up_to",
                 "host"))
    factors_reader = reader.sub("factors")
    factors_reader.only(FACTOR_NAMES)
    factors = {}
    for name in FACTOR_NAMES:
        if name in factors_reader.mapping:
            points = _point_list(factors_reader.mapping[name], f"'{key}' factor '{name}'", factors_reader.loc(name),
                                 high_y=1e6)
            if any(y <= 0 for _, y in points):
                raise LatencyError(f"'{key}' factor '{name}': factors must be above 0", factors_reader.loc(name))
            factors[name] = points
    data = {}
    data_reader = reader.sub("data", required=False)
    if data_reader is not None:
        data_reader.only(DATA)
        data = {name: data_reader.number(name, high=1e6) for name in DATA if name in data_reader.mapping}
    residuals = _residuals(key, reader) if "residuals" in reader.mapping else ()
    native = _native_rule(key, reader) if "native_up_to" in reader.mapping else ()
    return EfficiencyEntry(key, reader.number("overhead_us", high=1e9) * US,
                           reader.number("peak_gflops", positive=True, high=1e9) * GIGA, factors,
                           reader.integer("samples", required=False) or 0, data, residuals, native,
                           _host_points(key, reader))


def _native_rule(key: str, reader: _Reader) -> tuple[tuple[int, int], ...]:
    """Where the framework runs the class natively: [batch, most input elements] rows, the batches
    ascending."""
    value, where = reader.get("native_up_to"), reader.loc("native_up_to")
    what = f"'{key}' native_up_to"
    if not isinstance(value, list) or len(value) > MAX_POINTS:
        raise LatencyError(f"{what} must be a list of at most {MAX_POINTS:,} [batch, input elements] rows, "
                           f"got {shown(value)}", where)
    rows: list[tuple[int, int]] = []
    for index, item in enumerate(value):
        at = value.loc_of(index) if isinstance(value, YamlSeq) else where
        if (not isinstance(item, list) or len(item) != 2
                or any(isinstance(v, bool) or not isinstance(v, int) for v in item)
                or not 1 <= item[0] <= 2**31 or not 0 <= item[1] <= 2**62):
            raise LatencyError(f"{what}: each row is [batch, input elements], whole numbers (a batch of at "
                               f"least 1), got {shown(item)}", at)
        if rows and item[0] <= rows[-1][0]:
            raise LatencyError(f"{what}: the batches must increase, got {item[0]} after {rows[-1][0]}", at)
        rows.append((item[0], item[1]))
    return tuple(rows)


def _residuals(key: str, reader: _Reader) -> tuple[tuple[float, ...], ...]:
    """An entry's residuals: rows of its LOCATION arguments and a ratio, every one above 0 (a
    profile written before the alignment was a location: rows of the other four), all one width."""
    value, where = reader.get("residuals"), reader.loc("residuals")
    what = f"'{key}' residuals"
    if not isinstance(value, list):
        raise LatencyError(f"{what} must be a list of [{', '.join(LOCATION)}, ratio] rows, got {shown(value)}", where)
    if len(value) > MAX_POINTS:
        raise LatencyError(f"{what} has {len(value):,} rows; at most {MAX_POINTS:,}", where)
    first = value[0] if value and isinstance(value[0], list) else None
    names = LOCATION_WITHOUT_ALIGNMENT if first is not None and len(first) == len(LOCATION) else LOCATION
    rows = []
    for index, item in enumerate(value):
        at = value.loc_of(index) if isinstance(value, YamlSeq) else where
        if not isinstance(item, list) or len(item) != len(names) + 1:
            raise LatencyError(f"{what}: each row is [{', '.join(names)}, ratio], got {shown(item)}", at)
        rows.append(tuple(checked_number(v, f"{what}: a row's values", at, positive=True, high=1e15) for v in item))
    return tuple(rows)


def _curve_entry(key: str, reader: _Reader) -> CurveEntry:
    reader.only(("model", "overhead_us", "feature", "samples", "points", "host"))
    feature = reader.text("feature", choices=FEATURES)
    points = _point_list(reader.get("points"), f"'{key}' points", reader.loc("points"), high_y=1e12, allow_empty=True)
    return CurveEntry(key, reader.number("overhead_us", high=1e9) * US, feature,
                      tuple((x, y * US) for x, y in points), reader.integer("samples", required=False) or 0,
                      _host_points(key, reader))


def _host_points(key: str, reader: _Reader) -> tuple[tuple[float, float], ...]:
    """An entry's host curve, where it has one: [size, us] pairs, the sizes increasing."""
    if "host" not in reader.mapping:
        return ()
    points = _point_list(reader.get("host"), f"'{key}' host", reader.loc("host"), high_y=1e9)
    return tuple((x, y * US) for x, y in points)


def read_profile(path: str | Path) -> LatencyProfile:
    """Read and check a latency profile file; every fault is a LatencyError naming file:line:column."""
    try:
        data = read_yaml_file(path, what="latency profile", max_bytes=MAX_PROFILE_BYTES)
    except SpecError as err:   # the reader's own faults (missing file, too large, a tag, a bomb)
        raise LatencyError(err.message, err.location) from None
    return parse_profile(data, SourceLocation(str(path)))


def parse_profile(data: Any, where: SourceLocation) -> LatencyProfile:
    top = _Reader(data, SourceLocation(where.file, 1, 1), "a latency profile")
    top.only(("format", "version", "name", "title", "device", "dtype", "execution", "threads", "date", "machine",
              "calibration", "roofs", "forward_overhead_us", "layer_overhead_us", "weighted_layer_overhead_us",
              "cold_weights", "activations_ns_per_byte", "allocator", "fallback", "entries"))
    if top.get("format", required=False) != FORMAT:
        raise LatencyError(f"not a latency profile: 'format' must be '{FORMAT}' (calibrate writes it)",
                           top.loc("format") if "format" in top.mapping else top.where)
    version = top.integer("version", low=1, high=10**6)
    if version != VERSION:
        raise LatencyError(f"latency profile version {version}; this inception-analyzer reads version {VERSION}",
                           top.loc("version"))
    roofs = top.sub("roofs")
    roofs.only(("matmul_gflops", "vector_gflops", "memory_gbps", "memory_gb"))
    memory_gb = roofs.number("memory_gb", required=False, positive=True, high=1e9)
    fallback = top.sub("fallback")
    fallback.only(("overhead_us", "roofline_efficiency"))
    entries_reader = top.sub("entries")
    if len(entries_reader.mapping) > MAX_ENTRIES:
        raise LatencyError(f"the profile has {len(entries_reader.mapping):,} entries; at most {MAX_ENTRIES:,}",
                           entries_reader.where)
    entries: dict[str, EfficiencyEntry | CurveEntry] = {}
    for key in entries_reader.mapping:
        if not isinstance(key, str) or len(key) > MAX_TEXT:
            raise LatencyError(f"an entry's name must be text, got {shown(key)}",
                               entries_reader.mapping.key_locs.get(key, entries_reader.where)
                               if isinstance(entries_reader.mapping, YamlMap) else entries_reader.where)
        reader = _Reader(entries_reader.mapping[key], entries_reader.loc(key), f"entry '{key}'")
        model = reader.text("model", choices=(EFFICIENCY, CURVE))
        entries[key] = _efficiency_entry(key, reader) if model == EFFICIENCY else _curve_entry(key, reader)
    allocator = None
    allocator_reader = top.sub("allocator", required=False)
    if allocator_reader is not None:
        allocator_reader.only(("kind", "fault_ns_per_byte", "mmap_threshold_bytes", "mmap_threshold_max_bytes",
                               "top_pad_bytes", "layout_copies", "channel_block"))
        copies = allocator_reader.get("layout_copies", required=False)
        if copies is not None and not isinstance(copies, bool):
            raise LatencyError(f"'layout_copies' must be true or false, got {shown(copies)}",
                               allocator_reader.loc("layout_copies"))
        allocator = Allocator(fault_seconds_per_byte=allocator_reader.number("fault_ns_per_byte", high=1e6) * 1e-9,
                              kind=allocator_reader.text("kind", choices=("glibc",)),
                              mmap_threshold=allocator_reader.integer("mmap_threshold_bytes", low=1, high=2**40),
                              mmap_threshold_max=allocator_reader.integer("mmap_threshold_max_bytes", low=1,
                                                                          high=2**40),
                              top_pad=allocator_reader.integer("top_pad_bytes", high=2**40),
                              layout_copies=bool(copies),
                              # profiles written before the key came from an AVX-512 machine
                              channel_block=allocator_reader.integer("channel_block", low=1, high=1024, required=False)
                              or 16)
    cold = top.sub("cold_weights", required=False)
    if cold is not None:
        cold.only(("ns_per_byte", "cache_bytes"))
    machine = top.sub("machine", required=False)
    calibration = top.sub("calibration", required=False)
    return LatencyProfile(
        name=top.text("name"), title=top.text("title"), device=top.text("device", choices=DEVICES),
        dtype=top.text("dtype", choices=tuple(DTYPES)), execution=top.text("execution", choices=EXECUTIONS),
        roofs=Roofs(roofs.number("matmul_gflops", positive=True, high=1e9) * GIGA,
                    roofs.number("vector_gflops", positive=True, high=1e9) * GIGA,
                    roofs.number("memory_gbps", positive=True, high=1e9) * GIGA,
                    None if memory_gb is None else int(memory_gb * GIGA)),
        forward_overhead=top.number("forward_overhead_us", high=1e9) * US,
        layer_overhead=(top.number("layer_overhead_us", required=False, high=1e9) or 0.0) * US,
        weighted_layer_overhead=(top.number("weighted_layer_overhead_us", required=False, high=1e9) or 0.0) * US,
        cold_weights_seconds_per_byte=cold.number("ns_per_byte", high=1e6) * 1e-9 if cold is not None else 0.0,
        cache_bytes=cold.integer("cache_bytes", low=1, high=2**50) if cold is not None else None,
        activations_seconds_per_byte=(top.number("activations_ns_per_byte", required=False, high=1e6) or 0.0) * 1e-9,
        fallback=Fallback(fallback.number("overhead_us", high=1e9) * US,
                          fallback.number("roofline_efficiency", positive=True, high=1e6)),
        entries=entries, allocator=allocator, threads=top.integer("threads", required=False, low=1, high=1 << 20),
        machine=_plain_texts(machine), date=top.text("date", required=False) or "",
        calibration=_plain_texts(calibration), source=where.file)


def _plain_texts(reader: _Reader | None) -> dict[str, Any]:
    """A free-form mapping of plain values (machine, calibration), each bounded."""
    if reader is None:
        return {}
    if len(reader.mapping) > 100:
        raise LatencyError(f"{reader.what} has {len(reader.mapping)} keys; at most 100", reader.where)
    out = {}
    for key, value in reader.mapping.items():
        if isinstance(value, (dict, list)) or (isinstance(value, str) and len(value) > MAX_TEXT):
            raise LatencyError(f"{reader.what}: '{key}' must be a plain value of at most {MAX_TEXT} characters",
                               reader.loc(key))
        if isinstance(value, float) and not math.isfinite(value):
            raise LatencyError(f"{reader.what}: '{key}' must be finite", reader.loc(key))
        out[str(key)] = value
    return out
