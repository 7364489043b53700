"""`diagram SPEC -o FILE`: the graphviz diagram, in the format the file name asks for."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import SourceLocation
from ..output import OutputError, write_atomically, write_atomically_with
from ..pipeline import analyze
from ..render.diagram import LEVELS, build_diagram, diagram_source, render_dot
from .options import add_spec_arguments, request_of, say

NAME = "diagram"
HELP = "draw the network (graphviz): blocks or every op, coloured by MACs, with review findings"
DESCRIPTION = ("Draw a spec as a graphviz diagram: one node per module instance (--level block) or per "
               "op (--level layer), filled by share of the inference MACs, with the design review's "
               "findings on the nodes they concern. The format follows the file name.")
FORMATS = ("svg", "png", "pdf", "dot")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_arguments(parser)
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="FILE.svg, FILE.png, FILE.pdf or FILE.dot (written atomically)")
    parser.add_argument("--level", choices=LEVELS, default="block",
                        help="one node per module instance (block, default) or per op (layer)")
    parser.add_argument("--collapse", action="store_true",
                        help='draw consecutive instances of one module as one node ("Mixed_6b..6e x4")')


def output_format(path: str | Path) -> str:
    """The diagram format named by the output file's suffix."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise OutputError(f"cannot tell the diagram format from the file name: use .{', .'.join(FORMATS)}",
                          SourceLocation(str(path)))
    return suffix


def write_diagram(source: str, path: str | Path, protected: tuple = ()) -> str | None:
    """Write the diagram in the format its name asks for, atomically. Without `dot`, write the DOT
    text beside it (same name, .dot) and return a note saying so."""
    fmt = output_format(path)
    if fmt == "dot":
        write_atomically(path, source, protected)
        return None
    data = render_dot(source, fmt)
    if data is None:
        fallback = Path(path).with_suffix(".dot")
        write_atomically(fallback, source, protected)
        return (f"graphviz 'dot' is not installed: wrote the DOT source to {fallback} instead of {path} "
                f"(install Debian's graphviz, then run `dot -T{fmt} {fallback} -o {path}`)")
    write_atomically_with(path, lambda temp: Path(temp).write_bytes(data), protected)
    return None


def run(args: argparse.Namespace) -> int:
    output_format(args.output)  # a wrong file name fails before any work
    request = request_of(args)
    analysis = analyze(request)
    diagram = build_diagram(analysis, args.level, args.collapse)
    note = write_diagram(diagram_source(diagram), args.output, protected=(request.spec_file,))
    if note:
        say(f"note: {note}\n", sys.stderr)
    return 0
