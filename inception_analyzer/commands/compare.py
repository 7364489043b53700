"""`compare [SPEC ...]`: models side by side, with ratios against a baseline."""
from __future__ import annotations

import argparse

from ..pipeline import analyze_with_baseline
from ..render.compare import FORMATS, comparison_rows, render
from .options import SPEC_HELP, add_output_argument, emit

NAME = "compare"
# the Inception family with the baselines of its papers' comparisons
DEFAULT_SPECS = ("inception_v1", "bn_inception", "inception_v2", "inception_v3", "inception_v4",
                 "inception_resnet_v2", "resnet50", "vgg16", "vgg19", "alexnet")
DEFAULT_BASELINE = "vgg16"
HELP = "compare models side by side: cost, depth, receptive field, published accuracy, findings"
DESCRIPTION = ("One row per model: params, MACs, activations, depth, receptive field of the last feature "
               "map, published top-1/top-5 with its source, review findings, and ratios against a "
               f"baseline. Without specs: {', '.join(DEFAULT_SPECS)}.")


def add_baseline_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, metavar="MODEL",
                        help="ratios against this model: a compared model's name, a spec file or a bundled "
                             f"spec name, added as a row when not compared (default: {DEFAULT_BASELINE})")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="*", metavar="SPEC",
                        help=f"{SPEC_HELP} (default: " + " ".join(DEFAULT_SPECS) + ")")
    add_baseline_argument(parser)
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    add_output_argument(parser)


def run(args: argparse.Namespace) -> int:
    models, baseline = analyze_with_baseline(args.specs or list(DEFAULT_SPECS), args.baseline)
    text = render(comparison_rows(models, baseline), args.format)
    emit(text, args.output, tuple(m.request.spec_file for m in [*models, baseline]))
    return 0
