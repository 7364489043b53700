"""`report SPEC ... -o DIR`: the design-review report, Markdown and one self-contained HTML page."""
from __future__ import annotations

import argparse

from ..output import write_directory
from ..pipeline import analyze_with_baseline
from ..render.report import HTML_NAME, build_report
from .compare import add_baseline_argument
from .options import SPEC_HELP, say

NAME = "report"
HELP = "write a design-review report (Markdown and self-contained HTML) with diagrams and plots"
DESCRIPTION = ("Write a design-review report of one or more specs into DIR: report.md (figures in "
               "DIR/figures) and report.html (one file, every figure inline as SVG).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("specs", nargs="+", metavar="SPEC", help=SPEC_HELP + " (several)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR",
                        help="directory for report.md, report.html and figures/ (created if missing)")
    add_baseline_argument(parser)


def run(args: argparse.Namespace) -> int:
    models, baseline = analyze_with_baseline(args.specs, args.baseline)
    protected = tuple(m.request.spec_file for m in [*models, baseline] if m.request.spec_file)
    written = write_directory(build_report(models, baseline).contents(), args.output, protected, "report")
    html = next(path for path in written if path.name == HTML_NAME)
    say(f"wrote {len(written)} files to {args.output} (open {html})\n")
    return 0
