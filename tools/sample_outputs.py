"""The sample outputs in README.md and docs/*.md, regenerated from the commands that make them.

Every sample sits between two markers that name the command, so it cannot drift from what the
tool prints:

    <!-- sample: inception-analyzer analyze specs/inception_v3.yaml --depth stage --format markdown -->
    ...the command's output...
    <!-- end sample -->

Options go in brackets before the colon: `fenced` puts the output in a ``` block, `first N`
keeps its first N lines and `lines A-B` lines A to B (from 1), `stderr` takes the standard error instead (a refusal's message), `in
DIR` runs it in DIR, `file` says the command writes a file (an image the page shows) and prints
nothing to keep: `<!-- sample (fenced, first 8): inception-analyzer review specs/inception_v3.yaml -->`.
Paths under the repository are written relative to it, so a sample reads the same on any machine.

    python tools/sample_outputs.py           # rewrite every sample in place (./dev docs)
    python tools/sample_outputs.py --check   # exit 1 and name each sample that differs (the tests)
    python tools/sample_outputs.py [--check] FILE.md ...   # only these documents
"""
from __future__ import annotations

import difflib
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SAMPLE = re.compile(r"<!-- sample(?: \((?P<options>[^)]*)\))?: (?P<command>.+?) -->\n(?P<body>.*?)<!-- end sample -->",
                    re.S)
PROGRAM = "inception-analyzer"


@dataclass(frozen=True)
class Sample:
    document: Path
    command: str
    options: tuple[str, ...]
    body: str
    span: tuple[int, int]           # where the body stands in the document's text

    @property
    def where(self) -> str:
        line = self.document.read_text(encoding="utf-8").count("\n", 0, self.span[0])
        name = self.document.relative_to(ROOT) if self.document.is_relative_to(ROOT) else self.document
        return f"{name}:{line}"

    def option(self, name: str) -> str | None:
        """The value after an option's name ('first 8' -> '8'), '' for a bare flag, None if absent."""
        for option in self.options:
            word, _, value = option.partition(" ")
            if word == name:
                return value
        return None


def samples(document: Path) -> list[Sample]:
    text = document.read_text(encoding="utf-8")
    return [Sample(document, match["command"].strip(),
                   tuple(o.strip() for o in (match["options"] or "").split(",") if o.strip()),
                   match["body"], match.span("body")) for match in SAMPLE.finditer(text)]


def run(sample: Sample, files_into: Path | None = None) -> str:
    """The sample's body as the command makes it today; a file it writes goes into `files_into`
    when given (a check), else where the command says (a regeneration)."""
    words = shlex.split(sample.command)
    if not words or words[0] != PROGRAM:
        raise SystemExit(f"{sample.where}: a sample runs {PROGRAM}, not {words[:1]}")
    cwd = ROOT / (sample.option("in") or ".")
    if files_into is not None:
        words = [str(files_into / Path(w).name) if previous in ("-o", "--output") else w
                 for previous, w in zip(["", *words], words)]
    proc = subprocess.run([sys.executable, "-m", "inception_analyzer", *words[1:]], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    expected_failure = sample.option("stderr") is not None
    if (proc.returncode != 0) != expected_failure:
        raise SystemExit(f"{sample.where}: `{sample.command}` exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    if sample.option("file") is not None:
        return ""
    text = (proc.stderr if expected_failure else proc.stdout).replace(str(ROOT) + "/", "")
    lines = text.rstrip("\n").split("\n")
    if sample.option("lines") is not None:
        first, _, last = sample.option("lines").partition("-")
        lines = lines[int(first) - 1: int(last)]
    if sample.option("first") is not None:
        lines = lines[: int(sample.option("first"))]
    body = "\n".join(line.rstrip() for line in lines) + "\n"
    return f"```\n{body}```\n" if sample.option("fenced") is not None else body


def main(argv: list[str]) -> int:
    check = "--check" in argv
    documents = [Path(arg).resolve() for arg in argv if arg != "--check"] or DOCUMENTS
    differing = []
    with tempfile.TemporaryDirectory() as scratch:
        for document in documents:
            text = document.read_text(encoding="utf-8")
            pieces, last = [], 0
            for sample in samples(document):
                fresh = run(sample, Path(scratch) if check else None)
                if sample.option("file") is None and fresh != sample.body:
                    differing.append((sample, fresh))
                pieces += [text[last:sample.span[0]], fresh if sample.option("file") is None else sample.body]
                last = sample.span[1]
            pieces.append(text[last:])
            if not check:
                document.write_text("".join(pieces), encoding="utf-8")
    for sample, fresh in differing:
        print(f"{sample.where}: the sample of `{sample.command}` differs from what it prints now"
              + (":" if check else " (rewritten)"), file=sys.stderr)
        if check:
            diff = difflib.unified_diff(sample.body.splitlines(), fresh.splitlines(), "documented", "printed",
                                        lineterm="", n=1)
            print("\n".join(list(diff)[:40]), file=sys.stderr)
    if check and differing:
        print(f"{len(differing)} sample(s) drifted: run ./dev docs to regenerate them", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
