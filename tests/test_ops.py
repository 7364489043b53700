"""Each op's rules alone: output shape, params and MACs, against hand calculations and against
torch's own layers (the independent source for shape arithmetic such as ceil_mode pooling)."""
from __future__ import annotations

import itertools
import subprocess
import sys

import pytest

from inception_analyzer.errors import ShapeError, SpecError
from inception_analyzer.numbers import numel
from inception_analyzer.ops import OPS, Category, MergeKind

from conftest import ROOT, spec_path


def rule(op_name: str, in_shape: tuple, *args, **kwargs):
    op = OPS[op_name]
    a = op.bind(list(args), kwargs)
    out = op.output_shape(a, [in_shape])
    return out, op.params(a, [in_shape], out), op.macs(a, [in_shape], out)


def test_conv_by_hand():
    # 3x3, 64 -> 128 on 56x56, stride 1, pad 1, bias: 128*64*9 + 128 params; 56*56*128 * 64*9 MACs
    out, params, macs = rule("conv", (64, 56, 56), 128, 3, padding=1)
    assert out == (128, 56, 56)
    assert params == 128 * 64 * 9 + 128
    assert macs == 56 * 56 * 128 * 64 * 9


def test_grouped_dilated_asymmetric_conv_by_hand():
    # groups=4: each output channel sees 32/4 = 8 inputs; 1x7 kernel, dilation 2 along width
    out, params, macs = rule("conv", (32, 17, 17), 64, [1, 7], padding=[0, 6], dilation=[1, 2], groups=4, bias=False)
    assert out == (64, 17, 17)  # width: 17 + 12 - 2*6 - 1 + 1 = 17
    assert params == 64 * 8 * 7
    assert macs == 64 * 17 * 17 * 8 * 7


def test_linear_by_hand():
    out, params, macs = rule("linear", (2048,), 1000)
    assert (out, params, macs) == ((1000,), 2048 * 1000 + 1000, 2048 * 1000)


def test_bn_params_and_buffers():
    op = OPS["bn"]
    a = op.bind([], {"eps": 0.001})
    assert op.params(a, [(192, 35, 35)], (192, 35, 35)) == 384
    assert op.buffers(a, [(192, 35, 35)], (192, 35, 35)) == 2 * 192 + 1  # + num_batches_tracked


def test_same_padding_keeps_the_grid_for_even_kernels():
    assert rule("conv", (3, 15, 15), 8, 4, padding="same")[0] == (8, 15, 15)


def test_padding_larger_than_half_the_pool_kernel_is_refused():
    with pytest.raises(ShapeError, match="exceeds half the kernel"):
        rule("maxpool", (8, 16, 16), 3, padding=2)


def test_unknown_argument_is_reported_with_a_suggestion():
    with pytest.raises(SpecError, match="did you mean 'ceil_mode'"):
        rule("maxpool", (8, 16, 16), 3, ceil=True)


CONV_GRID = list(itertools.product([7, 8, 17, 35], [1, 3, 5, (1, 7)], [1, 2], [0, 1, 2], [1, 2]))
POOL_GRID = list(itertools.product([7, 8, 14, 17, 35, 112], [2, 3, 5], [1, 2, 3], [0, 1], [False, True]))


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("size, kernel, stride, padding, dilation", CONV_GRID)
def test_conv_output_shape_equals_torch(torch, size, kernel, stride, padding, dilation):
    layer = torch.nn.Conv2d(4, 6, kernel, stride, padding, dilation)
    try:
        expected = tuple(layer(torch.zeros(1, 4, size, size)).shape[1:])
    except RuntimeError:
        with pytest.raises(ShapeError):
            rule("conv", (4, size, size), 6, kernel, stride=stride, padding=padding, dilation=dilation)
        return
    assert rule("conv", (4, size, size), 6, kernel, stride=stride, padding=padding, dilation=dilation)[0] == expected


@pytest.mark.parametrize("size, kernel, stride, padding, ceil_mode", POOL_GRID)
@pytest.mark.parametrize("op_name, torch_name", [("maxpool", "MaxPool2d"), ("avgpool", "AvgPool2d")])
def test_pool_output_shape_equals_torch(torch, op_name, torch_name, size, kernel, stride, padding, ceil_mode):
    if padding > kernel // 2:
        return  # refused by torch and by us (tested above)
    layer = getattr(torch.nn, torch_name)(kernel, stride, padding, ceil_mode=ceil_mode)
    try:
        expected = tuple(layer(torch.zeros(1, 2, size, size)).shape[1:])
    except RuntimeError:
        with pytest.raises(ShapeError):
            rule(op_name, (2, size, size), kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)
        return
    got = rule(op_name, (2, size, size), kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)[0]
    assert got == expected


def test_every_op_makes_a_module_with_the_inferred_shape(torch):
    """The registry's make_module and output_shape agree, op by op (the builder relies on it)."""
    cases = {"conv": ((3, 9, 9), [4, 3], {}), "linear": ((12,), [5], {}), "bn": ((3, 9, 9), [], {}),
             "lrn": ((8, 9, 9), [5], {}), "maxpool": ((3, 9, 9), [3], {"stride": 2, "ceil_mode": True}),
             "avgpool": ((3, 9, 9), [3], {"stride": 1, "padding": 1}), "adaptive_avgpool": ((3, 9, 9), [2], {}),
             "adaptive_maxpool": ((3, 9, 9), [1], {}), "dropout": ((3, 9, 9), [], {}), "flatten": ((3, 9, 9), [], {}),
             "identity": ((3, 9, 9), [], {}), "softmax": ((10,), [], {}), "scale": ((3, 9, 9), [0.17], {}),
             "channel_linear": ((6, 5, 5), [4], {}), "layer_norm": ((6, 5, 5), [], {}),
             "global_avgpool": ((3, 9, 9), [], {}), "chunk": ((6, 5, 5), [4, 2], {}),
             "channel_slice": ((6, 5, 5), [1, 4], {}), "channel_shuffle": ((6, 5, 5), [3], {}),
             "layer_scale": ((6, 5, 5), [], {}), "pad": ((3, 9, 9), [[0, 1, 2, 3]], {}),
             "upsample": ((3, 4, 5), [[2, 3]], {"mode": "bilinear"})}
    activations = [name for name, op in OPS.items() if op.category is Category.ACTIVATION and name not in cases]
    cases.update({name: ((3, 9, 9), [], {}) for name in activations})
    buildable = {name for name, op in OPS.items() if (op.builds_module or op.builds_parameter) and op.modelled}
    assert buildable == set(cases)
    for name, (shape, args, kwargs) in cases.items():
        op = OPS[name]
        a = op.bind(args, kwargs)
        out = op.output_shape(a, [shape])
        made = op.make_module(a, [shape], out)
        x = torch.zeros(1, *shape)
        y = op.apply(made, x) if op.builds_parameter else made(x)
        assert tuple(y.shape[1:]) == out, name
        params = [made] if op.builds_parameter else list(made.parameters())
        assert sum(p.numel() for p in params) == op.params(a, [shape], out), name


def test_pad_adds_zeros_in_torchs_order_and_costs_nothing(torch):
    op = OPS["pad"]
    a = op.bind([[0, 1, 2, 3]], {})       # left, right, top, bottom, as nn.ZeroPad2d takes them
    assert op.output_shape(a, [(3, 8, 8)]) == (3, 8 + 2 + 3, 8 + 0 + 1)
    assert op.bind([2], {})["padding"] == (2, 2, 2, 2) and op.bind([[1, 2]], {})["padding"] == (1, 2, 0, 0)
    assert (op.params(a, [(3, 8, 8)], (3, 13, 9)), op.macs(a, [(3, 8, 8)], (3, 13, 9)),
            op.other_flops(a, [(3, 8, 8)], (3, 13, 9))) == (0, 0, 0)
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(op.make_module(a, [(3, 8, 8)], (3, 13, 9))(x), torch.nn.functional.pad(x, (0, 1, 2, 3)))
    for bad in ([1, 2, 3], 1.5, "same", [[1, 1], [1, 1]], 2**64, -2**64):
        with pytest.raises(SpecError, match="'padding'"):
            op.bind([bad], {})
    with pytest.raises(ShapeError, match="feature map"):
        op.output_shape(a, [(12,)])


def test_pad_may_fill_minus_infinity_and_crop(torch):
    """Before a max pool, TensorFlow's 'same' pads -inf ('-inf' in a call); a negative side crops
    (NASNet shifts a map by a pixel with ZeroPad2d((-1, 1, -1, 1))): the grid keeps its size and
    the field starts a pixel further in."""
    op = OPS["pad"]
    minus = op.bind([[0, 1, 0, 1]], {"value": "-inf"})
    assert minus["value"] == float("-inf") == op.bind([1], {"value": float("-inf")})["value"]
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(op.make_module(minus, [(3, 8, 8)], (3, 9, 9))(x),
                               torch.nn.functional.pad(x, (0, 1, 0, 1), value=float("-inf")))
    shift = op.bind([[-1, 1, -1, 1]], {})
    assert op.output_shape(shift, [(3, 8, 8)]) == (3, 8, 8)
    assert torch.equal(op.make_module(shift, [(3, 8, 8)], (3, 8, 8))(x)[:, :, :7, :7], x[:, :, 1:, 1:])
    assert op.rf_step(shift, [(3, 8, 8)], (8, 8)).padding == (-1, -1)
    with pytest.raises(ShapeError, match="crops a 8x8 grid to nothing"):
        op.output_shape(op.bind([[-4, -4, 0, 0]], {}), [(3, 8, 8)])
    for bad in (float("inf"), "inf", float("nan")):
        with pytest.raises(SpecError, match="'value'"):
            op.bind([1], {"value": bad})


def test_conv_padding_may_be_larger_after_the_map_as_tensorflows_same(torch):
    """padding=[[top, bottom], [left, right]]: a 3x3/2 on 8 x 8 padded 0 + 1 rows and 1 + 2
    columns is (8 + 1 - 3) // 2 + 1 = 4 rows by (8 + 3 - 3) // 2 + 1 = 5 columns, and computes
    what F.pad then the convolution computes; its leading padding is where the field starts."""
    op = OPS["conv"]
    a = op.bind([4, 3], {"stride": 2, "padding": [[0, 1], [1, 2]]})
    assert a["padding"] == ((0, 1), (1, 2))
    out = op.output_shape(a, [(3, 8, 8)])
    assert out == (4, 4, 5) and op.geometry(a, [(3, 8, 8)], out).padding == (0, 1)
    assert op.macs(a, [(3, 8, 8)], out) == 4 * 5 * 4 * 27
    made = op.make_module(a, [(3, 8, 8)], out)
    x = torch.randn(2, 3, 8, 8)
    expected = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 2, 0, 1)), made.weight, made.bias, 2)
    torch.testing.assert_close(made(x), expected, rtol=0, atol=0)
    # both sides alike: the plain form, as torch's Conv2d takes it
    assert op.bind([4, 3], {"padding": [[1, 1], [2, 2]]})["padding"] == (1, 2)
    assert op.bind([4, 3], {"padding": [1, [0, 1]]})["padding"] == ((1, 1), (0, 1))
    for bad in ([[0, 1, 2], 1], [[0, -1], 0], [[0, 1], "same"]):
        with pytest.raises(SpecError, match="'padding'"):
            op.bind([4, 3], {"padding": bad})


def test_batch_norm_of_a_vector_is_batchnorm1d(torch):
    """A classifier head's BatchNorm1d: the features are the channels; 2 parameters and 2 running
    statistics each (and the step count), 2 FLOPs per element at inference."""
    op = OPS["bn"]
    a = op.bind([], {})
    assert op.output_shape(a, [(12,)]) == (12,)
    assert (op.params(a, [(12,)], (12,)), op.buffers(a, [(12,)], (12,)), op.other_flops(a, [(12,)], (12,))) == \
        (24, 25, 24)
    made = op.make_module(a, [(12,)], (12,))
    assert isinstance(made, torch.nn.BatchNorm1d)
    assert sum(p.numel() for p in made.parameters()) == 24 and sum(b.numel() for b in made.buffers()) == 25


def test_upsample_makes_the_grid_finer_as_torch_does(torch):
    """By a whole factor or to a size; nearest copies (0 FLOPs), bilinear weighs four neighbours (4
    per output element). fvcore counts 1 and 4 per output element (checked against fvcore where
    the fvcore tests run)."""
    op = OPS["upsample"]
    x = torch.randn(2, 3, 4, 5)
    for args, kwargs, expected in (([2], {}, (3, 8, 10)), ([[2, 3]], {"mode": "bilinear"}, (3, 8, 15)),
                                   ([], {"size": [7, 9], "mode": "bilinear", "align_corners": True}, (3, 7, 9)),
                                   ([], {"size": [7, 7]}, (3, 7, 7))):
        a = op.bind(args, kwargs)
        out = op.output_shape(a, [(3, 4, 5)])
        assert out == expected
        reference = torch.nn.functional.interpolate(
            x, size=expected[1:], mode=a["mode"], align_corners=a["align_corners"] if a["mode"] == "bilinear" else None)
        torch.testing.assert_close(op.make_module(a, [(3, 4, 5)], out)(x), reference, rtol=0, atol=1e-6)
        reads = 1 if a["mode"] == "nearest" else 4
        assert op.other_flops(a, [(3, 4, 5)], out) == (0 if reads == 1 else 4 * numel(out))
        assert op.fvcore_flops(a, [(3, 4, 5)], out) == reads * numel(out)
    with pytest.raises(SpecError, match="a scale or a size"):
        op.bind([], {})
    with pytest.raises(SpecError, match="a scale or a size"):
        op.bind([2], {"size": [8, 8]})
    with pytest.raises(ShapeError, match="a coarser grid"):
        op.output_shape(op.bind([], {"size": [3, 3]}), [(3, 4, 5)])
    with pytest.raises(SpecError, match="'mode'"):
        op.bind([2], {"mode": "bicubic"})


def test_scale_multiplies_by_its_factor_and_costs_one_flop_per_element(torch):
    op = OPS["scale"]
    a = op.bind([0.17], {})
    assert op.output_shape(a, [(4, 5, 5)]) == (4, 5, 5)
    assert (op.params(a, [(4, 5, 5)], (4, 5, 5)), op.macs(a, [(4, 5, 5)], (4, 5, 5))) == (0, 0)
    assert op.other_flops(a, [(4, 5, 5)], (4, 5, 5)) == 100
    x = torch.randn(2, 4, 5, 5)
    assert torch.equal(op.make_module(a, [(4, 5, 5)], (4, 5, 5))(x), x * 0.17)


def test_mul_broadcasts_a_channel_gate_over_the_grid(torch):
    op = OPS["mul"]
    assert op.output_shape({}, [(16, 7, 7), (16, 1, 1)]) == (16, 7, 7)
    assert op.other_flops({}, [(16, 7, 7), (16, 1, 1)], (16, 7, 7)) == 16 * 49
    with pytest.raises(ShapeError, match="broadcast"):
        op.output_shape({}, [(16, 7, 7), (8, 1, 1)])
    with pytest.raises(ShapeError, match="one rank"):
        op.output_shape({}, [(16, 7, 7), (16,)])
    x, gate = torch.randn(2, 16, 7, 7), torch.rand(2, 16, 1, 1)
    assert torch.equal(op.combine([x, gate]), x * gate)


def test_opaque_keeps_shape_and_weights_and_refuses_to_build():
    """An imported op no kind models: its traced shape and weights count, its MACs are unknown."""
    op = OPS["opaque"]
    a = op.bind([[4, 7, 7], "torch.sort"], {"params": 12})
    assert op.output_shape(a, [(4, 9, 9)]) == (4, 7, 7) and op.params(a, [(4, 9, 9)], (4, 7, 7)) == 12
    assert not op.modelled
    with pytest.raises(SpecError, match="cannot be built"):
        op.make_module(a, [(4, 9, 9)], (4, 7, 7))
    with pytest.raises(SpecError, match=r"\[C, H, W\] or \[N\]"):
        op.bind([[4, 7], "x"], {})


def geometry(in_shape: tuple, *args, **kwargs):
    op = OPS["conv"]
    a = op.bind(list(args), kwargs)
    return op.geometry(a, [in_shape], op.output_shape(a, [in_shape]))


def test_conv_geometry_resolves_padding_and_names_its_kind():
    g = geometry((32, 17, 17), 64, [1, 7], padding="same", dilation=[1, 2], groups=4, bias=False)
    assert (g.kernel, g.stride, g.padding, g.dilation) == ((1, 7), (1, 1), (0, 6), (1, 2))
    assert (g.groups, g.in_channels, g.out_channels, g.bias) == (4, 32, 64, False)
    assert g.grouped and g.spatial and not (g.depthwise or g.pointwise or g.square)
    assert geometry((8, 9, 9), 8, 3, padding="valid").padding == (0, 0)
    depthwise = geometry((32, 9, 9), 64, 3, padding=1, groups=32)
    assert depthwise.depthwise and depthwise.square and depthwise.padding == (1, 1)
    assert not geometry((32, 9, 9), 48, 3, groups=16).depthwise  # grouped, several inputs per group
    pointwise = geometry((32, 9, 9), 16, 1)
    assert pointwise.pointwise and not pointwise.spatial and not pointwise.grouped


def test_only_conv_like_ops_have_a_geometry():
    op = OPS["linear"]
    a = op.bind([10], {})
    assert op.geometry(a, [(20,)], (10,)) is None
    assert OPS["maxpool"].geometry(OPS["maxpool"].bind([3], {}), [(4, 9, 9)], (4, 3, 3)) is None


def test_merge_kinds_and_constant_factors():
    assert {name: op.merge_kind for name, op in OPS.items() if op.merges} == {
        "concat": MergeKind.CONCAT, "add": MergeKind.ADD, "mul": MergeKind.GATE}
    assert OPS["scale"].constant_factor(OPS["scale"].bind([0.17], {})) == 0.17
    assert OPS["relu"].constant_factor(OPS["relu"].bind([], {})) is None


def test_analysis_path_does_not_import_torch():
    code = ("import sys, inception_analyzer as ia; from inception_analyzer.render.tables import render; "
            f"render(ia.analyze({spec_path('inception_v3')!r}), 'json'); print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.stdout.strip() == "False", proc.stderr
