"""Whole outputs and one-line refusals, for every command.

- `report` writes its directory as a whole: a reader, or a run interrupted at any point
  (an error, Ctrl-C, SIGTERM), sees the old directory or the whole new one, never a mix, and no
  temporary file is left behind; a directory holding other files is never replaced.
- A full disk behind the standard output is one line and exit 2, not a traceback.
- Every subcommand meets a table of odd inputs with exit 2 and one line, never a traceback.
"""
from __future__ import annotations

import contextlib
import io
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import ROOT, spec_path
from inception_analyzer import cli, output

TINY = str(ROOT / "tests" / "data" / "tiny_inception.yaml")


def run_here(*args: str) -> tuple[int, str, str]:
    """The CLI in this process: any exception but a usage error's SystemExit fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([str(a) for a in args])
        except SystemExit as exit_:
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def hidden_leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# ----------------------------------------------------------------------------- report as a whole
def test_a_report_replaces_the_previous_one_whole(tmp_path):
    out = tmp_path / "report"
    assert run_here("report", TINY, "-o", out)[0] == 0
    (out / "figures" / "stale-figure.png").write_bytes(b"from an older report")
    assert run_here("report", TINY, "-o", out)[0] == 0
    assert not (out / "figures" / "stale-figure.png").exists()   # nothing of the old report mixes in
    assert (out / "report.html").exists() and hidden_leftovers(tmp_path) == []


def test_a_directory_holding_other_files_is_never_replaced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    code, _, err = run_here("report", TINY, "-o", tmp_path)
    assert code == 2 and "holds other files (notes.txt)" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_an_error_while_writing_leaves_the_old_report(tmp_path, monkeypatch):
    out = tmp_path / "report"
    assert run_here("report", TINY, "-o", out)[0] == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    calls = []

    def fail_third(root, relative, content, location):
        calls.append(relative)
        if len(calls) == 3:
            raise output.OutputError("cannot write there (No space left on device)", location)
        return real(root, relative, content, location)

    real = output._write_inside
    monkeypatch.setattr(output, "_write_inside", fail_third)
    code, _, err = run_here("report", TINY, "-o", out)
    assert code == 2 and "No space left on device" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert hidden_leftovers(tmp_path) == []


def test_sigterm_while_writing_leaves_the_old_report_and_no_temporary_files(tmp_path):
    out = tmp_path / "report"
    assert run_here("report", TINY, "-o", out)[0] == 0
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    # the child stops in the middle of writing (after its first file) and says so; then it is sent
    # SIGTERM, as `timeout` and CI runners send it
    child = textwrap.dedent(f"""
        import sys, time
        from inception_analyzer import cli, output
        real = output._write_inside
        def slow(*args):
            path = real(*args)
            print("writing", flush=True)
            time.sleep(60)
            return path
        output._write_inside = slow
        sys.exit(cli.main(["report", {TINY!r}, "-o", {str(out)!r}]))
    """)
    process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=ROOT)
    assert process.stdout.readline().strip() == "writing"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM and err.strip() == "inception-analyzer: terminated"
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert hidden_leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- the standard output
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_behind_stdout_is_one_line():
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "inception_analyzer", "analyze", spec_path("inception_v3")],
                              stdout=full, stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip() == ("inception-analyzer: output error: cannot write to the standard output "
                                   "(No space left on device)")


# ----------------------------------------------------------------------------- odd inputs, every command
def odd_specs(tmp_path: Path) -> dict[str, Path]:
    texts = {
        "empty": "",
        "binary": "\x00\x01\x02name: x",
        "not a mapping": "- just\n- a list\n",
        "huge integer": "name: x\ninput: [3, 8, 8]\nlayers: [conv(" + "9" * 5000 + ", 3)]\n",
        "hex integer": "name: x\ninput: [3, 8, 8]\nlayers: [\"conv(0x" + "f" * 5000 + ", 3)\"]\n",
        "NaN epsilon": "name: x\ninput: [3, 8, 8]\nlayers: [conv(8, 3), \"bn(eps=.nan)\"]\n",
        "sexagesimal size": "name: x\ninput: [3, 1:30, 8]\nlayers: [conv(8, 3)]\n",
        "null published": "name: x\nmetadata: {published: [null]}\ninput: [3, 8, 8]\nlayers: [conv(8, 3)]\n",
        "number as published": "name: x\nmetadata: {published: 5}\ninput: [3, 8, 8]\nlayers: [conv(8, 3)]\n",
        "keyword twice": "name: x\ninput: [3, 8, 8]\nlayers: [\"conv(8, 3, stride=1, stride=2)\"]\n",
    }
    paths = {}
    for label, text in texts.items():
        path = tmp_path / f"{label.replace(' ', '_')}.yaml"
        path.write_bytes(text.encode("utf-8"))
        paths[label] = path
    paths["a directory"] = tmp_path
    paths["missing"] = tmp_path / "missing.yaml"
    return paths


COMMANDS = [  # how each command takes a spec
    ("analyze", []), ("analyze", ["--format", "json"]), ("review", []), ("diagram", ["-o", "{tmp}/d.dot"]),
    ("compare", ["--format", "csv"]), ("report", ["-o", "{tmp}/report"]), ("build", []),
    ("bench", ["--device", "cpu", "--iters", "1", "--warmup", "0", "--no-torchvision"]),
    ("sweep", ["--width", "0.5,1.0", "-o", "{tmp}/sweep"]),
]


@pytest.mark.parametrize("command, options", COMMANDS, ids=[" ".join([c, *o[:2]]) for c, o in COMMANDS])
def test_every_command_refuses_odd_specs_in_one_line(tmp_path, command, options):
    for label, spec in odd_specs(tmp_path).items():
        args = [command, spec, *(o.replace("{tmp}", str(tmp_path)) for o in options)]
        code, out, err = run_here(*args)
        assert code == 2, (label, code, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (label, err)
        assert out == "", (label, out[:200])


@pytest.mark.parametrize("args, phrase", [
    (["analyze", TINY, "--set", "x" * 10_000 + "=1"], "is not an argument"),
    (["analyze", TINY, "--set", "num_classes=" + "9" * 5000], "digits"),
    (["analyze", TINY, "--set", "num_classes=1:30"], "num_classes"),
    (["analyze", TINY, "--input-size", "0"], "--input-size"),
    (["analyze", TINY, "--width", "nan"], "width multiplier"),
    (["analyze", TINY, "--width", "0.5", "--round", "0"], "multiple"),
    (["sweep", TINY, "--width", "0.5", "--round", "-8"], "multiple"),
    (["sweep", TINY, "--grid", "num_classes=1,x"], "num_classes"),
    (["sweep", TINY, "--max", "macs=1ms"], "macs"),
    (["analyze", TINY, "--device", "h10"], "h100"),
    (["analyze", TINY, "--batch", "0", "--device", "h100"], "batch"),
    (["analyze", TINY, "-o", "/no/such/dir/out.txt"], "does not exist"),
    (["analyze", TINY, "-o", "{tmp}"], "directory"),
    (["review", TINY, "--fail-on", "fatal"], "fail-on"),
    (["diagram", TINY, "-o", "{tmp}/d.gif"], "format"),
    (["build", TINY, "--export", "tflite", "{tmp}/m"], "--export"),
    (["build", TINY, "--device", "meta", "--export", "onnx", "{tmp}/m.onnx"], "meta"),
    (["bench", TINY, "--min-time", "nan"], "--min-time"),
    (["bench", TINY, "--device", "meta"], "cpu or cuda"),
    (["import", "os:system('true')"], "standard library"),
    (["import", "import_models:Nope"], "no attribute"),
    (["compare", TINY, "--baseline", "vg16"], "vgg16"),
    (["list", "extra"], "unrecognized"),
    (["nonsense"], "invalid choice"),
])
def test_odd_options_are_one_line(tmp_path, monkeypatch, args, phrase):
    monkeypatch.syspath_prepend(str(ROOT / "tests"))
    code, _, err = run_here(*(a.replace("{tmp}", str(tmp_path)) for a in args))
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert phrase in err, err


@pytest.mark.parametrize("text", [
    # 4e9 x 4e9 pixels: 10^21 MACs, past the 64-bit integers a plotting library holds
    "name: huge\ninput: [3, 4000000000, 4000000000]\nlayers: [conv(8, 3), relu, adaptive_avgpool, flatten, linear(10)]\n",
    # no MACs at all, but a published accuracy: nowhere on a log axis of MACs
    "name: pools\nmetadata: {published: [{top1: 10.0}]}\ninput: [3, 8, 8]\nlayers: [maxpool(2), relu]\n",
], ids=["huge", "no MACs"])
def test_report_draws_what_analyze_accepts(tmp_path, text):
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    code, out, err = run_here("report", spec, "--baseline", spec, "-o", tmp_path / "report")
    assert code == 0, err
    assert (tmp_path / "report" / "report.html").stat().st_size > 0
