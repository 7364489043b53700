"""The command line as a user runs it: formats, roll-ups, overrides, entry points, output files."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, spec_path

V3 = spec_path("inception_v3")


def cli(*args: str, entry: list[str] | None = None) -> subprocess.CompletedProcess:
    command = entry or [sys.executable, "-m", "inception_analyzer"]
    proc = subprocess.run([*command, *args], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def v3_json() -> dict:
    return json.loads(cli("analyze", V3, "--format", "json").stdout)


def test_json_contract(v3_json):
    assert v3_json["model"] == "inception_v3"
    assert v3_json["input"] == [3, 299, 299]
    assert {"params", "macs", "activations", "macs_aux", "fvcore_flops"} <= set(v3_json["totals"])
    first = v3_json["layers"][0]
    assert first["path"] == "Conv2d_1a_3x3.conv" and first["op"] == "conv"
    assert first["output_shape"] == [32, 149, 149]
    assert {"path", "op", "output_shape", "params", "macs"} <= set(first)
    # after flatten the shape is a vector
    assert next(l for l in v3_json["layers"] if l["path"] == "fc")["output_shape"] == [1000]


def test_json_layers_add_up_to_the_totals(v3_json):
    layers, totals = v3_json["layers"], v3_json["totals"]
    assert sum(l["params"] for l in layers) == totals["params"]
    assert sum(l["macs"] for l in layers if l["role"] == "main") == totals["macs"]
    assert sum(l["macs"] for l in layers if l["role"] == "aux") == totals["macs_aux"]


def test_torchvision_module_names_in_json(v3_json):
    paths = {l["path"] for l in v3_json["layers"]}
    assert {"Mixed_5b.branch5x5_2.conv", "Mixed_7c.branch3x3dbl_3b.bn", "AuxLogits.fc", "fc"} <= paths


@pytest.mark.parametrize("depth, key", [("block", "blocks"), ("stage", "stages")])
def test_rollups_sum_to_the_totals(v3_json, depth, key):
    groups = v3_json[key]
    assert sum(g["params"] for g in groups) == v3_json["totals"]["params"]
    assert sum(g["macs"] for g in groups if g["role"] == "main") == v3_json["totals"]["macs"]
    proc = cli("analyze", V3, "--depth", depth, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [r[depth] for r in rows] == [g["name"] for g in groups]


def test_stage_rollup_names_the_grids():
    rows = list(csv.DictReader(io.StringIO(cli("analyze", V3, "--depth", "stage", "--format", "csv").stdout)))
    names = [r["stage"] for r in rows]
    assert {"35x35", "17x17", "8x8", "aux", "head"} <= set(names)
    shares = sum(float(r["macs_share"]) for r in rows if r["role"] == "main")
    assert shares == pytest.approx(1.0)


def test_table_lists_every_layer_and_the_totals():
    out = cli("analyze", V3).stdout
    assert "Mixed_6e.branch7x7dbl_5.conv" in out
    assert "27,161,264" in out and "5,713,216,096" in out
    assert "aux heads" in out and "training only" in out


def test_markdown_is_a_github_table():
    out = cli("analyze", spec_path("alexnet"), "--format", "markdown", "--depth", "block").stdout
    assert out.startswith("## alexnet")
    assert "| block " in out and "|---" in out.replace(":", "-")


def test_csv_has_one_row_per_layer(v3_json):
    rows = list(csv.DictReader(io.StringIO(cli("analyze", V3, "--format", "csv").stdout)))
    assert [r["path"] for r in rows] == [l["path"] for l in v3_json["layers"]]
    assert int(rows[0]["macs"]) == v3_json["layers"][0]["macs"]


def test_set_and_input_size_overrides():
    data = json.loads(cli("analyze", V3, "--format", "json", "--set", "aux_logits=false",
                          "--set", "num_classes=10", "--input-size", "342").stdout)
    assert data["input"] == [3, 342, 342]
    assert data["arguments"]["num_classes"] == 10
    assert not any(l["role"] == "aux" for l in data["layers"])
    assert data["layers"][-1]["output_shape"] == [10]


def test_analyze_console_script_and_subcommand_agree():
    script = shutil.which("analyze", path=os.path.dirname(sys.executable))
    if script is None:
        pytest.skip("console scripts not installed (package not pip-installed)")
    ours = cli(spec_path("vgg16"), "--format", "json", entry=[script]).stdout
    assert ours == cli("analyze", spec_path("vgg16"), "--format", "json").stdout


def test_output_file_is_written_whole(tmp_path):
    out = tmp_path / "v3.json"
    proc = cli("analyze", V3, "--format", "json", "-o", str(out))
    assert proc.stdout == ""
    assert json.loads(out.read_text())["totals"]["params"] == 27_161_264
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v3.json"]  # no temp file left


def test_ops_lists_the_registry():
    out = cli("ops").stdout
    for op in ("conv(out, kernel", "maxpool(kernel", "lrn(size", "concat", "linear(out"):
        assert op in out
