"""Measured throughput of the built models, beside the roofline estimate and torchvision's model.

    inception-analyzer bench SPEC... [--device cuda|cpu] [--batch 1,32,256] [--dtype fp32|tf32|bf16|fp16]
                             [--channels-last] [--compile] [--mode inference|train] [--per-layer]
                             [--format table|markdown|csv|json] [-o FILE]

How each figure is measured:
- Warm-up first (cuDNN's algorithm search, torch.compile's compilation, the allocator's growth),
  then enough timed iterations for --min-time seconds (at least MIN_ITERATIONS), or --iters.
- Ours and torchvision's model are built side by side and their timed iterations alternate in
  blocks (A B, B A, A B, B A), so that a drift of the machine falls on both alike.
- On CUDA every iteration is bracketed by two CUDA events recorded on the stream; nothing inside
  the loop synchronises, so kernels queue as in a real run, and a single synchronisation at the
  end precedes reading the events. On the CPU, where ops run synchronously, a perf_counter pair.
- p50 (median) and p90 of the per-iteration times; images/s = batch / p50.
- Achieved FLOP/s = the model's conventional FLOPs (2 x MACs per image; in training x3 and with
  the aux heads, analysis.roofline.model_flops) / p50, and its share of the device profile's
  dense matmul peak for the dtype.
- Peak memory: the CUDA caching allocator's max_memory_allocated over the timed iterations
  (weights and optimizer state included; cuDNN's algorithm search during warm-up excluded). Not
  measured on the CPU (there is no allocator to ask).
- fp32 means IEEE fp32: TF32 is switched off for matmuls and cuDNN convolutions (PyTorch lets
  cuDNN use TF32 by default); tf32 switches it on. bf16 / fp16 inference casts the model;
  training keeps fp32 master weights under autocast (fp16 with a gradient scaler).
- Training times a full step of the Rethinking paper's recipe (TrainRecipe).
- A batch whose estimated memory (analysis.roofline.estimate_memory) exceeds the free memory is
  reported as not fitting and not run; one that still runs out of memory is reported as such.
- torchvision's model of the same architecture (where torchvision can be imported and has one)
  runs with the same settings in the same process; ours / theirs is the ratio of images/s. The
  models are built afresh for each batch size.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import gc
import importlib
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import nn

from .analysis.cost import CostReport
from .analysis.roofline import (MODES, CpuMeasurement, DeviceProfile, MemoryEstimate, ModelEstimate, device_profile,
                                estimate, estimate_memory, model_flops, profile_matching, profile_names)
from .bench_options import DEFAULT_MIN_TIME, DEFAULT_WARMUP, MAX_ITERATIONS, MIN_ITERATIONS, BenchError
from .build import build_model, free_memory_bytes, resolve_device, resolve_dtype
from .dtypes import get_dtype
from .graph import Graph
from .pipeline import Request, analyze
from .render.estimate import memory_need

PROFILED_ITERATIONS = 3         # forward passes under the torch profiler for --per-layer
LAYER_RANGE = "layer:"          # prefix of the profiler ranges around leaf modules


# ----------------------------------------------------------------------------- timing statistics
def percentile(samples: list[float] | tuple[float, ...], q: float) -> float:
    """The q-th percentile (0..100), interpolating linearly between closest ranks (numpy's default)."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class TimingStats:
    """Per-iteration times in seconds, in the order they were taken."""

    samples: tuple[float, ...]

    @property
    def iterations(self) -> int:
        return len(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        return percentile(self.samples, 90)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)

    @property
    def spread(self) -> float:
        """p90 / p50 - 1: how much slower the slow tenth of iterations is than the typical one."""
        return self.p90 / self.median - 1


RATIO_CONFIDENCE = 0.95
RATIO_RESAMPLES = 2000


def ratio_interval(ours: tuple[float, ...], theirs: tuple[float, ...], confidence: float = RATIO_CONFIDENCE,
                   resamples: int = RATIO_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """A bootstrap confidence interval for ours / theirs in images/s, i.e. median(theirs) / median(ours)
    of the per-iteration times at the same batch size.

    Percentile bootstrap: both sample sets are resampled with replacement `resamples` times and
    the ratio of the resampled medians taken; the interval is the middle `confidence` share of
    those ratios. Fixed seed, so a report is reproducible from its samples. It treats the
    iterations as independent; the interleaved blocks keep a slow drift of the machine off the
    ratio, not out of the spread, so on a noisy machine the interval is wide, as it should be."""
    if not ours or not theirs:
        raise ValueError("no samples")
    generator = torch.Generator().manual_seed(seed)

    def resampled_medians(samples: tuple[float, ...]) -> torch.Tensor:
        values = torch.tensor(samples, dtype=torch.float64)
        picks = torch.randint(len(samples), (resamples, len(samples)), generator=generator)
        return values[picks].quantile(0.5, dim=1)     # interpolated, as statistics.median

    ratios = resampled_medians(theirs) / resampled_medians(ours)
    tail = (1 - confidence) / 2
    low, high = torch.quantile(ratios, torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    return low, high


def iterations_for(seconds_per_iteration: float, min_time: float) -> int:
    """Iterations that fill `min_time` seconds, within [MIN_ITERATIONS, MAX_ITERATIONS]."""
    if seconds_per_iteration <= 0:
        return MAX_ITERATIONS
    return max(MIN_ITERATIONS, min(MAX_ITERATIONS, math.ceil(min_time / seconds_per_iteration)))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_iterations(step: Callable[[], Any], device: torch.device, iterations: int,
                    on_iteration: Callable[[int], None] | None = None) -> list[float]:
    """Seconds of each of `iterations` calls of `step`: CUDA events on CUDA, perf_counter on the CPU."""
    if device.type == "cuda":
        return _time_cuda(step, device, iterations, on_iteration)
    samples = []
    for index in range(iterations):
        start = time.perf_counter()
        step()
        samples.append(time.perf_counter() - start)
        if on_iteration:
            on_iteration(index + 1)
    return samples


def _time_cuda(step, device, iterations, on_iteration) -> list[float]:
    with torch.cuda.device(device):
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(iterations)]
        torch.cuda.synchronize(device)  # nothing from the warm-up may leak into the first pair
        for index in range(iterations):
            starts[index].record()
            step()
            ends[index].record()
            if on_iteration:
                on_iteration(index + 1)
        torch.cuda.synchronize(device)  # elapsed_time needs both events completed
        return [start.elapsed_time(end) / 1000 for start, end in zip(starts, ends)]


def warm_up(step: Callable[[], Any], iterations: int) -> None:
    for _ in range(max(1, iterations)):
        step()


def seconds_per_iteration(step: Callable[[], Any], device: torch.device) -> float:
    """One synchronised iteration, to size a run."""
    synchronize(device)
    start = time.perf_counter()
    step()
    synchronize(device)
    return time.perf_counter() - start


def measure(step: Callable[[], Any], device: torch.device, warmup: int = DEFAULT_WARMUP,
            iterations: int | None = None, min_time: float = DEFAULT_MIN_TIME,
            on_iteration: Callable[[int, int], None] | None = None) -> TimingStats:
    """Warm up, size the run from one synchronised iteration, then time every iteration."""
    warm_up(step, warmup)
    total = iterations or iterations_for(seconds_per_iteration(step, device), min_time)
    samples = time_iterations(step, device, total, (lambda done: on_iteration(done, total)) if on_iteration else None)
    return TimingStats(tuple(samples))


def block_sizes(iterations: int, rounds: int) -> list[int]:
    """`iterations` split into `rounds` blocks as evenly as possible: 10, 4 -> [3, 3, 2, 2]."""
    return [iterations // rounds + (1 if index < iterations % rounds else 0) for index in range(rounds)]


# ----------------------------------------------------------------------------- training recipe
@dataclass(frozen=True)
class TrainRecipe:
    """The training step of "Rethinking the Inception Architecture" (Szegedy et al. 2016, §8):
    RMSProp with decay 0.9 and epsilon 1.0, learning rate 0.045, gradient clipping at 2.0, label
    smoothing 0.1. The paper names no momentum; TF-Slim's train_image_classifier.py defaults to
    0.9. Auxiliary logits add their loss at weight 0.4, as TF-Slim's train_image_classifier.py
    does (label smoothing included); torchvision's reference train.py has no auxiliary loss at
    all (its inception_v3 weights were ported from TensorFlow, not trained with it). torch's
    RMSprop adds epsilon outside the square root, TensorFlow's inside: same cost, other numbers.
    """

    learning_rate: float = 0.045
    rmsprop_decay: float = 0.9          # torch's `alpha`
    rmsprop_epsilon: float = 1.0
    momentum: float = 0.0
    label_smoothing: float = 0.1
    clip_norm: float = 2.0
    aux_weight: float = 0.4

    @property
    def optimizer_states(self) -> int:
        """Tensors RMSprop keeps per parameter: the square average, and the momentum buffer if any."""
        return 1 + (self.momentum > 0)


def make_optimizer(parameters, recipe: TrainRecipe) -> torch.optim.RMSprop:
    return torch.optim.RMSprop(parameters, lr=recipe.learning_rate, alpha=recipe.rmsprop_decay,
                               eps=recipe.rmsprop_epsilon, momentum=recipe.momentum)


def make_criterion(recipe: TrainRecipe) -> nn.CrossEntropyLoss:
    return nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)


def split_outputs(outputs) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(main logits, aux logits) of a model's training output: a tensor, our SpecOutputs or
    torchvision's InceptionOutputs / GoogLeNetOutputs (main logits first, aux heads after)."""
    if isinstance(outputs, torch.Tensor):
        return outputs, []
    logits, *rest = outputs
    aux: list[torch.Tensor] = []
    for item in rest:
        if isinstance(item, torch.Tensor):
            aux.append(item)
        elif item is not None:          # SpecOutputs keeps several heads as a tuple
            aux.extend(split_outputs((None, *item))[1])
    return logits, aux


def training_loss(outputs, labels: torch.Tensor, criterion: nn.Module, recipe: TrainRecipe) -> torch.Tensor:
    logits, aux = split_outputs(outputs)
    loss = criterion(logits, labels)
    for head in aux:
        if head.shape != logits.shape:
            raise BenchError(f"an auxiliary head gives {list(head.shape)} where the classifier gives "
                             f"{list(logits.shape)}: a training step needs class logits from every head "
                             "(or --set aux_logits=false)")
        loss = loss + recipe.aux_weight * criterion(head, labels)
    return loss


def train_step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, optimizer: torch.optim.Optimizer,
               criterion: nn.Module, recipe: TrainRecipe, scaler: torch.amp.GradScaler,
               autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
    """One full step; returns the loss without reading it back (that would synchronise)."""
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(images.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        loss = training_loss(model(images), labels, criterion, recipe)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)          # clip the true gradients, not fp16's scaled ones
    nn.utils.clip_grad_norm_(model.parameters(), recipe.clip_norm)
    scaler.step(optimizer)
    scaler.update()
    return loss.detach()


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class BenchSettings:
    device: torch.device
    dtype: str = "fp32"                 # fp32 | tf32 | bf16 | fp16
    mode: str = "inference"             # inference | train
    channels_last: bool = False
    compile: bool = False
    compile_mode: str | None = None
    warmup: int = DEFAULT_WARMUP
    iterations: int | None = None
    min_time: float = DEFAULT_MIN_TIME
    threads: int | None = None          # torch's intra-op CPU threads; None: torch's default
    recipe: TrainRecipe = field(default_factory=TrainRecipe)

    @property
    def parameter_dtype(self) -> torch.dtype:
        """Inference casts the model; training keeps fp32 master weights (autocast does the rest)."""
        if self.mode == "train" or self.dtype == "tf32":
            return torch.float32
        return resolve_dtype(self.dtype)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return resolve_dtype(self.dtype) if self.mode == "train" and get_dtype(self.dtype).half else None

    def describe(self) -> str:
        parts = [self.mode, self.dtype, "channels_last" if self.channels_last else "contiguous"]
        if self.compile:
            parts.append(f"compiled ({self.compile_mode or 'default'})")
        return ", ".join(parts)


def check_settings(settings: BenchSettings) -> None:
    get_dtype(settings.dtype)
    if settings.mode not in MODES:
        raise BenchError(f"unknown mode '{settings.mode}' (use {' or '.join(MODES)})")
    if settings.dtype == "tf32" and settings.device.type != "cuda":
        raise BenchError("tf32 is a mode of NVIDIA's tensor cores; on the CPU use fp32")


@contextlib.contextmanager
def torch_settings(settings: BenchSettings) -> Iterator[None]:
    """TF32 on for tf32 and off otherwise (fp32 means IEEE fp32), cuDNN autotuning on, the CPU
    threads asked for; all restored after.

    Only torch's newer `fp32_precision` switches are used: mixing them with the legacy
    `allow_tf32` flags makes torch refuse to read either."""
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    saved = (matmul.fp32_precision, conv.fp32_precision, torch.backends.cudnn.benchmark, torch.get_num_threads())
    precision = "tf32" if settings.dtype == "tf32" else "ieee"
    matmul.fp32_precision = conv.fp32_precision = precision
    torch.backends.cudnn.benchmark = True
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        yield
    finally:
        matmul.fp32_precision, conv.fp32_precision, torch.backends.cudnn.benchmark, threads = saved
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- models
# spec name -> (torchvision builder, spec arguments passed on by the same name, fixed arguments)
TORCHVISION_PEERS: dict[str, tuple[str, tuple[str, ...], dict[str, Any]]] = {
    "inception_v3": ("inception_v3", ("num_classes", "aux_logits", "dropout"),
                     {"init_weights": False, "transform_input": False}),
    "googlenet": ("googlenet", ("num_classes", "aux_logits", "dropout", "dropout_aux"),
                  {"init_weights": False, "transform_input": False}),
    "vgg16": ("vgg16", ("num_classes", "dropout"), {"init_weights": False}),
    "alexnet": ("alexnet", ("num_classes", "dropout"), {}),
}


@functools.cache
def import_torchvision() -> tuple[Any, Any]:
    """(torchvision module or None, what keeps its work-around alive).

    torchvision 0.28 has no CPU build for torch 2.13: its compiled ops do not load and its import
    fails on the missing `torchvision::nms` schema. Defining the nms and qnms schemas first is
    enough for the model builders, which use no detection ops (DEVELOPERS.md)."""
    try:
        return importlib.import_module("torchvision"), None
    except Exception:  # noqa: BLE001 - any import failure: try the schema work-around once
        pass
    library = torch.library.Library("torchvision", "FRAGMENT")
    for op in ("nms", "qnms"):
        with contextlib.suppress(RuntimeError):  # already defined
            library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    try:
        return importlib.import_module("torchvision"), library
    except Exception:  # noqa: BLE001 - torchvision unusable here: no peer, said so in the output
        return None, library


def torchvision_version() -> str | None:
    module, _ = import_torchvision()
    return None if module is None else module.__version__


def build_ours(graph: Graph, settings: BenchSettings) -> nn.Module:
    return build_model(graph, device=settings.device, dtype=settings.parameter_dtype,
                       channels_last=settings.channels_last)


def build_torchvision(graph: Graph, settings: BenchSettings) -> nn.Module:
    module, _ = import_torchvision()
    builder, passed, fixed = TORCHVISION_PEERS[graph.name]
    arguments = {name: graph.arguments[name] for name in passed if name in graph.arguments}
    with settings.device:
        model = getattr(module.models, builder)(weights=None, **arguments, **fixed)
    model = model.to(dtype=settings.parameter_dtype)
    return model.to(memory_format=torch.channels_last) if settings.channels_last else model


def has_peer(graph: Graph) -> bool:
    return graph.name in TORCHVISION_PEERS and import_torchvision()[0] is not None


# ----------------------------------------------------------------------------- records
@dataclass
class Measurement:
    """One model at one setting: its timing, or why there is none."""

    implementation: str                  # "ours" or "torchvision"
    status: str                          # "ok", "does not fit", "out of memory", "not comparable"
    note: str = ""
    batch: int = 0
    timing: TimingStats | None = None
    model_flops: float = 0.0             # per batch (or training step)
    peak_flops: float | None = None      # the device profile's matmul peak for the dtype
    peak_memory_bytes: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.timing is not None

    @property
    def images_per_second(self) -> float | None:
        return self.batch / self.timing.median if self.ok else None

    @property
    def achieved_flops(self) -> float | None:
        return self.model_flops / self.timing.median if self.ok else None

    @property
    def peak_share(self) -> float | None:
        return self.achieved_flops / self.peak_flops if self.ok and self.peak_flops else None


@dataclass
class LayerTiming:
    """--per-layer: one leaf's profiled forward time beside its estimate (None: not measured)."""

    path: str
    op: str
    estimate_seconds: float | None
    bound: str
    measured_seconds: float | None


@dataclass
class BenchRow:
    spec: str
    model: str
    batch: int
    estimate: ModelEstimate | None
    memory_needed: int
    free_bytes: int | None
    ours: Measurement
    torchvision: Measurement | None
    layers: list[LayerTiming] = field(default_factory=list)
    profiled_total_seconds: float | None = None   # the whole forward pass under the profiler

    @property
    def ratio(self) -> float | None:
        """ours / torchvision in images/s (> 1: ours is faster)."""
        if self.torchvision is None or not (self.ours.ok and self.torchvision.ok):
            return None
        return self.ours.images_per_second / self.torchvision.images_per_second

    @functools.cached_property
    def ratio_interval(self) -> tuple[float, float] | None:
        """The 95% bootstrap interval of `ratio` (ratio_interval()); above 1 at its low end: ours is
        faster beyond the noise, below 1 at its high end: slower."""
        if self.ratio is None:
            return None
        return ratio_interval(self.ours.timing.samples, self.torchvision.timing.samples)

    @property
    def measured_over_estimate(self) -> float | None:
        if self.estimate is None or not self.ours.ok or not self.estimate.seconds:
            return None
        return self.ours.timing.median / self.estimate.seconds


@dataclass
class BenchReport:
    settings: BenchSettings
    environment: dict[str, str]
    profile: DeviceProfile | None
    profile_note: str
    rows: list[BenchRow]


# ----------------------------------------------------------------------------- progress
class Progress:
    """One status line on stderr, rewritten in place; silent unless stderr is a terminal."""

    def __init__(self, runs: int, enabled: bool | None = None, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.runs, self.run, self.label, self._last = runs, 0, "", 0.0

    def start(self, label: str) -> None:
        self.run += 1
        self.label = label
        self._write(f"{label}: warm-up")

    def iteration(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < 0.1:  # a terminal need not redraw faster than that
            return
        self._last = now
        filled = round(20 * done / total)
        self._write(f"{self.label}: [{'#' * filled}{'.' * (20 - filled)}] {done}/{total}")

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def _write(self, text: str) -> None:
        if self.enabled:
            self.stream.write(f"\r\033[K[{self.run}/{self.runs}] {text}")
            self.stream.flush()


# ----------------------------------------------------------------------------- measuring a model
def _inputs(graph: Graph, batch: int, settings: BenchSettings) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator(device=settings.device).manual_seed(0)
    images = torch.randn(batch, *graph.input_shape, device=settings.device, dtype=settings.parameter_dtype,
                         generator=generator)
    if settings.channels_last:
        images = images.to(memory_format=torch.channels_last)
    classes = graph.node(graph.output).out_shape[0]
    labels = torch.randint(0, classes, (batch,), device=settings.device, generator=generator)
    return images, labels


def _step(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, settings: BenchSettings) -> Callable[[], Any]:
    # static shapes: a benchmark runs one shape, and without dynamic=False a model class compiled
    # before at another batch size (torchvision's, across rows) would get a dynamic-shape graph
    runner = torch.compile(model, mode=settings.compile_mode, dynamic=False) if settings.compile else model
    if settings.mode == "inference":
        model.eval()
        return lambda: runner(images)
    model.train()
    recipe = settings.recipe
    optimizer = make_optimizer(model.parameters(), recipe)
    criterion = make_criterion(recipe)
    scaler = torch.amp.GradScaler(settings.device.type, enabled=settings.dtype == "fp16")
    return lambda: train_step(runner, images, labels, optimizer, criterion, recipe, scaler, settings.autocast_dtype)


def _is_out_of_memory(err: BaseException) -> bool:
    return isinstance(err, torch.OutOfMemoryError) or "can't allocate memory" in str(err)


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


@dataclass
class _Prepared:
    """A built, warmed-up model waiting for its timed blocks."""

    implementation: str
    step: Callable[[], Any]
    iterations: int
    resident_bytes: int                 # CUDA memory it holds between steps (weights, state, inputs)
    samples: list[float] = field(default_factory=list)
    peak_bytes: int | None = None


@dataclass(frozen=True)
class MemoryCheck:
    """What a batch needs (analysis.roofline.estimate_memory) and what the device has free."""

    need: MemoryEstimate
    free_bytes: int | None              # None: unknown, and then everything is tried

    @classmethod
    def read(cls, report: CostReport, batch: int, settings: BenchSettings) -> MemoryCheck:
        need = estimate_memory(report, settings.dtype, batch, settings.mode, settings.recipe.optimizer_states)
        return cls(need, free_memory_bytes(settings.device))

    def fits(self, models: int = 1) -> bool:
        """Whether `models` of this size fit at once: beside the one running, the others keep
        their weights and training state."""
        if self.free_bytes is None:
            return True
        resident = self.need.weights_bytes + self.need.training_state_bytes
        return self.need.total + resident * (models - 1) <= self.free_bytes


def measure_models(candidates: list[tuple[str, Callable[[], nn.Module]]], graph: Graph, report: CostReport,
                   batch: int, settings: BenchSettings, peak_flops: float | None,
                   progress: Progress, memory: MemoryCheck | None = None) -> list[Measurement]:
    """Time each (implementation, build) at one batch size, interleaved when several fit at once.

    The timed iterations of the models alternate in INTERLEAVED_ROUNDS blocks (A B, B A, A B,
    B A), so a slow drift of the machine (clocks, heat, other work) falls on all of them alike
    and their ratio keeps; a model that does not fit beside the others is timed alone. A batch
    whose estimated memory exceeds the free memory is not run; one that runs out of memory
    anyway is reported as such, never ends the run. `memory` is the row's check, read here when
    the caller has none."""
    memory = memory or MemoryCheck.read(report, batch, settings)
    base = dict(batch=batch, peak_flops=peak_flops, model_flops=model_flops(report.totals, batch, settings.mode))
    need = memory_need(memory.need.total, memory.free_bytes)
    if not memory.fits():
        # the status says "does not fit"; its note gives the figures
        return [Measurement(name, "does not fit", need, **base) for name, _ in candidates]
    groups = [candidates] if memory.fits(len(candidates)) else [[candidate] for candidate in candidates]
    results: dict[str, Measurement] = {}
    for group in groups:
        names = [name for name, _ in group]
        progress.start(f"{graph.name} batch {batch} {' + '.join(names)}")
        try:
            for name, (status, timing, peak) in _prepare_and_time(group, graph, report, batch, settings,
                                                                  progress).items():
                note = "torchvision's model has other parameters" if status == "not comparable" else ""
                results[name] = Measurement(name, status, note, timing=timing, peak_memory_bytes=peak, **base)
        except (RuntimeError, MemoryError) as err:
            if not _is_out_of_memory(err):
                raise
            note = f"at run time; estimated: {need}"
            results.update({name: Measurement(name, "out of memory", note, **base) for name in names})
        finally:
            progress.done()
            _release(settings.device)  # the models, inputs and optimizers died with _prepare_and_time's frame
    return [results[name] for name, _ in candidates]


INTERLEAVED_ROUNDS = 4


def _prepare_and_time(group, graph, report, batch, settings: BenchSettings, progress: Progress
                      ) -> dict[str, tuple[str, TimingStats | None, int | None]]:
    cuda = settings.device.type == "cuda"
    allocated = (lambda: torch.cuda.memory_allocated(settings.device)) if cuda else (lambda: 0)
    outcome: dict[str, tuple[str, TimingStats | None, int | None]] = {}
    prepared: list[_Prepared] = []
    if settings.compile:
        torch._dynamo.reset()   # each row compiles afresh; no earlier row's graphs count against the limits
    with torch.inference_mode() if settings.mode == "inference" else contextlib.nullcontext():
        baseline = allocated()
        for implementation, build in group:
            model = build()
            if implementation != "ours" and sum(p.numel() for p in model.parameters()) != report.totals.params:
                outcome[implementation] = ("not comparable", None, None)
                continue
            images, labels = _inputs(graph, batch, settings)
            step = _step(model, images, labels, settings)
            _first_call(step, settings, implementation)
            warm_up(step, settings.warmup)
            iterations = settings.iterations or iterations_for(seconds_per_iteration(step, settings.device),
                                                               settings.min_time)
            synchronize(settings.device)
            held = allocated() - baseline - sum(p.resident_bytes for p in prepared)
            prepared.append(_Prepared(implementation, step, iterations, held))
            del model, images, labels, step
        _time_interleaved(prepared, settings, progress)
    for p in prepared:
        outcome[p.implementation] = ("ok", TimingStats(tuple(p.samples)), p.peak_bytes)
    return outcome


def _time_interleaved(prepared: list[_Prepared], settings: BenchSettings, progress: Progress) -> None:
    device, cuda = settings.device, settings.device.type == "cuda"
    rounds = min(INTERLEAVED_ROUNDS, *(p.iterations for p in prepared)) if len(prepared) > 1 else 1
    blocks = {p.implementation: block_sizes(p.iterations, rounds) for p in prepared}
    total, done = sum(p.iterations for p in prepared), 0
    for index in range(rounds):
        for p in prepared if index % 2 == 0 else prepared[::-1]:
            count = blocks[p.implementation][index]
            if cuda:
                synchronize(device)
                torch.cuda.reset_peak_memory_stats(device)  # cuDNN's search during warm-up does not count
            p.samples += time_iterations(p.step, device, count, lambda k, start=done: progress.iteration(start + k, total))
            done += count
            if cuda:  # what this model needs: the peak less what the others hold meanwhile
                others = sum(q.resident_bytes for q in prepared if q is not p)
                p.peak_bytes = max(p.peak_bytes or 0, torch.cuda.max_memory_allocated(device) - others)


def _first_call(step, settings: BenchSettings, implementation: str) -> None:
    """With --compile the first call compiles; its failure is the user's to see in one line."""
    if not settings.compile:
        return
    try:
        step()
    except Exception as err:  # noqa: BLE001 - dynamo / inductor raise many types
        if _is_out_of_memory(err):
            raise
        first_line = (str(err).strip().splitlines() or [""])[0][:200]
        raise BenchError(f"torch.compile failed on {implementation}'s model: {type(err).__name__}: "
                         f"{first_line}") from None


# ----------------------------------------------------------------------------- per-layer profile
@contextlib.contextmanager
def layer_ranges(model: nn.Module) -> Iterator[list[str]]:
    """Wrap every leaf module's forward in a profiler range named after its path."""
    open_ranges: dict[int, Any] = {}
    handles, names = [], []

    def enter(name):
        def hook(module, inputs):
            open_ranges[id(module)] = torch.profiler.record_function(LAYER_RANGE + name).__enter__()
        return hook

    def leave(module, inputs, output):
        open_ranges.pop(id(module)).__exit__(None, None, None)

    for name, module in model.named_modules():
        if name and not list(module.children()):
            names.append(name)
            handles.append(module.register_forward_pre_hook(enter(name)))
            handles.append(module.register_forward_hook(leave))
    try:
        yield names
    finally:
        for handle in handles:
            handle.remove()


def profile_layers(model: nn.Module, images: torch.Tensor, iterations: int = PROFILED_ITERATIONS
                   ) -> tuple[dict[str, float], float]:
    """Mean seconds per forward of every leaf module, and of the whole forward, under the torch
    profiler (eager; device time of the kernels launched inside each range on CUDA, wall time on
    the CPU). Profiler overhead is included: compare layers with each other, not with the
    unprofiled figures."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile, record_function

    device = images.device
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    model.eval()
    with torch.inference_mode(), layer_ranges(model):
        model(images)  # warm-up outside the profile
        synchronize(device)
        with profile(activities=activities) as prof:
            for _ in range(iterations):
                with record_function(LAYER_RANGE + "(model)"):
                    model(images)
            synchronize(device)
    totals: dict[str, float] = {}
    calls: dict[str, int] = {}
    for event in prof.events():
        # the CPU-side range; on CUDA the profiler also records a GPU-side copy of each range,
        # which must not be counted twice
        if event.device_type != DeviceType.CPU or not event.name.startswith(LAYER_RANGE):
            continue
        name = event.name[len(LAYER_RANGE):]
        # on CUDA the device time of the kernels launched inside the range, on the CPU its wall time
        microseconds = event.device_time_total if device.type == "cuda" else event.cpu_time_total
        totals[name] = totals.get(name, 0.0) + microseconds
        calls[name] = calls.get(name, 0) + 1
    times = {name: total / 1e6 / calls[name] for name, total in totals.items()}
    return times, times.pop("(model)", 0.0)


def layer_timings(estimate_: ModelEstimate | None, report: CostReport, measured: dict[str, float]) -> list[LayerTiming]:
    estimates = {layer.path: layer for layer in estimate_.layers} if estimate_ else {}
    rows = []
    for record in report.layers:
        if record.role != "main":
            continue  # the forward pass at inference runs no auxiliary head
        layer = estimates.get(record.path)
        rows.append(LayerTiming(record.path, record.op, layer.seconds if layer else None,
                                layer.bound if layer else "-", measured.get(record.path)))
    return rows


# ----------------------------------------------------------------------------- the device profile
@functools.cache
def measure_cpu_with_torch(dtypes: tuple[str, ...] = ("fp32",), matmul_size: int = 2048,
                           copy_bytes: int = 256 * 2**20) -> CpuMeasurement:
    """Peak FLOP/s per dtype and copy bandwidth of this CPU, with torch's own kernels and threads
    as the benchmark uses them, each the best of ten runs; cached for the run. The peak is the better of a square matmul and
    a 3x3 convolution (256 -> 256 channels on 28x28, 8 images), counted at 2 FLOPs per
    multiply-add: on some CPUs torch's convolutions run well above its matmul."""
    def best_seconds(run) -> float:
        run()
        best = math.inf
        for _ in range(10):  # the best of many: one quiet moment is enough on a busy machine
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        return best

    flops = {}
    for name in dict.fromkeys(("fp32", *dtypes)):
        dtype = resolve_dtype(name)  # tf32 is fp32 storage, and plain fp32 on a CPU
        a = torch.randn(matmul_size, matmul_size).to(dtype)
        b = torch.randn(matmul_size, matmul_size).to(dtype)
        conv = nn.Conv2d(256, 256, 3, padding=1, bias=False).to(dtype)
        images = torch.randn(8, 256, 28, 28).to(dtype)
        with torch.inference_mode():
            matmul = 2 * matmul_size**3 / best_seconds(lambda: torch.mm(a, b))
            convolution = 2 * (8 * 256 * 28 * 28) * 256 * 9 / best_seconds(lambda: conv(images))
        flops[name] = max(matmul, convolution)
    source = torch.ones(copy_bytes // 4)
    target = torch.empty_like(source)
    bandwidth = 2 * copy_bytes / best_seconds(lambda: target.copy_(source))  # read + write
    return CpuMeasurement(flops, bandwidth, f"torch {torch.__version__}, {torch.get_num_threads()} threads")


def resolve_profile(name: str | None, settings: BenchSettings):
    """(profile or None, a note on where it came from)."""
    measure_cpu = functools.partial(measure_cpu_with_torch, ("fp32", settings.dtype))
    if name:
        profile = device_profile(name, measure_cpu)
        return profile, f"device profile '{name}' (--profile)"
    if settings.device.type == "cpu":
        return device_profile("cpu", measure_cpu), "device profile 'cpu', measured on the spot"
    device_name = torch.cuda.get_device_name(settings.device)
    matched = profile_matching(device_name)
    if matched is None:
        return None, (f"no device profile matches '{device_name}': no estimate or share of peak "
                      f"(choose one with --profile: {', '.join(profile_names())})")
    return device_profile(matched), f"device profile '{matched}' (matches '{device_name}')"


# ----------------------------------------------------------------------------- the run
def environment(device: torch.device) -> dict[str, str]:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision_version() or "not importable (no peer measured)",
            "threads": str(torch.get_num_threads())}
    if device.type == "cuda":
        info["device"] = torch.cuda.get_device_name(device)
        info["cuda"] = str(torch.version.cuda)
        info["cudnn"] = str(torch.backends.cudnn.version())
    else:
        info["device"] = _cpu_name()
    with contextlib.suppress(OSError, AttributeError):  # other work on the machine skews every figure
        info["load average at start"] = f"{os.getloadavg()[0]:.2f}"
    return info


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} (CPU)"
    return platform.processor() or "CPU"


def run_benchmark(requests: list[Request], batches: list[int], settings: BenchSettings, profile_name: str | None = None,
                  with_torchvision: bool = True, per_layer: bool = False,
                  progress: Progress | None = None) -> BenchReport:
    check_settings(settings)
    analyses = [analyze(request) for request in requests]  # every spec error before any timing
    progress = progress or Progress(len(analyses) * len(batches))
    rows = []
    with torch_settings(settings):
        machine = environment(settings.device)
        profile, profile_note = resolve_profile(profile_name, settings)  # the CPU probe uses the same threads
        peak = profile.peak_flops(settings.dtype) if profile else None
        for analysis in analyses:
            for batch in batches:
                rows.append(_bench_row(analysis.spec, analysis.graph, analysis.cost, batch, settings, profile, peak,
                                       with_torchvision, per_layer, progress))
    return BenchReport(settings, machine, profile, profile_note, rows)


def _bench_row(spec, graph, report, batch, settings, profile, peak, with_torchvision, per_layer, progress) -> BenchRow:
    states = settings.recipe.optimizer_states
    model_estimate = estimate(report, profile, settings.dtype, batch, settings.mode, states) if profile else None
    memory = MemoryCheck.read(report, batch, settings)  # once: the fit, the row and its notes agree
    candidates = [("ours", lambda: build_ours(graph, settings))]
    if with_torchvision and has_peer(graph):
        candidates.append(("torchvision", lambda: build_torchvision(graph, settings)))
    ours, *peer = measure_models(candidates, graph, report, batch, settings, peak, progress, memory)
    row = BenchRow(spec, graph.name, batch, model_estimate, memory.need.total, memory.free_bytes, ours,
                   peer[0] if peer else None)
    if per_layer and ours.ok:
        # the forward pass at inference, whatever the mode: backward kernels run outside the module ranges
        forward = dataclasses.replace(settings, mode="inference")
        forward_estimate = (model_estimate if settings.mode == "inference" or profile is None
                            else estimate(report, profile, settings.dtype, batch, "inference", states))
        measured, row.profiled_total_seconds = _profile_forward(graph, batch, forward)
        _release(settings.device)
        row.layers = layer_timings(forward_estimate, report, measured)
    return row


def _profile_forward(graph: Graph, batch: int, settings: BenchSettings) -> tuple[dict[str, float], float]:
    model = build_ours(graph, settings)
    images, _ = _inputs(graph, batch, settings)
    return profile_layers(model, images)


# ----------------------------------------------------------------------------- command line
def settings_from(args: argparse.Namespace) -> BenchSettings:
    device = resolve_device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.compile_mode and not args.compile:
        raise BenchError("--compile-mode needs --compile")
    if args.iters is not None and args.iters < 1:
        raise BenchError(f"--iters must be at least 1, got {args.iters}")
    if args.warmup < 0 or args.min_time <= 0:
        raise BenchError("--warmup must be >= 0 and --min-time > 0")
    if args.threads is not None and args.threads < 1:
        raise BenchError(f"--threads must be at least 1, got {args.threads}")
    mode = None if args.compile_mode in (None, "default") else args.compile_mode
    return BenchSettings(device=device, dtype=args.dtype, mode=args.mode, channels_last=args.channels_last,
                         compile=args.compile, compile_mode=mode, warmup=args.warmup, iterations=args.iters,
                         min_time=args.min_time, threads=args.threads)


__all__ = ["BenchError", "BenchReport", "BenchRow", "BenchSettings", "Measurement", "TimingStats", "TrainRecipe",
           "measure", "percentile", "run_benchmark", "settings_from", "train_step"]
