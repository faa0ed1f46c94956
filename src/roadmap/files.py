"""Files written whole or not at all: each goes to a temporary file that is then renamed over the
old one."""
from __future__ import annotations

import json
import os
import shutil
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
