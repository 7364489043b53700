"""The `bench` command's options, torch-free: building the CLI's parser must not import torch
(`analyze` starts fast and runs where torch is absent). The measuring is in bench.py."""
from __future__ import annotations

import argparse

from .analysis.roofline import MODES, profile_names
from .dtypes import DTYPE_NAMES
from .errors import AnalyzerError

MIN_ITERATIONS = 5
MAX_ITERATIONS = 1000
DEFAULT_WARMUP = 3
DEFAULT_MIN_TIME = 2.0          # seconds of timed iterations per measurement
BENCH_FORMATS = ("table", "markdown", "csv", "json")


class BenchError(AnalyzerError):
    """A benchmark that cannot run as asked (printed as one line, exit 2)."""

    kind = "bench error"


def parse_batches(text: str) -> list[int]:
    """'1,32,256' -> [1, 32, 256]."""
    try:
        batches = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--batch takes sizes separated by commas, e.g. 1,32,256; got '{text}'") \
            from None
    if not batches or any(b < 1 for b in batches):
        raise argparse.ArgumentTypeError(f"batch sizes must be positive integers, got '{text}'")
    return batches


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `bench` subcommand's options (cli.py: `bench_cmd = commands.add_parser("bench", ...)`)."""
    parser.add_argument("spec", nargs="+", help="spec YAML files (see specs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec argument in every spec, e.g. --set aux_logits=false (repeatable)")
    parser.add_argument("--input-size", type=int, metavar="N", help="square input of N x N pixels")
    parser.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available, else cpu)")
    parser.add_argument("--batch", type=parse_batches, default=[1], metavar="N,N,...",
                        help="batch sizes, e.g. 1,32,256 (default: 1)")
    parser.add_argument("--dtype", choices=DTYPE_NAMES, default="fp32",
                        help="fp32 (TF32 off), tf32 (CUDA only), bf16 or fp16 (default: fp32)")
    parser.add_argument("--channels-last", action="store_true", help="channels_last memory format")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model before timing")
    parser.add_argument("--compile-mode", choices=("default", "reduce-overhead", "max-autotune"),
                        help="torch.compile mode (with --compile)")
    parser.add_argument("--mode", choices=MODES, default="inference",
                        help="inference (a forward pass) or train (a full training step; default: inference)")
    parser.add_argument("--per-layer", action="store_true",
                        help="also profile each layer's forward (torch profiler) beside its estimate")
    parser.add_argument("--profile", metavar="NAME", help="device profile for the estimate and the share of peak "
                        f"({', '.join(profile_names())}; default: matched from the device's name)")
    parser.add_argument("--no-torchvision", dest="torchvision", action="store_false",
                        help="do not time torchvision's model beside ours")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads for torch's kernels (default: torch's own, one per core)")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, metavar="N",
                        help=f"warm-up iterations (default: {DEFAULT_WARMUP})")
    parser.add_argument("--iters", type=int, metavar="N",
                        help=f"timed iterations (default: enough for --min-time, at least {MIN_ITERATIONS})")
    parser.add_argument("--min-time", type=float, default=DEFAULT_MIN_TIME, metavar="S",
                        help=f"seconds of timed iterations per measurement (default: {DEFAULT_MIN_TIME:g})")
    parser.add_argument("--format", choices=BENCH_FORMATS, default="table", help="output format (default: table)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write to FILE (atomically) instead of stdout")
