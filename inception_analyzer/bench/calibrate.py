"""`calibrate`: microbenchmarks of single ops on this device, and the latency profile fitted to them.

Every op kind is timed through the registry's own torch module (`make_module`, or `combine` for a
merge), as the built models call it, on a grid of shapes that CNNs use: convolutions by kernel,
stride and grouping over input and output channels, grid and batch; linear layers over features
and batch; every other op kind over sizes from one element to tens of millions. A case is timed as
`bench` times a model (bench/timing.py: warm-up, then enough iterations for a minimum time,
perf_counter on the CPU, CUDA events on CUDA) and its median kept. Each case's entry and
features come from analysis/latency.py's `layer_work`, the function the prediction uses, so the
fit sees exactly what the prediction will ask. Nothing here times a model: the fitted profile
never saw one.
"""
from __future__ import annotations

import datetime
import itertools
import math
import statistics
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import torch

from ..analysis.latency import (COPY_KEY, CURVE, EFFICIENCY, ELEMENTS, EXECUTIONS, NATIVE, QUEUE, SYNC, CurveEntry,
                                EfficiencyEntry, Fallback, LatencyError, LatencyProfile, LayerWork, Roofs, Sample,
                                fit_curve, fit_efficiency, bounded_least_squares, fit_fallback, fit_host, fit_overhead,
                                layer_work, rounded)
from ..analysis.latency_file import MAX_TEXT
from ..analysis.roofline import DeviceProfile
from ..build import resolve_dtype
from ..dtypes import get_dtype
from ..ops import OPS, Timing
from .host_allocator import measure_allocator, warm_allocations
from .limits import BenchError
from .machine import MemoryProbe, OthersCpu, environment, last_level_cache_bytes, measure_cpu_with_torch, wait_for_quiet
from .progress import Progress
from .timing import iterations_for, seconds_per_iteration, synchronize, time_iterations, time_on_device

GRIDS = ("full", "quick")
COPY = "(copy)"               # a case that copies its input (Tensor.clone): the profile's copy curve
MAX_ELEMENTS = 2**25          # the largest tensor a case makes (128 MiB at fp32), unless the device is fast
QUIET = 0.05                  # the share of the CPUs other processes may take while a case is timed
RETRIES = 3                   # times a disturbed window of cases is timed again
WINDOW = 0.5                  # seconds of cases checked together for other processes' work
QUIET_WAIT = 60.0             # seconds to wait for a quiet machine before timing a case anyway
MAX_QUIET_WAIT = 600.0        # seconds of such waiting in a whole calibration, after which it times regardless
# seconds of calls a case is timed for. A queue device's calls are timed in groups on the device
# itself (bench/timing.py's time_on_device), each group behind a hold: with the CPU's 0.03 s an
# H200 timed 884 of the grid's samples within a budget of 60 s and 1,185 within 75 s
# (docs/benchmarks.md), the budget cutting 561 and 260
MIN_TIME = {SYNC: 0.03, QUEUE: 0.01}
QUICK_MIN_TIME = 0.005
WATCH_INTERVAL = 1.0          # seconds between two looks at a CPU memory's speed (MemoryWatch; 4 to 10 ms each)


@dataclass(frozen=True)
class Case:
    """One microbenchmark: an op kind with keyword arguments, input shapes per image, a batch."""

    op: str
    args: dict[str, Any]
    inputs: tuple[tuple[int, ...], ...]
    batch: int
    in_place: bool = False
    overhead: bool = False        # times the entry's overhead (its smallest tensors), not a sample
    series: str = ""              # a part of a class timed as a series of its own (spread over the run)

    def describe(self) -> str:
        shapes = " + ".join("x".join(str(d) for d in s) for s in self.inputs)
        return f"{self.op} {shapes} batch {self.batch}" + (" in place" if self.in_place else "")


# ----------------------------------------------------------------------------- the grid
def halton(index: int, base: int) -> float:
    """The van der Corput radical inverse: evenly spread points in [0, 1) (a Halton design)."""
    result, fraction = 0.0, 1.0
    while index:
        fraction /= base
        result += fraction * (index % base)
        index //= base
    return result


def _log_uniform(u: float, low: float, high: float) -> int:
    return int(round(math.exp(math.log(low) + u * (math.log(high) - math.log(low)))))


@dataclass(frozen=True)
class ConvClass:
    kernel: tuple[int, int]
    stride: int
    grouping: str = ""                       # "", "depthwise", "grouped"
    grid: tuple[int, int] = (4, 112)         # output grid range
    samples: int = 24
    small: int = 0                           # batch-1 samples on inputs of SMALL_INPUT elements


# a framework may run a batch-1 call on a small input on a kernel of its own (torch on a CPU: its
# native convolution rather than oneDNN's, up to 20,480 elements): every dense class gets samples
# there, so the entry `prepare` files them under (analysis/latency.py: NATIVE) has its own fit
SMALL_INPUT = (2**9, 2**15)
SMALL_SAMPLES = 12
DENSE_CONVS = [ConvClass((1, 1), 1, samples=52), ConvClass((3, 3), 1, samples=48), ConvClass((1, 1), 2),
               ConvClass((3, 3), 2, samples=32), ConvClass((5, 5), 1), ConvClass((5, 5), 2), ConvClass((7, 7), 1),
               ConvClass((7, 7), 2, grid=(7, 112)), ConvClass((1, 3), 1), ConvClass((3, 1), 1),
               ConvClass((1, 7), 1), ConvClass((7, 1), 1), ConvClass((11, 11), 4, grid=(7, 56), samples=12)]
# a 1x1 convolution on a 1 x 1 map: the squeeze-and-excitation and global-context gates of
# EfficientNet, MobileNetV3, RegNetY..., called on each image's pooled vector; at batch 8 on the
# development machine such a call took 40 us, and a fit of maps from 4 x 4 up priced it at 5
GATE_CONVS = [ConvClass((1, 1), 1, grid=(1, 1), samples=16)]
GROUPED_CONVS = [ConvClass((3, 3), 1, "depthwise", samples=32), ConvClass((3, 3), 2, "depthwise", samples=32),
                 ConvClass((5, 5), 1, "depthwise", samples=32), ConvClass((5, 5), 2, "depthwise", samples=32),
                 ConvClass((3, 3), 1, "grouped"), ConvClass((3, 3), 2, "grouped")]
QUICK_CONVS = [ConvClass((1, 1), 1, samples=6, grid=(2, 8)), ConvClass((3, 3), 1, samples=6, grid=(2, 8))]
BATCHES = (1, 8, 32)
MAX_CASE_MACS = 3e10         # multiply-adds of one conv call (up to a few hundred ms here), unless the device is fast


# A device much faster than the development CPU gets larger cases, so that its grid reaches the
# layers models run there: on the H200 of docs/benchmarks.md the limits above left vgg16's
# convolutions at batch 32 (5.9e10 multiply-adds, outputs of up to 2^26.6 elements) beyond every
# sample of their class, and the prediction held the class's efficiency at its largest sample's.
# A limit grows to what the device's roofs run in the time below, never past what CNNs reach at
# the grid's batches (MOST_ELEMENTS), and never shrinks: on the development CPU (172 GFLOP/s,
# 27 GB/s) both stay where they are.
LARGEST_CALL_SECONDS = 0.05   # a case's multiply-adds at the device's matmul roof
LARGEST_TENSOR_SECONDS = 0.005  # a case's largest tensor read and written at its memory roof
MOST_ELEMENTS = 2**27         # batch 32 of a 2^22-element map (vgg16's 64 x 224 x 224 activations: 2^26.6)


@dataclass(frozen=True)
class CaseLimits:
    """How large a case may be: its call's multiply-adds and its largest tensor's elements."""

    macs: float = MAX_CASE_MACS
    elements: int = MAX_ELEMENTS


def case_limits(roofs: Roofs, element_bytes: int) -> CaseLimits:
    """The limits on a device of these roofs (the comment above LARGEST_CALL_SECONDS)."""
    macs = roofs.matmul_flops * LARGEST_CALL_SECONDS / 2
    elements = roofs.memory_bandwidth * LARGEST_TENSOR_SECONDS / (2 * element_bytes)
    if roofs.memory_bytes:           # room for a case's input, output and the framework's copies of them
        elements = min(elements, roofs.memory_bytes / (8 * element_bytes))
    top = MAX_ELEMENTS
    while top < MOST_ELEMENTS and 2 * top <= elements:
        top *= 2
    return CaseLimits(max(MAX_CASE_MACS, macs), top)


# channel counts CNNs use (multiples of 8, and the image's 3 for a stem); a feature map per image
# holds 2^13 to 2^21 elements (a 2048-channel 7x7 map is 2^16.6, a 64-channel 112x112 one 2^19.6)
CHANNELS = (16, 24, 32, 48, 64, 96, 128, 160, 192, 256, 320, 384, 512, 768, 1024, 1536, 2048)
GROUP_WIDTHS = (4, 8, 16, 24, 32, 48, 64)
MAP_ELEMENTS = (2**13, 2**21)


def _pick(u: float, values: tuple) -> int:
    return values[min(int(u * len(values)), len(values) - 1)]


# how often a sample's channel count is moved off its vector lanes, and by how much: CNNs use
# counts that are multiples of 16 but not 32 (48, 80, 112, 144), of 8 but not 16 (24, 40, 72,
# 120, 184, 1000 classes), of 4 (116, 232 in ShuffleNetV2) and seldom less; CHANNELS are mostly
# multiples of 32. Drawn apart from the count itself, so the fit tells the alignment's factor
# from the channels' (analysis/latency.py)
MISALIGNMENTS = ((0.5, 0), (0.65, 16), (0.85, 8), (0.96, 4), (1.0, 2))


def _rounded_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _misaligned(channels: int, u: float) -> int:
    """`channels`, or a count `step` more (72 for 64 with step 8), by the draw u."""
    step = next(step for upto, step in MISALIGNMENTS if u < upto)
    return channels + step


def conv_cases(conv: ConvClass, quick: bool, limits: CaseLimits = CaseLimits()) -> list[Case]:
    """The class's samples, spread by a Halton design over channels, log grid and batch within
    the sizes CNNs use and the device's `limits`, and its overhead case (the smallest tensors the
    class takes)."""
    kh, kw = conv.kernel
    padding = (kh // 2, kw // 2)
    cases = []
    index = 0
    while len(cases) < conv.samples and index < 100 * conv.samples:
        index += 1
        u = [halton(index, base) for base in (2, 3, 5, 7, 11, 13, 17)]
        batch = (1, 2)[int(u[3] * 2)] if quick else BATCHES[int(u[3] * len(BATCHES))]
        out_grid = _log_uniform(u[2], *conv.grid)
        if conv.grouping == "depthwise":
            groups = cin = cout = _misaligned(_pick(u[0], CHANNELS[:4] if quick else CHANNELS), u[5])
        elif conv.grouping == "grouped":     # the widths a group has (4, 8, 16, 24...) vary its alignment
            width = _pick(u[0], GROUP_WIDTHS[:3] if quick else GROUP_WIDTHS)       # channels per group
            groups = _pick(u[1], (2, 4) if quick else (2, 4, 8, 16, 32, 64))
            cin = cout = width * groups
        else:
            groups = 1
            cin = 3 if u[4] < 0.08 else _misaligned(_pick(u[0], CHANNELS[:4] if quick else CHANNELS), u[5])
            cout = _misaligned(_pick(u[1], CHANNELS[:4] if quick else CHANNELS), u[6])
        grid = (out_grid - 1) * conv.stride + kh - 2 * padding[0], (out_grid - 1) * conv.stride + kw - 2 * padding[1]
        grid = (max(grid[0], kh), max(grid[1], kw))
        if not quick and conv.grid != (1, 1) and not (MAP_ELEMENTS[0] <= cout * out_grid**2 <= MAP_ELEMENTS[1]
                                                      and cin * grid[0] * grid[1] <= 2 * MAP_ELEMENTS[1]):
            continue
        # the output of the grid as raised to the kernel (a 7x7 map for a 7x7 kernel), not out_grid
        outputs = (((grid[0] + 2 * padding[0] - kh) // conv.stride + 1)
                   * ((grid[1] + 2 * padding[1] - kw) // conv.stride + 1))
        macs = batch * cout * outputs * (cin // groups) * kh * kw
        # keep a call within the limits' multiply-adds and its tensors within their elements: fewer images
        while batch > 1 and (macs > limits.macs or batch * max(cin, cout) * grid[0] * grid[1] > limits.elements):
            batch //= 2
            macs //= 2
        if macs > limits.macs:
            continue
        cases.append(Case("conv", {"out": cout, "kernel": list(conv.kernel), "stride": conv.stride,
                                   "padding": list(padding), "groups": groups, "bias": False},
                          ((cin, *grid),), batch, series="gate" if conv.grid == (1, 1) else ""))
    for index in range(1, conv.small + 1):
        u = [halton(index, base) for base in (2, 3, 5)]
        cin, cout = _pick(u[0], CHANNELS[:10]), _pick(u[1], CHANNELS[:10])
        side = max(math.isqrt(max(_log_uniform(u[2], *SMALL_INPUT) // cin, 1)), kh, kw)
        cases.append(Case("conv", {"out": cout, "kernel": list(conv.kernel), "stride": conv.stride,
                                   "padding": list(padding), "groups": 1, "bias": False}, ((cin, side, side),), 1,
                          series="small"))
    # the smallest conv of the class's kind: 1 channel; depthwise 2 channels in 2 groups; grouped 4 in
    # 2; at batch 1 and 2, so each kernel the framework picks between has its overhead timed
    channels, groups = {"": (1, 1), "depthwise": (2, 2), "grouped": (4, 2)}[conv.grouping]
    for batch in (1, 2):
        cases.append(Case("conv", {"out": channels, "kernel": list(conv.kernel), "stride": conv.stride,
                                   "padding": list(padding), "groups": groups, "bias": False},
                          ((channels, kh, kw),), batch, overhead=True))
    return cases


def linear_cases(quick: bool) -> list[Case]:
    cases = []
    count = 6 if quick else 48
    index = 0
    while len(cases) < count:
        index += 1
        u = [halton(index, base) for base in (2, 3, 5, 7, 11)]
        # whole vectors of features as a network's layers have them (2048, 4096, 1280), or not (1000)
        features_in = _misaligned(_rounded_up(_log_uniform(u[0], 16, 256 if quick else 25088), 32), u[3])
        features_out = _misaligned(_rounded_up(_log_uniform(u[1], 10, 256 if quick else 4096), 32), u[4])
        batch = (1, 8)[int(u[2] * 2)] if quick else (1, 2, 8, 32, 128)[int(u[2] * 5)]
        if features_in * features_out > 2 * 10**8:
            continue
        cases.append(Case("linear", {"out": features_out}, ((features_in,),), batch))
    cases.append(Case("linear", {"out": 1}, ((1,),), 1, overhead=True))
    return cases


# the shapes of feature maps along a curve: a map of C channels on an H x H grid, from C = 64 on
# 2x2 upwards; each step doubles the elements (x4 in the quick grid)
def curve_shapes(quick: bool, growth: int = 1, channels: int = 64, most: int = MAX_ELEMENTS
                 ) -> list[tuple[int, int, int, int]]:
    """(batch, C, H, W) of growing size, up to `most` elements per tensor (2^12 in the quick grid),
    or that divided by `growth` for an op kind whose output is `growth` times its input."""
    top = 2**12 if quick else most // growth
    shapes, elements = [], channels * 4
    while elements <= top:
        plane = elements // channels
        side = int(math.isqrt(plane))
        batch = 1
        while side > 112:                    # beyond a 112 x 112 map, more images instead
            batch *= 4
            side //= 2
        shapes.append((batch, channels, side, max(plane // (batch * side), 1)))
        elements *= 4 if quick else 2
    return shapes


def curve_cases(quick: bool, limits: CaseLimits = CaseLimits()) -> list[Case]:
    """Every op kind priced by a curve, each series its op kind names (OpKind.timings) and again in
    place where the op kind can run in place: a case per size and its overhead case (its smallest
    tensors); then the device's copy of a tensor, the data term of convolutions and linear layers."""
    cases: list[Case] = []
    for op in OPS.values():
        for timing in op.timings:
            if quick and not timing.quick:
                continue
            cases.extend(timing_cases(op.name, timing, quick, limits=limits))
            if op.in_place_capable:
                cases.extend(timing_cases(op.name, replace(timing, args={**timing.args, "inplace": True}), quick,
                                          in_place=True, limits=limits))
    return cases + timing_cases(COPY, Timing(), quick, limits=limits)


def timing_cases(op: str, timing: Timing, quick: bool, in_place: bool = False,
                 limits: CaseLimits = CaseLimits()) -> list[Case]:
    """One series: a case per size of curve_shapes (a size whose map is narrower than the
    op kind's window left out), then its overhead case on the smallest tensors it takes."""
    cases = []
    if timing.sizes:
        for batch, c, h, w in curve_shapes(quick, timing.growth, most=limits.elements):
            if min(h, w) < timing.window:
                continue
            shape = (c * h * w,) if timing.vector else (c, h, w)
            inputs = (shape, (c, 1, 1)) if timing.gate else (shape,) * timing.maps
            cases.append(Case(op, dict(timing.args), inputs, batch, in_place))
    # the smallest map: 1 x 1 of the fewest channels (a window's: twice the window, so no global pool)
    side = 2 * timing.window if timing.window > 1 else 1
    tiny = (1,) if timing.vector else (timing.channels, side, side)
    inputs = (tiny, (timing.channels, 1, 1)) if timing.gate else (tiny,) * timing.maps
    cases.append(Case(op, dict(timing.args), inputs, 1, in_place, overhead=True))
    return cases


LEAD_SAMPLES = 3     # every series' first samples, taken round-robin before the rest (calibration_cases)
# Each entry's overhead (its calls on the smallest tensors) is timed this many times, each look
# for 1/OVERHEAD_LOOKS of a case's time: before the samples, then at even steps through them,
# and the entry's overhead is the median of its looks (fit_overhead). Timed once, all together
# in the run's first seconds, one slow spell set every entry's: over eleven calibrations of the
# Zen 3 of docs/benchmarks.md within a day, the 20 entries whose overhead is 20 us or more stood at
# 0.92 to 1.54 times their median over the eleven (each profile's median entry), a profile's
# entries high or low together; and an overhead prices every layer of its entry once
OVERHEAD_LOOKS = 3


def calibration_cases(grid: str = "full", limits: CaseLimits = CaseLimits()) -> list[Case]:
    """Every case of the grid (within the device's `limits`: case_limits), in the order they are
    timed: first every entry's overhead, then
    each series' first LEAD_SAMPLES samples round-robin across the series, then the rest of
    every series in proportion to its length. Each series' own samples come in an order that
    spreads them (a Halton design already is; a curve's sizes go ends first, then midpoints), so
    a run cut short by its time budget still has every entry, each over its whole range, and
    a run cut late loses the same share of each. The overheads come again at even steps through
    the samples, OVERHEAD_LOOKS times in all (the comment above it)."""
    if grid not in GRIDS:
        raise BenchError(f"unknown calibration grid '{grid}' (use {' or '.join(GRIDS)})")
    quick = grid == "quick"
    convs = QUICK_CONVS if quick else [replace(c, small=SMALL_SAMPLES) for c in DENSE_CONVS] + GATE_CONVS + GROUPED_CONVS
    cases = [*itertools.chain.from_iterable(conv_cases(c, quick, limits) for c in convs), *linear_cases(quick),
             *curve_cases(quick, limits)]
    series: dict[tuple, list[Case]] = {}
    for case in cases:
        if not case.overhead:
            series.setdefault(_series_of(case), []).append(case)
    overheads = [case for case in cases if case.overhead]
    ordered: list[Case] = []
    spread = [_spread(members) if members[0].op not in ("conv", "linear") else members
              for members in series.values()]
    for index in range(LEAD_SAMPLES):
        ordered.extend(members[index] for members in spread if index < len(members))
    # the rest in proportion to each series' length: a cut run loses the same share of every
    # series' last (densest) samples. Taken round-robin, the cut fell on the longest series alone,
    # the dense 1x1 and 3x3 classes that price most of a model: 69 cases cut by the time budget
    # took the 1x1/1 class from 52 samples to 32 and the 3x3/1 from 40 to 24
    rest = sorted(((index - LEAD_SAMPLES + 0.5) / (len(members) - LEAD_SAMPLES), number, index)
                  for number, members in enumerate(spread) for index in range(LEAD_SAMPLES, len(members)))
    ordered.extend(spread[number][index] for _, number, index in rest)
    steps = [round(look * len(ordered) / OVERHEAD_LOOKS) for look in range(OVERHEAD_LOOKS + 1)]
    return [case for look in range(OVERHEAD_LOOKS) for case in (*overheads, *ordered[steps[look]:steps[look + 1]])]


def _series_of(case: Case) -> tuple:
    """The cases that share an entry and a configuration (a curve's op and arguments; a conv class)."""
    if case.op == "conv":
        return ("conv", tuple(case.args["kernel"]), case.args["stride"], case.args["groups"] > 1,
                case.inputs[0][0] == case.args["groups"], case.series)
    return (case.op, tuple(sorted((k, str(v)) for k, v in case.args.items())), len(case.inputs), case.in_place)


def _spread(members: list[Case]) -> list[Case]:
    """Ends first, then the midpoints of what is left (a binary subdivision of the list)."""
    if len(members) <= 2:
        return list(members)
    order, seen = [0, len(members) - 1], {0, len(members) - 1}
    spans = [(0, len(members) - 1)]
    while spans:
        next_spans = []
        for low, high in spans:
            middle = (low + high) // 2
            if middle not in seen:
                seen.add(middle)
                order.append(middle)
            if middle - low > 1:
                next_spans.append((low, middle))
            if high - middle > 1:
                next_spans.append((middle, high))
        spans = next_spans
    return [members[i] for i in order]


# ----------------------------------------------------------------------------- timing a case
@dataclass
class Prepared:
    case: Case
    key: str
    model: str
    step: Callable[[], Any] | None       # None once timed (its tensors released)
    sample: Sample
    roofline_seconds: float = 0.0


class Normals:
    """Standard normal values drawn once (seed 0), copied into each case's inputs: on the Zen 3
    2^25 of them take 0.21 s to draw and about 0.05 s to copy, and drawing every case's inputs
    anew took about 20 s of a 211 s calibration. A case's inputs take consecutive stretches of
    the pool (from its start again where one would run past its end); what a kernel costs does
    not depend on which normal values it reads."""

    def __init__(self, count: int = MAX_ELEMENTS):
        self.pool = torch.randn(count, generator=torch.Generator(device="cpu").manual_seed(0))

    def inputs(self, batch: int, shapes: list[tuple[int, ...]], device: torch.device, dtype: torch.dtype
               ) -> list[torch.Tensor]:
        tensors, start = [], 0
        for shape in shapes:
            count = batch * math.prod(shape)
            if count > self.pool.numel():
                raise BenchError(f"a calibration input of {count} elements is larger than the pool of {self.pool.numel()}")
            if start + count > self.pool.numel():
                start = 0
            tensors.append(self.pool[start:start + count].view(batch, *shape).to(device=device, dtype=dtype, copy=True))
            start += count
        return tensors


def case_work(case: Case) -> tuple[Any, dict, list, tuple, LayerWork]:
    """(op kind, resolved arguments, input shapes, output shape, LayerWork) of a case: the layer
    it times, as a model's layer of that kind and shapes would be seen by the prediction."""
    op = OPS["identity" if case.op == COPY else case.op]
    arguments = op.bind([], dict(case.args))
    inputs = [tuple(s) for s in case.inputs]
    out = op.output_shape(arguments, inputs)
    return op, arguments, inputs, out, layer_work(op, arguments, inputs, out, case.batch, case.in_place)


def prepare(case: Case, device: torch.device, dtype: torch.dtype, roofs: DeviceProfile, dtype_name: str,
            normals: Normals) -> Prepared:
    """The case's module (through the registry), its inputs (copied from `normals`) and its
    step; its entry and features by `layer_work`, as the prediction computes them."""
    from ..analysis.cost import LayerCost
    from ..analysis.roofline import estimate_layer

    op, arguments, inputs, out, work = case_work(case)
    tensors = normals.inputs(case.batch, inputs, device, dtype)
    if case.op == COPY:
        source = tensors[0]
        target = torch.empty_like(source)   # into memory already there: the data term's copies allocate nothing
        size = 2.0 * source.numel()         # elements read and written
        return Prepared(case, COPY_KEY, CURVE, lambda: target.copy_(source),
                        Sample(COPY_KEY, 0.0, feature=ELEMENTS, size=size), 0.0)
    step, module = op_call(op, arguments, inputs, out, tensors, device, dtype)
    key = work.key + (NATIVE if runs_natively(module, tensors[0]) else "")
    sample = Sample(key, 0.0, work.flops, dict(work.arguments), work.feature, work.size, dict(work.data))
    record = LayerCost(path=case.op, op=case.op, args="", role="main", block="", stage="",
                       input_shapes=[list(s) for s in inputs], output_shape=list(out),
                       params=op.params(arguments, inputs, out), buffers=0, macs=op.macs(arguments, inputs, out),
                       other_flops=op.other_flops(arguments, inputs, out), fvcore_flops=0, activations=0,
                       weighted=op.weighted)
    bound = estimate_layer(record, roofs, dtype_name, case.batch).seconds
    return Prepared(case, key, work.model, step, sample, bound)


def op_call(op, arguments: dict, inputs: list, out, tensors: list, device: torch.device, dtype: torch.dtype
            ) -> tuple[Callable[[], Any], Any]:
    """(one call of the layer on `tensors`, its module or None): through the registry, as the built
    models call it: its module (`make_module`), or its merge (`combine`)."""
    if op.builds_parameter:               # a parameter of the model's, used as its forward pass does
        parameter = op.make_module(arguments, inputs, out).to(device=device, dtype=dtype)
        return (lambda: op.apply(parameter, tensors[0])), None
    if not op.builds_module:
        return (lambda: op.combine(tensors)), None
    module = op.make_module(arguments, inputs, out).to(device=device, dtype=dtype).eval()
    source = tensors[0]
    return (lambda: module(source)), module


def node_call(node, batch: int, device: torch.device, dtype: torch.dtype) -> Callable[[], Any]:
    """One call of a graph's layer alone, on random inputs of its shapes."""
    inputs = [tuple(s) for s in node.in_shapes]
    tensors = [torch.randn(batch, *shape, device=device, dtype=dtype) for shape in inputs]
    return op_call(node.op, node.args, inputs, tuple(node.out_shape), tensors, device, dtype)[0]


# ----------------------------------------------------------------------------- which kernel torch picks
NATIVE_BACKENDS = ("Slow2d", "SlowDilated2d")   # torch's own CPU convolutions
PROBED_BATCHES = (1, 2, 4, 8, 16, 32, 64)
MAX_PROBED_ELEMENTS = 2**24


def _conv_backend(conv: torch.nn.Conv2d, source: torch.Tensor) -> str | None:
    """The backend torch's dispatcher picks for this convolution on this input (None where the
    build cannot say)."""
    select = getattr(torch._C, "_select_conv_backend", None)
    if select is None:
        return None
    padding = [0, 0] if isinstance(conv.padding, str) else list(conv.padding)
    try:
        backend = select(source, conv.weight, conv.bias, list(conv.stride), padding, list(conv.dilation), False,
                         [0, 0], conv.groups)
    except (RuntimeError, TypeError):
        return None
    return str(backend).rsplit(".", 1)[-1]


def runs_natively(module: Any, source: torch.Tensor) -> bool:
    """Whether torch runs this call of a convolution on its own CPU kernel although oneDNN is
    there (torch's rule: a batch-1 call on a small input, where its native kernel was the faster
    when the rule was written)."""
    if not isinstance(module, torch.nn.Conv2d) or source.device.type != "cpu" \
            or not torch.backends.mkldnn.is_available():
        return False
    return _conv_backend(module, source) in NATIVE_BACKENDS


def native_rule(args: dict[str, Any], dtype: torch.dtype) -> tuple[tuple[int, int], ...]:
    """Probe, batch by batch, the largest input (elements, batch included) on which torch runs a
    convolution of this class natively: a binary search on the input's width, asking the
    dispatcher only (nothing is computed, and the probed tensors are never written). Empty when
    it never does."""
    kh, kw = args["kernel"]
    groups = args["groups"]
    conv = torch.nn.Conv2d(groups, groups, (kh, kw), args["stride"], tuple(args["padding"]), groups=groups,
                           bias=False).to(dtype=dtype)

    def native(batch: int, width: int) -> bool:
        return runs_natively(conv, torch.empty(batch, groups, kh, width, dtype=dtype))

    rows = []
    for batch in PROBED_BATCHES:
        low, high = kw, MAX_PROBED_ELEMENTS // (batch * groups * kh)
        if high < low or not native(batch, low):
            rows.append((batch, 0))
            continue
        while low < high:              # the widest input still run natively
            middle = (low + high + 1) // 2
            low, high = (middle, high) if native(batch, middle) else (low, middle - 1)
        rows.append((batch, batch * groups * kh * low))
    return tuple(rows) if any(most for _, most in rows) else ()


def time_case(prepared: Prepared, device: torch.device, min_time: float) -> float:
    """Median seconds per call, timed as bench times a model: a warm-up (oneDNN and cuDNN pick
    their kernels on the first call), then enough iterations for `min_time`. The call that sizes
    the run is the second untimed one: with a third, five timed calls of 129 cases of over 10 ms
    a call came as close to the next five (2.0% off in the median case, 9.7% in one case of ten)
    as with two (1.8%, 10.0%), and leaving it out took a Zen 3 calibration from 190 s to 166.
    On a queue device the calls are timed on the device with the host kept ahead: the kernel a
    model's device runs (time_case_and_host)."""
    return time_case_and_host(prepared, device, min_time)[0]


def time_case_and_host(prepared: Prepared, device: torch.device, min_time: float) -> tuple[float, float]:
    """time_case's median seconds per call, and on a queue device the host's seconds to enqueue
    one call (bench/timing.py's time_on_device; 0 on a CPU, whose host runs the call itself)."""
    step = prepared.step
    with torch.inference_mode():
        step()
        iterations = iterations_for(seconds_per_iteration(step, device), min_time)
        samples, host = time_on_device(step, device, iterations)
    return statistics.median(samples), host


def host_seconds(prepared: Prepared, device: torch.device, calls: int = 200) -> float:
    """On a queue device: the host's time per call, enqueuing without waiting (the overhead)."""
    step = prepared.step
    with torch.inference_mode():
        step()
        synchronize(device)
        best = math.inf
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(calls):
                step()
            best = min(best, (time.perf_counter() - start) / calls)
            synchronize(device)
    return best


# ----------------------------------------------------------------------------- the profile
@dataclass
class CalibrationRun:
    profile: LatencyProfile
    samples: list[Sample] = field(default_factory=list)
    seconds: float = 0.0
    left_out: tuple[str, ...] = ()    # entries every sample of which the time budget cut: none fitted


def measure_roofs(device: torch.device, dtype: str, quick: bool = False) -> Roofs:
    """The roofline's figures for the profile: on a CPU bench's probe (bench/machine.py); on CUDA a
    large matmul and a copy timed with CUDA events. `quick`: small probes (the quick grid's)."""
    if device.type == "cpu":
        sizes = {"matmul_size": 256, "copy_bytes": 2**22} if quick else {}
        measured = measure_cpu_with_torch(("fp32", dtype), **sizes)
        return Roofs(rounded(measured.matmul_flops[dtype]), rounded(measured.matmul_flops["fp32"]),
                     rounded(measured.memory_bandwidth))
    torch_dtype = resolve_dtype(dtype)
    size = 4096
    a = torch.randn(size, size, device=device).to(torch_dtype)
    b = torch.randn(size, size, device=device).to(torch_dtype)
    matmul = 2 * size**3 / min(time_iterations(lambda: torch.mm(a, b), device, 10))
    x = torch.randn(size, size, device=device)
    vector = 2 * size**2 / min(time_iterations(lambda: torch.mul(x, 2.0), device, 10))  # ~1 FLOP per element
    source = torch.empty(2**28, dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    bandwidth = 2 * source.numel() / min(time_iterations(lambda: target.copy_(source), device, 10))
    total = torch.cuda.get_device_properties(device).total_memory
    return Roofs(rounded(matmul), rounded(max(vector, 1.0)), rounded(bandwidth), int(total))


def calibrate(device: torch.device, dtype: str = "fp32", grid: str = "full", min_time: float | None = None,
              name: str | None = None, progress: Progress | None = None,
              max_seconds: float | None = None, quiet: float = QUIET) -> CalibrationRun:
    """Time every case of the grid on `device` (within `max_seconds` of timing, when given: the
    cases' order keeps a cut run balanced) and fit the profile (analysis/latency.py's fits).
    On a CPU, a case during which other processes used more than `quiet` of the CPUs is timed
    again (up to RETRIES times) once they have been quiet for a few seconds."""
    get_dtype(dtype)
    if device.type not in ("cpu", "cuda"):
        raise BenchError(f"calibrate times real kernels: --device cpu or cuda, not {device.type}")
    if dtype == "tf32" and device.type != "cuda":
        raise BenchError("tf32 is a mode of NVIDIA's tensor cores; on the CPU use fp32")
    started = time.monotonic()
    execution = SYNC if device.type == "cpu" else QUEUE
    assert execution in EXECUTIONS
    if min_time is None:
        min_time = QUICK_MIN_TIME if grid == "quick" else MIN_TIME[execution]
    roofs = measure_roofs(device, dtype, quick=grid == "quick")
    cases = calibration_cases(grid, case_limits(roofs, get_dtype(dtype).bytes))
    progress = progress or Progress(len(cases), f"calibrate {device.type} {dtype}")
    roofline = DeviceProfile("calibrating", "", {dtype: roofs.matmul_flops}, roofs.vector_flops,
                             roofs.memory_bandwidth)
    torch_dtype = resolve_dtype(dtype)
    with warm_allocations(device) as warm:
        allocator = measure_allocator(device) if warm else None
        return _calibrate(device, dtype, grid, min_time, name, progress, max_seconds, quiet, started, execution,
                          cases, roofs, roofline, torch_dtype, allocator)


def _calibrate(device, dtype, grid, min_time, name, progress, max_seconds, quiet, started, execution, cases, roofs,
               roofline, torch_dtype, allocator) -> CalibrationRun:
    overhead_times: dict[str, list[float]] = {}
    models: dict[str, str] = {}
    samples: list[Sample] = []
    bounds: dict[int, float] = {}
    cut, retaken, others_seen, waited = 0, 0, 0.0, 0.0
    untimed: set[str] = set()        # the entries of the cases cut by the time budget
    quiet = math.inf if grid == "quick" else quiet     # the quick grid (tests, a first look) never waits
    results: dict[int, tuple[Prepared, float, float]] = {}     # index -> (case, seconds, host seconds)
    watch = MemoryWatch() if device.type == "cpu" else None
    normals = Normals(max(case.batch * math.prod(shape) for case in cases for shape in case.inputs))
    chain = ChainTimings(device, torch_dtype, execution)

    def time_one(prepared: Prepared) -> tuple[float, float]:
        """(seconds, the host's seconds to enqueue a call: on a queue device only)."""
        if watch:
            watch.look()
        if prepared.case.overhead and execution == QUEUE:
            return host_seconds(prepared, device), 0.0
        return time_case_and_host(prepared, device, min_time / OVERHEAD_LOOKS if prepared.case.overhead else min_time)

    # On a CPU shared with other work, the cases are checked in windows of at least WINDOW seconds
    # (/proc/stat counts in hundredths of a second, too coarse for one short case): a window during
    # which other processes took more than `quiet` of the CPUs is timed again once they are quiet.
    window: list[int] = []
    others = OthersCpu().__enter__()
    window_start = time.monotonic()
    for index, case in enumerate(cases):
        if max_seconds is not None and not case.overhead and time.monotonic() - started > max_seconds:
            cut += 1
            untimed.add(COPY_KEY if case.op == COPY else case_work(case)[-1].key)
            continue
        progress.start(case.describe())
        prepared = prepare(case, device, torch_dtype, roofline, dtype, normals)
        results[index] = (prepared, *time_one(prepared))
        window.append(index)
        progress.done()
        chain.look()
        last = index == len(cases) - 1
        if time.monotonic() - window_start < WINDOW and not last:
            continue
        others.__exit__(None, None, None)
        share = others.share or 0.0
        for _ in range(RETRIES):
            # waiting comes out of the time budget: a run that has none left keeps what it timed
            left = math.inf if max_seconds is None else max_seconds - (time.monotonic() - started)
            if device.type != "cpu" or share <= quiet or waited > MAX_QUIET_WAIT or left < 2 * WINDOW:
                break
            retaken += len(window)
            start_wait = time.monotonic()
            wait_for_quiet(quiet, window=min(3.0, left / 4), give_up=min(QUIET_WAIT, MAX_QUIET_WAIT - waited, left / 4))
            waited += time.monotonic() - start_wait
            with OthersCpu() as again:
                for i in window:
                    results[i] = (results[i][0], *time_one(results[i][0]))
            share = again.share or 0.0
        others_seen = max(others_seen, share)
        for i in window:             # the window's tensors go; its figures stay
            prepared, seconds, host = results.pop(i)
            results[i] = (Prepared(prepared.case, prepared.key, prepared.model, None, prepared.sample,
                                   prepared.roofline_seconds), seconds, host)
        window = []
        others = OthersCpu().__enter__()
        window_start = time.monotonic()
    if watch:
        watch.look(now=True)
    native_classes: dict[str, dict[str, Any]] = {}       # a class with native calls -> one of its cases' arguments
    # the look (1, 2, ...) each case's index falls in: a run of overhead cases after a sample starts the next
    looks = list(itertools.accumulate(int(case.overhead and (i == 0 or not cases[i - 1].overhead))
                                      for i, case in enumerate(cases)))
    by_look: dict[int, dict[str, list[float]]] = {}
    for index in sorted(results):
        prepared, seconds, host = results[index]
        if prepared.key.endswith(NATIVE):
            native_classes.setdefault(prepared.key[:-len(NATIVE)], prepared.case.args)
        if prepared.case.overhead:
            overhead_times.setdefault(prepared.key, []).append(seconds)
            by_look.setdefault(looks[index], {}).setdefault(prepared.key, []).append(seconds)
        else:
            bounds[len(samples)] = prepared.roofline_seconds
            samples.append(Sample(prepared.key, seconds, prepared.sample.flops, prepared.sample.arguments,
                                  prepared.sample.feature, prepared.sample.size, prepared.sample.data, host))
        models[prepared.key] = prepared.model
    entries = fit_entries(samples, overhead_times, models, execution, untimed)
    left_out = sorted(key for key in untimed | set(models) if key not in entries)
    for key, args in sorted(native_classes.items()):
        if key + NATIVE in entries and isinstance(entries.get(key), EfficiencyEntry):
            entries[key] = replace(entries[key], native_up_to=native_rule(args, torch_dtype))
    try:
        fallback = fit_fallback(entries, samples, bounds, subtract_overhead=execution == SYNC)
    except LatencyError as err:
        if not cut:
            raise
        raise BenchError(f"the time budget of {max_seconds:g} s left {len(samples)} samples, too few to fit a "
                         "profile: give --max-seconds more") from err
    forward = forward_overhead(device, torch_dtype, min_time)
    layer = layer_overhead(chain, entries, fallback, forward, execution, roofs, dtype)
    cache = last_level_cache_bytes() if device.type == "cpu" else None
    draft = LatencyProfile("draft", "", device.type, dtype, execution, roofs, forward, fallback, entries,
                           layer_overhead=layer, cache_bytes=cache)
    in_model = in_model_costs(device, torch_dtype, draft, min_time) if execution == SYNC else \
        queue_in_model_costs(device, torch_dtype, draft)
    machine = environment(device)
    machine.pop("load average at start", None)
    elapsed = time.monotonic() - started
    title = f"{machine['device']}, torch {machine['torch']}" + (
        f", {machine['threads']} threads" if device.type == "cpu" else "")
    profile = LatencyProfile(
        name=name or f"{device.type}-calibrated", title=title, device=device.type, dtype=dtype, execution=execution,
        roofs=roofs, forward_overhead=forward, layer_overhead=layer, allocator=allocator, fallback=fallback,
        entries=entries, **in_model, cache_bytes=cache,
        threads=torch.get_num_threads() if device.type == "cpu" else None, machine=machine,
        date=datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        calibration={"grid": grid, "samples": len(samples), "seconds": round(elapsed, 1), "min_time": min_time,
                     **({"cut_by_time_budget": cut} if cut else {}),
                     **({"entries_left_without_samples": listed(left_out, MAX_TEXT)} if left_out else {}),
                     **({"retaken_when_disturbed": retaken, "waited_for_quiet_seconds": round(waited),
                         "others_cpu_share_at_most": round(others_seen, 3)} if device.type == "cpu" else {}),
                     **overheads_by_look(by_look, entries), **(watch.summary() if watch else {}),
                     **chain.summary()})
    return CalibrationRun(profile, samples, elapsed, tuple(left_out))


def overheads_by_look(by_look: dict[int, dict[str, list[float]]], entries: dict) -> dict[str, float]:
    """The calibration record's `overheads_look_<n>`: each look's overhead times over the fitted
    overheads (the median of an entry's calls in that look over its overhead, the median over the
    entries): a look that fell in a slow spell stands out, and the overheads' median steps over it."""
    record = {}
    for look, times in sorted(by_look.items()):
        ratios = [statistics.median(values) / entries[key].overhead for key, values in times.items()
                  if key in entries and entries[key].overhead > 0]
        if ratios:
            record[f"overheads_look_{look}"] = round(statistics.median(ratios), 3)
    return record


class Looks:
    """A figure of the machine taken every `interval` seconds through a calibration (`look`; `take`
    says how, None where it cannot) and recorded in the profile as its lowest, median and highest
    (`summary`: `<name>_looks`, `<name>_<unit>_lowest`..., each value over `per`)."""

    name, unit, per, digits = "", "", 1.0, 1

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.values: list[float] = []
        self.last = -math.inf

    def take(self) -> float | None:
        raise NotImplementedError

    def look(self, now: bool = False) -> None:
        """Take the figure, if `interval` has passed since the last look (or `now`)."""
        if now or time.monotonic() - self.last >= self.interval:
            value = self.take()
            if value is not None:
                self.values.append(value)
                self.last = time.monotonic()

    def summary(self) -> dict[str, float | int]:
        """The calibration record's lines."""
        if not self.values:
            return {}
        figures = {"lowest": min(self.values), "median": statistics.median(self.values), "highest": max(self.values)}
        return {f"{self.name}_looks": len(self.values),
                **{f"{self.name}_{self.unit}_{which}": round(value / self.per, self.digits)
                   for which, value in figures.items()}}


class MemoryWatch(Looks):
    """A CPU memory's speed (MemoryProbe: a copy beyond the cache), looked at every WATCH_INTERVAL
    seconds through a calibration and recorded in the profile (lowest, median, highest). On the
    development machine it moves between about 45 and about 80 GB/s for minutes at a time, and the
    microbenchmarks of tensors beyond the cache with it; the models, timed, do not follow
    (docs/benchmarks.md, "The memory's two speeds"). The record says in which state, or mix of
    them, a profile's curves beyond the cache were taken."""

    name, unit, per, digits = "memory", "gbps", 1e9, 1

    def __init__(self) -> None:
        super().__init__(WATCH_INTERVAL)
        self.probe = MemoryProbe() if last_level_cache_bytes() else None

    def take(self) -> float | None:
        return self.probe() if self.probe is not None else None

    @property
    def speeds(self) -> list[float]:
        return self.values


def listed(names: list[str], most: int) -> str:
    """The names joined by commas in at most `most` characters: as many as fit, then how many more."""
    for shown in range(len(names), 0, -1):
        text = ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if shown < len(names) else "")
        if len(text) <= most:
            return text
    return f"{len(names)} entries"[:most]


MIN_NATIVE_SAMPLES = 4       # a class's native calls keep an entry of their own from this many on (and as many others)


def fit_entries(samples: list[Sample], overhead_times: dict[str, list[float]], models: dict[str, str],
                execution: str, untimed: set[str] | frozenset[str] = frozenset()
                ) -> dict[str, CurveEntry | EfficiencyEntry]:
    """An entry per key timed: a curve or an efficiency fit to its samples, a view's overhead
    alone. A key without samples whose cases the time budget cut (`untimed`), or a class's (a
    fit needs samples), gets no entry: the prediction prices such layers by the nearest entry
    of their kind or the fallback, and names the entry they lacked."""
    subtract = execution == SYNC
    by_key: dict[str, list[Sample]] = {}
    for sample in samples:
        by_key.setdefault(sample.key, []).append(sample)
    for key in [k for k in models if k.endswith(NATIVE)]:
        # too few calls on either kernel to fit two entries: the class keeps one, as before the split
        main = key[:-len(NATIVE)]
        if min(len(by_key.get(key, ())), len(by_key.get(main, ()))) < MIN_NATIVE_SAMPLES:
            by_key[main] = by_key.get(main, []) + [replace(s, key=main) for s in by_key.pop(key, [])]
            overhead_times[main] = overhead_times.get(main, []) + overhead_times.pop(key, [])
            models[main] = models.pop(key)
    entries: dict[str, CurveEntry | EfficiencyEntry] = {}
    # the copy curve first: the efficiency entries' data term is priced by it
    for key in sorted(models, key=lambda k: k != COPY_KEY):
        if not by_key.get(key) and (models[key] == EFFICIENCY or key in untimed):
            continue
        fastest = min((s.seconds for s in by_key.get(key, ())), default=None)
        overhead = fit_overhead(overhead_times.get(key) or [fastest])
        if fastest is not None and subtract:   # no call is faster than the overhead: a slower reading was disturbed
            overhead = rounded(min(overhead, fastest))
        if models[key] == EFFICIENCY:
            # torch's native convolution computes on its own layout: no layout copies to price apart
            copy = None if key.endswith(NATIVE) else entries.get(COPY_KEY)
            entries[key] = fit_efficiency(key, by_key[key], overhead, subtract,
                                          copy if isinstance(copy, CurveEntry) else None)
        elif by_key.get(key):
            entries[key] = fit_curve(key, by_key[key], overhead, subtract)
        else:   # a view or no-op: its overhead is all it costs
            entries[key] = CurveEntry(key, overhead, "elements", (), 0)
        if execution == QUEUE and key in entries:     # the host's part by size (enqueue_seconds)
            entries[key] = replace(entries[key], host=fit_host(by_key.get(key, []), models[key] == EFFICIENCY))
    assert all(models[k] in (CURVE, EFFICIENCY) for k in models)
    return entries


def forward_overhead(device: torch.device, dtype: torch.dtype, min_time: float) -> float:
    """What calling a built model costs beyond its layers: a one-layer model (our builder's, with
    its generated forward) against the same layer called alone."""
    from ..build import build_model
    from ..graph import build_graph
    from ..spec import load_spec_text

    spec = load_spec_text("name: calibrate_forward\ninput: [1, 1, 1]\nlayers:\n  - identity\n", "<calibrate>")
    model = build_model(build_graph(spec), device=device, dtype=dtype).eval()
    layer = next(m for m in model.modules() if not list(m.children()))
    x = torch.randn(1, 1, 1, 1, device=device, dtype=dtype)
    whole = Prepared(Case("identity", {}, ((1, 1, 1),), 1), "", "", lambda: model(x), Sample("", 0.0))
    alone = Prepared(Case("identity", {}, ((1, 1, 1),), 1), "", "", lambda: layer(x), Sample("", 0.0))
    if device.type == "cuda":
        return rounded(max(host_seconds(whole, device) - host_seconds(alone, device), 0.0))
    return rounded(max(time_case(whole, device, min_time) - time_case(alone, device, min_time), 0.0))


# a network of 120 layers on tiny maps (conv, batch norm, ReLU, pool, concat): its kernels cost
# next to nothing, so what it takes beyond the layers' own overheads is what running them one
# after another in a model adds (other modules' code and data, and the generated forward's lines)
CHAIN = """\
name: calibrate_chain
input: [8, 4, 4]
modules:
  Unit:
    layers:
      - conv: conv(8, 1, bias=false)
      - bn
      - relu
      - conv3: conv(8, 3, padding=1, bias=false)
      - bn3: bn
      - relu
      - maxpool(3, stride=1, padding=1)
  Mixed:
    concat:
      - a: Unit
      - b: Unit
layers:
""" + "".join(f"  - m{i}: Mixed\n" for i in range(8))


# The chain is timed in slices spread over the whole calibration, and its time is their median, as
# the entries' samples are spread over it. Timed once at the end (for IN_MODEL_MIN_TIME), it gave
# 26.48 us a layer in one calibration on the Zen 3 of docs/benchmarks.md, against 7.01 and 6.23 in
# the two before, and five such timings within three seconds, against one profile's entries, gave
# 15.84, 15.35, 5.09, 4.46 and 4.50 us: the machine's slow spells last seconds, and one timing that
# falls in one prices every layer of every model by it (shufflenet_v2_x1_0 at batch 1: +47.9%).
CHAIN_INTERVAL = 10.0     # seconds of calibration between two slices
CHAIN_SLICE = 0.1         # seconds a slice times the chain for on a CPU (each call ~2 ms) ...
CHAIN_QUEUE_CALLS = 40    # ... and the calls whose enqueue it times on a queue device (host_seconds)
CHAIN_LOOKS = 5           # slices at the least: a calibration shorter than that takes the rest at its end


class ChainTimings(Looks):
    """The CHAIN network, built once by our builder, and its time per call in slices spread over
    the calibration (the comment above CHAIN_INTERVAL)."""

    name, unit, per, digits = "chain", "ms", 1e-3, 3

    def __init__(self, device: torch.device, dtype: torch.dtype, execution: str):
        from ..build import build_model
        from ..pipeline import Request, analyze
        from ..spec import load_spec_text

        super().__init__(CHAIN_INTERVAL)
        self.analysis = analyze(Request(load_spec_text(CHAIN, "<calibrate chain>")))
        model = build_model(self.analysis.graph, device=device, dtype=dtype).eval()
        x = torch.randn(1, *self.analysis.graph.input_shape, device=device, dtype=dtype)
        self.whole = Prepared(Case("identity", {}, ((1, 1, 1),), 1), "", "", lambda: model(x), Sample("", 0.0))
        self.device, self.execution = device, execution

    def take(self) -> float:
        """One slice: the chain's time per call."""
        return (host_seconds(self.whole, self.device, CHAIN_QUEUE_CALLS) if self.execution == QUEUE
                else time_case(self.whole, self.device, CHAIN_SLICE))

    @property
    def slices(self) -> list[float]:
        return self.values

    def seconds(self) -> float:
        """The chain's time per call: the median slice, after CHAIN_LOOKS slices at the least."""
        while len(self.values) < CHAIN_LOOKS:
            self.look(now=True)
        return statistics.median(self.values)


def layer_overhead(chain: ChainTimings, entries: dict, fallback: Fallback, forward: float, execution: str,
                   roofs: Roofs, dtype_name: str) -> float:
    """The overhead a layer adds in a model beyond its own in isolation: the CHAIN network's time
    (its median slice), less its prediction from the entries, per layer."""
    draft = LatencyProfile("draft", "", chain.device.type, dtype_name, execution, roofs, forward, fallback, entries)
    predicted = chain.analysis.predict(draft, 1)
    expected = predicted.overhead_seconds if execution == QUEUE else predicted.seconds
    return rounded(max(chain.seconds() - expected, 0.0) / len(predicted.layers))


# ----------------------------------------------------------------------------- in a model
def distinct_units(channels: int, first: int, step: int, side: int, units: int = 20,
                   kernels: tuple[int, ...] = (1, 3)) -> str:
    """A network of `units` units (per kernel size in `kernels`: its convolution, batch norm,
    ReLU) on side x side maps, each unit `step` channels wider than the one before: every
    convolution a shape of its own, as in a model."""
    rows = [f"name: calibrate_units_{first}\ninput: [{channels}, {side}, {side}]\nlayers:"]
    for unit in range(units):
        width = first + step * unit
        for index, kernel in enumerate(kernels):       # conv names a0, b0, ...: one letter per kernel
            rows.append(f"  - {chr(ord('a') + index)}{unit}: conv({width}, {kernel}, padding={kernel // 2}, bias=false)\n"
                        f"  - bn\n  - relu")
    return "\n".join(rows) + "\n"


# three networks, each (spec, batch): light weights on small maps (13 MiB of weights in all),
# heavy weights on small maps (60 MiB), and light weights on large maps at batch 8 (tensors of 2.3
# to 9.6 MiB, 705 MiB of activations read and written a pass), so the fixed cost a call, the cost
# a byte of weights and the cost a byte of activations are told apart
IN_MODEL_NETWORKS = ((distinct_units(64, 48, 8, 14), 1), (distinct_units(256, 200, 8, 14), 1),
                     (distinct_units(24, 24, 4, 56, kernels=(1,)), 8))
IN_MODEL_FIGURES = ("weighted_layer_overhead", "cold_weights_seconds_per_byte", "activations_seconds_per_byte")
IN_MODEL_MIN_TIME = 0.5


def in_model_counts(analysis, batch: int, draft: LatencyProfile) -> tuple[list[float], float]:
    """What each of the IN_MODEL_FIGURES applies to in a network at a batch (its calls, its
    weights' bytes within the cache, its activations' bytes), as the prediction counts it: the
    network's in-model time with that figure alone set to 1, less what it has with none; and that
    rest, which no figure scales (the layers' elements beyond the cache: uncached_seconds)."""
    bare = replace(draft, layer_overhead=0.0, **{figure: 0.0 for figure in IN_MODEL_FIGURES})
    rest = analysis.predict(bare, batch).context_seconds
    return [analysis.predict(replace(bare, **{figure: 1.0}), batch).context_seconds - rest
            for figure in IN_MODEL_FIGURES], rest


# on a queue device: the networks of convolutions each of a shape of its own whose host time gives
# what such a convolution costs the host in a model (queue_in_model_costs): IN_MODEL_NETWORKS' two
# at batch 1, on 14 x 14 maps (a network whose host had to wait on its device is left out)
QUEUE_IN_MODEL_NETWORKS = IN_MODEL_NETWORKS[:2]


def queue_in_model_costs(device: torch.device, dtype: torch.dtype, draft: LatencyProfile) -> dict[str, float]:
    """On a queue device, what a convolution or linear layer costs the host in a model beyond its
    entry's host time (the profile's weighted_layer_overhead): the QUEUE_IN_MODEL_NETWORKS'
    hosts' time to enqueue a forward (bench/timing.py's host_and_device_seconds), less what the
    draft prices their hosts at, over their convolutions. An entry's host time comes from calls
    of one shape again and again; a model calls each convolution with a shape of its own. On
    the H200 of docs/benchmarks.md 20 models' hosts took 1.2 to 4.5 times (median 1.8) their
    layers' overheads; fitted as a cost a convolution, the gap came to 47 us over one run's 60
    measurements, 27 us over another's."""
    from ..build import build_model
    from ..pipeline import Request, analyze
    from ..spec import load_spec_text
    from .timing import host_and_device_seconds

    gap, convolutions = 0.0, 0
    for index, (text, batch) in enumerate(QUEUE_IN_MODEL_NETWORKS):
        analysis = analyze(Request(load_spec_text(text, f"<calibrate units {index}>")))
        model = build_model(analysis.graph, device=device, dtype=dtype).eval()
        x = torch.randn(batch, *analysis.graph.input_shape, device=device, dtype=dtype)
        with torch.inference_mode():
            model(x)
            host, _, ahead = host_and_device_seconds(lambda: model(x), device)
        if not ahead:           # the host waited on the device: its time is not the host's own
            continue
        predicted = analysis.predict(draft, batch)
        gap += host - predicted.overhead_seconds - predicted.context_seconds
        convolutions += round(in_model_counts(analysis, batch, draft)[0][0])   # as the prediction counts them
    return {"weighted_layer_overhead": rounded(max(gap, 0.0) / convolutions) if convolutions else 0.0}


def in_model_costs(device: torch.device, dtype: torch.dtype, draft: LatencyProfile, min_time: float
                   ) -> dict[str, float]:
    """The IN_MODEL_FIGURES (analysis/latency.py, "in a model"): what a layer adds in a model beyond
    the same layer called alone, fitted to the IN_MODEL_NETWORKS: each timed whole and layer by
    layer alone (as a case is: warm memory, its tensors and weights in cache where they fit), back
    to back, so neither the machine's drift nor an entry's error in pricing those layers enters.
    A network's excess, less the draft's layer overhead for every layer and what its layers'
    elements take beyond the cache (analysis/latency.py's uncached_seconds), = the sum over the figures
    of what the prediction counts for each (calls, weights' bytes, activations' bytes) x the figure:
    solved for the three, none below zero (bounded_least_squares)."""
    from ..build import build_model
    from ..graph import AUX
    from ..pipeline import Request, analyze
    from ..spec import load_spec_text

    rows, excess = [], []
    for index, (text, batch) in enumerate(IN_MODEL_NETWORKS):
        analysis = analyze(Request(load_spec_text(text, f"<calibrate units {index}>")))
        model = build_model(analysis.graph, device=device, dtype=dtype).eval()
        x = torch.randn(batch, *analysis.graph.input_shape, device=device, dtype=dtype)

        def timed(step: Callable[[], Any], seconds: float) -> float:
            return time_case(Prepared(Case("identity", {}, ((1, 1, 1),), batch), "", "", step, Sample("", 0.0)),
                             device, seconds)

        whole = timed(lambda: model(x), IN_MODEL_MIN_TIME)
        layers = [node for node in analysis.graph.layers() if node.role != AUX]
        alone = sum(timed(node_call(node, batch, device, dtype), min_time) for node in layers)
        counts, rest = in_model_counts(analysis, batch, draft)
        rows.append(counts)
        excess.append(whole - alone - len(layers) * draft.layer_overhead - rest)
    # the counts differ by orders of magnitude (calls, bytes): solved on columns scaled to 1
    scales = [max(abs(row[i]) for row in rows) or 1.0 for i in range(len(IN_MODEL_FIGURES))]
    solution = bounded_least_squares([[v / scale for v, scale in zip(row, scales)] for row in rows], excess)
    return {figure: rounded(value / scale) for figure, value, scale in zip(IN_MODEL_FIGURES, solution, scales)}
