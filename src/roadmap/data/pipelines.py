"""The two data pipelines behind one interface (`Batches`): `set_epoch(epoch)`, `len()`, and
iteration over batches that are already on the training device. The training loop does not know
which one made them.

- `workers` (LoaderBatches): timm's PIL transforms in DataLoader worker processes, then copied to the device.
- `device` (DeviceBatches): the uint8 dataset held on the device; each batch cropped, flipped, RandAugmented,
  normalized and erased there (augment.py). Its draws come from a generator seeded by (seed, epoch, iteration,
  rank), so batches depend on nothing else, and a resumed run repeats them.
"""
from __future__ import annotations

import json
import logging
import math
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from ..enums import Pipeline
from ..errors import DataError, WriteFailed
from ..files import atomic_write, read_json
from ..schema import RunConfig, device_augments
from .augment import BatchAugment
from .loaders import PREFETCH, Forever, SeededSamples, build_loaders, check_batch, to_device, worker_context
from .seeds import batch_seed, kept_random_state
from .sources import ArrayDataset

log = logging.getLogger(__name__)
CHOICES = "pipeline_choices.json"  # data.pipeline=auto's choices, kept in paths.output_dir


class Batches(Protocol):
    def set_epoch(self, epoch: int) -> None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...
    def close(self) -> None: ...


class LoaderBatches:
    """A DataLoader's batches, moved to the device."""

    def __init__(self, loader, device: torch.device, channels_last: bool):
        self.loader, self.device, self.channels_last = loader, device, channels_last

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.loader.sampler, "set_epoch"):
            self.loader.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return (to_device(batch, self.device, self.channels_last) for batch in self.loader)

    def close(self) -> None:
        """Shut the loader's persistent workers down (they outlive an epoch by design)."""
        workers = getattr(self.loader, "_iterator", None)
        if workers is not None:
            workers._shutdown_workers()
            self.loader._iterator = None


def images_nchw(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (N, H, W) or (N, H, W, 3) -> (N, 3, H, W) on the device; grayscale repeated, as PIL's
    convert('RGB')."""
    x = torch.from_numpy(np.require(images, requirements="CW"))  # a read-only array (a loaded file) copied
    x = x[:, None].expand(-1, 3, -1, -1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    return x.contiguous().to(device)


class DeviceBatches:
    """Training (shuffled, drop_last, this rank's share) or eval batches of a uint8 array dataset,
    made on the device."""

    def __init__(self, data: ArrayDataset, cfg: RunConfig, rank: int, world: int, device: torch.device,
                 channels_last: bool, train: bool):
        self.images, self.labels = (
            images_nchw(data.images, device),
            torch.from_numpy(data.labels).to(device),
        )
        self.aug, self.train = BatchAugment.from_config(cfg), train
        self.batch = cfg.train.batch_size if train else cfg.eval_batch_size
        self.seed, self.rank, self.epoch, self.device, self.channels_last = cfg.seed, rank, 0, device, channels_last
        n = len(self.labels)
        self.sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed,
                                          drop_last=True) if train else None
        self.eval_indices = torch.arange(rank, n, world, device=device)
        if train:
            check_batch(self.batch, n, world)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def close(self) -> None:
        pass  # no process of its own

    def __len__(self) -> int:
        return (
            len(self.sampler) // self.batch
            if self.train
            else math.ceil(len(self.eval_indices) / self.batch)
        )

    def _out(self, x: torch.Tensor, y: torch.Tensor):
        return (x.contiguous(memory_format=torch.channels_last) if self.channels_last else x), y

    def __iter__(self):
        if not self.train:
            for i in range(len(self)):
                idx = self.eval_indices[i * self.batch:(i + 1) * self.batch]
                yield self._out(self.aug.eval(self.images[idx]), self.labels[idx])
            return
        order = torch.tensor(list(self.sampler), device=self.device)
        for i in range(len(self)):
            idx = order[i * self.batch:(i + 1) * self.batch]
            g = torch.Generator(device=self.device).manual_seed(
                batch_seed(self.seed, self.epoch, i, self.rank)
            )
            yield self._out(self.aug.train(self.images[idx], g), self.labels[idx])


def workers_rate(dataset, batch_size: int, workers: int, timed: int = 3, seed: int = 0) -> float:
    """Images/s that `workers` loader processes (0: the calling process) make of `dataset` (keyed
    (index, epoch), as SeededSamples is) in steady state. Each worker runs up to PREFETCH batches
    ahead of the reader and finishes up to one ahead of the others, so the first 2 x workers x
    PREFETCH batches, made while the reader waited, are not timed, and at least 10 per worker are (a
    batch made ahead then errs by a tenth at most). The workers are shut down before this
    returns."""
    loader = DataLoader(dataset, batch_size=batch_size, sampler=Forever(len(dataset), seed), num_workers=workers,
                        prefetch_factor=PREFETCH if workers else None,
                        multiprocessing_context=worker_context() if workers else None,
                        generator=torch.Generator().manual_seed(seed))
    it = iter(loader)
    for _ in range(1 + 2 * workers * PREFETCH):
        next(it)
    t0, made = time.perf_counter(), 0
    for _ in range(max(timed, 10 * workers)):
        made += len(next(it)[1])
    rate = made / (time.perf_counter() - t0)
    del it  # shuts the workers down
    return rate


def endless(batches):
    """Batches epoch after epoch: a probe or benchmark can take more than one epoch has (a batch
    near the data's size leaves only a few)."""
    while True:
        yield from batches


def device_rate(batches: "DeviceBatches", timed: int = 3) -> float:
    """Images/s of the device pipeline making training batches, after one untimed batch."""
    it = endless(batches)
    next(it)
    t0 = time.perf_counter()
    made = sum(len(next(it)[1]) for _ in range(timed))
    if batches.device.type == "cuda":
        torch.cuda.synchronize(batches.device)
    return made / (time.perf_counter() - t0)


def probe_pipelines(cfg: RunConfig, train_set: ArrayDataset, device: torch.device) -> dict:
    """Training batches made each way, each pipeline timed while the other is idle: images/s per
    core used (the loader workers, or torch's threads; never more than the cores that exist). The
    workers make batches of at most 16 (their cost per image does not depend on the batch) so that
    the probe stays short. The run's own random streams are left as they were."""
    here, workers = os.cpu_count() or 1, cfg.data.num_workers
    with kept_random_state():
        threads = 1 if device.type == "cuda" else min(torch.get_num_threads(), here)
        rate = {
            "device": device_rate(DeviceBatches(train_set, cfg, 0, 1, device, False, train=True))
            / threads
        }
        rate["workers"] = workers_rate(
            SeededSamples(train_set, cfg.seed),
            min(cfg.train.batch_size, 16),
            workers,
            seed=cfg.seed,
        ) / max(1, min(workers, here))
    return {k: round(v, 1) for k, v in rate.items()}


def resolve_pipeline(cfg: RunConfig, train_set, device: torch.device = torch.device("cpu"), world: int = 1,
                     resumed: str | None = None) -> tuple[Pipeline, dict | None]:
    """(the pipeline, the probe's figures where `auto` chose by them). `auto`: for in-memory arrays
    whose recipe the device pipeline can make (RandAugment), on the CPU the pipeline that makes
    batches faster per core on this machine (`kept_choice`: the device pipeline wins at 32x32, the
    workers at 224x224, docs/benchmarks.md); on CUDA, or with several processes (which must agree),
    the device pipeline; workers otherwise. A resumed run keeps the pipeline it began with
    (`resumed`), so its batches stay those it would have had."""
    p = cfg.data.pipeline
    if p == Pipeline.auto:
        if not (isinstance(train_set, ArrayDataset) and device_augments(cfg.train.auto_augment)):
            return Pipeline.workers, None
        if resumed is not None:
            return Pipeline(resumed), None
        if device.type == "cuda" or world > 1:
            return Pipeline.device, None
        choice = kept_choice(cfg, train_set, device)
        return Pipeline(choice["pipeline"]), choice["probe"]
    if p == Pipeline.device and not isinstance(train_set, ArrayDataset):
        raise DataError(f"data.pipeline=device needs a dataset held in memory (fashion_mnist_small, fashion_mnist, "
                        f"cifar10, cifar100); {cfg.data.name} is read from image files: use data.pipeline=workers "
                        "or auto")
    return p, None


def choice_key(cfg: RunConfig) -> str:
    """What the automatic choice depends on: this machine and its threads, the data, and how batches
    are made."""
    t = cfg.train
    return " | ".join(str(v) for v in (
        platform.node(), platform.processor() or platform.machine(), f"{os.cpu_count()} cores",
        f"{torch.get_num_threads()} threads", f"{cfg.data.num_workers} workers", cfg.data.name,
        f"{cfg.data.resolution}px", cfg.data.fit.value, t.crop.value, t.auto_augment, f"erasing {t.re_prob > 0}"))


def kept_choice(cfg: RunConfig, train_set: ArrayDataset, device: torch.device) -> dict:
    """{pipeline, probe, measured}: `auto`'s choice on this machine for this data, measured by the
    first run that needs it (probe_pipelines) and kept in <paths.output_dir>/pipeline_choices.json,
    so that later runs build only the pipeline they use. Delete the file (or its entry) to measure
    again."""
    path, key = Path(cfg.paths.output_dir) / CHOICES, choice_key(cfg)
    kept = kept_choices(path).get(key)
    if kept is not None:
        log.info("data.pipeline=auto: %s, as measured on %s (%s)", kept["pipeline"], kept["measured"], path)
        return kept
    probe = probe_pipelines(cfg, train_set, device)
    kept = {"pipeline": (Pipeline.device if probe["device"] >= probe["workers"] else Pipeline.workers).value,
            "probe": probe, "measured": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    log.info(
        "data.pipeline=auto chose %s (images/s per core, measured: %s); kept in %s",
        kept["pipeline"],
        probe,
        path,
    )
    try:  # read again: another run may have kept a choice of its own meanwhile
        path.parent.mkdir(parents=True, exist_ok=True)
        choices = {**kept_choices(path), key: kept}
        atomic_write(path, lambda f: f.write(json.dumps(choices, indent=1).encode()))
    except (OSError, WriteFailed) as e:  # a cache: the run goes on, and the next one measures again
        log.warning("data.pipeline=auto's choice was not kept (%s)", e)
    return kept


def kept_choices(path: Path) -> dict:
    """The choices kept in `path`; none if it is missing or unreadable (then they are measured
    again)."""
    try:
        choices = read_json(path)
    except (OSError, ValueError):
        return {}
    return choices if isinstance(choices, dict) else {}


def build_batches(cfg: RunConfig, train_set, val_set, rank: int, world: int, device: torch.device,
                  channels_last: bool, resumed: str | None = None):
    """(train batches, eval batches, the pipeline used, the probe's figures or None); `resumed`: the
    pipeline a resumed run began with."""
    pipeline, probe = resolve_pipeline(cfg, train_set, device, world, resumed)
    if pipeline == Pipeline.device:
        return (
            DeviceBatches(train_set, cfg, rank, world, device, channels_last, train=True),
            DeviceBatches(val_set, cfg, rank, world, device, channels_last, train=False),
            pipeline,
            probe,
        )
    train, val = build_loaders(cfg, train_set, val_set, rank, world, pin=device.type == "cuda")
    return LoaderBatches(train, device, channels_last), LoaderBatches(val, device, channels_last), pipeline, probe
