"""Receptive fields: hand-computed cases, then the published figures of standard networks.

Published figures: google-research/receptive_field's table (the Distill article "Computing
Receptive Fields of Convolutional Neural Networks", Araujo, Norris & Sim, 2019, links it),
computed on the TF-Slim models: receptive field r, effective stride j, effective padding P.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

import inception_analyzer as ia
from conftest import ROOT, spec_path


def fields_of(text: str):
    report = ia.analyze(ia.load_graph(ia.load_spec_text(textwrap.dedent(text), "t.yaml")))
    return report.receptive_fields


def header(size: int = 32) -> str:
    return f"name: t\ninput: [3, {size}, {size}]\nlayers:\n"


# ----------------------------------------------------------------------------- by hand
def test_stack_of_three_3x3_convs_sees_7x7():
    # r = 1 + 2 + 2 + 2 = 7, stride stays 1, padding 1 per layer: P = 3, centre (7-1)/2 - 3 = 0
    rf = fields_of(header() + "  - a: conv(8, 3, padding=1)\n  - b: conv(8, 3, padding=1)\n"
                   "  - c: conv(8, 3, padding=1)\n")
    assert (rf["a"].size, rf["b"].size, rf["c"].size) == ((3, 3), (5, 5), (7, 7))
    assert rf["c"].stride == (1, 1) and rf["c"].padding == (3, 3) and rf["c"].center == (0.0, 0.0)


def test_stride_2_then_3x3_doubles_the_growth():
    # after the stride-2 3x3: r = 3, j = 2; the next 3x3 adds (3-1)*2 = 4: r = 7, j = 2
    rf = fields_of(header() + "  - a: conv(8, 3, stride=2)\n  - b: conv(8, 3)\n")
    assert rf["a"].size == (3, 3) and rf["a"].stride == (2, 2)
    assert rf["b"].size == (7, 7) and rf["b"].stride == (2, 2) and rf["b"].padding == (0, 0)


def test_two_branches_with_different_kernels_keep_largest_and_smallest():
    # 1x1 branch: r = 1; 5x5 pad 2 branch: r = 5, P = 2, centre 2 - 2 = 0 = the 1x1's centre: aligned
    rf = fields_of(header() + "  - m:\n      concat:\n        - conv(4, 1)\n        - conv(4, 5, padding=2)\n")
    assert rf["m.concat"].size == (5, 5) and rf["m.concat"].size_min == (1, 1)
    assert rf["m.concat"].aligned


def test_stride_2_conv_padded_beside_unpadded_pool_is_not_aligned():
    # conv 3x3/2 pad 1: unit 0 centred on pixel (3-1)/2 - 1 = 0; maxpool 3x3/2 pad 0: on pixel 1
    rf = fields_of(header() + "  - m:\n      concat:\n        - conv(4, 3, stride=2, padding=1)\n"
                   "        - maxpool(3, stride=2, ceil_mode=true)\n  - after: conv(4, 1)\n")
    assert not rf["m.concat"].aligned
    assert not rf["after"].aligned  # what reads an unaligned merge is unaligned too


def test_padding_after_the_map_keeps_the_first_unit_where_tensorflow_puts_it():
    # TensorFlow's 'same' 3x3/2 on 8 pixels pads 0 before and 1 after: unit 0 is centred on pixel
    # (3-1)/2 - 0 = 1, where torch's symmetric padding=1 centres it on pixel 0; padding before the
    # map (pad([1, 0, 1, 0])) shifts it back to 0. Sizes and strides are the convolution's.
    rf = fields_of(header(8) + "  - pad([0, 1, 0, 1])\n  - tf: conv(4, 3, stride=2)\n"
                   "  - from: input\n  - torch: conv(4, 3, stride=2, padding=1)\n"
                   "  - from: input\n  - pad([1, 0, 1, 0])\n  - before: conv(4, 3, stride=2)\n")
    assert rf["tf"].size == rf["torch"].size == rf["before"].size == (3, 3)
    assert rf["tf"].stride == (2, 2) and rf["tf"].padding == (0, 0) and rf["tf"].center == (1.0, 1.0)
    assert rf["torch"].center == rf["before"].center == (0.0, 0.0) and rf["before"].padding == (1, 1)
    # the same padding as the convolution's own: the same field
    own = fields_of(header(8) + "  - tf: conv(4, 3, stride=2, padding=[[0, 1], [0, 1]])\n")["tf"]
    assert (own.size, own.stride, own.padding, own.center) == (rf["tf"].size, (2, 2), (0, 0), (1.0, 1.0))


def test_upsampling_brings_the_units_closer_and_bilinear_widens_the_field():
    # after a 3x3/2 (r = 3, j = 2), nearest x2: units 1 input pixel apart, the field unchanged;
    # bilinear x2 reads two neighbours 2 pixels apart: r = 3 + 2 = 5; a resize of 4 to 7 units
    # puts them 4/7 x 2 pixels apart
    rf = fields_of(header(8) + "  - down: conv(4, 3, stride=2, padding=1)\n  - near: upsample(2)\n"
                   "  - from: down\n  - bi: upsample(2, mode='bilinear')\n  - from: down\n"
                   "  - resized: upsample(size=[7, 7])\n")
    assert (rf["near"].size, rf["near"].stride, rf["near"].padding) == ((3, 3), (1, 1), (1, 1))
    assert rf["bi"].size == (5, 5) and rf["bi"].stride == (1, 1)
    assert rf["resized"].stride == (pytest.approx(8 / 7), pytest.approx(8 / 7)) and rf["resized"].size == (3, 3)


def test_asymmetric_kernels_grow_each_axis_on_its_own():
    rf = fields_of(header(17) + "  - a: conv(4, [1, 7], padding=[0, 3])\n  - b: conv(4, [7, 1], padding=[3, 0])\n")
    assert rf["a"].size == (1, 7) and rf["a"].padding == (0, 3)
    assert rf["b"].size == (7, 7) and rf["b"].padding == (3, 3)


def test_dilation_spreads_the_kernel():
    # 3x3 with dilation 2 spans 5 pixels
    assert fields_of(header() + "  - a: conv(4, 3, dilation=2)\n")["a"].size == (5, 5)


def test_ceil_mode_changes_the_grid_not_the_first_unit():
    floor = fields_of(header(8) + "  - p: maxpool(3, stride=2)\n")["p"]
    ceil = fields_of(header(8) + "  - p: maxpool(3, stride=2, ceil_mode=true)\n")["p"]
    assert (floor.size, floor.stride, floor.padding) == (ceil.size, ceil.stride, ceil.padding) == ((3, 3), (2, 2), (0, 0))
    assert floor.grid == (3, 3) and ceil.grid == (4, 4)


def test_global_pooling_and_linear_layers_see_the_whole_grid():
    # 8x8 -> conv 3x3/2 -> 3x3 grid, r = 3, j = 2; global pooling adds (3-1)*2 = 4: r = 7
    rf = fields_of(header(8) + "  - c: conv(4, 3, stride=2)\n  - g: adaptive_avgpool(1)\n")
    assert rf["g"].size == (7, 7) and rf["g"].stride == (6, 6)
    # flatten keeps one unit's field; the linear layer reading all 3x3 positions has r = 7
    rf = fields_of(header(8) + "  - c: conv(4, 3, stride=2)\n  - f: flatten\n  - fc: linear(10)\n")
    assert rf["f"].size == (3, 3) and rf["fc"].size == (7, 7)


def test_a_squeeze_and_excitation_gate_widens_the_field_but_moves_no_centre():
    """A residual block whose branch is gated (SE) and then projected by a 1x1: the gate's global
    pooling makes every unit see the whole 32x32 input (r = 1 + 2 + 31 = 34 on the branch), but the
    branch stays centred where its 3x3 is, on pixel 0 like the identity shortcut: the add is
    aligned, and so is what follows. By hand: 3x3 pad 1 -> centre (3 - 1) / 2 - 1 = 0."""
    rf = fields_of(header() + textwrap.indent(textwrap.dedent("""\
        - stem: conv(8, 1)
        - block:
            add:
              - []
              - - conv3: conv(8, 3, padding=1)
                - se:
                    mul:
                      - - adaptive_avgpool
                        - conv(2, 1)
                        - relu
                        - conv(8, 1)
                        - sigmoid
                      - []
                - project: conv(8, 1)
        - after: conv(8, 3, padding=1)
    """), "  "))
    assert rf["block.se.mul"].size == (34, 34) and rf["block.se.mul"].center == (0.0, 0.0)
    assert rf["block.project"].center == (0.0, 0.0)  # not (34 - 1) / 2 - 1: the gate has no centre
    assert rf["block.add"].aligned and rf["after"].aligned
    assert rf["after"].center == (0.0, 0.0) and rf["after"].size == (36, 36)


def test_residual_shortcut_is_the_smallest_path():
    rf = fields_of(header() + "  - r:\n      add:\n        - - conv(3, 3, padding=1)\n          - conv(3, 3, padding=1)\n"
                   "        - []\n")
    assert rf["r.add"].size == (5, 5) and rf["r.add"].size_min == (1, 1) and rf["r.add"].aligned


# ----------------------------------------------------------------------------- published figures
def block_fields(spec: str, overrides=None, input_size=None) -> dict:
    report = ia.analyze(spec_path(spec), overrides, input_size)
    return {b.name: report.receptive_fields[b.output_path] for b in report.blocks} | report.receptive_fields


# google-research/receptive_field, inception_v3 (TF-Slim, which torchvision follows): r, j, P
INCEPTION_V3 = {
    "Conv2d_1a_3x3": (3, 2, 0), "Conv2d_2a_3x3": (7, 2, 0), "Conv2d_2b_3x3": (11, 2, 2),
    "maxpool1": (15, 4, 2),  # MaxPool_3a_3x3
    "Conv2d_3b_1x1": (15, 4, 2), "Conv2d_4a_3x3": (23, 4, 2),
    "maxpool2": (31, 8, 2),  # MaxPool_5a_3x3
    "Mixed_5b": (63, 8, 18), "Mixed_5c": (95, 8, 34), "Mixed_5d": (127, 8, 50), "Mixed_6a": (159, 16, 58),
    "Mixed_6b": (351, 16, 154), "Mixed_6c": (543, 16, 250), "Mixed_6d": (735, 16, 346),
    "Mixed_6e": (927, 16, 442), "Mixed_7a": (1055, 32, 490), "Mixed_7b": (1183, 32, 554),
    "Mixed_7c": (1311, 32, 618),
}

# vgg_16: torchvision pads like TF-Slim's SAME here (1 for every 3x3, none for the 2x2 pools)
VGG16 = {
    "features.0": (3, 1, 1), "features.4": (6, 2, 2), "features.5": (10, 2, 4), "features.9": (16, 4, 6),
    "features.10": (24, 4, 10), "features.12": (32, 4, 14), "features.16": (44, 8, 18),
    "features.17": (60, 8, 26), "features.19": (76, 8, 34), "features.23": (100, 16, 42),
    "features.24": (132, 16, 58), "features.26": (164, 16, 74), "features.30": (212, 32, 90),
}

# alexnet_v2 (TF-Slim): conv1, pool1, conv2, conv3, conv4, conv5, pool5
ALEXNET = {"features.0": (11, 4, 0), "features.2": (19, 8, 0), "features.3": (51, 8, 16),
           "features.6": (99, 16, 32), "features.8": (131, 16, 48), "features.10": (163, 16, 64),
           "features.12": (195, 32, 64)}

# TF-Slim's inception_v2 is BN-Inception; r and j (its P depends on TF's SAME padding, see below)
BN_INCEPTION = {"conv1": (7, 2), "pool1": (11, 4), "conv2": (19, 4), "pool2": (27, 8), "inception_3a": (59, 8),
                "inception_3b": (91, 8), "inception_3c": (123, 16), "inception_4a": (187, 16),
                "inception_4b": (251, 16), "inception_4c": (315, 16), "inception_4d": (379, 16),
                "inception_4e": (443, 32), "inception_5a": (571, 32), "inception_5b": (699, 32)}


@pytest.mark.parametrize("name", INCEPTION_V3)
def test_inception_v3_matches_the_published_receptive_fields(name):
    field = block_fields("inception_v3")[name]
    assert (field.size[0], field.stride[0], field.padding[0]) == INCEPTION_V3[name]
    assert field.size[0] == field.size[1] and field.aligned


@pytest.mark.parametrize("path", VGG16)
def test_vgg16_matches_the_published_receptive_fields(path):
    field = block_fields("vgg16")[path]
    assert (field.size[0], field.stride[0], field.padding[0]) == VGG16[path]


@pytest.mark.parametrize("path", ALEXNET)
def test_alexnet_matches_published_size_and_stride_padding_shifted_by_its_conv1_padding(path):
    """torchvision's AlexNet pads its first conv by 2 where TF-Slim's alexnet_v2 uses VALID: every
    unit's field starts 2 pixels further out; sizes and strides are unchanged."""
    field = block_fields("alexnet")[path]
    r, j, p = ALEXNET[path]
    assert (field.size[0], field.stride[0], field.padding[0]) == (r, j, p + 2)


@pytest.mark.parametrize("name", BN_INCEPTION)
def test_bn_inception_matches_published_size_and_stride(name):
    field = block_fields("bn_inception")[name]
    assert (field.size[0], field.stride[0]) == BN_INCEPTION[name]


def test_bn_inception_stride_2_modules_are_unaligned_with_torch_padding():
    """TF's SAME pads a stride-2 3x3 conv on an even grid only at the bottom/right, which keeps it
    centred with the unpadded max-pool branch; torch pads both sides, which moves the conv
    branches' centre by one input-grid unit (8 pixels at 3c): published P at Mixed_4a is 46, ours
    is 46 + 1 (7x7 first conv padded 3, not 2) + 8."""
    fields = block_fields("bn_inception")
    assert fields["inception_3b"].aligned and not fields["inception_3c"].aligned
    assert fields["inception_3c"].padding[0] == 46 + 1 + 8


def test_googlenet_final_receptive_field_by_hand():
    """No published table; by hand from Table 1's layers: conv1 7/2, pool 3/2, conv 3x3, pool 3/2,
    3a/3b (5x5 at j=8: +32 each), pool (+16), 4a..4e (5x5 at j=16: +64 each), pool (+32),
    5a/5b (5x5 at j=32: +128 each): 7+4+8+8+32+32+16+5*64+32+2*128 = 715."""
    assert block_fields("inception_v1")["inception_5b"].size == (715, 715)


# ----------------------------------------------------------------------------- the paper's Table 2
LOW_RESOLUTION = {  # receptive field (input size) -> overrides (docs/receptive-fields.md)
    299: {},
    151: {"stem_stride": 1},
    79: {"stem_stride": 1, "stem_pool": False},
}


def test_low_resolution_151_keeps_the_grids_and_the_cost_and_halves_the_strides():
    """151 - 3 + 1 = 149 = floor((299 - 3) / 2) + 1: with the first stride removed every grid
    after the first conv is the one of the 299 network, so the cost is the same to the MAC."""
    full = ia.analyze(spec_path("inception_v3"))
    low = ia.analyze(spec_path("inception_v3"), LOW_RESOLUTION[151], 151)
    assert [b.output_shape for b in low.blocks] == [b.output_shape for b in full.blocks]
    assert low.totals.macs == full.totals.macs
    # every later stride is halved: r = 3 + (1311 - 3) / 2
    assert low.receptive_fields["Mixed_7c.concat"].size == (657, 657)


def test_low_resolution_79_without_the_first_pool():
    low = ia.analyze(spec_path("inception_v3"), LOW_RESOLUTION[79], 79)
    assert "maxpool1" not in low.receptive_fields
    # 79 -> 77 -> 75 -> 75 -> 75 -> 73 -> pool -> 36: one unit more than 35 on the 35x35 stage
    assert next(l for l in low.layers if l.path == "maxpool2").output_shape == [192, 36, 36]
    assert low.layers[-1].output_shape == [1000]


# ----------------------------------------------------------------------------- outputs
def test_json_layers_carry_a_receptive_field_object():
    proc = subprocess.run([sys.executable, "-m", "inception_analyzer", "analyze", spec_path("inception_v3"),
                           "--format", "json"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    layer = next(l for l in json.loads(proc.stdout)["layers"] if l["path"] == "Mixed_7c.concat")
    assert layer["receptive_field"] == {"size": [1311, 1311], "stride": [32, 32], "padding": [618, 618],
                                        "size_min": [79, 79], "center": [37.0, 37.0], "aligned": True}


def test_rf_view_lists_growth_per_block():
    proc = subprocess.run([sys.executable, "-m", "inception_analyzer", "analyze", spec_path("inception_v3"),
                           "--rf", "--depth", "block"], capture_output=True, text=True, cwd=ROOT, timeout=60)
    line = next(l for l in proc.stdout.splitlines() if l.startswith("Mixed_6b "))
    assert line.split()[2:5] == ["351", "47", "192"]  # RF, smallest-path RF, growth over Mixed_6a
