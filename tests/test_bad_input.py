"""Bad input always gets one clear line naming file:line:column and the node, exit code 2,
no traceback, and nothing written."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, spec_path

LOCATED = re.compile(r"^inception-analyzer: (?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): ")


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inception_analyzer", *args], capture_output=True,
                          text=True, cwd=cwd or ROOT, timeout=60)


def analyze_text(tmp_path, text: str, *extra: str) -> subprocess.CompletedProcess:
    spec = tmp_path / "bad.yaml"
    spec.write_text(textwrap.dedent(text))
    return run_cli("analyze", str(spec), *extra)


def assert_clean_error(proc: subprocess.CompletedProcess, line: int | None, *phrases: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    message = proc.stderr.strip()
    assert len(message.splitlines()) == 1, message
    if line is not None:
        match = LOCATED.match(message)
        assert match, f"no file:line:column in {message!r}"
        assert int(match["line"]) == line, message
    for phrase in phrases:
        assert phrase in message, message
    return message


HEADER = "name: bad\ninput: [3, 32, 32]\n"

CASES = {
    # label: (spec text, expected line, phrases the message must contain)
    "yaml syntax error": ("name: x\nlayers: [\n", 3, ["YAML syntax error"]),
    "unknown op, with a suggestion": (HEADER + "layers:\n  - {convv: [8, 3]}\n", 4,
                                      ["unknown op or module 'convv'", "did you mean 'conv'"]),
    "unknown op in call syntax": (HEADER + "layers:\n  - c1: cnov(8, 3)\n", 4, ["'cnov'", "'conv'"]),
    "unknown top-level key": (HEADER + "layer:\n  - relu\n", 3, ["unknown key 'layer'", "did you mean 'layers'"]),
    "unknown op argument": (HEADER + "layers:\n  - conv(8, 3, strides=2)\n", 4,
                            ["no argument 'strides'", "did you mean 'stride'"]),
    "unknown key in a template": (HEADER + "modules:\n  B:\n    arg: [k]\n    layers: [relu]\nlayers: [B]\n", 5,
                                  ["unknown key 'arg'", "'args'"]),
    "wrong argument type": (HEADER + "layers:\n  - conv(8, 'three')\n", 4, ["'kernel' must be a positive integer"]),
    "zero stride": (HEADER + "layers:\n  - conv(8, 3, stride=0)\n", 4, ["'stride' must be a positive integer"]),
    "bias not a boolean": (HEADER + "layers:\n  - {conv: [8, 3, {bias: 3}]}\n", 4, ["'bias' must be true or false"]),
    "missing required argument": (HEADER + "layers:\n  - conv(8)\n", 4, ["conv needs 'kernel'"]),
    "expression instead of a literal": (HEADER + "layers:\n  - conv(8 * 2, 3)\n", 4, ["never expressions"]),
    "unknown argument name": (HEADER + "arguments: {width: 8}\nlayers:\n  - conv(widht, 3)\n", 5,
                              ["unknown argument name 'widht'", "did you mean 'width'"]),
    "concat of different grids": (HEADER + "layers:\n  - stem: {concat: ['conv(8, 3, stride=2)', 'conv(8, 1)']}\n", 4,
                                  ["concat needs branches on one grid", "8x15x15", "8x32x32", "(at stem.concat)"]),
    "add of different shapes": (HEADER + "layers:\n  - res: {add: ['conv(8, 3, padding=1)', []]}\n", 4,
                                ["add needs branches of one shape", "(at res.add)"]),
    "add of one branch": (HEADER + "layers:\n  - conv(8, 3, padding=1)\n  - res: {add: [[relu]]}\n", 5,
                          ["'add' needs at least two branches", "in sequence instead"]),
    "mul of one branch": (HEADER + "layers:\n  - gate: {mul: ['conv(8, 1)']}\n", 4,
                          ["'mul' needs at least two branches"]),
    "grid shrinks to nothing": ("name: x\ninput: [3, 8, 8]\nlayers:\n  - {conv: [8, 11, {stride: 4}]}\n", 4,
                                ["grid collapses"]),
    "pool grid shrinks to nothing": (HEADER + "layers:\n  - maxpool(2)\n  - maxpool(2)\n  - maxpool(2)\n"
                                     "  - maxpool(2)\n  - maxpool(2)\n  - p6: maxpool(2)\n", 9,
                                     ["grid collapses", "(at p6)"]),
    "unclosed call": (HEADER + "layers:\n  - concat: [conv(8, 1, relu]\n", 4, ["'(' was never closed"]),
    "python tag": ("name: !!python/object/apply:os.system ['echo pwned']\n", 1,
                   ["'!!python/object/apply:os.system' is not allowed"]),
    "linear on a feature map": (HEADER + "layers:\n  - fc: linear(10)\n", 4, ["linear needs a vector", "(at fc)"]),
    "name used twice": (HEADER + "layers:\n  - a: relu\n  - a: relu\n", 5, ["'a' is used twice"]),
    "module that uses itself": (HEADER + "modules:\n  A: {layers: [B]}\n  B: {layers: [A]}\nlayers: [A]\n", None,
                                ["uses itself", "A -> B -> A"]),
    "groups not dividing channels": (HEADER + "layers:\n  - conv(8, 3, groups=2)\n", 4,
                                     ["groups=2 must divide", "in_channels 3"]),
    "same padding with stride 2": (HEADER + "layers:\n  - conv(8, 3, stride=2, padding='same')\n", 4,
                                   ["'same' needs stride 1"]),
    # references to earlier tensors (`from`): unknown, later, ambiguous, out of a template's sight
    "from names no row": (HEADER + "layers:\n  - stem: conv(8, 3)\n  - {call: relu, from: stme}\n", 5,
                          ["'from' names 'stme', which is no row here", "did you mean 'stem'"]),
    "from names a later row": (HEADER + "layers:\n  - {call: relu, from: head}\n  - head: conv(8, 3)\n", 4,
                               ["'from' names 'head', which is not made before this row"]),
    "from names the block it is in": (HEADER + "layers:\n  - b:\n      layers:\n        - conv(8, 3)\n"
                                      "        - {call: relu, from: b}\n", 7,
                                      ["the block this row is part of", "(at b)"]),
    "from is ambiguous": (HEADER + "layers:\n  - c: conv(8, 3)\n  - b:\n      layers:\n        - c: relu\n"
                          "        - {call: relu, from: c}\n", 8, ["ambiguous: it names both b.c and c", "(at b)"]),
    "from names a row of another block": (HEADER + "layers:\n  - a:\n      layers:\n        - conv: conv(8, 3)\n"
                                          "  - {call: relu, from: a.cnov}\n", 7, ["a has no 'cnov'", "did you mean 'conv'"]),
    "template sees only its own rows": (
        HEADER + "modules:\n  M:\n    layers:\n      - {call: relu, from: stem}\nlayers:\n  - stem: conv(8, 3)\n"
        "  - m: M\n", 6, ["'from' names 'stem', which is no row here", "give it the tensor with 'from'", "(at m)"]),
    "conv given two tensors": (HEADER + "layers:\n  - a: conv(8, 3)\n  - b: conv(8, 3)\n"
                               "  - {call: conv(8, 1), from: [a, b]}\n", 6,
                               ["conv reads 1 tensor, but this row gives it 2", "merge them first"]),
    "add of one tensor": (HEADER + "layers:\n  - a: conv(8, 3)\n  - add\n", 5,
                          ["add reads 2 or more tensors, but this row gives it 1", "(at add)"]),
    "from takes names": (HEADER + "layers:\n  - {call: relu, from: [a b]}\n", 4, ["'from' takes names of earlier rows"]),
    "error inside a template names the use": (
        HEADER + "modules:\n  B:\n    args: [k]\n    layers:\n      - conv: conv(8, k)\nlayers:\n  - b1: B(0)\n", 7,
        ["(at b1.conv)", "in module B used at line 9"]),
}


@pytest.mark.parametrize("label", CASES)
def test_bad_spec_gives_one_located_line_and_exit_2(tmp_path, label):
    text, line, phrases = CASES[label]
    proc = analyze_text(tmp_path, text)
    message = assert_clean_error(proc, line, *phrases)
    assert "bad.yaml" in message


def test_python_tag_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    proc = analyze_text(tmp_path, f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    assert proc.returncode == 2
    assert not marker.exists()


def test_billion_laughs_is_refused_not_expanded(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = "name: bomb\ninput: [3, 8, 8]\nlayers: [relu]\nnotes:\n" + "\n".join("  " + l for l in lines) + "\n"
    proc = analyze_text(tmp_path, text)
    assert_clean_error(proc, None, "refusing to expand")


def test_missing_file(tmp_path):
    proc = run_cli("analyze", str(tmp_path / "nowhere.yaml"))
    assert_clean_error(proc, None, "nowhere.yaml", "no such spec file")


def test_directory_instead_of_file(tmp_path):
    proc = run_cli("analyze", str(tmp_path))
    assert_clean_error(proc, None, "is a directory")


def test_unknown_override_suggests_the_argument():
    proc = run_cli("analyze", spec_path("vgg16"), "--set", "num_clases=10")
    assert_clean_error(proc, None, "'num_clases' is not an argument", "did you mean 'num_classes'")


def test_override_of_the_wrong_type_points_at_the_argument():
    proc = run_cli("analyze", spec_path("inception_v3"), "--set", "aux_logits=3")
    assert_clean_error(proc, None, "'aux_logits' takes bool", "inception_v3.yaml:")


def test_override_without_equals_sign():
    proc = run_cli("analyze", spec_path("vgg16"), "--set", "num_classes")
    assert_clean_error(proc, None, "--set takes key=value")


def test_input_too_small_for_the_network():
    proc = run_cli("analyze", spec_path("inception_v3"), "--input-size", "64")
    assert_clean_error(proc, None, "grid collapses", "inception_v3.yaml:")


def test_output_over_the_input_spec_is_refused_and_spec_unchanged(tmp_path):
    spec = tmp_path / "s.yaml"
    original = HEADER + "layers: [relu]\n"
    spec.write_text(original)
    proc = run_cli("analyze", str(spec), "-o", str(spec))
    assert_clean_error(proc, None, "over the input spec")
    assert spec.read_text() == original


def test_failed_run_writes_no_output_file(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(HEADER + "layers: [linear(3)]\n")
    out = tmp_path / "report.json"
    proc = run_cli("analyze", str(spec), "--format", "json", "-o", str(out))
    assert proc.returncode == 2
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [spec]
