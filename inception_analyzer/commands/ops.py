"""`ops`: the op kinds a spec can use, with their arguments and how their FLOPs are counted."""
from __future__ import annotations

import argparse

from tabulate import tabulate

from ..ops import OPS, REQUIRED
from .options import say

NAME = "ops"
HELP = "list the op kinds a spec can use"
DESCRIPTION = ("Every op kind of the registry: how a spec calls it, what it is, and the rule its "
               "'other FLOPs' follow (docs/conventions.md); conv and linear count MACs instead.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    rows = []
    for name, op in OPS.items():
        if name == "input":
            continue
        signature = ", ".join(a.name if a.default is REQUIRED else f"{a.name}={a.default!r}" for a in op.args)
        usage = f"{name}: [branch, ...]" if op.merges else f"{name}({signature})"
        rows.append([usage, op.summary, "counted as MACs" if op.weighted else op.other_flops_rule])
    say(tabulate(rows, ["op", "what it is", "other FLOPs"], tablefmt="simple") + "\n")
    return 0
