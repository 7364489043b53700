"""A benchmark run: one row per model and batch size (run_benchmark), and the timing of the models
of one row, interleaved in blocks when they fit side by side (measure_models)."""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ..analysis.latency import LatencyProfile
from ..analysis.memory import MemoryEstimate, MemorySettings
from ..analysis.roofline import DeviceProfile, model_flops
from ..build import free_memory_bytes
from ..graph import Graph
from ..pipeline import ModelAnalysis, Request, analyze
from .host_allocator import onednn_channel_block, steady_allocator
from .limits import BenchError
from .machine import calibrated_profile, environment, prediction_mismatch, resolve_profile
from .memory import step_peak_bytes
from .peers import build_torchvision, has_peer
from .profile_check import check_profile
from .profiler import layer_timings, profile_forward
from .progress import Progress
from .records import (DOES_NOT_FIT, NOT_COMPARABLE, OK, OUT_OF_MEMORY, BenchReport, BenchRow, MachineLoad,
                      Measurement)
from .settings import BenchSettings, check_settings, torch_settings
from .stats import TimingStats
from .timing import block_sizes, iterations_for, seconds_per_iteration, synchronize, time_iterations, warm_up
from .workload import Step, build_ours, make_inputs, make_step

INTERLEAVED_ROUNDS = 4

Candidate = tuple[str, Callable[[], nn.Module]]     # (implementation, how to build its model)


def run_benchmark(requests: list[Request], batches: list[int], settings: BenchSettings, profile_name: str | None = None,
                  with_torchvision: bool = True, per_layer: bool = False,
                  progress: Progress | None = None) -> BenchReport:
    check_settings(settings)
    analyses = [analyze(request) for request in requests]  # every spec error before any timing
    calibrated = calibrated_profile(profile_name)          # a profile file's error too
    progress = progress or Progress(len(analyses) * len(batches), settings.describe())
    rows = []
    with torch_settings(settings):
        machine = environment(settings.device)
        allocator = steady_allocator(settings.device)
        if allocator:
            machine["host allocator"] = allocator
        load = MachineLoad(os.cpu_count() or 1, torch.get_num_threads() if settings.device.type == "cpu" else 1)
        _sample_load(load)
        profile, profile_note = resolve_profile(profile_name, settings)  # the CPU probe uses the same threads
        # before any timing: a profile without a peak for the dtype fails here
        peak = profile.peak_flops(settings.dtype) if profile else None
        mismatch = prediction_mismatch(calibrated, settings) if calibrated else None
        predicting = calibrated if calibrated and not mismatch else None
        for analysis in analyses:
            for batch in batches:
                rows.append(_bench_row(analysis, batch, settings, profile, peak, with_torchvision, per_layer,
                                       progress, predicting))
                _sample_load(load)
        # after the rows, so its tensors never shape the heap the models were measured on: whether the
        # machine still runs as the profile says, beside a measured / predicted that is off
        machine_check = check_profile(predicting, settings.device) if predicting else None
    note = f"the calibrated prediction does not apply to this run: {mismatch}" if mismatch else ""
    return BenchReport(settings, machine, profile, profile_note, rows, load, note, machine_check)


def _sample_load(load: MachineLoad) -> None:
    with contextlib.suppress(OSError, AttributeError):  # no load average on this system: nothing to say
        load.samples.append(os.getloadavg()[0])


def _bench_row(analysis: ModelAnalysis, batch: int, settings: BenchSettings, profile: DeviceProfile | None,
               peak: float | None, with_torchvision: bool, per_layer: bool, progress: Progress,
               calibrated: LatencyProfile | None = None) -> BenchRow:
    graph, report, optimizer = analysis.graph, analysis.cost, settings.recipe.optimizer
    model_estimate = analysis.estimate(profile, settings.dtype, batch, settings.mode, optimizer) if profile else None
    prediction = analysis.predict(calibrated, batch, settings.dtype) if calibrated else None
    memory = MemoryCheck.read(analysis, batch, settings)  # once: the fit, the row and its notes agree
    candidates: list[Candidate] = [("ours", lambda: build_ours(graph, settings))]
    if with_torchvision and has_peer(graph):
        candidates.append(("torchvision", lambda: build_torchvision(graph, settings)))
    ours, *peer = measure_models(candidates, graph, analysis, batch, settings, peak, progress, memory)
    row = BenchRow(analysis.spec, graph.name, batch, model_estimate, memory.need.total, memory.free_bytes,
                   ours, peer[0] if peer else None, prediction=prediction)
    if per_layer and ours.ok:
        # the forward pass at inference, whatever the mode: backward kernels run outside the module ranges
        forward_estimate = (model_estimate if settings.mode == "inference" or profile is None
                            else analysis.estimate(profile, settings.dtype, batch, "inference", optimizer))
        measured, row.profiled_total_seconds = profile_forward(graph, batch,
                                                               dataclasses.replace(settings, mode="inference"))
        _release(settings.device)
        row.layers = layer_timings(forward_estimate, report, measured, prediction)
    return row


@dataclass(frozen=True)
class MemoryCheck:
    """What a batch needs (the peak of analysis/memory.py, on the device's backend) and what the
    device has free."""

    need: MemoryEstimate
    free_bytes: int | None              # None: unknown, and then everything is tried

    @classmethod
    def read(cls, analysis: ModelAnalysis, batch: int, settings: BenchSettings) -> MemoryCheck:
        need = analysis.memory(memory_settings(batch, settings)).estimate
        return cls(need, free_memory_bytes(settings.device))

    def fits(self, models: int = 1) -> bool:
        """Whether `models` of this size fit at once: beside the one running, the others keep
        their weights and training state."""
        if self.free_bytes is None:
            return True
        resident = self.need.weights_bytes + self.need.training_state_bytes
        return self.need.total + resident * (models - 1) <= self.free_bytes


@dataclass
class _Prepared:
    """A built, warmed-up model waiting for its timed blocks."""

    implementation: str
    step: Step
    iterations: int
    resident_bytes: int                 # CUDA memory it holds between steps (weights, state, inputs)
    samples: list[float] = field(default_factory=list)
    peak_bytes: int | None = None


def memory_settings(batch: int, settings: BenchSettings) -> MemorySettings:
    """The memory analysis's settings for one row: the recipe's optimizer, the device's backend
    and, on a CPU, its oneDNN channel block (the analysis alone assumes AVX-512's)."""
    block = {"channel_block": onednn_channel_block()} if settings.device.type == "cpu" else {}
    return MemorySettings(batch=batch, dtype=settings.dtype, mode=settings.mode, backend=settings.device.type,
                          optimizer=settings.recipe.optimizer, **block)


def measure_models(candidates: list[Candidate], graph: Graph, analysis: ModelAnalysis, batch: int,
                   settings: BenchSettings, peak_flops: float | None, progress: Progress,
                   memory: MemoryCheck | None = None) -> list[Measurement]:
    """Time each (implementation, build) at one batch size, interleaved when several fit at once.

    The timed iterations of the models alternate in INTERLEAVED_ROUNDS blocks (A B, B A, A B,
    B A), so a slow drift of the machine (clocks, heat, other work) falls on all of them alike
    and their ratio keeps; a model that does not fit beside the others is timed alone. A batch
    whose predicted peak memory exceeds the free memory is not run; one that runs out of memory
    anyway is reported as such, never ends the run. `memory` is the row's check, read here when
    the caller has none."""
    memory = memory or MemoryCheck.read(analysis, batch, settings)
    steady_allocator(settings.device)   # whatever the process ran before (bench/host_allocator.py)
    base = dict(batch=batch, peak_flops=peak_flops, model_flops=model_flops(analysis.totals, batch, settings.mode))
    if not memory.fits():
        return [Measurement(name, DOES_NOT_FIT, **base) for name, _ in candidates]
    groups = [candidates] if memory.fits(len(candidates)) else [[candidate] for candidate in candidates]
    results: dict[str, Measurement] = {}
    for group in groups:
        names = [name for name, _ in group]
        progress.start(f"{graph.name} batch {batch} {' + '.join(names)}")
        try:
            for name, (status, timing, peak) in _prepare_and_time(group, graph, analysis, batch, settings,
                                                                  progress).items():
                results[name] = Measurement(name, status, timing=timing, peak_memory_bytes=peak, **base)
        except (RuntimeError, MemoryError) as err:
            if not _is_out_of_memory(err):
                raise
            results.update({name: Measurement(name, OUT_OF_MEMORY, **base) for name in names})
        finally:
            progress.done()
            _release(settings.device)  # the models, inputs and optimizers died with _prepare_and_time's frame
    return [results[name] for name, _ in candidates]


def _prepare_and_time(group: list[Candidate], graph: Graph, analysis: ModelAnalysis, batch: int,
                      settings: BenchSettings, progress: Progress
                      ) -> dict[str, tuple[str, TimingStats | None, int | None]]:
    """Build, warm up and size every model of the group, then time them in interleaved blocks:
    implementation -> (status, timing, peak memory). On CUDA the peak is the caching allocator's
    over the timed iterations; on the CPU one more step runs under the profiler after them
    (bench/memory.py: the CPU allocator's peak from its memory events)."""
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
            if implementation != "ours" and sum(p.numel() for p in model.parameters()) != analysis.totals.params:
                outcome[implementation] = (NOT_COMPARABLE, None, None)
                continue
            images, labels = make_inputs(graph, batch, settings)
            step = make_step(model, images, labels, settings)
            _first_call(step, settings, implementation)
            warm_up(step, settings.warmup)
            iterations = settings.iterations or iterations_for(seconds_per_iteration(step, settings.device),
                                                               settings.min_time)
            synchronize(settings.device)
            held = allocated() - baseline - sum(p.resident_bytes for p in prepared)
            prepared.append(_Prepared(implementation, step, iterations, held))
            del model, images, labels, step
        _time_interleaved(prepared, settings, progress)
        if not cuda:
            for p in prepared:
                p.peak_bytes = step_peak_bytes(p.step)
    for p in prepared:
        outcome[p.implementation] = (OK, TimingStats(tuple(p.samples)), p.peak_bytes)
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


def _first_call(step: Callable[[], Any], settings: BenchSettings, implementation: str) -> None:
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


def _is_out_of_memory(err: BaseException) -> bool:
    return isinstance(err, torch.OutOfMemoryError) or "can't allocate memory" in str(err)


def _release(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
