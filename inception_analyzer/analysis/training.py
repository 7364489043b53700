"""What a training step computes: FLOPs of the forward pass, of the backward pass to the inputs and
to the weights, per layer and per model; which tensors need a gradient; the optimizers' state.

A pure function of the graph IR, as analysis/cost.py: every per-op figure comes from the op
registry (`OpKind.macs`, `other_flops`, `backward_flops`), the rules in docs/conventions.md.
Figures are per image. A training step runs every layer, auxiliary heads included.

The convention (docs/conventions.md, "Training FLOPs"):
- forward: 2 FLOPs per multiply-accumulate of conv and linear layers, plus the other FLOPs as
  inference counts them;
- backward to the inputs and backward to the weights: for conv and linear each is 2 x the forward
  MACs (a transposed convolution or a matrix product of the same size), the bias excluded: what
  torch's FlopCounterMode counts for `convolution_backward` and the two `mm` of a linear layer;
  other ops by their `backward_flops` rule;
- a layer computes no gradient for an input that needs none: the image needs none, so the first
  layer's backward to its input is 0, as torch skips it (its `output_mask` says so); so is every
  layer's before the first that holds weights.
`flop_counter` is FlopCounterMode's own total (torch 2.13), which counts a grouped convolution's
weight gradient `groups` times over; everywhere else it is `matmul`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..graph import INPUT, Graph


@dataclass
class LayerTrainingFlops:
    """One layer's FLOPs in a training step, per image."""

    path: str
    forward: int           # 2 x MACs + other FLOPs
    grad_input: int        # the backward to its inputs (0 where none needs a gradient)
    grad_weight: int       # the backward to its weights

    @property
    def total(self) -> int:
        return self.forward + self.grad_input + self.grad_weight


@dataclass
class TrainingFlops:
    """A training step's FLOPs per image: per layer (aux heads included), and totals."""

    layers: list[LayerTrainingFlops]
    forward: int
    grad_input: int
    grad_weight: int
    # the part in conv and linear layers, forward and backward
    matmul: int
    # what torch's FlopCounterMode counts over the step (conv and linear only): `matmul`, but for a
    # grouped convolution's weight gradient, which it counts `groups` times (OpKind.flop_counter_flops)
    flop_counter: int
    status: str = "complete"     # "partial" with unmodelled ops: lower bounds
    unmodelled: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.forward + self.grad_input + self.grad_weight


def needs_grad(graph: Graph) -> dict[str, bool]:
    """Which tensors autograd tracks in a training step: the output of a layer with weights, or of
    one reading such a tensor. The image needs no gradient, nor does anything computed from it
    alone."""
    needs = {INPUT: False}
    for node in graph.layers():
        needs[node.path] = node.op.params(node.args, list(node.in_shapes), node.out_shape) > 0 or \
            any(needs[source] for source in node.inputs)
    return needs


def training_flops(graph: Graph) -> TrainingFlops:
    needs = needs_grad(graph)
    layers, matmul, counter, unmodelled = [], 0, 0, []
    for node in graph.layers():
        op, a, ins, out = node.op, node.args, list(node.in_shapes), node.out_shape
        forward = 2 * op.macs(a, ins, out) + op.other_flops(a, ins, out)
        to_inputs, to_weights = op.backward_flops(a, ins, out)
        if not any(needs[source] for source in node.inputs):
            to_inputs = 0
        if not needs[node.path]:
            to_weights = 0
        layers.append(LayerTrainingFlops(node.path, forward, to_inputs, to_weights))
        if needs[node.path]:
            counter += op.flop_counter_flops(a, ins, out, any(needs[source] for source in node.inputs))
        if op.weighted:
            matmul += forward + to_inputs + to_weights
        if not op.modelled:
            unmodelled.append(node.path)
    return TrainingFlops(layers, forward=sum(l.forward for l in layers), grad_input=sum(l.grad_input for l in layers),
                         grad_weight=sum(l.grad_weight for l in layers), matmul=matmul, flop_counter=counter,
                         status="partial" if unmodelled else "complete", unmodelled=unmodelled)


# ----------------------------------------------------------------------------- optimizers
@dataclass(frozen=True)
class Optimizer:
    """An optimizer's memory: the state it keeps per parameter (fp32, each the parameter's size)
    and the parameter-sized temporaries of its step. torch's single-tensor loop (the CPU's default)
    updates one parameter at a time, so its temporaries are the largest parameter's size; its
    foreach implementation (CUDA's default) makes them for every parameter at once."""

    name: str
    title: str
    states: int           # tensors kept per parameter
    temporaries: int      # parameter-sized tensors the step makes while it runs


OPTIMIZERS: dict[str, Optimizer] = {
    o.name: o for o in (
        # the Rethinking paper's recipe as bench runs it (TrainRecipe: no momentum): the square
        # average; the step makes sqrt(square average) + eps
        Optimizer("rmsprop", "RMSProp (decay 0.9, eps 1.0, no momentum)", states=1, temporaries=1),
        Optimizer("rmsprop-momentum", "RMSProp with momentum", states=2, temporaries=1),
        Optimizer("sgd", "SGD without momentum", states=0, temporaries=0),
        Optimizer("sgd-momentum", "SGD with momentum", states=1, temporaries=0),
        # exp_avg and exp_avg_sq; the step's denominator is sqrt(exp_avg_sq) / bias correction + eps
        Optimizer("adam", "Adam (and AdamW)", states=2, temporaries=2),
    )
}
DEFAULT_OPTIMIZER = "rmsprop"


def optimizer_named(name: str, momentum: float = 0.0) -> Optimizer:
    """The optimizer called `name` (with momentum, its "-momentum" variant where it has one)."""
    key = f"{name}-momentum" if momentum and f"{name}-momentum" in OPTIMIZERS else name
    return OPTIMIZERS[key]
