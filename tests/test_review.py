"""The design review: golden findings for every spec (explained in docs/review.md), each rule on
a small network where the expected figure is computed by hand or is the paper's own number."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

import inception_analyzer as ia
from inception_analyzer.analysis.principles import _alternatives
from conftest import ROOT, SPECS, spec_path

GOLDEN = Path(__file__).parent / "data" / "review_golden.yaml"
GOLDEN_TORCHVISION = Path(__file__).parent / "data" / "review_golden_torchvision.yaml"


def findings_of(text: str):
    graph = ia.load_graph(ia.load_spec_text(textwrap.dedent(text), "t.yaml"))
    return ia.analyze(graph).findings


def only(findings, check: str):
    return [f for f in findings if f.check == check]


# ----------------------------------------------------------------------------- golden
def _rows(findings) -> list[str]:
    return [f"{f.check} | {f.path} | {f.severity}" for f in findings]


@pytest.mark.parametrize("spec", sorted(p.stem for p in SPECS.glob("*.yaml")))
def test_findings_match_the_golden_expectations(spec):
    got = _rows(ia.analyze(spec_path(spec)).findings)
    if os.environ.get("INCEPTION_ANALYZER_UPDATE_GOLDEN"):
        pytest.skip("regenerate the golden file by hand from docs/review.md's reasoning, not from this run")
    expected = yaml.safe_load(GOLDEN.read_text())[spec]
    assert sorted(got) == sorted(expected)


def test_every_check_fires_somewhere_and_nowhere_fires_everywhere():
    """Over the bundled specs and the imported torchvision models (their golden reviews are in
    review_golden_torchvision.yaml): each check fires somewhere, none fires on every model."""
    from inception_analyzer.analysis.principles import CHECKS
    golden = yaml.safe_load(GOLDEN.read_text())
    golden |= {f"torchvision:{name}": list(rows) for name, rows in
               yaml.safe_load(GOLDEN_TORCHVISION.read_text()).items()}
    fired = {row.split(" | ")[0] for rows in golden.values() for row in rows}
    per_spec = [{row.split(" | ")[0] for row in rows} for rows in golden.values()]
    assert set.intersection(*per_spec) == set()
    # every check fires on some model (Inception-v4's stem has the only early asymmetric convs)
    assert {check.__name__ for check in CHECKS} == set(CHECK_NAMES)
    assert fired == set(CHECK_NAMES.values())


# each registered check and the name its findings carry
CHECK_NAMES = {
    "check_first_layer_stride": "P1.first_layer_stride", "check_representation_drops": "P1.representation_drop",
    "check_extreme_reductions": "P1.extreme_reduction", "check_residual_blocks": "P1.residual",
    "check_linear_bottlenecks": "P1.linear_bottleneck", "check_grid_reductions": "§5.grid_reduction",
    "check_coarsest_width": "P2.coarsest_width", "check_unreduced_spatial_convs": "P3.unreduced_spatial_conv",
    "check_grouped_spatial_convs": "P3.grouped_spatial", "check_stage_balance": "P4.dominant_stage",
    "check_large_kernels": "§3.1.large_kernel", "check_factorized_chains": "§3.factorized",
    "check_asymmetric_opportunities": "§3.2.asymmetric", "check_early_asymmetric": "§3.2.early_asymmetric",
    "check_auxiliary_heads": "§4.auxiliary", "check_alignment": "RF.unaligned_merge"}


def test_inception_v3_is_mostly_clean_and_what_remains_is_in_the_stem():
    findings = ia.analyze(spec_path("inception_v3")).findings
    warnings = [f for f in findings if f.severity != "info"]
    assert {f.path for f in warnings} == {"maxpool1", "maxpool2"}
    assert all("conv-then-pool" in f.message for f in warnings)


def test_resnet50_has_no_bottleneck_inside_its_blocks_and_keeps_its_stem_findings():
    findings = ia.analyze(spec_path("resnet50")).findings
    # the only bottleneck: the stem's max pool, before layer1.0 grows 64 channels to 256
    (pool,) = [f for f in findings if f.figures.get("kind") == "pool_then_conv"]
    assert pool.path == "maxpool" and pool.severity == "warning"
    assert "to 256 in layer1.0" in pool.message
    assert bottleneck_findings(findings) == {("§5.grid_reduction", "maxpool")}
    assert {f.path for f in only(findings, "§3.1.large_kernel")} == {"conv1"}  # the 7x7/2 stem
    # every stage: branches 4x narrower than the shortcut (the bottleneck design, He et al. Figure 5)
    stages = {f.path: f.figures for f in only(findings, "P1.residual")}
    assert {s: (f["shortcut_width"], f["narrowest"], f["factor"]) for s, f in stages.items()} == {
        "56x56": (256, 64, 4.0), "28x28": (512, 128, 4.0), "14x14": (1024, 256, 4.0), "7x7": (2048, 512, 4.0)}
    assert stages["28x28"]["projections"] == ["layer2.0.downsample.0"]


def test_inception_resnet_v2_residual_branches_are_not_extreme_reductions():
    """Block35 reduces 320 -> 32 (10x), Block17 1088 -> 128 (8.5x), Block8 2080 -> 192 (10.8x):
    each would be an extreme 1x1 reduction in a plain module; beside an identity shortcut none is."""
    findings = ia.analyze(spec_path("inception_resnet_v2")).findings
    assert not only(findings, "P1.extreme_reduction")
    stages = {f.path: f.figures for f in only(findings, "P1.residual")}
    assert {s: (len(f["blocks"]), f["shortcut_width"], f["narrowest"], f["factor"], f["scales"])
            for s, f in stages.items()} == {"35x35": (10, 320, 32, 10.0, [0.17]),
                                            "17x17": (20, 1088, 128, 8.5, [0.1]),
                                            "8x8": (10, 2080, 192, 10.8, [0.2, 1.0])}


# ----------------------------------------------------------------------------- paper's figures
def test_5x5_as_two_3x3_saves_28_percent_at_equal_channels():
    """§3.1: (9 + 9) / 25 = 0.72 of the cost, a 28% relative gain, same 5x5 field."""
    (finding,) = only(findings_of("""
        name: t
        input: [64, 35, 35]
        layers:
          - c: conv(64, 5, padding=2)
    """), "§3.1.large_kernel")
    assert finding.effect["macs_saved_share"] == pytest.approx(0.28)
    assert finding.effect["rf"] == finding.effect["rf_after"] == [5, 5]


def test_nxn_on_a_medium_grid_as_1xn_then_nx1_saves_1_minus_2_over_n():
    """§3.2: a 7x7 on the 17x17 grid with equal channels costs 2/7 as 1x7 then 7x1."""
    (finding,) = only(findings_of("""
        name: t
        input: [64, 17, 17]
        layers:
          - c: conv(64, 7, padding=3)
    """), "§3.2.asymmetric")
    assert -finding.effect["macs"] / finding.figures["macs"] == pytest.approx(1 - 2 / 7)


def test_grid_reduction_costs_follow_section_5():
    """§5: d x d x k -> d/2 x d/2 x 2k costs 2 d^2 k^2 (conv then pool) or 2 (d/2)^2 k^2 (pool then
    conv), counted with the paper's 1x1 convention."""
    d, k = 34, 96
    costs = _alternatives((d, d), (d // 2, d // 2), k, 2 * k, 1)
    assert costs["conv_then_pool"] == 2 * d * d * k * k
    assert costs["pool_then_conv"] == 2 * (d // 2) ** 2 * k * k
    assert costs["parallel"] == (d // 2) ** 2 * k * k  # the conv branch adds only the missing k


def test_vgg16_first_pool_is_pool_then_conv_with_its_alternatives_priced():
    (finding,) = [f for f in ia.analyze(spec_path("vgg16")).findings
                  if f.check == "§5.grid_reduction" and f.path == "features.4"]
    assert finding.figures["kind"] == "pool_then_conv" and finding.severity == "warning"
    # by hand, 224x224x64 -> 112x112, the next conv widens to 128 with a 3x3 kernel
    assert finding.figures["alternatives_macs"] == {"conv_then_pool": 224 * 224 * 64 * 128 * 9,
                                                    "pool_then_conv": 112 * 112 * 64 * 128 * 9,
                                                    "parallel": 112 * 112 * 64 * 64 * 9}


def test_vgg16_3x3_on_512_channels_without_reduction():
    findings = [f for f in ia.analyze(spec_path("vgg16")).findings if f.check == "P3.unreduced_spatial_conv"]
    assert {f.path for f in findings if f.severity == "warning"} == \
        {"features.19", "features.21", "features.24", "features.26", "features.28"}
    conv = next(f for f in findings if f.path == "features.19")
    # by hand: 28x28, 512 -> 512, 3x3, against 1x1 512 -> 128 then 3x3 128 -> 512
    before = 28 * 28 * 512 * 512 * 9
    after = 28 * 28 * 512 * 128 + 28 * 28 * 128 * 512 * 9
    assert conv.effect["macs"] == after - before


def test_alexnet_first_layer_and_5x5():
    findings = ia.analyze(spec_path("alexnet")).findings
    assert only(findings, "P1.first_layer_stride")[0].figures["stride"] == 4
    large = {f.path: f for f in only(findings, "§3.1.large_kernel")}
    assert set(large) == {"features.0", "features.3"}
    # 11x11/4 as 3x3/4 then 3x3: r = 3 + 2 * 4 = 11, the same field
    assert large["features.0"].effect["rf_after"] == [11, 11]


def test_googlenet_5x5_branches_and_7x7_stem_in_the_paper_version():
    findings = ia.analyze(spec_path("inception_v1")).findings
    large = {f.path for f in only(findings, "§3.1.large_kernel")}
    assert "conv1.conv" in large
    assert {p for p in large if p.endswith("conv_5x5.conv")} == {
        f"inception_{m}.conv_5x5.conv" for m in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")}


def test_bn_inception_and_v2_factorizations_are_recognised():
    bn = {f.path for f in only(ia.analyze(spec_path("bn_inception")).findings, "§3.factorized")}
    assert {f"inception_{m}" for m in ("3a", "3b", "3c", "4a", "4b", "4c", "4d", "4e", "5a", "5b")} <= bn
    v2 = only(ia.analyze(spec_path("inception_v2")).findings, "§3.factorized")
    assert any("1x7" in f.message and "7x1" in f.message for f in v2 if f.path == "Mixed_6b")


def test_auxiliary_heads_with_and_without_bn():
    v3 = only(ia.analyze(spec_path("inception_v3")).findings, "§4.auxiliary")
    v2 = only(ia.analyze(spec_path("inception_v2")).findings, "§4.auxiliary")
    assert "is batch-normalized" in v3[0].message
    assert "without batch norm after AuxLogits.conv1.conv" in v2[0].message
    # no auxiliary head: a training option, nothing to say about the design
    assert not only(ia.analyze(spec_path("inception_v3"), {"aux_logits": False}).findings, "§4.auxiliary")


# ----------------------------------------------------------------------------- rules on small nets
def test_asymmetric_convs_on_a_large_grid_are_informational():
    (finding,) = only(findings_of("""
        name: t
        input: [3, 35, 35]
        layers:
          - c: conv(16, [1, 7], padding=[0, 3])
    """), "§3.2.early_asymmetric")
    assert finding.severity == "info" and finding.figures["grid"] == [35, 35]


def test_an_extreme_early_drop_of_the_representation_is_an_error():
    findings = findings_of("""
        name: t
        input: [3, 64, 64]
        layers:
          - a: conv(64, 3, padding=1)
          - squeeze: conv(4, 1)
          - b: conv(64, 3, padding=1)
          - c: conv(64, 3, padding=1)
    """)
    (drop,) = only(findings, "P1.representation_drop")
    assert drop.path == "squeeze" and drop.severity == "error"
    assert drop.figures["ratio"] == pytest.approx(4 / 64)


def test_a_dominant_stage_is_flagged():
    findings = only(findings_of("""
        name: t
        input: [3, 32, 32]
        layers:
          - a: conv(8, 3, padding=1)
          - maxpool(2)
          - b: conv(256, 3, padding=1)
          - c: conv(256, 3, padding=1)
    """), "P4.dominant_stage")
    # by hand: 16x16 does 16*16*(8*256 + 256*256)*9 of the 32*32*3*8*9 + that MACs: 99.6%
    assert {(f.path, f.figures["what"]) for f in findings} == {("16x16", "multiply-adds"), ("16x16", "parameters")}


# ----------------------------------------------------------------------------- command line
def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inception_analyzer", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)


@pytest.mark.parametrize("spec, level, code", [
    ("vgg16", "warning", 1), ("vgg16", "error", 0), ("inception_v3", "warning", 1),
    ("inception_v3", "error", 0), ("alexnet", "info", 1),
])
def test_fail_on_makes_review_a_ci_gate(spec, level, code):
    assert cli("review", spec_path(spec), "--fail-on", level).returncode == code


def test_review_json_and_analyze_carry_the_findings():
    review = json.loads(cli("review", spec_path("vgg16"), "--format", "json").stdout)
    analyzed = json.loads(cli("analyze", spec_path("vgg16"), "--format", "json").stdout)
    assert review["findings"] == analyzed["findings"]
    first = review["findings"][0]
    assert {"check", "principle", "severity", "path", "message", "figures", "suggestion", "effect"} <= set(first)
    assert sum(s["macs_share"] for s in review["stage_balance"]) == pytest.approx(1.0)
    assert "design review: " in cli("analyze", spec_path("vgg16")).stdout


# ----------------------------------------------------------------------------- residual connections
# He et al. 2016 (ResNet) and Szegedy et al. 2017 (Inception-ResNet): in an `add` beside a shortcut
# (an identity, or a projection: one 1x1 conv with its BN), the full representation travels through
# the shortcut, and the branch only adds a residual to it. Narrowing inside such a branch is not a
# representational bottleneck; the unit as a whole is judged, from its input to the add's output.
RESIDUAL = Path(__file__).parent / "data" / "residual_review.yaml"


def bottleneck_findings(findings):
    from inception_analyzer.analysis.principles import is_bottleneck
    return {(f.check, f.path) for f in findings if is_bottleneck(f)}


def test_residual_units_are_found_once_with_their_fork_shortcut_and_branch():
    from inception_analyzer.analysis.principles import _context
    graph = ia.load_graph(str(RESIDUAL))
    ctx = _context(graph, ia.analyze(graph))
    assert set(ctx.residuals) == {"res4.add", "res16.add", "proj.add"}
    res16, proj = ctx.residuals["res16.add"], ctx.residuals["proj.add"]
    assert res16.fork == "res4.relu" and res16.shortcut == ()  # the identity: the add reads the fork
    assert proj.fork == "plain16.relu" and proj.shortcut == ("proj.downsample.0", "proj.downsample.1")
    assert res16.branch == ("res16.reduce.conv", "res16.reduce.bn", "res16.reduce.relu", "res16.conv3x3.conv",
                            "res16.conv3x3.bn", "res16.conv3x3.relu", "res16.expand", "res16.bn3")
    assert (res16.narrowest, proj.narrowest) == (16, 128)
    # every node inside a residual branch knows its unit; the control's rows, the shortcut and the
    # add itself are not inside a branch
    assert ctx.in_residual["res16.reduce.conv"] is res16
    assert {"plain16.reduce.conv", "proj.downsample.0", "proj.add", "res4.relu"}.isdisjoint(ctx.in_residual)
    assert ctx.in_shortcut["proj.downsample.0"] is proj


def test_a_16x_reduction_inside_a_residual_branch_is_not_flagged_but_the_same_rows_without_shortcut_are():
    findings = ia.analyze(str(RESIDUAL)).findings
    # the control, by hand: 256 -> 16 before a 3x3, 16x
    (control,) = only(findings, "P1.extreme_reduction")
    assert control.path == "plain16.reduce.conv"
    assert control.figures == {"channels_in": 256, "channels_out": 16, "factor": 16.0}
    assert bottleneck_findings(findings) == {("P1.extreme_reduction", "plain16.reduce.conv")}
    # proj keeps 16x16x512 / 32x32x256 = 50% of its input: the paper's own reduction, not a drop
    assert not only(findings, "P1.representation_drop") and not only(findings, "§5.grid_reduction")


def test_residual_blocks_are_stated_per_stage_with_the_shortcut_and_the_narrowest_branch_width():
    findings = {f.path: f for f in only(ia.analyze(str(RESIDUAL)).findings, "P1.residual")}
    assert set(findings) == {"32x32", "16x16"}
    stage = findings["32x32"]
    assert stage.severity == "info" and stage.principle == "P1"
    # res4 narrows 256 -> 64 (4x), res16 256 -> 16 (16x): the stage reports the narrowest
    assert stage.figures == {"blocks": ["res4", "res16"], "projections": [], "shortcut_width": 256,
                             "narrowest": 16, "factor": 16.0}
    assert "not a bottleneck" in stage.message and "identity" in stage.message
    # proj: 32x32x256 -> 16x16x512 through a 1x1/2 projection; its branch is 128 wide, 512 / 128 = 4x
    assert findings["16x16"].figures == {"blocks": ["proj"], "projections": ["proj.downsample.0"],
                                         "shortcut_width": 512, "narrowest": 128, "factor": 4.0}


def test_an_unnamed_residual_add_is_judged_as_one_unit_and_its_plain_twin_still_flagged():
    """Unnamed rows at the top level are each their own block: without the residual rule the branch's
    1x1 (32x32x256 -> 32x32x64, 25%) would be a representation drop."""
    findings = findings_of("""
        name: t
        input: [3, 32, 32]
        layers:
          - a: conv(256, 3, padding=1)
          - add:
              - []
              - - r1: conv(64, 1)
                - r2: conv(64, 3, padding=1)
                - r3: conv(256, 1)
          - p1: conv(64, 1)
          - p2: conv(64, 3, padding=1)
          - p3: conv(256, 1)
    """)
    (drop,) = only(findings, "P1.representation_drop")
    assert drop.path == "p1" and drop.figures["ratio"] == pytest.approx(64 / 256)
    assert drop.severity == "info"  # p1 is the 5th of 7 weighted layers: 4/7 of the depth, not early
    assert bottleneck_findings(findings) == {("P1.representation_drop", "p1")}
    (stage,) = only(findings, "P1.residual")
    assert stage.figures == {"blocks": ["add"], "projections": [], "shortcut_width": 256,
                             "narrowest": 64, "factor": 4.0}


@pytest.mark.parametrize("name", ["down", None])
def test_a_projection_shortcut_that_narrows_is_judged_on_the_add_against_the_block_input(name):
    """A shortcut that narrows or strides is a real change of representation: 32x32x256 = 262,144
    values -> 16x16x64 = 16,384 at the add, 1/16, whatever the branch does inside."""
    unit = """
          add:
            - - r1: conv(64, 1)
              - r2: conv(64, 3, stride=2, padding=1)
              - r3: conv(64, 1)
            - - proj: conv(64, 1, stride=2)"""
    rows = (f"  - {name}:" + textwrap.indent(unit, "  ")) if name else ("  - " + unit.strip())
    findings = findings_of("name: t\ninput: [256, 32, 32]\nlayers:\n" + rows + "\n  - b: conv(64, 3, padding=1)\n")
    (drop,) = only(findings, "P1.representation_drop")
    assert drop.path == (name or "add")
    assert drop.figures["representation_in"] == 32 * 32 * 256 and drop.figures["representation_out"] == 16 * 16 * 64
    assert drop.figures["ratio"] == pytest.approx(1 / 16)
    assert drop.figures["shortcut"] == (f"{name}.proj" if name else "proj")
    assert "projection" in drop.message
    # the add is the 4th and 5th weighted layer's output: 4/5 of the depth, late: info
    assert drop.severity == "info"
    assert bottleneck_findings(findings) == {("P1.representation_drop", name or "add")}


@pytest.mark.parametrize("name", ["down", None])
def test_a_residual_block_with_a_pooling_shortcut_is_not_a_section_5_grid_reduction(name):
    """ResNet-D's shortcut (avgpool then 1x1) beside a stride-2 branch is summed, not concatenated:
    not the paper's parallel reduction (Figure 10), and its pooling is no pool-then-conv bottleneck.
    32x32x256 -> 16x16x512 keeps 50%: nothing to report."""
    unit = """
          add:
            - - r1: conv(64, 1)
              - r2: conv(64, 3, stride=2, padding=1)
              - r3: conv(512, 1)
            - - pool: avgpool(2)
              - proj: conv(512, 1)"""
    rows = (f"  - {name}:" + textwrap.indent(unit, "  ")) if name else ("  - " + unit.strip())
    findings = findings_of("name: t\ninput: [256, 32, 32]\nlayers:\n" + rows + "\n")
    assert not only(findings, "§5.grid_reduction") and not bottleneck_findings(findings)


def test_a_pooling_before_a_residual_stage_reads_the_channel_growth_of_the_block_not_its_branch():
    """The first conv after the pooling is the branch's 1x1 (64 -> 64); the representation grows to
    256 channels at the block's add. By hand, 64x64x64 -> 32x32 then 256 channels, 3x3 convs (the
    stem keeps 64 channels, so this is not conv-then-pool)."""
    findings = findings_of("""
        name: t
        input: [64, 64, 64]
        layers:
          - stem: conv(64, 3, padding=1)
          - pool: maxpool(2)
          - block:
              add:
                - - r1: conv(64, 1)
                  - r2: conv(64, 3, padding=1)
                  - r3: conv(256, 1)
                - - proj: conv(256, 1)
    """)
    (pool,) = only(findings, "§5.grid_reduction")
    assert pool.path == "pool" and pool.figures["kind"] == "pool_then_conv"
    assert "before the channels grow (to 256 in block)" in pool.message
    assert pool.figures["alternatives_macs"] == {"conv_then_pool": 64 * 64 * 64 * 256 * 9,
                                                 "pool_then_conv": 32 * 32 * 64 * 256 * 9,
                                                 "parallel": 32 * 32 * 64 * 192 * 9}
    assert pool.severity == "warning"  # the 2nd of 5 weighted layers: early


def test_the_residual_statement_is_not_marked_as_a_bottleneck():
    from inception_analyzer.analysis.principles import is_bottleneck
    assert not any(is_bottleneck(f) for f in only(ia.analyze(str(RESIDUAL)).findings, "P1.residual"))


def test_add_merges_are_not_residual_without_a_shortcut():
    """Two 3x3 paths summed: neither is a shortcut, so the narrowing in one of them is judged as usual."""
    from inception_analyzer.analysis.principles import _context
    graph = ia.load_graph(ia.load_spec_text(textwrap.dedent("""
        name: t
        input: [256, 16, 16]
        layers:
          - m:
              add:
                - - a1: conv(16, 1)
                  - a2: conv(256, 3, padding=1)
                - - b1: conv(256, 3, padding=1)
    """), "t.yaml"))
    ctx = _context(graph, ia.analyze(graph))
    assert ctx.residuals == {} and ctx.in_residual == {}
    assert {f.path for f in only(ia.analyze(graph).findings, "P1.extreme_reduction")} == {"m.a1"}


def test_a_conv_like_op_without_groups_or_dilation_is_reviewed_through_its_geometry(monkeypatch):
    """The review reads a conv-like op through its geometry, never its arguments: an op kind that
    has no groups, stride or padding argument is judged as a conv with groups 1 (and no KeyError)."""
    from inception_analyzer.ops import OPS, Arg, Category, ConvGeometry, OpKind
    from inception_analyzer.ops.args import positive_int, positive_pair

    conv = OPS["conv"]

    class PlainConv(OpKind):
        name = "plain_conv"
        category = Category.CONV
        weighted = True
        args = (Arg("out", positive_int), Arg("kernel", positive_pair))

        def output_shape(self, a, inputs):
            return conv.output_shape(conv.bind([], a), inputs)

        def macs(self, a, inputs, out):
            return conv.macs(conv.bind([], a), inputs, out)

        def rf_step(self, a, inputs, grid):
            return conv.rf_step(conv.bind([], a), inputs, grid)

        def geometry(self, a, inputs, out):
            return ConvGeometry(a["kernel"], (1, 1), (0, 0), inputs[0][0], a["out"], bias=True)

    monkeypatch.setitem(OPS, PlainConv.name, PlainConv())
    graph = ia.load_graph(ia.load_spec_text(textwrap.dedent("""
        name: t
        input: [64, 40, 40]
        layers:
          - big: plain_conv(64, 7)
          - wide: plain_conv(64, 3)
    """), "t.yaml"))
    assert "§3.1.large_kernel" in {f.check for f in ia.analyze(graph).findings if f.path == "big"}


# ----------------------------------------------------------------------------- modern blocks
# Squeeze-and-excitation gates (Hu et al. 2018), depthwise and grouped convs (MobileNet, ResNeXt,
# RegNet), inverted residuals and linear bottlenecks (Sandler et al. 2018). Each reading is checked
# on a small network against a twin that lacks the feature, figures by hand.
def se(width: int, squeeze: int, indent: int) -> str:
    """A squeeze-and-excitation gate as spec rows: global pooling, 1x1 squeeze, 1x1 excitation."""
    rows = f"""\
- se:
    mul:
      - - adaptive_avgpool
        - conv({squeeze}, 1)
        - relu
        - conv({width}, 1)
        - sigmoid
      - []
"""
    return textwrap.indent(rows, " " * indent)


def inverted_residual(name: str, c_in: int, t: int, c_out: int, stride: int, gate: bool = False,
                      activation_after: bool = False) -> str:
    """MobileNetV2's block: 1x1 expansion to t * c_in, 3x3 depthwise (stride), optional SE gate,
    1x1 linear projection (no activation), an identity shortcut where the shape allows."""
    wide = t * c_in
    body = (f"    - expand: conv({wide}, 1)\n    - relu1: relu\n"
            f"    - dw: conv({wide}, 3, stride={stride}, padding=1, groups={wide})\n    - relu2: relu\n"
            + (se(wide, 4, 4) if gate else "")
            + f"    - project: conv({c_out}, 1)\n    - bn: bn\n" + ("    - relu3: relu\n" if activation_after else ""))
    if stride == 1 and c_in == c_out:
        return f"  - {name}:\n      add:\n        - []\n        - layers:\n" + textwrap.indent(body, "          ")
    return f"  - {name}:\n      layers:\n" + textwrap.indent(body, "      ")


def mobile_net(gate: bool = False, activation_after: bool = False) -> str:
    return ("name: t\ninput: [3, 64, 64]\nlayers:\n  - stem: conv(16, 3, stride=2, padding=1)\n"
            + inverted_residual("b1", 16, 6, 24, 2, gate, activation_after)
            + inverted_residual("b2", 24, 6, 24, 1, gate, activation_after)
            + inverted_residual("b3", 24, 6, 32, 2, gate, activation_after))


def test_a_gated_residual_block_is_aligned_and_its_squeeze_is_not_the_branch_width():
    """b2 (16x16x24, identity shortcut) expands to 144, gates with a squeeze to 4 channels, projects
    to 24. The gate's 1x1 maps are one scale per channel: the branch is 24..144 wide, not 4; the
    gate's global pooling is not a branch centred elsewhere."""
    findings = ia.analyze(ia.load_graph(ia.load_spec_text(mobile_net(gate=True), "t.yaml"))).findings
    assert not only(findings, "RF.unaligned_merge")
    (residual,) = only(findings, "P1.residual")
    assert (residual.figures["narrowest"], residual.figures["widest"], residual.figures["expansion"]) == (24, 144, 6.0)
    assert not only(findings, "P1.extreme_reduction")  # the squeeze 144 -> 4 gates, it does not reduce


def test_gate_branches_are_the_layers_between_the_fork_and_the_broadcast_input():
    from inception_analyzer.graph import broadcast_inputs, gate_branches
    graph = ia.load_graph(ia.load_spec_text(mobile_net(gate=True), "t.yaml"))
    gates = gate_branches(graph)
    assert {p for p in gates if p.startswith("b2.")} == {
        "b2.se.adaptive_avgpool", "b2.se.conv", "b2.se.relu", "b2.se.conv_1", "b2.se.sigmoid"}
    assert broadcast_inputs(graph.node("b2.se.mul")) == (True, False)  # (gate, feature map), in spec order
    assert broadcast_inputs(graph.node("b2.add")) == (False, False)


def test_linear_bottlenecks_are_read_once_for_the_model_with_the_argument_on_both_sides():
    """b1: 32x32x16 = 16,384 -> 16x16x24 = 6,144 (37.5%); b3: 16x16x24 = 6,144 -> 8x8x32 = 2,048 (33%).
    Both end in a 1x1 projection without activation: MobileNetV2's design, stated once."""
    findings = ia.analyze(ia.load_graph(ia.load_spec_text(mobile_net(), "t.yaml"))).findings
    assert not only(findings, "P1.representation_drop")
    (finding,) = only(findings, "P1.linear_bottleneck")
    assert finding.path == "t" and finding.severity == "info"
    assert finding.figures["blocks"] == ["b1", "b2", "b3"] and finding.figures["expansion"] == [6.0, 6.0]
    assert finding.figures["drops"] == {"b1": round(6144 / 16384, 4), "b3": round(2048 / 6144, 4)}
    assert "MobileNetV2's argument" in finding.message and "P1 of the Rethinking paper" in finding.message


def test_a_narrowing_block_with_an_activation_after_its_projection_is_a_representation_drop():
    """The same network with a ReLU after each projection: no linear bottleneck, the drops are P1's."""
    findings = ia.analyze(ia.load_graph(ia.load_spec_text(mobile_net(activation_after=True), "t.yaml"))).findings
    assert not only(findings, "P1.linear_bottleneck")
    assert {(f.path, f.figures["ratio"]) for f in only(findings, "P1.representation_drop")} == \
        {("b1", round(6144 / 16384, 4)), ("b3", round(2048 / 6144, 4))}


def test_depthwise_convs_are_priced_as_they_cost_and_read_by_p3_not_as_factorizations():
    """A 3x3/2 conv then a 3x3 depthwise conv (MobileNet's stem) is not a factorized 7x7: the
    depthwise conv does not mix channels. Its cost by hand: 32x32 outputs x 32 channels x 1 x 9."""
    findings = findings_of("""
        name: t
        input: [3, 64, 64]
        layers:
          - stem: conv(32, 3, stride=2, padding=1)
          - dw: conv(32, 3, padding=1, groups=32)
          - pw: conv(64, 1)
    """)
    assert not only(findings, "§3.factorized")
    (finding,) = only(findings, "P3.grouped_spatial")
    assert finding.figures["layers"] == ["dw"] and finding.figures["macs"] == 32 * 32 * 32 * 9
    assert finding.figures["pointwise"] == ["pw"] and finding.figures["macs_pointwise"] == 32 * 32 * 64 * 32
    # the dense twin is a factorization: 3x3/2 + 3x3 see a 7x7 field
    dense = findings_of("""
        name: t
        input: [3, 64, 64]
        layers:
          - stem: conv(32, 3, stride=2, padding=1)
          - c: conv(32, 3, padding=1)
    """)
    (chain,) = only(dense, "§3.factorized")
    assert chain.figures["macs"] == 32 * 32 * 32 * 27 + 32 * 32 * 32 * 32 * 9


def test_a_grouped_conv_is_judged_by_p3_on_the_width_of_its_groups():
    """3x3 on 512 channels: dense, it aggregates over all 512 (P3 warning); in 32 groups it aggregates
    over 16 channels each, a low-dimensional embedding: no P3 warning, one P3.grouped_spatial."""
    def review(groups: int):
        return findings_of(f"""
            name: t
            input: [512, 14, 14]
            layers:
              - c: conv(512, 3, padding=1, groups={groups})
        """)
    (dense,) = only(review(1), "P3.unreduced_spatial_conv")
    assert dense.severity == "warning" and dense.figures["macs"] == 14 * 14 * 512 * 512 * 9
    grouped = review(32)
    assert not only(grouped, "P3.unreduced_spatial_conv")
    (finding,) = only(grouped, "P3.grouped_spatial")
    assert finding.figures["group_widths"] == [16] and finding.figures["macs"] == 14 * 14 * 512 * 16 * 9


def basic_blocks(residual: bool) -> str:
    """Two ResNet basic blocks (two 3x3 convs each) with identity shortcuts, or the same convs plain."""
    branch = "- a: conv(64, 3, padding=1)\n- r: relu\n- b: conv(64, 3, padding=1)\n"
    rows = ""
    for name in ("block1", "block2"):
        if residual:
            rows += f"  - {name}:\n      add:\n        - []\n        - layers:\n" + textwrap.indent(branch, " " * 12)
        else:
            rows += f"  - {name}:\n      layers:\n" + textwrap.indent(branch, " " * 8)
        rows += "  - relu\n"
    return "name: t\ninput: [64, 32, 32]\nlayers:\n" + rows


def test_stacked_3x3_residual_branches_are_one_remark_for_the_model_and_plain_chains_one_per_block():
    residual = only(ia.analyze(ia.load_graph(ia.load_spec_text(basic_blocks(True), "t.yaml"))).findings,
                    "§3.factorized")
    plain = only(ia.analyze(ia.load_graph(ia.load_spec_text(basic_blocks(False), "t.yaml"))).findings,
                 "§3.factorized")
    (remark,) = residual
    assert remark.path == "t" and remark.figures["blocks"] == ["block1", "block2"]
    # by hand: 4 convs of 32x32x64x64x9 MACs; two single 5x5 convs 32x32x64x64x25
    assert remark.figures["macs"] == 4 * 32 * 32 * 64 * 64 * 9
    assert remark.figures["macs_unfactorized"] == 2 * 32 * 32 * 64 * 64 * 25
    # without shortcuts the four 3x3s are one chain (a 9x9 field, as VGG's stages): the block's own finding
    (chain,) = plain
    assert chain.path == "block1" and chain.figures["chains"] == [["block1.a", "block1.b", "block2.a", "block2.b"]]


def test_suggestion_effects_read_as_words_in_the_table_and_keep_their_keys_in_json():
    from inception_analyzer.render.review import render_review
    analysis = ia.analyze(spec_path("alexnet"))
    for fmt in ("table", "markdown"):
        text = render_review(analysis, fmt)
        assert "macs_saved_share" not in text and "rf_after" not in text and "rf [" not in text
    # features.0, the 11x11/4 conv as two 3x3s: 70.3M -> 26.5M MACs in the layer, the same field
    markdown = render_review(analysis, "markdown")
    assert "62.3% fewer MACs in the layer it changes; same 11x11 receptive field" in markdown
    large = json.loads(render_review(analysis, "json"))["findings"]
    effect = next(f["effect"] for f in large if f["check"] == "§3.1.large_kernel" and f["path"] == "features.0")
    assert effect["rf"] == effect["rf_after"] == [11, 11] and effect["macs_saved_share"] == pytest.approx(0.623, abs=1e-3)
