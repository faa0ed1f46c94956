"""What a run shows while it trains: tqdm's bar, redrawn in place for a lone run on a terminal;
whole lines, one every `LINE_EVERY_S` seconds, where runs share a terminal (a sweep's jobs side by
side) or the output is a file or a pipe (a log), so that bars from several processes never garble
each other. Side by side, each log line also names its job (`named_job`)."""
from __future__ import annotations

import io
import logging
import re
import sys
import threading
from contextlib import contextmanager

from tqdm import tqdm


class Bar(tqdm):
    """tqdm with a thread lock, not its default multiprocessing one: each process draws its own bars (a sweep's
    jobs theirs), and a multiprocessing lock is a named semaphore that a job stopped by a signal leaves behind,
    which the sweep's resource tracker then reports as leaked after the sweep's last line. Other tqdm bars in
    the process keep tqdm's own lock."""
    _lock = threading.RLock()


LINE_EVERY_S = 30.0
LINE_FORMAT = (
    "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
)
_CONTROL = re.compile(r"\r|\x1b\[[0-9;]*[A-Za-z]")


class Lines(io.TextIOBase):
    """A stream for tqdm that writes each redraw as a line of its own (each line one write: whole,
    never cut)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        line = _CONTROL.sub("", text).strip()
        if line:
            self.stream.write(line + "\n")
            self.stream.flush()
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def in_lines(side_by_side: int, stream=None) -> bool:
    """Whether to show progress as whole lines: runs side by side, or not a terminal."""
    stream = stream or sys.stderr
    return side_by_side > 1 or not (hasattr(stream, "isatty") and stream.isatty())


def progress_bar(total: int, desc: str, *, side_by_side: int = 1, disable: bool = False, leave: bool = True,
                 iterable=None) -> Bar:
    if in_lines(side_by_side):
        return Bar(iterable, total=total, desc=desc.strip(), disable=disable, leave=leave, unit="it",
                    file=Lines(sys.stderr), mininterval=LINE_EVERY_S, bar_format=LINE_FORMAT)
    return Bar(iterable, total=total, desc=desc, disable=disable, leave=leave, unit="it", dynamic_ncols=True)


@contextmanager
def named_job(name: str | None):
    """Within: every log record's message starts with `name: ` (None: as it is)."""
    if not name:
        yield
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs):
        record = previous(*args, **kwargs)
        # with arguments the message is a %-format: its % signs are doubled
        if isinstance(record.msg, str):
            record.msg = (name.replace("%", "%%") if record.args else name) + ": " + record.msg
        return record

    logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        logging.setLogRecordFactory(previous)
