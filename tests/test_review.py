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
    from inception_analyzer.analysis.principles import CHECKS
    golden = yaml.safe_load(GOLDEN.read_text())
    fired = {row.split(" | ")[0] for rows in golden.values() for row in rows}
    per_spec = [{row.split(" | ")[0] for row in rows} for rows in golden.values()]
    everywhere = set.intersection(*per_spec)
    # §4.auxiliary reports presence or absence by design; §5.grid_reduction classifies every reduction
    assert everywhere <= {"§4.auxiliary", "§5.grid_reduction"}
    # one check fires on none of our specs; it has its own test below (asymmetric kernels early)
    assert len(fired) == len(CHECKS) - 1


def test_inception_v3_is_mostly_clean_and_what_remains_is_in_the_stem():
    findings = ia.analyze(spec_path("inception_v3")).findings
    warnings = [f for f in findings if f.severity != "info"]
    assert {f.path for f in warnings} == {"maxpool1", "maxpool2"}
    assert all("conv-then-pool" in f.message for f in warnings)


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
    off = only(ia.analyze(spec_path("inception_v3"), {"aux_logits": False}).findings, "§4.auxiliary")
    assert off[0].figures == {"heads": 0}


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
