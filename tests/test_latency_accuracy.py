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
        assert row["p50"] > 0 and row["reference_ms"] > 0 and row["model"] == "small"
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


def test_resume_takes_only_what_is_missing(small_run, tmp_path):
    before = small_run.read_text()
    profile = tmp_path / "hand.yaml"
    assert latency_accuracy.main(["--profile", str(profile), "--models", str(tmp_path / "small.yaml"),
                                  "--batch", "1,2", "--rounds", "2", "--in-process", "--resume", "--min-time", "0.01",
                                  "--warmup", "1", "--max-others", "1", "--results", str(small_run)]) == 0
    assert small_run.read_text() == before
