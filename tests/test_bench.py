"""bench: timing statistics, the training recipe, the fits / does-not-fit logic and a tiny CPU run.

Expected figures come from hand calculation (percentiles of known samples, the label-smoothed
cross-entropy and RMSProp's update written out with math) or an independent source (numpy's
percentile); none from the code's own output. Runs on the CPU in a few seconds; the CUDA timing
test skips without CUDA.
"""
from __future__ import annotations

import argparse
import ast
import csv
import io
import json
import math
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from inception_analyzer.analysis.roofline import ProfileError  # noqa: E402
from inception_analyzer.bench import machine, runner  # noqa: E402
from inception_analyzer.bench.limits import MAX_ITERATIONS, MIN_ITERATIONS, BenchError  # noqa: E402
from inception_analyzer.bench.progress import Progress  # noqa: E402
from inception_analyzer.bench.recipe import (TrainRecipe, make_criterion, make_optimizer, split_outputs,  # noqa: E402
                                             train_step, training_loss)
from inception_analyzer.bench.records import BenchReport, BenchRow, LayerTiming, Measurement  # noqa: E402
from inception_analyzer.bench.runner import measure_models  # noqa: E402
from inception_analyzer.bench.settings import BenchSettings, check_settings, torch_settings  # noqa: E402
from inception_analyzer.bench.stats import TimingStats, percentile, ratio_interval  # noqa: E402
from inception_analyzer.bench.timing import block_sizes, iterations_for, measure, time_iterations  # noqa: E402
from inception_analyzer.build import SpecOutputs  # noqa: E402
from inception_analyzer.commands import bench as bench_command  # noqa: E402
from inception_analyzer.errors import AnalyzerError  # noqa: E402

from conftest import ROOT, spec_path  # noqa: E402

TINY = str(Path(__file__).parent / "data" / "tiny_inception.yaml")
CPU = torch.device("cpu")


# ----------------------------------------------------------------------------- timing statistics
def test_median_and_p90_of_known_samples():
    samples = [0.010 * k for k in (7, 1, 10, 4, 2, 9, 3, 6, 8, 5)]   # 10 ms .. 100 ms, shuffled
    stats = TimingStats(tuple(samples))
    assert stats.median == pytest.approx(0.055)       # mean of the 5th and 6th: (50 + 60) / 2 ms
    # p90: rank 0.9 x (10 - 1) = 8.1 -> 90 ms + 0.1 x (100 - 90) ms = 91 ms
    assert stats.p90 == pytest.approx(0.091)
    assert stats.mean == pytest.approx(0.055)
    assert stats.spread == pytest.approx(0.091 / 0.055 - 1)
    assert stats.iterations == 10


def test_percentile_of_an_odd_count_by_hand():
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([3.0, 1.0, 2.0], 90) == pytest.approx(2.8)   # rank 1.8: 2 + 0.8 x (3 - 2)
    assert percentile([5.0], 90) == 5.0


def test_percentile_agrees_with_numpy():
    numpy = pytest.importorskip("numpy")
    samples = [0.3, 0.1, 0.7, 0.2, 0.9, 0.4, 0.35]
    for q in (10, 50, 75, 90, 99):
        assert percentile(samples, q) == pytest.approx(float(numpy.percentile(samples, q)))


def test_ratio_interval_brackets_a_clear_speed_up_and_excludes_parity():
    ours = tuple(0.010 + 0.0001 * k for k in range(20))       # about 10 ms per iteration
    theirs = tuple(0.020 + 0.0001 * k for k in range(20))     # about 20 ms: ours twice as fast
    low, high = ratio_interval(ours, theirs)
    exact = statistics.median(theirs) / statistics.median(ours)
    assert 1.0 < low <= exact <= high < 2.2


def test_ratio_interval_of_identical_runs_contains_parity_and_is_reproducible():
    samples = tuple(0.010 * (1 + 0.05 * ((7 * k) % 11 - 5) / 5) for k in range(30))   # 10 ms +- 5%
    low, high = ratio_interval(samples, samples[::-1])
    assert low < 1.0 < high and high - low < 0.1
    assert ratio_interval(samples, samples[::-1]) == (low, high)   # fixed seed


def test_ratio_interval_covers_the_true_ratio_about_95_percent_of_the_time():
    """Independent check by construction: log-normal iteration times whose true medians are 10 ms
    (ours) and 11 ms (theirs), so the true ratio of images/s is exactly 1.1."""
    rng = random.Random(1)
    trials, covered = 200, 0
    for _ in range(trials):
        ours = tuple(0.010 * math.exp(rng.gauss(0, 0.05)) for _ in range(25))
        theirs = tuple(0.011 * math.exp(rng.gauss(0, 0.05)) for _ in range(25))
        low, high = ratio_interval(ours, theirs, resamples=500)
        covered += low <= 1.1 <= high
    assert 0.88 <= covered / trials <= 0.995


def test_bench_row_ratio_and_its_interval():
    ours = Measurement("ours", "ok", batch=8, timing=TimingStats((0.10, 0.11, 0.09, 0.10, 0.10)))
    theirs = Measurement("torchvision", "ok", batch=8, timing=TimingStats((0.20, 0.21, 0.19, 0.20, 0.20)))
    row = BenchRow("s.yaml", "m", 8, None, 0, None, ours, theirs)
    assert row.ratio == pytest.approx(2.0)
    low, high = row.ratio_interval
    assert low <= 2.0 <= high and low > 1.5
    alone = BenchRow("s.yaml", "m", 8, None, 0, None, ours, None)
    assert alone.ratio is None and alone.ratio_interval is None


def test_iterations_fill_the_minimum_time_within_bounds():
    assert iterations_for(0.010, 2.0) == 200
    assert iterations_for(1.0, 2.0) == MIN_ITERATIONS
    assert iterations_for(1e-7, 2.0) == MAX_ITERATIONS


def test_cpu_timer_times_each_iteration():
    samples = time_iterations(lambda: time.sleep(0.002), CPU, 3)
    assert len(samples) == 3 and all(s >= 0.002 for s in samples)


def test_measure_warms_up_then_times_the_asked_iterations():
    calls = []
    stats = measure(lambda: calls.append(1), CPU, warmup=2, iterations=4)
    assert len(calls) == 6 and stats.iterations == 4


def test_measure_sizes_the_run_from_one_iteration():
    calls = []
    stats = measure(lambda: (calls.append(1), time.sleep(0.01)), CPU, warmup=1, min_time=0.05)
    # one warm-up, one sizing iteration of about 10 ms, then at least MIN_ITERATIONS timed ones
    assert stats.iterations >= MIN_ITERATIONS and len(calls) == 2 + stats.iterations


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_events_agree_with_the_synchronised_wall_clock():
    from test_build import cuda_checks

    cuda_checks().cuda_events_agree_with_the_synchronised_wall_clock()  # the GPU suite runs it too


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_a_call_timed_on_the_device_is_its_kernel_not_its_launch():
    from test_build import cuda_checks

    cuda_checks().cuda_a_call_timed_on_the_device_is_its_kernel_not_its_launch()  # the GPU suite runs it too


# ----------------------------------------------------------------------------- training recipe
def _smoothed_cross_entropy(logits: list[float], label: int, smoothing: float = 0.1) -> float:
    """By hand: -sum_k q_k log softmax_k, with q = (1 - e) one-hot + e / K (torch's definition)."""
    lse = math.log(sum(math.exp(z) for z in logits))
    k = len(logits)
    return -sum(((1 - smoothing) * (i == label) + smoothing / k) * (z - lse) for i, z in enumerate(logits))


def test_recipe_is_the_papers():
    recipe = TrainRecipe()
    model = torch.nn.Linear(2, 3)
    group = make_optimizer(model.parameters(), recipe).param_groups[0]
    assert isinstance(make_optimizer(model.parameters(), recipe), torch.optim.RMSprop)
    assert (group["lr"], group["alpha"], group["eps"], group["momentum"]) == (0.045, 0.9, 1.0, 0.0)
    assert make_criterion(recipe).label_smoothing == 0.1
    assert (recipe.clip_norm, recipe.aux_weight, recipe.optimizer_states) == (2.0, 0.4, 1)


def test_loss_with_label_smoothing_by_hand():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    loss = training_loss(logits, torch.tensor([0]), make_criterion(TrainRecipe()), TrainRecipe())
    assert loss.item() == pytest.approx(_smoothed_cross_entropy([2.0, 0.0, -1.0], 0), rel=1e-6)


def test_aux_heads_add_their_loss_at_weight_0_4():
    main, aux1, aux2 = [2.0, 0.0, -1.0], [0.0, 1.0, 0.0], [0.5, 0.5, 3.0]
    t = lambda values: torch.tensor([values])  # noqa: E731
    criterion, recipe = make_criterion(TrainRecipe()), TrainRecipe()
    expected_one = _smoothed_cross_entropy(main, 1) + 0.4 * _smoothed_cross_entropy(aux1, 1)
    labels = torch.tensor([1])
    assert training_loss(SpecOutputs(t(main), t(aux1)), labels, criterion, recipe).item() == \
        pytest.approx(expected_one, rel=1e-6)
    expected_two = expected_one + 0.4 * _smoothed_cross_entropy(aux2, 1)
    assert training_loss(SpecOutputs(t(main), (t(aux1), t(aux2))), labels, criterion, recipe).item() == \
        pytest.approx(expected_two, rel=1e-6)


def test_torchvision_style_outputs_are_split():
    InceptionOutputs = namedtuple("InceptionOutputs", ["logits", "aux_logits"])
    GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])
    a, b, c = torch.zeros(1, 3), torch.ones(1, 3), torch.full((1, 3), 2.0)
    assert split_outputs(InceptionOutputs(a, None)) == (a, [])
    logits, aux = split_outputs(GoogLeNetOutputs(a, b, c))
    assert logits is a and aux[0] is b and aux[1] is c


def test_aux_output_that_is_not_logits_is_a_user_error():
    with pytest.raises(BenchError, match="aux_logits=false"):
        training_loss(SpecOutputs(torch.zeros(1, 3), torch.zeros(1, 4, 2, 2)), torch.tensor([0]),
                      make_criterion(TrainRecipe()), TrainRecipe())


def test_train_step_clips_to_2_and_applies_rmsprop_by_hand():
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 3, bias=False)
    before = model.weight.detach().clone()
    images, labels = torch.tensor([[300.0, -200.0]]), torch.tensor([2])  # large inputs: gradient norm >> 2
    recipe = TrainRecipe()
    optimizer = make_optimizer(model.parameters(), recipe)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    train_step(model, images, labels, optimizer, make_criterion(recipe), recipe, scaler)
    g = model.weight.grad                                        # the clipped gradient the step used
    assert g.norm().item() == pytest.approx(2.0, rel=1e-5)
    # RMSProp's first step: v = (1 - 0.9) g^2; w -= lr g / (sqrt(v) + eps) with lr 0.045, eps 1.0
    for w0, w1, gi in zip(before.flatten().tolist(), model.weight.detach().flatten().tolist(), g.flatten().tolist()):
        assert w1 == pytest.approx(w0 - 0.045 * gi / (math.sqrt(0.1 * gi * gi) + 1.0), rel=1e-5, abs=1e-7)


# ----------------------------------------------------------------------------- settings
def test_settings_choose_parameter_and_autocast_dtypes():
    assert BenchSettings(CPU, dtype="bf16").parameter_dtype == torch.bfloat16
    train = BenchSettings(CPU, dtype="bf16", mode="train")
    assert train.parameter_dtype == torch.float32 and train.autocast_dtype == torch.bfloat16
    assert BenchSettings(CPU, dtype="fp32", mode="train").autocast_dtype is None


def test_tf32_on_the_cpu_is_refused():
    with pytest.raises(BenchError, match="tf32"):
        check_settings(BenchSettings(CPU, dtype="tf32"))


def test_torch_settings_are_restored():
    before = (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision,
              torch.get_num_threads())
    with torch_settings(BenchSettings(CPU, dtype="fp32", threads=1)):
        assert torch.backends.cudnn.conv.fp32_precision == "ieee"   # fp32 means fp32, not TF32
        assert torch.get_num_threads() == 1
    assert (torch.backends.cuda.matmul.fp32_precision, torch.backends.cudnn.conv.fp32_precision,
            torch.get_num_threads()) == before


def test_progress_writes_only_when_enabled():
    stream = io.StringIO()
    progress = Progress(2, enabled=True, stream=stream)
    progress.start("tiny batch 1 ours")
    progress.iteration(5, 5)
    progress.done()
    assert "[1/2] tiny batch 1 ours" in stream.getvalue() and "5/5" in stream.getvalue()
    quiet = io.StringIO()
    Progress(2, enabled=False, stream=quiet).start("x")
    assert quiet.getvalue() == ""


# ----------------------------------------------------------------------------- the command
def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench_command.add_arguments(parser)
    return parser.parse_args(list(argv))


def _run_json(tmp_path, *argv: str) -> dict:
    out = tmp_path / "bench.json"
    assert bench_command.run(_args(*argv, "--device", "cpu", "--format", "json", "-o", str(out))) == 0
    return json.loads(out.read_text())


def test_tiny_cpu_bench_end_to_end(tmp_path):
    data = _run_json(tmp_path, TINY, "--batch", "1,2", "--iters", "2", "--warmup", "1")
    assert [r["batch"] for r in data["rows"]] == [1, 2]
    for row in data["rows"]:
        ours = row["ours"]
        assert ours["status"] == "ok" and ours["iterations"] == 2 and len(ours["samples_seconds"]) == 2
        assert ours["images_per_second"] == pytest.approx(row["batch"] / ours["p50_seconds"])
        # the CPU allocator's peak, from a profiled step, beside the memory analysis's prediction
        assert ours["peak_memory_bytes"] == pytest.approx(row["memory_needed_bytes"], rel=0.01)
        assert row["memory_measured_over_predicted"] == pytest.approx(1, abs=0.01)
        assert row["torchvision"] is None                            # torchvision has no tiny_inception
        assert row["estimate"]["profile"]["name"] == "cpu" and row["estimate"]["seconds"] > 0
    assert data["settings"]["train_recipe"]["aux_weight"] == 0.4


def test_tiny_cpu_bench_table_and_csv(tmp_path):
    table_file, csv_file = tmp_path / "bench.txt", tmp_path / "bench.csv"
    bench_command.run(_args(TINY, "--device", "cpu", "--iters", "2", "--warmup", "1", "-o", str(table_file)))
    text = table_file.read_text()
    assert "tiny_inception" in text and "images/s" in text and "environment: python" in text
    bench_command.run(_args(TINY, "--device", "cpu", "--iters", "2", "--warmup", "1", "--format", "csv",
                    "-o", str(csv_file)))
    rows = list(csv.DictReader(io.StringIO(csv_file.read_text())))
    assert len(rows) == 1 and rows[0]["implementation"] == "ours" and float(rows[0]["images_per_second"]) > 0
    assert int(rows[0]["peak_memory_bytes"]) > 0 and int(rows[0]["predicted_memory_bytes"]) > 0
    assert "predicted memory" in text


def test_per_layer_text_sums_the_time_per_op_kind():
    """Two convs (one compute-, one memory-bound), a memory-bound relu and a concat without a module:
    the per-op table adds them up by hand: conv 3 ms estimated, 5 ms measured of 10 ms in all."""
    from inception_analyzer.render.bench import render_bench
    layers = [LayerTiming("a.conv", "conv", 0.002, "compute", 0.004),
              LayerTiming("b.conv", "conv", 0.001, "memory", 0.001),
              LayerTiming("b.relu", "relu", 0.001, "memory", 0.003),
              LayerTiming("cat", "concat", 0.0005, "memory", None)]
    ours = Measurement("ours", "ok", batch=1, timing=TimingStats((0.01,)))
    row = BenchRow("t.yaml", "t", 1, None, 0, None, ours, None, layers, profiled_total_seconds=0.010)
    report = BenchReport(BenchSettings(CPU), {"device": "cpu"}, None, "no profile", [row])
    text = render_bench(report)
    per_op = text[text.index("summed per op"):].splitlines()
    conv = next(line for line in per_op if line.startswith("conv"))
    assert conv.split() == ["conv", "2", "1/2", "3.00", "ms", "66.7%", "5.00", "ms", "50.0%", "1.67"]
    relu = next(line for line in per_op if line.startswith("relu"))
    assert relu.split() == ["relu", "1", "1/1", "1.00", "ms", "22.2%", "3.00", "ms", "30.0%", "3.00"]
    concat = next(line for line in per_op if line.startswith("concat"))
    assert concat.split()[-3:] == ["-", "-", "-"]           # merges run outside any module


def test_train_mode_end_to_end(tmp_path):
    data = _run_json(tmp_path, TINY, "--mode", "train", "--set", "aux_logits=false", "--iters", "2", "--warmup", "1")
    row = data["rows"][0]
    assert row["ours"]["status"] == "ok"
    assert row["estimate"]["mode"] == "train" and row["estimate"]["memory"]["training_state_bytes"] > 0


def test_batch_that_does_not_fit_is_reported_not_run(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "free_memory_bytes", lambda device: 1000)
    data = _run_json(tmp_path, TINY, "--batch", "2", "--iters", "2")
    ours = data["rows"][0]["ours"]
    assert ours["status"] == "does not fit" and ours["iterations"] is None
    assert ours["note"].startswith("needs ") and ours["note"].endswith("GiB free")
    table = tmp_path / "bench.txt"
    bench_command.run(_args(TINY, "--device", "cpu", "--batch", "2", "-o", str(table)))
    assert "does not fit (needs " in table.read_text() and "does not fit (does not fit" not in table.read_text()


def test_out_of_memory_at_run_time_is_reported(monkeypatch):
    def build():
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 9.00 GiB")

    import inception_analyzer as ia
    graph = ia.load_graph(TINY)
    [result] = measure_models([("ours", build)], graph, ia.analyze(graph), 2, BenchSettings(CPU), None,
                              Progress(1, enabled=False))
    assert result.status == "out of memory" and not result.ok and result.images_per_second is None


def test_block_sizes():
    assert block_sizes(10, 4) == [3, 3, 2, 2]
    assert block_sizes(4, 4) == [1, 1, 1, 1]
    assert sum(block_sizes(1001, 4)) == 1001


def test_models_alternate_in_blocks():
    """Two models, 4 timed iterations each, one warm-up: warm A, warm B, then A B | B A | A B | B A."""
    import inception_analyzer as ia
    graph = ia.load_graph(TINY)
    report = ia.analyze(graph)
    calls = []

    class Recorder(torch.nn.Module):
        def __init__(self, name):
            super().__init__()
            self.name = name
            self.weight = torch.nn.Parameter(torch.zeros(report.totals.params))  # as many as the spec's

        def forward(self, images):
            calls.append(self.name)
            return images

    settings = BenchSettings(CPU, warmup=1, iterations=4)
    ours, theirs = measure_models([("ours", lambda: Recorder("A")), ("torchvision", lambda: Recorder("B"))],
                                  graph, report, 1, settings, None, Progress(1, enabled=False))
    # warm-ups, the interleaved blocks, then one profiled step each for the CPU's peak memory
    assert "".join(calls) == "AB" + "AB" "BA" "AB" "BA" + "AB"
    assert ours.timing.iterations == theirs.timing.iterations == 4


def test_compiled_rows_each_get_a_static_graph(monkeypatch):
    """A peer whose class is compiled at batch 1 and again at batch 2 (torchvision's, across rows)
    must not get a dynamic-shape graph in the second row, or the comparison is not like for like."""
    from torch._dynamo.testing import EagerAndRecordGraphs

    import inception_analyzer as ia
    graph = ia.load_graph(TINY)
    report = ia.analyze(graph)
    recorder, compile_ = EagerAndRecordGraphs(), torch.compile
    monkeypatch.setattr(torch, "compile", lambda model, **options: compile_(model, backend=recorder, **options))

    class Peer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(report.totals.params))   # as many as the spec's

        def forward(self, images):
            return images.flatten(1).sum(1) * self.weight[0]

    settings = BenchSettings(CPU, compile=True, warmup=1, iterations=2)
    for batch in (1, 2):
        measure_models([("torchvision", Peer)], graph, report, batch, settings, None,
                       Progress(1, enabled=False))
    assert len(recorder.graphs) == 2
    for compiled in recorder.graphs:
        inputs = [node.meta["example_value"] for node in compiled.graph.nodes if node.op == "placeholder"]
        assert all(isinstance(value, torch.Tensor) and all(isinstance(d, int) for d in value.shape)
                   for value in inputs)


def test_per_layer_profile_covers_every_module(tmp_path, capfd):
    data = _run_json(tmp_path, TINY, "--iters", "2", "--warmup", "1", "--per-layer")
    # torch's profiler ran twice (the memory check, the layers) and wrote nothing to stderr
    assert "USDT:" not in capfd.readouterr().err
    row = data["rows"][0]
    layers = {layer["path"]: layer for layer in row["layers"]}
    assert layers["stem.conv"]["measured_seconds"] > 0 and layers["fc"]["measured_seconds"] > 0
    assert layers["mixed.concat"]["measured_seconds"] is None        # merges are not modules
    assert "aux.conv" not in layers                                   # no aux head at inference
    assert row["profiled_total_seconds"] >= max(l["measured_seconds"] or 0 for l in row["layers"])


def test_kineto_s_lines_are_dropped_and_everything_else_on_stderr_passed_on(capfd):
    """torch's profiler (kineto, in C++) writes a line to descriptor 2 as a profile starts and
    stops; bench drops those lines only: what anything else writes meanwhile, at the descriptor
    or through sys.stderr, still comes out."""
    import os

    from inception_analyzer.bench.profiler import without_kineto_chatter
    with without_kineto_chatter():
        os.write(2, b"USDT:2026-11-29 12:21:55 21881:21881 SyncActivityProfilerHandler.cpp:52] profiler_start\n")
        os.write(2, b"a warning from C++\n")
        print("a warning from Python", file=sys.stderr)
        os.write(2, b"STAGE:2026-11-29 12:22:03 21887:21887 SyncActivityProfilerHandler.cpp:51] Completed Stage\n")
    assert sorted(capfd.readouterr().err.splitlines()) == ["a warning from C++", "a warning from Python"]


@pytest.mark.skipif(not (shutil.which("g++") or shutil.which("c++")), reason="torch.compile needs a C++ compiler")
def test_compiled_model_is_timed(tmp_path):
    data = _run_json(tmp_path, TINY, "--compile", "--iters", "2", "--warmup", "0")
    assert data["settings"]["compile"] is True and data["rows"][0]["ours"]["status"] == "ok"


def test_torchvision_peer_runs_in_the_same_run(tmp_path, torchvision):
    data = _run_json(tmp_path, spec_path("alexnet"), "--iters", "2", "--warmup", "1")
    row = data["rows"][0]
    assert row["torchvision"]["status"] == "ok"
    assert row["ours_over_torchvision"] == pytest.approx(
        row["ours"]["images_per_second"] / row["torchvision"]["images_per_second"])
    low, high = row["ours_over_torchvision_ci95"]
    assert low <= row["ours_over_torchvision"] <= high


def test_measurement_share_of_peak():
    m = Measurement("ours", "ok", batch=4, timing=TimingStats((0.5, 0.5, 0.5)), model_flops=2e9, peak_flops=1e10)
    # 2e9 FLOP in 0.5 s = 4e9 FLOP/s = 40% of 1e10; 4 images / 0.5 s = 8 images/s
    assert (m.achieved_flops, m.peak_share, m.images_per_second) == (4e9, 0.4, 8.0)


def test_a_peak_grows_its_problem_only_while_a_run_stays_short(monkeypatch):
    """The CPU's peak is timed from small problems up, and stops growing at the first size whose
    run takes over SLOW_RUN: bf16 without AVX-512 BF16 multiplies two 2048 x 2048 matrices in a
    minute (0.3 GFLOP/s on a Zen 3), and ten of them held `bench --dtype bf16` for ten."""
    monkeypatch.setattr(machine, "PEAK_RUN_BUDGET", 0.05)
    tried = []

    def work(size):   # 1e9 FLOPs a size, in 0.03 s a size: 0.03 and 0.06 s are short, 0.12 s is not
        tried.append(size)
        return 1e9 * size, lambda: time.sleep(0.03 * size)

    peak = machine.growing_peak((1, 2, 4, 8), work)
    assert tried == [1, 2, 4]
    assert 0.8 * 1e9 / 0.03 < peak <= 1e9 / 0.03      # every size runs 1e9 FLOPs in 0.03 s


def test_a_best_time_stops_at_its_budget_after_one_timed_run():
    calls = []
    assert machine.best_seconds(lambda: calls.append(time.sleep(0.02)), runs=10, budget=0.001) >= 0.02
    assert len(calls) == 2            # the warm-up and one timed run


@pytest.mark.parametrize("argv, error", [
    (["--profile", "h10", "--iters", "1"], ProfileError),
    (["--compile-mode", "max-autotune"], BenchError),
    (["--set", "no_such_argument=1"], AnalyzerError),
])
def test_user_errors_are_analyzer_errors(argv, error):
    with pytest.raises(error) as caught:
        bench_command.run(_args(TINY, "--device", "cpu", *argv))
    assert isinstance(caught.value, AnalyzerError)
    if error is ProfileError:
        assert "did you mean 'h100'" in str(caught.value)


@pytest.mark.parametrize("batch", ["0", "1,x", ""])
def test_bad_batch_lists_are_rejected_by_the_parser(batch):
    with pytest.raises(SystemExit):
        _args(TINY, "--batch", batch)


# ----------------------------------------------------------------------------- the package's layering
def test_bench_imports_nothing_from_the_layers_below_it():
    """bench/ measures; the renderers and the commands read its records, never the reverse."""
    below = ("inception_analyzer.cli", "inception_analyzer.commands", "inception_analyzer.render")
    for module in sorted((ROOT / "inception_analyzer" / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                package = ["inception_analyzer", "bench"][:max(0, 3 - node.level)] if node.level else []
                base = ".".join(package + ([node.module] if node.module else []))
                imported = [base] if node.module else [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in imported:
                assert not name.startswith(below), f"bench/{module.name} imports {name}"


def test_records_and_their_renderer_stay_torch_free():
    code = ("import sys; import inception_analyzer.bench, inception_analyzer.bench.records, "
            "inception_analyzer.render.bench, inception_analyzer.commands.bench; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_progress_names_the_setting_and_the_time_left(monkeypatch):
    clock = iter([100.0, 130.0, 130.0])    # the run starts at 100 s; the second row starts at 130 s
    monkeypatch.setattr("inception_analyzer.bench.progress.time.monotonic", lambda: next(clock))
    stream = io.StringIO()
    progress = Progress(4, "inference, bf16, contiguous", enabled=True, stream=stream)
    progress.start("v3 batch 1 ours")
    progress.start("v3 batch 32 ours")     # one row of four done in 30 s: three more, 1:30
    assert "[2/4] (inference, bf16, contiguous, about 1:30 left) v3 batch 32 ours" in stream.getvalue()


def test_a_busy_machine_is_said_to_make_the_figures_unreliable():
    from inception_analyzer.bench.records import MachineLoad
    from inception_analyzer.render.bench import render_bench

    quiet = MachineLoad(cores=2, own_threads=2, samples=[1.9, 2.3])    # the run's own two threads
    busy = MachineLoad(cores=2, own_threads=2, samples=[2.0, 3.3])     # the case: 3.3 on 2 cores
    assert not quiet.busy and busy.busy and busy.others == pytest.approx(1.3)
    ours = Measurement("ours", "ok", batch=1, timing=TimingStats((0.010, 0.011)))
    row = BenchRow("t.yaml", "t", 1, None, 0, None, ours, None)
    for load, said in ((quiet, False), (busy, True)):
        report = BenchReport(BenchSettings(CPU), {"device": "cpu"}, None, "no profile", [row], load)
        assert ("the machine was busy: its load average reached 3.30 on 2 core(s)" in render_bench(report)) == said
        assert json.loads(render_bench(report, "json"))["machine_load"]["busy"] == said
