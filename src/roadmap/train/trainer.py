"""Everything a training epoch needs, built once per process from the config: the model (DDP-wrapped
and/or compiled where asked), the recipe's optimizer, schedule, EMA, Mixup and loss, and batches on
the device."""
from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch
from timm.data import Mixup
from timm.scheduler.scheduler import Scheduler
from timm.utils import ModelEmaV3

from ..data.pipelines import Batches, build_batches
from ..data.seeds import seed_all
from ..data.sources import build_datasets
from ..model import build_model, upgrade_state_dict
from ..schema import RunConfig
from .distributed import Context
from .recipe import build_loss, build_mixup, build_optimizer, build_scheduler, scaled_lr


@dataclass
class Trainer:
    model: torch.nn.Module     # the bare module: what is saved
    net: torch.nn.Module       # what trains: DDP-wrapped and/or compiled
    eval_net: torch.nn.Module  # the bare (or compiled) module: DDP's forward is a collective
    optimizer: torch.optim.Optimizer
    scheduler: Scheduler       # stepped every iteration (step_update)
    ema: ModelEmaV3 | None
    mixup: Mixup | None
    criterion: torch.nn.Module
    train_batches: Batches     # on the device, from either pipeline (data/pipelines.py)
    val_batches: Batches
    pipeline: str              # data.pipeline as resolved: workers or device
    # what data.pipeline=auto measured (images/s per core each way), if it did
    pipeline_probe: dict | None
    iters: int                 # training iterations per epoch
    autocast: AbstractContextManager

    def close(self) -> None:
        """End the loader workers now: a run that failed keeps its trainer alive in the traceback
        until the process exits, and workers that ignore SIGTERM (loaders.py) would then hold the
        exit."""
        for batches in (self.train_batches, self.val_batches):
            batches.close()


def build_trainer(cfg: RunConfig, ctx: Context, state: dict | None) -> Trainer:
    """The trainer of `cfg` on this process, from `state` (a checkpoint) when resuming."""
    seed_all(cfg.seed)
    train_set, val_set = build_datasets(cfg)
    cuda = ctx.device.type == "cuda"
    model = build_model(cfg)
    if cfg.system.sync_bn and ctx.world > 1:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    # channels_last on the CPU too: 1.0x to 2.3x faster per femto step (docs/benchmarks.md)
    layout = torch.channels_last if cfg.system.channels_last else torch.contiguous_format
    model.to(ctx.device, memory_format=layout)
    resumed = state["record"].get("pipeline") if state is not None else None
    train_batches, val_batches, pipeline, probe = build_batches(
        cfg, train_set, val_set, ctx.rank, ctx.world, ctx.device, cfg.system.channels_last, resumed
    )
    iters = min(len(train_batches), cfg.budget.max_train_iters or len(train_batches))
    fused = cuda if cfg.system.fused_optimizer is None else cfg.system.fused_optimizer
    optimizer = build_optimizer(cfg, model, scaled_lr(cfg, cfg.train.batch_size * ctx.world), fused=fused)
    ema = ModelEmaV3(model, decay=cfg.train.ema_decay) if cfg.train.ema else None
    if state is not None:
        model.load_state_dict(upgrade_state_dict(model, state["model"]))  # also of unnamed layers
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(upgrade_state_dict(ema, state["ema"]))
    scheduler = build_scheduler(cfg, optimizer, iters)
    scheduler.step_update(state["global_step"] if state is not None else 0)
    mixup = build_mixup(cfg)
    ddp = torch.nn.parallel.DistributedDataParallel
    net = ddp(model, device_ids=[ctx.device] if cuda else None) if ctx.world > 1 else model
    eval_net = model
    if cfg.system.compile:
        net, eval_net = torch.compile(net), torch.compile(model)
    amp = cuda if cfg.system.amp is None else cfg.system.amp
    autocast = torch.autocast(ctx.device.type, dtype=torch.bfloat16) if amp else nullcontext()
    return Trainer(model, net, eval_net, optimizer, scheduler, ema, mixup, build_loss(cfg, mixup), train_batches,
                   val_batches, pipeline.value, probe, iters, autocast)
