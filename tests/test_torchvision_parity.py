"""The torchvision-compatible specs are torchvision's models, module for module.

Independent source: torchvision's own model classes (instantiated, never trained) and fvcore's
FlopCountAnalysis run on them. Skipped cleanly when torchvision or fvcore cannot be imported.
"""
from __future__ import annotations

import pytest

import inception_analyzer as ia
from conftest import spec_path

# spec name -> (torchvision builder, builder kwargs, our overrides, input size)
CASES = {
    "inception_v3": ("inception_v3", {"aux_logits": True, "init_weights": False}, {}, 299),
    "inception_v3 without aux": ("inception_v3", {"aux_logits": False, "init_weights": False},
                                 {"aux_logits": False}, 299),
    "googlenet": ("googlenet", {"aux_logits": True, "init_weights": False}, {}, 224),
    "googlenet without aux": ("googlenet", {"aux_logits": False, "init_weights": False},
                              {"aux_logits": False}, 224),
    "vgg16": ("vgg16", {}, {}, 224),
    "alexnet": ("alexnet", {}, {}, 224),
}
WEIGHTED = ("Conv2d", "BatchNorm2d", "Linear")


def _spec_of(case: str) -> str:
    return spec_path(case.split(" ")[0])


def _torchvision_model(torchvision, case: str):
    builder, kwargs, _, _ = CASES[case]
    return getattr(torchvision.models, builder)(weights=None, **kwargs).eval()


@pytest.mark.parametrize("case", CASES)
def test_total_params_equal_torchvision(torchvision, case):
    model = _torchvision_model(torchvision, case)
    report = ia.analyze(_spec_of(case), CASES[case][2])
    assert report.totals.params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("case", CASES)
def test_every_conv_bn_linear_has_torchvision_name_and_params(torchvision, case):
    model = _torchvision_model(torchvision, case)
    theirs = {name: sum(p.numel() for p in module.parameters())
              for name, module in model.named_modules() if type(module).__name__ in WEIGHTED}
    report = ia.analyze(_spec_of(case), CASES[case][2])
    ours = {layer.path: layer.params for layer in report.layers if layer.op in ("conv", "bn", "linear")}
    assert ours == theirs


@pytest.mark.parametrize("case", ["inception_v3", "googlenet without aux", "vgg16", "alexnet"])
def test_macs_and_fvcore_total_equal_fvcore_on_torchvision(torchvision, fvcore_flops, case):
    """fvcore counts conv/linear multiply-adds per module; its total adds BN and adaptive pooling."""
    import torch

    model = _torchvision_model(torchvision, case)
    size = CASES[case][3]
    analysis = fvcore_flops(model, torch.zeros(1, 3, size, size))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    per_module = analysis.by_module()
    report = ia.analyze(_spec_of(case), CASES[case][2])
    for layer in report.layers:
        if layer.op in ("conv", "linear") and layer.role == "main":
            assert per_module[layer.path] == layer.macs, layer.path
    assert analysis.total() == report.totals.fvcore_flops
