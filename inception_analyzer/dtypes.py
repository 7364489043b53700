"""The dtypes a run can ask for, in one table: analyze's estimate, build and bench all read it.

Torch-free: the torch dtype is named, and `build` turns the name into the object.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import AnalyzerError, did_you_mean


class DTypeError(AnalyzerError):
    kind = "dtype error"


@dataclass(frozen=True)
class DType:
    name: str            # what the user writes: fp32, tf32, bf16, fp16
    bytes: int           # bytes per element as stored
    torch_name: str      # the torch dtype tensors are stored in ("float32", ...)
    # tf32 is fp32 storage whose matmuls and convolutions run on NVIDIA's tensor cores at 10-bit
    # mantissa; on a CPU it is plain fp32
    tensor_cores_fp32: bool = False
    half: bool = False   # a 16-bit type: mixed-precision training autocasts to it over fp32 weights


DTYPES: dict[str, DType] = {
    "fp32": DType("fp32", 4, "float32"),
    "tf32": DType("tf32", 4, "float32", tensor_cores_fp32=True),
    "bf16": DType("bf16", 2, "bfloat16", half=True),
    "fp16": DType("fp16", 2, "float16", half=True),
}
DTYPE_NAMES = tuple(DTYPES)
FP32 = DTYPES["fp32"]


def get_dtype(name: str) -> DType:
    """The dtype called `name`, or a DTypeError naming the ones there are."""
    if name not in DTYPES:
        raise DTypeError(f"unknown dtype '{name}'",
                         hint=did_you_mean(str(name), DTYPES) or f"use {', '.join(DTYPES)}")
    return DTYPES[name]
