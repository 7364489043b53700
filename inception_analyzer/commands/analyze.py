"""`analyze SPEC`: per-layer and total cost with the memory of a run, or (with --device) the
roofline estimate on a device profile, and with a calibrated profile file (`calibrate -o FILE`) the
predicted latency beside it. --mode, --batch and --dtype describe the run either way."""
from __future__ import annotations

import argparse

from ..analysis.latency_file import looks_like_profile_file, read_profile
from ..analysis.memory import MemorySettings
from ..analysis.roofline import MODES, device_profile, profile_names
from ..analysis.training import DEFAULT_OPTIMIZER, OPTIMIZERS
from ..errors import AnalyzerError
from ..ops.base import BACKENDS, CPU
from ..pipeline import analyze
from ..render.estimate import format_estimate
from ..render.tables import DEPTHS, FORMATS, render
from .options import add_output_argument, add_spec_arguments, dtype_name, emit, request_of

NAME = "analyze"
HELP = "per-layer shapes, params, MACs, activations and memory"
DESCRIPTION = ("Per-layer and total cost of a spec, per image, with the memory of one run (inference, or a "
               "training step with its FLOPs) for a batch and dtype.")


class OptionError(AnalyzerError):
    kind = "option error"


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
                        "and per model beside the roofline; it gives the memory the largest batch may use")
    parser.add_argument("--dtype", type=dtype_name,
                        help="dtype of the run: activations (and at inference the weights; training keeps fp32 "
                             "master weights under autocast) (default: fp32, or a calibrated profile's own)")
    parser.add_argument("--batch", type=int, default=1, metavar="N", help="images per batch (default: 1)")
    parser.add_argument("--mode", choices=MODES, default="inference",
                        help="inference (one batch) or train (one training step: FLOPs of the backward pass, "
                             "gradients and optimizer state; default: inference)")
    parser.add_argument("--optimizer", choices=tuple(OPTIMIZERS), default=DEFAULT_OPTIMIZER,
                        help="the optimizer of a training step, for its state (default: rmsprop, the paper's)")
    parser.add_argument("--backend", choices=BACKENDS,
                        help="how eager PyTorch runs, for the workspaces: cpu (oneDNN) or cuda (default: the "
                             "device profile's, else cpu)")


def run(args: argparse.Namespace) -> int:
    request = request_of(args)
    analysis = analyze(request)
    if args.device:
        calibrated = read_profile(args.device) if looks_like_profile_file(args.device) else None
        profile = calibrated.device_profile() if calibrated else device_profile(args.device)
        if args.backend and args.backend != profile.backend:
            raise OptionError(f"--backend {args.backend} does not run on device profile '{profile.name}' "
                              f"(a {profile.backend} profile)")
        dtype = args.dtype or (calibrated.dtype if calibrated else "fp32")
        # the prediction first: it says which dtype the profile was calibrated for
        prediction = (analysis.predict(calibrated, args.batch, dtype)
                      if calibrated and args.mode == "inference" else None)
        model = analysis.estimate(profile, dtype, args.batch, args.mode, args.optimizer)
        if calibrated and prediction is None:
            model.notes.append("a calibrated profile predicts inference batches: a training step has the roofline "
                               "only")
        text = format_estimate(model, args.format, args.depth, prediction=prediction)
    else:
        memory = analysis.memory(MemorySettings(batch=args.batch, dtype=args.dtype or "fp32", mode=args.mode,
                                                backend=args.backend or CPU, optimizer=args.optimizer))
        text = render(analysis, args.format, args.depth, args.rf, memory)
    emit(text, args.output, (request.spec_file,))
    return 0
