"""Importing PyTorch models (torch.fx) into the IR, and writing them back as specs.

Independent sources: the reference models themselves (torchvision's and timm's classes: their
parameter counts, their state_dicts, their outputs), fvcore's conv + linear counts on them, and
our hand-written specs of the same architectures, which were checked against those references
on their own (test_torchvision_parity.py, test_spec_*.py). Reference packages that cannot be
imported skip their cases; the toy models in import_models.py need only torch.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

import import_models as toys  # noqa: E402 - after the torch skip
import inception_analyzer as ia  # noqa: E402
from conftest import ROOT, spec_path  # noqa: E402
from inception_analyzer.graph import AUX, build_graph  # noqa: E402
from inception_analyzer.errors import SpecError  # noqa: E402
from inception_analyzer.importer import (ModelImportError, import_module, load_callable, parse_reference,  # noqa: E402
                                         written_spec)
from inception_analyzer.ops import Category  # noqa: E402
from inception_analyzer.spec import load_spec_text  # noqa: E402
from inception_analyzer.spec_writer import SpecWriteError, write_spec  # noqa: E402

TESTS = ROOT / "tests"

# name -> (package, builder call, input size); every one has a hand-written spec of the same name
REFERENCES = {
    "inception_v3": ("torchvision", lambda tv: tv.models.inception_v3(weights=None, init_weights=False), 299),
    "googlenet": ("torchvision", lambda tv: tv.models.googlenet(weights=None, init_weights=False), 224),
    "vgg16": ("torchvision", lambda tv: tv.models.vgg16(weights=None), 224),
    "alexnet": ("torchvision", lambda tv: tv.models.alexnet(weights=None), 224),
    "resnet50": ("torchvision", lambda tv: tv.models.resnet50(weights=None), 224),
    "inception_v4": ("timm", lambda timm: timm.create_model("inception_v4", pretrained=False), 299),
    "inception_resnet_v2": ("timm", lambda timm: timm.create_model("inception_resnet_v2", pretrained=False), 299),
}


@pytest.fixture(scope="module", params=list(REFERENCES))
def reference(request):
    """(name, the reference model in eval mode with random BN statistics, its import, the spec text)."""
    name = request.param
    package, make, size = REFERENCES[name]
    module = request.getfixturevalue(package)
    torch.manual_seed(0)
    model = make(module).eval()
    for layer in model.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.running_mean.uniform_(-0.5, 0.5)
            layer.running_var.uniform_(0.5, 2.0)
    imported = import_module(model, (3, size, size), name=name)
    return name, model, imported, write_spec(imported)


def test_import_has_the_models_params(reference):
    name, model, imported, _ = reference
    assert ia.analyze(imported.graph).totals.params == sum(p.numel() for p in model.parameters())
    assert imported.unreached == {}


def test_import_macs_equal_fvcore_conv_and_linear(reference, fvcore_flops):
    name, model, imported, _ = reference
    size = imported.graph.input_shape[1]
    by_operator = fvcore_flops(model, torch.zeros(1, 3, size, size)).by_operator()
    assert ia.analyze(imported.graph).totals.macs == by_operator["conv"] + by_operator["linear"]


def test_import_equals_the_hand_written_spec_layer_by_layer(reference):
    """Every conv, bn and linear: same path, arguments, input and output shapes as our spec."""
    name, _, imported, _ = reference
    spec = ia.load_graph(spec_path(name))

    def weighted(graph):
        return {n.path: (n.kind, n.args, n.in_shapes, n.out_shape, n.role) for n in graph.layers()
                if n.op.weighted or n.op.category is Category.BATCH_NORM}

    assert weighted(imported.graph) == weighted(spec)


def test_review_of_the_import_matches_the_review_of_the_spec(reference):
    """`review` works on an imported model unchanged: the same findings on the same blocks."""
    name, _, imported, _ = reference
    ours = {(f.check, f.path, f.severity) for f in ia.analyze(spec_path(name)).findings}
    imported_findings = {(f.check, f.path, f.severity) for f in ia.analyze(imported.graph).findings}
    # functional ops (F.max_pool2d) have derived names in both; compare the blocks they sit in
    assert {(c, p.split(".")[0], s) for c, p, s in imported_findings} == {(c, p.split(".")[0], s) for c, p, s in ours}


def test_written_spec_builds_a_model_that_loads_the_state_dict_and_agrees(reference):
    name, model, imported, text = reference
    graph = build_graph(load_spec_text(text, f"{name}.yaml"))
    built = ia.build_model(graph).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    size = graph.input_shape[1]
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(built(x), model(x), rtol=0, atol=1e-5)
    assert ia.analyze(graph).totals.params == sum(p.numel() for p in model.parameters())


def test_written_spec_uses_templates_for_repeated_modules(reference):
    name, _, _, text = reference
    spec = load_spec_text(text, f"{name}.yaml")
    expected = {"inception_v3": {"BasicConv2d", "InceptionA", "InceptionC", "InceptionE"},
                "googlenet": {"BasicConv2d", "Inception", "InceptionAux"},
                "vgg16": set(), "alexnet": set(), "resnet50": {"Bottleneck"},
                "inception_v4": {"ConvNormAct", "InceptionA", "InceptionB", "InceptionC"},
                "inception_resnet_v2": {"ConvNormAct", "Block35", "Block17", "Block8"}}[name]
    assert expected <= {re.sub(r"_\d+$", "", t) for t in spec.templates}
    if expected:  # then the written spec is much shorter than one row per op
        assert text.count("\n") < 0.6 * sum(1 for _ in ia.load_graph(spec_path(name)).layers())


# ----------------------------------------------------------------------------- toy models
def test_functional_ops_cat_residual_and_view_are_understood():
    imported = import_module(toys.TinyInception(aux_logits=False), (3, 32, 32))
    kinds = [n.kind for n in imported.graph.layers()]
    assert kinds.count("concat") == 2 and kinds.count("add") == 2 and kinds.count("scale") == 2
    assert imported.graph.node("Mixed_a.maxpool").args["stride"] == (1, 1)   # F.max_pool2d(x, 3, 1, 1)
    mean = next(n for n in imported.graph.layers() if n.kind == "adaptive_avgpool")  # torch.mean(..., keepdim)
    assert mean.out_shape == (32, 1, 1)
    assert next(n for n in imported.graph.layers() if n.kind == "scale").args == {"factor": 0.2}
    # the one ReLU module the residual block calls is one op per call
    assert "res.0.relu" in imported.graph.dag


def test_aux_head_is_found_by_a_training_trace_without_touching_the_model():
    model = toys.TinyInception().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    imported = import_module(model, (3, 32, 32))
    assert imported.traced_in == "train"
    assert imported.graph.aux_outputs == ["aux.2"]
    assert {n.path for n in imported.graph.layers() if n.role == AUX} == {"aux.0", "aux.1", "aux.2"}
    assert not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN statistics unchanged
    report = ia.analyze(imported.graph)
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    assert report.totals.macs_aux == 32 * 10  # the aux head's linear layer


def test_toy_spec_round_trip_outputs_agree_in_eval_and_train():
    torch.manual_seed(0)
    model = toys.TinyInception()
    text = write_spec(import_module(model, (3, 32, 32)))
    built = ia.build_model(build_graph(load_spec_text(text, "toy.yaml")))
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(built.eval()(x), model.eval()(x))
        torch.manual_seed(1)
        ours = built.train()(x)
        torch.manual_seed(1)
        theirs = model.train()(x)
    torch.testing.assert_close(ours.logits, theirs.logits)
    torch.testing.assert_close(ours.aux_logits, theirs.aux_logits)
    assert "Mixed_a: Mixed(8)" in text and "Mixed_b: Mixed(16)" in text


def test_unmodelled_operations_are_listed_with_source_line_and_status():
    with pytest.raises(ModelImportError) as caught:
        import_module(toys.Unmodelled(), (3, 16, 16))
    message = str(caught.value)
    source = toys.__file__
    # the slice, the sort, the sort's .values, and the maximum of two tensors
    assert "4 operation(s)" in message and "nothing is counted as zero" in message
    lines = {line.split(": ")[1].split(" ")[0]: line for line in message.splitlines()[1:]}
    slice_line = _line_of(source, "x = x[:, ::2]")
    assert f"{source}:{slice_line}" in lines["getitem"] and "unsupported" in lines["getitem"]
    assert "returns several tensors" in lines["sort"]
    assert f"{source}:{_line_of(source, 'return torch.maximum(x, torch.sigmoid(x))')}" in lines["maximum"]
    assert "no op kind for the function torch.maximum" in lines["maximum"]


def test_squeeze_excitation_gate_imports_as_a_mul_block_and_round_trips():
    torch.manual_seed(0)
    model = toys.SqueezeExcite().eval()
    imported = import_module(model, (3, 16, 16))
    text = write_spec(imported)
    assert "  - mul:\n      - []\n" in text  # the feature map times its gate branch
    graph = build_graph(load_spec_text(text, "se.yaml"))
    built = ia.build_model(graph).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(built(x), model(x))
    report = ia.analyze(graph)
    # conv 16*256*27 + fc1 4*16 + fc2 16*4 + head 16*5 MACs, by hand
    assert report.totals.macs == 16 * 256 * 27 + 64 + 64 + 80
    # the gate is global: it widens the field and has no centre to misalign
    assert report.receptive_fields["mul"].aligned
    assert not any(f.check == "RF.unaligned_merge" for f in report.findings)


def test_no_strict_keeps_unmodelled_ops_as_opaque_and_says_the_totals_are_partial():
    from inception_analyzer.render.tables import render

    graph = ia.from_module(toys.Unmodelled(), (3, 16, 16), strict=False)
    report = ia.analyze(graph)
    opaque = [l for l in report.layers if l.op == "opaque"]
    assert [l.args for l in opaque] == ["_operator.getitem", "builtins.getattr", "torch.maximum"]
    assert report.totals.status == "partial" and report.totals.unmodelled == [l.path for l in opaque]
    assert report.totals.macs == 8 * 14 * 14 * 27   # the conv alone: a lower bound, said so
    assert "PARTIAL: 3 op(s) not modelled" in render(report)
    assert json.loads(render(report, "json"))["totals"]["status"] == "partial"
    # the maximum reads two tensors: its row reads them by name, and the spec analyses the same
    text = write_spec(import_module(toys.Unmodelled(), (3, 16, 16), strict=False))
    assert "call: opaque([4, 14, 14], 'torch.maximum')\n    from: [" in text
    written = ia.analyze(build_graph(load_spec_text(text, "unmodelled.yaml")))
    assert (written.totals.macs, written.totals.params, written.totals.status) == \
        (report.totals.macs, report.totals.params, "partial")
    complete = ia.analyze(ia.from_module(toys.TinyInception(aux_logits=False), (3, 32, 32)))
    assert complete.totals.status == "complete" and complete.totals.unmodelled == []


def test_no_strict_spec_keeps_the_opaque_row_analyses_and_refuses_to_build(tmp_path):
    proc = _cli("import", "import_models:ChannelSlice", "--input-size", "12", "--no-strict", "-o", str(tmp_path / "s.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert "not modelled, kept as an opaque op" in proc.stderr and "getitem" in proc.stderr
    text = (tmp_path / "s.yaml").read_text()
    assert "- opaque([4, 10, 10], '_operator.getitem')" in text
    report = ia.analyze(str(tmp_path / "s.yaml"))
    assert report.totals.macs == 8 * 100 * 27 + 6 * 64 * 36 and report.totals.status == "partial"
    built = _cli("build", str(tmp_path / "s.yaml"))
    assert built.returncode == 2 and "cannot be built" in built.stderr and "Traceback" not in built.stderr
    # compare and report never present the lower bound as exact
    compared = _cli("compare", str(tmp_path / "s.yaml"), "--baseline", str(tmp_path / "s.yaml"), "--format", "csv")
    assert compared.returncode == 0, compared.stderr
    assert ">=" in _cli("compare", str(tmp_path / "s.yaml"), "--baseline", str(tmp_path / "s.yaml")).stdout
    assert _cli("report", str(tmp_path / "s.yaml"), "-o", str(tmp_path / "r")).returncode == 0
    assert "a lower bound: 1 imported op(s) not modelled" in (tmp_path / "r" / "report.md").read_text()


def test_shared_weights_are_refused_not_double_counted():
    with pytest.raises(ModelImportError, match="shared weights: module conv is called 2 times"):
        import_module(toys.SharedWeights(), (4, 8, 8))
    # without strict, the second call is an opaque op holding no weights: counted once, as torch does
    report = ia.analyze(ia.from_module(toys.SharedWeights(), (4, 8, 8), strict=False))
    assert report.totals.params == 4 * 4 * 9 + 4 and report.totals.unmodelled == ["conv_1"]


def test_weights_that_never_run_are_reported():
    imported = import_module(toys.NotExecuted(), (3, 8, 8))
    assert imported.unreached == {"spare": 30}
    assert ia.analyze(imported.graph).totals.params == 3 * 4 * 9 + 4


def test_a_dense_block_is_written_with_references_and_round_trips():
    """DenseNet's pattern is not series-parallel: its concatenations read earlier tensors by name."""
    torch.manual_seed(0)
    model = toys.DenseBlock().eval()
    imported = import_module(model, (3, 8, 8))
    assert ia.analyze(imported.graph).totals.macs == 8 * 8 * (4 * 3 * 9 + 4 * 7 * 9)
    text = write_spec(imported)
    assert "from: [input, conv1]" in text and "from: [input, conv1, conv2]" in text
    built = ia.build_model(build_graph(load_spec_text(text, "dense.yaml"))).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(built(x), model(x), rtol=0, atol=0)


def _round_trips(model, input_shape: tuple) -> str:
    """The written spec builds a model that loads the original's state_dict and agrees with it."""
    torch.manual_seed(0)
    model = model.eval()
    text = write_spec(import_module(model, input_shape))
    built = ia.build_model(build_graph(load_spec_text(text, "written.yaml"))).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, *input_shape)
    with torch.no_grad():
        torch.testing.assert_close(built(x), model(x), rtol=0, atol=1e-5)
    return text


def test_a_tensor_made_early_and_read_late_keeps_each_module_in_one_row():
    """A DLA tree pools its input first and only its root reads the pool; its first block adds a
    projection made outside the block. Each module is still one row, the pool written where the
    model ran it, and the block reads the projection by name."""
    text = _round_trips(toys.Trees(), (3, 16, 16))
    spec = load_spec_text(text, "trees.yaml")
    assert [row.name for row in spec.layers.branches[0]] == ["stem", "level1", "level2"]
    tree = spec.templates["Tree"].body.branches[0]
    assert [row.name for row in tree] == ["downsample", "widen", "project", "tree1", "tree2", None, "root"]
    assert "from: [bn, project]" in text


def test_module_lists_called_in_turn_are_written_with_dotted_names():
    """Res2Net's convs and bns run in turn: neither list runs in one piece, so each child is a row
    of its own (`convs.0`), and the weights keep their paths."""
    text = _round_trips(toys.HierarchicalSplit(), (3, 8, 8))
    rows = [line.strip().partition(":")[0] for line in text.splitlines() if line.strip().startswith("- ")]
    assert [r for r in rows if "." in r] == ["- convs.0", "- bns.0", "- convs.1", "- bns.1"]


def test_control_flow_on_shapes_is_traced_at_the_input_size():
    """A forward that branches on a shape is traced again with the shapes known: the branch the
    input size takes is the one imported, at either size."""
    large = import_module(toys.PoolsWhenLarge().eval(), (3, 12, 12))
    assert [n.kind for n in large.graph.layers()] == ["conv", "relu", "adaptive_avgpool", "conv", "flatten"]
    small = import_module(toys.PoolsWhenLarge().eval(), (3, 4, 4))
    assert [n.kind for n in small.graph.layers()] == ["conv", "relu", "conv", "flatten"]
    for size in (12, 4):
        _round_trips(toys.PoolsWhenLarge(), (3, size, size))
    _round_trips(toys.ChecksItsInput(), (3, 16, 16))     # an assertion on a shape, met


def test_tensorflow_same_padding_becomes_the_convolutions_own_padding():
    """timm's Conv2dSame pads by what the input size needs (a branch on shapes), then calls the
    convolution function with its own weights: one conv on the module's path, padded more after
    the map, as TensorFlow defines 'same'. By hand at 8 x 8: the stem's 3x3/2 needs (4 - 1) x 2 +
    3 - 8 = 1 pixel, after the map (out 4 x 4): 4 x 4 x 8 x 27 MACs; the ZeroPad2d widens 4 x 4 by
    1 + 1 columns and the depthwise 3x3/2 then needs 1 pixel after on both axes (out 2 x 3): both
    pads are its padding, 2 x 3 x 8 x 9 MACs."""
    imported = import_module(toys.TensorFlowPadded().eval(), (3, 8, 8))
    convs = {n.path: n.args["padding"] for n in imported.graph.layers() if n.kind == "conv"}
    assert convs == {"stem": ((0, 1), (0, 1)), "conv": ((0, 1), (1, 2))}
    assert "pad" not in {n.kind for n in imported.graph.layers()}
    assert ia.analyze(imported.graph).totals.macs == 4 * 4 * 8 * 27 + 2 * 3 * 8 * 9
    assert "padding=[[0, 1], [1, 2]]" in _round_trips(toys.TensorFlowPadded(), (3, 8, 8))
    with pytest.raises(ModelImportError, match="a convolution whose weight is computed in the forward"):
        import_module(toys.StandardisedConv(3, 4, 3), (3, 8, 8))
    with pytest.raises(ModelImportError, match=r"pad \(torch.nn.functional.pad, .*reflect padding \(only a constant\)"):
        import_module(toys.ReflectPadded(), (3, 8, 8))


def test_zero_padding_read_by_other_layers_stays_a_layer():
    """A pad that a pool reads, or that two layers read, is no convolution's padding."""
    text = write_spec(import_module(toys.PaddedTwice().eval(), (3, 8, 8)))
    assert text.count("pad(") == 2
    _round_trips(toys.PaddedTwice(), (3, 8, 8))


def test_upsampling_imports_by_factor_or_to_the_size_it_reaches():
    """nn.Upsample and F.interpolate (nearest, bilinear) become `upsample`: by whole factors, or to
    the traced size where it is none (a 3x3 gate brought to 8x8, its size read off another map).
    By hand at 8 x 8: enc1 8x8x8x27, enc2 4x4x16x72, enc3 2x2x16x144, dec2 4x4x8x288, dec1
    8x8x4x16 and the gate 3x3/3 3x3x4x27 MACs."""
    imported = import_module(toys.TinyUNet().eval(), (3, 8, 8))
    ups = [(n.args["scale"], n.args["size"], n.args["mode"]) for n in imported.graph.layers() if n.kind == "upsample"]
    assert ups == [((2, 2), None, "nearest"), ((2, 2), None, "bilinear"), (None, (8, 8), "nearest")]
    assert ia.analyze(imported.graph).totals.macs == (64 * 8 * 27 + 16 * 16 * 72 + 4 * 16 * 144 + 16 * 8 * 288
                                                      + 64 * 4 * 16 + 9 * 4 * 27)
    _round_trips(toys.TinyUNet(), (3, 8, 8))
    with pytest.raises(ModelImportError, match="bicubic interpolation"):
        import_module(toys.Shrinks(), (3, 8, 8))


def test_batchnorm1d_of_a_head_imports_and_of_a_sequence_is_refused():
    """BatchNorm1d on a head's vector is `bn` over its features (16 x 2 weights, 16 x 2 + 1
    buffers); on an [N, C, L] sequence it is no op of ours."""
    model = toys.MlpHead()
    del model.sequence_norm
    imported = import_module(model.eval(), (3, 8, 8))
    norm = next(n for n in imported.graph.layers() if n.kind == "bn")
    assert (norm.path, norm.in_shapes, ia.analyze(imported.graph).totals.params) == \
        ("head.2", ((16,),), sum(p.numel() for p in model.parameters()))
    _round_trips(model, (3, 8, 8))
    with pytest.raises(ModelImportError, match=r"norm \(BatchNorm1d, in norm\): unsupported"):
        import_module(toys.NormalisesSequences().eval(), (3, 8, 8))


def test_load_callable_reads_literal_arguments_only():
    model = load_callable("import_models:TinyInception(num_classes=7, aux_logits=False)")
    assert model.fc.out_features == 7 and model.aux is None
    for bad, message in (("import_models", "MODULE:CALLABLE"), ("import_models:Nope", "no attribute 'Nope'"),
                         ("import_models:TinyInception(num_classes=len('x'))", "must be literals"),
                         ("no_such_module_xyz:f", "cannot import no_such_module_xyz"),
                         ("import_models:Outputs(1, 2)", "not a torch.nn.Module")):
        with pytest.raises(ModelImportError, match=message):
            load_callable(bad)


@pytest.mark.parametrize("reference, message", [
    ("os:remove('{victim}')", "refusing to import from os: it is part of Python's standard library"),
    ("subprocess:run(['rm', '{victim}'])", "standard library"),
    ("builtins:eval('__import__(\"os\").remove(\"{victim}\")')", "standard library"),
    ("import_models:remove('{victim}')", "refusing to call import_models:remove: it is defined in"),
])
def test_import_calls_only_model_factories(tmp_path, reference, message):
    victim = tmp_path / "still-here"
    victim.touch()
    with pytest.raises(ModelImportError, match=message):
        load_callable(reference.format(victim=victim))
    assert victim.exists()
    # a function of the named package is called (it is no model, which import then says)
    with pytest.raises(ModelImportError, match="returned NoneType, not a torch.nn.Module"):
        load_callable(f"import_models:make_file('{tmp_path / 'made'}')")
    assert (tmp_path / "made").exists()


@pytest.mark.parametrize("arguments", ["[" * 5000 + "]" * 5000, "{[1]: 2}", "x=" + "(" * 200 + "1" + ")" * 200])
def test_odd_literal_arguments_are_one_clear_error(arguments):
    with pytest.raises(ModelImportError, match="literals|longer than|cannot read"):
        load_callable(f"import_models:TinyInception({arguments})")


def test_imported_models_are_named_after_the_model():
    assert parse_reference("timm:create_model('resnet50d', pretrained=False)").model_name == "resnet50d"
    assert parse_reference("torchvision.models:get_model(name='vgg16')").model_name == "vgg16"
    assert parse_reference("torchvision.models:resnet50").model_name == "resnet50"
    assert parse_reference("import_models:TinyInception(num_classes=7)").model_name == "TinyInception"


def test_a_forward_that_fails_at_the_input_size_is_one_line(tmp_path):
    proc = _cli("import", "import_models:NeedsLargeInput", "--input-size", "16")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "does not run on a [3, 16, 16] input: RuntimeError: mat1 and mat2 shapes cannot be multiplied" in proc.stderr
    assert _cli("import", "import_models:NeedsLargeInput", "--input-size", "32").returncode == 0


def test_cli_import_of_torchvision_works_without_the_tests_work_around(torchvision, tmp_path):
    """The environment ./dev makes has a torchvision whose compiled ops do not load here: the
    command imports its models anyway (a fresh interpreter: nothing of conftest's work-around)."""
    out = tmp_path / "r18.yaml"
    proc = _cli("import", "torchvision.models:resnet18", "-o", str(out), "--name", "tv_resnet18", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("note: torchvision") <= 1  # said once, where the work-around was needed
    assert "name: tv_resnet18" in out.read_text()
    assert ia.analyze(str(out)).totals.params == sum(p.numel() for p in torchvision.models.resnet18().parameters())


def _line_of(path: str, text: str) -> int:
    with open(path) as handle:
        return next(i for i, line in enumerate(handle, 1) if text in line)


# ----------------------------------------------------------------------------- command line
def _cli(*args: str, cwd=TESTS) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inception_analyzer", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_cli_import_writes_a_spec_that_analyze_review_and_diagram_read(tmp_path):
    out = tmp_path / "toy.yaml"
    proc = _cli("import", "import_models:TinyInception(num_classes=10)", "--input-size", "32", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "imported import_models:TinyInception(num_classes=10) (train trace)" in proc.stderr
    params = sum(p.numel() for p in toys.TinyInception().parameters())
    assert f"{params:,} params" in proc.stderr
    for command in (["analyze", str(out)], ["review", str(out)], ["diagram", str(out), "-o", str(tmp_path / "t.dot")],
                    ["report", str(out), "-o", str(tmp_path / "report")]):
        done = _cli(*command)
        assert done.returncode == 0, done.stderr
    assert f"{params:,}" in _cli("analyze", str(out)).stdout
    assert "TinyInception" in (tmp_path / "report" / "report.html").read_text()


def test_cli_import_of_unmodelled_ops_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "bad.yaml"
    proc = _cli("import", "import_models:Unmodelled", "--input-size", "16", "-o", str(out))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "import_models.py:" in proc.stderr and "getitem" in proc.stderr
    assert not out.exists()


def test_cli_import_of_a_dense_block_writes_references(tmp_path):
    proc = _cli("import", "import_models:DenseBlock", "--input-size", "8", "-o", str(tmp_path / "d.yaml"))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "from: [input, conv1, conv2]" in (tmp_path / "d.yaml").read_text()
    assert _cli("build", str(tmp_path / "d.yaml")).returncode == 0


def test_from_module_is_the_public_entry_point():
    graph = ia.from_module(toys.TinyInception(aux_logits=False), (3, 32, 32))
    assert ia.analyze(graph).totals.params == sum(p.numel() for p in toys.TinyInception(aux_logits=False).parameters())


def test_merges_in_the_models_own_forward_are_reviewed_as_whole_blocks():
    """torch.cat / + in the root forward: the block runs from the fork to the merge, as an
    unnamed merge of a spec does, so the import and its written spec review alike."""
    imported = import_module(toys.DenseBlock(), (3, 8, 8))
    assert {n.block for n in imported.graph.layers() if n.path.startswith(("conv", "concat"))} == {"concat_1"}
    toy = import_module(toys.TinyInception(aux_logits=False), (3, 32, 32))
    written = build_graph(load_spec_text(write_spec(toy), "toy.yaml"))
    assert {(f.check, f.severity) for f in ia.analyze(toy.graph).findings} == \
        {(f.check, f.severity) for f in ia.analyze(written).findings}


def test_analyze_review_and_report_read_an_imported_torchvision_model(torchvision, tmp_path, capsys):
    from inception_analyzer.cli import main

    imported = import_module(torchvision.models.resnet50(weights=None), (3, 224, 224), name="resnet50_import")
    spec = tmp_path / "resnet50_import.yaml"
    spec.write_text(write_spec(imported))
    assert main(["analyze", str(spec), "--depth", "stage"]) == 0
    assert "25,557,032" in capsys.readouterr().out
    assert main(["review", str(spec), "--format", "json"]) == 0
    assert "P1.residual" in capsys.readouterr().out
    assert main(["report", str(spec), "-o", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "report.html").read_text()
    assert "resnet50_import" in page and "layer4" in page


# More torchvision families than our specs cover: depthwise and grouped convs, squeeze-and-
# excitation gates (mul), hard-swish, stochastic depth, dense connectivity. Each import must hold
# the model's params and fvcore's conv + linear count; those the spec language can express must
# come back as a spec that loads the model's state_dict and computes the same outputs.
FAMILIES = {"resnet18": True, "resnext50_32x4d": True, "mobilenet_v2": True, "mobilenet_v3_small": True,
            "efficientnet_b0": True, "squeezenet1_0": True, "regnet_x_400mf": True, "densenet121": True}


@pytest.mark.parametrize("name", FAMILIES)
def test_other_torchvision_families_import_exactly(torchvision, fvcore_flops, name):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(weights=None).eval()
    imported = import_module(model, (3, 224, 224), name=name)
    report = ia.analyze(imported.graph)
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    by_operator = fvcore_flops(model, torch.zeros(1, 3, 224, 224)).by_operator()
    assert report.totals.macs == by_operator["conv"] + by_operator["linear"]
    if not FAMILIES[name]:  # DenseNet: every layer reads all earlier ones, not series-parallel
        with pytest.raises(SpecWriteError, match="not series-parallel"):
            write_spec(imported)
        return
    built = ia.build_model(build_graph(load_spec_text(write_spec(imported), f"{name}.yaml"))).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(built(x), model(x), rtol=1e-4, atol=1e-5)


def test_modules_named_like_the_spec_languages_words_write_a_spec_that_loads(tmp_path):
    torch.manual_seed(0)
    model = toys.ReservedNames().eval()
    text = write_spec(import_module(model, (3, 8, 8)))
    for word in ("layers", "concat", "add", "mul", "call", "from"):
        assert f"name: {word}\n" in text
    built = ia.build_model(build_graph(load_spec_text(text, "words.yaml"))).eval()
    built.load_state_dict(model.state_dict(), strict=True)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(built(x), model(x), rtol=0, atol=0)
    proc = _cli("import", "import_models:ReservedNames", "--input-size", "8", "-o", str(tmp_path / "w.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert _cli("build", str(tmp_path / "w.yaml")).returncode == 0


@pytest.mark.parametrize("model, phrases", [
    ("ContainsItself", ["contains itself", "(at inner.parent)"]),
    ("InputModule", ["a module named 'input' at its top level", "(at input)"]),
    ("BranchesOnValues", ["torch.fx cannot trace import_models:BranchesOnValues", "control flow"]),
    ("ChecksItsInput", ["does not run on a [3, 8, 8] input: AssertionError: needs 16 x 16 images, got 8",
                        "--input-size"]),
])
def test_models_that_cannot_be_imported_say_why_in_one_line(tmp_path, model, phrases):
    proc = _cli("import", f"import_models:{model}", "--input-size", "8", "-o", str(tmp_path / "m.yaml"))
    message = proc.stderr.strip()
    assert proc.returncode == 2 and len(message.splitlines()) == 1 and "Traceback" not in message, message
    assert all(phrase in message for phrase in phrases), message
    assert not (tmp_path / "m.yaml").exists()


# Models with operations no op kind expresses (GroupNorm, a Conv1d on a reshaped vector, weight
# standardisation, split attention, attention in windows on channels-last tensors): without strict
# they are kept opaque, never counted as zero, their weights counted once each, and the written
# spec reads as the import does.
NO_STRICT = {"resnet50_gn": ("timm", 64), "eca_vovnet39b": ("timm", 64), "nf_resnet26": ("timm", 64),
             "resnest14d": ("timm", 64), "swin_t": ("torchvision", 224)}


@pytest.mark.parametrize("name", NO_STRICT)
def test_no_strict_imports_never_crash_nor_miscount(request, name):
    package, size = NO_STRICT[name]
    module = request.getfixturevalue(package)
    model = module.create_model(name) if package == "timm" else module.models.get_model(name)
    imported = import_module(model.eval(), (3, size, size), name=name, strict=False)
    report = ia.analyze(imported.graph)
    assert report.totals.status == "partial" and report.totals.unmodelled
    assert report.totals.params == sum(p.numel() for p in model.parameters())
    text = written_spec(imported)   # checked op for op against the import
    written = ia.analyze(build_graph(load_spec_text(text, f"{name}.yaml")))
    assert (written.totals.params, written.totals.macs, len(written.totals.unmodelled)) == \
        (report.totals.params, report.totals.macs, len(report.totals.unmodelled))
    with pytest.raises(SpecError, match="cannot be built"):
        ia.build_model(build_graph(load_spec_text(text, f"{name}.yaml")))
