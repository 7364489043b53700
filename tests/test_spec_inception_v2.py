"""specs/inception_v2.yaml is the Inception-v2 of "Rethinking the Inception Architecture" (2016).

Independent sources the figures are checked against:
  - the paper's Table 1 (network outline; its "input size" column is each row's input), transcribed
    below from arXiv:1512.00567;
  - the paper's text: Table 3 is cumulative and v3 = v2 + RMSProp + label smoothing +
    "Factorized 7x7" (the first 7x7 conv factorized into 3x3 convs) + "BN-auxiliary" (the aux
    classifier's fully connected layer "also batch-normalized, not just the convolutions");
  - Table 3's costs, 3.8 Bn ops for v2 and 4.8 for v3;
  - specs/inception_v3.yaml, itself checked against torchvision (27,161,264 params with the aux
    head, 23,834,568 without), compared layer by layer.
Stem costs and parameter differences are worked out here by hand.
"""
from __future__ import annotations

import pytest

import inception_analyzer as ia
from conftest import spec_path

SPEC = spec_path("inception_v2")
V3_SPEC = spec_path("inception_v3")

# Table 1, "input size" column, top to bottom: (H, W, C)
TABLE1_INPUT_SIZES = [
    (299, 299, 3),      # conv 3x3/2
    (149, 149, 32),     # conv 3x3/1
    (147, 147, 32),     # conv padded 3x3/1
    (147, 147, 64),     # pool 3x3/2
    (73, 73, 64),       # conv 3x3/1
    (71, 71, 80),       # conv 3x3/2
    (35, 35, 192),      # conv 3x3/1
    (35, 35, 288),      # 3 x Inception
    (17, 17, 768),      # 5 x Inception
    (8, 8, 1280),       # 2 x Inception
    (8, 8, 2048),       # pool 8x8
    (1, 1, 2048),       # linear
    (1, 1, 1000),       # softmax
]
# grids that exist only inside the factorized 7x7 (outputs of v3's first two 3x3 convs)
FACTORIZATION_ONLY = {(149, 149, 32), (147, 147, 32)}
# Table 1's stem rows after the first pool, which the released graph (and v3, and so v2) lacks
TABLE1_STEM_ONLY = {(71, 71, 80)}

TORCHVISION_V3_PARAMS = 27_161_264          # aux head on
TORCHVISION_V3_PARAMS_NO_AUX = 23_834_568
TABLE3_BN_OPS = {"v2": 3.8e9, "v3": 4.8e9}

V3_STEM = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3")
V2_STEM = ("Conv2d_1a_7x7",)


@pytest.fixture(scope="module")
def v2():
    return ia.analyze(SPEC)


@pytest.fixture(scope="module")
def v3():
    return ia.analyze(V3_SPEC)


def hwc(shape: list[int]) -> tuple[int, ...]:
    return (shape[1], shape[2], shape[0]) if len(shape) == 3 else (1, 1, shape[0])


def main_grids(report) -> set[tuple[int, int, int]]:
    """Every tensor on the inference path, as (H, W, C): the input and each op's output."""
    grids = {hwc(report.input)}
    grids |= {hwc(r.output_shape) for r in report.layers if r.role != "aux"}
    return grids


def layer(report, path: str):
    return next(rec for rec in report.layers if rec.path == path)


def conv_macs(c_in: int, c_out: int, k: int, grid: int) -> int:
    return grid * grid * c_out * c_in * k * k


def out_size(size: int, k: int, stride: int = 1, padding: int = 0) -> int:
    return (size + 2 * padding - k) // stride + 1


# ----------------------------------------------------------------------------- Table 1
@pytest.mark.parametrize("grid", [g for g in TABLE1_INPUT_SIZES
                                  if g not in FACTORIZATION_ONLY | TABLE1_STEM_ONLY])
def test_every_grid_of_table_1_that_v2_can_have(v2, grid):
    assert grid in main_grids(v2)


@pytest.mark.parametrize("grid", sorted(FACTORIZATION_ONLY))
def test_grids_inside_the_factorized_7x7_do_not_exist_in_v2(v2, v3, grid):
    assert grid not in main_grids(v2)
    assert grid in main_grids(v3)       # they are the outputs of v3's first two 3x3 convs


def test_table_1s_71x71x80_row_is_neither_in_v2_nor_in_v3(v2, v3):
    # Table 1: 73x73x64 -> conv 3x3/1 -> 71x71x80 -> conv 3x3/2 -> 35x35x192. The released graph
    # that v3 follows (and v2 shares): 1x1 -> 73x73x80, 3x3 -> 71x71x192, max pool -> 35x35x192
    for report in (v2, v3):
        assert (71, 71, 80) not in main_grids(report)
        assert hwc(layer(report, "Conv2d_3b_1x1.conv").output_shape) == (73, 73, 80)
        assert hwc(layer(report, "Conv2d_4a_3x3.conv").output_shape) == (71, 71, 192)
        assert hwc(layer(report, "maxpool2").output_shape) == (35, 35, 192)


def test_35x35x288_is_the_output_of_the_35x35_modules_not_their_input(v2):
    # §6: "3 traditional inception modules at the 35x35 with 288 filters each"
    assert hwc(layer(v2, "Mixed_5b.branch1x1.conv").input_shapes[0]) == (35, 35, 192)
    outputs = [hwc(layer(v2, f"{m}.concat").output_shape) for m in ("Mixed_5b", "Mixed_5c", "Mixed_5d")]
    assert outputs == [(35, 35, 256), (35, 35, 288), (35, 35, 288)]


def test_the_7x7_stem_conv_lands_on_table_1s_147x147x64(v2):
    stem = layer(v2, "Conv2d_1a_7x7.conv")
    assert stem.args == "7x7/2"                                       # unpadded (Table 1 caption)
    assert out_size(299, 7, stride=2) == 147
    assert hwc(stem.output_shape) == (147, 147, 64) == TABLE1_INPUT_SIZES[3]
    assert hwc(layer(v2, "maxpool1").output_shape) == (73, 73, 64) == TABLE1_INPUT_SIZES[4]


def test_module_stacks_3_5_2(v2):
    concats = [hwc(block.output_shape) for block in v2.blocks if block.name.startswith("Mixed_")]
    assert len(concats) == 11
    grids = [g[:2] for g in concats]
    assert grids.count((35, 35)) == 3
    assert grids.count((17, 17)) == 5       # Mixed_6a (35 -> 17) + 4 factorized 7x7 modules
    assert grids.count((8, 8)) == 3         # Mixed_7a (17 -> 8, 1280) + 2 expanded 8x8 modules
    assert concats[8] == (8, 8, 1280) and concats[-1] == (8, 8, 2048)


# ----------------------------------------------------------------------------- v2 vs v3
def records(report) -> dict[str, tuple]:
    return {r.path: (r.op, r.args, r.role, r.output_shape, r.params, r.macs) for r in report.layers}


def is_stem(path: str) -> bool:
    return path.split(".")[0] in V3_STEM + V2_STEM


def test_v2_differs_from_v3_only_in_the_stem_and_the_aux_head(v2, v3):
    a, b = records(v2), records(v3)
    only_v2 = {p for p in a if p not in b}
    only_v3 = {p for p in b if p not in a}
    assert only_v2 == {f"Conv2d_1a_7x7.{x}" for x in ("conv", "bn", "relu")}
    assert only_v3 == ({f"{m}.{x}" for m in V3_STEM for x in ("conv", "bn", "relu")}
                       | {"AuxLogits.conv1.bn"})
    changed = {p for p in a.keys() & b.keys() if a[p] != b[p]}
    assert changed == {"AuxLogits.conv1.conv"}
    # same layers in the same order everywhere else: every Inception block, the rest of the stem,
    # the head
    order_v2 = [r.path for r in v2.layers if not is_stem(r.path) and r.path != "AuxLogits.conv1.bn"]
    order_v3 = [r.path for r in v3.layers if not is_stem(r.path) and r.path != "AuxLogits.conv1.bn"]
    assert order_v2 == order_v3


@pytest.mark.parametrize("block", ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b",
                                   "Mixed_6c", "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b",
                                   "Mixed_7c"])
def test_inception_blocks_have_v3s_paths_and_params(v2, v3, block):
    def block_params(report):
        return {r.path: r.params for r in report.layers if r.path.startswith(block + ".")}
    assert block_params(v2) == block_params(v3)
    assert sum(block_params(v2).values()) > 0


def test_stem_multiply_adds_difference_by_hand(v2, v3):
    v3_stem = (conv_macs(3, 32, 3, out_size(299, 3, 2))                 # 149x149x32
               + conv_macs(32, 32, 3, out_size(149, 3))                 # 147x147x32
               + conv_macs(32, 64, 3, out_size(147, 3, padding=1)))     # 147x147x64
    v2_stem = conv_macs(3, 64, 7, out_size(299, 7, 2))                  # 147x147x64
    assert (v3_stem, v2_stem) == (616_627_296, 203_297_472)
    assert v3.totals.macs - v2.totals.macs == v3_stem - v2_stem == 413_329_824
    assert v2.totals.macs_aux == v3.totals.macs_aux    # the aux head costs the same


def test_params_difference_by_hand(v2, v3):
    bn = lambda c: 2 * c  # noqa: E731 - gamma and beta
    v3_stem = 3 * 32 * 9 + bn(32) + 32 * 32 * 9 + bn(32) + 32 * 64 * 9 + bn(64)
    v2_stem = 3 * 64 * 49 + bn(64)
    aux_fc = bn(768) - 768                 # v3: BN after the aux FC layer; v2: its bias instead
    assert (v3_stem, v2_stem, aux_fc) == (28_768, 9_536, 768)
    assert v3.totals.params == TORCHVISION_V3_PARAMS
    assert v2.totals.params == TORCHVISION_V3_PARAMS - (v3_stem - v2_stem) - aux_fc == 27_141_264
    no_aux = ia.analyze(SPEC, {"aux_logits": False})
    assert no_aux.totals.params == TORCHVISION_V3_PARAMS_NO_AUX - (v3_stem - v2_stem)


# ----------------------------------------------------------------------------- aux head
def test_aux_fc_layer_is_not_batch_normalized_but_its_convolution_is(v2, v3):
    aux_v2 = [(r.path, r.op) for r in v2.layers if r.role == "aux"]
    assert ("AuxLogits.conv0.bn", "bn") in aux_v2             # "not just the convolutions"
    assert not any(path.startswith("AuxLogits.conv1.") and op == "bn" for path, op in aux_v2)
    fc_layer = layer(v2, "AuxLogits.conv1.conv")                # 5x5 over the 5x5 grid = FC
    assert fc_layer.input_shapes == [[128, 5, 5]] and fc_layer.output_shape == [768, 1, 1]
    assert fc_layer.params == 128 * 5 * 5 * 768 + 768           # with bias
    assert layer(v3, "AuxLogits.conv1.conv").params == 128 * 5 * 5 * 768
    assert layer(v2, "AuxLogits.conv1.relu").role == "aux"


def test_aux_logits_argument_removes_the_head(v2):
    no_aux = ia.analyze(SPEC, {"aux_logits": False})
    assert not any(r.role == "aux" for r in no_aux.layers)
    assert no_aux.totals.macs == v2.totals.macs                 # the head is training-only
    assert v2.totals.params - no_aux.totals.params == v2.totals.params_aux


# ----------------------------------------------------------------------------- Table 3 cost
def test_cost_against_table_3(v2, v3):
    """Table 3's step from v2 (3.8) to v3 (4.8) cannot come from factorizing the 7x7."""
    three_3x3 = (conv_macs(3, 32, 3, 149) + conv_macs(32, 32, 3, 147) + conv_macs(32, 64, 3, 147))
    step = v3.totals.macs - v2.totals.macs
    published_step = TABLE3_BN_OPS["v3"] - TABLE3_BN_OPS["v2"]
    assert three_3x3 < 0.62e9 < published_step           # even a free 7x7 saves < 0.62 G
    assert step == pytest.approx(0.413e9, rel=1e-3)
    assert v2.totals.macs / v3.totals.macs == pytest.approx(0.928, abs=1e-3)
    assert TABLE3_BN_OPS["v2"] / TABLE3_BN_OPS["v3"] == pytest.approx(0.79, abs=0.01)
    assert round(v2.totals.macs / 1e9, 2) == 5.30
    assert v2.metadata["published_macs"] == TABLE3_BN_OPS["v2"]


# ----------------------------------------------------------------------------- arguments
def test_arguments_and_metadata(v2):
    assert v2.arguments == {"num_classes": 1000, "aux_logits": True, "input_size": 299, "dropout": 0.5}
    assert v2.input == [3, 299, 299]
    assert layer(v2, "fc").output_shape == [1000] and layer(v2, "AuxLogits.fc").output_shape == [1000]
    assert layer(v2, "dropout").args == "p=0.5"
    small = ia.analyze(SPEC, {"num_classes": 10, "dropout": 0.2})
    assert layer(small, "fc").output_shape == [10]
    assert v2.metadata["year"] == 2016 and "1512.00567" in v2.metadata["venue"]
    errors = {round(100 - p["top1"], 1) for p in v2.metadata["published"]}
    assert errors == {23.4, 23.1, 22.8}                   # Table 3's three v2 rows
