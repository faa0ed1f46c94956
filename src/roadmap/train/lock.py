"""One writer per run directory: an advisory lock on `<run_dir>/.lock` that names its holder.

The kernel drops a `flock` when its process dies, however it dies (SIGKILL included), so a lock left
by a dead process never blocks a rerun; the file itself stays, holding the last holder's
description. Forked children (DataLoader workers, any fork) share the lock's open file: each closes
its copy as it is forked, or a child outliving a killed run for its few seconds would hold the
directory."""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from ..errors import RunLocked, WriteFailed

HELD: set[int] = set()  # descriptors of the locks this process holds


def release_in_child() -> None:
    """In a forked child: close the inherited lock descriptors (the parent keeps its locks)."""
    for fd in list(HELD):
        try:
            os.close(fd)
        except OSError:
            pass
    HELD.clear()


os.register_at_fork(after_in_child=release_in_child)


class RunLock:
    def __init__(self, run_dir: Path, enabled: bool = True):
        self.path, self.enabled, self.fd = Path(run_dir) / ".lock", enabled, None

    def __enter__(self) -> "RunLock":
        if not self.enabled:
            return self
        existed = self.path.exists()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise WriteFailed(
                f"could not create the run lock {self.path} ({e.strerror}); nothing was written. "
                "Free space (or make the directory writable) and run the same command again."
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLocked(f"{self.path.parent} is in use by {self.holder()}; this process stopped without "
                            "touching it. Wait for that run to end (or stop it), then run the same command again.")
        since = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": since}).encode())
        except OSError as e:  # a full disk: let go, and leave no empty lock file of ours behind
            if not existed:
                self.path.unlink(missing_ok=True)
            os.close(fd)
            raise WriteFailed(f"could not write the run lock {self.path} ({e.strerror}); nothing else was written. "
                              "Free space and run the same command again.") from None
        self.fd = fd
        HELD.add(fd)
        return self

    def holder(self) -> str:
        try:
            h = json.loads(self.path.read_text())
            return f"pid {h['pid']} on {h['host']} (since {h['since']})"
        except (OSError, ValueError, KeyError):
            return "another process (its description could not be read)"

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            HELD.discard(self.fd)
            os.close(self.fd)  # closing the descriptor releases the lock
            self.fd = None


def is_held(run_dir: Path) -> bool | None:
    """Whether a live process holds the run directory's lock now: True, False (its holder died, e.g.
    killed), or None where there is no lock file (the run never started here)."""
    path = Path(run_dir) / ".lock"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def status_now(status: str | None, run_dir: Path) -> str | None:
    """A record's status as things stand: `killed` where it says running but no process holds the
    run (its process died: SIGKILL, out of memory, power), else the status as written."""
    return "killed" if status == "running" and is_held(run_dir) is False else status
