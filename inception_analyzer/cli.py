"""Command line: the parser built from the command layer (inception_analyzer/commands), and the
error boundary. Every error the user can cause is an AnalyzerError: one line on stderr, exit 2.
SIGTERM (what `timeout` and CI runners send) is handled as Ctrl-C is: outputs being written are
removed, finished ones stay whole.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import NoReturn, Sequence

from .commands import COMMANDS
from .commands.options import PROG
from .errors import AnalyzerError
from .untrusted import visible
from .version import __version__

EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like KeyboardInterrupt, so every `finally` cleans up."""


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (it prints the usage and the error on two)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {visible(message)} (see {self.prog} --help)\n")


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


def _terminate(signum, frame) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        code = args.run(args)
    except AnalyzerError as err:
        print(f"{PROG}: {visible(str(err))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `analyze ... | head`
        _discard_stdout()
        return 0
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print(f"{PROG}: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    finally:
        signal.signal(signal.SIGTERM, previous)
    return _flushed(code)


def _flushed(code: int) -> int:
    """Flush stdout now: a full disk or a closed pipe shows here as one line, not as a traceback
    at the interpreter's exit."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
    except OSError as err:
        _discard_stdout()
        print(f"{PROG}: output error: cannot write to the standard output ({err.strerror})", file=sys.stderr)
        return 2
    return code


def _discard_stdout() -> None:
    """Whatever is still buffered for stdout can no longer be written: drop it, so the
    interpreter's own flush at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # not a file (a test's StringIO): nothing is buffered there
        pass


def analyze_main(argv: Sequence[str] | None = None) -> int:
    """The `analyze` console script: `analyze SPEC ...` = `inception-analyzer analyze SPEC ...`."""
    return main(["analyze", *(sys.argv[1:] if argv is None else argv)])
