"""Calibrated latency: how long a model takes on one device, predicted from the cost records, the
graph's facets and a profile fitted to microbenchmarks of single ops on that device
(`inception-analyzer calibrate`, bench/calibrate.py). Pure arithmetic, no torch: a prediction
takes milliseconds.

The model (docs/benchmarks.md follows one layer through it by hand):

    layer time = overhead[entry] + kernel[entry](the layer's shapes, batch) + fresh pages + in a model
    model time = forward overhead + the layers' times, as the device runs them:
                 execution 'sync' (a CPU: each op ends before the next starts): their sum;
                 execution 'queue' (CUDA: the host enqueues ops, the device runs them in order):
                 host i ends at host(i-1) + overhead i; device i starts at max(host i, end(i-1))
                 and ends kernel i later; the model's time is the last end.

`fresh pages` is what the layer pays for memory the kernel hands out anew (a CPU profile with a
host allocator: analysis/allocator.py simulates which tensors land on fresh pages in the model's
own order of allocations; the microbenchmarks themselves run on warm memory).
`overhead` is what eager execution costs beyond the kernel (the module call, torch's dispatch,
the output's allocation): the op's time on the smallest tensors, fitted per entry.
`in a model` is what a layer adds for running among others rather than alone, again and again,
as a microbenchmark runs it:
  - every layer: the profile's `layer overhead` (fitted to a 120-layer network of tiny maps,
    whose kernels cost next to nothing, against its prediction), and the bytes of the activations
    it reads and writes at the profile's `activations` cost a byte: a microbenchmark calls one op
    on the same tensors again and again, a model hands each layer tensors other layers just
    wrote and buffers they just freed. On the development machine, timed in a model and alone
    (warm memory both ways), mobilenet_v2's (batch 8) and efficientnet_b0's (batch 32) batch
    norms, activations and convolutions took 0.001 to 0.028 ns a byte moved more in the model,
    for tensors from 1 MiB to beyond the last-level cache alike; efficientnet_b0 at batch 32 took
    56 ms (31%) more than its layers alone;
  - a layer its curve prices by elements (a batch norm, an activation, an add, a concat...)
    also: what its elements take beyond its kernel at the curve's own speed beyond the
    last-level cache, where that is slower (uncached_seconds): a microbenchmark keeps the
    tensors it calls the op on again and again in cache, a model does not;
  - a convolution or linear layer also: the profile's `weighted layer overhead`, a fixed cost a
    call, and its weights' bytes x `cold weights` per byte where they fit the last-level cache
    (a microbenchmark's repeated calls keep such weights there; a model runs its other layers in
    between). A model runs many distinct convolutions in turn: on the development machine twenty
    units of a 1x1 and a 3x3 convolution on 14 x 14 maps took 3.5 to 8.8 us a convolution more
    than their layers alone when every unit was alike, 30 to 32 us when each had its own
    widths (48 to 200 channels), 74 to 87 us with wider ones (200 to 352, 60 MiB of weights).
    `calibrate` fits the three figures to three networks, each timed whole and layer by layer
    alone: two of distinct widths on small maps (the call and weights figures) and one of narrow
    convolutions on large maps at batch 8 (the activations'), never to a model it predicts. On a
    queue device (CUDA) all of it is the host's: the weighted layer overhead alone, what the
    first two networks' hosts take to enqueue a forward beyond their layers' host times, a
    convolution (bench/calibrate.py's queue_in_model_costs).
Which entry prices a layer follows from its op kind's facets, never from a model's name:

  - convolution-like layers (a `ConvGeometry`) and linear layers: an *efficiency* entry per class
    (kernel h x w / stride, and dense, grouped or depthwise; linear is one class):

        kernel = [FLOPs / (peak x f_in(C_in / groups) x f_out(C_out / groups) x f_work(FLOPs) x f_groups(groups)
                           x f_align(alignment))
                  + d_in x copy(input) + d_out x copy(output) + d_weights x copy(weights)]
                 x the nearest samples' correction

    with FLOPs = 2 x MACs x batch, the call's work. `peak` is the best FLOP/s the class reached
    when calibrated; each factor f (<= 1) is a table of (argument, factor) interpolated linearly in
    log2 of the argument and held at its end values beyond the measured range (a linear layer:
    C_in = in features, C_out = out features). f_work says how a call's size limits the rate
    whichever of its dimensions is small: on the development machine a 1x1 convolution of 256 to
    1024 channels on a 14 x 14 map ran at 374 GFLOP/s, and a factor of the grid alone (pixels, as
    earlier profiles had), fitted on samples whose small grids had few channels, priced it at 242.
    f_align says what a channel count that fills no whole vector costs: `alignment` is the largest
    power of two (up to 32) dividing the channels the kernel vectorises over (in and out channels
    per group; a depthwise convolution's channels), so 72 channels have 8 and 64 have 32 (a linear
    layer: its in and out features).
    The correction is what the smooth fit cannot say: each calibrated sample keeps the
    ratio of its measured kernel to the fit's, and a layer takes the geometric mean of the ratios of
    the NEIGHBOURS samples nearest to it (in log2 of in and out channels per group, pixels and
    groups and alignment), weighted by 1 / (distance + 1/2): a kernel-level lookup of how far the smooth fit
    is off around the layer. The second line is what the layer spends
    moving data rather than multiplying: copy(n) is the device's measured time to copy a tensor
    of n elements (the profile's "copy" curve: it steps up where a tensor outgrows the caches,
    or the allocator's reuse of freed memory), and d_in, d_out, d_weights how many such copies
    the class's kernels cost (on a CPU, oneDNN converts the input, the output and the weights
    between torch's layout and its blocked one on every call). Fitted over the class's
    microbenchmarks by turns: least squares on log(FLOP/s) of what is left after the data term,
    then least squares for d on what is left after the compute term, each d from 0 to MAX_COPIES.
    A convolution padded more on one side of an axis (TensorFlow's 'same') pads a copy of its
    input first (OpKind.staged_input): one copy(n) more, of the padded input.
  - a class the framework runs on two kernels keeps two entries. torch on a CPU hands a dense
    convolution to oneDNN, except a batch-1 call on a small input (at most 20,480 elements with
    more than one thread, in torch 2.13), which its own native kernel runs: on the development
    machine a 16-channel 32 x 32 chain's convolutions ran 2.1 times slower than their oneDNN-fitted
    price. `calibrate` asks torch which backend each of its samples takes, fits the native ones
    into `<class> native`, and probes, batch by batch, the largest input the native kernel gets
    (the class entry's `native_up_to`); the prediction routes a layer by that rule.
  - every other op kind: a *curve*, its kernel time measured at sizes of one feature (the
    elements it reads and writes per batch; for pooling the window reads, batch x output
    elements x window area), interpolated linearly between the measured sizes, from zero below
    the first and at the last segment's rate beyond the last. An activation the builder runs in
    place (graph.runs_in_place) has an entry of its own ("relu (in place)"), and so has each kernel
    an op kind's arguments pick (OpKind.kernel_variant: "upsample bilinear", "upsample nearest").
    A view or no-op (flatten, dropout at inference, a slice or chunk of the channels) costs its
    overhead only, its roofline time is 0, and it takes no fresh pages; an op that only moves
    data (a channel shuffle, a padding) is priced by its elements like any other.
  - a convolution class or pooling window the profile lacks takes the nearest window of the same
    kind (a conv of the same grouping, a pool of the same op: kernel area, then stride, then
    aspect); an activation run in place that the profile timed only out of place takes that
    entry; an op kind the profile has no entry for at all falls back to the roofline
    (analysis/roofline.py, on the profile's measured roofs) divided by the profile's fitted
    roofline efficiency, plus the median overhead. Each layer says which way it was priced (`how`).
"""
from __future__ import annotations

import bisect
import itertools
import math
import statistics
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Iterable

from ..dtypes import get_dtype
from ..errors import AnalyzerError
from ..graph import Graph, MainLayer, main_layers
from ..numbers import numel
from ..ops import Category, ConvGeometry
from .allocator import Allocator, fresh_bytes
from .cost import AUX, CostReport
from .roofline import DeviceProfile, estimate_layer, moves_data, shapes_move_data

SYNC = "sync"        # each op runs to its end before the next starts (CPU)
QUEUE = "queue"      # the host enqueues, the device runs in order (CUDA)
EXECUTIONS = (SYNC, QUEUE)
EFFICIENCY = "efficiency"
CURVE = "curve"
# the factors of an efficiency entry, in the order the formula multiplies them
FACTORS = ("in_channels", "out_channels", "work", "groups", "alignment")
# a factor a profile file may hold: the fitted ones, and 'pixels' (batch x output grid), which
# profiles fitted before 'work' replaced it have; the prediction reads whichever an entry has
FACTOR_NAMES = FACTORS + ("pixels",)
# where a layer lies among a class's calibrated samples: the correction's distance, in log2 of these
# (a misaligned sample's residual says little about an aligned layer beside it; profiles written
# before the alignment was a factor have rows of the first four)
LOCATION = ("in_channels", "out_channels", "pixels", "groups", "alignment")
LOCATION_WITHOUT_ALIGNMENT = LOCATION[:4]
NEIGHBOURS = 4
ELEMENTS = "elements"            # a curve's feature: elements read and written per batch
WINDOW_READS = "window reads"    # a pool's: batch x output elements x window area
FEATURES = (ELEMENTS, WINDOW_READS)
FITTED, NEAREST, FALLBACK = "fitted", "nearest", "fallback"
SIGNIFICANT = 4                  # digits a fitted figure keeps (the profile file shows them all)


class LatencyError(AnalyzerError):
    kind = "latency profile error"


def rounded(value: float, digits: int = SIGNIFICANT) -> float:
    """A fitted figure as the profile keeps it: `digits` significant digits, so the profile in
    memory and the one read back from its file predict the same."""
    return float(f"{value:.{digits}g}") if value else 0.0


# ----------------------------------------------------------------------------- entries
def interpolate_log2(points: tuple[tuple[float, float], ...], x: float) -> float:
    """A factor table's value at x: linear in log2 x between its points, held beyond the ends."""
    if x <= points[0][0]:
        return points[0][1]
    if x >= points[-1][0]:
        return points[-1][1]
    index = bisect.bisect_right([p[0] for p in points], x)
    (x0, y0), (x1, y1) = points[index - 1], points[index]
    t = (math.log2(x) - math.log2(x0)) / (math.log2(x1) - math.log2(x0))
    return y0 + t * (y1 - y0)


def enqueue_seconds(entry: EfficiencyEntry | CurveEntry, x: float) -> float:
    """What a call costs the host (the entry's overhead): on a queue device whose calibration
    timed the host at every size, its time at x (a call's FLOPs, or a curve's feature) between
    the measured points (linear in log2 x, held beyond them); otherwise the overhead on the
    smallest tensors. On the H200 of docs/benchmarks.md most entries' host times were flat in
    size, but a grouped 3x3 convolution's rose from 33 to 62 us a call to 94 to 148 us beyond
    3.4e8 FLOPs."""
    return interpolate_log2(entry.host, x) if entry.host and x > 0 else entry.overhead


@dataclass(frozen=True)
class EfficiencyEntry:
    """A convolution class (or linear): kernel = FLOPs / (peak x product of factors)."""

    key: str
    overhead: float                                         # seconds per call
    peak_flops: float                                       # FLOP/s where every factor is 1
    factors: dict[str, tuple[tuple[float, float], ...]]     # name -> ((argument, factor), ...)
    samples: int = 0
    data: dict[str, float] = field(default_factory=dict)    # DATA name -> copies of that tensor per call
    # per calibrated sample: its LOCATION arguments and its measured kernel / the fit's kernel
    residuals: tuple[tuple[float, ...], ...] = ()
    # where the framework runs the class on a kernel of its own rather than the main backend's
    # (torch on a CPU: its native convolution instead of oneDNN's for small batch-1 inputs):
    # ((batch, most input elements, batch included), ...) by ascending batch, as calibrate probed
    # it; such layers are priced by the entry `key + NATIVE`
    native_up_to: tuple[tuple[int, int], ...] = ()
    # on a queue device: (FLOPs of the call, the host's seconds to enqueue it), ascending (fit_host)
    host: tuple[tuple[float, float], ...] = ()

    def efficiency(self, arguments: dict[str, float]) -> float:
        value = self.peak_flops
        for name, points in self.factors.items():
            value *= interpolate_log2(points, arguments[name])
        return value

    def compute_seconds(self, flops: float, arguments: dict[str, float]) -> float:
        return flops / self.efficiency(arguments) if flops else 0.0

    def data_seconds(self, sizes: dict[str, float], copy: CurveEntry | None) -> float:
        """The data term: each tensor's copies at the device's copy time (none without a copy curve)."""
        if copy is None:
            return 0.0
        return sum(times * copy_seconds(copy, sizes.get(name, 0.0)) for name, times in self.data.items())

    def fitted_seconds(self, flops: float, arguments: dict[str, float], sizes: dict[str, float] | None = None,
                       copy: CurveEntry | None = None) -> float:
        """The smooth fit's kernel: compute and data terms, before the samples' correction."""
        return self.compute_seconds(flops, arguments) + self.data_seconds(sizes or {}, copy)

    def kernel_seconds(self, flops: float, arguments: dict[str, float], sizes: dict[str, float] | None = None,
                       copy: CurveEntry | None = None) -> float:
        return self.fitted_seconds(flops, arguments, sizes, copy) * self.correction(arguments)

    def correction(self, arguments: dict[str, float]) -> float:
        """The distance-weighted geometric mean of the nearest samples' measured / fitted ratios
        (module docstring); 1 without residuals."""
        if not self.residuals:
            return 1.0
        here = [math.log2(arguments[name]) for name in LOCATION[:len(self.residuals[0]) - 1]]
        places, log_ratios = self._located_residuals
        nearest = sorted(zip(map(math.dist, itertools.repeat(here, len(places)), places), log_ratios))[:NEIGHBOURS]
        weights = [(1.0 / (distance + 0.5), log_ratio) for distance, log_ratio in nearest]
        return math.exp(sum(w * r for w, r in weights) / sum(w for w, _ in weights))

    @cached_property
    def _located_residuals(self) -> tuple[tuple[tuple[float, ...], ...], tuple[float, ...]]:
        """The residuals' places (log2 of their location) and the logs of their ratios, worked out
        once per entry."""
        return (tuple(tuple(math.log2(v) for v in row[:-1]) for row in self.residuals),
                tuple(math.log(row[-1]) for row in self.residuals))

    def in_range(self, arguments: dict[str, float]) -> bool:
        return all(points[0][0] <= arguments[name] <= points[-1][0] for name, points in self.factors.items())

    def runs_native(self, batch: int, input_elements: float) -> bool:
        """Whether a call of `batch` images on an input of `input_elements` (batch included) takes
        the framework's own kernel: the probed row of the largest batch up to this one says."""
        limit = None
        for probed, most in self.native_up_to:
            if probed <= batch:
                limit = most
        return limit is not None and input_elements <= limit


@dataclass(frozen=True)
class CurveEntry:
    """Any other op kind: kernel seconds measured at sizes of one feature, linear between them."""

    key: str
    overhead: float                                  # seconds per call
    feature: str                                     # ELEMENTS or WINDOW_READS
    points: tuple[tuple[float, float], ...]          # (feature value, kernel seconds), ascending
    samples: int = 0
    # on a queue device: (feature value, the host's seconds to enqueue the call), ascending (fit_host)
    host: tuple[tuple[float, float], ...] = ()

    def kernel_seconds(self, x: float) -> float:
        if x <= 0 or not self.points:
            return 0.0
        xs = self._xs
        if x <= xs[0]:                                   # from zero at no work to the first point
            return self.points[0][1] * x / xs[0]
        if x >= xs[-1]:                                  # beyond: at the last segment's rate
            if len(self.points) == 1:
                return self.points[-1][1] * x / xs[-1]
            (x0, y0), (x1, y1) = self.points[-2], self.points[-1]
            return y1 + (x - x1) * max(y1 - y0, 0.0) / (x1 - x0)
        index = bisect.bisect_right(xs, x)
        (x0, y0), (x1, y1) = self.points[index - 1], self.points[index]
        return y0 + (x - x0) * (y1 - y0) / (x1 - x0)

    def in_range(self, x: float) -> bool:
        return not self.points or x <= self.points[-1][0]

    def seconds_per_unit_beyond(self, size: float) -> float | None:
        """Kernel seconds per unit of the feature over the measured sizes above `size`: the median
        of their rates, robust to one stalled sample; None where none was measured."""
        rates = [seconds / x for x, seconds in self.points if x > size]
        return statistics.median(rates) if rates else None

    @cached_property
    def _xs(self) -> list[float]:
        return [p[0] for p in self.points]


Entry = EfficiencyEntry | CurveEntry
NATIVE = " native"               # the suffix of a class's entry for the calls the framework runs natively
COPY_KEY = "copy"                # the device's time to copy a tensor, by elements moved (read + written)
DATA = ("input", "output", "weights")


def copy_seconds(copy: CurveEntry, elements: float) -> float:
    """The time to copy a tensor of `elements` elements: the copy curve at 2 x elements moved."""
    return copy.kernel_seconds(2.0 * elements) if elements > 0 else 0.0


@dataclass(frozen=True)
class Roofs:
    """The roofline's figures for the profile's dtype, measured when it was calibrated."""

    matmul_flops: float
    vector_flops: float
    memory_bandwidth: float
    memory_bytes: int | None = None


@dataclass(frozen=True)
class Fallback:
    """How an op kind without an entry is priced: overhead + roofline time / efficiency."""

    overhead: float
    efficiency: float


@dataclass(frozen=True)
class LatencyProfile:
    """A device calibrated for one dtype: its machine, its roofs and the fitted entries."""

    name: str
    title: str
    device: str                      # "cpu" or "cuda"
    dtype: str
    execution: str                   # SYNC or QUEUE
    roofs: Roofs
    forward_overhead: float          # seconds per call of the whole model, beyond its layers
    fallback: Fallback
    entries: dict[str, Entry]
    layer_overhead: float = 0.0      # seconds a layer adds in a model beyond its entry's overhead alone
    # what a convolution or linear layer adds in a model beyond that (module docstring, "in a model"):
    weighted_layer_overhead: float = 0.0     # seconds a call
    cold_weights_seconds_per_byte: float = 0.0   # weights a microbenchmark kept in cache, fetched anew
    # every layer that moves data: a byte of the activations it reads and writes (memory a
    # microbenchmark's repeated calls kept warm, the model's turns between other layers' tensors)
    activations_seconds_per_byte: float = 0.0
    cache_bytes: int | None = None   # the last-level cache: weights above it were never kept in cache
    allocator: Allocator | None = None   # the host allocator whose fresh pages a model pays for (CPU)
    threads: int | None = None       # torch's CPU threads when calibrated
    machine: dict[str, str] = field(default_factory=dict)
    date: str = ""
    calibration: dict[str, object] = field(default_factory=dict)
    source: str = ""                 # the file it was read from

    def device_profile(self) -> DeviceProfile:
        """The roofline's view of this device (the measured roofs) for the bound shown beside."""
        return DeviceProfile(name=self.name, title=self.title, matmul_flops={self.dtype: self.roofs.matmul_flops},
                             vector_flops=self.roofs.vector_flops, memory_bandwidth=self.roofs.memory_bandwidth,
                             memory_bytes=self.roofs.memory_bytes, source=self.source or "calibrated")

    def efficiency_entries(self) -> dict[str, EfficiencyEntry]:
        return {k: e for k, e in self.entries.items() if isinstance(e, EfficiencyEntry)}


# ----------------------------------------------------------------------------- which entry, which features
def stride_text(stride: tuple[int, int]) -> str:
    return str(stride[0]) if stride[0] == stride[1] else f"{stride[0]}x{stride[1]}"


# the most a channel count's alignment says: a kernel splits channels into vectors of a few lanes
# (16 fp32 lanes in AVX-512, 8 in AVX2); a count that fills none of them evenly leaves a tail to
# handle apart
ALIGNMENT_MOST = 32


def channel_alignment(*channels: int) -> int:
    """The largest power of two dividing every one of `channels`, at most ALIGNMENT_MOST (1 for
    none). A kernel that vectorises over channels runs a count that is not a multiple of its
    vector's lanes with a tail: on the development machine (AVX-512) a 1x1 convolution of 72 -> 72
    channels on a 56 x 56 map took 251 us against 125 us for 64 -> 64 and 160 us for 80 -> 80, and
    a depthwise 3x3 one 3.4 us a channel with 72 channels against 2.4 with 64 and 80."""
    value = ALIGNMENT_MOST
    for count in channels:
        count = int(count)
        value = min(value, count & -count if count > 0 else 1)
    return value


def conv_key(geometry: ConvGeometry) -> str:
    """'conv 3x3/2', 'conv 3x3/1 depthwise', 'conv 3x3/1 grouped', 'conv 3x3/1 d2'."""
    key = f"conv {geometry.kernel[0]}x{geometry.kernel[1]}/{stride_text(geometry.stride)}"
    if geometry.dilation != (1, 1):
        key += f" d{geometry.dilation[0]}" + ("" if geometry.dilation[0] == geometry.dilation[1]
                                               else f"x{geometry.dilation[1]}")
    if geometry.depthwise:
        key += " depthwise"
    elif geometry.grouped:
        key += " grouped"
    return key


LINEAR_KEY = "linear"
IN_PLACE = " (in place)"
GLOBAL = "global"


@dataclass(frozen=True)
class LayerWork:
    """What prices one layer: its entry's key, and the figures the entry reads."""

    key: str
    model: str                              # EFFICIENCY or CURVE
    flops: float = 0.0                      # efficiency: 2 x MACs x batch
    arguments: dict[str, float] = field(default_factory=dict)   # efficiency: the factors' arguments
    feature: str = ELEMENTS                 # curve: which feature
    size: float = 0.0                       # curve: its value (0: a view or no-op)
    data: dict[str, float] = field(default_factory=dict)        # efficiency: elements of input, output, weights
    family: str = ""                        # entries that may stand in for each other: "conv", "conv depthwise",
    kernel: tuple[int, int] | None = None   # "maxpool"...; and the window (nearest-class search)
    stride: tuple[int, int] | None = None
    batch: int = 1
    activations: float = 0.0                # elements the layer reads and writes, batch included (0: a view)
    staged: float = 0.0                     # elements of a copy of its input it makes first (OpKind.staged_input)


def layer_work(op, args: dict, inputs: list, out, batch: int, in_place: bool = False) -> LayerWork:
    """The entry and features of one layer (an op kind with its resolved arguments and shapes,
    per image) at a batch size; the calibration computes its samples' features by this too."""
    inputs = [tuple(s) for s in inputs]
    out = tuple(out)
    geometry = op.geometry(args, inputs, out)
    macs = op.macs(args, inputs, out)
    data = {"input": float(batch * sum(numel(s) for s in inputs)), "output": float(batch * numel(out)),
            "weights": float(op.params(args, inputs, out))}
    moved = data["input"] + data["output"]
    if geometry is not None:
        pixels = batch * (out[1] * out[2] if len(out) == 3 else 1)
        staged = op.staged_input(args, inputs)
        grouping = "depthwise" if geometry.depthwise else "grouped" if geometry.grouped else ""
        # the channels a kernel vectorises over: a depthwise one's across its groups, others' within a group
        lanes = (geometry.in_channels, geometry.out_channels) if geometry.depthwise else \
            (geometry.in_channels // geometry.groups, geometry.out_channels // geometry.groups)
        return LayerWork(conv_key(geometry), EFFICIENCY, flops=2.0 * macs * batch,
                         arguments={"in_channels": geometry.in_channels / geometry.groups,
                                    "out_channels": geometry.out_channels / geometry.groups,
                                    "pixels": pixels, "groups": geometry.groups,
                                    "work": 2.0 * macs * batch,
                                    "alignment": channel_alignment(*lanes)},
                         data=data, family=f"conv {grouping}".strip(), kernel=geometry.kernel,
                         stride=geometry.stride, batch=batch, activations=moved,
                         staged=float(batch * numel(staged)) if staged else 0.0)
    if op.category is Category.LINEAR:
        return LayerWork(LINEAR_KEY, EFFICIENCY, flops=2.0 * macs * batch,
                         arguments={"in_channels": numel(inputs[0]), "out_channels": numel(out), "pixels": batch,
                                    "work": 2.0 * macs * batch,
                                    "groups": 1, "alignment": channel_alignment(numel(inputs[0]), numel(out))},
                         data=data, activations=moved)
    key = " ".join(filter(None, (op.name, op.kernel_variant(args)))) + (IN_PLACE if in_place else "")
    if not shapes_move_data(macs, op.other_flops(args, inputs, out), inputs, out, op):
        return LayerWork(key, CURVE, size=0.0)
    if op.category is Category.POOL and len(inputs[0]) == 3:
        # a pool's entry is its window ('maxpool 3x3/2'), or 'global' where the window is the whole map
        step = op.rf_step(args, inputs, tuple(inputs[0][1:]))
        size = float(batch * numel(out) * step.kernel[0] * step.kernel[1])
        # a window over the whole map: to a 1 x 1 map, or to a vector (global_avgpool)
        if all(d == 1 for d in out[1:]) and tuple(step.kernel) == tuple(inputs[0][1:]):
            return LayerWork(f"{op.name} {GLOBAL}", CURVE, feature=WINDOW_READS, size=size, family=op.name,
                             activations=moved)
        return LayerWork(f"{op.name} {step.kernel[0]}x{step.kernel[1]}/{stride_text(step.stride)}", CURVE,
                         feature=WINDOW_READS, size=size, family=op.name, kernel=tuple(step.kernel),
                         stride=tuple(step.stride), activations=moved)
    return LayerWork(key, CURVE, feature=ELEMENTS, size=moved, activations=moved)


# ----------------------------------------------------------------------------- prediction
@dataclass
class LayerPrediction:
    path: str
    op: str
    role: str
    block: str
    stage: str
    entry: str                   # the profile entry that priced it (or the one it lacked)
    how: str                     # FITTED, NEAREST or FALLBACK
    overhead_seconds: float
    kernel_seconds: float
    roofline_seconds: float      # the roofline bound on the profile's roofs, for beside it
    extrapolated: bool = False   # a feature beyond the calibrated range
    via: str = ""                # NEAREST: the entry used instead
    fresh_bytes: int = 0         # bytes it touches on fresh pages (analysis/allocator.py)
    fresh_seconds: float = 0.0   # what they cost
    context_seconds: float = 0.0  # what running among a model's other layers adds (module docstring)

    @property
    def seconds(self) -> float:
        return self.overhead_seconds + self.kernel_seconds + self.fresh_seconds + self.context_seconds

    @property
    def how_text(self) -> str:
        text = f"{self.how} {self.via}" if self.via else self.how
        if not self.via and self.entry.endswith(NATIVE):     # its class's entry for the framework's own kernel
            text += ", native kernel"
        return text + (", extrapolated" if self.extrapolated else "")


@dataclass
class LatencyPrediction:
    model: str
    profile: LatencyProfile
    batch: int
    layers: list[LayerPrediction]
    seconds: float               # the model's time per batch (execution rule applied)
    notes: list[str] = field(default_factory=list)

    @property
    def images_per_second(self) -> float:
        return self.batch / self.seconds if self.seconds else math.inf

    @property
    def overhead_seconds(self) -> float:
        return self.profile.forward_overhead + sum(l.overhead_seconds for l in self.layers)

    @property
    def kernel_seconds(self) -> float:
        return sum(l.kernel_seconds for l in self.layers)

    @property
    def fresh_seconds(self) -> float:
        return sum(l.fresh_seconds for l in self.layers)

    @property
    def context_seconds(self) -> float:
        return sum(l.context_seconds for l in self.layers)

    @property
    def roofline_seconds(self) -> float:
        return sum(l.roofline_seconds for l in self.layers)

    def count_by_how(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for layer in self.layers:
            counts[layer.how] = counts.get(layer.how, 0) + 1
        return counts


def nearest_entry(profile: LatencyProfile, work: LayerWork, besides: str = "") -> str | None:
    """The calibrated entry of the same family (a conv of the same grouping, a pool of the same
    op) closest to a window the profile lacks: nearest in log window area, then in log stride,
    then in aspect; an entry without a window ('maxpool global') only when no other is there.
    An activation run in place that the profile did not time in place ('silu (in place)' in a
    profile calibrated before silu took `inplace`) takes the entry timed out of place: the same
    work, one write stream more. None when the family has no entry at all."""
    if work.key.endswith(IN_PLACE) and work.key[:-len(IN_PLACE)] in profile.entries:
        return work.key[:-len(IN_PLACE)]
    if not work.family:
        return None
    best, best_distance = None, None
    for key, entry in profile.entries.items():
        parsed = parse_window_key(key)
        if key == besides or parsed is None or parsed[0] != work.family \
                or isinstance(entry, EfficiencyEntry) != (work.model == EFFICIENCY):
            continue
        _, kernel, stride = parsed
        if kernel is None or work.kernel is None:
            distance = (math.inf, math.inf, math.inf)
        else:
            distance = (abs(math.log2(kernel[0] * kernel[1]) - math.log2(work.kernel[0] * work.kernel[1])),
                        abs(math.log2(stride[0] * stride[1]) - math.log2(work.stride[0] * work.stride[1])),
                        abs(math.log2(kernel[0] / kernel[1]) - math.log2(work.kernel[0] / work.kernel[1])))
        if best_distance is None or distance < best_distance:
            best, best_distance = key, distance
    return best


def parse_window_key(key: str) -> tuple[str, tuple[int, int] | None, tuple[int, int] | None] | None:
    """'conv 3x3/2 depthwise' -> ('conv depthwise', (3, 3), (2, 2)); 'maxpool 3x3/1' -> ('maxpool',
    (3, 3), (1, 1)); 'avgpool global' -> ('avgpool', None, None); None for a key without a window
    (or a dilated conv's)."""
    words = key.split()
    if len(words) == 2 and words[1] == GLOBAL:
        return words[0], None, None
    if len(words) not in (2, 3) or "/" not in words[1]:
        return None
    grouping = words[2] if len(words) == 3 else ""
    if grouping not in ("", "depthwise", "grouped") or (grouping and words[0] != "conv"):
        return None
    kernel_text, stride_part = words[1].split("/", 1)
    try:
        kernel = tuple(int(v) for v in kernel_text.split("x"))
        stride = tuple(int(v) for v in stride_part.split("x"))
    except ValueError:
        return None
    if len(kernel) != 2 or len(stride) not in (1, 2) or min(*kernel, *stride) < 1:
        return None
    return f"{words[0]} {grouping}".strip(), kernel, (stride * 2 if len(stride) == 1 else stride)


def predict_layer(work: LayerWork, profile: LatencyProfile, roofline_seconds: float
                  ) -> tuple[str, str, str, float, float, bool]:
    """(how, entry, via, overhead, kernel, extrapolated) of one layer: `entry` the key of the entry
    that priced it (its class's native entry where the framework runs it natively), or the
    layer's own key where none did."""
    entry = profile.entries.get(work.key)
    via = ""
    if entry is None:
        via = nearest_entry(profile, work) or ""
        entry = profile.entries.get(via)
    if isinstance(entry, EfficiencyEntry) and work.model == EFFICIENCY:
        how = NEAREST if via else FITTED
        native = profile.entries.get(entry.key + NATIVE)
        if isinstance(native, EfficiencyEntry) and entry.runs_native(work.batch, work.data.get("input", 0.0)):
            entry = native
            via = via and native.key
        copy = profile.entries.get(COPY_KEY)
        copy = copy if isinstance(copy, CurveEntry) else None
        kernel = entry.kernel_seconds(work.flops, work.arguments, work.data, copy)
        if copy is not None:
            kernel += copy_seconds(copy, work.staged)   # the padded copy it computes on
        return how, (work.key if via else entry.key), via, enqueue_seconds(entry, work.flops), kernel, \
            not entry.in_range(work.arguments)
    if isinstance(entry, CurveEntry) and work.model == CURVE and (entry.feature == work.feature or not work.size):
        if len(entry.points) == 1 and work.size > entry.points[0][0]:
            # one sample says nothing of how the time grows (on a GPU it is the launch alone):
            # beyond it, the nearest entry of the layer's family prices it, where there is one
            other = profile.entries.get(nearest_entry(profile, work, besides=entry.key) or "")
            if isinstance(other, CurveEntry) and other.feature == work.feature and len(other.points) > 1:
                entry, via = other, other.key
        return (NEAREST if via else FITTED), work.key, via, enqueue_seconds(entry, work.size), \
            entry.kernel_seconds(work.size), not entry.in_range(work.size)
    fallback = profile.fallback
    return FALLBACK, work.key, "", fallback.overhead, roofline_seconds / fallback.efficiency, False


def predict(graph: Graph, report: CostReport, profile: LatencyProfile, batch: int = 1,
            dtype: str | None = None, layers: list[MainLayer] | None = None) -> LatencyPrediction:
    """The calibrated prediction of one inference batch: every main-path layer priced by its
    entry (module docstring), combined as the profile's execution runs them. `layers` is
    graph.main_layers(graph), where the caller keeps it for the model's every prediction."""
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise LatencyError(f"the batch size must be a positive integer, got {batch!r}")
    if dtype is not None and dtype != profile.dtype:
        raise LatencyError(f"the profile '{profile.name}' was calibrated for {profile.dtype}, not {dtype}",
                           hint=f"calibrate again with --dtype {dtype}, or ask for {profile.dtype}")
    device = profile.device_profile()
    allocator = profile.allocator
    main = main_layers(graph) if layers is None else layers
    fresh = fresh_bytes(graph, batch, get_dtype(profile.dtype).bytes, allocator, layers=main) if allocator else {}
    records = [record for record in report.layers if record.role != AUX]
    if [record.path for record in records] != [layer.node.path for layer in main]:
        raise LatencyError(f"the cost report of '{report.model}' is not of this graph")
    layers = []
    priced: dict[tuple, tuple] = {}               # a price per signature (graph.MainLayer)
    for record, layer in zip(records, main):
        if layer.signature not in priced:
            node = layer.node
            work = layer_work(node.op, node.args, list(node.in_shapes), node.out_shape, batch, layer.in_place)
            bound = estimate_layer(record, device, profile.dtype, batch).seconds if moves_data(record) else 0.0
            price = predict_layer(work, profile, bound)
            _, entry, via, _, kernel, _ = price
            priced[layer.signature] = (price, bound, context_seconds(work, profile, get_dtype(profile.dtype).bytes,
                                                                     via or entry, kernel))
        (how, entry, via, overhead, kernel, outside), bound, context = priced[layer.signature]
        touched = fresh.get(record.path, 0)
        layers.append(LayerPrediction(record.path, record.op, record.role, record.block, record.stage, entry, how,
                                      overhead, kernel, bound, outside, via, touched,
                                      touched * allocator.fault_seconds_per_byte if allocator else 0.0, context))
    seconds = combine(profile, layers)
    notes = [_execution_note(profile)]
    counts = {how: sum(1 for l in layers if l.how == how) for how in (FITTED, NEAREST, FALLBACK)}
    if counts[NEAREST] or counts[FALLBACK]:
        lacking = sorted({l.entry for l in layers if l.how != FITTED})
        notes.append(f"{counts[FITTED]} layers priced by their own entry, {counts[NEAREST]} by the nearest window "
                     f"of their kind, {counts[FALLBACK]} by the fallback (roofline / {profile.fallback.efficiency:.3g}); "
                     f"no entry for: {', '.join(lacking)}")
    extrapolated = sum(1 for l in layers if l.extrapolated)
    if extrapolated:
        notes.append(f"{extrapolated} layer(s) lie beyond the calibrated sizes (held at the edge of the "
                     "measured range)")
    return LatencyPrediction(report.model, profile, batch, layers, seconds, notes)


def context_seconds(work: LayerWork, profile: LatencyProfile, element_bytes: int, entry: str = "",
                    kernel: float = 0.0) -> float:
    """What the layer adds for running among a model's other layers: the profile's layer overhead
    and its activations' bytes at the in-model cost a byte; for a convolution or linear layer also
    its in-model overhead, and its weights' fetch where a microbenchmark kept them in cache (they
    fit the last-level cache) and a model does not; for a layer its curve prices by elements
    (`entry`, at `kernel` seconds), what its elements take beyond that at the curve's own speed
    beyond the cache (uncached_seconds)."""
    seconds = profile.layer_overhead + work.activations * element_bytes * profile.activations_seconds_per_byte
    if work.model == EFFICIENCY:
        weights = work.data.get("weights", 0.0) * element_bytes
        seconds += profile.weighted_layer_overhead
        if profile.cache_bytes is not None and weights <= profile.cache_bytes:
            seconds += weights * profile.cold_weights_seconds_per_byte
    return seconds + uncached_seconds(work, profile, element_bytes, entry, kernel)


def uncached_seconds(work: LayerWork, profile: LatencyProfile, element_bytes: int, entry: str, kernel: float
                     ) -> float:
    """In a model, a layer that only moves elements (batch norm, an activation, an add, a concat,
    a shuffle) moves them no faster than its curve's calibration did once the tensors outgrew the
    last-level cache: the calibration calls it again and again on the same tensors, which stay in
    cache up to its size, while a model hands it tensors among everything else it has touched.
    The layer's elements at that rate, less its kernel where that is more. On the Zen 3 of
    docs/benchmarks.md, the batch norms of 4 to 34 MB read and written in ten (model, batch)
    pairs, 144 layers each timed in its model (benchmarks/layers_in_model.py): a median 0.040 ns
    a byte (quartiles 0.029 and 0.053), where their curve ran at 0.016 to 0.038 at those sizes
    and at 0.043 beyond the 32 MiB cache; the in-place ReLUs, 0.012 in the model, 0.004 to 0.008
    on their curve, 0.014 beyond. Nothing where the profile knows no cache (a GPU's) or the
    curve has no point beyond it."""
    curve = profile.entries.get(entry)
    if (profile.cache_bytes is None or work.model != CURVE or work.feature != ELEMENTS or work.size <= 0
            or not isinstance(curve, CurveEntry) or curve.feature != ELEMENTS):
        return 0.0
    rate = curve.seconds_per_unit_beyond(profile.cache_bytes / element_bytes)
    return max(work.size * rate - kernel, 0.0) if rate is not None else 0.0


def combine(profile: LatencyProfile, layers: Iterable[LayerPrediction]) -> float:
    """The model's time from its layers' overheads and kernels (module docstring)."""
    if profile.execution == SYNC:
        return profile.forward_overhead + sum(l.seconds for l in layers)
    host = device = profile.forward_overhead
    for layer in layers:   # what a layer adds in a model is the host's (a queue profile fits no weights fetch)
        host += layer.overhead_seconds + layer.fresh_seconds + layer.context_seconds
        device = max(host, device) + layer.kernel_seconds
    return max(host, device)


def _execution_note(profile: LatencyProfile) -> str:
    if profile.execution == SYNC:
        return "eager execution: the sum of the layers' overheads and kernels, as fitted on the device"
    return "eager execution on a device queue: the host's overheads and the device's kernels overlap"


# ----------------------------------------------------------------------------- fitting
@dataclass(frozen=True)
class Sample:
    """One microbenchmark: an entry's features and the median seconds per call measured."""

    key: str
    seconds: float
    flops: float = 0.0
    arguments: dict[str, float] = field(default_factory=dict)
    feature: str = ELEMENTS
    size: float = 0.0
    data: dict[str, float] = field(default_factory=dict)
    host: float = 0.0     # on a queue device: the host's seconds to enqueue one call (0: not measured)


def fit_overhead(seconds: Iterable[float]) -> float:
    """An entry's overhead: the median of its calls on the smallest tensors."""
    values = list(seconds)
    if not values:
        raise LatencyError("no timing to fit an overhead to")
    return rounded(statistics.median(values))


HOST_POINTS = 6     # at most this many points of a host curve (fit_host)


def fit_host(samples: list[Sample], by_work: bool) -> tuple[tuple[float, float], ...]:
    """The host's time to enqueue a call against its size (a call's FLOPs where `by_work`, else its
    curve feature), for a queue device: the samples that measured it, in ascending size, cut into
    at most HOST_POINTS runs of about equal count, each run a point at its median size and median
    host time (medians: a host stalled by another process in one sample moves no point). Empty
    where no sample measured the host."""
    measured = sorted(((s.flops if by_work else s.size), s.host) for s in samples if s.host > 0)
    measured = [(x, host) for x, host in measured if x > 0]
    if not measured:
        return ()
    count = min(HOST_POINTS, len(measured))
    runs: list[list[tuple[float, float]]] = []
    for index in range(count):
        run = measured[index * len(measured) // count:(index + 1) * len(measured) // count]
        if runs and rounded(statistics.median(x for x, _ in run)) <= rounded(statistics.median(x for x, _ in runs[-1])):
            runs[-1] += run                     # runs of one size (as the profile keeps sizes): one point
        else:
            runs.append(run)
    return tuple((rounded(statistics.median(x for x, _ in run)), rounded(statistics.median(h for _, h in run)))
                 for run in runs)


def isotonic(values: list[float]) -> list[float]:
    """The closest non-decreasing sequence in least squares (pool adjacent violators): a kernel's
    time does not fall as its work grows, so a dip measured between two sizes is noise."""
    blocks: list[list[float]] = []          # [mean, weight]
    for value in values:
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m1, w1), (m2, w2) = blocks[-2], blocks.pop()
            blocks[-1] = [(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2]
    out: list[float] = []
    for mean, weight in blocks:
        out.extend([mean] * int(weight))
    return out


def fit_curve(key: str, samples: list[Sample], overhead: float, subtract_overhead: bool = True) -> CurveEntry:
    """A curve entry: per measured size the median time, less the overhead (on a sync device),
    made non-decreasing (isotonic)."""
    if not samples:
        raise LatencyError(f"no samples to fit '{key}'")
    features = {s.feature for s in samples}
    if len(features) != 1:
        raise LatencyError(f"'{key}' has samples of several features: {', '.join(sorted(features))}")
    by_size: dict[float, list[float]] = {}
    for sample in samples:
        if sample.size > 0:
            by_size.setdefault(sample.size, []).append(sample.seconds)
    sizes = sorted(by_size)
    kernels = [max(statistics.median(by_size[x]) - (overhead if subtract_overhead else 0.0), 0.0) for x in sizes]
    points = tuple((float(x), rounded(y)) for x, y in zip(sizes, isotonic(kernels)))
    return CurveEntry(key, overhead, features.pop(), points, len(samples))


def _hat_weights(knots: list[float], value: float) -> list[tuple[int, float]]:
    """Linear interpolation weights of `value` between the knots (log2 values), held at the ends."""
    if value <= knots[0]:
        return [(0, 1.0)]
    if value >= knots[-1]:
        return [(len(knots) - 1, 1.0)]
    index = bisect.bisect_right(knots, value)
    t = (value - knots[index - 1]) / (knots[index] - knots[index - 1])
    return [(index - 1, 1.0 - t), (index, t)]


def knots_for(values: Iterable[float], step: float) -> list[float]:
    """log2 knots every `step` covering the values' range (empty when they are all one value)."""
    logs = [math.log2(v) for v in values]
    low, high = min(logs), max(logs)
    if high - low < 1e-9:
        return []
    first = math.floor(low / step) * step
    knots = [max(first, low)]
    k = first + step
    while k < high - 1e-9:
        if k > knots[-1] + 1e-9:
            knots.append(k)
        k += step
    knots.append(high)
    return knots


KNOT_STEPS = {"in_channels": 1.0, "out_channels": 1.0, "work": 1.0, "groups": 2.0, "alignment": 1.0}   # in log2
# factors that keep a knot at every step however few the samples: an alignment is a power of two
# up to 32, and the step that matters (on AVX-512, from 8 lanes to 16) falls between two of them
EVERY_KNOT = ("alignment",)
# factors whose rate never falls as their argument grows: a count divisible by a larger power of
# two fills the lanes at least as well (a fit of few samples otherwise found dips, a class's
# 16-lane counts at 0.56 of its 4-lane ones); their knots are made non-decreasing and held
NEVER_SLOWER = ("alignment",)
HOLD = 1e3            # the weight of a held knot's row: the solve keeps it to a thousandth
SMOOTHING = 0.3       # weight of each table's second differences (curvature) in the fit
RIDGE = 1e-3          # a little pull of every knot value towards zero, so each solve is well posed
MIN_DATA_SAMPLES = 12 # a class fits a data term from this many samples on
# the most copies of one tensor a call's data term prices: a kernel converts each tensor between
# layouts once or so. Unbounded, the smallest grids' samples (a call all weights, little work)
# made the fit trade the work factor for copies: a profile of the development machine fitted 13.7
# copies of the weights to its 1x1 class, and priced a 1024 -> 2048 1x1 convolution on a 7 x 7
# map at batch 1 at 1.60 ms against 0.59 ms measured alone; the samples' correction takes up
# what the bound leaves near them
MAX_COPIES = 2.0


def fit_efficiency(key: str, samples: list[Sample], overhead: float, subtract_overhead: bool = True,
                   copy: CurveEntry | None = None, rounds: int = 4) -> EfficiencyEntry:
    """An efficiency entry fitted to a class's samples (module docstring). Without a copy curve
    (or samples without data sizes) the data term stays empty; with one, `rounds` turns of: the
    compute term fitted to what the data term leaves, the data term to what the compute term
    leaves. Then each sample's measured kernel over the fit's: the residuals of the correction."""
    base = [(s, s.seconds - (overhead if subtract_overhead else 0.0)) for s in samples if s.flops > 0 and s.seconds > 0]
    if not base:
        raise LatencyError(f"no usable samples to fit '{key}'")
    # the data term's three coefficients want samples enough to tell them from the compute term
    with_data = copy is not None and len(base) >= MIN_DATA_SAMPLES and all(s.data for s, _ in base)
    coefficients = {name: 0.0 for name in DATA} if with_data else {}
    peak, factors = 0.0, {}
    for _ in range(rounds if with_data else 1):
        left = []
        for sample, kernel in base:
            data = sum(c * copy_seconds(copy, sample.data.get(n, 0.0)) for n, c in coefficients.items()) \
                if with_data else 0.0
            # a kernel well under the overhead (or the data term) is mostly noise: at least a tenth of the total
            left.append((sample, max(kernel - data, 0.1 * sample.seconds)))
        peak, factors = _fit_compute(left)
        if with_data:
            coefficients = _fit_data(base, peak, factors, copy)
    fitted = EfficiencyEntry(key, overhead, peak, factors, len(samples), {n: c for n, c in coefficients.items() if c})
    rows = []
    located = LOCATION if all("alignment" in s.arguments for s, _ in base) else LOCATION_WITHOUT_ALIGNMENT
    for sample, kernel in base:
        smooth = fitted.fitted_seconds(sample.flops, sample.arguments, sample.data, copy)
        if smooth > 0 and all(sample.arguments.get(name, 0) > 0 for name in located):
            # the same floor as the fit's: a kernel lost in the overhead says little
            ratio = max(kernel, 0.1 * sample.seconds) / smooth
            rows.append(tuple(float(sample.arguments[name]) for name in located) + (rounded(ratio),))
    return replace(fitted, residuals=tuple(rows))


def _fit_compute(usable: list[tuple[Sample, float]]) -> tuple[float, dict[str, tuple[tuple[float, float], ...]]]:
    """Least squares on log(FLOP/s) = log(peak) + the factors' log values (linear in log2 of their
    arguments between knots, curvature penalised); each factor then scaled to a largest value of 1."""
    # a factor whose argument some sample lacks (one made by hand, or read from an older profile) is left out
    scale, names = 1.0, [name for name in FACTORS if all(name in s.arguments for s, _ in usable)]
    while True:   # coarser knots where the samples are few, then fewer factors: two samples per unknown
        tables = {name: knots_for([s.arguments[name] for s, _ in usable],
                                  KNOT_STEPS[name] * (1.0 if name in EVERY_KNOT else scale)) for name in names}
        tables = {name: knots for name, knots in tables.items() if knots}
        if 1 + sum(map(len, tables.values())) <= len(usable) / 2 or not tables:
            break
        if scale <= 64:
            scale *= 2
        else:   # the factor whose argument the samples spread least over goes first
            names.remove(min(tables, key=lambda n: max(math.log2(s.arguments[n]) for s, _ in usable)
                             - min(math.log2(s.arguments[n]) for s, _ in usable)))
    columns = 1 + sum(len(knots) for knots in tables.values())
    rows, targets = [], []
    for sample, kernel in usable:
        row = [0.0] * columns
        row[0] = 1.0
        offset = 1
        for name, knots in tables.items():
            for index, weight in _hat_weights(knots, math.log2(sample.arguments[name])):
                row[offset + index] += weight
            offset += len(knots)
        rows.append(row)
        targets.append(math.log(sample.flops / kernel))
    penalties = []
    offset = 1
    for knots in tables.values():
        for index in range(1, len(knots) - 1):
            row = [0.0] * columns
            row[offset + index - 1], row[offset + index], row[offset + index + 1] = 1.0, -2.0, 1.0
            penalties.append([SMOOTHING * v for v in row])
        offset += len(knots)
    for index in range(1, columns):
        row = [0.0] * columns
        row[index] = RIDGE
        penalties.append(row)
    system, rhs = rows + penalties, targets + [0.0] * len(penalties)
    solution = least_squares(system, rhs)
    offset = 1
    for name, knots in tables.items():
        if name in NEVER_SLOWER:   # its knots made non-decreasing, held there while the rest is solved again
            for index, value in enumerate(isotonic(solution[offset:offset + len(knots)])):
                row = [0.0] * columns
                row[offset + index] = HOLD
                system, rhs = system + [row], rhs + [HOLD * value]
            solution = least_squares(system, rhs)
        offset += len(knots)
    log_peak = solution[0]
    factors = {}
    offset = 1
    for name, knots in tables.items():
        values = solution[offset:offset + len(knots)]
        top = max(values)
        log_peak += top
        factors[name] = tuple((rounded(2 ** k), rounded(math.exp(v - top))) for k, v in zip(knots, values))
        offset += len(knots)
    return rounded(math.exp(log_peak)), factors


def _fit_data(base: list[tuple[Sample, float]], peak: float, factors: dict, copy: CurveEntry) -> dict[str, float]:
    """d_in, d_out, d_weights from 0 to MAX_COPIES minimising the relative error of compute + data
    against the kernels measured."""
    entry = EfficiencyEntry("", 0.0, peak, factors)
    rows, targets = [], []
    for sample, kernel in base:
        rest = kernel - entry.compute_seconds(sample.flops, sample.arguments)
        rows.append([copy_seconds(copy, sample.data.get(name, 0.0)) / sample.seconds for name in DATA])
        targets.append(rest / sample.seconds)
    return {name: rounded(x) for name, x in zip(DATA, bounded_least_squares(rows, targets, RIDGE, MAX_COPIES))}


def bounded_least_squares(rows: list[list[float]], targets: list[float], ridge: float = 0.0,
                          upper: float = math.inf) -> list[float]:
    """The x with 0 <= x <= upper minimising |A x - b|^2 (+ ridge^2 |x|^2): every way of holding
    each unknown at 0, at `upper` or free, the free ones solved by least squares, the best within
    the bounds kept; all zero where none beats that. Exhaustive, for the handful of unknowns it is
    asked (a data term's three, the in-model figures)."""
    count = len(rows[0])
    states = (0.0, None) + ((upper,) if math.isfinite(upper) else ())     # None: free
    best, best_error = [0.0] * count, sum(t * t for t in targets)
    for held in itertools.product(states, repeat=count):
        free = [i for i in range(count) if held[i] is None]
        x = [0.0 if value is None else value for value in held]
        rest = [t - sum(row[i] * x[i] for i in range(count)) for row, t in zip(rows, targets)]
        if free:
            sub = [[row[i] for i in free] for row in rows]
            if not any(any(v for v in row) for row in sub):
                continue
            penalty = [[ridge if j == i else 0.0 for j in range(len(free))] for i in range(len(free))] if ridge else []
            try:
                solution = least_squares(sub + penalty, rest + [0.0] * len(penalty))
            except LatencyError:
                continue
            if min(solution) < 0 or max(solution) > upper:
                continue
            for i, value in zip(free, solution):
                x[i] = value
        error = sum((sum(v * xi for v, xi in zip(row, x)) - t) ** 2 for row, t in zip(rows, targets))
        if error < best_error:
            best, best_error = x, error
    return best


def least_squares(rows: list[list[float]], targets: list[float]) -> list[float]:
    """The x minimising |A x - b|^2, by the normal equations and Gaussian elimination with partial
    pivoting (the systems here have tens of unknowns)."""
    n = len(rows[0])
    normal = [[sum(r[i] * r[j] for r in rows) for j in range(n)] for i in range(n)]
    rhs = [sum(r[i] * b for r, b in zip(rows, targets)) for i in range(n)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(normal[r][col]))
        if abs(normal[pivot][col]) < 1e-12:
            raise LatencyError("the fit is singular: the samples do not determine every factor")
        normal[col], normal[pivot] = normal[pivot], normal[col]
        rhs[col], rhs[pivot] = rhs[pivot], rhs[col]
        for r in range(col + 1, n):
            factor = normal[r][col] / normal[col][col]
            if factor:
                for c in range(col, n):
                    normal[r][c] -= factor * normal[col][c]
                rhs[r] -= factor * rhs[col]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (rhs[r] - sum(normal[r][c] * x[c] for c in range(r + 1, n))) / normal[r][r]
    return x


def fit_fallback(entries: dict[str, Entry], samples: list[Sample], roofline_seconds: dict[int, float],
                 subtract_overhead: bool = True) -> Fallback:
    """The rule for op kinds without an entry: the median overhead of the entries, and the median
    over the samples of roofline time / kernel time (how close this device's eager kernels come
    to the roofline), counting samples whose kernel is at least the overhead."""
    overheads = [e.overhead for e in entries.values()]
    ratios = []
    for index, sample in enumerate(samples):
        entry = entries.get(sample.key)
        bound = roofline_seconds.get(index)
        if entry is None or not bound:
            continue
        kernel = sample.seconds - (entry.overhead if subtract_overhead else 0.0)
        if kernel >= entry.overhead:
            ratios.append(bound / kernel)
    if not overheads or not ratios:
        raise LatencyError("no samples to fit the fallback rule to")
    return Fallback(rounded(statistics.median(overheads)), rounded(statistics.median(ratios)))
