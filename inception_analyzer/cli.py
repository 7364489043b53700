"""Command line: the parser built from the command layer (inception_analyzer/commands), and the
error boundary. Every error the user can cause is an AnalyzerError: one line on stderr, exit 2.
"""
from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Sequence

from .commands import COMMANDS
from .commands.options import PROG
from .errors import AnalyzerError
from .version import __version__


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (it prints the usage and the error on two)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Exact cost analysis and design review of CNN architectures "
                     "written as YAML specs.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for command in COMMANDS:
        sub = commands.add_parser(command.NAME, help=command.HELP, description=command.DESCRIPTION)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except AnalyzerError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `analyze ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


def analyze_main(argv: Sequence[str] | None = None) -> int:
    """The `analyze` console script: `analyze SPEC ...` = `inception-analyzer analyze SPEC ...`."""
    return main(["analyze", *(sys.argv[1:] if argv is None else argv)])
