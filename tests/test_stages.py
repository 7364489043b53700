"""Stages follow the feature grid, whatever the module nesting: a block that changes the grid at
most once (a reduction block, a stride-2 residual block) belongs to the grid it outputs; a module
that holds several grids (a whole trunk written as one module, as torchvision's RegNet does) is
split along them. Figures are sums over the layers, computed here from the layer records."""
from __future__ import annotations

import textwrap
from collections import defaultdict

import pytest

import inception_analyzer as ia
from conftest import SPECS, spec_path

# three grids: 32x32 (stem), 16x16 (a stride-2 block, then a plain one), 8x8 (a pooling, a block)
MODULES = """
modules:
  Down:
    args: [out]
    layers:
      - reduce: conv(out, 1)
      - conv: conv(out, 3, stride=2, padding=1)
  Plain:
    args: [out]
    layers:
      - conv: conv(out, 3, padding=1)
      - bn
      - relu
"""
ROWS = ["- stem: conv(16, 3, padding=1)", "- down1: Down(32)", "- plain1: Plain(32)", "- pool: maxpool(2)",
        "- plain2: Plain(64)"]
HEAD = ["- gap: adaptive_avgpool", "- flatten", "- fc: linear(10)"]


def report_of(text: str):
    return ia.analyze(ia.load_graph(ia.load_spec_text(text, "t.yaml"))).cost


def flat() -> str:
    return "name: t\ninput: [3, 32, 32]\n" + MODULES + "layers:\n" + "".join(f"  {r}\n" for r in ROWS + HEAD)


def nested() -> str:
    """The same network with every grid inside one composite module `trunk` (named rows, so the
    spec language makes it one block, as an nn.Module holding all stages is one for the importer)."""
    trunk = "".join(f"        {r}\n" for r in ROWS[1:])
    return ("name: t\ninput: [3, 32, 32]\n" + MODULES + "layers:\n  " + ROWS[0] + "\n  - trunk:\n      layers:\n"
            + trunk + "".join(f"  {r}\n" for r in HEAD))


def by_hand(report) -> dict[str, tuple[int, int]]:
    """Stage -> (MACs, params) summed from the layer records by the rule of this file's docstring."""
    macs = {"stem": 32 * 32 * 16 * 3 * 9, "down1.reduce": 32 * 32 * 32 * 16, "down1.conv": 16 * 16 * 32 * 32 * 9,
            "plain1.conv": 16 * 16 * 32 * 32 * 9, "plain2.conv": 8 * 8 * 64 * 32 * 9, "fc": 64 * 10}
    assert {r.path.removeprefix("trunk."): r.macs for r in report.layers if r.macs} == macs
    stage = {"stem": "32x32", "down1.reduce": "16x16", "down1.conv": "16x16", "plain1.conv": "16x16",
             "plain2.conv": "8x8", "fc": "head"}
    totals = defaultdict(int)
    for name, value in macs.items():
        totals[stage[name]] += value
    return dict(totals)


@pytest.mark.parametrize("text", [flat(), nested()], ids=["flat", "one trunk module"])
def test_stages_follow_the_grid_and_a_reduction_block_belongs_to_the_grid_it_outputs(text):
    report = report_of(text)
    assert {s.name: s.macs for s in report.stages} == by_hand(report)
    # down1.reduce runs on 32x32, but its block outputs 16x16: it belongs to the 16x16 stage
    assert {r.path.removeprefix("trunk."): r.stage for r in report.layers}["down1.reduce"] == "16x16"


def test_the_nesting_changes_the_blocks_not_the_stages():
    flat_report, nested_report = report_of(flat()), report_of(nested())
    assert "trunk" in {b.name for b in nested_report.blocks}
    assert [(s.name, s.layers, s.macs, s.params) for s in flat_report.stages] == \
        [(s.name, s.layers, s.macs, s.params) for s in nested_report.stages]


def test_a_squeeze_and_excitation_gate_keeps_its_block_on_one_stage():
    """The gate's 1x1 maps (global pooling, squeeze, excitation) lie on the grid they gate: a
    stride-2 block with SE changes the grid once and stays one unit, as without the gate."""
    text = textwrap.dedent("""
        name: t
        input: [3, 32, 32]
        layers:
          - stem: conv(16, 3, padding=1)
          - trunk:
              layers:
                - block:
                    layers:
                      - expand: conv(64, 1)
                      - dw: conv(64, 3, stride=2, padding=1, groups=64)
                      - se:
                          mul:
                            - - adaptive_avgpool
                              - conv(4, 1)
                              - relu
                              - conv(64, 1)
                              - sigmoid
                            - []
                      - project: conv(24, 1)
                - block2: conv(48, 3, stride=2, padding=1)
    """)
    stage = {r.path: r.stage for r in report_of(text).layers}
    assert {stage[p] for p in stage if p.startswith("trunk.block.")} == {"16x16"}
    assert stage["trunk.block2"] == "8x8" and stage["stem"] == "32x32"


@pytest.mark.parametrize("spec", sorted(p.stem for p in SPECS.glob("*.yaml")))
def test_every_bundled_block_changes_the_grid_at_most_once_so_its_stage_is_its_output_grid(spec):
    """The bundled specs' stage roll-ups are those of the rule 'a block's stage is the grid of its
    last layer' (aux heads apart): no bundled block holds two grid changes."""
    report = ia.analyze(spec_path(spec)).cost
    last = {}
    for record in report.layers:
        last[record.block] = record
    for record in report.layers:
        end = last[record.block]
        shape = end.output_shape
        expected = "aux" if end.role == "aux" else \
            f"{shape[1]}x{shape[2]}" if len(shape) == 3 and shape[1] * shape[2] > 1 else "head"
        assert record.stage == expected, record.path
