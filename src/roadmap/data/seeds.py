"""Every seed a run derives from its own (`seed`), in one place: each epoch's, each training
sample's (workers pipeline) and each training batch's (device pipeline). A number depends only on
the seed and its position, so a resumed run, or one with another worker count, draws exactly what an
uninterrupted run draws."""
from __future__ import annotations

import random
from contextlib import contextmanager

import numpy as np
import torch


def seed_all(seed: int) -> None:
    """Python's, NumPy's and torch's CPU random streams."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """The global streams' seed for one epoch of one process (stochastic depth, Mixup's draws)."""
    return seed * 100_003 + epoch * 1_009 + rank


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """One training image's augmentation in an epoch (the workers pipeline)."""
    return (seed * 1_000_003 + epoch) * 10_000_019 + index


def batch_seed(seed: int, epoch: int, iteration: int, rank: int) -> int:
    """One training batch's augmentation in an epoch, on one process (the device pipeline)."""
    return sample_seed(seed, epoch, iteration) * 1_009 + rank


@contextmanager
def kept_random_state():
    """Python's, NumPy's and torch's CPU random streams as they were, after whatever runs inside."""
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
