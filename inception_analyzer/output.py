"""Writing results: atomically (temp file + rename), never over the spec being read."""
from __future__ import annotations

import os
import shutil
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
    """Write `files` (relative path -> content) as the whole of `directory`, atomically: they are
    written into a hidden directory beside it, which then replaces it, so a reader (or a run
    interrupted at any point) sees the old directory or the whole new one. An existing directory
    is replaced only when it holds nothing but what such a write makes (the same top-level names),
    never the user's other files. `what` names the output in messages ('the report')."""
    directory = Path(directory)
    location = SourceLocation(str(directory))
    for other in protected:
        if other is not None and Path(other).exists() and directory.exists() \
                and directory.resolve() == Path(other).resolve():
            raise OutputError(f"refusing to write the {what} over the input spec", location)
    if directory.exists() and not directory.is_dir():
        raise OutputError(f"the {what} goes into a directory, and this is a file", location)
    ours = {Path(relative).parts[0] for relative in files}
    if directory.is_dir():
        others = sorted(entry.name for entry in directory.iterdir() if entry.name not in ours)
        if others:
            shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            raise OutputError(f"the directory holds other files ({shown}); the {what} replaces its directory as a "
                              "whole: give a new or empty directory", location)
    parent = directory.parent if str(directory.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"the directory '{parent}' does not exist", location)
    try:
        scratch = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=parent))
    except OSError as err:
        raise OutputError(f"cannot write there ({err.strerror})", location) from None
    try:
        written = [_write_inside(scratch, relative, content, location) for relative, content in files.items()]
        os.chmod(scratch, 0o777 & ~_umask())  # mkdtemp makes 0700; give the directory the usual mode
        _replace_directory(scratch, directory, location)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return [directory / path.relative_to(scratch) for path in written]


def _write_inside(root: Path, relative: str, content: bytes | str, location: SourceLocation) -> Path:
    """Write one file below `root`; a path that would leave it (absolute, '..') is refused."""
    target = (root / relative).resolve()
    if Path(relative).is_absolute() or not target.is_relative_to(root.resolve()):
        raise OutputError(f"refusing to write '{relative}' outside the output directory", location)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
        os.chmod(target, 0o666 & ~_umask())
    except OSError as err:
        raise OutputError(f"cannot write there ({err.strerror})", location) from None
    return target


def _replace_directory(new: Path, directory: Path, location: SourceLocation) -> None:
    """Put `new` where `directory` is: the old one steps aside (hidden), the new one takes its
    name, the old one goes; if the swap fails, the old one comes back."""
    old = None
    try:
        if directory.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".old", dir=new.parent))
            os.rmdir(old)
            os.rename(directory, old)
        os.rename(new, directory)
    except BaseException as err:  # an interruption between the renames too: the old one comes back
        if old is not None and not directory.exists():
            os.rename(old, directory)
        if isinstance(err, OSError):
            raise OutputError(f"cannot replace the directory ({err.strerror})", location) from None
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
