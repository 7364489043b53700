"""Spec loading: YAML with locations -> checked Spec structure."""
from __future__ import annotations

from pathlib import Path

from ..perf import paused_gc
from .schema import Spec, parse_spec
from .yaml_source import parse_yaml, read_yaml_file


def load_spec(path: str | Path) -> Spec:
    """Read and check a spec file; errors name the file, line and column."""
    with paused_gc():  # YAML nodes and their converted values: many objects, none freed
        return parse_spec(read_yaml_file(path), str(path))


def load_spec_text(text: str, filename: str = "<spec>") -> Spec:
    """Check a spec given as YAML text (for tests and generated specs)."""
    with paused_gc():
        return parse_spec(parse_yaml(text, filename), filename)


__all__ = ["Spec", "load_spec", "load_spec_text"]
