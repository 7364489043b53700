"""The documents cannot drift from the tool: every sample output in README.md and docs/*.md is
the real output of the command its marker names (tools/sample_outputs.py; `./dev docs`
regenerates them)."""
from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

TOOL = str(ROOT / "tools" / "sample_outputs.py")


def sample_outputs(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, TOOL, *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_every_documented_sample_is_what_the_command_prints_today():
    proc = sample_outputs("--check")
    assert proc.returncode == 0, proc.stderr


def test_the_main_commands_have_samples_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for command in ("analyze specs/inception_v3.yaml", "review specs/inception_v3.yaml", "compare"):
        assert f": inception-analyzer {command}" in readme, command


def test_a_drifted_sample_is_named_and_regenerated(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("Bundled specs:\n\n<!-- sample (first 1): inception-analyzer list -->\nspec  paper (stale)\n"
                    "<!-- end sample -->\n", encoding="utf-8")
    checked = sample_outputs("--check", str(page))
    assert checked.returncode == 1 and "page.md:3" in checked.stderr and "inception-analyzer list" in checked.stderr
    assert sample_outputs(str(page)).returncode == 0
    assert page.read_text(encoding="utf-8").splitlines()[3].split() == ["spec", "paper"]
    assert sample_outputs("--check", str(page)).returncode == 0
