"""SIGINT (Ctrl-C), SIGTERM (SLURM preemption, `timeout`, `kill`) and SIGHUP (the terminal or SSH
session closed) become `Interrupted`, so that a run records `interrupted` with the signal's name and
exits with 128 + its number, in time for a requeue.

Inside the training and evaluation loops (`deferred()`) a signal is held until the next iteration
begins (`raise_pending()`), so that no batch is left half received from a loader worker; a second
signal raises at once. Once `Interrupted` is raised the run is ending: a further signal (a sweep's
launcher forwarding the one its jobs already got) is ignored, so that it cannot cut short the record
that says how the run ended. While a checkpoint is written (`held()`) every signal waits until it is
complete: torch.save would turn the exception into a RuntimeError, which would read as a failed
write."""
from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager

from ..errors import STOP_SIGNALS, Interrupted

_state = {"deferring": False, "holding": False, "pending": None, "ending": False, "parent": None}


def _raise(signum: int) -> None:
    _state["pending"], _state["ending"] = None, True
    raise Interrupted(signal.Signals(signum).name, signum)


def _handle(signum, frame):
    if _state["ending"]:
        return
    if _state["holding"] or (_state["deferring"] and _state["pending"] is None):
        _state["pending"] = _state["pending"] or signum  # the first signal is the one reported
        return
    _raise(signum)


def raise_pending() -> None:
    """Raise `Interrupted` for a signal held since the last check, or once the process that the run
    hangs on (`hang_on_the_parent`) has gone."""
    if _state["pending"] is not None:
        _raise(_state["pending"])
    parent = _state["parent"]
    if parent is not None and os.getppid() != parent:
        _state["parent"], _state["ending"] = None, True
        raise Interrupted("SIGHUP", signal.SIGHUP, f"the sweep that started it ended (its process {parent} is gone)")


def hang_on_the_parent() -> None:
    """For a job that a sweep's process started (joblib's workers): should that process die of a signal it cannot
    pass on (SIGKILL), the run ends at its next batch, recorded as interrupted, as if it had hung up, instead of
    training on unseen and holding its directory against the sweep launched again. Until `interruptible` ends."""
    _state["parent"] = os.getppid()


@contextmanager
def deferred():
    previous = _state["deferring"]
    _state["deferring"] = True
    try:
        yield
    finally:
        _state["deferring"] = previous
    raise_pending()


@contextmanager
def held():
    """Every signal waits until the block is done (a second one too), then raises."""
    previous = _state["holding"]
    _state["holding"] = True
    try:
        yield
    finally:
        _state["holding"] = previous
    if not previous:
        raise_pending()


@contextmanager
def interruptible():
    """Within: SIGINT, SIGTERM and SIGHUP raise `Interrupted` in the main thread. A handler another
    library installed (submitit's for SLURM requeues) is left in place, and so is a signal ignored
    (`nohup`); ours are undone on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # A process may start with these signals blocked: joblib's loky workers inherit the mask under
    # which they were spawned, so a SIGTERM would wait unseen until the parent killed them. This run
    # wants them delivered.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
    for s, handler in previous.items():
        if handler in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(s, _handle)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _state.update(deferring=False, holding=False, pending=None, ending=False, parent=None)
