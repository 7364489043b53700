"""`build SPEC`: the torch model, checked against the analysis, optionally exported."""
from __future__ import annotations

import argparse

from ..pipeline import analyze
from .options import add_spec_arguments, dtype_name, request_of, say

NAME = "build"
HELP = "build the torch model, check it, export it (needs torch)"
DESCRIPTION = ("Build a spec's torch.nn.Module (needs torch), check that it runs and matches the analysis, "
               "optionally export it.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("--dtype", type=dtype_name, default="fp32",
                        help="fp32, tf32 (fp32 storage, tensor-core math on CUDA), bf16 or fp16 (default: fp32)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    parser.add_argument("--export", nargs=2, metavar=("FORMAT", "PATH"),
                        help="write the model as onnx (opens in Netron) or torchscript")
    parser.add_argument("--summary", action="store_true",
                        help="print the module tree's blocks with params and output shapes")
    parser.add_argument("--code", action="store_true",
                        help="print the forward pass generated for the model (one line per op)")


def run(args: argparse.Namespace) -> int:
    from ..build import EXPORT_FORMATS, BuildError, build_and_check, export_model  # torch only when building
    from ..render.tables import build_summary

    if args.export and args.export[0] not in EXPORT_FORMATS:
        raise BuildError(f"--export takes one of {', '.join(EXPORT_FORMATS)}, got '{args.export[0]}'")
    request = request_of(args)
    analysis = analyze(request)
    model, line = build_and_check(analysis, device=args.device, dtype=args.dtype, channels_last=args.channels_last)
    say(line + "\n")
    if args.summary:
        say(build_summary(analysis.cost) + "\n")
    if args.code:
        say("\n" + model.code)
    if args.export:
        fmt, path = args.export
        export_model(model, fmt, path, protected=(request.spec_file,))
        say(f"wrote {fmt} to {path}\n")
    return 0
