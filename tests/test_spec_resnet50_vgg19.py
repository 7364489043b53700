"""specs/resnet50.yaml and specs/vgg19.yaml are torchvision's `resnet50` and `vgg19`, module for module.

Independent sources the specs are checked against:
  - torchvision's published figures (model docs / IMAGENET1K_V1 weights meta): resnet50 has
    25,557,032 parameters and 4.09 "GFLOPS", vgg19 143,667,240 and 19.63 (1 multiply-add counted
    as 1 op);
  - torchvision's model classes themselves, instantiated in the test, never trained: their
    parameter count, the name and size of every conv / batch norm / linear module, their
    state_dict loaded with strict=True into the model built from the spec, and their outputs;
  - fvcore's FlopCountAnalysis run on the torchvision models: multiply-adds per conv / linear
    module and its total (conv + linear + batch norm + adaptive pooling).
The torchvision and fvcore tests are skipped cleanly when those packages cannot be imported.
"""
from __future__ import annotations

import pytest

import inception_analyzer as ia
from conftest import spec_path

# spec name -> (torchvision params, torchvision docs "GFLOPS" as printed, digits printed)
PUBLISHED = {
    "resnet50": (25_557_032, 4.09, 2),
    "vgg19": (143_667_240, 19.63, 2),
}
SPECS = list(PUBLISHED)
WEIGHTED = ("Conv2d", "BatchNorm2d", "Linear")
SIZE = 224


def report(name: str):
    return ia.analyze(spec_path(name))


@pytest.fixture(scope="module", params=SPECS)
def torchvision_model(request, torchvision):
    """(spec name, torchvision's model with default init, eval mode)."""
    import torch

    torch.manual_seed(0)
    return request.param, getattr(torchvision.models, request.param)(weights=None).eval()


# ----------------------------------------------------------------------------- published figures
@pytest.mark.parametrize("name", SPECS)
def test_params_are_torchvisions_published_count(name):
    assert report(name).totals.params == PUBLISHED[name][0]


@pytest.mark.parametrize("name", SPECS)
def test_macs_are_torchvisions_docs_gflops_to_the_printed_precision(name):
    _, gflops, digits = PUBLISHED[name]
    assert round(report(name).totals.macs / 1e9, digits) == gflops


@pytest.mark.parametrize("name", SPECS)
def test_spec_metadata_states_the_published_figures(name):
    params, gflops, _ = PUBLISHED[name]
    meta = ia.load_spec(spec_path(name)).metadata
    assert meta["published_params"] == params
    assert meta["published_macs"] == pytest.approx(gflops * 1e9)


def test_depth_counts_the_weighted_layers_the_names_count():
    assert report("resnet50").totals.depth == 50
    assert report("vgg19").totals.depth == 19


# ----------------------------------------------------------------------------- structure
def test_vgg19_is_vgg16_plus_one_3x3_conv_in_each_of_the_last_three_stages():
    """Configuration E adds conv3-256, conv3-512, conv3-512 (weights + bias) to D."""
    extra = (256 * 256 * 9 + 256) + 2 * (512 * 512 * 9 + 512)
    assert report("vgg19").totals.params - report("vgg16").totals.params == extra


def test_resnet50_has_3_4_6_3_bottlenecks_on_the_56_28_14_7_grids():
    shapes = {layer.path: layer.output_shape for layer in report("resnet50").layers}
    for stage, (blocks, channels, grid) in enumerate([(3, 256, 56), (4, 512, 28), (6, 1024, 14), (3, 2048, 7)], 1):
        for block in range(blocks):
            assert shapes[f"layer{stage}.{block}.relu_2"] == [channels, grid, grid]
        assert f"layer{stage}.{blocks}.conv1" not in shapes
    assert shapes["fc"] == [1000]


def test_resnet50_is_v1_5_the_stride_is_on_the_3x3_conv():
    shapes = {layer.path: layer.output_shape for layer in report("resnet50").layers}
    assert shapes["layer2.0.conv1"] == [128, 56, 56]   # v1 would already be on 28x28 here
    assert shapes["layer2.0.conv2"] == [128, 28, 28]
    assert shapes["layer2.0.downsample.0"] == [512, 28, 28]


def test_resnet50_shortcuts_projection_first_then_identity_and_relu_after_the_sum():
    graph = ia.load_graph(spec_path("resnet50"))
    assert graph.node("layer1.0.add").inputs == ("layer1.0.bn3", "layer1.0.downsample.1")
    assert graph.node("layer1.1.add").inputs == ("layer1.1.bn3", "layer1.0.relu_2")  # identity
    assert graph.node("layer1.0.relu_2").inputs == ("layer1.0.add",)
    projections = sorted(n.path.rsplit(".", 2)[0] for n in graph.layers() if n.path.endswith("downsample.0"))
    assert projections == ["layer1.0", "layer2.0", "layer3.0", "layer4.0"]


# ----------------------------------------------------------------------------- against torchvision
def test_total_params_equal_torchvision(torchvision_model):
    name, model = torchvision_model
    assert report(name).totals.params == sum(p.numel() for p in model.parameters())


def test_every_conv_bn_linear_has_torchvision_name_and_params(torchvision_model):
    name, model = torchvision_model
    theirs = {path: sum(p.numel() for p in module.parameters())
              for path, module in model.named_modules() if type(module).__name__ in WEIGHTED}
    ours = {layer.path: layer.params for layer in report(name).layers if layer.op in ("conv", "bn", "linear")}
    assert ours == theirs


def test_torchvision_state_dict_loads_strictly_and_outputs_agree(torchvision_model):
    import torch

    name, theirs = torchvision_model
    torch.manual_seed(1)
    for module in theirs.modules():  # non-trivial running statistics, so BN is really compared
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    ours = ia.build_model(spec_path(name)).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    image = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        expected, got = theirs(image), ours(image)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_macs_and_fvcore_total_equal_fvcore_on_torchvision(torchvision_model, fvcore_flops):
    """fvcore counts conv/linear multiply-adds per module; its total adds BN and adaptive pooling."""
    import torch

    name, model = torchvision_model
    analysis = fvcore_flops(model, torch.zeros(1, 3, SIZE, SIZE))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    per_module = analysis.by_module()
    ours = report(name)
    checked = 0
    for layer in ours.layers:
        if layer.op in ("conv", "linear") and layer.role == "main":
            assert per_module[layer.path] == layer.macs, layer.path
            checked += 1
    assert checked == ours.totals.weighted_layers
    assert analysis.total() == ours.totals.fvcore_flops
