"""Hostile input: every case ends in bounded time and memory with one clear line and exit 2
(or, where the input is fine, a normal result), never a traceback, a crash or a half-written file.

- YAML bombs: nested aliases ("billion laughs") in free text and in rows, the same bomb built
  from module templates, documents nested thousands deep (libyaml's composer used to crash the
  process on them), calls nested too deeply for Python's parser, thousands of unclosed calls in
  a flow list (quadratic before), endless or huge input files.
- Huge sizes: 10^12 channels or a 10^9 x 10^9 grid are analysed by arithmetic (nothing is
  allocated per channel), and the builder refuses them before allocating, with the figures;
  sizes past torch's 64-bit limit are refused where they are written.
- Modules: a missing module, one that uses itself directly or through others, a chain of
  modules nested too deep; `include` of another file does not exist in the language.
- Output: the input spec itself (directly or through a link), an existing directory, a pipe, a
  missing or unwritable directory; an interrupted write leaves the old file or none.

The CLI runs in a subprocess where the process itself is the subject (crashes, memory limits,
signals), and in this process elsewhere (faster).
"""
from __future__ import annotations

import contextlib
import io
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest

import inception_analyzer as ia
from inception_analyzer import cli, graph as graph_module
from inception_analyzer.commands import analyze as analyze_command
from inception_analyzer.errors import SpecError
from inception_analyzer.output import OutputError, write_atomically, write_atomically_with
from inception_analyzer.spec import yaml_source

from conftest import ROOT, spec_path

HEADER = "name: hostile\ninput: [3, 16, 16]\n"
# address-space limit for the CLI subprocesses: analysing inception_v3 needs well under this
MEMORY_LIMIT = 1536 * 2**20


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_process(*args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, float]:
    """The CLI in a subprocess under a memory limit; returns the process and its wall time."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "inception_analyzer", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, preexec_fn=_limit_memory)
    return proc, time.perf_counter() - start


def run_here(*args: str) -> tuple[int, str, str]:
    """The CLI in this process; an exception other than AnalyzerError escapes and fails the test."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


def assert_refused(code: int, stdout: str, stderr: str, *phrases: str, located: bool = True) -> str:
    assert code == 2, stderr
    assert stdout == ""
    message = stderr.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    assert message.startswith("inception-analyzer: ")
    if located:
        location = message.split(": ")[1]
        assert location.count(":") >= 2, f"no file:line:column in {message!r}"
    for phrase in phrases:
        assert phrase in message, message
    return message


def refused_process(spec: Path, *phrases: str, seconds: float = 10, located: bool = True) -> str:
    proc, elapsed = run_process("analyze", str(spec))
    message = assert_refused(proc.returncode, proc.stdout, proc.stderr, *phrases, located=located)
    assert elapsed < seconds, f"took {elapsed:.1f} s"
    return message


def write(tmp_path: Path, text: str, name: str = "hostile.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ============================================================================ YAML bombs
def billion_laughs(levels: int, leaf: str = "x") -> list[str]:
    lines = [f"a0: &a0 [{', '.join([leaf] * 10)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels)]
    return lines


def test_billion_laughs_in_free_text_is_refused_fast_and_small(tmp_path):
    """10^10 strings from 10 lines: refused after 100,000 copies, not after 2,000,000."""
    spec = write(tmp_path, HEADER + "layers: [relu]\nnotes:\n" + "".join(f"  {l}\n" for l in billion_laughs(10)))
    refused_process(spec, "aliases expand to more than 100,000 values", "refusing to expand", seconds=5)


def test_billion_laughs_made_of_rows_is_refused(tmp_path):
    rows = ["r0: &r0 {layers: [relu, relu, relu, relu, relu, relu, relu, relu, relu, relu]}"]
    rows += [f"r{i}: &r{i} {{layers: [{', '.join([f'*r{i - 1}'] * 10)}]}}" for i in range(1, 8)]
    text = HEADER + "notes:\n" + "".join(f"  {r}\n" for r in rows) + "layers:\n  - *r7\n"
    refused_process(write(tmp_path, text), "aliases expand to more than", seconds=5)


def test_a_few_aliases_are_fine(tmp_path):
    text = HEADER + "notes: {block: &b [conv(8, 3, padding=1), relu]}\nlayers:\n  - layers: *b\n  - layers: *b\n"
    graph = ia.load_graph(str(write(tmp_path, text)))
    assert [n.kind for n in graph.layers()] == ["conv", "relu", "conv", "relu"]


def template_bomb(when: str = "") -> str:
    """Nine nested templates, each calling the next ten times: 10^8 ReLUs from 12 lines."""
    call = "{call: T%d, when: flag}" if when else "T%d"
    modules = "".join(f"  T{i}: {{layers: [{', '.join([call % (i + 1)] * 10)}]}}\n" for i in range(8))
    arguments = "arguments: {flag: true}\n" if when else ""
    return HEADER + arguments + "modules:\n" + modules + "  T8: {layers: [relu]}\nlayers: [T0]\n"


def test_template_bomb_is_refused_before_expanding(tmp_path):
    message = refused_process(write(tmp_path, template_bomb()), "at least 100,000,000 ops",
                              "more than the limit of 250,000", seconds=5)
    assert ":13:" in message  # the `layers:` line


def test_template_bomb_behind_conditions_stops_at_the_op_limit(tmp_path):
    """Rows under `when` may not exist, so they are not counted up front: expansion stops at the
    limit, in seconds and well under the memory limit."""
    refused_process(write(tmp_path, template_bomb(when="flag")), "more than 250,000 ops",
                    "refusing to expand it further", seconds=30)


def test_op_limit_in_process(tmp_path, monkeypatch):
    monkeypatch.setattr(graph_module, "MAX_OPS", 5_000)
    with pytest.raises(SpecError, match="more than 5,000 ops"):
        ia.load_graph(str(write(tmp_path, template_bomb(when="flag"))))
    rows = "".join("  - relu\n" for _ in range(4_000))
    assert len(list(ia.load_graph(str(write(tmp_path, HEADER + "layers:\n" + rows, "ok.yaml"))).layers())) == 4_000


@pytest.mark.parametrize("depth", [150, 2_000, 100_000])
def test_deeply_nested_flow_lists(tmp_path, depth):
    """100,000 nested '[' made libyaml's composer overflow the C stack (a segfault); 2,000
    overflowed Python's stack in the conversion (a RecursionError traceback). Our bound is 100
    levels; a YAML parser may refuse deep nesting itself before we see it (PyYAML 6.0.4's
    libyaml stops at about 1,000 levels): then its located syntax error is the one line."""
    spec = write(tmp_path, HEADER + "layers: [relu]\nnotes: " + "[" * depth + "]" * depth + "\n")
    message = refused_process(spec, seconds=5)
    assert "nest more than 100 levels deep" in message or "YAML syntax error" in message, message


def test_deeply_nested_block_style_mappings(tmp_path):
    lines = [f"{'  ' * i}k{i}:" for i in range(300)]
    spec = write(tmp_path, HEADER + "layers: [relu]\nnotes:\n" + "".join(f"  {l}\n" for l in lines) + "  " * 301 + "x\n")
    refused_process(spec, "nest more than 100 levels deep", seconds=5)


def test_deeply_nested_blocks_of_rows(tmp_path):
    depth = 300
    spec = write(tmp_path, HEADER + "layers:\n  - " + "{layers: [" * depth + "relu" + "]}" * depth + "\n")
    refused_process(spec, "nest more than 100 levels deep", seconds=5)


def test_nesting_within_the_bound_works(tmp_path):
    depth = 30
    text = HEADER + "layers:\n  - " + "{layers: [" * depth + "relu" + "]}" * depth + "\n"
    graph = ia.load_graph(str(write(tmp_path, text)))
    assert [n.kind for n in graph.layers()] == ["relu"]


@pytest.mark.parametrize("call", ["conv(" + "[" * 300 + "]" * 300 + ", 3)", "conv(" + "-" * 100_000 + "1, 3)",
                                  "conv(8, " + "1 + " * 50_000 + "1)", "conv(a" + ".b" * 50_000 + ", 3)"],
                         ids=["brackets", "minus signs", "sum", "attributes"])
def test_calls_too_deep_for_the_parser(tmp_path, call):
    """Python's parser raises MemoryError or RecursionError on these, not SyntaxError."""
    code, out, err = run_here("analyze", str(write(tmp_path, HEADER + f"layers:\n  - '{call}'\n")))
    assert_refused(code, out, err, "hostile.yaml:4:")


def test_thousands_of_unclosed_calls_in_a_flow_list(tmp_path):
    """Each unclosed call used to scan to the end of the file: 20,000 of them took 40 s."""
    text = HEADER + "layers: [relu]\nnotes: [" + ", ".join(["a("] * 20_000) + "]\n"
    start = time.perf_counter()
    assert ia.load_spec(str(write(tmp_path, text))).notes[:2] == ["a(", "a("]
    assert time.perf_counter() - start < 5


def test_many_calls_in_a_flow_list_still_rejoin(tmp_path):
    text = HEADER + "layers: [" + ", ".join(["conv(4, 3, padding=1)", "relu"] * 5_000) + "]\n"
    start = time.perf_counter()
    graph = ia.load_graph(str(write(tmp_path, text)))
    assert len(list(graph.layers())) == 10_000 and time.perf_counter() - start < 10


def test_unclosed_call_in_rows_is_a_located_error(tmp_path):
    code, out, err = run_here("analyze", str(write(tmp_path, HEADER + "layers: [conv(8, 3, relu, conv(8, 1)]\n")))
    assert_refused(code, out, err, "hostile.yaml:3:", "never closed")


def test_too_many_values_are_refused_before_composing(tmp_path):
    """A 5.7 MB list of 1.9 million numbers took 17 s and 1.2 GB to refuse after composing it."""
    spec = write(tmp_path, HEADER + "layers: [relu]\nnotes: [" + ", ".join(["1"] * 600_000) + "]\n")
    refused_process(spec, "more than 500,000 values", seconds=5)


def test_endless_input_is_read_only_up_to_the_bound(tmp_path):
    proc, elapsed = run_process("analyze", "/dev/zero")
    assert_refused(proc.returncode, proc.stdout, proc.stderr, "/dev/zero", "larger than 16 MiB", located=False)
    assert elapsed < 10


def test_huge_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(yaml_source, "MAX_SPEC_BYTES", 1000)
    spec = write(tmp_path, HEADER + "layers: [relu]\nnotes: '" + "x" * 2000 + "'\n")
    assert_refused(*run_here("analyze", str(spec)), "larger than", located=False)


@pytest.mark.parametrize("data, phrase", [(b"name: x\ninput: [3, 8, 8]\nlayers: [re\x00lu]\n", ":3:12: YAML syntax"),
                                          (b"name: r\xe9lu\n", ":1:8: spec error: not UTF-8"),
                                          (b"", "empty"), (b"# only a comment\n", "empty"),
                                          (b"\xef\xbb\xbfname: x\ninput: [3, 8, 8]\nlayers: [relu]\n", None),
                                          (b"name: x\r\ninput: [3, 8, 8]\r\nlayers: [relu]\r\n", None),
                                          (b"- just\n- a list\n", "a spec is a mapping"),
                                          (b"--- {name: a}\n--- {name: b}\n", ":2:1: YAML syntax error")],
                         ids=["NUL", "latin-1", "empty", "comment only", "BOM", "CRLF", "list", "two documents"])
def test_odd_files(tmp_path, data, phrase):
    """A NUL or a byte that is not UTF-8 used to be reported without its line."""
    spec = tmp_path / "odd.yaml"
    spec.write_bytes(data)
    code, out, err = run_here("analyze", str(spec), "--format", "csv")
    if phrase is None:
        assert code == 0 and err == "", err
    else:
        assert_refused(code, out, err, phrase)


# ============================================================================ huge sizes
HUGE_CHANNELS = HEADER + textwrap.dedent("""\
    layers:
      - c1: conv(1000000000000, 3, padding=1)
      - bn
      - relu
      - dw: conv(1000000000000, 3, padding=1, groups=1000000000000)
      - c2: conv(64, 1)
      - adaptive_avgpool(1)
      - flatten
      - fc: linear(10)
    """)


def test_huge_channel_counts_are_analysed_by_arithmetic(tmp_path):
    """10^12 channels: analysis, review and diagram in milliseconds and a few MB (nothing per channel)."""
    from inception_analyzer.render import diagram

    path = str(write(tmp_path, HUGE_CHANNELS))
    tracemalloc.start()
    start = time.perf_counter()
    graph = ia.load_graph(path)
    report = ia.analyze(graph)
    diagram.diagram_source(diagram.build_diagram(report, "block", collapse=True))
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 2 and peak < 20 * 2**20, (elapsed, peak)
    layers = {r.path: r for r in report.layers}
    assert layers["c1"].params == 10**12 * 3 * 9 + 10**12
    assert layers["dw"].macs == 10**12 * 16 * 16 * 9
    # c1 28e12, bn 2e12, dw 10e12, c2 64e12 + 64, fc 650
    assert report.totals.params == 104 * 10**12 + 714


def test_builder_refuses_huge_channels_before_allocating(tmp_path):
    pytest.importorskip("torch")
    from inception_analyzer.build import BuildError, build_model

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(BuildError) as caught:
        build_model(str(write(tmp_path, HUGE_CHANNELS)))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    message = str(caught.value)
    assert "104,000,000,000,714 params" in message and "GiB" in message and "refusing to allocate" in message
    assert grown_mb < 200, grown_mb


def test_build_command_refuses_a_huge_grid_with_the_figures(tmp_path):
    spec = write(tmp_path, "name: grid\ninput: [3, 1000000000, 1000000000]\nlayers: [conv(8, 3), relu]\n")
    proc, elapsed = run_process("build", str(spec), timeout=120)
    message = assert_refused(proc.returncode, proc.stdout, proc.stderr, "needs", "GiB", "free",
                             "refusing to allocate", located=False)
    assert "224 params and one pass on 1 image(s)" in message


@pytest.mark.parametrize("row, phrase", [
    ("conv(9223372036854775808, 3)", "'out' must be at most 2**63 - 1"),
    ("conv(8, 3, padding=" + "9" * 400 + ")", "a number of 400 digits"),
    ("adaptive_avgpool(99999999999999999999)", "'output_size' must be at most"),
    ("{linear: [" + "1" * 40 + "]}", "'out' must be at most")])
def test_sizes_past_torchs_limit_are_refused_where_written(tmp_path, row, phrase):
    """A 400-digit channel count used to end in an OverflowError traceback in the review."""
    text = HEADER + f"layers:\n  - flatten\n  - {row}\n" if "linear" in row else HEADER + f"layers:\n  - {row}\n"
    code, out, err = run_here("analyze", str(write(tmp_path, text)))
    assert_refused(code, out, err, phrase)


def test_input_past_torchs_limit_is_refused(tmp_path):
    spec = write(tmp_path, "name: x\ninput: [3, 9223372036854775808, 8]\nlayers: [relu]\n")
    assert_refused(*run_here("analyze", str(spec)), "'input' dimensions", "hostile.yaml:2:")
    assert_refused(*run_here("analyze", spec_path("vgg16"), "--input-size", str(2**64)), "--input-size", located=False)


# ============================================================================ modules
MODULE_CASES = {
    "missing module": (HEADER + "layers:\n  - stem: ConvBN(8, 3)\n",
                       4, ["unknown op or module 'ConvBN'"]),
    "missing module, with a suggestion": (
        HEADER + "modules:\n  ConvBN: {args: [out], layers: [conv(out, 3), bn, relu]}\n"
        "layers:\n  - stem: ConvBn(8)\n", 6, ["unknown op or module 'ConvBn'", "did you mean 'ConvBN'"]),
    "missing module inside a module": (
        HEADER + "modules:\n  Block:\n    layers:\n      - a: Branch(4)\nlayers:\n  - b1: Block\n",
        6, ["unknown op or module 'Branch'", "(at b1)"]),
    "module that uses itself": (HEADER + "modules:\n  A: {layers: [relu, A]}\nlayers: [A]\n",
                                None, ["module 'A' uses itself (A -> A)"]),
    "cycle through three modules": (
        HEADER + "modules:\n  A: {layers: [B]}\n  B: {concat: [C, relu]}\n  C: {layers: [A]}\nlayers:\n  - a: A\n",
        None, ["uses itself (A -> B -> C -> A)"]),
    "cycle reached through a condition": (
        HEADER + "arguments: {deep: true}\nmodules:\n  A: {layers: [relu, {call: A, when: deep}]}\nlayers: [A]\n",
        None, ["uses itself"]),
    "cycle too long to show": (
        HEADER + "modules:\n" + "".join(f"  M{i}: {{layers: [M{(i + 1) % 150}]}}\n" for i in range(150))
        + "layers: [M0]\n", None, ["nest more than 100 levels deep", "modules: M0 -> M1 -> ... -> M98 -> M99"]),
    "include of another file": (HEADER + "include: other.yaml\nlayers: [relu]\n",
                                3, ["unknown key 'include' in the spec"]),
    "include tag": (HEADER + "layers: !include other.yaml\n", 3, ["YAML tag '!include' is not allowed"]),
    "modules from a file": (HEADER + "modules: other.yaml\nlayers: [relu]\n", 3, ["'modules' must be a mapping"]),
}


@pytest.mark.parametrize("label", MODULE_CASES)
def test_missing_and_cyclic_modules(tmp_path, label):
    text, line, phrases = MODULE_CASES[label]
    message = assert_refused(*run_here("analyze", str(write(tmp_path, text))), *phrases)
    if line is not None:
        assert f"hostile.yaml:{line}:" in message


def test_cycle_behind_a_false_condition_is_never_expanded(tmp_path):
    """The language expands what the arguments select: a recursive row switched off is no cycle."""
    text = HEADER + "arguments: {deep: false}\nmodules:\n  A: {layers: [relu, {call: A, when: deep}]}\nlayers: [A]\n"
    graph = ia.load_graph(str(write(tmp_path, text)))
    assert [n.path for n in graph.layers()] == ["A.relu"]
    with pytest.raises(SpecError, match="uses itself"):
        ia.load_graph(str(tmp_path / "hostile.yaml"), {"deep": True})


def test_long_chain_of_modules(tmp_path):
    """2,000 modules each using the next (no cycle) overflowed Python's stack (RecursionError)."""
    modules = "".join(f"  T{i}: {{layers: [T{i + 1}]}}\n" for i in range(2_000)) + "  T2000: {layers: [relu]}\n"
    refused_process(write(tmp_path, HEADER + "modules:\n" + modules + "layers: [T0]\n"),
                    "nest more than 100 levels deep", seconds=10)


# ============================================================================ output paths
SPEC = HEADER + "layers: [conv(4, 3), relu]\n"


@pytest.mark.parametrize("command", ["analyze", "review", "compare", "diagram", "report", "build"])
def test_output_over_the_input_spec_is_refused(tmp_path, command):
    spec = write(tmp_path, SPEC, "model.dot")  # a .dot name, so diagram accepts the suffix
    if command == "build":
        pytest.importorskip("torch")
        args = [command, str(spec), "--export", "torchscript", str(spec)]
    else:
        args = [command, str(spec), "-o", str(spec)]
    code, out, err = run_here(*args)
    assert code == 2 and "over the input spec" in err, err
    assert spec.read_text() == SPEC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.dot"]


def test_output_through_a_symlink_to_the_spec_is_refused(tmp_path):
    spec = write(tmp_path, SPEC)
    (tmp_path / "out.txt").symlink_to(spec)
    assert_refused(*run_here("analyze", str(spec), "-o", str(tmp_path / "out.txt")), "over the input spec",
                   located=False)
    assert spec.read_text() == SPEC


def test_output_over_a_hard_link_of_the_spec_leaves_the_spec_whole(tmp_path):
    """The rename replaces the link's directory entry; the spec's own file is never opened for writing."""
    spec = write(tmp_path, SPEC)
    os.link(spec, tmp_path / "out.txt")
    code, _, err = run_here("analyze", str(spec), "-o", str(tmp_path / "out.txt"))
    assert code == 0, err
    assert spec.read_text() == SPEC and "conv" in (tmp_path / "out.txt").read_text()


@pytest.mark.parametrize("target, phrase", [("existing_dir.dot", "is a directory"),
                                            ("missing/out.dot", "the directory '{tmp}/missing' does not exist"),
                                            ("a_file/out.dot", "'{tmp}/a_file' is not a directory"),
                                            ("fifo.dot", "not a regular file")])
def test_output_paths_that_cannot_be_written(tmp_path, target, phrase):
    """A FIFO (or /dev/stdout) used to be replaced by a regular file: the rename went over it."""
    spec = write(tmp_path, SPEC)
    (tmp_path / "existing_dir.dot").mkdir()
    os.mkfifo(tmp_path / "fifo.dot")
    (tmp_path / "a_file").write_text("a file")
    before = sorted(p.name for p in tmp_path.iterdir())
    for command in ("analyze", "review", "diagram"):
        assert_refused(*run_here(command, str(spec), "-o", str(tmp_path / target)), phrase.format(tmp=tmp_path),
                       located=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "fifo.dot").is_fifo() and (tmp_path / "a_file").read_text() == "a file"


def test_unwritable_directory(tmp_path):
    """/proc refuses new files even to root (a chmod 555 directory would not stop root)."""
    if not Path("/proc/self").is_dir():
        pytest.skip("no /proc here")
    spec = write(tmp_path, SPEC)
    assert_refused(*run_here("analyze", str(spec), "-o", "/proc/inception-analyzer.txt"), "cannot write there",
                   located=False)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories anyway")
def test_read_only_directory(tmp_path):
    spec = write(tmp_path, SPEC)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert_refused(*run_here("analyze", str(spec), "-o", str(locked / "out.txt")), "cannot write there",
                       located=False)
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o755)


def test_report_into_a_file_or_over_the_spec(tmp_path):
    spec = write(tmp_path, SPEC)
    assert_refused(*run_here("report", str(spec), "--baseline", str(spec), "-o", str(spec)), "over the input spec",
                   located=False)
    (tmp_path / "plain").write_text("x")
    assert_refused(*run_here("report", str(spec), "--baseline", str(spec), "-o", str(tmp_path / "plain")),
                   "directory", located=False)


# ============================================================================ atomic writes
def test_a_failing_writer_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old")

    def half_then_disk_full(temp: str) -> None:
        Path(temp).write_text("half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match="No space left"):
        write_atomically_with(target, half_then_disk_full)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_an_interrupted_write_leaves_no_file(tmp_path):
    target = tmp_path / "report.json"

    def interrupted(temp: str) -> None:
        Path(temp).write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically_with(target, interrupted)
    assert list(tmp_path.iterdir()) == []


def test_interrupted_cli_writes_nothing(tmp_path, monkeypatch):
    spec = write(tmp_path, SPEC)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(analyze_command, "render", interrupt)
    code, out, err = run_here("analyze", str(spec), "-o", str(tmp_path / "out.txt"))
    assert code == 130 and "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.yaml"]


def test_a_killed_process_leaves_the_old_file_whole(tmp_path):
    """SIGKILL in the middle of writing: the target still holds its old content (the temp file,
    hidden beside it, is all that remains of the new one)."""
    target = tmp_path / "report.txt"
    target.write_text("old report\n")
    child = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from inception_analyzer.output import write_atomically_with
        def write(temp):
            with open(temp, "w") as handle:
                handle.write("new report, first half")
                handle.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        write_atomically_with({str(target)!r}, write)
    """)
    proc = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert target.read_text() == "old report\n"
    assert all(p.name == "report.txt" or (p.name.startswith(".report.txt.") and p.name.endswith(".tmp"))
               for p in tmp_path.iterdir())


def test_write_atomically_replaces_whole(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    write_atomically(target, "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]
