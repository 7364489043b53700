"""Diagrams: the DOT text has the nodes, clusters and edges the network has (checked against
torchvision's module structure and hand counts), figures on the nodes (checked by hand), the
colour scale, findings on the nodes they concern, collapsing, and the output files."""
from __future__ import annotations

import argparse
import dataclasses
import re
import shutil

import pytest

import inception_analyzer as ia
from conftest import ROOT, spec_path
from inception_analyzer.errors import AnalyzerError
from inception_analyzer.analysis.findings import Finding
from inception_analyzer.commands import diagram
from inception_analyzer.commands.diagram import write_diagram
from inception_analyzer.numbers import human
from inception_analyzer.render.diagram import (MACS_FILLS, NO_MACS_FILL, SEVERITY_COLOURS, build_diagram,
                                               diagram_source)

HAS_DOT = shutil.which("dot") is not None
V3_MACS = 5_713_216_096   # torchvision's published 5.71 GFLOPS, exact figure in docs/specs.md


@pytest.fixture(scope="module")
def v3():
    return ia.analyze(spec_path("inception_v3"))


@pytest.fixture(scope="module")
def tiny():
    return ia.analyze(ROOT / "tests" / "data" / "tiny_inception.yaml")


# ----------------------------------------------------------------------------- reading DOT
# The DOT ids are the renderer's own (n1, cluster_0, ...): names appear only in labels and tooltips.
# These helpers read a node's or cluster's path from the first line of its tooltip and key
# everything by path, as a reader of the picture would.
ID = r'(?:"((?:[^"\\]|\\.)*)"|([A-Za-z_][A-Za-z_0-9]*))'
EDGE = re.compile(rf"^\s*{ID} -> {ID}(?: \[(.*)\])?$", re.M)
NODE = re.compile(rf"^\s*{ID} \[(.*)\]$", re.M)
CLUSTER = re.compile(rf"^\s*subgraph {ID} {{\n\s*(.*)$", re.M)
TOOLTIP = re.compile(r'tooltip=(?:"((?:[^"\\]|\\.)*)"|([^\s\]]+))')
DEFAULTS = {"graph", "node", "edge"}


def _name(quoted: str, bare: str) -> str:
    return quoted or bare  # findall gives '' for the alternative that did not match


def _path(attrs: str) -> str:
    """The path a node or cluster stands for: its tooltip's first line, DOT escapes undone."""
    match = TOOLTIP.search(attrs)
    text = _name(match.group(1), match.group(2))
    return re.sub(r"\\(.)", r"\1", text.split("\\n")[0])


def _ids(dot: str) -> dict[str, str]:
    found = {_name(a, b): _path(attrs) for a, b, attrs in NODE.findall(dot)
             if not (b and b in DEFAULTS) and "tooltip=" in attrs}
    return {"input": "input", **found}


def edges(dot: str) -> set[tuple[str, str]]:
    """Visible edges (the invisible ones only order branches side by side), by path."""
    ids = _ids(dot)
    return {(ids[_name(a, b)], ids[_name(c, d)]) for a, b, c, d, attrs in EDGE.findall(dot)
            if "invis" not in (attrs or "")}


def nodes(dot: str) -> dict[str, str]:
    """node path -> its attribute text (the default-attribute statements left out)."""
    return {(_path(attrs) if "tooltip=" in attrs else _name(a, b)): attrs for a, b, attrs in NODE.findall(dot)
            if not (b and b in DEFAULTS)}


def graph_attributes(dot: str) -> str:
    """The graph's own attributes: its heading (title, legend, model-wide findings) among them."""
    return {b: attrs for a, b, attrs in NODE.findall(dot) if b in DEFAULTS}["graph"]


def clusters(dot: str) -> list[str]:
    return ["cluster_" + _path(attrs) for _, _, attrs in CLUSTER.findall(dot)]


def cluster_attributes(dot: str, path: str) -> str:
    return next(attrs for _, _, attrs in CLUSTER.findall(dot) if _path(attrs) == path)


def fill_of(attrs: str) -> str:
    return re.search(r'fillcolor="([^"]+)"', attrs).group(1)


# ----------------------------------------------------------------------------- block level
def test_an_inception_module_is_a_cluster_of_its_branches(v3):
    # torchvision InceptionA.forward: four branches from the block input into one concat
    dot = diagram_source(build_diagram(v3, level="block"))
    members = {"branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3",
               "avgpool", "branch_pool", "concat"}
    assert {f"Mixed_5b.{m}" for m in members} <= set(nodes(dot))
    assert "cluster_Mixed_5b" in clusters(dot)
    expected = {("maxpool2", "Mixed_5b.branch1x1"), ("maxpool2", "Mixed_5b.branch5x5_1"),
                ("maxpool2", "Mixed_5b.branch3x3dbl_1"), ("maxpool2", "Mixed_5b.avgpool"),
                ("Mixed_5b.branch5x5_1", "Mixed_5b.branch5x5_2"),
                ("Mixed_5b.branch3x3dbl_1", "Mixed_5b.branch3x3dbl_2"),
                ("Mixed_5b.branch3x3dbl_2", "Mixed_5b.branch3x3dbl_3"), ("Mixed_5b.avgpool", "Mixed_5b.branch_pool"),
                ("Mixed_5b.branch1x1", "Mixed_5b.concat"), ("Mixed_5b.branch5x5_2", "Mixed_5b.concat"),
                ("Mixed_5b.branch3x3dbl_3", "Mixed_5b.concat"), ("Mixed_5b.branch_pool", "Mixed_5b.concat"),
                ("Mixed_5b.concat", "Mixed_5c.branch1x1")}
    assert expected <= edges(dot)
    into_concat = {e for e in edges(dot) if e[1] == "Mixed_5b.concat"}
    assert len(into_concat) == 4


def test_the_stem_is_a_chain_of_single_nodes(v3):
    dot = diagram_source(build_diagram(v3, level="block"))
    chain = ["input", "Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1",
             "Conv2d_4a_3x3", "maxpool2"]
    assert set(zip(chain, chain[1:])) <= edges(dot)
    assert not any(c.startswith("cluster_Conv2d") for c in clusters(dot))  # no branches, no cluster
    # the auxiliary head hangs off the last 17x17 module and is drawn dashed
    assert ("Mixed_6e.concat", "AuxLogits") in edges(dot)
    assert "dashed" in nodes(dot)["AuxLogits"]


def test_block_figures_on_the_labels(v3):
    dot = diagram_source(build_diagram(v3, level="block"))
    # Mixed_5b by hand: 1x1 192->64, 1x1 192->48, 5x5 48->64, 1x1 192->64, 3x3 64->96, 3x3 96->96,
    # pool proj 192->32, each conv + BN (2 per channel): 255,904 params, output 64+64+96+32 = 256 channels
    params = (192 * 64 + 128) + (192 * 48 + 96) + (48 * 64 * 25 + 128) + (192 * 64 + 128) \
        + (64 * 96 * 9 + 192) + (96 * 96 * 9 + 192) + (192 * 32 + 64)
    cluster_label = cluster_attributes(dot, "Mixed_5b")
    assert f"35x35x256 · {human(params)} params" in cluster_label
    # Conv2d_4a_3x3: 3x3 conv 80->192 on a 71x71 output
    macs = 71 * 71 * 192 * 80 * 9
    assert f"{human(macs)} MACs ({100 * macs / V3_MACS:.1f}%)" in nodes(dot)["Conv2d_4a_3x3"]


def test_fill_follows_the_share_of_macs(v3):
    drawn = build_diagram(v3, level="block")
    dot = diagram_source(drawn)
    # the heaviest single node of v3 at block level is Conv2d_4a_3x3 (12.2%): the darkest fill
    assert drawn.max_macs_share == pytest.approx(71 * 71 * 192 * 80 * 9 / V3_MACS)
    assert fill_of(nodes(dot)["Conv2d_4a_3x3"]) == MACS_FILLS[-1]
    assert fill_of(nodes(dot)["maxpool1"]) == NO_MACS_FILL  # pooling has no MACs
    # Conv2d_1a_3x3 has 19.2M of the 697M maximum (2.8%): the lightest step
    assert fill_of(nodes(dot)["Conv2d_1a_3x3"]) == MACS_FILLS[0]


def test_collapsed_repeats_become_one_node(v3):
    dot = diagram_source(build_diagram(v3, level="block", collapse=True))
    run = "Mixed_6b..6e x4"
    assert run in nodes(dot)
    assert not any(n.startswith(("Mixed_6c", "Mixed_6d")) for n in nodes(dot))
    assert {("Mixed_6a.concat", run), (run, "AuxLogits")} <= edges(dot)
    assert any(source == run and target.startswith("Mixed_7a.") for source, target in edges(dot))
    # InceptionC params by hand (768 channels in, c7 the 7x7 branch width, BN = 2 per channel)
    def inception_c(c7):
        return (768 * 192 + 384) * 2 + (768 * c7 + 2 * c7) * 2 + (c7 * c7 * 7 + 2 * c7) * 4 \
            + (c7 * 192 * 7 + 384) * 2
    assert inception_c(128) == 1_297_408  # torchvision Mixed_6b
    total = sum(inception_c(c7) for c7 in (128, 160, 160, 192))
    assert "InceptionC x4" in nodes(dot)[run] and f"{human(total)} params" in nodes(dot)[run]
    # a run holds one block signature: template, input and output shape. The 35x35 modules take
    # 192, 256 and 288 channels (torchvision's InceptionA, pool_features 32, 64, 64), the 8x8 ones
    # 1280 and 2048: each stays a module of its own, with its branches drawn
    assert [name for name in nodes(dot) if ".." in name] == [run]
    assert {f"cluster_Mixed_{m}" for m in ("5b", "5c", "5d", "7b", "7c")} <= set(clusters(dot))


def test_a_run_of_identical_layers_outside_any_module_collapses_too(tmp_path):
    spec = tmp_path / "deep.yaml"
    spec.write_text("name: deep\ninput: [8, 16, 16]\nlayers:\n" + "  - conv(8, 3, padding=1)\n" * 500
                    + "  - conv(16, 3, stride=2)\n")
    drawn = build_diagram(ia.analyze(str(spec)), level="block", collapse=True)
    assert set(drawn.nodes) == {"conv..conv_499 x500", "conv_500"}
    assert "conv 3x3 x500" in drawn.nodes["conv..conv_499 x500"].kind


def test_collapsing_at_layer_level_draws_each_run_once(v3):
    full = build_diagram(v3, level="layer")
    collapsed = build_diagram(v3, level="layer", collapse=True)
    assert len(full.nodes) == len(v3.layers) > 300
    # the run Mixed_6b..6e becomes one node: the ops of its four modules give way to it
    in_run = sum(1 for layer in v3.layers if layer.block in ("Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e"))
    assert len(collapsed.nodes) == len(full.nodes) - in_run + 1


# ----------------------------------------------------------------------------- layer level
def test_layer_level_draws_every_op_in_nested_clusters(tiny):
    dot = diagram_source(build_diagram(tiny, level="layer"))
    # tests/data/tiny_inception.yaml by hand: stem 3 (conv, bn, relu), maxpool 1, mixed 17 (b1 3,
    # b7_1..3 9, avgpool 1, pool 3, concat 1), res 5 (a 3, b 1, add 1), aux 3, head 4
    assert len(nodes(dot)) == 33 + 1  # and the input
    assert {"cluster_mixed", "cluster_mixed.b7_2", "cluster_res", "cluster_res.a"} <= set(clusters(dot))
    assert {("mixed.b7_1.relu", "mixed.b7_2.conv"), ("mixed.b7_3.relu", "mixed.concat"),
            ("res.b", "res.add"), ("mixed.concat", "res.add")} <= edges(dot)  # the shortcut too


# ----------------------------------------------------------------------------- findings
def test_findings_sit_on_the_nodes_they_concern(v3):
    findings = [
        Finding("P3.x", "P3", "warning", "Mixed_5b.branch5x5_2.conv", "5x5 on a wide input", {}),
        Finding("§3.y", "§3", "info", "Mixed_6c", "a module in a collapsed run", {}),
        Finding("P4.z", "P4", "error", "17x17", "a stage, not a node", {}),
        Finding("P1.w", "P1", "info", "Mixed_6a", "a whole module", {}),
    ]
    stand_in = dataclasses.replace(v3, findings=findings)
    dot = diagram_source(build_diagram(stand_in, "block", collapse=True))
    node = nodes(dot)["Mixed_5b.branch5x5_2"]  # Mixed_5b is a run of its own: its branches are drawn
    assert "P3.x" in node and SEVERITY_COLOURS["warning"] in node
    assert "§3.y" in nodes(dot)["Mixed_6b..6e x4"]
    mixed_6a = cluster_attributes(dot, "Mixed_6a")
    assert "P1.w" in mixed_6a and SEVERITY_COLOURS["info"] in mixed_6a
    assert "P4.z at 17x17: a stage, not a node" in graph_attributes(dot)  # nothing is dropped

    expanded = diagram_source(build_diagram(stand_in, "block"))
    assert "P3.x" in nodes(expanded)["Mixed_5b.branch5x5_2"]


def test_the_real_review_lands_on_nodes(v3):
    dot = diagram_source(build_diagram(v3, "block"))
    placed = sum(f.check in attrs for f in v3.findings for attrs in nodes(dot).values())
    assert placed > 0


# ----------------------------------------------------------------------------- files
def run_diagram(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    diagram.add_arguments(parser)
    return diagram.run(parser.parse_args(argv))


def test_dot_file_is_written_as_dot(tmp_path, tiny):
    target = tmp_path / "tiny.dot"
    assert run_diagram(str(ROOT / "tests/data/tiny_inception.yaml"), "-o", str(target)) == 0
    assert target.read_text().startswith("digraph tiny_inception {")


@pytest.mark.skipif(not HAS_DOT, reason="graphviz 'dot' is not installed")
@pytest.mark.parametrize("suffix, magic", [("svg", b"<?xml"), ("png", b"\x89PNG"), ("pdf", b"%PDF")])
def test_rendered_formats(tmp_path, suffix, magic):
    target = tmp_path / f"tiny.{suffix}"
    run_diagram(str(ROOT / "tests/data/tiny_inception.yaml"), "-o", str(target), "--level", "layer")
    assert target.read_bytes().startswith(magic)
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed into place


def test_without_dot_the_source_is_written_and_said(tmp_path, monkeypatch, tiny, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no 'dot' anywhere
    target = tmp_path / "tiny.svg"
    assert run_diagram(str(ROOT / "tests/data/tiny_inception.yaml"), "-o", str(target)) == 0
    assert not target.exists()
    assert (tmp_path / "tiny.dot").read_text().startswith("digraph")
    assert "'dot' is not installed" in capsys.readouterr().err


@pytest.mark.parametrize("name, phrase", [("x.jpg", "cannot tell the diagram format"),
                                          ("missing/x.svg", "does not exist")])
def test_bad_output_paths(tmp_path, name, phrase):
    with pytest.raises(AnalyzerError) as err:
        run_diagram(str(ROOT / "tests/data/tiny_inception.yaml"), "-o", str(tmp_path / name))
    assert phrase in str(err.value) and "\n" not in str(err.value)


def test_the_spec_is_never_overwritten(tmp_path):
    spec = tmp_path / "net.dot"  # a spec whose name looks like a diagram
    spec.write_text((ROOT / "tests/data/tiny_inception.yaml").read_text())
    before = spec.read_text()
    with pytest.raises(AnalyzerError, match="over the input spec"):
        run_diagram(str(spec), "-o", str(spec))
    assert spec.read_text() == before


def test_spec_errors_carry_their_location(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\ninput: [3, 32, 32]\nlayers:\n  - convv(8, 3)\n")
    with pytest.raises(AnalyzerError) as err:
        run_diagram(str(spec), "-o", str(tmp_path / "bad.svg"))
    assert str(err.value).startswith(f"{spec}:4:5: ")
    assert not (tmp_path / "bad.svg").exists()


def test_write_diagram_refuses_unknown_formats(tmp_path, tiny):
    with pytest.raises(AnalyzerError):
        write_diagram(diagram_source(build_diagram(tiny)), tmp_path / "x.gif")


# ----------------------------------------------------------------------------- the command line
def cli(*args: str, cwd=ROOT):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "inception_analyzer", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def require_command(name: str) -> None:
    if cli(name, "--help").returncode != 0:
        pytest.skip(f"cli.py does not offer '{name}' yet")


def test_command_line_writes_the_diagram_and_reports_errors_in_one_line(tmp_path):
    require_command("diagram")
    ok = cli("diagram", spec_path("inception_v3"), "-o", str(tmp_path / "v3.dot"), "--collapse")
    assert ok.returncode == 0, ok.stderr
    assert "Mixed_6b..6e x4" in (tmp_path / "v3.dot").read_text()
    bad = cli("diagram", spec_path("inception_v3"), "-o", str(tmp_path / "v3.jpg"))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == (f"inception-analyzer: {tmp_path / 'v3.jpg'}: output error: cannot tell the "
                                  "diagram format from the file name: use .svg, .png, .pdf, .dot")
