"""Text formats for every renderer: tabulate's layouts, with each cell of a Markdown table
escaped (a name from a spec can hold `|`, `<`, `*`: it must stay one cell of plain text), CSV
whose cells can never be read as a spreadsheet formula, and strict JSON (no NaN or Infinity,
which are not JSON: such a figure is null)."""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Callable, Iterable, Iterator, Sequence

from tabulate import tabulate

from ..untrusted import csv_cell, markdown_cell

MARKDOWN = "github"


def tabulated(rows: Sequence[Sequence], headers: Sequence[str], tablefmt: str = "simple", **options) -> str:
    """`tabulate` with numbers left as written (the renderers format them) and Markdown-safe cells."""
    if tablefmt == MARKDOWN:
        rows = [[markdown_cell(cell) for cell in row] for row in rows]
        headers = [markdown_cell(header) for header in headers]
    return tabulate(rows, headers, tablefmt=tablefmt, disable_numparse=True, **options)


def csv_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """CSV with one header line; text cells that start like a formula are neutralised."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([csv_cell(cell) for cell in row] for row in rows)
    return out.getvalue()


def json_text(data, indent: int = 1) -> str:
    """Strict JSON (RFC 8259): a non-finite number (a ratio against a baseline of zero, a spec's
    `.nan`) is written as null."""
    try:
        return json.dumps(data, indent=indent, allow_nan=False) + "\n"
    except ValueError:  # rare: walk the data only when a non-finite number is in it
        return json.dumps(_finite(data), indent=indent, allow_nan=False) + "\n"


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


class Records:
    """A list of records made one at a time as they are written (`json_records_text`), so that a
    250,000-layer report never holds every record's dict at once, only its line of text."""

    def __init__(self, make: Callable[[], Iterable[dict]]):
        self.make = make

    def __iter__(self) -> Iterator[dict]:
        return iter(self.make())


def json_records_text(data: dict) -> str:
    """Strict JSON laid out for large reports: one top-level key per line, and one record per
    line in lists of records (`layers`, `blocks`, ...: a list of dicts, or Records). json's C
    encoder writes each line, so a 250,000-layer report takes seconds, not the minute its
    indented form takes; the lines are joined once, so the text is built in two copies, not four."""
    pieces = ["{\n"]
    for number, (key, value) in enumerate(data.items()):
        pieces.append(f"{',' if number else ''}\n {_compact(key)}: " if number else f" {_compact(key)}: ")
        if isinstance(value, Records) or (isinstance(value, list) and value and all(isinstance(item, dict)
                                                                                   for item in value)):
            start = len(pieces)
            for item in value:
                pieces.append(",\n  " if len(pieces) > start else "[\n  ")
                pieces.append(_compact(item))
            pieces.append("\n ]" if len(pieces) > start else "[]")
        else:
            pieces.append(_compact(value))
    pieces.append("\n}\n")
    return "".join(pieces)


def _compact(value) -> str:
    try:
        return json.dumps(value, allow_nan=False, separators=(", ", ": "))
    except ValueError:
        return json.dumps(_finite(value), allow_nan=False, separators=(", ", ": "))
