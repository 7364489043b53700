"""The bundled specs: they ship inside the package (`inception_analyzer/specs/`, which the
repository's `specs/` points to), so `analyze inception_v3` works from any directory and from
an installed wheel. A command's SPEC argument is a file path, or the name of a bundled spec.
"""
from __future__ import annotations

from pathlib import Path

from .errors import AnalyzerError, SourceLocation, did_you_mean

BUNDLED_DIR = Path(__file__).resolve().parent / "specs"
SUFFIXES = (".yaml", ".yml")


class CatalogError(AnalyzerError):
    kind = "spec error"


def bundled_names() -> list[str]:
    """The bundled specs' names, sorted ('alexnet', 'bn_inception', ...)."""
    return sorted(path.stem for path in BUNDLED_DIR.glob("*.yaml"))


def looks_like_path(text: str) -> bool:
    """A file the user means, rather than a bundled spec's name: it exists, has a directory part
    or a YAML suffix. Such a text is always read as a path (the loader reports a missing file)."""
    return Path(text).exists() or "/" in text or "\\" in text or text.endswith(SUFFIXES)


def resolve(name_or_path: str | Path) -> str:
    """A SPEC argument as the file to read: a path as given, or a bundled spec's file."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or looks_like_path(text):
        return text
    if text in bundled_names():
        return str(BUNDLED_DIR / f"{text}.yaml")
    raise CatalogError(f"'{text}' is neither a spec file nor a bundled spec", SourceLocation(text),
                       hint=did_you_mean(text, bundled_names()) or f"bundled specs: {', '.join(bundled_names())}")
