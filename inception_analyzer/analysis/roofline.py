"""Roofline estimate: how fast a model could run on a device, from the analysis's records alone.

Pure arithmetic on the cost records (analysis/cost.py) and a device profile (devices.yaml); no
torch import, so `analyze --device h100` works on a machine without torch or a GPU. For a batch
of B images in a dtype of e bytes per element, each layer costs

    compute time = B * 2 * MACs / matmul peak[dtype]  +  B * other FLOPs / vector peak
    bytes moved  = e * (B * (input elements + output elements) + params)
    memory time  = bytes moved / memory bandwidth
    layer time   = max(compute time, memory time)      -> compute-bound or memory-bound

(MACs and other FLOPs as docs/conventions.md counts them; 1 multiply-accumulate = 2 FLOPs on the
matrix units). A layer that computes nothing over a single input of its own size (flatten,
dropout at inference, identity) is a view or a no-op: it moves nothing. The model's time is the
sum over its layers: eager execution, one kernel per op, each starting when the previous one
ends, with no fusion, no overlap and no launch overhead. So the estimate is low where launches
dominate (small batches) and high where a compiler fuses element-wise ops into their conv.

Training runs every layer, auxiliary heads included, three times (forward, backward to the
inputs, backward to the weights: each about a forward's FLOPs and traffic), then the optimizer
step: gradient clipping (read the gradients for their norm, read and write them to scale) and the
update (read parameter, gradient and each optimizer state; write parameter and states), in fp32
master weights as mixed-precision training keeps them.

Memory needed (to say in advance whether a batch fits) is not estimated here: it is the peak of
analysis/memory.py's walk of the graph (weights, optimizer state, gradients, what autograd keeps,
workspaces), which the pipeline computes and hands to `estimate`, with the largest batch that fits
the profile's memory.
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from ..errors import AnalyzerError, did_you_mean, shown
from ..dtypes import FP32, get_dtype
from ..numbers import numel
from ..ops.base import CPU, CUDA, OPS, OpKind
from .cost import AUX, CostReport, LayerCost, Totals
from .memory import MODES, MemoryEstimate

DEVICES_FILE = Path(__file__).resolve().parent.parent / "devices.yaml"
TRAIN_PASSES = 3                             # forward, backward to inputs, backward to weights
MASTER_BYTES = FP32.bytes                    # weights, gradients and optimizer states in training
TERA = 1e12
GIGA = 1e9


class ProfileError(AnalyzerError):
    kind = "device profile error"


@dataclass(frozen=True)
class DeviceProfile:
    """A device's roofs. FLOP/s and bytes/s, not tera-: the YAML's units are converted on load."""

    name: str
    title: str
    matmul_flops: dict[str, float]   # dense peak of the matrix units per dtype
    vector_flops: float              # element-wise work (FP32 on the CUDA cores, or the CPU's vector units)
    memory_bandwidth: float
    memory_bytes: int | None = None
    match: tuple[str, ...] = ()
    source: str = ""
    measured: bool = False

    @property
    def backend(self) -> str:
        """How eager PyTorch runs on it, for the memory analysis: the measured profile is this
        machine's CPU, every datasheet profile a CUDA GPU."""
        return CPU if self.measured else CUDA

    def peak_flops(self, dtype: str) -> float:
        if dtype not in self.matmul_flops:
            how = " (measured here without torch: only fp32; `bench` measures the others)" if self.measured else ""
            raise ProfileError(f"profile '{self.name}' has no {dtype} peak{how}; it has "
                               f"{', '.join(self.matmul_flops)}")
        return self.matmul_flops[dtype]

    def ridge_point(self, dtype: str) -> float:
        """FLOP per byte above which a layer is compute-bound."""
        return self.peak_flops(dtype) / self.memory_bandwidth


@dataclass(frozen=True)
class CpuMeasurement:
    """What a probe measured on this machine: peak matmul FLOP/s per dtype and copy bandwidth."""

    matmul_flops: dict[str, float]
    memory_bandwidth: float
    tool: str


# ----------------------------------------------------------------------------- profiles
def load_profiles(path: Path = DEVICES_FILE) -> dict[str, dict]:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def profile_names(path: Path = DEVICES_FILE) -> list[str]:
    return list(load_profiles(path))


def device_profile(name: str, measure_cpu: Callable[[], CpuMeasurement] | None = None,
                   path: Path = DEVICES_FILE) -> DeviceProfile:
    """The profile called `name` in devices.yaml; a measured one is measured now (once per run)."""
    profiles = load_profiles(path)
    if name not in profiles:
        hint = did_you_mean(name, profiles) or f"known profiles: {', '.join(profiles)}"
        raise ProfileError(f"unknown device profile '{name}'", hint=hint)
    raw = profiles[name]
    if raw.get("measured"):
        measurement = (measure_cpu or measure_cpu_with_numpy)()
        return DeviceProfile(name=name, title=f"{raw['title']}, {measurement.tool}",
                             matmul_flops=dict(measurement.matmul_flops),
                             # the CPU's element-wise work runs on the same vector units as its matmuls
                             vector_flops=measurement.matmul_flops["fp32"],
                             memory_bandwidth=measurement.memory_bandwidth, source=raw["source"], measured=True)
    return DeviceProfile(name=name, title=raw["title"],
                         matmul_flops={dtype: tflops * TERA for dtype, tflops in raw["matmul_tflops"].items()},
                         vector_flops=raw["vector_tflops"] * TERA, memory_bandwidth=raw["memory_tb_s"] * TERA,
                         memory_bytes=int(raw["memory_gb"] * GIGA), match=tuple(raw.get("match", ())),
                         source=raw["source"])


def profile_matching(device_name: str, path: Path = DEVICES_FILE) -> str | None:
    """The profile whose `match` substrings occur in a CUDA device's name, or None."""
    for name, raw in load_profiles(path).items():
        if any(pattern in device_name for pattern in raw.get("match", ())):
            return name
    return None


def _best_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: first-touch page faults, thread pool start
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


@functools.cache
def measure_cpu_with_numpy(matmul_size: int = 1024, copy_bytes: int = 256 * 2**20) -> CpuMeasurement:
    """Peak fp32 matmul FLOP/s and copy bandwidth of this CPU, best of a few runs (cached per run).

    numpy has no bf16 and its fp16 matmul does not use the matrix units, so only fp32 is measured
    here (tf32 is fp32 on a CPU); `bench` measures every dtype with torch instead.
    """
    try:
        import numpy as np
    except ImportError:
        raise ProfileError("the cpu profile is measured on the spot and needs numpy here "
                           "(or run `bench`, which measures it with torch)") from None
    rng = np.random.default_rng(0)
    a = rng.standard_normal((matmul_size, matmul_size), dtype=np.float32)
    b = rng.standard_normal((matmul_size, matmul_size), dtype=np.float32)
    matmul = 2 * matmul_size**3 / _best_seconds(lambda: a @ b, repeats=5)
    source = np.ones(copy_bytes // 4, dtype=np.float32)
    target = np.empty_like(source)
    # a copy reads every byte once and writes it once
    bandwidth = 2 * source.nbytes / _best_seconds(lambda: np.copyto(target, source), repeats=5)
    return CpuMeasurement({"fp32": matmul, "tf32": matmul}, bandwidth, f"numpy {np.__version__}")


# ----------------------------------------------------------------------------- estimates
@dataclass
class LayerEstimate:
    """One layer's roofline for a whole batch: FLOPs, bytes moved, and the time each roof allows."""

    path: str
    op: str
    role: str
    block: str
    stage: str
    flops: float
    bytes: float
    compute_seconds: float
    memory_seconds: float

    @property
    def seconds(self) -> float:
        return max(self.compute_seconds, self.memory_seconds)

    @property
    def bound(self) -> str:
        if self.seconds == 0:
            return "-"
        return "compute" if self.compute_seconds >= self.memory_seconds else "memory"

    @property
    def intensity(self) -> float | None:
        """FLOP per byte moved (None for a layer that moves nothing)."""
        return self.flops / self.bytes if self.bytes else None


@dataclass
class ModelEstimate:
    model: str
    profile: DeviceProfile
    dtype: str
    batch: int
    mode: str
    layers: list[LayerEstimate]
    memory: MemoryEstimate | None   # the peak of analysis/memory.py (None: not computed)
    model_flops: float          # the conventional count: 2 x MACs x batch (x3 in training)
    notes: list[str] = field(default_factory=list)
    largest_batch: int | None = None    # the largest batch whose peak fits the profile's memory

    @property
    def seconds(self) -> float:
        return sum(layer.seconds for layer in self.layers)

    @property
    def images_per_second(self) -> float:
        return self.batch / self.seconds if self.seconds else math.inf

    @property
    def flops(self) -> float:
        return sum(layer.flops for layer in self.layers)

    @property
    def bytes(self) -> float:
        return sum(layer.bytes for layer in self.layers)

    @property
    def compute_bound_share(self) -> float:
        """Share of the estimated time spent in compute-bound layers."""
        total = self.seconds
        return sum(l.seconds for l in self.layers if l.bound == "compute") / total if total else 0.0

    @property
    def peak_share(self) -> float:
        """The share of the dtype's matmul peak the estimate implies (model FLOPs / time / peak)."""
        return self.model_flops / self.seconds / self.profile.peak_flops(self.dtype) if self.seconds else 0.0


def check_settings(dtype: str, batch: int, mode: str) -> None:
    get_dtype(dtype)
    if mode not in MODES:
        raise ProfileError(f"unknown mode '{mode}'", hint=f"use {' or '.join(MODES)}")
    if not isinstance(batch, int) or batch < 1:
        raise ProfileError(f"the batch size must be a positive integer, got {shown(batch)}")


def moves_data(record: LayerCost) -> bool:
    """False for a view or no-op (shapes_move_data)."""
    return shapes_move_data(record.macs, record.other_flops, record.input_shapes, record.output_shape,
                            OPS.get(record.op))


def shapes_move_data(macs: int, other_flops: int, input_shapes, output_shape, op: OpKind | None = None) -> bool:
    """Whether a layer reads and writes its tensors (the latency prediction asks before any record
    exists). One that computes nothing on a single input moves nothing where its op kind hands on
    its input or a view of it (OpKind.passes_input, views_input: an identity, a flatten, a slice of
    the channels), and copies it otherwise, as many elements as it reads or not (a channel shuffle's
    transpose, a padding). Where the op kind is not known, or not modelled (an opaque import), as
    many elements out as in is taken for a reshape, a view."""
    if macs or other_flops or len(input_shapes) != 1:
        return True
    if op is None or not op.modelled:
        return numel(input_shapes[0]) != numel(output_shape)
    return not (op.views_input or op.passes_input)


def layer_bytes(record: LayerCost, dtype: str, batch: int) -> int:
    """Bytes one inference pass of the layer moves: inputs and output per image, weights once."""
    if not moves_data(record):
        return 0
    elements = batch * (sum(numel(s) for s in record.input_shapes) + numel(record.output_shape)) + record.params
    return get_dtype(dtype).bytes * elements


def estimate_layer(record: LayerCost, profile: DeviceProfile, dtype: str, batch: int,
                   mode: str = "inference") -> LayerEstimate:
    passes = TRAIN_PASSES if mode == "train" else 1
    matmul_flops = passes * batch * 2 * record.macs
    vector_flops = passes * batch * record.other_flops
    moved = passes * layer_bytes(record, dtype, batch)
    return LayerEstimate(
        path=record.path, op=record.op, role=record.role, block=record.block, stage=record.stage,
        flops=matmul_flops + vector_flops, bytes=moved,
        compute_seconds=matmul_flops / profile.peak_flops(dtype) + vector_flops / profile.vector_flops,
        memory_seconds=moved / profile.memory_bandwidth)


def optimizer_step_bytes(params: int, optimizer_states: int) -> int:
    """Clipping (3 passes over the gradients) plus the update (3 + 2 x states passes), fp32."""
    clipping = 3
    update = 3 + 2 * optimizer_states
    return MASTER_BYTES * params * (clipping + update)


def estimate_optimizer_step(params: int, profile: DeviceProfile, optimizer_states: int) -> LayerEstimate:
    moved = optimizer_step_bytes(params, optimizer_states)
    return LayerEstimate(path="(optimizer step)", op="optimizer", role="train", block="(optimizer step)",
                         stage="optimizer", flops=0.0, bytes=moved, compute_seconds=0.0,
                         memory_seconds=moved / profile.memory_bandwidth)


def model_flops(totals: Totals, batch: int, mode: str = "inference") -> float:
    """The conventional FLOP count of a run: 2 x MACs per image (aux heads and x3 in training)."""
    if mode == "train":
        return TRAIN_PASSES * 2 * (totals.macs + totals.macs_aux) * batch
    return 2 * totals.macs * batch


def estimate(report: CostReport, profile: DeviceProfile, dtype: str = "fp32", batch: int = 1,
             mode: str = "inference", optimizer_states: int = 1, memory: MemoryEstimate | None = None,
             largest_batch: int | None = None) -> ModelEstimate:
    """The roofline estimate of one batch (inference) or one training step of a model; `memory`
    and `largest_batch` come from analysis/memory.py (ModelAnalysis.estimate computes them)."""
    check_settings(dtype, batch, mode)
    records = [r for r in report.layers if mode == "train" or r.role != AUX]
    layers = [estimate_layer(r, profile, dtype, batch, mode) for r in records]
    if mode == "train":
        layers.append(estimate_optimizer_step(report.totals.params, profile, optimizer_states))
    notes = ["eager execution: one kernel per op, no fusion, no overlap, no launch overhead"]
    if mode == "train":
        notes.append(f"training: every layer x{TRAIN_PASSES} (forward, backward to inputs and to weights), "
                     f"aux heads included, then clipping and an optimizer step with {optimizer_states} "
                     "state(s) per parameter in fp32")
    return ModelEstimate(model=report.model, profile=profile, dtype=dtype, batch=batch, mode=mode, layers=layers,
                         memory=memory, model_flops=model_flops(report.totals, batch, mode), notes=notes,
                         largest_batch=largest_batch)
