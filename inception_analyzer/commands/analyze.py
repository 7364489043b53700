"""`analyze SPEC`: per-layer and total cost, or (with --device) the roofline estimate, and with a
calibrated profile file (`calibrate -o FILE`) the predicted latency beside it."""
from __future__ import annotations

import argparse

from ..analysis.latency_file import looks_like_profile_file, read_profile
from ..analysis.roofline import MODES, device_profile, profile_names
from ..pipeline import analyze
from ..render.estimate import format_estimate
from ..render.tables import DEPTHS, FORMATS, render
from .options import add_output_argument, add_spec_arguments, dtype_name, emit, request_of

NAME = "analyze"
HELP = "per-layer shapes, params, MACs and activations"
DESCRIPTION = "Per-layer and total cost of a spec, per image."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument("--depth", choices=DEPTHS, default="layer",
                        help="rows per leaf layer, per block (module instance) or per stage (grid size)")
    parser.add_argument("--rf", action="store_true",
                        help="show how the receptive field grows, layer by layer (or per block/stage)")
    add_output_argument(parser)
    parser.add_argument("--device", metavar="PROFILE", help="roofline estimate on a device profile instead of "
                        f"the cost table: {', '.join(profile_names())} (cpu is measured on the spot), or a "
                        "calibrated profile file (PROFILE.yaml, from `calibrate`): the predicted latency per layer "
                        "and per model beside the roofline")
    parser.add_argument("--dtype", type=dtype_name, help="dtype of the estimate (default: fp32, or a calibrated "
                        "profile's own)")
    parser.add_argument("--batch", type=int, default=1, metavar="N", help="images per batch (default: 1)")
    parser.add_argument("--mode", choices=MODES, default="inference",
                        help="inference (one batch) or train (one training step; default: inference)")


def run(args: argparse.Namespace) -> int:
    request = request_of(args)
    analysis = analyze(request)
    if args.device and looks_like_profile_file(args.device):
        calibrated = read_profile(args.device)
        dtype = args.dtype or calibrated.dtype
        # the prediction first: it says which dtype the profile was calibrated for
        prediction = analysis.predict(calibrated, args.batch, dtype) if args.mode == "inference" else None
        model = analysis.estimate(calibrated.device_profile(), dtype, args.batch, args.mode)
        if prediction is None:
            model.notes.append("a calibrated profile predicts inference batches: a training step has the roofline "
                               "only")
        text = format_estimate(model, args.format, args.depth, prediction=prediction)
    elif args.device:
        model = analysis.estimate(device_profile(args.device), args.dtype or "fp32", args.batch, args.mode)
        text = format_estimate(model, args.format, args.depth)
    else:
        text = render(analysis, args.format, args.depth, args.rf)
    emit(text, args.output, (request.spec_file,))
    return 0
