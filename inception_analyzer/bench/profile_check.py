"""Is a calibrated profile still this machine's? A handful of the calibration's own kinds of case
timed now, each beside the price the profile puts on it (analysis/latency.py's `predict_layer`,
as a model's layer of that kind and shapes is priced).

A profile holds the machine as it was while `calibrate` ran. On a shared or virtual machine
that moves: on the development machine (a 2-core Zen 3 guest) the calibration case of an
in-place ReLU over 25.7 MB (batch 32 of 64 x 56 x 56) was priced at 0.284 ms by a profile
calibrated at 13:50 UTC and took 0.557 ms two and a half hours later, in the hour when resnet50's
convolutions, each timed alone, took what that profile said. The tensor no longer got the share
of the last-level cache it had had. Every prediction from that profile then reads low for the
models whose layers move such tensors, and no profile can know it. The check says so in
seconds: its cases span what prices a model (convolutions, a depthwise one, batch norm, an
activation and the memory copy), the data-bound ones on tensors well within and well beyond the
profile's cache (`cache_bytes`), and each row gives now / profile.
"""
from __future__ import annotations

import math

import torch

from ..analysis.latency import COPY_KEY, CURVE, LatencyProfile, LayerWork, predict_layer
from ..build import resolve_dtype
from ..dtypes import get_dtype
from .calibrate import COPY, Case, Normals, case_work, prepare, time_case
from .host_allocator import warm_allocations
from .records import BEYOND_CACHE, CONVOLUTIONS, IN_CACHE, CheckRow

MIN_TIME = 0.1             # seconds of calls per case
DEFAULT_CACHE = 32 * 2**20  # where a profile records no cache (a GPU's): the sizes are placed around this


def check_cases(profile: LatencyProfile) -> list[tuple[Case, str]]:
    """The cases timed, each with its regime: three convolutions (the reference 3x3 at batch 1, a
    1x1 at batch 8, a depthwise 3x3), then batch norm, an in-place ReLU and the memory copy on
    tensors of an eighth of the cache and of four times it (whole 64-channel maps, as calibration
    shapes them)."""
    element_bytes = get_dtype(profile.dtype).bytes
    cache = profile.cache_bytes or DEFAULT_CACHE
    cases = [(Case("conv", {"out": 64, "kernel": 3, "padding": 1, "bias": False}, ((64, 56, 56),), 1), CONVOLUTIONS),
             (Case("conv", {"out": 256, "kernel": 1, "bias": False}, ((256, 14, 14),), 8), CONVOLUTIONS),
             (Case("conv", {"out": 144, "kernel": 3, "padding": 1, "groups": 144, "bias": False},
                   ((144, 56, 56),), 8), CONVOLUTIONS)]
    for fraction, regime in ((1 / 8, IN_CACHE), (4, BEYOND_CACHE)):
        side = max(4, math.isqrt(int(cache * fraction / element_bytes) // 64))
        batch = 1
        while side > 112:                     # as calibration does: beyond 112 x 112, more images
            batch *= 4
            side //= 2
        shape = ((64, side, side),)
        cases += [(Case("bn", {}, shape, batch), regime),
                  (Case("relu", {"inplace": True}, shape, batch, in_place=True), regime),
                  (Case(COPY, {}, shape, batch), regime)]
    return cases


def describe(case: Case, key: str, dtype: str) -> str:
    """'conv 3x3/1 depthwise, 8 x 144x56x56' or 'relu (in place), 64 x 64x90x90 (127 MiB)'."""
    (shape,) = case.inputs
    text = f"{key}, {case.batch} x {'x'.join(str(d) for d in shape)}"
    if key.startswith("conv"):
        return text
    return f"{text} ({case.batch * math.prod(shape) * get_dtype(dtype).bytes / 2**20:,.0f} MiB)"


def check_profile(profile: LatencyProfile, device: torch.device, min_time: float = MIN_TIME) -> list[CheckRow]:
    """Time the check cases on `device` now (on warm memory, as calibration times them) and price
    each by `profile`."""
    dtype = resolve_dtype(profile.dtype)
    cases = check_cases(profile)
    normals = Normals(max(case.batch * math.prod(shape) for case, _ in cases for shape in case.inputs))
    roofs = profile.device_profile()
    rows = []
    with warm_allocations(device):
        for case, regime in cases:
            prepared = prepare(case, device, dtype, roofs, profile.dtype, normals)
            measured = time_case(prepared, device, min_time)
            # priced as the prediction prices such a layer alone (its entry's overhead and kernel); the
            # copy by the profile's copy curve, over the elements it reads and writes
            work = (LayerWork(COPY_KEY, CURVE, size=prepared.sample.size) if case.op == COPY
                    else case_work(case)[4])
            how, _, _, overhead, kernel, _ = predict_layer(work, profile, prepared.roofline_seconds)
            rows.append(CheckRow(describe(case, work.key, profile.dtype), regime, measured, overhead + kernel, how))
    return rows

