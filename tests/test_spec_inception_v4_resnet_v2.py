"""specs/inception_v4.yaml and specs/inception_resnet_v2.yaml are timm's models, module for module.

Independent sources: timm 1.0's own model classes (`timm.create_model(name, pretrained=False)`,
instantiated, never trained: timm/models/inception_v4.py and inception_resnet_v2.py, ports of the
released TF-Slim graphs) and fvcore's FlopCountAnalysis run on them. Checked: the parameter count
(42,679,816 and 55,843,464), every conv / batch norm / linear module's name and size, timm's
state_dict loading with strict=True into the built model and both giving the same outputs (batch
norm running statistics randomised, so eps and the residual scales are really compared), fvcore's
per-module conv and linear counts against our MACs, and fvcore's total against our
fvcore-compatible total. Skipped cleanly when timm or fvcore cannot be imported.
"""
from __future__ import annotations

import pytest

import inception_analyzer as ia
from conftest import spec_path

NAMES = ("inception_v4", "inception_resnet_v2")
TIMM_PARAMS = {"inception_v4": 42_679_816, "inception_resnet_v2": 55_843_464}
SIZE = 299


@pytest.fixture(scope="module", params=NAMES)
def case(request, timm):
    """timm's model (eval, batch norm statistics randomised) and our report, once per spec."""
    import torch

    name = request.param
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return name, model, ia.analyze(spec_path(name))


def test_total_params_equal_timm(case):
    name, model, report = case
    theirs = sum(p.numel() for p in model.parameters())
    assert theirs == TIMM_PARAMS[name]  # the figure the spec's metadata quotes
    assert report.totals.params == theirs


def test_every_conv_bn_linear_has_timm_name_and_params(case):
    import torch

    _, model, report = case
    kinds = (torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.Linear)  # timm's BatchNormAct2d included
    theirs = {path: sum(p.numel() for p in module.parameters(recurse=False))
              for path, module in model.named_modules() if isinstance(module, kinds)}
    ours = {layer.path: layer.params for layer in report.layers if layer.op in ("conv", "bn", "linear")}
    assert ours == theirs


def test_timm_state_dict_loads_strictly_and_outputs_agree(case):
    import torch

    name, model, _ = case
    ours = ia.build_model(spec_path(name)).eval()
    ours.load_state_dict(model.state_dict(), strict=True)
    assert ours.get_submodule("head_drop").p == model.head_drop.p  # timm's default drop rate
    torch.manual_seed(1)
    image = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        expected, got = model(image), ours(image)
    assert got.shape == expected.shape == (1, 1000)
    scale = expected.abs().max().item()
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-4 * scale)


def test_macs_and_fvcore_total_equal_fvcore_on_timm(case, fvcore_flops):
    """fvcore counts conv/linear multiply-adds per module; its total adds BN and adaptive pooling
    (the residual scale and add are aten::mul / aten::add, which fvcore ignores)."""
    import torch

    name, model, report = case
    analysis = fvcore_flops(model, torch.zeros(1, 3, SIZE, SIZE))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    per_module = analysis.by_module()
    layers = [layer for layer in report.layers if layer.op in ("conv", "linear") and layer.role == "main"]
    assert len(layers) == sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in model.modules())
    for layer in layers:
        assert per_module[layer.path] == layer.macs, layer.path
    by_operator = analysis.by_operator()
    assert by_operator["conv"] + by_operator["linear"] == report.totals.macs
    assert analysis.total() == report.totals.fvcore_flops
