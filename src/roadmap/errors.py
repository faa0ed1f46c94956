"""Errors a user can act on: the runner prints their message, not a traceback."""
import re
import signal

# The signals that stop a run cleanly (it records `interrupted`, keeps its last checkpoint and exits with 128 + N):
# Ctrl-C; `kill`, `timeout` and SLURM's preemption; the terminal or SSH session that started it closing. One that the
# process started with ignored (`nohup` ignores SIGHUP) stays ignored.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def heard_stop_signals() -> list[signal.Signals]:
    """The stop signals this process does not ignore now: the ones to handle."""
    return [s for s in STOP_SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]


class RoadmapError(RuntimeError):
    pass


class DataError(RoadmapError):
    """Missing or unusable data: the message says where we looked and what to do."""

    def __init__(self, message: str = ""):
        # raised again in the main process by a DataLoader, it carries the worker's traceback: keep
        # its own line
        if "Original Traceback" in message:
            message = re.sub(r"^(?:[\w.]+\.)?DataError: ", "", message.strip().splitlines()[-1])
        super().__init__(message)


class CorruptCheckpoint(RoadmapError):
    """A checkpoint that cannot be read. It is kept as it is, never overwritten."""


class ConfigMismatch(RoadmapError):
    """The run directory holds a checkpoint of another configuration."""


class NonFiniteLoss(RoadmapError):
    """The loss became NaN or infinite."""


class RunLocked(RoadmapError):
    """Another process holds the run directory."""


class WriteFailed(RoadmapError):
    """A record or checkpoint could not be written (full disk, quota, read-only file system)."""


class Interrupted(BaseException):
    """One of STOP_SIGNALS, or the end of what the run hung on (`cause`, with no signal received): not an error of
    the run, so not an Exception that a broad `except` would swallow."""

    def __init__(self, signal_name: str, signum: int, cause: str | None = None):
        super().__init__(signal_name)
        self.signal_name, self.signum, self.cause = signal_name, signum, cause

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
