"""Importing torchvision where its compiled ops do not load against the installed torch.

A torchvision wheel built for another torch (torchvision 0.28's only wheels are CUDA builds; the
development machines have torch 2.13's CPU wheel) fails at `import torchvision` with "operator
torchvision::nms does not exist": its Python code registers fake kernels for the compiled
detection ops at import time. Defining those ops' schemas first is enough for everything but
the detection ops themselves, and all model definitions import and run (timm imports
torchvision too). Torch is imported here, so only the torch layer asks.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class Torchvision:
    module: ModuleType | None     # None: not installed, or unusable even with the schemas defined
    note: str | None              # said once when the work-around was needed
    library: Any = None           # the schema registration, kept alive as long as this record


@functools.cache
def load_torchvision() -> Torchvision:
    """torchvision, imported as it is or with the compiled ops' schemas defined first (once)."""
    try:
        return Torchvision(importlib.import_module("torchvision"), None)
    except ModuleNotFoundError:
        return Torchvision(None, None)
    except Exception as first:  # noqa: BLE001 - a failing import of any kind: try the schemas once
        failure = f"{type(first).__name__}: {str(first).splitlines()[0] if str(first) else ''}"
    import torch

    library = torch.library.Library("torchvision", "FRAGMENT")
    for op in ("nms", "qnms"):
        with contextlib.suppress(RuntimeError):  # already defined
            library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    try:
        module = importlib.import_module("torchvision")
    except Exception:  # noqa: BLE001 - unusable here; the caller says so where it matters
        return Torchvision(None, f"torchvision cannot be imported ({failure})", library)
    return Torchvision(module, f"torchvision {module.__version__}'s compiled ops do not load against torch "
                       f"{torch.__version__} ({failure}); its model definitions are imported without them, "
                       "the detection ops (nms) are unavailable", library)
