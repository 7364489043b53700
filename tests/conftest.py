"""Shared test helpers: paths, and torchvision / fvcore when they can be imported."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def spec_path(name: str) -> str:
    return str(SPECS / f"{name}.yaml")


def _import_torchvision():
    """torchvision 0.28 has no CPU build for torch 2.13: its compiled ops do not load, and its
    import fails on the missing `torchvision::nms` schema. Defining the two schemas first is
    enough for the model builders (no detection ops are used). Test code only."""
    torch = pytest.importorskip("torch")
    try:
        return importlib.import_module("torchvision")
    except Exception:  # noqa: BLE001 - any import failure means: try the schema work-around
        pass
    library = torch.library.Library("torchvision", "FRAGMENT")
    for op in ("nms", "qnms"):
        try:
            library.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        except RuntimeError:
            pass  # already defined
    _import_torchvision.library = library  # keep the registration alive
    try:
        return importlib.import_module("torchvision")
    except Exception as err:  # noqa: BLE001
        pytest.skip(f"torchvision not importable: {err}")


@pytest.fixture(scope="session")
def torchvision():
    return _import_torchvision()


@pytest.fixture(scope="session")
def fvcore_flops():
    pytest.importorskip("torch")
    module = pytest.importorskip("fvcore.nn")
    return module.FlopCountAnalysis


@pytest.fixture(scope="session")
def timm():
    """timm 1.0 (installed with --no-deps); it imports torchvision, so the schema work-around
    above runs first."""
    _import_torchvision()
    return pytest.importorskip("timm")
