"""`sweep SPEC`: the design space (grids, widths, input sizes, random samples), each variant's
figures, budgets, the ranking and its Pareto front, invalid variants with their located reasons,
the outputs, and the engines (in process, a local pool, a local Dask cluster) giving one result.

Independent sources: `analyze` of the same variant through the command line (each figure of a
sweep row), a brute-force Pareto front (every pair compared), and hand calculations.
"""
from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from conftest import ROOT, spec_path
from inception_analyzer.spec.yaml_source import read_text
from inception_analyzer.sweep.budgets import parse_budget
from inception_analyzer.sweep.engines import SpecSource, run_variants
from inception_analyzer.sweep.evaluate import VariantResult
from inception_analyzer.sweep.pareto import pareto_front
from inception_analyzer.sweep.space import DesignSpace, SweepError, Variant

V3 = spec_path("inception_v3")


def run_cli(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "inception_analyzer", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert proc.returncode == expect, proc.stderr
    return proc


@pytest.fixture(scope="module")
def v3_sweep() -> dict:
    """The issue's example, as JSON."""
    return json.loads(run_cli("sweep", V3, "--width", "0.5,0.75,1.0", "--input-size", "224,299",
                              "--grid", "aux_logits=false", "--format", "json").stdout)


# -- the space


def test_the_space_is_the_product_of_its_lists_in_order():
    space = DesignSpace((("aux_logits", (False, True)), ("dropout", (0.2, 0.5))), (0.5, 1.0), (224, 299))
    variants = list(space.variants())
    assert space.size == len(variants) == 16
    assert variants[0] == Variant((("aux_logits", False), ("dropout", 0.2)), 0.5, 224)
    assert variants[1] == Variant((("aux_logits", False), ("dropout", 0.2)), 0.5, 299)
    assert variants[-1] == Variant((("aux_logits", True), ("dropout", 0.5)), 1.0, 299)
    assert [space.variant(i) for i in range(space.size)] == variants


def test_random_samples_are_distinct_reproducible_and_need_not_build_the_product():
    space = DesignSpace((("a", tuple(range(1000))), ("b", tuple(range(1000)))), (None,), tuple(range(100, 1100)))
    assert space.size == 10**9
    sample = space.sample(500, seed=7)
    assert len(set(sample)) == 500
    assert sample == space.sample(500, seed=7) != space.sample(500, seed=8)
    with pytest.raises(SweepError, match="--random"):
        next(space.variants())


def test_a_variant_reads_as_its_settings():
    assert Variant((("aux_logits", False),), 0.5, 224).label() == "aux_logits=false, width x0.5, 224 px"
    assert Variant().label() == "as written"


# -- budgets and the front


@pytest.mark.parametrize("text, key, limit", [("macs=6e9", "macs", 6e9), ("macs=6G", "macs", 6e9),
                                              ("params=25M", "params", 25e6), ("memory=512MiB", "memory", 2**29),
                                              ("memory=1GB", "memory", 1e9), ("latency=5ms", "latency", 5e-3),
                                              ("latency=200us", "latency", 2e-4)])
def test_budgets_read_numbers_with_the_units_of_their_figure(text, key, limit):
    budget = parse_budget(text)
    assert (budget.key, budget.limit) == (key, pytest.approx(limit))


@pytest.mark.parametrize("text", ["macs", "flops=1", "macs=", "macs=lots", "macs=5ms", "latency=5", "params=1MiB",
                                  "macs=-1", "macs=0", "macs=1e400"])
def test_a_budget_that_cannot_be_read_is_refused(text):
    with pytest.raises(SweepError):
        parse_budget(text)


def brute_force_front(points: list[tuple[int, float, float]]) -> set[int]:
    """Every point no other point beats: at most as costly and as large, and not equal on both."""
    return {i for i, cost, size in points
            if not any(c <= cost and s <= size and (c, s) != (cost, size) for _, c, s in points)}


def test_the_pareto_front_is_the_set_no_other_variant_beats_on_both():
    import random
    generator = random.Random(3)
    for trial in range(200):
        points = [(i, generator.randint(1, 12), generator.randint(1, 12)) for i in range(generator.randint(1, 30))]
        results = [VariantResult(i, Variant(), params=size, macs=cost) for i, cost, size in points]
        assert pareto_front(results, by_latency=False) == brute_force_front(points), points


# -- the command


def test_the_issues_example_runs_and_each_row_is_what_analyze_says(v3_sweep):
    assert v3_sweep["space_size"] == v3_sweep["evaluated"] == 6
    assert len(v3_sweep["ranked"]) == 6 and not v3_sweep["invalid"]
    for row in v3_sweep["ranked"][::3]:
        variant = row["variant"]
        alone = json.loads(run_cli("analyze", V3, "--set", "aux_logits=false", "--width", str(variant["width"]),
                                   "--input-size", str(variant["input_size"]), "--format", "json").stdout)
        assert (row["params"], row["macs"], row["activations"]) == (
            alone["totals"]["params"], alone["totals"]["macs"], alone["totals"]["activations"])
        assert alone["width"] == variant["width"]


def test_the_ranking_is_by_macs_then_params_and_marks_the_front(v3_sweep):
    ranked = v3_sweep["ranked"]
    assert [(r["macs"], r["params"]) for r in ranked] == sorted((r["macs"], r["params"]) for r in ranked)
    points = [(r["index"], r["macs"], r["params"]) for r in ranked]
    assert {r["index"] for r in ranked if r["pareto"]} == brute_force_front(points)
    # a narrower, smaller-input Inception-v3 is cheaper and smaller: the one point on the front
    assert ranked[0]["variant"] == {"label": "aux_logits=false, width x0.5, 224 px", "arguments": {"aux_logits": False},
                                    "width": 0.5, "input_size": 224}


def test_budgets_filter_and_invalid_variants_are_listed_with_their_location():
    out = json.loads(run_cli("sweep", V3, "--width", "0.5,1.0", "--input-size", "224,299", "--grid",
                             "aux_logits=true", "--max", "params=25M", "--max", "macs=3G", "--format", "json").stdout)
    assert out["budgets"] == {"params": 25e6, "macs": 3e9}
    assert all(r["params"] <= 25e6 and r["macs"] <= 3e9 for r in out["ranked"])
    assert out["over_budget"] and all(r["exceeded"] for r in out["over_budget"])
    # the auxiliary head's 5x5 conv does not fit the 224 px grid: invalid, located, one line each
    assert [r["variant"]["input_size"] for r in out["invalid"]] == [224, 224]
    for row in out["invalid"]:
        assert row["error"].startswith(f"{V3}:") and "(at AuxLogits.conv1.conv)" in row["error"]
    assert len(out["ranked"]) + len(out["over_budget"]) + len(out["invalid"]) == 4


def test_table_csv_and_markdown_carry_the_same_ranking():
    args = ("sweep", V3, "--width", "0.5,0.75", "--input-size", "160,224", "--grid", "aux_logits=false")
    table = run_cli(*args).stdout
    rows = list(csv.DictReader(io.StringIO(run_cli(*args, "--format", "csv").stdout)))
    markdown = run_cli(*args, "--format", "markdown").stdout
    assert [row["rank"] for row in rows] == ["1", "2", "3", "4"]
    for row in rows:
        assert row["variant"] in table and row["variant"] in markdown
    assert "| rank" in markdown and "4 survive" in table


def test_output_directory_holds_the_page_with_the_pareto_plot(tmp_path):
    pytest.importorskip("matplotlib")
    run_cli("sweep", V3, "--width", "0.5,1.0", "--grid", "aux_logits=false", "-o", str(tmp_path / "out"))
    page = (tmp_path / "out" / "sweep.html").read_text()
    assert "<svg" in page and "Pareto front" in page and "<script" not in page
    assert json.loads((tmp_path / "out" / "sweep.json").read_text())["evaluated"] == 2


@pytest.mark.parametrize("args, message", [
    (("--width", "0.5,x"), "--width takes numbers"),
    (("--width", "0"), "width multiplier"),
    (("--input-size", "0"), "--input-size values must be positive"),
    (("--grid", "aux_logits=false", "--set", "aux_logits=true"), "swept twice"),
    (("--grid", "no_such_argument=1,2"), "no_such_argument"),
    (("--max", "latency=5ms"), "--profile"),
    (("--batch", "0"), "--batch"),
    (("--jobs", "0"), "--jobs"),
    (("--random", "0"), "--random"),
    (("--engine", "dask"), "--address"),
])
def test_bad_options_are_one_clear_line_and_exit_2(args, message):
    proc = run_cli("sweep", V3, *args, expect=2)
    assert message in proc.stderr and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_the_spec_commands_take_the_width_too():
    out = json.loads(run_cli("analyze", spec_path("resnet50"), "--width", "0.5", "--format", "json").stdout)
    assert out["width"] == 0.5 and out["totals"]["params"] < 25_557_032 / 3
    bad = run_cli("analyze", spec_path("resnet50"), "--width", "-1", expect=2)
    assert "width multiplier" in bad.stderr and bad.stderr.count("\n") == 1


# -- the engines


def v3_variants() -> tuple[SpecSource, list[Variant]]:
    space = DesignSpace((("aux_logits", (False, True)),), (0.5, 0.75, 1.0), (160, 224, 299))
    return SpecSource(read_text(V3), V3), list(space.variants())


def test_a_local_pool_gives_the_same_results_in_the_same_order():
    source, variants = v3_variants()
    alone = run_variants(source, variants, 8)
    pooled = run_variants(source, variants, 8, jobs=2)
    assert pooled == alone
    assert [r.index for r in pooled] == list(range(len(variants)))
    # the aux head's 5x5 conv does not fit the grid at 160 and 224 px: 2 sizes x 3 widths
    assert [(r.variant.input_size, r.variant.width) for r in alone if not r.ok] == [
        (160, 0.5), (224, 0.5), (160, 0.75), (224, 0.75), (160, 1.0), (224, 1.0)]


def test_a_local_dask_cluster_gives_the_same_results_as_the_local_run():
    distributed = pytest.importorskip("distributed")
    source, variants = v3_variants()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        on_dask = run_variants(source, variants, 8, engine="dask", address=cluster.scheduler_address)
    assert on_dask == run_variants(source, variants, 8)


def test_the_command_runs_on_a_dask_scheduler_it_is_pointed_at():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        args = ("sweep", V3, "--width", "0.5,1.0", "--input-size", "224,299", "--grid", "aux_logits=false",
                "--format", "json")
        remote = json.loads(run_cli(*args, "--engine", "dask", "--address", cluster.scheduler_address).stdout)
    assert remote == json.loads(run_cli(*args).stdout)


def test_an_unreachable_scheduler_is_one_line():
    pytest.importorskip("distributed")
    proc = run_cli("sweep", V3, "--engine", "dask", "--address", "tcp://127.0.0.1:9", expect=2)
    assert "cannot reach the Dask scheduler" in proc.stderr and proc.stderr.count("\n") == 1


def test_a_random_sweep_of_a_large_space():
    out = json.loads(run_cli("sweep", V3, "--grid", "aux_logits=false,true", "--grid", "num_classes=10,100,1000",
                             "--width", ",".join(f"{w / 20:g}" for w in range(5, 41)),
                             "--input-size", ",".join(str(s) for s in range(139, 400, 4)),
                             "--random", "200", "--seed", "1", "--jobs", "2", "--format", "json").stdout)
    assert out["space_size"] == 2 * 3 * 36 * 66 and out["evaluated"] == 200
    assert len(out["ranked"]) + len(out["invalid"]) == 200
    # only the aux head fails, on inputs under the 299 px it was designed for (its 17x17 grid
    # pooled 5x5/3 must leave the 5x5 conv a 5x5 map: a grid of at least 17)
    assert out["invalid"]
    for row in out["invalid"]:
        variant = row["variant"]
        assert variant["arguments"]["aux_logits"] is True and variant["input_size"] < 299
        assert "(at AuxLogits." in row["error"]
    assert all(r["variant"]["input_size"] >= 299 for r in out["ranked"] if r["variant"]["arguments"]["aux_logits"])


HOSTILE = """\
name: "<img src=x onerror=alert(1)>"
input: [3, 16, 16]
layers: [conv(16, 3, padding=1), relu, "global_avgpool()", "flatten()", linear(10)]
"""


def test_a_hostile_name_reaches_markdown_and_html_escaped(tmp_path):
    spec = tmp_path / "hostile.yaml"
    spec.write_text(HOSTILE)
    markdown = run_cli("sweep", str(spec), "--width", "0.5,1", "--format", "markdown").stdout
    assert "<img" not in markdown.replace("\\<img", "")
    run_cli("sweep", str(spec), "--width", "0.5,1", "-o", str(tmp_path / "out"))
    page = (tmp_path / "out" / "sweep.html").read_text()
    assert "<img" not in page and "&lt;img" in page


# -- with a calibrated device profile


@pytest.fixture(scope="module")
def hand_profile_file(tmp_path_factory):
    """A profile of round figures (test_latency's): the sweep only carries its predictions."""
    from inception_analyzer.analysis.latency_file import profile_text
    from test_latency import hand_profile

    path = tmp_path_factory.mktemp("profile") / "hand.yaml"
    path.write_text(profile_text(hand_profile()))
    return path


def test_a_profile_ranks_by_predicted_latency_and_a_latency_budget_filters(hand_profile_file):
    from inception_analyzer.analysis.latency_file import read_profile
    from inception_analyzer.pipeline import Request, analyze

    args = ("sweep", V3, "--width", "0.5,0.75,1.0", "--input-size", "224,299", "--grid", "aux_logits=false",
            "--profile", str(hand_profile_file), "--batch", "2", "--format", "json")
    out = json.loads(run_cli(*args).stdout)
    assert out["objective"] == "latency" and out["latency_batch"] == 2
    profile = read_profile(hand_profile_file)
    for row in out["ranked"]:
        variant = row["variant"]
        alone = analyze(Request(V3, {"aux_logits": False}, variant["input_size"], variant["width"]))
        assert row["latency_seconds"] == pytest.approx(alone.predict(profile, 2).seconds, rel=1e-12)
    latencies = [r["latency_seconds"] for r in out["ranked"]]
    assert latencies == sorted(latencies)
    points = [(r["index"], r["latency_seconds"], r["params"]) for r in out["ranked"]]
    assert {r["index"] for r in out["ranked"] if r["pareto"]} == brute_force_front(points)
    # a budget between the fastest and the slowest keeps exactly those at or under it
    limit = (latencies[0] + latencies[-1]) / 2
    kept = json.loads(run_cli(*args, "--max", f"latency={limit * 1e3:.6f}ms").stdout)
    assert [r["index"] for r in kept["ranked"]] == [r["index"] for r in out["ranked"] if r["latency_seconds"] <= limit]
    assert kept["over_budget"] and all(r["latency_seconds"] > limit for r in kept["over_budget"])


def test_a_profile_that_is_not_one_is_one_located_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("format: nothing\n")
    proc = run_cli("sweep", V3, "--profile", str(bad), expect=2)
    assert str(bad) in proc.stderr and proc.stderr.count("\n") == 1
