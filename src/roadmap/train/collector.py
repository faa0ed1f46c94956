"""The garbage collector while a process loads torch, timm and Hydra: some 400,000 objects, none of them garbage, and
every full collection walks all that has loaded so far (7 while they load here, counted with gc.callbacks, and more
at the interpreter's exit). Off while they load, then what has loaded is frozen out of its reach and the collector
is on for what the run makes: a fresh `python run.py` with the FAST settings of tests/conftest.py took 3.5 s of CPU
with the collector on while loading and 2.8 s with it off (`/usr/bin/time`, twice each, in turn, 2026-12-07: README.md).
Imports nothing heavy, so that an entry point can call it before it loads anything."""
from __future__ import annotations

import functools
import gc


def off_while_loading() -> None:
    """The collector off until `on_past_what_has_loaded`."""
    gc.disable()


@functools.cache  # once per process (a joblib worker runs several jobs): later calls would freeze jobs' garbage
def _freeze() -> None:
    gc.freeze()


def on_past_what_has_loaded() -> None:
    """What the process has loaded frozen (the first time only), then the collector on."""
    _freeze()
    gc.enable()
