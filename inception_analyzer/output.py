"""Writing results: atomically (temp file + rename), never over the spec being read."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from .errors import AnalyzerError, SourceLocation


class OutputError(AnalyzerError):
    kind = "output error"


def write_atomically(path: str | Path, text: str, protected: tuple[str | Path, ...] = ()) -> None:
    """Write text to path so that readers see the old file or the whole new one, nothing between."""

    def write(temp: str) -> None:
        Path(temp).write_text(text, encoding="utf-8")

    write_atomically_with(path, write, protected)


def write_atomically_with(path: str | Path, write: Callable[[str], None],
                          protected: tuple[str | Path, ...] = ()) -> None:
    """Let `write(temp_path)` fill a temp file beside `path`, then rename it into place."""
    target = Path(path)
    for other in protected:
        if other is None:  # an input that is no file (an imported model)
            continue
        if target.exists() and Path(other).exists() and target.resolve() == Path(other).resolve():
            raise OutputError("refusing to write the output over the input spec", SourceLocation(str(path)))
    if target.is_dir():
        raise OutputError("the output path is a directory", SourceLocation(str(path)))
    if target.exists() and not target.is_file():
        # a FIFO, a device, /dev/stdout: renaming a file over it would replace it, not write into it
        raise OutputError("the output path exists and is not a regular file (a pipe or a device?); "
                          "leave out -o to write to stdout", SourceLocation(str(path)))
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        problem = f"'{directory}' is not a directory" if directory.exists() else \
            f"the directory '{directory}' does not exist"
        raise OutputError(problem, SourceLocation(str(path)))
    try:
        handle, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        os.close(handle)
    except OSError as err:
        raise OutputError(f"cannot write there ({err.strerror})", SourceLocation(str(path))) from None
    try:
        write(temp)
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
        os.replace(temp, target)
    except OSError as err:
        Path(temp).unlink(missing_ok=True)
        raise OutputError(f"cannot write there ({err.strerror})", SourceLocation(str(path))) from None
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_directory(files: dict[str, bytes | str], directory: str | Path,
                    protected: tuple[str | Path, ...] = (), what: str = "output") -> list[Path]:
    """Write `files` (relative path -> content) into `directory`, created if missing, each file
    atomically; never over a protected input. `what` names the output in messages ('the report')."""
    directory = Path(directory)
    location = SourceLocation(str(directory))
    for other in protected:
        if other is not None and Path(other).exists() and directory.exists() and directory.resolve() == Path(other).resolve():
            raise OutputError(f"refusing to write the {what} over the input spec", location)
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"the {what} goes into a directory, and this is a file", location)
    written = []
    for relative, content in files.items():
        target = directory / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"cannot create the directory ({err.strerror})", location) from None
        data = content.encode() if isinstance(content, str) else content
        write_atomically_with(target, lambda temp, data=data: Path(temp).write_bytes(data), protected)
        written.append(target)
    return written
