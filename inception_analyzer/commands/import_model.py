"""`import MODULE:CALLABLE`: trace a PyTorch model with torch.fx and write it as a spec."""
from __future__ import annotations

import argparse
import sys

from ..errors import OverrideError
from ..numbers import human
from ..pipeline import Request, analyze
from .options import PROG, add_output_argument, emit, say

NAME = "import"
HELP = "trace any PyTorch model (torch.fx) and write it as a spec (needs torch)"
DESCRIPTION = ("Trace a PyTorch model with torch.fx, map every operation onto the op registry and write a "
               "readable spec (repeated modules become templates) that analyze, review, diagram and report "
               "read, and that builds a model loading the original's state_dict. Operations no op kind "
               "expresses are listed with their source line; the import then stops (exit 2).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODULE:CALLABLE",
                        help="e.g. torchvision.models:resnet50 or 'mypkg.nets:Net(width=2)' (literal arguments)")
    parser.add_argument("--input-size", type=int, default=224, metavar="N", help="square input of N x N (default 224)")
    parser.add_argument("--channels", type=int, default=3, metavar="C", help="input channels (default 3)")
    parser.add_argument("--name", help="the spec's name (default: the model's, e.g. resnet50 or the timm model name)")
    parser.add_argument("--allow-any-callable", action="store_true",
                        help="call whatever MODULE:CALLABLE names (by default only model factories: a class or "
                        "function of that package; importing the module runs its code either way)")
    parser.add_argument("--no-strict", dest="strict", action="store_false",
                        help="keep operations no op kind models as opaque ops (traced shape and weights "
                        "kept, MACs unknown; totals marked partial) instead of stopping")
    add_output_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..importer import import_to_spec  # torch is imported only when importing a model

    if args.input_size < 1 or args.channels < 1:
        raise OverrideError("--input-size and --channels must be positive")
    imported, text = import_to_spec(args.model, (args.channels, args.input_size, args.input_size), args.strict,
                                    args.name, args.allow_any_callable)
    for note in imported.notes:
        say(f"{PROG}: note: {note}\n", sys.stderr)
    emit(text, args.output)
    totals = analyze(Request(imported.graph)).totals
    say(f"{PROG}: imported {args.model} ({imported.traced_in} trace): {totals.layers} ops, "
        f"{totals.params:,} params, {human(totals.macs)} MACs" + (f"; wrote {args.output}" if args.output else "")
        + "\n", sys.stderr)
    for op in imported.unmodelled:
        say(f"{PROG}: note: not modelled, kept as an opaque op (MACs unknown): {op.line()}\n", sys.stderr)
    for module, params in imported.unreached.items():
        say(f"{PROG}: note: {module} holds {params:,} params but never runs in forward(); the spec leaves it out\n",
            sys.stderr)
    return 0
