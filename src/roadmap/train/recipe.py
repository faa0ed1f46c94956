"""The training recipe from timm's parts: optimizer, per-iteration schedule, Mixup/CutMix, loss,
EMA."""
from __future__ import annotations

import torch
from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2

from ..enums import Optimizer, Schedule
from ..schema import RunConfig


def scaled_lr(cfg: RunConfig, global_batch: int) -> float:
    """The recipe's learning rate is per `ref_batch` images, scaled to the global batch by
    train.lr_scaling."""
    return cfg.train.lr_for(global_batch)


def build_optimizer(
    cfg: RunConfig, model: torch.nn.Module, lr: float, fused: bool
) -> torch.optim.Optimizer:
    t = cfg.train
    # timm's "sgd" is Nesterov; torchvision's recipe uses plain momentum, which timm calls
    # "momentum"
    name = "momentum" if t.opt == Optimizer.sgd else "adamw"
    kwargs = dict(betas=tuple(t.betas)) if t.opt == Optimizer.adamw else dict(momentum=t.momentum)
    if fused:
        kwargs["fused"] = True
    return create_optimizer_v2(model, opt=name, lr=lr, weight_decay=t.weight_decay,
                               filter_bias_and_bn=t.wd_exclude_1d, **kwargs)


def build_scheduler(cfg: RunConfig, optimizer: torch.optim.Optimizer, iters_per_epoch: int):
    """Stepped every iteration with `scheduler.step_update(global_step)`."""
    t = cfg.train
    epochs, warmup, milestones = (
        cfg.schedule.epochs,
        cfg.schedule.warmup_epochs,
        cfg.schedule.decay_milestones,
    )
    # warm-up comes before the cosine, as in the official ConvNeXt code
    num_epochs = epochs - warmup if t.sched == Schedule.cosine else epochs
    scheduler, _ = create_scheduler_v2(
        optimizer, sched=t.sched.value, num_epochs=num_epochs, decay_milestones=milestones,
        decay_rate=t.decay_rate, min_lr=t.min_lr, warmup_lr=t.warmup_lr, warmup_epochs=warmup,
        warmup_prefix=True, step_on_epochs=False, updates_per_epoch=iters_per_epoch)
    scheduler.step_update(0)
    return scheduler


def build_mixup(cfg: RunConfig) -> Mixup | None:
    t = cfg.train
    if t.mixup <= 0 and t.cutmix <= 0:
        return None
    return Mixup(mixup_alpha=t.mixup, cutmix_alpha=t.cutmix, prob=1.0, switch_prob=t.mixup_switch_prob,
                 mode="batch", label_smoothing=t.smoothing, num_classes=cfg.data.num_classes)


def build_loss(cfg: RunConfig, mixup: Mixup | None) -> torch.nn.Module:
    if mixup is not None:  # Mixup makes soft targets that already carry the label smoothing
        return SoftTargetCrossEntropy()
    if cfg.train.smoothing > 0:
        return LabelSmoothingCrossEntropy(smoothing=cfg.train.smoothing)
    return torch.nn.CrossEntropyLoss()
