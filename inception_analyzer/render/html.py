"""Self-contained HTML: one file with its style inline, no script, nothing fetched from elsewhere."""
from __future__ import annotations

import html
import re
from typing import Sequence

from ..untrusted import visible

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1a1a1a;
       max-width: 78rem; margin: 2rem auto; padding: 0 1.5rem; line-height: 1.45; }
h1 { font-size: 1.6rem; border-bottom: 2px solid #ddd; padding-bottom: .3rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #eee; }
h3 { font-size: 1.1rem; margin-top: 1.6rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .86rem; }
th, td { border: 1px solid #d0d7de; padding: .25rem .55rem; vertical-align: top; }
th { background: #f3f5f7; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.baseline td { background: #f7f7f0; }
figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; }
/* a diagram keeps its own scale, legible, and scrolls where it is larger than the page */
figure.diagram { border: 1px solid #eee; padding: .5rem; overflow: auto; max-height: 85vh; }
figure.diagram svg { max-width: none; }
nav.contents { font-size: .92rem; } nav.contents ul { margin: .2rem 0; }
details > summary { cursor: pointer; color: #1565c0; margin: .5rem 0; }
figcaption { font-size: .86rem; color: #555; }
.finding { border-left: 4px solid #999; padding: .2rem .8rem; margin: .8rem 0; background: #fafafa; }
.finding.error { border-color: #c62828; } .finding.warning { border-color: #e65100; }
.finding.info { border-color: #1565c0; }
.severity { font-weight: bold; text-transform: uppercase; font-size: .8rem; }
.error .severity { color: #c62828; } .warning .severity { color: #e65100; } .info .severity { color: #1565c0; }
.muted { color: #666; font-size: .86rem; }
code { background: #f3f5f7; padding: 0 .2rem; border-radius: 3px; }
"""


def escape(text) -> str:
    """Any text for an HTML page: markup characters and quotes escaped, control characters shown."""
    return html.escape(visible(str(text)), quote=True)


def page(title: str, body: str) -> str:
    """A whole HTML5 document around `body` (already HTML)."""
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def table(headers: Sequence[str], rows: Sequence[Sequence], numeric: Sequence[bool] | None = None,
          row_classes: Sequence[str] | None = None) -> str:
    """An HTML table; cells are text (escaped here), `numeric` columns are right-aligned."""
    numeric = list(numeric or [False] * len(headers))
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for index, row in enumerate(rows):
        css = f' class="{row_classes[index]}"' if row_classes and row_classes[index] else ""
        cells = "".join(f'<td class="num">{escape(v)}</td>' if numeric[i] else f"<td>{escape(v)}</td>"
                        for i, v in enumerate(row))
        body.append(f"<tr{css}>{cells}</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>"


_ID = re.compile(r'\bid="([^"]+)"')
_REFERENCE = re.compile(r'(\bid="|href="#|url\(#)([^")]+)')


def inline_svg(svg: str, prefix: str) -> str:
    """An SVG file's text made fit to sit inside an HTML page beside other SVGs: the XML prolog,
    doctype and comments before <svg> dropped, and every id (with the references to it) prefixed,
    so that two figures never share an id."""
    start = svg.find("<svg")
    if start < 0:
        raise ValueError("not an SVG document")
    body = svg[start:]
    ids = set(_ID.findall(body))

    def rename(match: re.Match) -> str:
        lead, name = match.groups()
        return f"{lead}{prefix}-{name}" if name in ids else match.group(0)

    return _REFERENCE.sub(rename, body).strip()
