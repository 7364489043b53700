"""Shared test helpers: paths, and torchvision / fvcore when they can be imported."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def spec_path(name: str) -> str:
    return str(SPECS / f"{name}.yaml")


def _import_torchvision():
    """torchvision, through the benchmark's import with its work-around (bench/peers.py: torchvision
    0.28 has no CPU build for torch 2.13); the test skips where it cannot be imported."""
    pytest.importorskip("torch")
    from inception_analyzer.bench.peers import import_torchvision

    module, _ = import_torchvision()
    if module is None:
        pytest.skip("torchvision not importable")
    return module


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
