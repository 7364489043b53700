"""Shared test helpers: paths, and torchvision / fvcore when they can be imported."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def spec_path(name: str) -> str:
    return str(SPECS / f"{name}.yaml")


def _import_torchvision():
    """torchvision, through the package's own work-around for a torchvision whose compiled ops do
    not load against this torch (inception_analyzer/torchvision_compat.py); skip without it."""
    pytest.importorskip("torch")
    from inception_analyzer.torchvision_compat import load_torchvision

    loaded = load_torchvision()
    if loaded.module is None:
        pytest.skip(f"torchvision not importable: {loaded.note or 'not installed'}")
    return loaded.module


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
