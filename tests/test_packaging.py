"""The wheel is the whole product: built from the sources, installed into a new virtual
environment with the lock (requirements.lock), it analyses a bundled spec by name from a
directory that is not the repository, without torch."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

# what the wheel is built from: the sources as a fresh clone has them (no .venv, no build output)
LEFT_OUT = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                  ".hypothesis", "out")


def run(*args, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, args))}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A new venv holding the wheel and what the lock pins for it: its bin/ directory."""
    scratch = tmp_path_factory.mktemp("wheel")
    sources = scratch / "src"
    shutil.copytree(ROOT, sources, ignore=LEFT_OUT, symlinks=True)
    # the build backend is the pinned setuptools of this environment, not an unpinned isolated one
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", scratch / "dist",
        sources, cwd=scratch)
    (wheel,) = (scratch / "dist").glob("inception_analyzer-*.whl")
    run(sys.executable, "-m", "venv", scratch / "venv", cwd=scratch)
    bin_dir = scratch / "venv" / "bin"
    run(bin_dir / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", "-c",
        ROOT / "requirements.lock", wheel, cwd=scratch)
    return bin_dir


def test_the_installed_wheel_analyzes_a_bundled_spec_by_name_elsewhere(installed, tmp_path):
    proc = run(installed / "inception-analyzer", "analyze", "inception_v3", "--format", "json", cwd=tmp_path)
    totals = json.loads(proc.stdout)["totals"]
    assert (totals["params"], totals["macs"]) == (27_161_264, 5_713_216_096)  # torchvision's figures


def test_the_installed_wheel_lists_and_compares_its_specs(installed, tmp_path):
    listed = run(installed / "inception-analyzer", "list", cwd=tmp_path).stdout
    bundled = sorted(p.stem for p in (ROOT / "specs").glob("*.yaml"))
    assert [line.split()[0] for line in listed.splitlines()[2:]] == bundled
    compared = run(installed / "inception-analyzer", "compare", "--format", "csv", cwd=tmp_path).stdout
    assert len(compared.splitlines()) == 1 + 10   # the default set: ten models


def test_the_analysis_needs_no_torch(installed, tmp_path):
    proc = subprocess.run([installed / "python", "-c", "import torch"], capture_output=True, text=True)
    assert proc.returncode != 0, "the wheel's own dependencies must not pull torch"
