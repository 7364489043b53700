"""The coverage table of docs/import.md: every classification CNN of torchvision and the chosen
timm models, imported as a user would (`inception-analyzer import MODULE:CALLABLE`, the model's
usual input size), with its params, MACs per image and the import's wall time on this machine
(the better of two runs: building the model with its own initialisation, tracing it, writing the
spec and checking it).

Each row is checked while it is made: params against the model's `sum(p.numel())`, MACs against
torch's FlopCounterMode (conv and linear FLOPs / 2) at the same input size. The exactness test
(tests/test_import_coverage.py) checks the same, and the written spec's outputs, at small sizes.

    python tools/import_coverage.py > /tmp/table.md     # a few minutes on 2 cores
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402

import inception_analyzer as ia  # noqa: E402
from inception_analyzer.importer import import_to_spec, load_callable  # noqa: E402
from inception_analyzer.torchvision_compat import load_torchvision  # noqa: E402
from test_import_coverage import TIMM_MODELS, TRANSFORMERS, conv_and_linear_macs  # noqa: E402

SIZES = {"inception_v3": 299, "inception_v4": 299, "inception_resnet_v2": 299, "legacy_xception": 299,
         "xception41": 299, "nasnetalarge": 331}


def row(package: str, reference: str, name: str) -> str:
    size = SIZES.get(name, 224)
    seconds = []
    for _ in range(2):   # the better of two: the machine is shared
        start = time.perf_counter()
        imported, text = import_to_spec(reference, (3, size, size))
        seconds.append(time.perf_counter() - start)
    totals = ia.analyze(imported.graph).totals
    model = load_callable(reference).eval()
    assert totals.params == sum(p.numel() for p in model.parameters()), name
    assert totals.macs == conv_and_linear_macs(model, torch.zeros(1, 3, size, size)), name
    lines = text.count("\n")
    return (f"| {package} | {name} | {size} | {totals.params:,} | {totals.macs / 1e9:.3f} G | {lines} | "
            f"{min(seconds):.1f} s |")


def main() -> None:
    torchvision = load_torchvision().module
    print("| package | model | input | params | MACs | spec lines | import time |")
    print("|---|---|---|---|---|---|---|")
    names = [n for n in torchvision.models.list_models(module=torchvision.models) if not n.startswith(TRANSFORMERS)]
    for name in names:
        print(row("torchvision", f"torchvision.models:{name}", name), flush=True)
    for name in TIMM_MODELS:
        print(row("timm", f'timm:create_model("{name}")', name), flush=True)


if __name__ == "__main__":
    main()
