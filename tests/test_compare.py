"""Comparison tables: one row per model, figures checked against published ones (torchvision's
params and GFLOPS, google-research's receptive-field table), ratios against the baseline, every
format, and the baseline's resolution."""
from __future__ import annotations

import argparse
import csv
import io
import json

import html5lib
import pytest

from conftest import spec_path
from inception_analyzer.errors import AnalyzerError
import inception_analyzer as ia
from inception_analyzer.commands import compare
from inception_analyzer.commands.compare import DEFAULT_SPECS
from inception_analyzer.pipeline import analyze_with_baseline as models_and_baseline
from inception_analyzer.render.compare import comparison_rows, render

# torchvision's published figures (num_params, GFLOPS = GMACs); docs/specs.md has the exact MACs
PUBLISHED = {"inception_v3": (27_161_264, 5.71e9), "vgg16": (138_357_544, 15.47e9), "alexnet": (61_100_840, 0.714e9)}
# receptive field of the last feature map: google-research/receptive_field's table (Mixed_7c,
# pool5) and, for VGG16, by hand: 3x3 convs and 2x2/2 pools give r = 212 at pool5
LAST_MAP_FIELD = {"inception_v3": 1311, "vgg16": 212, "alexnet": 195}


@pytest.fixture(scope="module")
def default_rows():
    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    args = parser.parse_args([])
    models, baseline = models_and_baseline(args.specs or list(DEFAULT_SPECS), args.baseline)
    return comparison_rows(models, baseline)


def by_model(rows):
    return {row.model: row for row in rows}


def test_default_set_is_the_inception_family_with_the_baselines(default_rows):
    assert [row.model for row in default_rows] == list(DEFAULT_SPECS)
    assert [row.model for row in default_rows if row.baseline] == ["vgg16"]


def test_figures_match_the_published_ones(default_rows):
    rows = by_model(default_rows)
    for model, (params, macs) in PUBLISHED.items():
        assert rows[model].params == params
        assert rows[model].macs == pytest.approx(macs, rel=0.002)
    for model, size in LAST_MAP_FIELD.items():
        assert rows[model].receptive_field == [size, size]
    assert rows["inception_v3"].receptive_field_at.startswith("Mixed_7c")
    assert rows["inception_v1"].depth == 22  # GoogLeNet paper: "22 layers deep" (with parameters)


def test_ratios_against_the_baseline(default_rows):
    rows = by_model(default_rows)
    assert rows["vgg16"].ratios == {"params": 1.0, "macs": 1.0, "activations": 1.0}
    v3_params, v3_macs = PUBLISHED["inception_v3"]
    vgg_params, vgg_macs = PUBLISHED["vgg16"]
    assert rows["inception_v3"].ratios["params"] == pytest.approx(v3_params / vgg_params)
    assert rows["inception_v3"].ratios["macs"] == pytest.approx(v3_macs / vgg_macs, rel=0.003)


def test_published_accuracy_keeps_its_source(default_rows):
    rows = by_model(default_rows)
    # torchvision's vgg16 IMAGENET1K_V1: acc@1 71.592, acc@5 90.382
    assert (rows["vgg16"].published.top1, rows["vgg16"].published.top5) == (71.592, 90.382)
    assert "torchvision" in rows["vgg16"].published.source
    # the Rethinking paper's abstract: 21.2% top-1 / 5.6% top-5 error, single crop
    assert (rows["inception_v3"].published.top1, rows["inception_v3"].published.top5) == (78.8, 94.4)
    # GoogLeNet's paper gives top-5 only
    assert rows["inception_v1"].published.top1 is None and rows["inception_v1"].published.top5 == 89.93


def test_findings_are_counted_by_severity(default_rows):
    for row in default_rows:
        model = ia.analyze(row.spec)
        assert sum(row.findings.values()) == len(model.findings)
        assert row.findings["warning"] == sum(f.severity == "warning" for f in model.findings)


# ----------------------------------------------------------------------------- formats
def test_table_and_markdown(default_rows):
    table = render(default_rows, "table")
    assert "vgg16 (baseline)" in table and "27.2M" in table and "5.71G" in table and "1311" in table
    markdown = render(default_rows, "markdown")
    lines = markdown.splitlines()
    assert lines[0].startswith("| model") and lines[1].startswith("|---")
    assert sum(line.startswith("| ") for line in lines) == 1 + len(default_rows)
    assert "[1] paper Table 3" in markdown  # sources are numbered notes under the table


def test_csv_and_json_carry_exact_figures(default_rows):
    rows = list(csv.DictReader(io.StringIO(render(default_rows, "csv"))))
    v3 = next(r for r in rows if r["model"] == "inception_v3")
    assert int(v3["params"]) == PUBLISHED["inception_v3"][0]
    assert (v3["rf_h"], v3["top1"], v3["findings_error"]) == ("1311", "78.8", "0")
    data = json.loads(render(default_rows, "json"))
    assert data["baseline"] == "vgg16" and len(data["models"]) == len(DEFAULT_SPECS)
    assert data["models"][3]["published"]["source"].startswith("paper abstract")


def test_html_is_a_valid_page(default_rows):
    page = render(default_rows, "html")
    html5lib.HTMLParser(strict=True).parse(page)  # raises on any parse error
    assert page.count("<tr") == 1 + len(default_rows)
    assert '<tr class="baseline">' in page


# ----------------------------------------------------------------------------- baseline
def test_a_baseline_not_compared_is_added_as_a_row():
    models, baseline = models_and_baseline([spec_path("inception_v3")], "alexnet")
    rows = comparison_rows(models, baseline)
    assert [(r.model, r.baseline) for r in rows] == [("inception_v3", False), ("alexnet", True)]
    assert rows[0].ratios["params"] == pytest.approx(27_161_264 / 61_100_840)


def test_bundled_names_and_paths_both_work():
    models, baseline = models_and_baseline(["inception_v3", spec_path("vgg16")], "vgg16")
    assert [m.name for m in models] == ["inception_v3", "vgg16"] and baseline is models[1]


def test_an_unknown_baseline_is_one_clear_error():
    with pytest.raises(AnalyzerError) as err:
        models_and_baseline([spec_path("alexnet")], "vg16")
    message = str(err.value)
    assert "'vg16'" in message and "did you mean 'vgg16'" in message and "\n" not in message


def test_output_never_overwrites_a_spec(tmp_path):
    spec = tmp_path / "alexnet.yaml"
    spec.write_text(open(spec_path("alexnet")).read())
    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    with pytest.raises(AnalyzerError, match="over the input spec"):
        compare.run(parser.parse_args([str(spec), "--baseline", "alexnet", "-o", str(spec)]))
    assert spec.read_text() == open(spec_path("alexnet")).read()


# ----------------------------------------------------------------------------- the command line
def cli(*args: str):
    import subprocess
    import sys

    from conftest import ROOT

    return subprocess.run([sys.executable, "-m", "inception_analyzer", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)


def test_command_line(tmp_path):
    if cli("compare", "--help").returncode != 0:
        pytest.skip("cli.py does not offer 'compare' yet")
    ok = cli("compare", "--format", "csv", "-o", str(tmp_path / "c.csv"))
    assert ok.returncode == 0, ok.stderr
    assert len((tmp_path / "c.csv").read_text().splitlines()) == 1 + len(DEFAULT_SPECS)
    bad = cli("compare", "inception_v3", "--baseline", "vg16")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr


def test_each_model_is_listed_once_however_it_is_named():
    """The same spec by path, by bundled name and as the baseline is one row (the issue's case:
    `compare --baseline specs/vgg16.yaml specs/vgg16.yaml ...` printed the baseline twice)."""
    models, baseline = models_and_baseline([spec_path("vgg16"), "vgg16", spec_path("alexnet")], spec_path("vgg16"))
    rows = comparison_rows(models, baseline)
    assert [(r.model, r.baseline) for r in rows] == [("vgg16", True), ("alexnet", False)]
