"""The memory analysis (analysis/memory.py) and the op kinds' memory facets, checked against
independent sources: hand calculations on tiny networks (worked out in the comments from what
autograd keeps and what torch allocates), and the CPU allocator's peak measured with torch's
profiler (bench/memory.py) on the built models' real steps. No figure is copied from the code's
own output. The full table over every bundled spec is benchmarks/memory_accuracy.py's
(docs/benchmarks.md)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from torch import nn

import inception_analyzer as ia
from inception_analyzer.analysis.memory import (MemorySettings, MemorySettingsError, analyze_memory,
                                                largest_batch)
from inception_analyzer.analysis.training import needs_grad
from inception_analyzer.bench.memory import allocation_trace, cpu_peak_bytes, peak_of, step_peak_bytes, storage_bytes
from inception_analyzer.bench.runner import memory_settings
from inception_analyzer.bench.settings import BenchSettings
from inception_analyzer.bench.workload import build_ours, make_inputs, make_step
from inception_analyzer.ops import OPS
from inception_analyzer.ops.base import Execution, Storage

TINY = str(Path(__file__).parent / "data" / "tiny_inception.yaml")
CPU = torch.device("cpu")

# every tensor of this network is a multiple of 512 bytes at batch 2 (fp32), so the CUDA
# allocator's rounding leaves the hand calculation alone (but for the labels: 16 bytes -> 512)
CONV_LINEAR = """\
name: conv_linear
input: [16, 4, 4]
layers:
  - conv: conv(16, 1, bias=false)
  - relu
  - flatten
  - fc: linear(64, bias=false)
"""


@pytest.fixture
def conv_linear(tmp_path):
    path = tmp_path / "conv_linear.yaml"
    path.write_text(CONV_LINEAR, encoding="utf-8")
    return ia.analyze(str(path))


def test_training_step_by_hand(conv_linear):
    """Batch 2, fp32, CUDA (no convolution workspace), RMSProp (one state), bytes:
    weights: conv 16x16 = 1,024 + linear 256x64 = 65,536 = 66,560; the state as much; the image
    2 x 256 x 4 = 2,048; the labels 16, rounded to 512. Forward: conv out 2,048 (keeps the image),
    relu in place (keeps its output: the conv's), flatten a view, linear out 512 (keeps the view).
    Loss: log-probabilities 512, then the logits' gradient 512. Backward: linear makes its input's
    gradient 2,048 and its weight's 65,536; relu a new gradient 2,048 (and frees the conv output);
    conv only its weight's 1,024 (the image needs none). Then the optimizer's step: weights 66,560 +
    state 66,560 + gradients 66,560 + inputs 2,560, and sqrt(square average) for every parameter at
    once (CUDA's foreach): 66,560 more = 268,800, the peak."""
    memory = conv_linear.memory(MemorySettings(batch=2, mode="train", backend="cuda"))
    assert memory.peak_bytes == 268_800
    assert memory.peak_phase == "optimizer step"
    assert memory.at_peak == {"weights": 66_560, "gradients": 66_560, "optimizer state": 66_560, "inputs": 2_560,
                              "activations": 0, "activation gradients": 0, "workspace": 66_560}
    layers = {m.path: m for m in memory.layers}
    assert (layers["conv"].activation_bytes, layers["relu"].activation_bytes, layers["flatten"].activation_bytes,
            layers["fc"].activation_bytes) == (2_048, 0, 0, 512)
    assert layers["conv"].kept_bytes == 2_048 and memory.kept_bytes == 2_048 + 512
    assert (layers["fc"].grad_input_bytes, layers["fc"].grad_weight_bytes) == (2_048, 65_536)
    assert (layers["conv"].grad_input_bytes, layers["conv"].grad_weight_bytes) == (0, 1_024)
    # the backward's own high point: before the relu's gradient: 138,240 (forward's end) + 65,536
    # + 2,048 (linear's gradients) - 512 (the logits' gradient, consumed) + 2,048 (relu's) = 207,360
    assert layers["relu"].peak_backward_bytes == 207_360


def test_inference_by_hand(conv_linear):
    """Batch 2, CUDA: weights 66,560 + image 2,048 + conv output 2,048 (relu in place, flatten a
    view) + logits 512: the peak, at the linear layer."""
    memory = conv_linear.memory(MemorySettings(batch=2, backend="cuda"))
    assert memory.peak_bytes == 66_560 + 2_048 + 2_048 + 512
    assert memory.peak_at == "fc" and memory.at_peak["gradients"] == 0


def test_optimizers_state_and_temporaries(conv_linear):
    """State per parameter (fp32): SGD 0, SGD with momentum 1, Adam 2; on the CPU the step updates one
    tensor at a time, so its temporaries are the largest parameter's (the linear weight, 65,536 B)."""
    def peak(optimizer, backend="cpu"):
        return conv_linear.memory(MemorySettings(batch=2, mode="train", backend=backend, optimizer=optimizer))

    sgd, momentum, adam = peak("sgd"), peak("sgd-momentum"), peak("adam")
    assert (sgd.optimizer_state_bytes, momentum.optimizer_state_bytes, adam.optimizer_state_bytes) == \
        (0, 66_560, 2 * 66_560)
    assert adam.peak_phase == "optimizer step" and adam.at_peak["workspace"] == 2 * 65_536


def test_cpu_inference_workspace_of_one_convolution_by_hand(tmp_path):
    """oneDNN's blocked layouts (16 channels on this AVX-512 CPU): an RGB image is read as it is, the
    weight is reordered (16 x 3 x 3 x 3 x 4 = 1,728 B), the output computed blocked (2 x 16 x 8 x 8
    x 4 = 8,192 B) and copied to the plain one (8,192 B): at its peak both outputs. At batch 1 a
    small image goes through ATen's im2col instead: 3 x 3 x 3 x 64 x 4 = 6,912 B of columns."""
    path = tmp_path / "one_conv.yaml"
    path.write_text("name: one_conv\ninput: [3, 8, 8]\nlayers:\n  - conv: conv(16, 3, padding=1, bias=false)\n",
                    encoding="utf-8")
    analysis = ia.analyze(str(path))
    two = analysis.memory(MemorySettings(batch=2))
    assert two.peak_bytes == 1_728 + 2 * 768 + 8_192 + 8_192
    one = analysis.memory(MemorySettings(batch=1))
    assert one.peak_bytes == 1_728 + 768 + 4_096 + 6_912
    # and the allocator agrees, measured on the same convolution
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 16, 3, padding=1, bias=False).eval()
    for batch, predicted in ((2, two.peak_bytes), (1, one.peak_bytes)):
        image = torch.randn(batch, 3, 8, 8)
        with torch.inference_mode():
            conv(image)
            assert cpu_peak_bytes(lambda: conv(image), [conv.weight, image]) == predicted


def test_cpu_training_step_of_one_convolution_by_hand():
    """One 16 -> 32 convolution 3x3 (padding 1, no bias) on 2 x 16 x 20 x 20, fp32, its input
    needing a gradient: the forward keeps the input (no new bytes) and makes the output; the
    backward the input's and the weight's gradients, with oneDNN's blocked copies around them:
    measured by the profiler, predicted by the conv op kind's facets."""
    conv = OPS["conv"]
    a = conv.bind([32, 3], {"padding": 1, "bias": False})
    run = Execution(batch=2, element_bytes=4, training=True)
    shape_in, shape_out = (16, 20, 20), (32, 20, 20)
    forward = conv.forward_memory(a, [shape_in], shape_out, run)
    backward = conv.backward_memory(a, [shape_in], shape_out, run, (True,))
    input_bytes, output_bytes, weight_bytes = 2 * 16 * 400 * 4, 2 * 32 * 400 * 4, 32 * 16 * 9 * 4
    assert forward.saves_inputs == (0,) and forward.saved_bytes == 0
    # the forward's peak: reordered input + weight + blocked output (51,200 + 18,432 + 102,400)
    # against blocked + plain output (204,800): the latter, 102,400 above the output
    assert forward.workspace_bytes == output_bytes
    torch.manual_seed(0)
    layer = nn.Conv2d(16, 32, 3, padding=1, bias=False)
    source = torch.randn(2, 16, 20, 20, requires_grad=True)
    image = source * 1.0                     # a tensor that needs a gradient, made before the profile
    measured_forward = peak_of(allocation_trace(lambda: layer(image)))[0]
    assert measured_forward == output_bytes + forward.workspace_bytes
    output = layer(image)
    grad = torch.ones_like(output)
    layer.weight.grad = None
    trace = allocation_trace(lambda: output.backward(grad, inputs=[image, layer.weight]))
    peak, left = peak_of(trace)
    assert left == input_bytes + weight_bytes                     # the two gradients stay
    # oneDNN's scratch buffers (tens of KB here) are not modelled: within 3% of this tiny case
    assert peak == pytest.approx(input_bytes + weight_bytes + backward.workspace_bytes, rel=0.03)


def test_op_facets_what_autograd_keeps():
    run = Execution(batch=2, element_bytes=4, training=True)
    maxpool = OPS["maxpool"]
    a = maxpool.bind([3], {"stride": 2})
    kept = maxpool.forward_memory(a, [(8, 9, 9)], (8, 4, 4), run)
    assert kept.saves_inputs == (0,) and kept.saved_bytes == 2 * 8 * 16 * 8     # int64 indices
    inference = maxpool.forward_memory(a, [(8, 9, 9)], (8, 4, 4), dataclasses.replace(run, training=False))
    assert inference.saved_bytes == 0 and inference.workspace_bytes == 2 * 8 * 16 * 8
    relu = OPS["relu"]
    in_place = relu.forward_memory({"inplace": False}, [(8, 4, 4)], (8, 4, 4), run, in_place=True)
    assert in_place.output is Storage.SHARED and in_place.saves_output and in_place.saved_bytes == 0
    hardswish = OPS["hardswish"]      # its backward reads the input: an in-place run keeps a copy of it
    assert hardswish.forward_memory({"inplace": False}, [(8, 4, 4)], (8, 4, 4), run, in_place=True).saved_bytes \
        == 2 * 128 * 4
    dropout = OPS["dropout"]
    assert dropout.forward_memory({"p": 0.5, "inplace": False}, [(10,)], (10,), run).saved_bytes == 2 * 10 * 4
    assert dropout.forward_memory({"p": 0.5, "inplace": False}, [(10,)], (10,),
                                  dataclasses.replace(run, backend="cuda")).saved_bytes == 2 * 10  # a bool mask
    assert dropout.forward_memory({"p": 0.0, "inplace": False}, [(10,)], (10,), run).output is Storage.SHARED
    bn = OPS["bn"].bind([], {})
    assert OPS["bn"].forward_memory(bn, [(8, 4, 4)], (8, 4, 4), run).saved_bytes == 2 * 8 * 4   # mean, invstd
    for name in ("concat", "add", "flatten"):
        assert OPS[name].backward_memory({}, [(8, 4, 4)], (8, 4, 4), run, (True,)).grad_inputs is Storage.SHARED


def test_image_needs_no_gradient():
    graph = ia.load_graph(TINY)
    needs = needs_grad(graph)
    assert not needs["input"] and needs["stem.conv"] and all(needs[n.path] for n in graph.layers())


@pytest.fixture(scope="module")
def tiny_no_aux():
    return ia.analyze(ia.load_graph(TINY, {"aux_logits": False}))


# The conv facets model oneDNN's AVX-512 kernels. Its AVX2 kernels (a Zen 3, 2026-11-29) allocate
# more in two places, measured on one-conv networks: a 1x1 convolution with stride 2 (64 -> 64
# channels) 32.9 KB more at inference and 74.0 KB more in training, whatever the batch; an unstrided
# 1x1 convolution's training step (24 -> 40) 16.0 KB more. Where a network holds either at its
# peak, the prediction is short there; the mark fails the test if it ever is not.
AVX2_GAP = pytest.mark.xfail(not torch.backends.cpu.get_cpu_capability().startswith("AVX512"), strict=True,
                             reason="oneDNN's AVX2 1x1 convolutions allocate more than the facets model")


@pytest.mark.parametrize("batch, mode", [(1, "inference"), (4, "inference"), (1, "train"),
                                         pytest.param(4, "train", marks=AVX2_GAP)])
def test_predicted_peak_is_the_measured_one_on_the_tiny_spec(tiny_no_aux, mode, batch):
    """The bench's own step on the CPU (its profiled peak, bench/memory.py) against the prediction."""
    predicted = tiny_no_aux.memory(_on_this_cpu(batch, mode)).peak_bytes
    assert _measured(tiny_no_aux.graph, batch, mode) == pytest.approx(predicted, rel=0.01)


@pytest.mark.parametrize("spec, size, mode, batch", [("googlenet", None, "inference", 2), ("googlenet", 96, "train", 2),
                                                     pytest.param("resnet50", 64, "train", 2, marks=AVX2_GAP)])
def test_predicted_peak_is_the_measured_one_on_a_bundled_spec(spec, size, mode, batch):
    """Bundled specs, trained on small images to keep the test fast (the shapes change, not the ops:
    aux heads, forks, residual adds, in-place ReLUs, max pooling's indices, dropout's masks)."""
    analysis = ia.analyze(spec, input_size=size)
    predicted = analysis.memory(_on_this_cpu(batch, mode)).peak_bytes
    assert _measured(analysis.graph, batch, mode) == pytest.approx(predicted, rel=0.01)


TENSORFLOW_SAME = """
name: tensorflow_same
input: [16, 32, 32]
layers:
  - a: conv(32, 3, stride=2, padding=[[0, 1], [0, 1]], bias=false)
  - bn
  - relu
  - b: conv(32, 3, stride=2, padding=[[0, 1], [0, 1]], groups=32, bias=false)
  - relu
  - adaptive_avgpool
  - flatten
  - linear(10)
"""


@pytest.mark.parametrize("mode, batch, within", [("inference", 1, 0.01), ("inference", 4, 0.01),
                                                 ("train", 4, 0.01), ("train", 1, 0.02)])
def test_a_convolution_padded_more_on_one_side_computes_on_a_padded_copy(mode, batch, within):
    """It pads a copy of its input first (torch's Conv2d pads both sides alike): the copy is its
    workspace, and what training keeps in place of the input. Measured against the prediction as
    above; in training at batch 1 the prediction is 1.9% above the measured peak."""
    analysis = ia.analyze(ia.load_graph(ia.load_spec_text(TENSORFLOW_SAME, "tensorflow_same.yaml")))
    predicted = analysis.memory(_on_this_cpu(batch, mode)).peak_bytes
    assert _measured(analysis.graph, batch, mode) == pytest.approx(predicted, rel=within)


def _on_this_cpu(batch: int, mode: str) -> MemorySettings:
    """The memory analysis's settings for what _measured runs: bench's own (this CPU's oneDNN
    channel block among them: 16 with AVX-512, 8 with AVX2)."""
    return memory_settings(batch, BenchSettings(CPU, mode=mode))


def _measured(graph, batch: int, mode: str) -> int:
    settings = BenchSettings(CPU, mode=mode, warmup=1)
    torch.manual_seed(0)
    model = build_ours(graph, settings)
    images, labels = make_inputs(graph, batch, settings)
    step = make_step(model, images, labels, settings)
    with torch.inference_mode() if mode == "inference" else torch.enable_grad():
        step()      # the optimizer's state exists from the first step on
        return step_peak_bytes(step)


def test_measurement_accounts_for_every_byte_of_a_training_step(tiny_no_aux):
    """A training step with the gradients cleared first allocates, net, exactly the new gradients:
    no free escapes the profiler (it cannot size the free of a block older than itself)."""
    settings = BenchSettings(CPU, mode="train")
    model = build_ours(tiny_no_aux.graph, settings)
    step = make_step(model, *make_inputs(tiny_no_aux.graph, 2, settings), settings)
    step()
    step.clear_gradients()
    _, left = peak_of(allocation_trace(step))
    assert left == storage_bytes(p.grad for p in model.parameters()) == 4 * tiny_no_aux.totals.params


def test_largest_batch_is_the_largest_that_fits():
    analysis = ia.analyze("googlenet")
    settings = MemorySettings(mode="train", backend="cuda")
    capacity = 10**9
    most = largest_batch(analysis.graph, settings, capacity)
    assert analyze_memory(analysis.graph, dataclasses.replace(settings, batch=most)).peak_bytes <= capacity
    assert analyze_memory(analysis.graph, dataclasses.replace(settings, batch=most + 1)).peak_bytes > capacity
    assert largest_batch(analysis.graph, settings, 1000) == 0


def test_settings_are_checked():
    for bad in ({"batch": 0}, {"mode": "training"}, {"backend": "tpu"}, {"optimizer": "lion"}, {"dtype": "fp8"}):
        with pytest.raises(Exception) as err:
            MemorySettings(**bad)
        assert isinstance(err.value, (MemorySettingsError, ia.AnalyzerError))


def test_json_only_adds_keys(tiny_no_aux):
    """docs/json-format.md is a contract: with a run's memory the report has every key it had."""
    from inception_analyzer.render.tables import render
    plain = json.loads(render(tiny_no_aux, "json"))
    memory = tiny_no_aux.memory(MemorySettings(batch=4, mode="train"))
    full = json.loads(render(tiny_no_aux, "json", memory=memory))

    def keys(value, prefix=""):
        if isinstance(value, dict):
            return {k for key, item in value.items() for k in {prefix + key} | keys(item, prefix + key + ".")}
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return keys(value[0], prefix + "[].")
        return set()

    assert keys(plain) <= keys(full)
    stripped = [{k: v for k, v in layer.items() if k not in ("memory", "training_flops")} for layer in full["layers"]]
    assert stripped == plain["layers"]
    assert all(full[key] == plain[key] for key in plain if key not in ("layers", "conventions"))
    assert full["memory"]["peak_bytes"] == memory.peak_bytes
    assert sum(layer["memory"]["kept_bytes"] for layer in full["layers"]) == full["memory"]["kept_bytes"]


def _cli(*args: str) -> tuple[int, str, str]:
    import contextlib
    import io

    from inception_analyzer import cli
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


def test_analyze_options_describe_the_run_without_a_profile(conv_linear):
    """--mode, --batch and --dtype mean the same with or without --device: here the table's memory."""
    spec = conv_linear.request.source
    code, out, _ = _cli("analyze", spec, "--mode", "train", "--batch", "2", "--backend", "cuda", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["memory"]["peak_bytes"] == 268_800            # the hand count above
    assert data["memory"]["settings"] == {"batch": 2, "dtype": "fp32", "mode": "train", "backend": "cuda",
                                          "optimizer": "rmsprop", "channel_block": 16}
    code, table, _ = _cli("analyze", spec, "--mode", "train", "--batch", "2", "--backend", "cuda")
    assert "268,800 B" in table and "backward mem" in table and "bwd FLOPs in" in table
    code, csv_text, _ = _cli("analyze", spec, "--format", "csv", "--batch", "2", "--dtype", "bf16")
    header, *rows = csv_text.splitlines()
    assert header.endswith("backward_input_flops,backward_weight_flops") and len(rows) == 4


def test_analyze_with_a_profile_gives_the_largest_batch(conv_linear):
    spec = conv_linear.request.source
    code, out, _ = _cli("analyze", spec, "--device", "h100", "--mode", "train", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["largest_batch"] > 1000
    code, _, err = _cli("analyze", spec, "--device", "h100", "--backend", "cpu")
    assert code == 2 and "does not run on device profile 'h100'" in err
