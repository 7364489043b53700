"""Text from a spec is untrusted at every sink: a hostile model name, published source and
description reach file names, HTML, Markdown, DOT, CSV and the terminal only escaped
(inception_analyzer/untrusted.py). One test per sink, each with the same hostile spec, checked
by a reader of that format (html5lib, graphviz's dot, the csv module), never by our own code."""
from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import html5lib
import pytest

from conftest import ROOT

# a name that tries every sink: a path out of the directory, markup that would run, a quote that
# would end an attribute, an HTML-string DOT id, a formula, a terminal escape, a trailing backslash
HOSTILE_NAME = '../../<img src=x onerror=alert(1)>"\' onload="alert(2)" <b>x</b> =HYPERLINK("http://x") \x1b[2J\\'
HOSTILE_SOURCE = "<script>alert(3)</script> [click](javascript:alert(4)) **bold** =1+1"


def hostile_spec(tmp_path: Path, name: str = HOSTILE_NAME, file: str = "hostile.yaml") -> Path:
    spec = tmp_path / file
    spec.write_text(
        f"name: {json.dumps(name)}\n"      # a YAML double-quoted scalar is a JSON string
        "metadata:\n"
        f"  paper: {json.dumps(HOSTILE_SOURCE)}\n"
        "  year: 2026\n"
        f"  published:\n    - {{top1: 50.0, crops: 1, source: {json.dumps(HOSTILE_SOURCE)}}}\n"
        "input: [3, 16, 16]\n"
        "layers:\n  - conv(8, 3)\n  - relu\n  - conv(8, 3)\n  - relu\n  - maxpool(2)\n"
        "  - adaptive_avgpool\n  - flatten\n  - linear(4)\n", encoding="utf-8")
    return spec


def cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inception_analyzer", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def no_script_in(page: str) -> None:
    """Parsed as a browser would: no script element, no event handler, no javascript: link."""
    document = html5lib.parse(page, namespaceHTMLElements=False)
    for element in document.iter():
        assert element.tag != "script"
        for attribute, value in element.attrib.items():
            assert not attribute.lower().startswith("on"), (element.tag, attribute)
            assert not value.strip().lower().startswith("javascript:"), (element.tag, attribute)
    assert "<img" not in page and "<b>x</b>" not in page


# ----------------------------------------------------------------------------- report
@pytest.fixture(scope="module")
def report_dir(tmp_path_factory) -> Path:
    scratch = tmp_path_factory.mktemp("hostile")
    spec = hostile_spec(scratch)
    again = hostile_spec(scratch, file="same-name.yaml")   # two models of one name in one report
    out = scratch / "deep" / "report"
    out.parent.mkdir()
    proc = cli("report", spec, again, "-o", out, cwd=scratch)
    assert proc.returncode == 0, proc.stderr
    return out


def test_report_files_stay_inside_the_directory_and_do_not_collide(report_dir):
    written = sorted(p.relative_to(report_dir).as_posix() for p in report_dir.rglob("*") if p.is_file())
    outside = [p for p in report_dir.parent.parent.rglob("*") if p.is_file() and report_dir not in p.parents
               and p.suffix not in (".yaml",)]
    assert outside == []
    figures = [p for p in written if p.startswith("figures/")]
    assert len(figures) == len(set(figures))
    # one figure of each kind per model: the two models of one name have their own files
    assert sum(p.endswith("-receptive-field.png") for p in figures) == 2
    assert all(re.fullmatch(r"figures/[a-z0-9_.-]+", p) for p in figures), figures


def test_report_html_runs_nothing(report_dir):
    page = (report_dir / "report.html").read_text(encoding="utf-8")
    no_script_in(page)
    assert "\x1b" not in page and "alert(1)" in page      # shown as text, not dropped
    ids = re.findall(r'\bid="([^"]*)"', page)
    assert all(re.fullmatch(r"[A-Za-z0-9_.:-]+", i) for i in ids), [i for i in ids if not re.fullmatch(r"[\w.:-]+", i)]
    assert len(ids) == len(set(ids))


def raw_html(markdown: str) -> list[str]:
    """Tags a Markdown reader would pass through as HTML: a '<' neither escaped by a backslash
    nor inside a code span (whose text Markdown shows as it is)."""
    outside_code = re.sub(r"(`+).+?(?<!`)\1(?!`)", "", markdown)
    return re.findall(r"(?<!\\)<(?:script|img|b|i)\b[^>]*>", outside_code)


def test_report_markdown_holds_no_raw_html_or_links(report_dir):
    markdown = (report_dir / "report.md").read_text(encoding="utf-8")
    assert raw_html(markdown) == []
    assert re.search(r"(?<!\\)\]\(javascript:", markdown) is None   # no link can form
    assert "\x1b" not in markdown
    assert "\\<img src=x onerror=alert(1)>" in markdown   # shown as text


# ----------------------------------------------------------------------------- DOT
@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")
def test_dot_reads_the_diagram_and_the_name_adds_no_node(tmp_path):
    spec = hostile_spec(tmp_path)
    plain = hostile_spec(tmp_path, name="plain", file="plain.yaml")
    hostile_dot, plain_dot = tmp_path / "h.dot", tmp_path / "p.dot"
    assert cli("diagram", spec, "-o", hostile_dot).returncode == 0
    assert cli("diagram", plain, "-o", plain_dot).returncode == 0
    # graphviz's own reading: same number of nodes and edges as the same network named plainly
    counts = []
    for dot_file in (hostile_dot, plain_dot):
        proc = subprocess.run(["gc", "-n", "-e", str(dot_file)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        counts.append(re.findall(r"\d+", proc.stdout)[:2])
    assert counts[0] == counts[1]
    svg = cli("diagram", spec, "-o", tmp_path / "h.svg")
    assert svg.returncode == 0, svg.stderr
    no_script_in((tmp_path / "h.svg").read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- CSV, terminal, JSON
def test_csv_cells_are_never_formulas(tmp_path):
    spec = hostile_spec(tmp_path, name="=HYPERLINK(\"http://x\",\"y\")")
    for args in (["compare", spec, "--baseline", spec, "--format", "csv"], ["analyze", spec, "--format", "csv"]):
        proc = cli(*args)
        assert proc.returncode == 0, proc.stderr
        for row in csv.reader(io.StringIO(proc.stdout)):
            for cell in row:
                try:
                    float(cell)
                except ValueError:
                    assert not cell.startswith(("=", "+", "-", "@")), cell


def test_the_terminal_gets_no_control_characters(tmp_path):
    spec = hostile_spec(tmp_path)
    for args in (["analyze", spec], ["review", spec], ["analyze", spec, "--format", "markdown"],
                 ["compare", spec, "--baseline", spec]):
        proc = cli(*args)
        assert proc.returncode == 0, proc.stderr
        assert "\x1b" not in proc.stdout and "\\x1b" in proc.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text('name: x\ninput: [3, 8, 8]\nlayers:\n  - "conv(8, 3, padding=\'\\e[2J\')"\n')
    refused = cli("analyze", bad)
    assert refused.returncode == 2 and "\x1b" not in refused.stderr


def test_markdown_tables_keep_a_hostile_name_in_its_cell(tmp_path):
    spec = hostile_spec(tmp_path, name="a | b <i>c</i>")
    proc = cli("compare", spec, "--baseline", spec, "--format", "markdown")
    header, rule, first = proc.stdout.splitlines()[:3]
    assert first.count("|") - first.count("\\|") == header.count("|")
    assert raw_html(proc.stdout) == []


def test_json_is_strict(tmp_path):
    zero = tmp_path / "zero.yaml"   # a baseline of no params: ratios against it are not numbers
    zero.write_text("name: zero\ninput: [3, 8, 8]\nmetadata: {x: .nan}\nlayers: [relu]\n")
    for args in (["compare", zero, "--baseline", zero, "--format", "json"], ["analyze", zero, "--format", "json"]):
        proc = cli(*args)
        assert proc.returncode == 0, proc.stderr
        json.loads(proc.stdout, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
