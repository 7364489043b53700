"""`review SPEC`: the design review against the Rethinking paper's principles."""
from __future__ import annotations

import argparse

from ..analysis.findings import SEVERITIES, severity_at_least
from ..pipeline import analyze
from ..render.review import REVIEW_FORMATS, render_review
from .options import add_output_argument, add_spec_arguments, emit, request_of

NAME = "review"
HELP = "check the design against the Rethinking paper's principles"
DESCRIPTION = ("Design review: representational bottlenecks (P1), width at the coarsest grid (P2), spatial "
               "aggregation over reduced embeddings (P3), stage balance (P4), factorization (§3), auxiliary "
               "heads (§4), grid reduction (§5). Exit 1 with --fail-on when a finding reaches that level.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("--format", choices=REVIEW_FORMATS, default="table", help="output format")
    parser.add_argument("--fail-on", choices=SEVERITIES, metavar="LEVEL",
                        help="exit 1 when a finding of this severity or worse exists (info|warning|error)")
    add_output_argument(parser)


def run(args: argparse.Namespace) -> int:
    request = request_of(args)
    analysis = analyze(request)
    emit(render_review(analysis, args.format), args.output, (request.spec_file,))
    if args.fail_on and severity_at_least(analysis.findings, args.fail_on):
        return 1
    return 0
