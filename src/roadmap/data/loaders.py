"""The workers pipeline's loaders: each process's share of the data, each sample's augmentation
seeded by its position (seeds.py), so that the batches do not depend on the worker count or on a
resumption."""
from __future__ import annotations

import signal
import sys

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, Subset

from ..errors import STOP_SIGNALS, DataError
from ..schema import RunConfig
from .seeds import kept_random_state, sample_seed, seed_all

PREFETCH = 4  # batches each loader worker makes ahead


def worker_context():
    """The start method of loader workers, named rather than inherited: the platform's own (fork on
    Linux, spawn elsewhere). Inside a job of Hydra's joblib launcher (a loky worker process) the
    inherited default is loky's, whose processes a DataLoader cannot start ("'Process' object has no
    attribute 'env'")."""
    return torch.multiprocessing.get_context(
        "fork" if sys.platform.startswith("linux") else "spawn"
    )


def check_batch(batch_size: int, images: int, world: int = 1, source: str = "") -> None:
    """DataError unless each of `world` processes gets at least one training batch of `batch_size`
    images."""
    if batch_size > images // world:
        raise DataError(f"train.batch_size={batch_size} is not allowed: larger than the {images // world} training "
                        f"images each of {world} process(es) gets{' from ' + source if source else ''}; lower it")


class EpochSampler(Sampler):
    """A DistributedSampler that yields (index, epoch), so that a sample knows which epoch draws
    it."""

    def __init__(self, sampler: DistributedSampler):
        self.sampler = sampler

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self):
        epoch = self.sampler.epoch
        return ((i, epoch) for i in self.sampler)


class Forever(Sampler):
    """(index, epoch) keys of a shuffled dataset, epoch after epoch: one loader pass that never
    ends, for timing."""

    def __init__(self, n: int, seed: int = 0):
        self.n, self.seed = n, seed

    def __iter__(self):
        epoch = 0
        while True:
            order = torch.randperm(
                self.n, generator=torch.Generator().manual_seed(self.seed + epoch)
            )
            yield from ((int(i), epoch) for i in order)
            epoch += 1


class SeededSamples(Dataset):
    """Each sample's augmentation is seeded by (seed, epoch, index): the same in every run, whatever
    the number of loader workers, whether they persist, and whether the run was resumed."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, epoch = key
        with kept_random_state():  # the loading process's own streams stay as they were
            seed_all(sample_seed(self.seed, epoch, index))
            return self.dataset[index]


def _ignore_stop_signals(_: int) -> None:
    """Loader workers leave the stop signals (Ctrl-C's, SIGTERM, SIGHUP) to the main process, which
    records the interruption and shuts them down; a worker that died of the signal first would add a
    traceback to the one line the user gets."""
    for stop in STOP_SIGNALS:
        signal.signal(stop, signal.SIG_IGN)


def build_loaders(cfg: RunConfig, train: Dataset, val: Dataset, rank: int, world: int, pin: bool):
    """Each process sees 1/world of the data; validation is split without padding, so counts add up
    exactly."""
    workers = cfg.data.num_workers
    # Each loader draws its workers' base seed from a generator of its own: from the global stream,
    # a fresh iterator would draw where a persistent one does not, and the model's randomness
    # (stochastic depth) would then depend on the worker count and on whether the run was resumed.
    extra = dict(num_workers=workers, pin_memory=pin, prefetch_factor=PREFETCH if workers else None,
                 persistent_workers=workers > 0, multiprocessing_context=worker_context() if workers else None,
                 generator=torch.Generator().manual_seed(cfg.seed),
                 worker_init_fn=_ignore_stop_signals if workers else None)
    sampler = EpochSampler(
        DistributedSampler(
            train, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed, drop_last=True
        )
    )
    train_loader = DataLoader(SeededSamples(train, cfg.seed), batch_size=cfg.train.batch_size, sampler=sampler,
                              drop_last=True, **extra)
    check_batch(cfg.train.batch_size, len(train), world)
    val_loader = DataLoader(
        Subset(val, range(rank, len(val), world)), batch_size=cfg.eval_batch_size, **extra
    )
    return train_loader, val_loader


def to_device(batch, device: torch.device, channels_last: bool):
    x, y = batch
    x = x.to(device, non_blocking=True)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y.to(device, non_blocking=True)
