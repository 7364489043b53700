"""The calibrated latency prediction (analysis/latency.py), its fits and its profile file
(analysis/latency_file.py), checked against known answers: synthetic samples drawn from a known
model, and one small network priced by hand from a hand-made profile (every expected figure is
worked out in the comments from the formulas in the module's docstring, none taken from the
code's output). No torch needed.
"""
from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

import inception_analyzer as ia
from conftest import ROOT
from inception_analyzer.analysis.latency import (CURVE, EFFICIENCY, ELEMENTS, FALLBACK, FITTED, NATIVE, NEAREST, QUEUE,
                                                 SYNC, WINDOW_READS, CurveEntry, EfficiencyEntry, Fallback,
                                                 MAX_COPIES, LatencyError, LatencyProfile, Roofs, Sample,
                                                 bounded_least_squares, conv_key, copy_seconds, fit_curve,
                                                 fit_efficiency, fit_fallback, fit_host, fit_overhead, interpolate_log2,
                                                 isotonic, layer_work, least_squares, nearest_entry,
                                                 parse_window_key)
from inception_analyzer.analysis.latency_file import (MAX_PROFILE_BYTES, looks_like_profile_file, profile_text,
                                                      read_profile)
from inception_analyzer.cli import main
from inception_analyzer.errors import AnalyzerError
from inception_analyzer.graph import build_graph
from inception_analyzer.ops import OPS, ConvGeometry
from inception_analyzer.spec import load_spec_text

US = 1e-6
TINY = str(Path(__file__).parent / "data" / "tiny_inception.yaml")

# A small network: conv 3x3 (4 -> 8 channels on 8x8, padding 1), batch norm, ReLU (in place: the
# batch norm's fresh output has no other reader), 2x2 max pool, flatten, and a linear layer the
# profile below has no entry for.
SMALL = """\
name: small
input: [4, 8, 8]
layers:
  - conv: conv(8, 3, padding=1, bias=false)
  - bn
  - relu
  - maxpool(2, stride=2)
  - flatten
  - fc: linear(10)
"""


def small_analysis():
    return ia.analyze(build_graph(load_spec_text(SMALL, "small.yaml")))


def hand_profile(execution: str = SYNC) -> LatencyProfile:
    """Round figures, so each layer's prediction can be worked out by hand."""
    entries = {
        "conv 3x3/1": EfficiencyEntry("conv 3x3/1", overhead=10 * US, peak_flops=1e9,
                                      factors={"in_channels": ((2.0, 0.5), (8.0, 1.0)),
                                               "pixels": ((64.0, 0.5), (256.0, 1.0))}),
        "bn": CurveEntry("bn", 3 * US, ELEMENTS, ((1024.0, 5 * US), (4096.0, 11 * US))),
        "relu (in place)": CurveEntry("relu (in place)", 1 * US, ELEMENTS, ((2048.0, 2 * US),)),
        "maxpool 2x2/2": CurveEntry("maxpool 2x2/2", 2 * US, WINDOW_READS, ((512.0, 1 * US), (2048.0, 4 * US))),
        "flatten": CurveEntry("flatten", 0.5 * US, ELEMENTS, ()),
    }
    return LatencyProfile(name="hand", title="a hand-made device", device="cpu", dtype="fp32", execution=execution,
                          roofs=Roofs(matmul_flops=1e9, vector_flops=1e9, memory_bandwidth=1e9),
                          forward_overhead=7 * US, fallback=Fallback(overhead=4 * US, efficiency=0.5),
                          entries=entries, threads=2, machine={"device": "made up"}, date="2026-01-01T00:00:00+00:00",
                          calibration={"grid": "by hand"})


# ----------------------------------------------------------------------------- one network by hand
def test_small_network_by_hand():
    p = small_analysis().predict(hand_profile(), batch=2)
    by_path = {layer.path: layer for layer in p.layers}
    # conv: 8 x 8 x 8 outputs x 4 x 9 = 18,432 MACs an image; FLOPs = 2 x 18,432 x 2 images = 73,728.
    # in_channels 4 lies halfway (in log2) between 2 and 8: factor 0.75; pixels = 2 x 64 = 128, halfway
    # between 64 and 256: 0.75. Efficiency 1e9 x 0.75 x 0.75 = 5.625e8 FLOP/s; kernel 73,728 / 5.625e8
    # = 131.072 us; plus the 10 us overhead
    conv = by_path["conv"]
    assert (conv.entry, conv.how) == ("conv 3x3/1", FITTED)
    assert conv.kernel_seconds == pytest.approx(131.072 * US) and conv.seconds == pytest.approx(141.072 * US)
    # bn: reads 512 and writes 512 elements an image, 2,048 a batch: 5 + (2,048 - 1,024) x 6 / 3,072 = 7 us, + 3
    bn = by_path[next(path for path in by_path if path.startswith("bn"))]
    assert bn.kernel_seconds == pytest.approx(7 * US) and bn.seconds == pytest.approx(10 * US)
    # relu, in place: its own entry, 2 us at 2,048 elements, + 1
    relu = by_path[next(path for path in by_path if path.startswith("relu"))]
    assert relu.entry == "relu (in place)" and relu.seconds == pytest.approx(3 * US)
    # max pool: 8 x 4 x 4 = 128 outputs an image, 4 reads each, 2 images: 1,024 window reads:
    # 1 + (1,024 - 512) x 3 / 1,536 = 2 us, + 2
    pool = by_path[next(path for path in by_path if path.startswith("maxpool"))]
    assert pool.entry == "maxpool 2x2/2"
    assert pool.kernel_seconds == pytest.approx(2 * US) and pool.seconds == pytest.approx(4 * US)
    # flatten: a view, its overhead only
    flatten = by_path[next(path for path in by_path if path.startswith("flatten"))]
    assert flatten.seconds == pytest.approx(0.5 * US) and flatten.kernel_seconds == 0
    # linear: no entry, so the fallback: roofline / 0.5 + 4 us. Roofline: 2 x 1,280 MACs x 2 = 5,120
    # FLOPs at 1e9: 5.12 us; bytes 4 x (2 x (128 + 10) + 1,290 params) = 6,264 at 1e9 B/s: 6.264 us
    fc = by_path["fc"]
    assert fc.how == FALLBACK and fc.roofline_seconds == pytest.approx(6.264 * US)
    assert fc.seconds == pytest.approx(4 * US + 2 * 6.264 * US)
    # the model: the forward call's 7 us + the layers: 141.072 + 10 + 3 + 4 + 0.5 + 16.528
    assert p.seconds == pytest.approx(182.1 * US)
    assert p.images_per_second == pytest.approx(2 / (182.1 * US))
    assert p.count_by_how() == {FITTED: 5, FALLBACK: 1}
    assert any("no entry for: linear" in note for note in p.notes)


def test_queue_execution_by_hand():
    """On a queue device the host's overheads and the device's kernels overlap."""
    p = small_analysis().predict(hand_profile(QUEUE), batch=2)
    # host, device: forward 7, 7; conv: host 17, device max(17, 7) + 131.072 = 148.072; bn: host 20,
    # device 148.072 + 7 = 155.072; relu: 21, 157.072; pool: 23, 159.072; flatten: 23.5, 159.072;
    # fc: host 27.5, device 159.072 + 12.528 = 171.6
    assert p.seconds == pytest.approx(171.6 * US)


def test_a_queue_device_prices_the_host_by_the_calls_size_by_hand():
    """Where a queue profile timed the host at every size, a layer costs the host its entry's
    host curve at the layer's size (a convolution's FLOPs, a curve's feature), not the overhead
    on the smallest tensors."""
    profile = hand_profile(QUEUE)
    conv = replace(profile.entries["conv 3x3/1"], host=((1e4, 20 * US), (1e6, 40 * US)))
    bn = replace(profile.entries["bn"], host=((1024.0, 5 * US), (4096.0, 9 * US)))
    profile = replace(profile, entries={**profile.entries, "conv 3x3/1": conv, "bn": bn})
    p = small_analysis().predict(profile, batch=2)
    by_op = {layer.op: layer for layer in p.layers}
    # conv: 73,728 FLOPs (test_small_network_by_hand), log2 of it lies (log10 73,728 - 4) / 2 =
    # 0.43377 of the way from 1e4 to 1e6: 20 + 0.43377 x 20 = 28.675 us
    assert by_op["conv"].overhead_seconds == pytest.approx(28.675 * US, rel=1e-4)
    # bn: 2,048 elements, halfway in log2 between 1,024 and 4,096: 7 us
    assert by_op["bn"].overhead_seconds == pytest.approx(7 * US)
    # the others keep their overheads: relu 1, pool 2, flatten 0.5, fc (the fallback) 4
    assert by_op["relu"].overhead_seconds == pytest.approx(1 * US)
    # host, device: forward 7, 7; conv: host 35.675, device max(35.675, 7) + 131.072 = 166.747; bn:
    # host 42.675, device 173.747; relu: 43.675, 175.747; pool: 45.675, 177.747; flatten: 46.175,
    # 177.747; fc: host 50.175, device 177.747 + 12.528 = 190.275
    assert p.seconds == pytest.approx(190.275 * US, rel=1e-5)


def test_the_host_curve_is_the_median_of_runs_of_samples_by_size():
    # twelve samples of a class: FLOPs 1..12 x 1e6, the host 10 us, every third one stalled to 50 us,
    # and two samples whose host was not measured (0): six runs of two, each at its median size and
    # median host time
    samples = [Sample("conv 1x1/1", 1e-5, (i + 1) * 1e6, host=(50 if i % 3 == 2 else 10) * US) for i in range(12)]
    samples += [Sample("conv 1x1/1", 1e-5, 5e5, host=0.0)] * 2
    points = fit_host(samples, by_work=True)
    assert [x for x, _ in points] == [1.5e6, 3.5e6, 5.5e6, 7.5e6, 9.5e6, 11.5e6]
    # runs (1, 2), (3, 4), (5, 6)...: hosts (10, 10), (50, 10), (10, 50), (10, 10), (50, 10), (10, 50)
    assert [y / US for _, y in points] == pytest.approx([10, 30, 30, 10, 30, 30])
    # a curve's samples by their feature; runs of one size become one point
    same = [Sample("bn", 1e-5, size=4096.0, host=h * US) for h in (8, 9, 10, 11)]
    assert fit_host(same, by_work=False) == ((4096.0, pytest.approx(9.5 * US)),)
    assert fit_host([Sample("bn", 1e-5, size=1.0)], by_work=False) == ()


def test_a_curve_of_one_point_prices_no_layer_beyond_it_where_its_family_has_a_longer_curve():
    """On a GPU a single sample of a small pool is its launch alone (4.64 us at 256 window reads
    on the H200): held proportional, a global pool of 1.6 million reads would cost 29 ms. Beyond
    its one point the family's longer curve prices it; up to the point, its own curve does."""
    spec = "name: gap\ninput: [64, 7, 7]\nlayers:\n  - avgpool(7)\n"
    analysis = ia.analyze(build_graph(load_spec_text(spec, "gap.yaml")))
    lone = CurveEntry("avgpool global", 1 * US, WINDOW_READS, ((256.0, 4 * US),))
    longer = CurveEntry("avgpool 3x3/1", 2 * US, WINDOW_READS, ((1000.0, 5 * US), (1e6, 20 * US)))
    profile = replace(hand_profile(QUEUE), entries={"avgpool global": lone, "avgpool 3x3/1": longer})
    (layer,) = analysis.predict(profile, 1).layers
    # 64 x 49 reads = 3,136: on the longer curve 5 + (3,136 - 1,000) x 15 / 999,000 = 5.0321 us
    assert (layer.entry, layer.how, layer.via) == ("avgpool global", NEAREST, "avgpool 3x3/1")
    assert layer.kernel_seconds == pytest.approx((5 + 2136 * 15 / 999000) * US)
    assert layer.overhead_seconds == pytest.approx(2 * US)
    # with no longer curve of its family the lone point prices it, as before
    alone = replace(profile, entries={"avgpool global": lone})
    (layer,) = analysis.predict(alone, 1).layers
    assert (layer.how, layer.kernel_seconds) == (FITTED, pytest.approx(4 * US * 3136 / 256))


def test_host_curves_round_trip():
    profile = hand_profile(QUEUE)
    conv = replace(profile.entries["conv 3x3/1"], host=((1e4, 20 * US), (1e6, 40 * US)))
    bn = replace(profile.entries["bn"], host=((1024.0, 5 * US),))
    with_host = replace(profile, entries={**profile.entries, "conv 3x3/1": conv, "bn": bn})
    text = profile_text(with_host)
    assert "host:" in text
    again = parse_text(text)
    assert again.entries["conv 3x3/1"].host == conv.host and again.entries["bn"].host == bn.host
    assert again.entries["relu (in place)"].host == ()
    assert small_analysis().predict(again, 2).seconds == pytest.approx(small_analysis().predict(with_host, 2).seconds,
                                                                       rel=1e-9)


def test_an_out_of_place_activation_takes_the_plain_entry():
    spec = SMALL.replace("  - relu\n", "  - relu\n  - relu\n")   # a second ReLU reads a ReLU's output
    analysis = ia.analyze(build_graph(load_spec_text(spec, "twice.yaml")))
    entries = [layer.entry for layer in analysis.predict(hand_profile(), 2).layers if layer.op == "relu"]
    assert entries == ["relu (in place)", "relu"]          # the second: its input is no fresh output


def test_an_in_place_activation_the_profile_timed_only_out_of_place_takes_that_entry():
    """A profile calibrated before silu took `inplace` has 'silu' and no 'silu (in place)': the
    in-place layer is priced by the out-of-place entry (the same work), not the roofline fallback."""
    spec = SMALL.replace("  - relu\n", "  - silu\n")
    profile = hand_profile()
    silu_entry = CurveEntry("silu", 3 * US, ELEMENTS, ((2048.0, 5 * US),))
    profile = replace(profile, entries={**profile.entries, "silu": silu_entry})
    (silu,) = [layer for layer in ia.analyze(build_graph(load_spec_text(spec, "swish.yaml"))).predict(profile, 2).layers
               if layer.op == "silu"]
    assert (silu.entry, silu.how, silu.via) == ("silu (in place)", NEAREST, "silu")
    assert silu.kernel_seconds == pytest.approx(5 * US)     # 1,024 elements read and 1,024 written


def test_nearest_class_for_an_uncalibrated_conv():
    spec = SMALL.replace("conv(8, 3, padding=1, bias=false)", "conv(8, 5, padding=2, bias=false)")
    layers = ia.analyze(build_graph(load_spec_text(spec, "five.yaml"))).predict(hand_profile(), 2).layers
    conv = layers[0]
    assert (conv.entry, conv.how, conv.via) == ("conv 5x5/1", NEAREST, "conv 3x3/1")
    # the 3x3 class's efficiency on the 5x5's FLOPs: 25/9 of the 3x3 kernel above
    assert conv.kernel_seconds == pytest.approx(131.072 * US * 25 / 9)


def native_profile() -> LatencyProfile:
    """The hand profile with the framework's own kernel for small batch-1 3x3 convolutions: up to
    256 input elements at batch 1, none from batch 2 on, and twice the plain entry's cost."""
    profile = hand_profile()
    conv = profile.entries["conv 3x3/1"]
    native = replace(conv, key="conv 3x3/1" + NATIVE, overhead=5 * US, peak_flops=0.5e9)
    return replace(profile, entries={**profile.entries, "conv 3x3/1": replace(conv, native_up_to=((1, 256), (2, 0))),
                                     native.key: native})


def test_a_small_batch_1_convolution_is_priced_by_the_native_entry():
    # the small network's conv reads 4 x 8 x 8 = 256 elements an image: at batch 1 within the
    # native rule's 256, at batch 2 (512 elements, and a batch the rule says is never native) not
    analysis = small_analysis()
    one, two = analysis.predict(native_profile(), 1).layers[0], analysis.predict(native_profile(), 2).layers[0]
    assert (one.entry, one.how) == ("conv 3x3/1 native", FITTED) and (two.entry, two.how) == ("conv 3x3/1", FITTED)
    assert (one.how_text, two.how_text) == ("fitted, native kernel", "fitted")     # as `analyze` shows it
    # batch 1: 36,864 FLOPs; in_channels 4: 0.75; pixels 64: 0.5; the native entry's peak 0.5e9:
    # 36,864 / (0.5e9 x 0.375) = 196.608 us, + its own 5 us overhead
    assert one.kernel_seconds == pytest.approx(196.608 * US) and one.seconds == pytest.approx(201.608 * US)
    # batch 2 as in the hand-worked network above: the plain entry
    assert two.seconds == pytest.approx(141.072 * US)
    # an input past the rule's size at batch 1 (8 channels: 512 elements) takes the plain entry
    wide = SMALL.replace("input: [4, 8, 8]", "input: [8, 8, 8]")
    layer = ia.analyze(build_graph(load_spec_text(wide, "wide.yaml"))).predict(native_profile(), 1).layers[0]
    assert layer.entry == "conv 3x3/1"


def test_the_native_rule_reads_the_row_of_the_largest_batch_up_to_the_layers():
    entry = EfficiencyEntry("conv 1x1/1", 0.0, 1e9, {}, native_up_to=((1, 100), (4, 50), (16, 0)))
    assert entry.runs_native(1, 100) and not entry.runs_native(1, 101)
    assert entry.runs_native(2, 100) and not entry.runs_native(3, 101)            # batch 2, 3: the batch-1 row
    assert entry.runs_native(8, 50) and not entry.runs_native(8, 51)              # batch 4 to 15: the batch-4 row
    assert not entry.runs_native(64, 1)
    assert not EfficiencyEntry("conv 1x1/1", 0.0, 1e9, {}).runs_native(1, 1)      # no rule: never


def test_a_native_entry_is_not_a_window_for_other_classes():
    # a 5x5 conv the profile lacks takes the nearest plain window, never a native entry
    assert parse_window_key("conv 3x3/1" + NATIVE) is None
    spec = SMALL.replace("conv(8, 3, padding=1, bias=false)", "conv(8, 5, padding=2, bias=false)")
    conv = ia.analyze(build_graph(load_spec_text(spec, "five.yaml"))).predict(native_profile(), 1).layers[0]
    # the nearest class's rule still holds for the layer: batch 1 on 256 elements runs natively
    assert (conv.how, conv.via) == (NEAREST, "conv 3x3/1 native")


def in_model_profile() -> LatencyProfile:
    """The hand profile with what running in a model adds: 1 us a layer, 20 us a convolution or
    linear layer, and 1 ns a byte of weights that fit a 4,096-byte cache."""
    return replace(hand_profile(), layer_overhead=1 * US, weighted_layer_overhead=20 * US,
                   cold_weights_seconds_per_byte=1e-9, cache_bytes=4096)


def test_what_running_in_a_model_adds_by_hand():
    plain, in_model = small_analysis().predict(hand_profile(), 2), small_analysis().predict(in_model_profile(), 2)
    by_path = {layer.path: layer for layer in in_model.layers}
    # conv: 1 + 20 us, and its 8 x 4 x 9 = 288 weights, 1,152 bytes, within the cache: 1.152 us
    assert by_path["conv"].context_seconds == pytest.approx(22.152 * US)
    # fc: 1 + 20 us; its 1,290 weights (5,160 bytes) do not fit the cache: a microbenchmark fetched them too
    assert by_path["fc"].context_seconds == pytest.approx(21 * US)
    # the four others: the layer overhead alone
    assert sorted(layer.context_seconds for layer in in_model.layers)[:4] == pytest.approx([1 * US] * 4)
    assert in_model.seconds - plain.seconds == pytest.approx(47.152 * US)
    assert in_model.context_seconds == pytest.approx(47.152 * US)
    # the in-model cost is the host's on a queue device: it adds to the host's side of the overlap
    assert small_analysis().predict(replace(in_model_profile(), execution=QUEUE), 2).seconds > \
        small_analysis().predict(hand_profile(QUEUE), 2).seconds


def test_a_layers_activations_cost_a_byte_in_a_model_by_hand():
    # at batch 2, the elements each layer reads and writes: conv 2 x (256 + 512) = 1,536; bn and the
    # in-place ReLU 2 x (512 + 512) = 2,048 each; the pool 2 x (512 + 128) = 1,280; flatten a view,
    # none; fc 2 x (128 + 10) = 276. At 4 bytes and 1 ns a byte: 6.144, 8.192, 8.192, 5.12, 0 and 1.104 us
    profile = replace(in_model_profile(), activations_seconds_per_byte=1e-9)
    by_path = {layer.path: layer for layer in small_analysis().predict(profile, 2).layers}
    expected = {"conv": 22.152 + 6.144, "bn": 1 + 8.192, "relu": 1 + 8.192, "maxpool": 1 + 5.12, "flatten": 1,
                "fc": 21 + 1.104}
    assert {path: layer.context_seconds for path, layer in by_path.items()} == \
        pytest.approx({path: micro * US for path, micro in expected.items()})
    assert small_analysis().predict(profile, 2).context_seconds == pytest.approx((47.152 + 28.752) * US)


def test_a_layer_that_only_moves_elements_runs_at_its_speed_beyond_the_cache_in_a_model_by_hand():
    # a cache of 16,384 bytes, 4,096 fp32 elements: the bn curve's one point beyond it, 64 us at
    # 16,384 elements, runs at 1/256 us an element
    bn_curve = CurveEntry("bn", 3 * US, ELEMENTS, ((1024.0, 5 * US), (4096.0, 11 * US), (16384.0, 64 * US)))
    profile = replace(hand_profile(), entries={**hand_profile().entries, "bn": bn_curve}, cache_bytes=16384)
    layers = {batch: {layer.path: layer for layer in small_analysis().predict(profile, batch).layers}
              for batch in (2, 8)}
    bn = next(path for path in layers[2] if path.startswith("bn"))
    # batch 2: 2,048 elements, 7 us in cache (5 + 1,024 x 6 / 3,072); 8 us at 1/256 us each: 1 us more
    assert layers[2][bn].kernel_seconds == pytest.approx(7 * US)
    assert layers[2][bn].context_seconds == pytest.approx(1 * US)
    # batch 8: 8,192 elements, 11 + 4,096 x 53 / 12,288 = 28.667 us in cache; 32 us beyond it
    assert layers[8][bn].context_seconds == pytest.approx((32 - 11 - 4096 * 53 / 12288) * US)
    # the in-place relu's one point (2 us at 2,048) is beyond the cache too, but no slower than its
    # kernel; the pool is priced by window reads, not elements; the conv and fc by their entries
    assert all(layer.context_seconds == 0 for path, layer in layers[2].items() if path != bn)
    # a profile without a cache (a GPU's) adds nothing
    assert small_analysis().predict(replace(profile, cache_bytes=None), 2).context_seconds == 0


def test_a_curve_s_speed_beyond_the_cache_is_the_median_of_its_points_there():
    stalled = CurveEntry("add", 1 * US, ELEMENTS, ((1e3, 1e-6), (1e6, 1e-3), (2e6, 2e-3), (4e6, 40e-3)))
    # 1 ns an element at 1e6 and 2e6, one stalled point at 10 ns: the median keeps 1 ns
    assert stalled.seconds_per_unit_beyond(5e5) == pytest.approx(1e-9)
    assert stalled.seconds_per_unit_beyond(4e6) is None


def test_the_in_model_figures_round_trip():
    text = profile_text(in_model_profile())
    assert "weighted_layer_overhead_us: 20" in text and "cache_bytes: 4096" in text
    again = parse_text(text)
    assert (again.weighted_layer_overhead, again.cold_weights_seconds_per_byte, again.cache_bytes) == \
        pytest.approx((20 * US, 1e-9, 4096))
    with_activations = parse_text(profile_text(replace(in_model_profile(), activations_seconds_per_byte=2.5e-12)))
    assert with_activations.activations_seconds_per_byte == pytest.approx(2.5e-12)
    assert small_analysis().predict(again, 2).seconds == pytest.approx(small_analysis().predict(in_model_profile(), 2).seconds)
    # a profile without them (written before they were fitted) adds nothing for them
    old = parse_text(profile_text(hand_profile()))
    assert (old.weighted_layer_overhead, old.cold_weights_seconds_per_byte, old.cache_bytes) == (0.0, 0.0, None)
    written_before = parse_text(profile_text(hand_profile()).replace("activations_ns_per_byte: 0\n", ""))
    assert written_before.activations_seconds_per_byte == 0.0


def test_a_dtype_the_profile_was_not_calibrated_for_is_refused():
    with pytest.raises(LatencyError, match="calibrated for fp32, not bf16"):
        small_analysis().predict(hand_profile(), 1, "bf16")
    with pytest.raises(LatencyError, match="positive integer"):
        small_analysis().predict(hand_profile(), 0)


# ----------------------------------------------------------------------------- entries and features
def test_interpolation_in_log2_and_held_at_the_ends():
    points = ((4.0, 0.2), (16.0, 0.6), (64.0, 1.0))
    assert interpolate_log2(points, 8.0) == pytest.approx(0.4)      # halfway from 4 to 16 in log2
    assert interpolate_log2(points, 1.0) == 0.2 and interpolate_log2(points, 1e6) == 1.0


def test_curve_between_below_and_beyond_its_points():
    curve = CurveEntry("x", 0.0, ELEMENTS, ((100.0, 10.0), (200.0, 30.0)))
    assert curve.kernel_seconds(150) == pytest.approx(20.0)
    assert curve.kernel_seconds(50) == pytest.approx(5.0)            # from zero at no work
    assert curve.kernel_seconds(400) == pytest.approx(70.0)          # the last segment's rate, 0.2 a unit
    assert curve.kernel_seconds(0) == 0


def test_conv_keys_from_the_geometry():
    def key(**kw):
        args = dict(kernel=(3, 3), stride=(1, 1), padding=(1, 1), in_channels=32, out_channels=32, bias=False)
        args.update(kw)
        return conv_key(ConvGeometry(**args))

    assert key() == "conv 3x3/1"
    assert key(kernel=(1, 7), stride=(2, 2)) == "conv 1x7/2"
    assert key(groups=32) == "conv 3x3/1 depthwise"
    assert key(groups=4) == "conv 3x3/1 grouped"
    assert key(dilation=(2, 2)) == "conv 3x3/1 d2"
    assert parse_window_key("conv 1x7/2 grouped") == ("conv grouped", (1, 7), (2, 2))
    assert parse_window_key("maxpool 3x3/1") == ("maxpool", (3, 3), (1, 1))
    assert parse_window_key("avgpool global") == ("avgpool", None, None)
    assert parse_window_key("relu") is None and parse_window_key("conv 3x3/1 d2") is None
    assert parse_window_key("relu (in place)") is None


def test_layer_work_reads_the_facets():
    conv = OPS["conv"]
    args = conv.bind([16, 3], {"stride": 2, "groups": 4})
    work = layer_work(conv, args, [(8, 9, 9)], conv.output_shape(args, [(8, 9, 9)]), batch=3)
    # 16 x 4 x 4 outputs, 8 / 4 = 2 input channels per group, 9 taps: 4,608 MACs; 2 x 3 images
    assert work.key == "conv 3x3/2 grouped" and work.model == EFFICIENCY and work.flops == 2 * 4608 * 3
    # the kernel vectorises within a group: 2 in and 4 out channels have 2 in common
    assert work.arguments == {"in_channels": 2, "out_channels": 4, "pixels": 3 * 16, "groups": 4, "work": 2 * 4608 * 3,
                              "alignment": 2}
    pool = OPS["maxpool"]
    args = pool.bind([3], {"stride": 2})
    work = layer_work(pool, args, [(8, 9, 9)], pool.output_shape(args, [(8, 9, 9)]), batch=2)
    assert (work.model, work.feature, work.size) == (CURVE, WINDOW_READS, 2 * 8 * 4 * 4 * 9)
    cat = OPS["concat"]
    work = layer_work(cat, {}, [(2, 3, 3), (4, 3, 3)], (6, 3, 3), batch=5)
    assert (work.feature, work.size) == (ELEMENTS, 5 * (18 + 36 + 54))
    assert layer_work(OPS["flatten"], {}, [(2, 3, 3)], (18,), 4).size == 0    # a view moves nothing


def test_a_slice_or_chunk_of_the_channels_is_a_view_priced_as_a_call():
    """x[:, 0:4] and x.chunk(2, 1)[1] return views of their input: nothing computed, copied or
    allocated, so without an entry of their own they cost the fallback's overhead alone (4 us),
    not a roofline time for bytes they never move, and touch no fresh pages. (Res2Net's 64 slices
    were priced 2.6 ms at batch 1 this way; timed alone they took 0.12 ms.)"""
    from inception_analyzer.analysis.allocator import Allocator, fresh_bytes
    text = ("name: pieces\ninput: [8, 8, 8]\nlayers:\n  - conv(8, 1)\n  - piece: channel_slice(0, 4)\n"
            "  - conv(4, 1)\n  - half: chunk(2, 1)\n  - conv(2, 1)\n")
    analysis = ia.analyze(build_graph(load_spec_text(text, "pieces.yaml")))
    prediction = analysis.predict(hand_profile(), 4)
    for path in ("piece", "half"):
        layer = next(layer for layer in prediction.layers if layer.path == path)
        assert (layer.how, layer.overhead_seconds, layer.kernel_seconds, layer.roofline_seconds) == \
            (FALLBACK, 4 * US, 0.0, 0.0)
    fresh = fresh_bytes(analysis.graph, 4, 4, Allocator(1e-10, layout_copies=False))
    assert fresh.get("piece", 0) == fresh.get("half", 0) == 0
    assert layer_work(OPS["channel_slice"], {"start": 0, "end": 4}, [(8, 3, 3)], (4, 3, 3), 2).size == 0


def test_a_convolution_padded_more_on_one_side_also_pays_for_its_padded_copy():
    """TensorFlow's 'same' padding: the call pads a copy of its input, then convolves it; the copy
    is priced at the profile's copy curve, 2 x its elements moved (read and written)."""
    from inception_analyzer.analysis.latency import COPY_KEY, predict_layer
    conv = OPS["conv"]
    args = conv.bind([8, 3], {"padding": [[0, 1], [0, 1]]})
    work = layer_work(conv, args, [(4, 8, 8)], conv.output_shape(args, [(4, 8, 8)]), batch=3)
    assert work.staged == 3 * 4 * 9 * 9
    copy = CurveEntry(COPY_KEY, 1 * US, ELEMENTS, ((1000.0, 2 * US), (4000.0, 6 * US)))
    profile = replace(hand_profile(), entries={**hand_profile().entries, COPY_KEY: copy})
    padded = predict_layer(work, profile, 0.0)[4]
    plain = predict_layer(replace(work, staged=0.0), profile, 0.0)[4]
    # 2 x 972 = 1,944 elements moved: 2 us + (1944 - 1000) / 3000 x 4 us
    assert padded - plain == pytest.approx((2 + (1944 - 1000) / 3000 * 4) * US)


def test_nearest_window_prefers_area_then_stride_within_its_kind():
    entries = {key: EfficiencyEntry(key, 0.0, 1e9, {}) for key in
               ("conv 1x1/1", "conv 3x3/1", "conv 3x3/2", "conv 3x3/1 depthwise")}
    entries.update({key: CurveEntry(key, 0.0, WINDOW_READS, ((1.0, 1.0),)) for key in
                    ("maxpool 3x3/2", "maxpool 2x2/2", "avgpool global")})
    profile = LatencyProfile("p", "", "cpu", "fp32", SYNC, Roofs(1, 1, 1), 0.0, Fallback(0.0, 1.0), entries)
    conv = OPS["conv"]

    def nearest(op, shape=(8, 16, 16), *positional, **keywords):
        args = OPS[op].bind(list(positional), keywords)
        return nearest_entry(profile, layer_work(OPS[op], args, [shape], OPS[op].output_shape(args, [shape]), 1))

    assert nearest("conv", (8, 16, 16), 8, 5, padding=1) == "conv 3x3/1"
    assert nearest("conv", (8, 16, 16), 8, 5, stride=2, padding=1) == "conv 3x3/2"
    assert nearest("conv", (8, 16, 16), 8, 5, padding=1, groups=8) == "conv 3x3/1 depthwise"
    assert nearest("conv", (8, 16, 16), 8, 5, padding=1, groups=2) is None     # no grouped class: the fallback then
    assert nearest("maxpool", (8, 16, 16), 3, stride=1, padding=1) == "maxpool 3x3/2"
    assert nearest("maxpool", (8, 16, 16), 2) == "maxpool 2x2/2"
    assert nearest("avgpool", (8, 16, 16), 3) == "avgpool global"               # the only avgpool entry
    assert nearest("relu", (8, 16, 16)) is None and conv is OPS["conv"]


# ----------------------------------------------------------------------------- fitting, known answers
def test_least_squares_known_solution():
    rows = [[1, 0], [0, 1], [1, 1]]
    assert least_squares(rows, [1, 2, 3]) == pytest.approx([1, 2])
    # over-determined and inconsistent: the mean of two readings of one unknown
    assert least_squares([[1], [1]], [1, 3]) == pytest.approx([2])


def test_isotonic_pools_a_dip():
    assert isotonic([1, 3, 2, 4]) == pytest.approx([1, 2.5, 2.5, 4])
    assert isotonic([5, 1, 1]) == pytest.approx([7 / 3] * 3)
    assert isotonic([1, 2, 3]) == [1, 2, 3]


def test_fit_overhead_is_the_median():
    assert fit_overhead([3e-6, 1e-6, 2e-6, 100e-6, 2.5e-6]) == pytest.approx(2.5e-6)


def test_fit_curve_recovers_a_known_curve():
    overhead = 4 * US
    true_kernel = {256: 1 * US, 1024: 3 * US, 4096: 13 * US, 16384: 60 * US}
    samples = [Sample("relu", overhead + t + noise, feature=ELEMENTS, size=x)
               for x, t in true_kernel.items() for noise in (-0.1 * US, 0.0, 0.1 * US)]
    curve = fit_curve("relu", samples, overhead)
    assert [x for x, _ in curve.points] == [256, 1024, 4096, 16384]
    assert [t for _, t in curve.points] == pytest.approx(list(true_kernel.values()))  # the median of three
    assert curve.overhead == overhead and curve.samples == 12


def test_fit_efficiency_recovers_a_known_model():
    """Samples drawn from kernel = FLOPs / (300 GFLOP/s x f_in x f_out x f_work), each factor a
    power law of its argument (straight in log2, so the curvature penalty costs nothing) reaching 1
    at the largest argument: the fit must give back 300 GFLOP/s and each factor."""
    peak, overhead = 300e9, 5 * US

    def f_in(c):
        return (c / 1024) ** 0.4

    def f_out(c):
        return (c / 512) ** 0.2

    def f_work(flops):
        return (flops / (2.0 * 1024 * 512 * 65536 * 9)) ** 0.1     # 1 at the largest call

    samples = []
    for c_in in (8, 32, 128, 512, 1024):
        for c_out in (16, 64, 256, 512):
            for pixels in (64, 1024, 16384, 65536):
                flops = 2.0 * c_in * c_out * pixels * 9
                kernel = flops / (peak * f_in(c_in) * f_out(c_out) * f_work(flops))
                samples.append(Sample("conv 3x3/1", overhead + kernel, flops,
                                      {"in_channels": c_in, "out_channels": c_out, "pixels": pixels, "groups": 1,
                                       "work": flops}))
    entry = fit_efficiency("conv 3x3/1", samples, overhead)
    assert entry.peak_flops == pytest.approx(peak, rel=0.01)
    assert set(entry.factors) == {"in_channels", "out_channels", "work"}     # groups is always 1 here
    for c in (8, 100, 1024):
        assert interpolate_log2(entry.factors["in_channels"], c) == pytest.approx(f_in(c), rel=0.02)
    for flops in (2.0 * 8 * 16 * 64 * 9, 1e9, 2.0 * 1024 * 512 * 65536 * 9):
        assert interpolate_log2(entry.factors["work"], flops) == pytest.approx(f_work(flops), rel=0.02)
    # the samples lie on the model: every residual is 1, and a shape between them is priced by the model
    assert len(entry.residuals) == len(samples) and all(row[-1] == pytest.approx(1, rel=0.03) for row in entry.residuals)
    flops = 2.0 * 200 * 100 * 5000 * 9
    shape = {"in_channels": 200, "out_channels": 100, "pixels": 5000, "groups": 1, "work": flops}
    assert entry.kernel_seconds(flops, shape) == pytest.approx(
        flops / (peak * f_in(200) * f_out(100) * f_work(flops)), rel=0.03)


def test_layer_work_reads_the_channels_alignment():
    """The alignment is the largest power of two (up to 32) dividing the channels a kernel
    vectorises over: in and out channels per group, a depthwise convolution's channels, a linear
    layer's features."""
    conv = OPS["conv"]

    def alignment(out, in_channels, groups=1):
        args = conv.bind([out, 1], {"groups": groups})
        return layer_work(conv, args, [(in_channels, 8, 8)], conv.output_shape(args, [(in_channels, 8, 8)]),
                          1).arguments["alignment"]

    assert alignment(64, 64) == 32 and alignment(72, 64) == 8 and alignment(64, 72) == 8
    assert alignment(116, 64) == 4 and alignment(64, 3) == 1 and alignment(1024, 2048) == 32
    assert alignment(72, 72, groups=72) == 8 and alignment(128, 128, groups=128) == 32     # depthwise: its channels
    assert alignment(128, 128, groups=32) == 4                                           # 4 channels a group
    linear = OPS["linear"]
    args = linear.bind([1000], {})
    assert layer_work(linear, args, [(2048,)], (1000,), 1).arguments["alignment"] == 8


def test_the_fit_tells_a_misaligned_count_from_a_small_one():
    """Samples whose channel counts are drawn apart from their alignment: the fit finds the
    alignment's factor (a count of 8 runs at half the rate of one of 16 and more) beside the
    channels' own, and prices a misaligned layer between the samples by both."""
    peak = 4e11

    def f_align(alignment):
        return 0.5 if alignment <= 8 else 1.0

    def f_in(c):
        return (c / 1024) ** 0.3

    samples = []
    for c_in in (16, 64, 256, 1024):
        for step in (0, 8):
            for c_out in (32, 128, 512):
                for pixels in (256, 4096):
                    channels = c_in + step
                    flops = 2.0 * channels * c_out * pixels
                    shape = {"in_channels": channels, "out_channels": c_out, "pixels": pixels, "groups": 1,
                             "work": flops, "alignment": 8 if step else 16}
                    samples.append(Sample("conv 1x1/1", flops / (peak * f_in(channels) * f_align(shape["alignment"])),
                                          flops, shape))
    entry = fit_efficiency("conv 1x1/1", samples, 0.0, subtract_overhead=False)
    assert interpolate_log2(entry.factors["alignment"], 8) == pytest.approx(0.5, rel=0.05)
    assert interpolate_log2(entry.factors["alignment"], 16) == pytest.approx(1.0, rel=0.05)
    flops = 2.0 * 200 * 128 * 1024
    layer = {"in_channels": 200, "out_channels": 128, "pixels": 1024, "groups": 1, "work": flops, "alignment": 8}
    assert entry.kernel_seconds(flops, layer) == pytest.approx(flops / (peak * f_in(200) * 0.5), rel=0.05)


def test_a_better_alignment_is_never_priced_slower():
    """Samples on 4, 8, 16 and 32 lanes (1, 2, 1.8 and 3 x 10^11 FLOP/s) where those on 16 happen
    to run slower than those on 8 (noise, or a cause the factors do not see): the fitted table
    does not dip; it pools the 8- and 16-lane samples (their geometric mean, 1.897) and keeps the
    rest."""
    rates = {4: 1e11, 8: 2e11, 16: 1.8e11, 32: 3e11}
    samples = []
    for alignment, rate in rates.items():
        for c_in in (64, 256, 1024):
            for pixels in (256, 4096):
                flops = 2.0 * c_in * 128 * pixels
                samples.append(Sample("conv 1x1/1", flops / rate, flops,
                                      {"in_channels": c_in, "out_channels": 128, "pixels": pixels, "groups": 1,
                                       "work": flops, "alignment": alignment}))
    entry = fit_efficiency("conv 1x1/1", samples, 0.0, subtract_overhead=False)
    table = dict(entry.factors["alignment"])
    assert list(table.values()) == sorted(table.values())
    pooled = math.sqrt(2e11 * 1.8e11)
    assert table[8] == table[16] == pytest.approx(pooled / 3e11, rel=0.02)
    assert table[4] == pytest.approx(1 / 3, rel=0.02) and table[32] == 1.0
    assert entry.peak_flops == pytest.approx(3e11, rel=0.02)


def test_the_correction_by_hand():
    """A layer's kernel is the smooth fit's times the distance-weighted geometric mean of the 4
    nearest samples' measured / fitted ratios, weights 1 / (distance + 1/2), distance in log2."""
    residuals = ((16.0, 16.0, 256.0, 1.0, 2.0),     # at the layer itself: distance 0, weight 2
                 (16.0, 16.0, 1024.0, 1.0, 1.0),    # pixels two octaves off: distance 2, weight 0.4
                 (64.0, 16.0, 1024.0, 1.0, 0.5),    # in_channels and pixels: sqrt(8), weight 1 / 3.328
                 (256.0, 256.0, 256.0, 1.0, 4.0),   # channels four octaves off each: sqrt(32), weight 1 / 6.157
                 (2048.0, 2048.0, 16.0, 1.0, 8.0))  # the fifth nearest: not counted
    entry = EfficiencyEntry("conv 3x3/1", overhead=0.0, peak_flops=1e9, factors={}, residuals=residuals)
    weights = [2.0, 1 / 2.5, 1 / (math.sqrt(8) + 0.5), 1 / (math.sqrt(32) + 0.5)]
    logs = [math.log(2.0), 0.0, math.log(0.5), math.log(4.0)]
    expected = math.exp(sum(w * r for w, r in zip(weights, logs)) / sum(weights))
    here = {"in_channels": 16, "out_channels": 16, "pixels": 256, "groups": 1, "work": 1e6}
    assert entry.correction(here) == pytest.approx(expected)
    # 1e6 FLOPs at 1e9 FLOP/s is 1 ms before the correction
    assert entry.kernel_seconds(1e6, here) == pytest.approx(1e-3 * expected)
    assert EfficiencyEntry("plain", 0.0, 1e9, {}).correction(here) == 1.0   # no residuals: the fit alone


def test_the_correction_counts_the_alignment_as_a_distance():
    """Two samples at the layer's channels and pixels, one on 32 lanes and one on 8: an aligned
    layer sits on the first (distance 0, weight 2) and two doublings from the second (weight 0.4);
    a profile written before the alignment was a location (rows of four) leaves it out."""
    residuals = ((64.0, 64.0, 256.0, 1.0, 32.0, 1.0), (64.0, 64.0, 256.0, 1.0, 8.0, 2.0))
    entry = EfficiencyEntry("conv 1x1/1", overhead=0.0, peak_flops=1e9, factors={}, residuals=residuals)
    aligned = {"in_channels": 64, "out_channels": 64, "pixels": 256, "groups": 1, "work": 1e6, "alignment": 32}
    assert entry.correction(aligned) == pytest.approx(math.exp(0.4 * math.log(2.0) / 2.4))
    assert entry.correction({**aligned, "alignment": 8}) == pytest.approx(math.exp(2 * math.log(2.0) / 2.4))
    older = replace(entry, residuals=tuple(row[:4] + row[5:] for row in residuals))
    assert older.correction(aligned) == older.correction({**aligned, "alignment": 8}) == pytest.approx(math.sqrt(2.0))


def test_the_residuals_follow_what_the_smooth_fit_cannot():
    """Kernels from a smooth model, except a pocket (few pixels on many channels) that runs twice
    as fast, as oneDNN's wide, short convolutions do: the smooth fit alone misprices a layer in the
    pocket; with the nearest samples' correction it comes within 15%, and a layer far from the
    pocket keeps the smooth price."""
    peak = 300e9

    def true_kernel(c_in, c_out, pixels):
        flops = 2.0 * c_in * c_out * pixels
        rate = peak * (c_in / 1024) ** 0.3 * (c_out / 1024) ** 0.3
        return flops / rate / (2.0 if pixels <= 256 and c_in * c_out >= 512 * 512 else 1.0)

    samples = []
    for c_in in (32, 64, 128, 256, 512, 1024):
        for c_out in (32, 64, 128, 256, 512, 1024):
            for pixels in (49, 196, 784, 3136, 12544):
                flops = 2.0 * c_in * c_out * pixels
                samples.append(Sample("conv 1x1/1", true_kernel(c_in, c_out, pixels), flops,
                                      {"in_channels": c_in, "out_channels": c_out, "pixels": pixels, "groups": 1,
                                       "work": flops}))
    entry = fit_efficiency("conv 1x1/1", samples, 0.0)
    smooth = replace(entry, residuals=())
    for c_in, c_out, pixels, in_pocket in ((1024, 768, 100, True), (48, 96, 6000, False)):
        flops = 2.0 * c_in * c_out * pixels
        shape = {"in_channels": c_in, "out_channels": c_out, "pixels": pixels, "groups": 1, "work": flops}
        truth = true_kernel(c_in, c_out, pixels)
        if in_pocket:
            assert abs(smooth.kernel_seconds(flops, shape) / truth - 1) > 0.3
        assert entry.kernel_seconds(flops, shape) == pytest.approx(truth, rel=0.15)


def test_bounded_least_squares_holds_an_unknown_at_a_bound_and_solves_the_rest():
    rows = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    # unbounded: x = (5, 1) exactly; within 0..2 the first is held at 2 and the second takes what it
    # can of the rest: rows 2 and 3 ask 1 and 6 - 2 = 4 of it, least squares 2.5, capped again: 2
    assert least_squares(rows, [5.0, 1.0, 6.0]) == pytest.approx([5.0, 1.0])
    assert bounded_least_squares(rows, [5.0, 1.0, 6.0], upper=2.0) == pytest.approx([2.0, 2.0])
    assert bounded_least_squares(rows, [5.0, 1.0, 6.0], upper=4.0) == pytest.approx([4.0, 1.5])
    # a negative solution is held at zero: b = (-1, 2, 1) is fitted by x = (0, 1.5) best
    assert bounded_least_squares(rows, [-1.0, 2.0, 1.0]) == pytest.approx([0.0, 1.5])
    # nothing beats zero: zero
    assert bounded_least_squares(rows, [-1.0, -1.0, -2.0]) == [0.0, 0.0]


def test_the_data_term_prices_at_most_max_copies_of_a_tensor():
    # a class whose calls cost their compute plus 10 copies of the weights: the fit holds the weights
    # at MAX_COPIES, where unbounded it fitted 10; compute as in the known model above (peak 1e11)
    copy = CurveEntry("copy", 0.0, ELEMENTS, ((2.0, 1e-9), (2.0 ** 26, 2.0 ** 25 * 1e-9)))    # 1 ns an element
    samples = []
    for c_in in (32, 128, 512, 2048):
        for c_out in (32, 128, 512, 2048):
            for pixels in (4, 49, 784):
                flops = 2.0 * c_in * c_out * pixels
                data = {"input": float(c_in * pixels), "output": float(c_out * pixels), "weights": float(c_in * c_out)}
                seconds = flops / 1e11 + 10 * copy_seconds(copy, data["weights"])
                samples.append(Sample("conv 1x1/1", seconds, flops, {"in_channels": c_in, "out_channels": c_out,
                                                                     "pixels": pixels, "groups": 1, "work": flops},
                                      data=data))
    entry = fit_efficiency("conv 1x1/1", samples, 0.0, copy=copy)
    assert entry.data and max(entry.data.values()) <= MAX_COPIES
    assert entry.data["weights"] == pytest.approx(MAX_COPIES)


def test_fit_fallback_by_hand():
    entries = {"relu": CurveEntry("relu", 1 * US, ELEMENTS, ((10.0, 1.0),)),
               "bn": CurveEntry("bn", 3 * US, ELEMENTS, ((10.0, 1.0),))}
    samples = [Sample("relu", 11 * US), Sample("bn", 23 * US), Sample("bn", 3.5 * US), Sample("add", 9 * US)]
    bounds = {0: 5 * US, 1: 5 * US, 2: 1 * US, 3: 1 * US}
    fallback = fit_fallback(entries, samples, bounds)
    # kernels: relu 10 us (bound 5: 0.5), bn 20 us (0.25); the third is under its overhead, the
    # fourth has no entry; median of 0.5 and 0.25 = 0.375; overhead: the median of 1 and 3 us
    assert fallback.efficiency == pytest.approx(0.375) and fallback.overhead == pytest.approx(2 * US)


# ----------------------------------------------------------------------------- the profile file
def test_round_trip_gives_the_same_prediction(tmp_path):
    profile = hand_profile()
    path = tmp_path / "hand.yaml"
    path.write_text(profile_text(profile))
    again = read_profile(path)
    assert again.entries.keys() == profile.entries.keys() and again.source == str(path)
    tiny = ia.analyze(TINY)
    for batch in (1, 8):
        for model in (small_analysis(), tiny):
            first, second = model.predict(profile, batch), model.predict(again, batch)
            assert second.seconds == pytest.approx(first.seconds, rel=1e-9)
            assert [l.seconds for l in second.layers] == pytest.approx([l.seconds for l in first.layers], rel=1e-9)
    # written again, the file is the same text
    assert profile_text(again) == path.read_text()


def test_residuals_round_trip():
    """An efficiency entry's residuals are written and read back to the same prediction."""
    profile = hand_profile()
    conv = profile.entries["conv 3x3/1"]
    residuals = ((4.0, 8.0, 128.0, 1.0, 4.0, 1.25), (2.0, 8.0, 64.0, 1.0, 2.0, 0.8))
    with_residuals = replace(profile, entries={**profile.entries, "conv 3x3/1": replace(conv, residuals=residuals)})
    text = profile_text(with_residuals)
    assert "residuals:" in text
    again = parse_text(text)
    assert again.entries["conv 3x3/1"].residuals == residuals
    first, second = small_analysis().predict(with_residuals, 2), small_analysis().predict(again, 2)
    assert second.seconds == pytest.approx(first.seconds, rel=1e-9)
    assert first.seconds != pytest.approx(small_analysis().predict(profile, 2).seconds, rel=1e-3)


def test_the_native_rule_round_trips():
    text = profile_text(native_profile())
    assert "native_up_to:" in text and "conv 3x3/1 native:" in text
    again = parse_text(text)
    assert again.entries["conv 3x3/1"].native_up_to == ((1, 256), (2, 0))
    for batch in (1, 2):
        assert small_analysis().predict(again, batch).seconds == \
            pytest.approx(small_analysis().predict(native_profile(), batch).seconds, rel=1e-9)


def parse_text(text: str) -> LatencyProfile:
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "profile.yaml"
        path.write_text(text)
        return read_profile(path)


def test_profile_paths_are_told_from_profile_names():
    assert looks_like_profile_file("cpu.yaml") and looks_like_profile_file("profiles/h100")
    assert not looks_like_profile_file("h100") and not looks_like_profile_file("cpu")


GOOD = profile_text(hand_profile())


def _bad(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


HOSTILE = {
    "not a mapping": ("- 1\n- 2\n", "must be a mapping"),
    "a scalar": ("42\n", "must be a mapping"),
    "an entry named by a number": (_bad("  bn:", "  12:"), "name must be text"),
    "another format": (_bad("format: inception-analyzer latency profile", "format: something else"),
                       "not a latency profile"),
    "a later version": (_bad("version: 1", "version: 2"), "version 2"),
    "an unknown key": (_bad("execution: sync", "execution: sync\nexecutoin: sync"), "did you mean 'execution'"),
    "an unknown execution": (_bad("execution: sync", "execution: async"), "must be one of sync, queue"),
    "a negative overhead": (_bad("overhead_us: 10", "overhead_us: -10"), "finite number at least 0"),
    "not a number": (_bad("peak_gflops: 1", "peak_gflops: fast"), "must be a number"),
    "infinity": (_bad("peak_gflops: 1", "peak_gflops: .inf"), "finite number"),
    "nan": (_bad("forward_overhead_us: 7", "forward_overhead_us: .nan"), "finite number"),
    "points out of order": (_bad("- [1024, 5]\n    - [4096, 11]", "- [4096, 5]\n    - [1024, 11]"), "must increase"),
    "a point of three": (_bad("- [1024, 5]", "- [1024, 5, 6]"), "pair [x, y]"),
    "a zero factor": (_bad("- [2, 0.5]", "- [2, 0]"), "must be above 0"),
    "an unknown factor": (_bad("in_channels:", "in_chanels:"), "did you mean 'in_channels'"),
    "an unknown model": (_bad("model: curve", "model: forest"), "must be one of efficiency, curve"),
    "residuals not a list": (_bad("    factors:", "    residuals: 3\n    factors:"), "must be a list of"),
    "a residual row of two": (_bad("    factors:", "    residuals: [[1, 2]]\n    factors:"), "each row is"),
    "a zero residual": (_bad("    factors:", "    residuals: [[1, 2, 3, 1, 0]]\n    factors:"), "above 0"),
    "residual rows of two widths": (_bad("    factors:", "    residuals: [[1, 2, 3, 1, 32, 1.5], [1, 2, 3, 1, 1.5]]\n"
                                                    "    factors:"), "each row is [in_channels, out_channels, pixels, "
                                                                    "groups, alignment, ratio]"),
    "an unknown feature": (_bad("feature: elements", "feature: bytes"), "must be one of"),
    "a native rule not a list": (_bad("    factors:", "    native_up_to: 20480\n    factors:"), "must be a list of"),
    "a native row of floats": (_bad("    factors:", "    native_up_to: [[1, 2.5]]\n    factors:"), "whole numbers"),
    "a native row of a zero batch": (_bad("    factors:", "    native_up_to: [[0, 10]]\n    factors:"),
                                     "a batch of at least 1"),
    "a native row of booleans": (_bad("    factors:", "    native_up_to: [[true, 10]]\n    factors:"),
                                 "whole numbers"),
    "an unknown cold-weights key": (_bad("fallback:", "cold_weights: {ns_per_byte: 1, cache: 3}\nfallback:"),
                                    "did you mean 'cache_bytes'"),
    "a negative cold-weights cost": (_bad("fallback:", "cold_weights: {ns_per_byte: -1, cache_bytes: 3}\nfallback:"),
                                     "finite number at least 0"),
    "a cache of no bytes": (_bad("fallback:", "cold_weights: {ns_per_byte: 1, cache_bytes: 0}\nfallback:"),
                            "integer from 1"),
    "a negative activations cost": (_bad("activations_ns_per_byte: 0", "activations_ns_per_byte: -0.5"),
                                    "finite number at least 0"),
    "native batches out of order": (_bad("    factors:", "    native_up_to: [[2, 0], [1, 10]]\n    factors:"),
                                    "must increase"),
    "a python tag": (_bad("title: a hand-made device", "title: !!python/object:os.system 'ls'"), "not allowed"),
    "a huge integer": (_bad("threads: 2", "threads: " + "9" * 5000), "digits"),
    "a billion laughs": ("a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                         "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                         "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
                         "aliases expand"),
    "deep nesting": ("a: " + "[" * 200 + "]" * 200 + "\n", "nest more than"),
    "bad YAML": ("format: [unclosed\n", ""),
    "an empty file": ("", "the latency profile is empty"),
}


@pytest.mark.parametrize("case", HOSTILE)
def test_hostile_profiles_are_refused_in_one_located_line(tmp_path, case):
    text, message = HOSTILE[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(AnalyzerError) as caught:
        read_profile(path)
    line = str(caught.value)
    assert "\n" not in line and message in line
    assert line.startswith(f"{path}:") and line.split(":")[1].isdigit()          # file:line(:column)


def test_profile_files_that_are_not_files_or_too_large(tmp_path):
    with pytest.raises(LatencyError, match="no such latency profile file"):
        read_profile(tmp_path / "missing.yaml")
    with pytest.raises(LatencyError, match="is a directory"):
        read_profile(tmp_path)
    huge = tmp_path / "huge.yaml"
    huge.write_text("# " + "x" * MAX_PROFILE_BYTES + "\n")
    with pytest.raises(LatencyError, match="larger than 2 MiB"):
        read_profile(huge)


def test_cli_prints_the_prediction_beside_the_roofline(tmp_path, capsys):
    path = tmp_path / "hand.yaml"
    path.write_text(GOOD)
    spec = tmp_path / "small.yaml"
    spec.write_text(SMALL)
    assert main(["analyze", str(spec), "--device", str(path), "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "predicted latency on hand (calibrated)" in out and "182 us per batch" in out
    assert "fallback" in out and "est. time" in out and "predicted" in out
    assert main(["analyze", str(spec), "--device", str(path), "--batch", "2", "--format", "json"]) == 0
    import json
    data = json.loads(capsys.readouterr().out)
    assert data["prediction"]["seconds"] == pytest.approx(182.1 * US)
    assert sum(l["predicted_seconds"] for l in data["layers"]) == pytest.approx(175.1 * US)   # less the forward call
    # a training step: the roofline only, and it says so
    assert main(["analyze", str(spec), "--device", str(path), "--mode", "train"]) == 0
    assert "predicts inference batches" in capsys.readouterr().out
    # a broken profile: one line, exit 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("version: 1", "version: 7"))
    assert main(["analyze", str(spec), "--device", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{bad}:" in err and "version 7" in err


# ----------------------------------------------------------------------------- analysis-fast, torch-free
def test_prediction_is_torch_free_and_takes_milliseconds(tmp_path):
    path = tmp_path / "hand.yaml"
    path.write_text(GOOD)
    code = ("import sys, time, statistics; import inception_analyzer as ia; "
            "from inception_analyzer.analysis.latency_file import read_profile; "
            f"p = read_profile({str(path)!r}); a = ia.analyze('inception_v3'); "
            "times = []\n"
            "for _ in range(5):\n"
            "    t = time.perf_counter(); a.predict(p, 32); times.append(time.perf_counter() - t)\n"
            "assert 'torch' not in sys.modules, 'torch imported'\n"
            "print(statistics.median(times))")
    done = subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120, capture_output=True,
                          text=True)
    seconds = float(done.stdout.strip())
    assert seconds < 0.1, f"predicting inception_v3's 300 layers took {1e3 * seconds:.1f} ms"


def test_prediction_time_in_process():
    analysis = ia.analyze("inception_v3")
    profile = hand_profile()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        analysis.predict(profile, 8)
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.1
    assert math.isfinite(analysis.predict(profile, 8).seconds)


def test_fresh_pages_do_not_depend_on_the_hash_seed():
    """The allocator simulation frees a layer's inputs in their order, not a set's (whose order
    changes from one process to the next), so a prediction is the same in every process."""
    code = ("import inception_analyzer as ia; from inception_analyzer.analysis.allocator import Allocator, fresh_bytes; "
            "a = ia.analyze('inception_v1'); "
            "print(sum(fresh_bytes(a.graph, 32, 4, Allocator(1e-10, layout_copies=True)).values()))")
    totals = {subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120, capture_output=True,
                             text=True, env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout.strip()
              for seed in range(4)}
    assert len(totals) == 1, totals


def test_the_allocator_simulation_stops_at_a_steady_heap_with_every_pass_s_figures(monkeypatch):
    """A pass of the simulation depends on nothing but the heap it starts on: once a pass ends on
    the heap the pass before it ended on, every later pass repeats it, and the simulation stops
    there. Its figures are those of the simulation made to run all its passes (a heap that never
    compares equal), for nets with branches, residual adds and an mmap-sized head."""
    from inception_analyzer.analysis import allocator as simulation
    settings = (simulation.Allocator(1.7e-9 / 4),
                simulation.Allocator(1e-10, layout_copies=True, mmap_threshold=32 * 2**20, channel_block=8))
    graphs = [ia.analyze(name).graph for name in ("inception_v1", "resnet50", "vgg16")]
    cases = [(graph, batch, allocator) for graph in graphs for batch in (1, 8, 32) for allocator in settings]
    stopping = [simulation.fresh_bytes(graph, batch, 4, allocator) for graph, batch, allocator in cases]
    monkeypatch.setattr(simulation._Heap, "state", lambda heap: object())
    every_pass = [simulation.fresh_bytes(graph, batch, 4, allocator) for graph, batch, allocator in cases]
    assert stopping == every_pass
    assert any(sum(fresh.values()) for fresh in every_pass)     # pages were faulted in: the check has teeth


def test_the_second_pass_stops_where_it_joins_the_first(monkeypatch):
    """Once the heap and the live tensors' places after a layer are those after the same layer
    of the pass before, the rest of the pass is not simulated again: resnet50 at batch 8 gets
    there within its first layers, so the whole simulation asks for few more blocks than one pass."""
    from inception_analyzer.analysis import allocator as simulation
    graph = ia.analyze("resnet50").graph
    allocator = simulation.Allocator(1e-10, layout_copies=True, mmap_threshold=32 * 2**20, channel_block=8)
    requests = []
    malloc = simulation._Heap.malloc
    monkeypatch.setattr(simulation._Heap, "malloc", lambda heap, size: requests.append(size) or malloc(heap, size))
    simulation.fresh_bytes(graph, 8, 4, allocator, passes=1)
    one_pass, requests[:] = len(requests), []
    simulation.fresh_bytes(graph, 8, 4, allocator)
    assert one_pass < len(requests) < 1.2 * one_pass


def test_the_layers_of_a_repeated_block_are_priced_as_each_alone():
    """The prediction prices one signature (op kind, arguments, shapes, in place or not) once and
    reuses it for Inception-ResNet-v2's repeated blocks: every layer's figures equal its own
    entry's, worked out for that layer alone, and a relu run in place is not priced as the same
    relu on the same shape run out of place."""
    from inception_analyzer.analysis.latency import context_seconds, predict_layer
    from inception_analyzer.analysis.roofline import estimate_layer, moves_data
    from inception_analyzer.graph import runs_in_place
    profile = hand_profile()
    conv = profile.entries["conv 3x3/1"]
    residuals = ((4.0, 8.0, 128.0, 1.0, 4.0, 1.25), (32.0, 32.0, 1024.0, 1.0, 8.0, 0.8))
    profile = replace(profile, entries={**profile.entries, "conv 3x3/1": replace(conv, residuals=residuals)})
    # r and s: one relu on one shape, r out of place (d reads its input too), s in place
    forked = ("name: forked\ninput: [3, 8, 8]\nlayers:\n  - c: conv(4, 3, padding=1)\n"
              "  - both:\n      concat:\n        - - r: relu\n        - - d: conv(4, 1)\n          - bn\n"
              "          - s: relu\n  - flatten\n")
    for analysis in (ia.analyze("inception_resnet_v2"), ia.analyze(build_graph(load_spec_text(forked, "forked.yaml")))):
        prediction = analysis.predict(profile, 3)
        records = {record.path: record for record in analysis.cost.layers}
        for layer in prediction.layers:
            node = analysis.graph.node(layer.path)
            work = layer_work(node.op, node.args, list(node.in_shapes), node.out_shape, 3,
                              runs_in_place(analysis.graph, node))
            record = records[layer.path]
            bound = estimate_layer(record, profile.device_profile(), "fp32", 3).seconds if moves_data(record) else 0.0
            assert (layer.how, layer.entry, layer.via, layer.overhead_seconds, layer.kernel_seconds,
                    layer.extrapolated, layer.roofline_seconds, layer.context_seconds) == \
                (*predict_layer(work, profile, bound), bound,
                 context_seconds(work, profile, 4, layer.via or layer.entry, layer.kernel_seconds)), layer.path


def test_the_allocator_simulation_replays_a_repeated_block_s_layers_as_each_alone():
    """The simulation works out the blocks a layer's call allocates once per signature: its
    figures are those of the same layers each given a signature of its own."""
    from inception_analyzer.analysis.allocator import Allocator, fresh_bytes
    from inception_analyzer.graph import main_layers
    allocator = Allocator(1e-10, layout_copies=True, mmap_threshold=32 * 2**20, channel_block=8)
    faulted = []
    for name in ("inception_resnet_v2", "resnet50"):
        graph = ia.analyze(name).graph
        layers = main_layers(graph)
        alone = [replace(layer, signature=(index,)) for index, layer in enumerate(layers)]
        assert len({layer.signature for layer in layers}) < len(layers) / 3      # repeated blocks share them
        for batch in (1, 8, 32):
            shared = fresh_bytes(graph, batch, 4, allocator, layers=layers)
            assert shared == fresh_bytes(graph, batch, 4, allocator, layers=alone), (name, batch)
            faulted.append(sum(shared.values()))
    assert any(faulted)                                      # pages were faulted in: the check has teeth


def test_a_cost_report_of_another_graph_is_refused():
    from inception_analyzer.analysis.latency import predict
    one, other = ia.analyze("resnet50"), ia.analyze("inception_v3")
    with pytest.raises(LatencyError, match="not of this graph"):
        predict(one.graph, other.cost, hand_profile())


def test_a_host_curve_s_sizes_increase_as_the_profile_keeps_them():
    """Sizes that differ only beyond the digits a profile keeps make one point: the file's sizes
    must increase, or it would not be read back."""
    samples = [Sample("conv 1x1/1", 1e-5, 1.23401e6 + i, host=10 * US) for i in range(12)]
    assert fit_host(samples, by_work=True) == ((1.234e6, pytest.approx(10 * US)),)
