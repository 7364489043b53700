"""Training FLOPs (analysis/training.py), checked against torch's FlopCounterMode on a real training
step of the built model (the paper's recipe: forward, loss, backward, clipping, RMSProp): it counts
the forward and the backward of every convolution and matrix product, which must equal our conv
and linear figures exactly. Other ops have rules of our own (docs/conventions.md); their checks are
by hand here. The full table over every bundled spec is benchmarks/memory_accuracy.py's."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import inception_analyzer as ia
from inception_analyzer.bench.settings import BenchSettings
from inception_analyzer.bench.workload import build_ours, make_inputs, make_step

TINY = str(Path(__file__).parent / "data" / "tiny_inception.yaml")


def counted_training_flops(analysis, batch: int) -> tuple[int, dict[str, int]]:
    """FlopCounterMode's total over one training step of the built model, and its count per aten op."""
    settings = BenchSettings(torch.device("cpu"), mode="train")
    torch.manual_seed(0)
    model = build_ours(analysis.graph, settings)
    step = make_step(model, *make_inputs(analysis.graph, batch, settings), settings)
    with FlopCounterMode(display=False) as counter:
        step()
    per_op = {str(op): count for op, count in counter.get_flop_counts()["Global"].items()}
    return counter.get_total_flops(), per_op


@pytest.mark.parametrize("spec, overrides, size", [(TINY, {"aux_logits": False}, None),
                                                   ("googlenet", {}, 96), ("resnet50", {}, 64)])
def test_conv_and_linear_flops_equal_flop_counter_modes(spec, overrides, size):
    analysis = ia.analyze(spec, overrides, size)
    batch = 2
    total, per_op = counted_training_flops(analysis, batch)
    assert analysis.training.matmul * batch == total == analysis.training.flop_counter * batch
    # the backward of the convolutions: twice the forward, less the first layer's input gradient
    convolutions = [r for r in analysis.layers if r.op == "conv"]
    first = convolutions[0]
    assert per_op["aten.convolution_backward"] == batch * (4 * sum(r.macs for r in convolutions) - 2 * first.macs)


def test_flop_counter_mode_counts_a_grouped_convs_weight_gradient_groups_times():
    """BN-Inception starts with a depthwise 7x7 conv (3 groups): torch's FlopCounterMode sizes its
    weight gradient as if ungrouped, 3 x 2 x MACs. Our convention counts 2 x MACs; the
    FlopCounterMode-compatible total reproduces its count exactly."""
    analysis = ia.analyze("bn_inception", input_size=96)
    batch = 2
    total, _ = counted_training_flops(analysis, batch)
    assert analysis.training.flop_counter * batch == total
    depthwise = next(r for r in analysis.layers if r.path == "conv1.depthwise")
    assert total - analysis.training.matmul * batch == batch * (3 - 1) * 2 * depthwise.macs


def test_first_layer_computes_no_input_gradient():
    analysis = ia.analyze(TINY)
    layers = {f.path: f for f in analysis.training.layers}
    stem = next(r for r in analysis.layers if r.path == "stem.conv")
    # 3x32x32 -> 16 channels 3x3/2: 97,200 MACs; forward 2 x MACs, backward to the weights 2 x MACs
    assert stem.macs == 97_200
    assert (layers["stem.conv"].forward, layers["stem.conv"].grad_input, layers["stem.conv"].grad_weight) == \
        (194_400, 0, 194_400)
    # the next conv's input needs a gradient: 2 x MACs each way
    second = next(r for r in analysis.layers if r.path == "mixed.b1.conv")
    assert layers["mixed.b1.conv"].grad_input == layers["mixed.b1.conv"].grad_weight == 2 * second.macs


def test_other_ops_backward_rules_by_hand():
    analysis = ia.analyze(TINY)
    layers = {f.path: f for f in analysis.training.layers}
    records = {r.path: r for r in analysis.layers}
    bn = records["stem.bn"]                 # 16 x 15 x 15 = 3,600 elements, affine
    assert (layers["stem.bn"].grad_input, layers["stem.bn"].grad_weight) == (4 * 3_600, 2 * 3_600)
    assert layers["stem.relu"].grad_input == 3_600 and bn.other_flops == 2 * 3_600
    assert layers["res.add"].grad_input == 0                 # the gradient passes to both branches as it is
    assert layers["mixed.concat"].grad_input == 0
    pool = records["maxpool"]                                # one per output element: to the window's maximum
    assert layers["maxpool"].grad_input == pool.activations
    totals = analysis.training
    assert totals.total == totals.forward + totals.grad_input + totals.grad_weight
    assert totals.forward == sum(2 * r.macs + r.other_flops for r in analysis.layers)    # aux heads included
