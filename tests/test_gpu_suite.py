"""benchmarks/gpu_suite cannot rot between GPU windows: its dry mode (--cpu) runs every step here,
on tiny runs, and writes what the GPU run writes (the lent machine sends back at most 8 files)."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import subprocess
import sys

import pytest

from conftest import ROOT

pytest.importorskip("torch")

SUITE = ROOT / "benchmarks" / "gpu_suite"
STEPS = ["cuda checks", "headline", "eager", "train", "memory", "per layer", "calibrate", "latency"]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-suite")
    proc = subprocess.run([sys.executable, str(SUITE), str(out), "--cpu"], capture_output=True, text=True,
                          cwd=ROOT, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_every_step_runs_in_priority_order_and_is_logged(dry_run):
    log = (dry_run / "log.txt").read_text()
    started = [line.split("step ", 1)[1].split(":")[0] for line in log.splitlines() if "] step " in line]
    assert started == STEPS
    assert "torch " in log and "nvidia-smi" in log          # versions, and the GPU's table or its absence
    assert "timed out" not in log and "exit 1" not in log and "exit 2" not in log
    assert "predicted / measured" in log                     # the memory step's table


def test_each_measuring_step_writes_bench_json_as_it_goes(dry_run):
    files = sorted(p.name for p in dry_run.iterdir())
    assert files == ["eager.jsonl", "headline.json", "latency.jsonl", "latency_profile.yaml", "log.txt",
                     "per_layer.json", "train.jsonl"]
    assert len(files) <= 8
    for name in files:
        if not name.endswith((".json", ".jsonl")) or name == "latency.jsonl":
            continue
        for line in (dry_run / name).read_text().splitlines():
            report = json.loads(line)
            assert report["rows"] and all(row["ours"]["status"] == "ok" for row in report["rows"])
    train = json.loads((dry_run / "train.jsonl").read_text().splitlines()[0])
    assert train["settings"]["mode"] == "train" and train["settings"]["channels_last"]
    per_layer = json.loads((dry_run / "per_layer.json").read_text())
    assert per_layer["rows"][0]["layers"]
    # the latency step measured against the profile the calibrate step wrote (latency_accuracy.py's rows)
    (row,) = [json.loads(line) for line in (dry_run / "latency.jsonl").read_text().splitlines()]
    assert row["profile"].endswith("latency_profile.yaml") and row["model"] == "alexnet" and row["batch"] == 1
    assert row["error"] == row["predicted"] / row["p50"] - 1
    assert "median absolute error" in (dry_run / "log.txt").read_text()        # its table, in the log


def test_the_gpu_plan_is_the_issues():
    """What the GPU run asks for, read from the script itself (a dry run replaces the models)."""
    loader = importlib.machinery.SourceFileLoader("gpu_suite", str(SUITE))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader("gpu_suite", loader))
    sys.modules["gpu_suite"] = module   # its dataclasses look their module up there
    loader.exec_module(module)
    plan = {step.name: step for step in module.steps(dry=False)}
    assert list(plan) == STEPS
    headline = plan["headline"].runs[0]
    assert {"inception_v3", "bf16", "--channels-last", "--compile", "256"} <= set(headline)
    eager_models = {run[1] for run in plan["eager"].runs}
    assert eager_models == {"inception_v3", "googlenet", "resnet50", "vgg16", "alexnet"}
    assert {run[run.index("--dtype") + 1] for run in plan["eager"].runs} == {"bf16", "fp32"}
    assert all("1,32,256" in run for run in plan["eager"].runs)
    assert all({"--mode", "train", "128", "--channels-last"} <= set(run) for run in plan["train"].runs)
    memory = plan["memory"]
    assert memory.script == "benchmarks/memory_accuracy.py" and {"cuda", "1,16", "inference,train"} <= \
        set(memory.runs[0])
    (calibrate,) = plan["calibrate"].runs
    assert {"calibrate", "cuda", "fp32", "-o"} <= set(calibrate) and "--quick" not in calibrate
    profile = calibrate[calibrate.index("-o") + 1]
    (latency,) = plan["latency"].runs
    assert plan["latency"].script == "benchmarks/latency_accuracy.py"
    assert latency[latency.index("--profile") + 1] == profile and "1,8,32" in latency
    # every spec, and at least five imported models
    models = latency[latency.index("--models") + 1].split(",")
    specs = {path.stem for path in (ROOT / "inception_analyzer" / "specs").glob("*.yaml")}
    assert specs <= set(models) and sum(":" in name for name in models) >= 5
    assert sum(step.seconds for step in plan.values()) <= 8 * 60   # the issue's budget, inside a 15-minute window
