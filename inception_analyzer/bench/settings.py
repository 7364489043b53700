"""What a benchmark runs under: BenchSettings, their check, and the torch switches a run sets."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

import torch

from ..analysis.roofline import MODES
from ..build import resolve_dtype
from ..dtypes import get_dtype
from .limits import DEFAULT_MIN_TIME, DEFAULT_WARMUP, BenchError
from .recipe import TrainRecipe


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
