"""The command layer: one module per subcommand, each with NAME, HELP, DESCRIPTION,
`add_arguments(parser)` and `run(args) -> exit status`. They parse, ask the pipeline, and hand
records to a renderer; nothing below this package imports argparse or the CLI.

Adding a command is one module here and one entry in COMMANDS (the order of `--help`).
"""
from __future__ import annotations

from . import analyze, bench, build, calibrate, compare, diagram, import_model, list_specs, ops, report, review, sweep

COMMANDS = (analyze, review, build, bench, calibrate, diagram, compare, report, sweep, import_model, list_specs, ops)
