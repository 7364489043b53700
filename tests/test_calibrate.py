"""`calibrate` on its tiny grid (--quick: seconds), the profile it writes, and `bench --profile` with
it: the prediction beside each measurement, measured / estimate against it where it applies and
against the roofline where it does not. The fitted figures of a quick run on a shared 2-core
machine are not checked (they are not a prediction); their form and plumbing are."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from conftest import ROOT, spec_path  # noqa: E402 - after the torch skip
from inception_analyzer.analysis.latency import CurveEntry, EfficiencyEntry  # noqa: E402
from inception_analyzer.analysis.latency_file import read_profile  # noqa: E402
from inception_analyzer.bench.calibrate import calibration_cases  # noqa: E402
from inception_analyzer.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def quick_profile(tmp_path_factory):
    path = tmp_path_factory.mktemp("calibrate") / "quick.yaml"
    assert main(["calibrate", "--quick", "-o", str(path)]) == 0
    return path


def test_the_quick_profile_has_every_entry_of_its_grid(quick_profile):
    profile = read_profile(quick_profile)
    assert profile.device == "cpu" and profile.dtype == "fp32" and profile.execution == "sync"
    assert profile.threads >= 1 and profile.date[:2] == "20" and profile.machine["torch"]
    assert profile.calibration["grid"] == "quick" and profile.calibration["samples"] > 20
    for key in ("conv 1x1/1", "conv 3x3/1", "linear"):
        entry = profile.entries[key]
        assert isinstance(entry, EfficiencyEntry) and entry.peak_flops > 0 and entry.overhead > 0
        for points in entry.factors.values():
            assert max(f for _, f in points) == 1.0 and min(f for _, f in points) > 0   # scaled to the peak
    for key in ("relu", "relu (in place)", "bn", "concat", "add", "maxpool 3x3/2", "adaptive_avgpool global", "copy"):
        entry = profile.entries[key]
        assert isinstance(entry, CurveEntry) and entry.points, key
        times = [t for _, t in entry.points]
        assert times == sorted(times), key                       # non-decreasing (isotonic)
    for key in ("flatten", "dropout", "identity"):               # views and no-ops: an overhead only
        assert profile.entries[key].points == () and profile.entries[key].overhead > 0
    assert 0 < profile.fallback.efficiency and profile.roofs.matmul_flops > 0


def test_analyze_predicts_with_it(quick_profile, capsys):
    assert main(["analyze", str(spec_path("googlenet")), "--device", str(quick_profile), "--batch", "8",
                 "--format", "json", "--depth", "stage"]) == 0
    data = json.loads(capsys.readouterr().out)
    prediction = data["prediction"]
    assert prediction["seconds"] > 0 and prediction["batch"] == 8
    # googlenet's 5x5 and 7x7/2 convolutions are not in the quick grid: the nearest class prices them
    assert prediction["layers_by_how"]["nearest"] > 0
    assert sum(s["predicted_seconds"] for s in data["stages"]) < prediction["seconds"]


def test_bench_measures_against_the_prediction(quick_profile, capsys):
    tiny = str(ROOT / "tests" / "data" / "tiny_inception.yaml")
    common = ["bench", tiny, "--device", "cpu", "--batch", "2", "--iters", "3", "--warmup", "1",
              "--no-torchvision", "--profile", str(quick_profile)]
    assert main([*common, "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)["rows"][0]
    assert row["prediction"]["seconds"] > 0
    assert row["measured_over_estimate"] == pytest.approx(row["ours"]["p50_seconds"] / row["prediction"]["seconds"])
    assert row["measured_over_roofline"] == pytest.approx(row["ours"]["p50_seconds"] / row["estimate"]["seconds"])
    assert main([*common, "--per-layer"]) == 0
    table = capsys.readouterr().out
    assert "predicted" in table and "measured / predicted" in table
    per_layer = table[table.index("forward pass per layer"):]
    header = next(line for line in per_layer.splitlines() if line.startswith("layer "))
    assert header.split()[:6] == ["layer", "op", "estimate", "bound", "predicted", "measured"]
    # channels_last is not what the profile was fitted to: no prediction, and the output says so
    assert main([*common, "--channels-last", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"][0]["prediction"] is None and "channels_last" in report["prediction_note"]
    assert report["rows"][0]["measured_over_estimate"] == report["rows"][0]["measured_over_roofline"]


def test_the_grid_orders_overheads_first_and_spreads_each_series():
    cases = calibration_cases("full")
    overheads = [i for i, case in enumerate(cases) if case.overhead]
    assert overheads == list(range(len(overheads)))              # every entry's overhead before any sample
    relu = [case.batch * case.inputs[0][0] * case.inputs[0][1] * case.inputs[0][2]
            for case in cases if case.op == "relu" and not case.overhead and not case.in_place]
    assert relu[:2] == [min(relu), max(relu)]                    # a curve's ends first
    assert len(relu) == len(set(relu))


@pytest.mark.parametrize("arguments, message", [
    (["--device", "meta"], "cpu or cuda"), (["--max-seconds", "0"], "above 0"), (["--threads", "0"], "--threads"),
    (["--dtype", "tf32"], "tf32")])
def test_bad_calibrate_options_are_one_line(arguments, message, capsys):
    assert main(["calibrate", "--quick", *arguments]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
