"""Files written whole or not at all: each goes to a temporary file that is then renamed over the
old one. And standard output that goes quiet once its reader has gone (`script | head`)."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Callable

from .errors import WriteFailed


def temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp")


def atomic_write(path: Path, write: Callable) -> None:
    """`write(f)` into a temporary file, then rename it over `path`: `path` is always the old or the
    new version. A failed write (full disk, quota) removes the temporary file and raises
    WriteFailed, one line long; an interruption (a signal's exception, which is not an Exception)
    removes it too and goes on as it was."""
    tmp = temporary(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if not isinstance(e, Exception):
            raise
        cause = (
            f"{e.strerror}" if isinstance(e, OSError) and e.strerror else f"{type(e).__name__}: {e}"
        )
        free = shutil.disk_usage(path.parent).free / 2**20
        raise WriteFailed(
            f"could not write {path} ({cause.splitlines()[0]}; {free:.0f} MiB free there); "
            f"{path.name} is as it was before and no temporary file was left"
        ) from None


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def read_json(path: Path):
    """The JSON value in `path`; OSError or ValueError when it is missing or not JSON."""
    return json.loads(Path(path).read_text())


class _UntilTheReaderGoes:
    """A text stream that stops writing, quietly, once its reader has gone: `script | head` ends head's
    part, and the script finishes its work (a chart, a copy of records) instead of dying in a
    BrokenPipeError traceback halfway through."""

    def __init__(self, stream):
        self._stream, self.gone = stream, False

    def _attempt(self, call, *args):
        if self.gone:
            return None
        try:
            return call(*args)
        except BrokenPipeError:
            self.gone = True
            try:  # what is still buffered, and Python's flush at exit, go nowhere instead of failing
                os.dup2(os.open(os.devnull, os.O_WRONLY), self._stream.fileno())
            except (OSError, ValueError):
                pass

    def write(self, text: str) -> int:
        self._attempt(self._stream.write, text)
        return len(text)

    def flush(self) -> None:
        self._attempt(self._stream.flush)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def quiet_if_the_reader_goes() -> None:
    """sys.stdout stops writing, without an error, once the program reading it has ended (the
    scripts' reports read through `| head` or `less`)."""
    if not isinstance(sys.stdout, _UntilTheReaderGoes):
        sys.stdout = _UntilTheReaderGoes(sys.stdout)
