"""Writing results: atomically (temp file + rename), never over the spec being read."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import AnalyzerError, SourceLocation


class OutputError(AnalyzerError):
    kind = "output error"


def write_atomically(path: str | Path, text: str, protected: tuple[str | Path, ...] = ()) -> None:
    """Write text to path so that readers see the old file or the whole new one, nothing between."""
    target = Path(path)
    for other in protected:
        if target.exists() and Path(other).exists() and target.resolve() == Path(other).resolve():
            raise OutputError("refusing to write the output over the input spec", SourceLocation(str(path)))
    if target.is_dir():
        raise OutputError("the output path is a directory", SourceLocation(str(path)))
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise OutputError(f"the directory '{directory}' does not exist", SourceLocation(str(path)))
    try:
        handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as err:
        raise OutputError(f"cannot write there ({err.strerror})", SourceLocation(str(path))) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
