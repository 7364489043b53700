"""A small document model, so that the report is written once and rendered twice: as Markdown
(figures as files beside it) and as one self-contained HTML page (figures inline as SVG).

Text is a small subset of Markdown's inline syntax: backslash escapes, `code` spans (any fence
length) and **strong** words; table cells are plain text. Text from a spec or a model enters it
only through untrusted.markdown_text and untrusted.markdown_code, so a name can never become
markup in either rendering: the Markdown holds it escaped, the HTML renders the same tokens,
escaped again for HTML.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..untrusted import markdown_cell
from . import html as html_doc

# the inline syntax: a backslash-escaped punctuation character, a run of backticks, or '**'
INLINE_TOKEN = re.compile(r"\\([!-/:-@\[-`{-~])|(`+)|\*\*")


@dataclass
class Heading:
    level: int
    text: str
    anchor: str


@dataclass
class Paragraph:
    text: str
    muted: bool = False


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    row_classes: list[str] | None = None


@dataclass
class Figure:
    caption: str
    file: str | None          # relative path of the figure file the Markdown shows (PNG or SVG)
    svg: str | None           # the same figure as SVG text, inlined in the HTML; None: not drawn
    css_class: str = ""


@dataclass
class Note:
    """A boxed item: one review finding."""

    css_class: str            # its severity
    title: str
    lines: list[str]


@dataclass
class Details:
    """Content folded away until asked for (HTML <details>; Markdown shows it the same way on GitHub)."""

    summary: str
    blocks: list = field(default_factory=list)


@dataclass
class Contents:
    """A table of contents: links to the headings of `levels` that follow it in the document."""

    levels: tuple[int, ...] = (2, 3)


def _contents(blocks: list, at: int, levels: tuple[int, ...]) -> list[Heading]:
    return [b for b in blocks[at + 1:] if isinstance(b, Heading) and b.level in levels]


def _link_text(text: str) -> str:
    """Inline text inside a Markdown link's brackets: a bracket of its own must not end it."""
    return re.sub(r"(?<!\\)([\[\]])", r"\\\1", text)


# ----------------------------------------------------------------------------- Markdown
def _md_cell(text) -> str:
    return markdown_cell(text)


def to_markdown(blocks: list) -> str:
    out: list[str] = []
    for index, block in enumerate(blocks):
        if isinstance(block, Heading):
            # an explicit anchor: the links of the contents work in any Markdown viewer
            out.append(f'<a id="{html_doc.escape(block.anchor)}"></a>\n\n{"#" * block.level} {block.text}')
        elif isinstance(block, Contents):
            top = min(block.levels)
            out.append("\n".join(f"{'  ' * (h.level - top)}- [{_link_text(h.text)}](#{h.anchor})"
                                 for h in _contents(blocks, index, block.levels)))
        elif isinstance(block, Paragraph):
            out.append(f"*{block.text}*" if block.muted else block.text)
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {item}" for item in block.items))
        elif isinstance(block, Table):
            out.append(_md_table(block))
        elif isinstance(block, Figure):
            out.append(f"![{block.caption}]({block.file})\n\n*{block.caption}*" if block.file else f"*{block.caption}*")
        elif isinstance(block, Note):
            body = "  \n  ".join(block.lines)
            out.append(f"- **{block.title}**  \n  {body}" if body else f"- **{block.title}**")
        elif isinstance(block, Details):
            out.append(f"<details><summary>{html_doc.escape(block.summary)}</summary>\n\n"
                       + to_markdown(block.blocks) + "\n</details>")
    return "\n\n".join(out).rstrip() + "\n"


def _md_table(table: Table) -> str:
    rule = ["---:" if numeric else "---" for numeric in table.numeric]
    lines = ["| " + " | ".join(_md_cell(h) for h in table.headers) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- HTML
def inline(text: str) -> str:
    """The inline syntax as HTML: escapes resolved, `code` spans as <code>, **strong** as <strong>,
    everything else escaped for HTML."""
    text, out, index, strong = str(text), [], 0, False
    while (match := INLINE_TOKEN.search(text, index)) is not None:
        out.append(html_doc.escape(text[index:match.start()]))
        index = match.end()
        escaped, fence = match.group(1), match.group(2)
        if escaped is not None:
            out.append(html_doc.escape(escaped))
        elif fence:
            # a code span ends at the next run of exactly as many backticks
            close = re.compile(rf"(?<!`){fence}(?!`)").search(text, index)
            if close is None:
                out.append(html_doc.escape(fence))
                continue
            code = text[index:close.start()]
            if len(code) > 1 and code.startswith(" ") and code.endswith(" ") and code.strip():
                code = code[1:-1]
            out.append(f"<code>{html_doc.escape(code)}</code>")
            index = close.end()
        else:
            out.append("</strong>" if strong else "<strong>")
            strong = not strong
    out.append(html_doc.escape(text[index:]))
    if strong:
        out.append("</strong>")
    return "".join(out)


def to_html_body(blocks: list) -> str:
    out: list[str] = []
    for index, block in enumerate(blocks):
        if isinstance(block, Heading):
            out.append(f'<h{block.level} id="{html_doc.escape(block.anchor)}">{inline(block.text)}</h{block.level}>')
        elif isinstance(block, Contents):
            out.append(_contents_html(_contents(blocks, index, block.levels)))
        elif isinstance(block, Paragraph):
            out.append(f'<p class="muted">{inline(block.text)}</p>' if block.muted else f"<p>{inline(block.text)}</p>")
        elif isinstance(block, Bullets):
            out.append("<ul>" + "".join(f"<li>{inline(item)}</li>" for item in block.items) + "</ul>")
        elif isinstance(block, Table):
            out.append(html_doc.table(block.headers, block.rows, block.numeric, block.row_classes))
        elif isinstance(block, Figure):
            css = f' class="{block.css_class}"' if block.css_class else ""
            content = block.svg if block.svg is not None else ""
            out.append(f"<figure{css}>{content}<figcaption>{inline(block.caption)}</figcaption></figure>")
        elif isinstance(block, Note):
            lines = "".join(f"<p>{inline(line)}</p>" for line in block.lines)
            out.append(f'<div class="finding {html_doc.escape(block.css_class)}">'
                       f"<p>{_note_title(block)}</p>{lines}</div>")
        elif isinstance(block, Details):
            out.append(f"<details><summary>{inline(block.summary)}</summary>\n{to_html_body(block.blocks)}\n</details>")
    return "\n".join(out)


def _contents_html(headings: list[Heading]) -> str:
    """Nested lists of links, one level of nesting per heading level."""
    if not headings:
        return ""
    out, depth = ['<nav class="contents"><ul>'], headings[0].level
    for position, heading in enumerate(headings):
        if position:
            if heading.level > depth:
                out.append("<ul>" * (heading.level - depth))
            else:
                out.append("</li>" + "</ul></li>" * (depth - heading.level))
        depth = heading.level
        out.append(f'<li><a href="#{html_doc.escape(heading.anchor)}">{inline(heading.text)}</a>')
    out.append("</li>" + "</ul></li>" * (depth - headings[0].level) + "</ul></nav>")
    return "".join(out)


def _note_title(note: Note) -> str:
    severity, _, rest = note.title.partition(" ")
    return f'<span class="severity">{html_doc.escape(severity)}</span> {inline(rest)}'


def to_html(title: str, blocks: list) -> str:
    return html_doc.page(title, to_html_body(blocks))
