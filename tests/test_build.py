"""The built torch model is the analysis made executable: for every spec, the same parameters,
the same shape at every leaf, and fvcore (an independent counter run on the built model) finds the
same multiply-adds per layer and the same total. For the torchvision-compatible specs it is
torchvision's model: its state_dict loads with strict=True and the outputs agree."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import inception_analyzer as ia
from conftest import ROOT, SPECS, spec_path

torch = pytest.importorskip("torch")
from inception_analyzer.build import BuildError, SpecOutputs, build_model  # noqa: E402

TINY = str(Path(__file__).parent / "data" / "tiny_inception.yaml")
# the op kinds of imported CNNs (split, shuffle, channels-last block, layer scale) and references
DAG_OPS = str(Path(__file__).parent / "data" / "dag_ops.yaml")
ALL_SPECS = sorted(str(p) for p in SPECS.glob("*.yaml")) + [TINY, DAG_OPS]


def spec_id(path: str) -> str:
    return Path(path).stem


@pytest.fixture(scope="module", params=ALL_SPECS, ids=spec_id)
def built(request):
    """(spec path, graph, report, model in train mode) for every spec, aux heads on."""
    graph = ia.load_graph(request.param)
    torch.manual_seed(0)
    return request.param, graph, ia.analyze(graph), build_model(graph)


def test_params_equal_the_analysis(built):
    _, _, report, model = built
    assert sum(p.numel() for p in model.parameters()) == report.totals.params
    assert sum(b.numel() for b in model.buffers()) == report.totals.buffers


def test_every_leaf_output_shape_equals_the_inferred_shape(built):
    """Forward hooks on every leaf module, in training mode so auxiliary heads run too."""
    _, graph, report, model = built
    seen = {}
    hooks = [module.register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape[1:])))
             for name, module in model.named_modules() if not list(module.children())]
    model.train()
    with torch.no_grad():
        model(torch.randn(2, *graph.input_shape))
    for hook in hooks:
        hook.remove()
    # merges are done in the forward pass, a layer scale is a parameter: no module of their own
    expected = {r.path: tuple(r.output_shape) for r in report.layers if graph.node(r.path).op.builds_module}
    assert seen == expected


def test_fvcore_counts_equal_the_analysis_per_layer_and_in_total(built, fvcore_flops):
    """fvcore 0.1.5 works on torch 2.13 through torch.jit.trace; eval mode, one image."""
    _, graph, report, model = built
    model.eval()
    analysis = fvcore_flops(model, torch.zeros(1, *graph.input_shape))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
    per_module = analysis.by_module()
    for layer in report.layers:
        if layer.role == "main" and layer.op in ("conv", "linear", "channel_linear", "bn", "layer_norm",
                                                 "adaptive_avgpool"):
            assert per_module[layer.path] == layer.fvcore_flops, layer.path
        if layer.op in ("conv", "linear", "channel_linear") and layer.role == "main":
            assert layer.fvcore_flops == layer.macs
    assert analysis.total() == report.totals.fvcore_flops


def test_training_returns_aux_logits_and_eval_returns_logits():
    model = build_model(spec_path("inception_v3"))
    out = model.train()(torch.randn(2, 3, 299, 299))
    assert isinstance(out, SpecOutputs)
    assert out.logits.shape == (2, 1000) and out.aux_logits.shape == (2, 1000)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 299, 299)).shape == (1, 1000)


def test_several_aux_heads_come_as_a_tuple_in_spec_order():
    out = build_model(spec_path("googlenet"), input_size=224).train()(torch.randn(2, 3, 224, 224))
    assert len(out.aux_logits) == 2 and all(a.shape == (2, 1000) for a in out.aux_logits)


def test_without_aux_training_returns_plain_logits():
    out = build_model(spec_path("inception_v3"), aux_logits=False).train()(torch.randn(2, 3, 299, 299))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 1000)


def test_overrides_reach_the_model():
    model = build_model(TINY, {"num_classes": 3}, input_size=40).eval()
    assert model(torch.zeros(1, 3, 40, 40)).shape == (1, 3)


# ----------------------------------------------------------------------------- torchvision
TORCHVISION = {
    "inception_v3": ({"aux_logits": True, "init_weights": False}, 299),
    "googlenet": ({"aux_logits": True, "init_weights": False}, 224),
    "vgg16": ({}, 224),
    "alexnet": ({}, 224),
}


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_state_dict_loads_strictly_and_outputs_agree(torchvision, name):
    kwargs, size = TORCHVISION[name]
    torch.manual_seed(0)
    theirs = getattr(torchvision.models, name)(weights=None, **kwargs).eval()
    for module in theirs.modules():  # non-trivial running statistics, so BN is really compared
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    ours = build_model(spec_path(name)).eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    image = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected, got = theirs(image), ours(image)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- dtypes, layouts
@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_low_precision_matches_fp32_within_its_precision(dtype):
    torch.manual_seed(0)
    reference = build_model(TINY).eval()
    low = build_model(TINY, dtype=dtype).eval()
    low.load_state_dict(reference.state_dict())
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = reference(image)
        got = low(image.to(next(low.parameters()).dtype))
    assert got.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    torch.testing.assert_close(got.float(), expected, rtol=0.05, atol=0.05)


def test_channels_last_gives_the_same_result():
    torch.manual_seed(0)
    model = build_model(TINY).eval()
    fast = build_model(TINY, channels_last=True).eval()
    fast.load_state_dict(model.state_dict())
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fast(image.to(memory_format=torch.channels_last)), model(image))
    assert next(p for p in fast.parameters() if p.dim() == 4).is_contiguous(memory_format=torch.channels_last)


def test_torch_compile_gives_the_same_result():
    torch.manual_seed(0)
    model = build_model(TINY, aux_logits=False).eval()
    compiled = torch.compile(model)
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(compiled(image), model(image), rtol=1e-4, atol=1e-5)


def test_networks_compiled_in_one_process_each_get_static_shapes():
    """torch.compile keys its cache on the forward's code object. Were every built network to share
    one forward, compiling a second network on another input size would count as a recompilation
    of the first, and dynamo would then compile it for dynamic shapes (37% slower on GoogLeNet)."""
    from torch._dynamo.testing import EagerAndRecordGraphs
    torch._dynamo.reset()
    recorder = EagerAndRecordGraphs()
    for size in (32, 40, 48):
        model = build_model(TINY, aux_logits=False, input_size=size).eval()
        with torch.no_grad():
            torch.compile(model, backend=recorder)(torch.randn(2, 3, size, size))
    assert len(recorder.graphs) == 3
    for graph in recorder.graphs:
        inputs = [node.meta["example_value"] for node in graph.graph.nodes if node.op == "placeholder"]
        assert all(isinstance(value, torch.Tensor) for value in inputs)          # no SymInt inputs
        assert all(isinstance(d, int) for value in inputs for d in value.shape)   # no symbolic sizes
    torch._dynamo.reset()


def test_generated_forward_reads_like_the_spec():
    model = build_model(TINY)
    lines = model.code.splitlines()
    assert lines[0] == "def forward(self, x):" and "    if not self.training:" in lines
    # each module read through its containers' _modules (build._module_expression: no
    # nn.Module.__getattr__ call, the slow path of an attribute path)
    assert "        stem_conv = self._modules['stem']._modules['conv'](x)" in lines
    assert any("combine_concat([mixed_b1_relu, mixed_b7_3_relu, mixed_pool_relu])" in line for line in lines)
    assert lines[-1] == "    return SpecOutputs(fc, aux_relu)"


def test_a_copied_or_pickled_model_runs_its_own_weights(tmp_path):
    import copy
    torch.manual_seed(0)
    model = build_model(TINY, aux_logits=False).eval()
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model(image)
        twin = copy.deepcopy(model)
        torch.save(model, tmp_path / "model.pt")
        loaded = torch.load(tmp_path / "model.pt", weights_only=False)
        for parameter in model.parameters():    # the copies must not read the original's weights
            parameter.zero_()
        torch.testing.assert_close(twin(image), expected)
        torch.testing.assert_close(loaded(image), expected)


def test_torch_fx_traces_a_built_model_back_to_the_same_analysis():
    """torch.fx's tracer calls the class's forward, which runs the instance's generated one: the
    importer reads our own built model back to the same parameters and MACs as the spec."""
    graph = ia.load_graph(TINY)
    imported = ia.from_module(build_model(TINY), tuple(graph.input_shape))
    ours, back = ia.analyze(graph).totals, ia.analyze(imported).totals
    assert (back.params, back.macs) == (ours.params, ours.macs)


def test_generated_names_survive_layers_named_like_keywords_builtins_or_merges(tmp_path):
    spec = tmp_path / "dashed.yaml"
    spec.write_text("name: dashed\ninput: [3, 8, 8]\nlayers:\n  - getattr: conv(4, 3)\n  - block1-0: conv(4, 1)\n"
                    "  - class: relu\n  - combine_concat: adaptive_avgpool(1)\n  - flatten\n  - fc: linear(2)\n")
    model = build_model(str(spec))
    assert "self._modules['block1-0'](getattr_2)" in model.code and "self._modules['class'](" in model.code
    assert "_combine_concat = self._modules['combine_concat'](" in model.code   # no clash with the merges' names
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 2)


def _out_of_place_twin(model):
    """A copy of `model` whose activations all allocate their output, for reference results."""
    import copy
    twin = copy.deepcopy(model)
    for module in twin.modules():
        if hasattr(module, "inplace"):
            module.inplace = False
    return twin


def _assert_same_gradients_as_out_of_place_twin(model, image) -> None:
    """A training step's weight gradients equal those of the model with every activation out of place."""
    twin = _out_of_place_twin(model)
    for network in (model, twin):
        network(image).square().sum().backward()
    for (name, ours), (_, reference) in zip(model.named_parameters(), twin.named_parameters()):
        torch.testing.assert_close(ours.grad, reference.grad, msg=name)


def test_activations_run_in_place_only_on_private_fresh_tensors(tmp_path):
    spec = tmp_path / "forked.yaml"
    spec.write_text("name: forked\ninput: [3, 8, 8]\nlayers:\n"
                    "  - c: conv(4, 3, padding=1)\n"
                    "  - both:\n      concat:\n        - - r: relu(inplace=true)\n        - - d: conv(4, 1)\n          - bn\n          - s: relu\n"
                    "  - flatten\n  - f: relu\n")
    model = build_model(str(spec)).eval()
    # r's input is also read by d: it must allocate, though the spec asks for inplace; s reads a
    # batch norm's output alone; f reads a view (flatten) and must allocate too
    assert (model.both.r.inplace, model.both.s.inplace, model.f.inplace) == (False, True, False)
    image = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model(image), _out_of_place_twin(model)(image), rtol=0, atol=0)


def test_an_activation_after_an_identity_overwrites_the_tensor_before_it(tmp_path):
    """timm's BatchNormAct2d runs batch norm, an identity where dropout would be, then its
    activation in place: the activation overwrites the batch norm's output, which only the identity
    reads. Where that tensor or the identity's is read by anything else, it must allocate."""
    spec = tmp_path / "bn_act.yaml"
    spec.write_text("name: bn_act\ninput: [3, 8, 8]\nlayers:\n"
                    "  - c: conv(4, 3, padding=1)\n  - bn\n  - drop: identity\n  - drop2: dropout(0.5)\n"
                    "  - act: relu(inplace=true)\n"
                    "  - both:\n      concat:\n        - - keep: identity\n          - r: relu(inplace=true)\n"
                    "        - []\n"
                    "  - flatten\n  - fc: linear(2)\n")
    model = build_model(str(spec))
    assert (model.act.inplace, model.both.r.inplace) == (True, False)
    image = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(image), _out_of_place_twin(model)(image), rtol=0, atol=0)
    torch.manual_seed(0)
    model.train()
    twin = _out_of_place_twin(model)
    for network in (model, twin):
        torch.manual_seed(1)                       # the same dropout mask for both
        network(image).square().sum().backward()
    for (name, ours), (_, reference) in zip(model.named_parameters(), twin.named_parameters()):
        torch.testing.assert_close(ours.grad, reference.grad, msg=name)


def test_in_place_activations_leave_training_gradients_unchanged():
    torch.manual_seed(0)
    model = build_model(str(spec_path("resnet50")), input_size=64).train()   # relu after add and after bn
    assert sum(getattr(m, "inplace", False) for m in model.modules()) == 49
    _assert_same_gradients_as_out_of_place_twin(model, torch.randn(2, 3, 64, 64))


def test_silu_and_leaky_relu_run_in_place_as_torchvision_builds_them(tmp_path):
    """torch's SiLU and LeakyReLU take `inplace` as ReLU does (torchvision's EfficientNet builds
    SiLU(inplace=True)); out of place, an EfficientNet's SiLU after each batch norm allocates a
    tensor the original does not. In place, the outputs and the training gradients are the same."""
    spec = tmp_path / "swish.yaml"
    spec.write_text("name: swish\ninput: [3, 8, 8]\nlayers:\n"
                    "  - conv(4, 3, padding=1)\n  - bn\n  - s: silu\n  - conv(4, 3, padding=1)\n  - bn\n"
                    "  - l: leaky_relu(0.1)\n  - flatten\n  - fc: linear(2)\n")
    model = build_model(str(spec)).train()
    assert (model.s.inplace, model.l.inplace) == (True, True)
    _assert_same_gradients_as_out_of_place_twin(model, torch.randn(2, 3, 8, 8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_build_matches_cpu():
    cuda_checks().cuda_build_matches_cpu()  # the GPU suite runs the same check without pytest


def cuda_checks():
    """benchmarks/cuda_checks.py, where the CUDA checks live for the tests and the GPU suite alike."""
    import importlib.util

    location = ROOT / "benchmarks" / "cuda_checks.py"
    spec = importlib.util.spec_from_file_location("cuda_checks", location)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- export and CLI
def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inception_analyzer", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)


def test_torchscript_export_runs_like_the_model(tmp_path):
    path = tmp_path / "tiny.pt"
    proc = cli("build", TINY, "--export", "torchscript", str(path))
    assert proc.returncode == 0, proc.stderr
    loaded = torch.jit.load(str(path)).eval()
    assert loaded(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_onnx_export_has_every_conv(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    path = tmp_path / "tiny.onnx"
    proc = cli("build", TINY, "--set", "aux_logits=false", "--export", "onnx", str(path))
    assert proc.returncode == 0, proc.stderr
    graph = onnx.load(str(path)).graph
    convs = sum(1 for node in graph.node if node.op_type == "Conv")
    expected = sum(1 for r in ia.analyze(TINY, {"aux_logits": False}).layers if r.op == "conv")
    assert convs == expected


def test_build_prints_the_generated_forward():
    proc = cli("build", spec_path("alexnet"), "--code")
    assert proc.returncode == 0, proc.stderr
    code = proc.stdout[proc.stdout.index("def forward(self, x):"):]
    compile(code, "forward", "exec")      # the printed code is valid Python
    calls = [line.strip() for line in code.splitlines() if " = " in line and not line.endswith("= None")]
    assert len(calls) == 22                # one line per AlexNet layer, as the analysis has 22
    # torchvision's names: features.0 is the first conv
    assert calls[0] == "features_0 = self._modules['features']._modules['0'](x)"
    assert calls[-1] == "classifier_6 = self._modules['classifier']._modules['6'](classifier_5)"


def test_build_summary_lists_blocks_and_confirms_the_params():
    proc = cli("build", spec_path("alexnet"), "--summary")
    assert proc.returncode == 0, proc.stderr
    assert "61,100,840 params (= analysis)" in proc.stdout and "classifier.6" in proc.stdout


@pytest.mark.parametrize("args, message", [
    (["--device", "tpu"], "unknown device 'tpu'"),
    (["--device", "cuda:7"], "cuda"),
    (["--dtype", "fp8"], "unknown dtype 'fp8'"),
    (["--set", "num_classes=0"], "'out' must be a positive integer"),
    (["--export", "tflite", "x.tflite"], "--export takes one of onnx, torchscript"),
])
def test_build_bad_input_exits_2_with_one_line(args, message):
    proc = cli("build", TINY, *args)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert message in proc.stderr


def test_a_model_too_large_for_memory_is_refused_before_allocating(tmp_path):
    spec = tmp_path / "huge.yaml"
    spec.write_text("name: huge\ninput: [3, 8, 8]\nlayers:\n  - conv(1000000, 3)\n  - conv(1000000, 3)\n")
    proc = cli("build", str(spec))
    assert proc.returncode == 2, proc.stderr
    # by hand: 1e6 * 3 * 9 + 1e6 (first conv) + 1e6 * 1e6 * 9 + 1e6 (second) parameters
    assert "9,000,029,000,000 params" in proc.stderr
    assert "refusing to allocate" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_build_refuses_overrides_on_an_expanded_graph():
    with pytest.raises(BuildError, match="overrides apply to a spec"):
        build_model(ia.load_graph(TINY), aux_logits=False)


def test_a_module_replaced_after_building_is_the_one_the_forward_calls():
    """The generated forward reads each module through its containers' _modules on every call, so
    module surgery (fusing a batch norm away, swapping a layer) takes effect as in torchvision."""
    model = build_model(TINY, aux_logits=False).eval()
    image = torch.randn(2, 3, 32, 32)
    calls = []
    original = model.stem.conv
    model.stem.conv = torch.nn.Sequential(original)       # the same computation, through a new module
    model.stem.conv.register_forward_hook(lambda *args: calls.append("new"))
    with torch.no_grad():
        model(image)
    assert calls == ["new"]


def test_the_generated_forward_calls_no_module_getattr(monkeypatch):
    """nn.Module.__getattr__ is the slow path of an attribute read (about 1.3 us a call on the
    development machine): a built model's forward reaches its modules without it."""
    model = build_model(TINY, aux_logits=False).eval()
    calls = []
    real = torch.nn.Module.__getattr__

    def counting(self, name):
        calls.append(name)
        return real(self, name)

    monkeypatch.setattr(torch.nn.Module, "__getattr__", counting)
    with torch.no_grad():
        model.forward(torch.randn(2, 3, 32, 32))
    assert [name for name in calls if name in dict(model.named_modules())] == []
