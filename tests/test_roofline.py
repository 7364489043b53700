"""The roofline estimate (analysis/roofline.py) and its renderer, checked by hand calculation.

Every expected figure is worked out in the comments from the formulas in the module docstring
(compute time = 2 x MACs x batch / matmul peak + other FLOPs x batch / vector peak; bytes =
element size x (batch x (inputs + output) + params); time = the larger) or quoted from the
vendors' datasheets; none is taken from the code's own output. No torch needed.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import inception_analyzer as ia
from conftest import ROOT
from inception_analyzer.analysis.cost import CostReport, LayerCost, Totals
from inception_analyzer.analysis.roofline import (CpuMeasurement, DeviceProfile, ProfileError, device_profile,
                                                  estimate, estimate_layer, layer_bytes,
                                                  measure_cpu_with_numpy, model_flops, optimizer_step_bytes,
                                                  profile_matching, profile_names)
from inception_analyzer.dtypes import DTypeError
from inception_analyzer.errors import AnalyzerError
from inception_analyzer.render.estimate import format_estimate

TINY = str(Path(__file__).parent / "data" / "tiny_inception.yaml")

# A made-up device with round roofs: 100 GFLOP/s fp32 matmul, 400 GFLOP/s bf16, 10 GFLOP/s for
# element-wise work, 10 GB/s of memory bandwidth.
DEVICE = DeviceProfile(name="test", title="test device", matmul_flops={"fp32": 1e11, "bf16": 4e11},
                       vector_flops=1e10, memory_bandwidth=1e10, memory_bytes=10**6)


def layer(path="conv", op="conv", inputs=([4, 8, 8],), output=(8, 8, 8), params=0, macs=0, other=0,
          role="main") -> LayerCost:
    out = list(output)
    return LayerCost(path=path, op=op, args="", role=role, block=path, stage="8x8",
                     input_shapes=[list(s) for s in inputs], output_shape=out, params=params, buffers=0,
                     macs=macs, other_flops=other, fvcore_flops=0, activations=_numel(out), weighted=bool(macs))


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


CONV = layer(params=1000, macs=1_000_000)                                    # in 256, out 512 elements
RELU = layer("relu", "relu", inputs=([8, 8, 8],), other=512)                 # in 512, out 512
AUX_FC = layer("aux.fc", "linear", inputs=([10],), output=(10,), params=110, macs=100, role="aux")


def test_compute_bound_layer_by_hand():
    e = estimate_layer(CONV, DEVICE, "fp32", batch=2)
    # FLOPs: 2 images x 2 x 1e6 MACs = 4e6; at 1e11 FLOP/s: 4e-5 s
    assert e.flops == 4e6
    assert e.compute_seconds == pytest.approx(4e-5)
    # bytes: 4 x (2 x (256 + 512) + 1000) = 4 x 2536 = 10,144; at 1e10 B/s: 1.0144e-6 s
    assert e.bytes == 10_144
    assert e.memory_seconds == pytest.approx(1.0144e-6)
    assert e.bound == "compute" and e.seconds == pytest.approx(4e-5)
    assert e.intensity == pytest.approx(4e6 / 10_144)


def test_compute_bound_layer_in_bf16_halves_the_bytes_and_uses_its_peak():
    e = estimate_layer(CONV, DEVICE, "bf16", batch=2)
    assert e.compute_seconds == pytest.approx(4e6 / 4e11)    # 1e-5 s
    assert e.bytes == 2 * (2 * (256 + 512) + 1000)          # 5,072
    assert e.seconds == pytest.approx(1e-5)


def test_memory_bound_layer_by_hand():
    e = estimate_layer(RELU, DEVICE, "fp32", batch=2)
    # FLOPs: 2 x 512 = 1,024 on the 1e10 vector roof: 1.024e-7 s
    assert e.flops == 1024 and e.compute_seconds == pytest.approx(1.024e-7)
    # bytes: 4 x 2 x (512 + 512) = 8,192 at 1e10 B/s: 8.192e-7 s > 1.024e-7 s
    assert e.bytes == 8192 and e.memory_seconds == pytest.approx(8.192e-7)
    assert e.bound == "memory" and e.seconds == pytest.approx(8.192e-7)


def test_bytes_formula_counts_every_input_of_a_merge():
    concat = layer("cat", "concat", inputs=([4, 2, 2], [4, 2, 2]), output=(8, 2, 2))
    # 4 bytes x 3 images x (16 + 16 + 32) elements
    assert layer_bytes(concat, "fp32", 3) == 4 * 3 * 64


@pytest.mark.parametrize("op, inputs, output", [("flatten", [8, 2, 2], (32,)), ("dropout", [32], (32,)),
                                                ("identity", [4, 2, 2], (4, 2, 2)), ("chunk", [8, 2, 2], (4, 2, 2)),
                                                ("channel_slice", [8, 2, 2], (2, 2, 2))])
def test_views_and_no_ops_move_nothing(op, inputs, output):
    e = estimate_layer(layer(op, op, inputs=(inputs,), output=output), DEVICE, "fp32", batch=8)
    assert e.bytes == 0 and e.seconds == 0 and e.bound == "-" and e.intensity is None


@pytest.mark.parametrize("op, inputs, output", [("channel_shuffle", [8, 2, 2], (8, 2, 2)),
                                                ("pad", [4, 3, 3], (4, 3, 3)),      # NASNet's crop-and-pad
                                                ("pad", [4, 2, 2], (4, 4, 4)), ("upsample", [4, 2, 2], (4, 4, 4))])
def test_an_op_that_only_moves_data_reads_and_writes_it_as_many_elements_as_it_reads_or_not(op, inputs, output):
    """Nothing computed, but its output is a copy of its input rearranged: a shuffle's transpose
    made contiguous, a padding, a nearest upsampling. The shapes alone do not say so where the
    counts are equal; the op kind does (neither a view nor its input handed on)."""
    e = estimate_layer(layer(op, op, inputs=(inputs,), output=output), DEVICE, "fp32", batch=8)
    elements = 8 * (inputs[0] * inputs[1] * inputs[2] + output[0] * output[1] * output[2])
    assert e.bytes == 4 * elements and e.bound == "memory"


def test_training_triples_each_layer():
    e = estimate_layer(CONV, DEVICE, "fp32", batch=2, mode="train")
    assert e.flops == 3 * 4e6 and e.bytes == 3 * 10_144


def test_optimizer_step_bytes_by_hand():
    # clipping reads the gradients (norm) and reads + writes them (scale): 3 passes; RMSProp with one
    # state reads parameter, gradient and state and writes parameter and state: 5 passes; fp32
    assert optimizer_step_bytes(1000, optimizer_states=1) == 4 * 1000 * 8
    # with momentum, a second state: read + write one more tensor
    assert optimizer_step_bytes(1000, optimizer_states=2) == 4 * 1000 * 10


def _report(layers, params=1110, buffers=10, macs=1_000_000, macs_aux=100, peak_bytes=4000) -> CostReport:
    totals = Totals(params=params, params_aux=110, buffers=buffers, macs=macs, macs_aux=macs_aux, other_flops=512,
                    fvcore_flops=0, activations=1024, activation_bytes=4096, peak_activation_bytes=peak_bytes,
                    weighted_layers=1, depth=1, layers=len(layers))
    return CostReport(model="made_up", input=[4, 8, 8], arguments={}, metadata={}, layers=list(layers), totals=totals)


def test_model_estimate_sums_the_inference_layers():
    model = estimate(_report([CONV, RELU, AUX_FC]), DEVICE, "fp32", batch=2)
    assert [l.path for l in model.layers] == ["conv", "relu"]          # no aux head at inference
    assert model.seconds == pytest.approx(4e-5 + 8.192e-7)
    assert model.images_per_second == pytest.approx(2 / (4e-5 + 8.192e-7))
    assert model.model_flops == 2 * 1_000_000 * 2                     # 2 x MACs x batch
    assert model.peak_share == pytest.approx(4e6 / (4e-5 + 8.192e-7) / 1e11)
    assert model.compute_bound_share == pytest.approx(4e-5 / (4e-5 + 8.192e-7))


def test_training_estimate_adds_aux_heads_and_the_optimizer_step():
    model = estimate(_report([CONV, RELU, AUX_FC]), DEVICE, "fp32", batch=2, mode="train")
    assert [l.path for l in model.layers] == ["conv", "relu", "aux.fc", "(optimizer step)"]
    assert model.layers[-1].bytes == 4 * 1110 * 8
    assert model.model_flops == 3 * 2 * (1_000_000 + 100) * 2


def test_estimate_carries_the_memory_it_is_given():
    """The roofline estimates no memory of its own: it carries analysis/memory.py's (tests/test_memory.py)."""
    assert estimate(_report([CONV, RELU]), DEVICE, "fp32", batch=2).memory is None


def test_estimate_memory_and_largest_batch_come_from_the_memory_analysis(tiny_report):
    from inception_analyzer.analysis.memory import MemorySettings
    model = tiny_report.estimate(device_profile("h100"), "bf16", 4, "train")
    peak = tiny_report.memory(MemorySettings(batch=4, dtype="bf16", mode="train", backend="cuda")).peak_bytes
    assert model.memory.total == peak
    most = model.largest_batch
    assert tiny_report.memory(MemorySettings(batch=most, dtype="bf16", mode="train", backend="cuda")).peak_bytes \
        <= device_profile("h100").memory_bytes
    assert tiny_report.memory(MemorySettings(batch=most + 1, dtype="bf16", mode="train", backend="cuda")).peak_bytes \
        > device_profile("h100").memory_bytes


def test_model_flops_convention():
    totals = _report([CONV]).totals
    assert model_flops(totals, 8) == 2 * 1_000_000 * 8
    assert model_flops(totals, 8, "train") == 6 * 1_000_100 * 8


# ----------------------------------------------------------------------------- profiles
def test_datasheet_figures():
    """Dense = the datasheets' "with sparsity" tensor-core figures halved (NVIDIA H100: BF16 1,979*,
    TF32 989*; H200 the same compute; A100: BF16 624* / 312 dense); bandwidths as printed."""
    h100 = device_profile("h100")
    assert h100.peak_flops("bf16") == pytest.approx(1979e12 / 2)
    assert h100.peak_flops("tf32") == pytest.approx(989e12 / 2)
    assert h100.peak_flops("fp32") == pytest.approx(67e12)
    assert h100.memory_bandwidth == pytest.approx(3.35e12)
    assert h100.ridge_point("bf16") == pytest.approx(989.5 / 3.35)    # about 295 FLOP per byte
    h200 = device_profile("h200")
    assert h200.peak_flops("bf16") == h100.peak_flops("bf16") and h200.memory_bandwidth == pytest.approx(4.8e12)
    a100 = device_profile("a100")
    assert a100.peak_flops("bf16") == pytest.approx(312e12) and a100.memory_bandwidth == pytest.approx(2.039e12)
    assert device_profile("a100-40gb").memory_bandwidth == pytest.approx(1.555e12)


def test_every_profile_cites_its_source():
    for name in profile_names():
        if name == "cpu":
            continue
        profile = device_profile(name)
        assert "nvidia.com" in profile.source or "datasheet" in profile.source, name
        assert set(profile.matmul_flops) == {"fp32", "tf32", "bf16", "fp16"}, name


def test_unknown_profile_is_a_user_error_with_a_hint():
    with pytest.raises(ProfileError, match="did you mean 'h100'") as caught:
        device_profile("h10")
    assert isinstance(caught.value, AnalyzerError)


@pytest.mark.parametrize("device_name, expected", [
    ("NVIDIA H100 80GB HBM3", "h100"), ("NVIDIA H100 PCIe", "h100-pcie"), ("NVIDIA H200", "h200"),
    ("NVIDIA A100-SXM4-80GB", "a100"), ("NVIDIA A100-SXM4-40GB", "a100-40gb"), ("NVIDIA GeForce RTX 4090", None)])
def test_profile_matching_by_device_name(device_name, expected):
    assert profile_matching(device_name) == expected


def test_cpu_profile_uses_the_probe():
    profile = device_profile("cpu", lambda: CpuMeasurement({"fp32": 5e10}, 2e10, "fake probe"))
    assert profile.measured and profile.peak_flops("fp32") == 5e10 and profile.vector_flops == 5e10
    assert profile.memory_bandwidth == 2e10 and "fake probe" in profile.title
    with pytest.raises(ProfileError, match="no bf16 peak"):
        profile.peak_flops("bf16")


def test_numpy_probe_measures_something_plausible():
    measured = measure_cpu_with_numpy(matmul_size=256, copy_bytes=8 * 2**20)
    assert 1e8 < measured.matmul_flops["fp32"] < 1e14        # between 0.1 GFLOP/s and 100 TFLOP/s
    assert 1e8 < measured.memory_bandwidth < 1e13


@pytest.mark.parametrize("dtype, batch, mode", [("fp64", 1, "inference"), ("fp32", 0, "inference"),
                                                ("fp32", 1, "serve")])
def test_bad_settings_are_user_errors(dtype, batch, mode):
    # one dtype table (inception_analyzer.dtypes) refuses an unknown dtype for every command
    with pytest.raises(DTypeError if dtype == "fp64" else ProfileError):
        estimate(_report([CONV]), DEVICE, dtype, batch, mode)


# ----------------------------------------------------------------------------- on a real spec
@pytest.fixture(scope="module")
def tiny_report():
    return ia.analyze(TINY)


def test_stem_conv_of_the_tiny_spec_by_hand(tiny_report):
    stem = next(r for r in tiny_report.layers if r.path == "stem.conv")
    e = estimate_layer(stem, device_profile("h100"), "bf16", batch=2)
    # 3x32x32 -> 16 channels, 3x3 stride 2, no padding: 15x15; MACs = 16 x 15 x 15 x 3 x 3 x 3 = 97,200
    assert e.flops == 2 * 2 * 97_200
    # bf16: 2 x (2 x (3,072 + 3,600) + 432 weights) = 27,552 bytes
    assert e.bytes == 27_552


def test_render_estimate_formats(tiny_report):
    model = tiny_report.estimate(device_profile("h100"), "bf16", 2)
    table = format_estimate(model)
    assert "roofline estimate on h100" in table and "fits (needs" in table and "stem.conv" in table
    assert format_estimate(model, "markdown").startswith("## ")
    csv_text = format_estimate(model, "csv", "block")
    assert csv_text.splitlines()[0].startswith("block,layers,flops,bytes,seconds")
    data = json.loads(format_estimate(model, "json"))
    main_layers = [r for r in tiny_report.layers if r.role == "main"]
    assert len(data["layers"]) == len(main_layers)
    assert sum(l["seconds"] for l in data["layers"]) == pytest.approx(data["seconds"])
    assert data["profile"]["matmul_flops"]["bf16"] == pytest.approx(989.5e12)


def test_stage_rollup_keeps_the_total(tiny_report):
    data = json.loads(format_estimate(tiny_report.estimate(device_profile("a100"), "fp16", 4, "train"), "json", "stage"))
    assert sum(s["seconds"] for s in data["stages"]) == pytest.approx(data["seconds"])
    assert any(s["name"] == "optimizer" for s in data["stages"])


def test_estimate_path_stays_torch_free():
    code = ("import sys; import inception_analyzer as ia; "
            "from inception_analyzer.analysis.roofline import device_profile; "
            "from inception_analyzer.render.estimate import format_estimate; "
            f"format_estimate(ia.analyze({TINY!r}).estimate(device_profile('h100'), 'bf16', 8)); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)


def test_option_parsers_stay_torch_free():
    """cli.py builds every command's options at start-up (`bench`'s and `analyze --device`'s
    included): no torch for that."""
    code = ("import sys; from inception_analyzer.cli import build_parser; build_parser(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=60)
