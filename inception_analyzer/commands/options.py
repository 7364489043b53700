"""Options and steps every subcommand shares: the SPEC argument with --set and --input-size,
output to a file or stdout, reading `key=value` overrides into a Request."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from ..dtypes import DTypeError, get_dtype
from ..errors import AnalyzerError, OverrideError, shown
from ..output import OutputError, write_atomically
from ..pipeline import Request
from ..spec.yaml_source import parse_scalar
from ..untrusted import visible

PROG = "inception-analyzer"
SPEC_HELP = "a spec file, or the name of a bundled spec (inception-analyzer list)"


def parse_assignment(text: str) -> tuple[str, Any]:
    """`key=value` with the value read as a YAML scalar (10, 0.5, false, name)."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip().isidentifier():
        raise OverrideError(f"--set takes key=value (e.g. aux_logits=false), got {shown(text)}")
    try:
        value = parse_scalar(raw) if raw.strip() else None
    except AnalyzerError as err:
        raise OverrideError(f"cannot read the value of --set {shown(text)}: {err.message}") from None
    if isinstance(value, (dict, list)):
        raise OverrideError(f"--set {key} takes a single value, got {shown(raw)}")
    return key.strip(), value


def dtype_name(text: str) -> str:
    """--dtype: a name of the one dtype table (inception_analyzer.dtypes), checked by it."""
    try:
        return get_dtype(text).name
    except DTypeError as err:
        raise argparse.ArgumentTypeError(f"{err.message}; {err.hint}") from None


def add_spec_arguments(parser: argparse.ArgumentParser, many: bool = False) -> None:
    """SPEC (or SPEC... with `many`), --set KEY=VALUE (repeatable), --input-size N and --width W."""
    if many:
        parser.add_argument("spec", nargs="+", metavar="SPEC", help=SPEC_HELP + " (several)")
    else:
        parser.add_argument("spec", metavar="SPEC", help=SPEC_HELP)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec argument, e.g. --set aux_logits=false (repeatable)")
    parser.add_argument("--input-size", type=int, metavar="N", help="square input of N x N pixels")
    parser.add_argument("--width", type=float, metavar="W",
                        help="multiply every conv's output channels by W (the classes and residual ties kept)")
    parser.add_argument("--round", dest="width_round", type=int, default=8, metavar="N",
                        help="channels round to a multiple of N under --width (default 8)")


def add_output_argument(parser: argparse.ArgumentParser, what: str = "FILE") -> None:
    parser.add_argument("-o", "--output", metavar=what, help=f"write to {what} (atomically) instead of stdout")


def overrides_of(args: argparse.Namespace) -> dict[str, Any]:
    return dict(parse_assignment(item) for item in args.overrides)


def request_of(args: argparse.Namespace, spec: str | None = None) -> Request:
    """The Request a command's SPEC, --set, --input-size and --width ask for (`spec` for one of several)."""
    return Request(args.spec if spec is None else spec, overrides_of(args), args.input_size, args.width,
                   args.width_round)


def emit(text: str, output: str | None, protected: tuple = ()) -> None:
    """Write `text` to the file `output` (atomically, never over a protected input) or to stdout."""
    if output:
        write_atomically(output, text, tuple(p for p in protected if p))
    else:
        say(text)


def say(text: str, stream=None) -> None:
    """Text for the terminal (stdout unless `stream`): control characters from a spec are shown
    as escapes, never sent; a full disk behind stdout is an OutputError."""
    try:
        (stream or sys.stdout).write(visible(text))
    except BrokenPipeError:
        raise
    except OSError as err:
        raise OutputError(f"cannot write to the standard output ({err.strerror})") from None
