"""The width multiplier (`--width W --round N`, transform.py): every conv's output channels scaled
and rounded, the classes kept, the widths a residual add or a gate ties kept equal, depthwise convs
kept depthwise, and a width that does not fit refused with its location.

Independent sources: the torch model built from the scaled graph (its `sum(p.numel())`, and that a
forward pass runs at all: torch checks every channel count the graph claims), and hand
calculations of the rounding and of a few layers' parameters.
"""
from __future__ import annotations

import pytest

import inception_analyzer as ia
from conftest import spec_path
from inception_analyzer.errors import AnalyzerError, SpecError
from inception_analyzer.pipeline import Request, analyze, load_graph
from inception_analyzer.spec import load_spec_text
from inception_analyzer.transform import scale_widths, width_rounding


def scaled(name: str, width: float, multiple: int = 8, **overrides):
    return analyze(Request(spec_path(name), overrides, None, width, multiple))


@pytest.mark.parametrize("factor, multiple, channels, expected", [
    (0.5, 8, 64, 32), (0.75, 8, 24, 16), (0.75, 8, 20, 16), (1.3, 8, 192, 248), (0.25, 8, 3, 8),
    (0.1, 8, 64, 8), (2.0, 1, 3, 6), (0.5, 1, 3, 2)])
def test_channels_round_to_the_nearest_multiple_and_never_below_one(factor, multiple, channels, expected):
    # 24 x 0.75 = 18 -> 16; 20 x 0.75 = 15 -> 16; 192 x 1.3 = 249.6 -> 248; 3 x 0.5 = 1.5 -> 2 (half up)
    assert width_rounding(factor, multiple)(channels) == expected


def test_width_one_changes_nothing():
    for name in ("inception_v3", "resnet50", "inception_resnet_v2", "googlenet"):
        plain, same = analyze(Request(spec_path(name))), scaled(name, 1.0)
        assert same.totals == plain.totals
        assert [layer.output_shape for layer in same.layers] == [layer.output_shape for layer in plain.layers]


def test_resnet50_at_half_width_by_hand():
    analysis = scaled("resnet50", 0.5)
    shapes = {layer.path: layer.output_shape for layer in analysis.layers}
    params = {layer.path: layer.params for layer in analysis.layers}
    assert shapes["conv1"] == [32, 112, 112]
    assert params["conv1"] == 32 * 3 * 7 * 7
    # the residual adds tie each block's last conv to its shortcut: both 128 wide in layer1 (256 x 0.5)
    assert shapes["layer1.0.conv3"] == shapes["layer1.0.downsample.0"] == [128, 56, 56]
    assert shapes["layer4.2.conv3"] == [1024, 7, 7]
    # the classifier keeps its 1000 classes and reads the narrower features
    assert shapes["fc"] == [1000]
    assert params["fc"] == 1024 * 1000 + 1000


@pytest.mark.parametrize("name, width", [("resnet50", 0.5), ("inception_v3", 0.75), ("inception_v4", 0.5),
                                         ("inception_resnet_v2", 1.3), ("googlenet", 0.6)])
def test_the_scaled_graph_builds_in_torch_with_the_params_it_claims(name, width):
    torch = pytest.importorskip("torch")
    analysis = scaled(name, width)
    model = ia.build_model(analysis).eval()
    assert sum(p.numel() for p in model.parameters()) == analysis.totals.params
    with torch.no_grad():
        out = model(torch.zeros(1, *analysis.input))
    out = out[0] if isinstance(out, tuple) else out
    assert list(out.shape[1:]) == analysis.layers[-1].output_shape


def test_a_concatenated_residual_trunk_pins_the_projection_that_joins_it():
    # Inception-ResNet-v2 adds a 1x1 projection of concatenated branches onto a trunk that is itself
    # a concatenation: at x1.3 the sum of rounded branch widths is not the rounded trunk width, so
    # the projection takes the trunk's width
    graph = load_graph(Request(spec_path("inception_resnet_v2"), {}, None, 1.3))
    for node in graph.order:
        if node.op.name == "add":
            assert len({shape[0] for shape in node.in_shapes}) == 1, node.path


def test_the_output_layers_keep_the_classes_aux_heads_included():
    analysis = scaled("inception_v3", 0.5)
    by_path = {layer.path: layer for layer in analysis.layers}
    assert by_path["fc"].output_shape == [1000]
    assert by_path["AuxLogits.fc"].output_shape == [1000]
    assert analysis.arguments["num_classes"] == 1000


def test_depthwise_convs_stay_depthwise_and_gates_keep_their_tie(torchvision):
    torch = pytest.importorskip("torch")
    model = torchvision.models.efficientnet_b0().eval()
    graph = ia.from_module(model, (3, 224, 224))
    analysis = analyze(Request(graph, {}, None, 0.5))
    depthwise = [n for n in analysis.graph.order if n.op.name == "conv" and n.args["groups"] > 1]
    assert depthwise and all(n.args["groups"] == n.in_shapes[0][0] == n.out_shape[0] for n in depthwise)
    built = ia.build_model(analysis).eval()
    assert sum(p.numel() for p in built.parameters()) == analysis.totals.params
    assert analysis.totals.params < sum(p.numel() for p in model.parameters()) / 2
    with torch.no_grad():
        assert built(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


def test_channel_slices_take_the_same_fraction_of_the_scaled_channels(torchvision):
    torch = pytest.importorskip("torch")
    graph = ia.from_module(torchvision.models.shufflenet_v2_x1_0().eval(), (3, 224, 224))
    analysis = analyze(Request(graph, {}, None, 0.5))
    for node in analysis.graph.order:
        if node.op.name in ("channel_slice", "chunk"):
            assert 2 * node.out_shape[0] == node.in_shapes[0][0], node.path   # ShuffleNet splits in halves
    built = ia.build_model(analysis).eval()
    with torch.no_grad():
        assert built(torch.zeros(1, 3, 224, 224)).shape == (1, 1000)


GROUPED = """\
name: grouped
input: [3, 32, 32]
layers:
  - stem: conv(64, 3, padding=1)
  - grouped: conv(64, 3, padding=1, groups=32)
  - pool: global_avgpool()
  - flatten: flatten()
  - fc: linear(10)
"""


def test_a_width_whose_channels_the_groups_no_longer_divide_is_a_located_error():
    spec = load_spec_text(GROUPED, "grouped.yaml")
    graph = load_graph(Request(spec))
    assert scale_widths(graph, 0.5).node("grouped").out_shape[0] == 32   # 32 groups of one channel
    with pytest.raises(AnalyzerError) as caught:
        scale_widths(graph, 0.3)   # 64 x 0.3 = 19.2 -> 16 channels in 32 groups
    message = str(caught.value)
    assert message.startswith("grouped.yaml:5:")
    assert "(at grouped)" in message and "width x0.3" in message and "\n" not in message


@pytest.mark.parametrize("factor, multiple", [(0, 8), (-1, 8), (float("nan"), 8), (65, 8), (0.5, 0), (True, 8)])
def test_a_width_or_rounding_out_of_range_is_refused(factor, multiple):
    graph = load_graph(Request(load_spec_text(GROUPED, "grouped.yaml")))
    with pytest.raises(SpecError):
        scale_widths(graph, factor, multiple)
