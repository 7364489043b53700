"""Rows that read earlier tensors by name (`from`): any DAG of tensors, written readably.

Expected inputs, shapes and MACs are worked out by hand next to each case; the built models are
checked against the same computation written directly with torch.nn.functional.
"""
from __future__ import annotations

import textwrap

import pytest

import inception_analyzer as ia


def graph_of(text: str):
    return ia.load_graph(ia.load_spec_text(textwrap.dedent(text), "refs.yaml"))


# DenseNet's pattern: each layer reads the concatenation of the block's input and every earlier
# layer; the layer is one template, called on several tensors, whose body starts by merging them
DENSE = """
    name: dense
    input: [3, 8, 8]
    modules:
      DenseLayer:
        args: [growth]
        layers:
          - concat                       # the tensors the row calling it reads
          - conv: conv(growth, 3, padding=1, bias=false)
    layers:
      - stem: conv(4, 1)
      - block:
          layers:
            - l1: DenseLayer(2)                           # reads stem (the row before)
            - {name: l2, call: DenseLayer(2), from: [stem, l1]}
            - l3:
                call: DenseLayer(2)
                from: [stem, l1, l2]
            - {call: concat, from: [stem, l1, l2, l3]}
      - adaptive_avgpool
      - flatten
      - fc: linear(5)
"""


def test_a_dense_block_reads_every_earlier_layer():
    graph = graph_of(DENSE)
    assert graph.node("block.l1.concat").inputs == ("stem",)
    assert graph.node("block.l2.concat").inputs == ("stem", "block.l1.conv")
    assert graph.node("block.l3.concat").inputs == ("stem", "block.l1.conv", "block.l2.conv")
    assert graph.node("block.concat").inputs == ("stem", "block.l1.conv", "block.l2.conv", "block.l3.conv")
    # channels: 4, then 4 + 2, 4 + 2 + 2 read by the layers; 4 + 3 * 2 = 10 leave the block
    assert [graph.node(f"block.l{i}.conv").in_shapes[0][0] for i in (1, 2, 3)] == [4, 6, 8]
    assert graph.node("block.concat").out_shape == (10, 8, 8)
    # MACs by hand: stem 4*3*64, the layers 2*64*9*(4+6+8), the classifier 10*5
    assert ia.analyze(graph).totals.macs == 4 * 3 * 64 + 2 * 64 * 9 * (4 + 6 + 8) + 10 * 5


def test_a_dense_block_builds_what_torch_computes():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    model = ia.build_model(graph_of(DENSE)).eval()
    x = torch.randn(2, 3, 8, 8)
    p = dict(model.named_parameters())
    stem = F.conv2d(x, p["stem.weight"], p["stem.bias"])
    l1 = F.conv2d(stem, p["block.l1.conv.weight"], padding=1)
    l2 = F.conv2d(torch.cat([stem, l1], 1), p["block.l2.conv.weight"], padding=1)
    l3 = F.conv2d(torch.cat([stem, l1, l2], 1), p["block.l3.conv.weight"], padding=1)
    block = torch.cat([stem, l1, l2, l3], 1)
    expected = F.linear(block.mean((2, 3)), p["fc.weight"], p["fc.bias"])
    with torch.no_grad():
        torch.testing.assert_close(model(x), expected)


# VoVNet's one-shot aggregation: a chain of layers, every one of them (and the block's input)
# concatenated at the end; inside a template, `input` is what the instance reads
OSA = """
    name: osa
    input: [4, 6, 6]
    modules:
      OSA:
        args: [width]
        layers:
          - mid:
              layers:
                - conv(width, 3, padding=1)
                - conv(width, 3, padding=1)
          - {call: concat, from: [input, mid.0, mid.1]}
          - out: conv(4, 1)
    layers:
      - a: OSA(3)
      - b: OSA(5)
"""


def test_a_template_names_its_input_and_its_numbered_rows():
    graph = graph_of(OSA)
    assert graph.node("a.concat").inputs == ("input", "a.mid.0", "a.mid.1")
    assert graph.node("b.concat").inputs == ("a.out", "b.mid.0", "b.mid.1")
    assert graph.node("b.concat").out_shape == (4 + 5 + 5, 6, 6)


def test_branches_and_blocks_read_earlier_tensors():
    graph = graph_of("""
        name: branches
        input: [3, 8, 8]
        layers:
          - stem: conv(4, 3, padding=1)
          - down: conv(4, 3, stride=2, padding=1)
          - up: {call: conv(4, 1), from: stem}          # back on the 8x8 grid
          - skip:
              concat: [from: stem, []]                  # stem beside the current tensor (up)
          - res:
              add: [[], [relu]]
              from: down                                # the block's branches start at down
          - {from: [up, stem]}                          # two tensors: the next row merges them
          - add
    """)
    assert graph.node("up").inputs == ("stem",)
    assert graph.node("skip.concat").inputs == ("stem", "up")
    assert graph.node("res.add").inputs == ("down", "res.relu")
    assert graph.node("res.relu").inputs == ("down",)
    assert graph.node("add").inputs == ("up", "stem") and graph.output == "add"


def test_a_reference_resolves_innermost_first_up_to_the_top():
    graph = graph_of("""
        name: scopes
        input: [3, 8, 8]
        layers:
          - stem: conv(4, 1)
          - blocks:
              layers:
                - conv(4, 1)
                - conv(4, 1)
          - b:
              layers:
                - x: conv(4, 1)
                - {call: concat, from: [x, stem, blocks.0, blocks]}
    """)
    assert graph.node("b.concat").inputs == ("b.x", "stem", "blocks.0", "blocks.1")


def test_series_parallel_specs_have_no_reference_and_expand_as_before():
    """Every bundled spec is series-parallel: each row reads the row before (or its branch's start)."""
    from conftest import SPECS

    for path in sorted(SPECS.glob("*.yaml")):
        assert "from:" not in path.read_text(), path.name


def test_the_example_of_the_spec_format_document_means_what_it_says():
    from conftest import ROOT

    document = (ROOT / "docs" / "spec-format.md").read_text()
    section = document[document.index("### Reading earlier tensors"):]
    example = section[section.index("```yaml\n") + 8:section.index("```\n", section.index("```yaml"))]
    graph = ia.load_graph(ia.load_spec_text("name: doc\ninput: [3, 64, 64]\n" + example, "doc.yaml"))
    block = "denseblock1"
    assert graph.node(f"{block}.denselayer3.concat").inputs == \
        ("pool0", f"{block}.denselayer1.conv2", f"{block}.denselayer2.conv2")
    assert graph.node(f"{block}.concat").out_shape == (3 + 3 * 32, 32, 32)   # 64x64 max-pooled by 2
    assert graph.node("osa.concat").inputs == (f"{block}.concat", "osa.mid.0", "osa.mid.1")
    assert graph.node("skip.concat").inputs == ("pool0", "osa.out")
