"""`calibrate` on its tiny grid (--quick: seconds), the profile it writes, and `bench --profile` with
it: the prediction beside each measurement, measured / estimate against it where it applies and
against the roofline where it does not. The fitted figures of a quick run on a shared 2-core
machine are not checked (they are not a prediction); their form and plumbing are."""
from __future__ import annotations

import dataclasses
import json
import math

import pytest

torch = pytest.importorskip("torch")

from conftest import ROOT, spec_path  # noqa: E402 - after the torch skip
from inception_analyzer.analysis.latency import CurveEntry, EfficiencyEntry  # noqa: E402
from inception_analyzer.analysis.latency_file import profile_text, read_profile  # noqa: E402
from inception_analyzer.analysis.latency import CURVE, EFFICIENCY, NATIVE, QUEUE, SYNC, Sample  # noqa: E402
from inception_analyzer.bench.timing import time_on_device  # noqa: E402
from inception_analyzer.analysis.latency import Roofs  # noqa: E402
from inception_analyzer.bench.calibrate import (IN_MODEL_NETWORKS, MAX_CASE_MACS, MAX_ELEMENTS,  # noqa: E402
                                                MOST_ELEMENTS, CaseLimits, MemoryWatch, Normals, calibration_cases,
                                                case_limits, fit_entries, in_model_counts, native_rule)
from inception_analyzer.bench.machine import MemoryProbe, cpu_identity, last_level_cache_bytes  # noqa: E402
from inception_analyzer.bench.limits import BenchError  # noqa: E402
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


def test_the_profile_records_the_memorys_speed_while_it_was_calibrated(quick_profile):
    looked = read_profile(quick_profile).calibration
    if last_level_cache_bytes() is None:          # no cache to be beyond: nothing looked at
        assert "memory_looks" not in looked
        return
    assert looked["memory_looks"] >= 2                            # at the first case and the end at least
    assert 0 < looked["memory_gbps_lowest"] <= looked["memory_gbps_median"] <= looked["memory_gbps_highest"]


def test_each_look_at_the_overheads_is_recorded_against_the_fitted_overheads(quick_profile):
    """The overheads are timed in three looks through the run; the profile records each look's
    times over the fitted overheads (the median over entries), so a look in a slow spell shows."""
    from types import SimpleNamespace

    from inception_analyzer.bench.calibrate import overheads_by_look

    looked = read_profile(quick_profile).calibration
    assert {key for key in looked if key.startswith("overheads_look_")} == {f"overheads_look_{n}" for n in (1, 2, 3)}
    entries = {"a": SimpleNamespace(overhead=10e-6), "b": SimpleNamespace(overhead=20e-6)}
    by_look = {1: {"a": [10e-6, 12e-6], "b": [20e-6]},          # a: 11 / 10, b: 20 / 20 -> median 1.05
               2: {"a": [20e-6, 20e-6], "b": [40e-6], "a native": [1e-6]},   # a slow spell: twice; no entry of its own
               3: {"a": [9e-6]}}
    assert overheads_by_look(by_look, entries) == {"overheads_look_1": 1.05, "overheads_look_2": 2.0,
                                                   "overheads_look_3": 0.9}


def test_the_watch_looks_once_a_second_and_sums_up_by_hand():
    watch = MemoryWatch()
    speeds = iter([40e9, 80e9, 45e9, 44e9])
    watch.probe = lambda: next(speeds)
    watch.look()
    watch.look()                                  # within the second: no look
    watch.look(now=True)
    watch.look(now=True)
    assert watch.speeds == [40e9, 80e9, 45e9]
    assert watch.summary() == {"memory_looks": 3, "memory_gbps_lowest": 40.0, "memory_gbps_median": 45.0,
                               "memory_gbps_highest": 80.0}
    watch.probe = None                            # no cache to be beyond: the watch never looks
    watch.look(now=True)
    assert len(watch.speeds) == 3


def test_the_memory_probe_agrees_with_a_copy_timed_apart():
    """The probe's bytes/s against numpy copying the same bytes, timed here: the same memory,
    measured by other code (a shared machine's memory moves by half at times: within x3)."""
    import time

    import numpy as np

    probe = MemoryProbe()
    source = np.ones(probe.source.numel(), dtype=np.float32)
    target = np.empty_like(source)
    np.copyto(target, source)
    times = []
    for _ in range(3):
        start = time.perf_counter()
        np.copyto(target, source)
        times.append(time.perf_counter() - start)
    apart = 2 * source.nbytes / sorted(times)[1]
    assert apart / 3 < probe() < apart * 3


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
    report = json.loads(capsys.readouterr().out)
    row = report["rows"][0]
    assert row["prediction"]["seconds"] > 0
    # after the rows, the profile's check cases: each timed beside its price, and the verdict
    check = report["machine_check"]
    assert len(check["cases"]) == 9 and check["verdict"].startswith("the ")
    assert all(case["measured_over_priced"] == pytest.approx(case["measured_seconds"] / case["priced_seconds"])
               for case in check["cases"])
    assert row["measured_over_estimate"] == pytest.approx(row["ours"]["p50_seconds"] / row["prediction"]["seconds"])
    assert row["measured_over_roofline"] == pytest.approx(row["ours"]["p50_seconds"] / row["estimate"]["seconds"])
    assert main([*common, "--per-layer"]) == 0
    table = capsys.readouterr().out
    assert "predicted" in table and "measured / predicted" in table
    assert "the profile's check cases (calibrate --check): the machine" in table
    per_layer = table[table.index("forward pass per layer"):]
    header = next(line for line in per_layer.splitlines() if line.startswith("layer "))
    assert header.split()[:6] == ["layer", "op", "estimate", "bound", "predicted", "measured"]
    # channels_last is not what the profile was fitted to: no prediction, and the output says so
    assert main([*common, "--channels-last", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"][0]["prediction"] is None and "channels_last" in report["prediction_note"]
    assert report["machine_check"] is None                 # no prediction, nothing to check it against
    assert report["rows"][0]["measured_over_estimate"] == report["rows"][0]["measured_over_roofline"]


def test_a_profile_from_another_cpu_prices_nothing_here_and_says_why(quick_profile, tmp_path, capsys):
    """A profile records the CPU it was calibrated on (family, model, the vector instructions torch
    uses); bench on another CPU keeps its measurements and drops the prediction, saying why. The
    recorded text comes from a file, so it reaches the table only as visible text."""
    profile = read_profile(quick_profile)
    assert profile.machine["cpu"] == cpu_identity() and cpu_identity().endswith(
        torch.backends.cpu.get_cpu_capability())
    elsewhere = "GenuineIntel family 6 model 143 stepping 8, AMX \x1b[31m|*x*"
    moved = tmp_path / "elsewhere.yaml"
    moved.write_text(profile_text(dataclasses.replace(profile, machine={**profile.machine, "cpu": elsewhere})))
    tiny = str(ROOT / "tests" / "data" / "tiny_inception.yaml")
    common = ["bench", tiny, "--device", "cpu", "--batch", "2", "--iters", "2", "--warmup", "1", "--no-torchvision"]
    assert main([*common, "--profile", str(moved), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"][0]["prediction"] is None and report["rows"][0]["ours"]["p50_seconds"] > 0
    assert f"this CPU is {cpu_identity()}, the profile's GenuineIntel" in report["prediction_note"]
    assert main([*common, "--profile", str(moved), "--format", "markdown"]) == 0
    note = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("NOTE"))
    assert "\x1b" not in note and "\\|\\*x\\*" in note
    assert main([*common, "--profile", str(quick_profile), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["prediction_note"] is None


def test_layers_alone_prices_a_chain_with_the_profile(quick_profile):
    """benchmarks/layers_alone.py: each model whole and layer by layer alone, beside the profile's price."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "layers_alone.py"), "--profiles",
                             f"{quick_profile},{quick_profile}", "--models", "chain:8x4@1,units:8:8:4:4@2",
                             "--min-time", "0.001", "--whole-time", "0.01"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| chain:")]
    rows += [line for line in result.stdout.splitlines() if line.startswith("| units:")]
    assert [row.split(" | ")[:2] for row in rows] == [["| chain:8x4", "1"], ["| units:8:8:4:4", "2"]]
    assert all(row.split(" | ")[4].endswith(" us") for row in rows)     # what the whole takes beyond its layers
    spreads = [line for line in result.stdout.splitlines() if line.startswith(str(quick_profile))]
    assert len(spreads) == 2 and spreads[0] == spreads[1] and "spread" in spreads[0]


def test_fresh_pages_counts_a_pass_s_faults_beside_the_simulation(quick_profile):
    """benchmarks/fresh_pages.py: a model's steady passes, each in a process of its own, their page
    faults beside the simulation's fresh bytes for that pass (the profile's allocator settings)."""
    import subprocess
    import sys

    import inception_analyzer
    from inception_analyzer.analysis.allocator import fresh_bytes
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "fresh_pages.py"), "--profile", str(quick_profile),
                             "--models", "googlenet", "--batch", "1,8", "--passes", "2"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows = [line.split(" | ") for line in result.stdout.splitlines() if line.startswith("| googlenet")]
    assert [row[1] for row in rows] == ["1", "8"]
    graph = inception_analyzer.analyze("googlenet").graph
    for row, batch in zip(rows, (1, 8)):
        simulated = sum(fresh_bytes(graph, batch, 4, read_profile(quick_profile).allocator).values()) / 2**20
        assert row[2] == f"{simulated:,.1f} MiB"
        assert float(row[3].split()[0].replace(",", "")) >= 0          # the median pass's faults, in MiB


def test_layers_in_model_times_every_layer_where_it_runs_beside_its_price(quick_profile):
    """benchmarks/layers_in_model.py: every main-path layer of a network with auxiliary heads
    (googlenet: its inference lines run under `if not self.training:`) timed once in the model,
    grouped by the entry that priced it, its price alone as the prediction's."""
    import subprocess
    import sys

    import inception_analyzer
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "layers_in_model.py"), "--profile",
                             str(quick_profile), "--models", "googlenet@1", "--passes", "2", "--rate", "bn:0:1000"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("googlenet at batch 1: ") for line in lines)
    # | entry | layers | in the model | priced alone | in a model | fresh pages | measured / priced |
    table = [line.split(" | ") for line in lines if line.startswith("| ") and not line.startswith("| entry")]
    rows = {cells[0][2:]: cells[1:] for cells in table}
    left_out = next((line for line in lines if line.startswith("left out")), "")
    prediction = inception_analyzer.analyze("googlenet").predict(read_profile(quick_profile), 1)
    priced: dict[str, list[float]] = {}
    for layer in prediction.layers:
        if f" {layer.path} (" not in left_out:
            priced.setdefault(layer.via or layer.entry, []).append(layer.overhead_seconds + layer.kernel_seconds)
    assert sum(int(cells[0]) for cells in rows.values()) + left_out.count(" MiB, ") == len(prediction.layers)
    for entry, prices in priced.items():
        assert int(rows[entry][0]) == len(prices)
        assert rows[entry][2] == f"{sum(prices) * 1e3:,.2f} ms", entry
    assert any(line.startswith("bn, ") and "ns a byte" in line for line in lines)


def test_the_grid_orders_overheads_first_and_again_through_the_run_and_spreads_each_series():
    """Every entry's overhead is timed before any sample, and again at a third and two thirds of
    the samples: a slow spell in the run's first seconds no longer sets every one of them."""
    from inception_analyzer.bench.calibrate import OVERHEAD_LOOKS

    cases = calibration_cases("full")
    samples = [case for case in cases if not case.overhead]
    overheads = [i for i, case in enumerate(cases) if case.overhead]
    each = len(overheads) // OVERHEAD_LOOKS
    assert OVERHEAD_LOOKS == 3 and len(overheads) == 3 * each
    for look in range(OVERHEAD_LOOKS):
        block = overheads[look * each:(look + 1) * each]
        assert block == list(range(block[0], block[0] + each))      # the look's overheads one after another
        assert [cases[i] for i in block] == [cases[i] for i in overheads[:each]]   # the same cases each look
        assert block[0] - look * each == round(look * len(samples) / 3)          # after a third of the samples
    relu = [case.batch * case.inputs[0][0] * case.inputs[0][1] * case.inputs[0][2]
            for case in cases if case.op == "relu" and not case.overhead and not case.in_place]
    assert relu[:2] == [min(relu), max(relu)]                    # a curve's ends first
    assert len(relu) == len(set(relu))


def test_a_run_cut_late_loses_the_same_share_of_every_series():
    """The time budget cuts the grid's last cases: every series keeps its first samples whatever
    the cut, and a late cut takes each series' share of what it takes, not the longest series'
    samples alone (those are the dense 1x1 and 3x3 classes that price most of a model)."""
    from collections import Counter

    from inception_analyzer.bench.calibrate import LEAD_SAMPLES, _series_of

    samples = [case for case in calibration_cases("full") if not case.overhead]
    whole = Counter(map(_series_of, samples))
    lead = sum(min(count, LEAD_SAMPLES) for count in whole.values())
    first = Counter(map(_series_of, samples[:lead]))
    assert all(first[series] == min(count, LEAD_SAMPLES) for series, count in whole.items())
    for cut in (69, 300):                         # the 18:23 calibration's cut, and a busier machine's
        share = cut / (len(samples) - lead)       # of the samples after the lead ones
        kept = Counter(map(_series_of, samples[:-cut]))
        for series, count in whole.items():
            assert kept[series] >= min(count, LEAD_SAMPLES)
            assert kept[series] >= LEAD_SAMPLES + (count - LEAD_SAMPLES) * (1 - share) - 1, series


def test_the_grid_times_gates_on_1x1_maps_and_small_batch_1_inputs_as_series_of_their_own():
    cases = calibration_cases("full")
    gates = [case for case in cases if case.series == "gate"]
    assert gates and all(case.inputs[0][1:] == (1, 1) and case.args["kernel"] == [1, 1] for case in gates)
    assert {case.batch for case in gates} >= {1, 8, 32}
    small = [case for case in cases if case.series == "small"]
    assert all(case.batch == 1 and case.args["groups"] == 1 for case in small)
    assert {tuple(case.args["kernel"]) for case in small} >= {(1, 1), (3, 3), (1, 7), (7, 1)}
    # spread over the run, not timed one after another at its end: a slow spell of a shared
    # machine would otherwise fall on one entry whole
    positions = [i for i, case in enumerate(cases) if case.series == "small"]
    assert positions[0] < len(cases) // 4


def test_every_op_kind_of_the_registry_is_timed_by_the_grid_as_a_model_s_layer_of_it_is_keyed():
    """A layer of every op kind (but the input and an opaque import, which no calibration can
    time) finds an entry of its own in a full calibration: its key is one the grid's cases are
    filed under. A new op kind fails here until the grid times it."""
    from inception_analyzer.analysis.latency import layer_work
    from inception_analyzer.bench.calibrate import case_work
    from inception_analyzer.graph import runs_in_place
    from inception_analyzer.ops import OPS
    from inception_analyzer.pipeline import Request, analyze

    graph = analyze(Request(str(ROOT / "tests" / "data" / "every_op.yaml"))).graph
    layers = list(graph.layers())
    assert {node.op.name for node in layers} == set(OPS) - {"input", "opaque"}
    timed = {case_work(case)[4].key for case in calibration_cases("full")}
    keys = {node.path: layer_work(node.op, node.args, list(node.in_shapes), node.out_shape, 1,
                                  runs_in_place(graph, node)).key for node in layers}
    assert {path: key for path, key in keys.items() if key not in timed} == {}
    assert {"upsample nearest", "upsample bilinear", "global_avgpool global", "channel_shuffle", "layer_norm",
            "layer_scale", "pad", "softmax", "conv 1x1/1"} <= set(keys.values())     # channel_linear: a 1x1's


def test_each_op_kind_s_case_runs_through_the_registry_s_own_module():
    """Every series' overhead case (its smallest tensors) is prepared and called as calibrate
    times it: the op kind's module, merge or parameter, filed under its layer's key."""
    import torch
    from inception_analyzer.analysis.roofline import DeviceProfile
    from inception_analyzer.bench.calibrate import case_work, prepare

    roofs = DeviceProfile("test", "", {"fp32": 1e11}, 1e10, 1e10)
    normals = Normals(2**12)
    cases = [case for case in calibration_cases("full") if case.overhead and case.op != "conv"]
    assert {case.op for case in cases} >= {"layer_scale", "upsample", "softmax", "channel_shuffle", "chunk"}
    for case in cases:
        prepared = prepare(case, torch.device("cpu"), torch.float32, roofs, "fp32", normals)
        with torch.inference_mode():
            result = prepared.step()
        _, arguments, _, out, work = case_work(case)
        if case.op != "(copy)":
            assert tuple(result.shape[1:]) == tuple(out), case.describe()
        assert prepared.key in (work.key, "copy"), case.describe()


def conv_case_macs(case):
    channels, height, width = case.inputs[0]
    (kh, kw), (ph, pw), stride = case.args["kernel"], case.args["padding"], case.args["stride"]
    out = ((height + 2 * ph - kh) // stride + 1) * ((width + 2 * pw - kw) // stride + 1)
    return case.batch * case.args["out"] * out * channels // case.args["groups"] * kh * kw


def test_every_conv_case_stays_within_its_multiply_adds_on_the_output_it_makes():
    """A case's multiply-adds bound its time (MAX_CASE_MACS), counted on the output its input grid
    gives: a grid raised to the kernel's size (7x7 for a 7x7 kernel) makes a larger output than
    the one the design drew."""
    macs = [conv_case_macs(case) for case in calibration_cases("full") if case.op == "conv"]
    assert MAX_CASE_MACS / 2 < max(macs) <= MAX_CASE_MACS


# the roofs calibrate measured on the development CPU (a Zen 3 guest) and on the H200 of docs/benchmarks.md
DEVELOPMENT_CPU = Roofs(172.2e9, 172.2e9, 27.06e9)
H200 = Roofs(51.46e12, 974.5e9, 4208e9, 150_109_880_000)


def test_a_device_no_faster_than_the_development_cpu_keeps_the_grid_as_it_is():
    assert case_limits(DEVELOPMENT_CPU, 4) == CaseLimits(MAX_CASE_MACS, MAX_ELEMENTS)
    assert calibration_cases("full", case_limits(DEVELOPMENT_CPU, 4)) == calibration_cases("full")


def test_a_fast_device_s_limits_grow_with_its_roofs_up_to_what_cnns_reach_and_what_its_memory_holds():
    assert case_limits(H200, 4) == CaseLimits(51.46e12 * 0.05 / 2, MOST_ELEMENTS)
    small = dataclasses.replace(H200, memory_bytes=2 * 2**30)          # 2 GiB: a case's tensors a few of 256 MiB
    assert case_limits(small, 4).elements == 2**26
    cases = calibration_cases("full", case_limits(H200, 4))
    largest = max(case.batch * math.prod(shape) for case in cases for shape in case.inputs)
    assert MAX_ELEMENTS < largest <= MOST_ELEMENTS


def test_a_fast_device_s_grid_reaches_the_convolutions_vgg16_runs_at_batch_32():
    """Nine of vgg16's thirteen 3x3 convolutions do 5.9e10 or 1.2e11 FLOPs a call at batch 32:
    beyond every sample of their class in the development CPU's grid (where such a call takes up
    to a third of a second), among the samples of the H200's."""
    from inception_analyzer.analysis.latency import layer_work
    from inception_analyzer.bench.calibrate import case_work
    from inception_analyzer.graph import main_layers
    from inception_analyzer.pipeline import Request, analyze

    layers = [layer_work(layer.node.op, layer.node.args, list(layer.node.in_shapes), layer.node.out_shape, 32)
              for layer in main_layers(analyze(Request("vgg16")).graph)]
    flops = [work.flops for work in layers if work.key == "conv 3x3/1" and work.flops > 5e10]
    assert len(flops) == 9

    def sampled(roofs):
        works = [case_work(case)[4] for case in calibration_cases("full", case_limits(roofs, 4)) if not case.overhead]
        return [work.flops for work in works if work.key == "conv 3x3/1"]

    assert min(flops) > max(sampled(DEVELOPMENT_CPU))
    assert max(flops) < max(sampled(H200))
    assert sum(1 for value in sampled(H200) if value > min(flops)) >= 3


def test_a_case_s_inputs_are_copies_of_one_pool_of_normals_drawn_once():
    """Each input is its own copy of a stretch of the pool (writing it leaves the pool as it
    was), the inputs of one case consecutive stretches, from the pool's start again where the
    next would run past its end; an input larger than the pool is refused."""
    import torch
    normals = Normals(2**16)
    pool = normals.pool.clone()
    assert abs(float(pool.mean())) < 0.02 and abs(float(pool.std()) - 1) < 0.02    # standard normal
    first, second = normals.inputs(2, [(3, 10, 10), (2, 10, 10)], torch.device("cpu"), torch.float32)
    assert first.shape == (2, 3, 10, 10) and second.shape == (2, 2, 10, 10)
    assert torch.equal(first.flatten(), pool[:600]) and torch.equal(second.flatten(), pool[600:1000])
    first.zero_()
    assert torch.equal(normals.pool, pool)
    wide, again = normals.inputs(1, [(40000,), (30000,)], torch.device("cpu"), torch.float64)
    assert again.dtype == torch.float64 and torch.equal(again.flatten(), pool[:30000].double())
    with pytest.raises(BenchError, match="larger than the pool"):
        normals.inputs(1, [(2**16 + 1,)], torch.device("cpu"), torch.float32)


def conv_args(kernel, groups=1, stride=1):
    return {"kernel": list(kernel), "stride": stride, "padding": [kernel[0] // 2, kernel[1] // 2], "groups": groups}


def test_the_native_rule_probed_is_torchs_own():
    """torch's rule (aten/src/ATen/native/Convolution.cpp, use_mkldnn): with more than one thread,
    an fp32 convolution runs on oneDNN unless it is a batch-1 call, ungrouped, with a kernel not
    larger than 3 in both dimensions, on an input of at most 20,480 elements."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        pointwise, square = native_rule(conv_args((1, 1)), torch.float32), native_rule(conv_args((3, 3)), torch.float32)
        assert pointwise[0] == (1, 20480) and all(most == 0 for _, most in pointwise[1:])
        # probed by the width of a 3-row input: the widest within 20,480 holds 20,478
        assert square[0][0] == 1 and 20480 - 3 < square[0][1] <= 20480 and square[1] == (2, 0)
        assert native_rule(conv_args((1, 7)), torch.float32)[0] == (1, 20480)
        assert native_rule(conv_args((5, 5)), torch.float32) == ()                 # both sides above 3
        assert native_rule(conv_args((3, 3), groups=8), torch.float32) == ()       # grouped
    finally:
        torch.set_num_threads(threads)


def _samples(key: str, count: int) -> list[Sample]:
    return [Sample(key, (10 + i) * 1e-6, 2e6 * (i + 1), {"in_channels": 16.0 * (i + 1), "out_channels": 32.0,
                                                        "pixels": 64.0, "groups": 1.0, "work": 2e6 * (i + 1)})
            for i in range(count)]


def test_a_class_keeps_its_native_entry_only_with_samples_enough_on_both_kernels():
    models = {"conv 1x1/1": EFFICIENCY, "conv 1x1/1" + NATIVE: EFFICIENCY}
    both = fit_entries(_samples("conv 1x1/1", 6) + _samples("conv 1x1/1" + NATIVE, 5), {}, dict(models), SYNC)
    assert both.keys() == {"conv 1x1/1", "conv 1x1/1 native"}
    assert both["conv 1x1/1"].samples == 6 and both["conv 1x1/1 native"].samples == 5
    merged = fit_entries(_samples("conv 1x1/1", 6) + _samples("conv 1x1/1" + NATIVE, 2), {}, dict(models), SYNC)
    assert merged.keys() == {"conv 1x1/1"} and merged["conv 1x1/1"].samples == 8


def test_on_a_queue_device_each_entry_keeps_the_hosts_time_by_size_and_on_a_cpu_none():
    """A queue device's calibration times the host at every case: each entry gets a host curve
    (a class's by FLOPs, a curve's by its feature); a CPU's, whose host runs the call, none."""
    hosted = [dataclasses.replace(s, host=(20 + i) * 1e-6) for i, s in enumerate(_samples("conv 1x1/1", 6))]
    curve = [Sample("bn", (5 + i) * 1e-6, size=1024.0 * 2**i, host=(8 + i) * 1e-6) for i in range(3)]
    models = {"conv 1x1/1": EFFICIENCY, "bn": CURVE}
    queued = fit_entries(hosted + curve, {key: [5e-6] for key in models}, dict(models), QUEUE)
    # six samples, six runs of one: FLOPs 2e6 .. 12e6, host 20 .. 25 us
    assert queued["conv 1x1/1"].host == tuple((2e6 * (i + 1), pytest.approx((20 + i) * 1e-6)) for i in range(6))
    assert queued["bn"].host == tuple((1024.0 * 2**i, pytest.approx((8 + i) * 1e-6)) for i in range(3))
    synced = fit_entries(hosted + curve, {key: [5e-6] for key in models}, dict(models), SYNC)
    assert synced["conv 1x1/1"].host == () and synced["bn"].host == ()


def test_on_a_cpu_time_on_device_times_each_call_and_no_host():
    calls = []
    samples, host = time_on_device(lambda: calls.append(1), torch.device("cpu"), 7)
    assert len(samples) == 7 == len(calls) and host == 0.0 and all(s >= 0 for s in samples)


def test_an_entry_without_samples_is_left_out_unless_it_is_a_view():
    """A class needs samples to be fitted, and a curve whose every case the time budget cut has
    none: neither gets an entry (its layers are then priced by the nearest entry or the fallback,
    as a missing entry's are), while a view's overhead is all it costs, samples or none."""
    models = {"conv 1x1/1": EFFICIENCY, "conv 3x3/1": EFFICIENCY, "relu": CURVE, "flatten": CURVE,
              "conv 7x1/1" + NATIVE: EFFICIENCY, "conv 7x1/1": EFFICIENCY}
    overheads = {key: [5e-6] for key in models}
    entries = fit_entries(_samples("conv 1x1/1", 6), overheads, dict(models), SYNC, untimed={"relu", "conv 3x3/1"})
    assert entries.keys() == {"conv 1x1/1", "flatten"}
    assert entries["flatten"].points == () and entries["flatten"].overhead == 5e-6


def test_a_calibration_cut_by_its_time_budget_says_what_it_left_untimed(tmp_path):
    """A run cut short times the overheads and what the budget leaves, then fits and writes a
    profile whose left-out entries are named, and which still predicts every bundled model,
    naming in its notes the left-out entries a model's layers needed (every window taken as
    quiet: nothing is timed twice). Which entries the budget leaves out depends on the machine's
    speed (a Zen 4 timed all of googlenet's within it), so each left-out entry is checked on a
    layer of its own grid: priced by the nearest entry of its kind or the fallback."""
    from inception_analyzer.analysis.latency import FALLBACK, NEAREST, predict, predict_layer
    from inception_analyzer.bench.calibrate import calibrate, calibration_cases, case_work
    from inception_analyzer.catalog import bundled_names
    from inception_analyzer.pipeline import Request, analyze

    run = calibrate(torch.device("cpu"), "fp32", "full", max_seconds=12.0, quiet=1.0)
    looked = run.profile.calibration
    assert looked["cut_by_time_budget"] > 0 and looked["retaken_when_disturbed"] == 0
    assert run.left_out and not set(run.left_out) & run.profile.entries.keys()
    assert looked["entries_left_without_samples"].startswith(run.left_out[0])
    assert all(entry.samples > 0 or not entry.points for entry in run.profile.entries.values()
               if isinstance(entry, CurveEntry))
    (tmp_path / "cut.yaml").write_text(profile_text(run.profile))
    cut = read_profile(tmp_path / "cut.yaml")
    works = {}
    for case in calibration_cases("full"):
        work = case_work(case)[4]
        works.setdefault(work.key, work)
    for entry in run.left_out:
        how, _, _, overhead, kernel, _ = predict_layer(works[entry], cut, 1e-3)
        assert how in (NEAREST, FALLBACK) and overhead + kernel > 0, entry
    for name in bundled_names():
        model = analyze(Request(name))
        prediction = predict(model.graph, model.cost, cut, 8)
        assert prediction.seconds > 0, name
        lacking = {layer.entry for layer in prediction.layers} & set(run.left_out)
        named = " ".join(note for note in prediction.notes if "no entry for" in note)
        assert all(entry in named for entry in lacking), (name, lacking, named)


def test_on_a_machine_never_quiet_the_waits_come_out_of_the_time_budget():
    """Every window taken as disturbed: before, each waited up to a minute, 600 s in all; now the
    waits come out of the budget, and the run ends with a profile or, with too few samples left,
    with the one-line error, soon after the budget either way."""
    import time

    from inception_analyzer.bench.calibrate import calibrate

    started = time.monotonic()
    try:
        run = calibrate(torch.device("cpu"), "fp32", "full", max_seconds=8.0, quiet=-1.0)
    except BenchError as err:
        assert "too few to fit a profile" in str(err)
    else:
        assert run.profile.calibration["waited_for_quiet_seconds"] <= 8
        assert run.profile.calibration["retaken_when_disturbed"] > 0
    assert time.monotonic() - started < 8 + 60       # the fits and the in-model networks take about 10 s


def test_a_budget_too_short_to_fit_a_profile_is_one_line(tmp_path, capsys):
    assert main(["calibrate", "--max-seconds", "0.001", "-o", str(tmp_path / "p.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "too few to fit a profile: give --max-seconds more" in err
    assert not (tmp_path / "p.yaml").exists()


def test_calibrate_times_the_full_grid_within_its_budget_unless_told_otherwise(monkeypatch):
    import inception_analyzer.bench.calibrate as calibrating
    from inception_analyzer.bench.limits import TIMING_BUDGET

    asked, real = [], calibrating.calibrate

    def quick_instead(device, dtype, grid, name=None, max_seconds=None):
        asked.append((grid, max_seconds))
        return real(device, dtype, "quick", name=name)

    monkeypatch.setattr(calibrating, "calibrate", quick_instead)
    assert main(["calibrate"]) == 0 and main(["calibrate", "--max-seconds", "400"]) == 0
    assert main(["calibrate", "--quick"]) == 0
    assert asked == [("full", TIMING_BUDGET), ("full", 400.0), ("quick", None)]


def test_the_chain_is_timed_in_slices_spread_over_the_calibration_and_priced_by_their_median(
        quick_profile, monkeypatch):
    """The layer overhead is the chain network's time beyond its layers' prices, a few us a layer
    of a 2 ms call. Its slices come CHAIN_INTERVAL apart over the calibration, and the median slice
    prices it: one slice timed in a slow spell of the machine (here three times the others) moves
    it not at all, where a single timing would have set it."""
    import inception_analyzer.bench.calibrate as calibrating

    profile = read_profile(quick_profile)
    chain = calibrating.ChainTimings(torch.device("cpu"), torch.float32, SYNC)
    chain.look()
    chain.look()                                   # within CHAIN_INTERVAL of the first: no slice
    assert len(chain.slices) == 1 and 0 < chain.slices[0] < 0.1
    from inception_analyzer.analysis.latency import LatencyProfile

    # the entries' prices alone, as layer_overhead's draft has them
    draft = LatencyProfile("draft", "", "cpu", "fp32", SYNC, profile.roofs, profile.forward_overhead, profile.fallback,
                           profile.entries)
    predicted = chain.analysis.predict(draft, 1)
    steady = predicted.seconds + len(predicted.layers) * 5e-6        # 5 us a layer beyond the prices
    arguments = (profile.entries, profile.fallback, profile.forward_overhead, SYNC, profile.roofs, "fp32")

    def overhead_with(slices):
        timed = iter(slices)
        monkeypatch.setattr(calibrating, "time_case", lambda prepared, device, seconds: next(timed))
        fresh = calibrating.ChainTimings(torch.device("cpu"), torch.float32, SYNC)
        value = calibrating.layer_overhead(fresh, *arguments)
        assert len(fresh.slices) == calibrating.CHAIN_LOOKS         # a short run takes its slices at the end
        return value

    assert overhead_with([steady] * 5) == pytest.approx(5e-6, rel=1e-3)
    assert overhead_with([steady, 3 * steady, steady, steady, steady]) == overhead_with([steady] * 5)


def test_on_a_queue_device_a_convolution_s_host_cost_in_a_model_is_fitted_to_networks_of_distinct_shapes(
        quick_profile, monkeypatch):
    """The two networks of twenty units (a 1x1 and a 3x3 convolution, each unit wider than the one
    before: 40 convolutions each, every one of a shape of its own) enqueued whole: what their hosts
    take beyond the draft's host prices, a convolution. A network whose host waited on the device
    says nothing of the host."""
    import inception_analyzer.bench.calibrate as calibrating
    import inception_analyzer.bench.timing as timing
    from inception_analyzer.pipeline import Request, analyze
    from inception_analyzer.spec import load_spec_text

    draft = dataclasses.replace(read_profile(quick_profile), execution=QUEUE, layer_overhead=2e-6, cache_bytes=None)
    priced = []
    for index, (text, batch) in enumerate(calibrating.QUEUE_IN_MODEL_NETWORKS):
        prediction = analyze(Request(load_spec_text(text, f"units {index}"))).predict(draft, batch)
        priced.append(prediction.overhead_seconds + prediction.context_seconds)
    # the hosts take 30 us a convolution more than priced (the first network), 50 us (the second)
    hosts = iter([(priced[0] + 40 * 30e-6, 1e-3, True), (priced[1] + 40 * 50e-6, 1e-3, True)])
    monkeypatch.setattr(timing, "host_and_device_seconds", lambda step, device: next(hosts))
    figure = calibrating.queue_in_model_costs(torch.device("cpu"), torch.float32, draft)
    assert figure == {"weighted_layer_overhead": pytest.approx(40e-6, rel=1e-3)}
    hosts = iter([(priced[0] + 40 * 30e-6, 1e-3, True), (1.0, 1e-3, False)])
    assert calibrating.queue_in_model_costs(torch.device("cpu"), torch.float32, draft) == \
        {"weighted_layer_overhead": pytest.approx(30e-6, rel=1e-3)}


def test_the_in_model_networks_tell_the_three_figures_apart(quick_profile):
    """calibrate solves three figures (a call, a byte of weights, a byte of activations) from three
    networks: each must weigh on its own figure, or the solve would trade one for another."""
    from dataclasses import replace

    from inception_analyzer.pipeline import Request, analyze
    from inception_analyzer.spec import load_spec_text

    draft = replace(read_profile(quick_profile), cache_bytes=32 * 2**20)
    counts = [in_model_counts(analyze(Request(load_spec_text(text, "units.yaml"))), batch, draft)[0]
              for text, batch in IN_MODEL_NETWORKS]
    (calls1, weights1, moved1), (calls2, weights2, moved2), (calls3, weights3, moved3) = counts
    assert calls1 == calls2 == 40 and calls3 == 20                  # the convolutions: 2 or 1 a unit
    # bytes a call: the second network's weights 4 times the first's or more; the third's
    # activations 20 times either small-map network's or more, with its weights the lightest
    assert weights2 / calls2 > 4 * weights1 / calls1 and weights3 / calls3 < weights1 / calls1
    assert moved3 / calls3 > 20 * max(moved1 / calls1, moved2 / calls2)


@pytest.mark.parametrize("arguments, message", [
    (["--device", "meta"], "cpu or cuda"), (["--max-seconds", "0"], "above 0"), (["--threads", "0"], "--threads"),
    (["--dtype", "tf32"], "tf32")])
def test_bad_calibrate_options_are_one_line(arguments, message, capsys):
    assert main(["calibrate", "--quick", *arguments]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err



# ----------------------------------------------------------------------------- calibrate --check
def test_the_check_times_cases_a_full_calibration_prices_by_their_own_entries(quick_profile):
    """Every case `calibrate --check` times is of a kind the full grid fits an entry to, so a full
    profile prices each by a measurement of its own kind; the data-bound ones hold an eighth of
    the profile's cache and four times it."""
    from inception_analyzer.analysis.latency import COPY_KEY
    from inception_analyzer.bench.calibrate import COPY, calibration_cases, case_work
    from inception_analyzer.bench.profile_check import check_cases
    from inception_analyzer.bench.records import BEYOND_CACHE, CONVOLUTIONS, IN_CACHE
    key = lambda case: COPY_KEY if case.op == COPY else case_work(case)[4].key  # noqa: E731
    keys = {key(case) for case in calibration_cases("full")}
    profile = dataclasses.replace(read_profile(quick_profile), cache_bytes=32 * 2**20)
    regimes = []
    for case, regime in check_cases(profile):
        assert key(case) in keys, key(case)
        regimes.append(regime)
        if regime != CONVOLUTIONS:
            mebibytes = case.batch * math.prod(case.inputs[0]) * 4 / 2**20
            assert mebibytes == pytest.approx(4 if regime == IN_CACHE else 128, rel=0.1), case
    assert regimes.count(CONVOLUTIONS) == 3 and regimes.count(IN_CACHE) == regimes.count(BEYOND_CACHE) == 3


def test_the_checks_verdict_names_the_regime_the_machine_left():
    from inception_analyzer.analysis.latency import FALLBACK, FITTED
    from inception_analyzer.bench.records import CheckRow
    from inception_analyzer.render.bench import machine_check_verdict as verdict
    same = [CheckRow("conv", "convolutions", 1.05e-3, 1e-3, FITTED), CheckRow("relu", "beyond cache", 0.9e-3, 1e-3, FITTED)]
    assert verdict(same).startswith("the machine runs as calibrated") and "beyond cache x0.90" in verdict(same)
    slower = [*same, CheckRow("copy", "beyond cache", 2e-3, 1e-3, FITTED)]
    assert "does not run as calibrated" in verdict(slower) and "worst copy x2.00" in verdict(slower)
    assert "read low" in verdict(slower)
    faster = [*same, CheckRow("bn", "in cache", 0.5e-3, 1e-3, FITTED)]
    assert "read high" in verdict(faster)
    # a case priced by the fallback says nothing about the profile's entries
    assert verdict([*same, CheckRow("add", "in cache", 5e-3, 1e-3, FALLBACK)]) == verdict(same)


def test_calibrate_check_prints_each_case_beside_the_profile(quick_profile, capsys):
    assert main(["calibrate", "--check", str(quick_profile)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| conv") or line.startswith("| bn")
            or line.startswith("| relu") or line.startswith("| copy")]
    assert len(rows) == 9
    for row in rows:                      # now and the profile's price, both in ms, and their ratio
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[2].endswith(" ms") and cells[3].split()[1] == "ms" and float(cells[4]) > 0
    assert "the machine" in out.splitlines()[-1] and "calibrated" in out.splitlines()[-1]


def test_calibrate_check_of_a_missing_profile_is_one_line(tmp_path, capsys):
    assert main(["calibrate", "--check", str(tmp_path / "none.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "none.yaml" in err


def test_the_check_prices_each_case_as_the_prediction_prices_such_a_layer(quick_profile):
    """A check row's price is the profile's price of that layer in a model, overhead and kernel
    (predict_layer), and its ratio is what was timed over it."""
    from inception_analyzer.analysis.latency import predict_layer
    from inception_analyzer.bench.calibrate import case_work
    from inception_analyzer.bench.profile_check import check_cases, check_profile
    profile = read_profile(quick_profile)
    rows = check_profile(profile, torch.device("cpu"), min_time=0.001)
    for (case, regime), row in zip(check_cases(profile), rows):
        assert row.regime == regime and row.measured > 0
        if case.op != "(copy)":
            _, _, _, overhead, kernel, _ = predict_layer(case_work(case)[4], profile, 0.0)
            if row.how != "fallback":
                assert row.priced == pytest.approx(overhead + kernel)
        assert row.ratio == pytest.approx(row.measured / row.priced)


def test_calibrate_check_refuses_the_options_of_a_calibration(tmp_path, capsys):
    assert main(["calibrate", "--check", str(tmp_path / "p.yaml"), "-o", str(tmp_path / "q.yaml"), "--quick"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "-o, --quick" in err and not (tmp_path / "q.yaml").exists()
