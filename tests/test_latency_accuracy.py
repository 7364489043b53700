"""benchmarks/latency_accuracy.py, the check of the calibrated prediction against measurement, run
on a small network in rounds: every round is a measurement of its own, the table keeps their
median and their spread, and the error is the prediction against that median. (The script had
once stopped running after a change to bench's runner without any test noticing.)"""
from __future__ import annotations

import json
import statistics
import sys

import pytest

from conftest import ROOT
from inception_analyzer.analysis.latency_file import profile_text
from test_latency import SMALL, hand_profile

sys.path.insert(0, str(ROOT / "benchmarks"))
import latency_accuracy  # noqa: E402


@pytest.fixture()
def small_run(tmp_path):
    profile = tmp_path / "hand.yaml"
    profile.write_text(profile_text(hand_profile()))
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL)
    results = tmp_path / "run.jsonl"
    assert latency_accuracy.main(["--profile", str(profile), "--models", str(spec), "--batch", "1,2",
                                  "--rounds", "2", "--in-process", "--min-time", "0.01", "--warmup", "1",
                                  "--max-others", "1", "--retries", "1", "--results", str(results)]) == 0
    return results


def test_rounds_are_measured_and_kept_apart(small_run):
    rows = [json.loads(line) for line in small_run.read_text().splitlines()]
    assert sorted((r["batch"], r["round"]) for r in rows) == [(1, 1), (1, 2), (2, 1), (2, 2)]
    for row in rows:
        assert row["p50"] > 0 and row["reference_ms"] > 0 and row["chain_ms"] > 0 and row["model"] == "small"
        assert row["error"] == pytest.approx(row["predicted"] / row["p50"] - 1)


def test_the_table_keeps_the_median_of_the_rounds(small_run):
    rows = [json.loads(line) for line in small_run.read_text().splitlines()]
    grouped = {g["batch"]: g for g in latency_accuracy.grouped(rows)}
    for batch, group in grouped.items():
        mine = [r["p50"] for r in rows if r["batch"] == batch]
        assert group["p50"] == pytest.approx(statistics.median(mine))
        assert (group["low"], group["high"], group["rounds"]) == (min(mine), max(mine), 2)
        assert group["error"] == pytest.approx(group["predicted"] / statistics.median(mine) - 1)
    table = latency_accuracy.table(small_run)
    assert "2 measurements (1 models)" in table and "the rounds of one model and batch differ by" in table


def test_each_round_is_checked_against_the_median_of_the_others_as_the_machine_s_own_floor(tmp_path):
    """A prediction is checked against the median of a model's rounds; the same check of each round
    against the median of the others says how well the machine repeats itself."""
    def row(model, batch, p50):
        return {"model_source": model, "model": model, "batch": batch, "p50": p50}

    rows = [row("a", 1, 10.0), row("a", 1, 12.0), row("a", 1, 11.0), row("b", 1, 5.0), row("b", 1, 6.0),
            row("b", 8, 40.0)]                                              # b at batch 8: one round, no check
    # a: 10 / median(12, 11) - 1, 12 / median(10, 11) - 1, 11 / median(10, 12) - 1; b: 5 / 6 - 1, 6 / 5 - 1
    assert latency_accuracy.rounds_against_the_others(rows) == pytest.approx(
        [10 / 11.5 - 1, 12 / 10.5 - 1, 0.0, 5 / 6 - 1, 0.2])
    results = tmp_path / "rounds.jsonl"
    results.write_text("".join(json.dumps({**r, "round": i, "predicted": 11.0, "roofline": 1.0, "predict_ms": 1.0,
                                           "reference_ms": 0.1, "load_before": 0.0, "chain_ms": 2.0 + i,
                                           "calibration_chain_ms": 2.5}) + "\n" for i, r in enumerate(rows)))
    table = latency_accuracy.table(results)
    # |-13.0%|, 14.3%, 0, |-16.7%|, 20.0%: three of five within 15%, the median 14.3%
    assert "other rounds (a prediction as good as the machine repeats itself): 3 of 5 within +-15%, median " \
           "absolute difference 14.3%" in table
    assert "| a | 1 | 11,000.00 ms | 11,000.00 ms | +0.0% | 3: 10,000.00 ms - 12,000.00 ms (20%) | 0.10 - 0.10 ms " \
           "| 2.00 - 4.00 ms |" in table
    assert "the chain network of small layers ran at 2.00 to 7.00 ms a call before the measurements; its " \
           "calibration's median slice, which prices every layer's overhead: 2.50 ms" in table


def test_resume_takes_only_what_is_missing(small_run, tmp_path):
    before = small_run.read_text()
    profile = tmp_path / "hand.yaml"
    assert latency_accuracy.main(["--profile", str(profile), "--models", str(tmp_path / "small.yaml"),
                                  "--batch", "1,2", "--rounds", "2", "--in-process", "--resume", "--min-time", "0.01",
                                  "--warmup", "1", "--max-others", "1", "--results", str(small_run)]) == 0
    assert small_run.read_text() == before


def test_on_a_queue_device_each_side_of_the_forward_is_checked_on_its_own(tmp_path):
    """A queue profile's prediction has a host side (overheads, what a layer adds in a model) and a
    device side (the kernels); a CUDA measurement holds both apart. The second table gives each
    side's error, from the figures of each row."""
    from dataclasses import replace

    import inception_analyzer as ia
    from inception_analyzer.graph import build_graph
    from inception_analyzer.spec import load_spec_text
    from test_latency import QUEUE

    prediction = ia.analyze(build_graph(load_spec_text(SMALL, "small.yaml"))).predict(
        replace(hand_profile(QUEUE), layer_overhead=2e-6), 2)
    sides = latency_accuracy.queue_predicted(prediction)
    # test_queue_execution_by_hand: the host's 27.5 us, six layers of 2 us more in a model; the
    # kernels 131.072 + 7 + 2 + 2 + 0 + 12.528 us
    assert sides["predicted_host"] == pytest.approx(39.5e-6) and sides["predicted_device"] == pytest.approx(154.6e-6)
    assert latency_accuracy.queue_predicted(ia.analyze(build_graph(load_spec_text(SMALL, "s.yaml"))).predict(
        hand_profile(), 2)) == {}                                        # a CPU's: one side
    row = {"model_source": "small", "model": "small", "batch": 2, "round": 1, "predicted": 160e-6, "p50": 200e-6,
           "error": -0.2, "roofline": 1e-4, "predict_ms": 1.0, "reference_ms": 0.1, "load_before": 0.0,
           "others_during": 0.0, **sides, "host_p50": 50e-6, "device_p50": 150e-6, "host_ahead": False}
    results = tmp_path / "queue.jsonl"
    results.write_text(json.dumps(row) + "\n")
    table = latency_accuracy.table(results)
    # host 39.5 / 50 - 1 = -21.0%; device 154.6 / 150 - 1 = +3.1%
    assert "| small | 2 | 0.04 ms | 0.05 ms (waited on the device) | -21.0% | 0.15 ms | 0.15 ms | +3.1% |" in table
    assert "host: median absolute error 21.0%, 0 of 1 within +-15%" in table
    assert "device: median absolute error 3.1%, 1 of 1 within +-15%" in table


def test_a_model_that_cannot_be_imported_here_leaves_the_others_measured(tmp_path, capsys):
    """The GPU suite imports torchvision and timm models on a lent machine it cannot see first: one
    that fails there is named with why, and every other model is still measured."""
    profile = tmp_path / "hand.yaml"
    profile.write_text(profile_text(hand_profile()))
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL)
    results = tmp_path / "run.jsonl"
    assert latency_accuracy.main(["--profile", str(profile), "--models", f"nowhere:model,{spec}", "--batch", "1",
                                  "--in-process", "--min-time", "0.01", "--warmup", "1", "--max-others", "1",
                                  "--quiet-window", "0.1", "--specs", str(tmp_path / "specs"),
                                  "--results", str(results)]) == 0
    assert [json.loads(line)["model"] for line in results.read_text().splitlines()] == ["small"]
    assert "not measured: nowhere:model (SystemExit: unknown package in nowhere:model" in capsys.readouterr().out
