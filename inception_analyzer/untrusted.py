"""Text from a spec or a model is untrusted wherever it goes: a name, a path, a description, a
published source may hold markup, quotes, control characters or `../`. These are the only ways
such text leaves the program, one per kind of sink:

- `visible`: the terminal and plain-text output (control characters shown as escapes);
- `slug`: file names and ids (letters, digits, '-' and '_', never empty, never a path);
- `csv_cell`: a spreadsheet cell (no formula: `=`, `+`, `-`, `@` first are neutralised);
- `markdown_text`, `markdown_cell`, `markdown_code`: Markdown (no raw HTML, no accidental
  emphasis, links or table cells);
- `dot_identifier`, `dot_escape`: graphviz's DOT language (HTML escaping is `html.escape`).
"""
from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """Control characters (escape sequences, NUL, bidirectional overrides) as visible escapes
    (`\\x1b`); line breaks and tabs are kept."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def one_line(text: str) -> str:
    """`visible`, with line breaks shown too: for a value inside a one-line message."""
    return visible(text).replace("\r", "\\r").replace("\n", "\\n")


def slug(text: str, limit: int = 40) -> str:
    """A file-name and id-safe form of a name: 'Mixed 5b/../x' -> 'mixed-5b-x'; 'model' if
    nothing is left. Not unique: callers that need unique names add an index."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^a-z0-9_]+", "-", ascii_text.lower()).strip("-_")[:limit].strip("-_")
    return cleaned or "model"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A value for a CSV cell: text that a spreadsheet would run as a formula gets a leading
    apostrophe (OWASP's advice); numbers, and text that reads as one ('-1.5'), stay as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        try:
            float(value)
        except ValueError:
            return "'" + value
    return value


# what Markdown reads anywhere in a line: escapes, code, emphasis, raw HTML and autolinks,
# entities, table pipes, GFM's strikethrough; `_` only where it can start or end emphasis (not
# inside a word: Conv2d_2b_3x3 stays as it is); `]` only where it would close a link or image
# (`[text](url)`), so '[1]' stays as it is
_MARKDOWN_SPECIAL = re.compile(r"[\\`*<&|~]|\](?=[(\[])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# what Markdown reads at the start of a line: headings, lists, quotes, setext underlines
_BLOCK_START = re.compile(r"^(?:[#>+=-]|\d+[.)])")


def markdown_text(text: str) -> str:
    """Text as Markdown shows it literally: what Markdown would read as emphasis, links, raw
    HTML, entities, table pipes or a block marker is backslash-escaped; line breaks are spaces."""
    flat = visible(text).replace("\r", " ").replace("\n", " ")
    escaped = _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(), flat)
    return _BLOCK_START.sub(lambda m: m.group()[:-1] + "\\" + m.group()[-1], escaped)


def markdown_cell(text) -> str:
    """Text for a Markdown table cell: as `markdown_text`, without block markers (a cell is
    inline; a lone '-' stays '-')."""
    flat = visible(str(text)).replace("\r", " ").replace("\n", " ")
    return _MARKDOWN_SPECIAL.sub(lambda m: "\\" + m.group(), flat)


def markdown_code(text: str) -> str:
    """Text as a Markdown code span, whatever backticks it holds (a longer fence around it)."""
    text = visible(text).replace("\r", " ").replace("\n", " ")
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {text} " if text.startswith("`") or text.endswith("`") or not text.strip() else text
    return f"{fence}{padded}{fence}"


def dot_identifier(text: str) -> str:
    """A DOT ID of letters, digits and '_' (never quoted, so nothing in it can be read as DOT)."""
    identifier = re.sub(r"\W", "_", text, flags=re.ASCII)
    return identifier if identifier[:1].isalpha() else f"g_{identifier}"


def dot_escape(text: str) -> str:
    """Text for a quoted DOT attribute value (a tooltip): backslashes doubled, so a name ending
    in one cannot swallow the closing quote; control characters visible."""
    return one_line(text.replace("\\", "\\\\"))
