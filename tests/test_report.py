"""The design-review report: every section in both forms, every finding with its suggestion,
files that exist and open, HTML that parses strictly, stands alone and renders in Chromium."""
from __future__ import annotations

import argparse
import dataclasses
import html
import re
import shutil
import subprocess

import html5lib
import pytest

from conftest import ROOT, spec_path
from inception_analyzer.errors import AnalyzerError
from inception_analyzer.analysis.findings import Finding
from inception_analyzer.commands import report
from inception_analyzer.pipeline import analyze_with_baseline as models_and_baseline
from inception_analyzer.render.report import HTML_NAME, MARKDOWN_NAME, bottlenecks, build_report, finding_note

SECTIONS = ["Summary", "Comparison", "Stages", "Diagram", "Review findings", "Receptive field growth",
            "Representation size along depth"]
PNG = b"\x89PNG\r\n\x1a\n"
CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)


def run_report(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    return report.run(parser.parse_args(argv))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """`report specs/inception_v3.yaml specs/vgg16.yaml -o DIR`, as the issue asks."""
    directory = tmp_path_factory.mktemp("report")
    assert run_report(spec_path("inception_v3"), spec_path("vgg16"), "-o", str(directory)) == 0
    return directory


@pytest.fixture(scope="module")
def models():
    return models_and_baseline([spec_path("inception_v3"), spec_path("vgg16")], "vgg16")[0]


def test_every_section_is_there_in_both_forms(written):
    markdown = (written / MARKDOWN_NAME).read_text()
    page = (written / HTML_NAME).read_text()
    md_headings = re.findall(r"^#+ (.*)$", markdown, re.M)
    html_headings = [html.unescape(h) for h in re.findall(r"<h\d[^>]*>(.*?)</h\d>", page)]
    for section in SECTIONS:
        per_model = 1 if section in ("Summary", "Comparison") else 2
        assert md_headings.count(section) == per_model, section
        assert html_headings.count(section) == per_model, section
    assert md_headings[0] == html_headings[0] == "Design review: inception_v3, vgg16"


def test_every_finding_is_reported_with_its_suggestion(written, models):
    markdown = (written / MARKDOWN_NAME).read_text()
    page = html.unescape(re.sub(r"<[^>]+>", "", (written / HTML_NAME).read_text()))
    for model in models:
        assert model.findings  # the real review has something to say about both
        for finding in model.findings:
            assert finding.message in markdown and finding.message in page
            if finding.suggestion:
                assert f"Suggested change: {finding.suggestion}" in markdown


def test_the_figures_the_markdown_shows_exist(written):
    markdown = (written / MARKDOWN_NAME).read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert len(images) >= 2 * 4 + 1  # per model: stages, diagram, RF, representation; the comparison
    for image in images:
        data = (written / image).read_bytes()
        assert data.startswith(PNG) if image.endswith(".png") else b"<svg" in data[:1000]
    # figure files are named by the model's key, its place and a slug of its name (never the name)
    assert (written / "figures" / "m1-inception_v3-blocks-expanded.svg").exists()  # v3 repeats modules


def test_html_is_valid_and_self_contained(written):
    page = (written / HTML_NAME).read_text()
    html5lib.HTMLParser(strict=True).parse(page)  # raises on any parse error
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "two inline figures share an id"
    assert not re.search(r'\b(?:src|href)="(?!#)', page), "the page must not load anything"
    # every figure inline: 2 x (stages, RF, representation, diagram) + v3's expanded diagram + comparison
    assert page.count("<svg") == 10


def test_a_finding_reads_with_its_effect_on_the_model(models):
    v3 = models[0]
    finding = Finding("§3.1.large_kernel", "§3.1", "info", "Mixed_5b.branch5x5_2.conv",
                             "5x5 conv (48 -> 64)", {"alternatives_macs": {"parallel": 49112064}},
                             "replace it by 2 3x3 convs", {"macs": -26_166_000, "params": -21_360})
    note = finding_note(finding, v3)
    assert note.title == "info §3.1.large_kernel at `Mixed_5b.branch5x5_2.conv`"
    # 26,166,000 / 5,713,216,096 = 0.458%; 21,360 / 27,161,264 = 0.079%
    assert "MACs -26.2M (-0.46% of the model)" in note.lines[2]
    assert "params -21.4k (-0.08% of the model)" in note.lines[2]
    assert note.lines[3] == "Measured: alternatives_macs = (parallel 49,112,064)"


def test_bottleneck_marks_come_from_p1_findings(models):
    v3 = models[0]
    analysis = dataclasses.replace(v3, findings=[
        Finding("P1.representation_drop", "P1", "warning", "Mixed_7a", "drop", {}),
        Finding("P1.extreme_reduction", "P1", "info", "Mixed_5b.branch5x5_1.conv", "narrow", {}),
        Finding("§5.grid_reduction", "§5", "warning", "maxpool1", "not a P1 finding", {}),
    ])
    assert bottlenecks(analysis) == {"Mixed_7a": "representation_drop", "Mixed_5b": "extreme_reduction"}


def test_a_models_linear_bottlenecks_mark_the_blocks_that_drop_not_the_model(models):
    """P1.linear_bottleneck is one finding for the model; the blocks it lists as keeping less than
    half of their input are the ones P1 calls bottlenecks, and those are circled."""
    v3 = models[0]
    analysis = dataclasses.replace(v3, findings=[
        Finding("P1.linear_bottleneck", "P1", "info", v3.name, "linear bottlenecks",
                {"blocks": ["Mixed_6a", "Mixed_7a"], "drops": {"Mixed_7a": 0.37}}),
    ])
    assert bottlenecks(analysis) == {"Mixed_7a": "linear_bottleneck"}


def test_report_with_stand_in_findings_only(tmp_path, models):
    v3 = models[0]
    analysis = dataclasses.replace(v3, findings=[Finding("P4.x", "P4", "error", "17x17", "a stage holds too much",
                                                         {"share": 0.41})])
    built = build_report([analysis], models[1])
    markdown = built.markdown()
    assert "**error P4.x at `17x17`**" in markdown and "1 (1 error)" in markdown


# ----------------------------------------------------------------------------- errors and fallbacks
def test_refuses_to_write_over_the_spec(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text((ROOT / "tests/data/tiny_inception.yaml").read_text())
    with pytest.raises(AnalyzerError, match="over the input spec"):
        run_report(str(spec), "-o", str(spec))
    assert spec.read_text() == (ROOT / "tests/data/tiny_inception.yaml").read_text()


def test_a_file_is_not_a_report_directory(tmp_path):
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(AnalyzerError) as err:
        run_report(str(ROOT / "tests/data/tiny_inception.yaml"), "-o", str(target))
    assert str(err.value).startswith(f"{target}: ") and "\n" not in str(err.value)


def test_spec_errors_carry_their_location(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: bad\ninput: [3, 32, 32]\nlayers:\n  - conv(8, 3, strides=2)\n")
    with pytest.raises(AnalyzerError) as err:
        run_report(str(spec), "-o", str(tmp_path / "out"))
    assert str(err.value).startswith(f"{spec}:4:")
    assert not (tmp_path / "out").exists()


def test_without_dot_the_report_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    run_report(str(ROOT / "tests/data/tiny_inception.yaml"), "--baseline", str(ROOT / "tests/data/tiny_inception.yaml"),
               "-o", str(tmp_path / "out"))
    page = (tmp_path / "out" / HTML_NAME).read_text()
    assert "is not installed, so this diagram is not drawn" in page
    assert (tmp_path / "out" / "figures" / "m1-tiny_inception-blocks.dot").read_text().startswith("digraph")


# ----------------------------------------------------------------------------- Chromium
def chromium(*args: str, profile) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_html_renders_in_headless_chromium(written, tmp_path):
    url = (written / HTML_NAME).resolve().as_uri()
    dom = chromium("--dump-dom", url, profile=tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section in SECTIONS:
        assert f">{section}</h" in dom.stdout
    assert dom.stdout.count("<svg") == 10  # every figure made it into the rendered document

    shot = tmp_path / "page.png"
    result = chromium("--hide-scrollbars", "--window-size=1280,2400", f"--screenshot={shot}", url,
                      profile=tmp_path / "profile-shot")
    assert result.returncode == 0, result.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1280, 2400)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, tables and plots, not a blank page


# ----------------------------------------------------------------------------- the command line
def test_command_line(tmp_path):
    import sys

    def cli(*args: str):
        return subprocess.run([sys.executable, "-m", "inception_analyzer", *args], capture_output=True, text=True,
                              cwd=ROOT, timeout=300)

    if cli("report", "--help").returncode != 0:
        pytest.skip("cli.py does not offer 'report' yet")
    ok = cli("report", "specs/alexnet.yaml", "-o", str(tmp_path / "out"))
    assert ok.returncode == 0, ok.stderr
    assert (tmp_path / "out" / HTML_NAME).exists() and (tmp_path / "out" / MARKDOWN_NAME).exists()
    bad = cli("report", "specs/alexnet.yaml", "-o", "specs/alexnet.yaml")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == ("inception-analyzer: specs/alexnet.yaml: output error: refusing to write the "
                                  "report over the input spec")


def test_the_contents_link_to_every_section(written):
    page = (written / HTML_NAME).read_text()
    nav = page[page.index('<nav class="contents">'):page.index("</nav>")]
    targets = re.findall(r'href="#([^"]+)"', nav)
    headings = re.findall(r'<h[23] id="([^"]+)"', page)
    assert targets == headings and len(targets) >= 2 + 2 * 6   # summary, comparison, six per model
    markdown = (written / MARKDOWN_NAME).read_text()
    for anchor in targets:   # the Markdown's own links resolve to its explicit anchors
        assert f"](#{anchor})" in markdown and f'<a id="{anchor}"></a>' in markdown


def test_a_baseline_nobody_asked_to_review_is_said_to_be_added(tmp_path):
    assert run_report(spec_path("inception_v3"), "-o", str(tmp_path / "out")) == 0
    markdown = (tmp_path / "out" / MARKDOWN_NAME).read_text()
    assert "vgg16 is the comparison's baseline (`--baseline`), added for the ratios" in markdown
    assert "## vgg16" not in markdown   # compared, not reviewed


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed")
def test_a_report_of_imported_models_renders_and_its_links_resolve(torchvision, tmp_path):
    """An Inception spec beside two imported non-Inception models (a ResNet and an EfficientNet):
    the page renders in a browser, every diagram is drawn at its own scale, every link of the
    contents leads to an element of the rendered page."""
    import sys

    specs = [spec_path("inception_v3")]
    for name in ("resnet18", "efficientnet_b0"):
        target = tmp_path / f"{name}.yaml"
        proc = subprocess.run([sys.executable, "-m", "inception_analyzer", "import", f"torchvision.models:{name}",
                               "-o", str(target)], capture_output=True, text=True, cwd=ROOT, timeout=300)
        assert proc.returncode == 0, proc.stderr
        specs.append(str(target))
    assert run_report(*specs, "-o", str(tmp_path / "out")) == 0
    url = (tmp_path / "out" / HTML_NAME).resolve().as_uri()
    dom = chromium("--dump-dom", url, profile=tmp_path / "profile").stdout
    for name in ("inception_v3", "resnet18", "efficientnet_b0"):
        assert f">{name}</h2>" in dom
    ids = set(re.findall(r'\bid="([^"]+)"', dom))
    links = re.findall(r'href="#([^"]+)"', dom)
    assert links and set(links) <= ids
    diagrams = re.findall(r'<figure class="diagram">\s*<svg[^>]*\bwidth="([\d.]+)pt"', dom)
    assert len(diagrams) >= 3 and all(float(width) > 100 for width in diagrams)
