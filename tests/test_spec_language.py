"""What the spec language means: templates, names, branches, aux heads, conditions, overrides.

Expected figures are hand calculations written next to each case.
"""
from __future__ import annotations

import textwrap

import pytest

import inception_analyzer as ia
from inception_analyzer.graph import build_graph
from inception_analyzer.spec import load_spec_text
from inception_analyzer.errors import OverrideError, SpecError


def graph_of(text: str, overrides=None, input_size=None):
    return ia.load_graph(ia.load_spec_text(textwrap.dedent(text), "t.yaml"), overrides, input_size)


def paths(graph) -> list[str]:
    return [n.path for n in graph.layers()]


TEMPLATED = """
    name: t
    arguments: {width: 16, aux_logits: true, num_classes: 10, input_size: 32}
    input: [3, $input_size, $input_size]
    modules:
      ConvBN:
        args: [out, kernel, stride: 1, padding: 0]
        layers:
          - conv: conv(out, kernel, stride=stride, padding=padding, bias=false)
          - bn: bn(eps=0.001)
          - relu
      Mixed:
        args: [pool_features]
        concat:
          - b1: ConvBN(8, 1)
          - - b3_1: ConvBN(4, 1)
            - b3_2: ConvBN(8, 3, padding=1)
          - - avgpool(3, stride=1, padding=1)
            - pool: ConvBN(pool_features, 1)
    layers:
      - stem: ConvBN(width, 3, stride=2, padding=1)
      - mix: Mixed(pool_features=4)
      - head:
          call: ConvBN(2, 1)
          aux: true
          when: aux_logits
      - adaptive_avgpool(1)
      - flatten
      - fc: linear(num_classes)
"""


def test_names_nest_like_torch_modules_and_branches_share_their_level():
    graph = graph_of(TEMPLATED)
    assert paths(graph) == [
        "stem.conv", "stem.bn", "stem.relu",
        "mix.b1.conv", "mix.b1.bn", "mix.b1.relu",
        "mix.b3_1.conv", "mix.b3_1.bn", "mix.b3_1.relu", "mix.b3_2.conv", "mix.b3_2.bn", "mix.b3_2.relu",
        "mix.avgpool", "mix.pool.conv", "mix.pool.bn", "mix.pool.relu", "mix.concat",
        "head.conv", "head.bn", "head.relu",
        "adaptive_avgpool", "flatten", "fc"]


def test_shapes_follow_torch_arithmetic():
    graph = graph_of(TEMPLATED)
    # 32x32, 3x3 stride 2 pad 1: floor((32 + 2 - 3) / 2) + 1 = 16
    assert graph.node("stem.conv").out_shape == (16, 16, 16)
    # concat of 8 + 8 + pool_features 4 channels on the 16x16 grid
    assert graph.node("mix.concat").out_shape == (20, 16, 16)
    assert graph.node("mix.concat").inputs == ("mix.b1.relu", "mix.b3_2.relu", "mix.pool.relu")
    assert graph.node("fc").out_shape == (10,)


def test_params_and_macs_by_hand():
    report = ia.analyze(graph_of(TEMPLATED))
    by_path = {r.path: r for r in report.layers}
    # stem conv: 16 * 3 * 3*3 weights, no bias; MACs = 16*16*16 outputs * 3*3*3
    assert by_path["stem.conv"].params == 432
    assert by_path["stem.conv"].macs == 16 * 16 * 16 * 27
    assert by_path["stem.bn"].params == 32 and by_path["stem.bn"].buffers == 33
    # fc: 20 * 10 + 10 bias
    assert by_path["fc"].params == 210 and by_path["fc"].macs == 200
    # the aux head's conv: 2 * 20 weights, MACs on 16x16; counted apart from the inference total
    assert by_path["head.conv"].role == "aux"
    assert report.totals.macs_aux == 2 * 20 * 16 * 16
    assert report.totals.macs == sum(r.macs for r in report.layers if r.role == "main")


def test_aux_head_reads_the_current_tensor_and_does_not_feed_the_next_row():
    graph = graph_of(TEMPLATED)
    assert graph.node("head.conv").inputs == ("mix.concat",)
    assert graph.node("adaptive_avgpool").inputs == ("mix.concat",)
    assert graph.aux_outputs == ["head.relu"]
    assert graph.output == "fc"


def test_when_condition_and_overrides():
    graph = graph_of(TEMPLATED, {"aux_logits": False, "width": 8, "num_classes": 5})
    assert not any(p.startswith("head.") for p in paths(graph))
    assert graph.node("stem.conv").out_shape == (8, 16, 16)
    assert graph.node("fc").out_shape == (5,)


def test_when_not():
    spec = TEMPLATED.replace("when: aux_logits", "when: not aux_logits")
    assert not any(p.startswith("head.") for p in paths(graph_of(spec)))
    assert any(p.startswith("head.") for p in paths(graph_of(spec, {"aux_logits": False})))


def test_input_size_sets_the_input_size_argument():
    graph = graph_of(TEMPLATED, input_size=64)
    assert graph.input_shape == (3, 64, 64)
    assert graph.node("stem.conv").out_shape == (16, 32, 32)


def test_input_size_without_an_argument_sets_height_and_width():
    graph = graph_of("name: t\ninput: [1, 10, 10]\nlayers: [relu]\n", input_size=20)
    assert graph.input_shape == (1, 20, 20)


def test_named_sequence_numbers_its_rows_like_nn_sequential():
    graph = graph_of("""
        name: t
        input: [3, 8, 8]
        layers:
          - features:
              layers:
                - conv(4, 3, padding=1)
                - relu(inplace=true)
                - maxpool(2)
          - classifier: {layers: [flatten, linear(2)]}
    """)
    assert paths(graph) == ["features.0", "features.1", "features.2", "classifier.0", "classifier.1"]


def test_structured_rows_with_argument_references():
    graph = graph_of("""
        name: t
        arguments: {k: 5}
        input: [3, 16, 16]
        layers:
          - {conv: [8, $k, {stride: 1, padding: same}]}
          - {conv: {out: 4, kernel: [1, $k], padding: [0, 2]}}
    """)
    assert [n.out_shape for n in graph.layers()] == [(8, 16, 16), (4, 16, 16)]
    assert graph.node("conv").args["kernel"] == (5, 5)
    assert graph.node("conv_1").args["kernel"] == (1, 5)


def test_residual_add_with_identity_shortcut():
    report = ia.analyze(graph_of("""
        name: t
        input: [8, 8, 8]
        layers:
          - res:
              add:
                - - conv(8, 3, padding=1)
                  - relu
                - []
    """))
    add = {r.path: r for r in report.layers}["res.add"]
    assert add.input_shapes == [[8, 8, 8], [8, 8, 8]]
    assert add.other_flops == 8 * 8 * 8  # one add per output element


def test_template_defaults_and_keywords():
    graph = graph_of("""
        name: t
        input: [3, 9, 9]
        modules:
          C:
            args: [out, stride: 1]
            layers: [conv(out, 3, stride=stride)]
        layers:
          - a: C(4)
          - b: C(out=2, stride=2)
    """)
    assert graph.node("a.conv").out_shape == (4, 7, 7)
    assert graph.node("b.conv").out_shape == (2, 3, 3)


@pytest.mark.parametrize("text, message", [
    ("name: t\ninput: [3, 9, 9]\nmodules:\n  C: {args: [out], layers: ['conv(out, 3)']}\nlayers: [C]\n",
     "module C needs 'out'"),
    ("name: t\ninput: [3, 9, 9]\nmodules:\n  C: {args: [out], layers: ['conv(out, 3)']}\nlayers: ['C(1, 2)']\n",
     "takes at most 1 positional"),
    ("name: t\ninput: [3, 9, 9]\nmodules:\n  C: {args: [out], layers: ['conv(out, 3)']}\nlayers: ['C(ot=1)']\n",
     "did you mean 'out'"),
    ("name: t\ninput: [3, 9, 9]\nmodules:\n  conv: {layers: [relu]}\nlayers: [relu]\n",
     "has the name of a built-in op"),
    ("name: t\ninput: [3, 9]\nlayers: [relu]\n", "'input' must be [channels, height, width]"),
    ("name: t\ninput: [3, 9, 9]\nlayers:\n  - {relu: null, when: x}\n", "needs one of 'call'"),
])
def test_template_and_structure_errors(text, message):
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace("[", r"\[")):
        graph_of(text)


def test_override_type_must_match_the_default():
    with pytest.raises(OverrideError, match="takes int"):
        graph_of(TEMPLATED, {"width": "wide"})


def test_calls_may_be_written_unquoted_inside_flow_collections():
    """YAML splits `[conv(8, 3), relu]` at every comma; the loader takes the call text back."""
    graph = graph_of("""
        name: t
        input: [3, 9, 9]
        layers:
          - b: {concat: [conv(4, (1, 3), padding=(0, 1)), [conv(2, 1), conv(2, 3, padding=1)]]}
          - h: {call: conv(2, 1, bias=false), aux: true}
    """)
    assert graph.node("b.conv").args["kernel"] == (1, 3)
    assert graph.node("b.concat").out_shape == (6, 9, 9)
    assert graph.node("h").role == "aux" and graph.node("h").args["bias"] is False


def test_exponent_numbers_are_numbers_as_in_yaml_1_2():
    spec = ia.load_spec_text("name: t\nmetadata: {macs: 5.713e9, small: 1e-3}\ninput: [3, 4, 4]\nlayers: [relu]\n")
    assert spec.metadata == {"macs": 5.713e9, "small": 0.001}


def test_blocks_are_module_instances_merges_and_sequences_of_named_rows():
    report = ia.analyze(graph_of("""
        name: t
        input: [3, 8, 8]
        layers:
          - conv2:                 # a composite layer written inline: one block
              layers:
                - reduce: conv(4, 1)
                - spatial: conv(4, 3, padding=1)
          - features:              # an nn.Sequential: each numbered row is its own block
              layers: [relu, maxpool(2)]
    """))
    assert [b.name for b in report.blocks] == ["conv2", "features.0", "features.1"]
    assert report.blocks[0].layers == 2


def test_a_lone_call_key_is_the_long_form_not_a_name():
    graph = graph_of("name: t\ninput: [3, 8, 8]\nlayers:\n  - {call: conv(4, 3)}\n")
    assert paths(graph) == ["conv"]


def test_unnamed_rows_are_numbered_only_in_a_sequence_without_names():
    """nn.Sequential's children are 0, 1, ...; in a block that names some rows, an unnamed merge
    makes no level of its own (torchvision's RegNet blocks: `proj` and `f` summed, then `activation`)."""
    text = """
name: numbering
input: [3, 8, 8]
layers:
  - seq:
      layers:
        - conv(4, 3, padding=1)
        - relu
  - block:
      layers:
        - add:
            - proj: conv(4, 1)
            - f: conv(4, 3, padding=1)
        - activation: relu
"""
    paths = [n.path for n in build_graph(load_spec_text(text)).layers()]
    assert paths == ["seq.0", "seq.1", "block.proj", "block.f", "block.add", "block.activation"]


def test_a_dotted_name_puts_the_layer_in_a_container_of_its_level():
    """`convs.0` and `convs.1` between other layers: a ModuleList's children called in turn. The
    built model holds them at those paths, and a reference names them the same way."""
    text = """
        name: t
        input: [4, 8, 8]
        layers:
          - convs.0: conv(4, 3, padding=1)
          - bns.0: bn
          - convs.1: conv(4, 3, padding=1)
          - bns.1: bn
          - call: add
            from: [bns.1, convs.0]
    """
    graph = graph_of(text)
    assert paths(graph) == ["convs.0", "bns.0", "convs.1", "bns.1", "add"]
    assert graph.node("add").inputs == ("bns.1", "convs.0")
    model = ia.build_model(graph)
    assert [name for name, _ in model.named_children()] == ["convs", "bns"]
    assert sorted(model.state_dict()) == sorted(
        f"{layer}.{k}.{p}" for k in "01" for layer, ps in (("convs", ("weight", "bias")),
                                                           ("bns", ("weight", "bias", "running_mean",
                                                                    "running_var", "num_batches_tracked")))
        for p in ps)


@pytest.mark.parametrize("rows, message", [
    ("  - convs: conv(4, 1)\n  - convs.0: conv(4, 1)\n", "t.yaml:4:5: .*'convs' is both a layer and, in a dotted name"),
    ("  - convs.0: conv(4, 1)\n  - convs: conv(4, 1)\n", "t.yaml:5:5: .*'convs' is both a layer and, in a dotted name"),
    ("  - convs.0: conv(4, 1)\n  - from: convs\n", "'convs', a container of layers \\(convs.0\\), not a tensor"),
    ("  - convs..0: conv(4, 1)\n", "'convs..0' is not a valid layer name"),
    ("  - convs.: conv(4, 1)\n", "'convs.' is not a valid layer name"),
    ("  - input.0: conv(4, 1)\n", "'input' is reserved"),
])
def test_dotted_names_that_clash_or_misread_are_located_errors(rows, message):
    with pytest.raises(SpecError, match=message):
        graph_of(f"name: t\ninput: [4, 8, 8]\nlayers:\n{rows}")
