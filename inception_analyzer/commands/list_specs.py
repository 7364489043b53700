"""`list`: the bundled specs, by name, with their paper and year."""
from __future__ import annotations

import argparse

from tabulate import tabulate

from .. import catalog
from ..spec import load_spec
from .options import say

NAME = "list"
HELP = "list the bundled specs (any command takes their names in place of a file)"
DESCRIPTION = ("The specs that ship with inception-analyzer: any command takes a bundled spec's name "
               "where it takes a spec file (`inception-analyzer analyze inception_v3`).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    rows = []
    for name in catalog.bundled_names():
        spec = load_spec(catalog.resolve(name))
        paper = spec.metadata.get("paper", "")
        year = spec.metadata.get("year", "")
        rows.append([name, f"{paper} ({year})" if paper and year else paper or "-"])
    say(tabulate(rows, ["spec", "paper"], tablefmt="simple") + "\n")
    return 0
