"""What runs: the recipe's schedule scaled to the budget, and its learning rate at the global batch.
Derived from the settings (schema.RunConfig.schedule), never set."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import List, Optional

from .enums import Schedule


@dataclass
class ScheduleConfig:
    """What runs, derived from train.* and budget.* (never set it): the recipe's schedule after the
    budget's scaling (milestones only for the multistep schedule), and its learning rate at the
    global batch. train.epochs, train.warmup_epochs, train.decay_milestones and train.base_lr stay
    the recipe's nominal values."""
    epochs: Optional[int] = None
    warmup_epochs: Optional[float] = None
    decay_milestones: Optional[List[int]] = None
    lr: Optional[float] = None
    global_batch: Optional[int] = None


def world_size() -> int:
    """Processes training together (torchrun's WORLD_SIZE; 1 without it)."""
    return int(os.environ.get("WORLD_SIZE", 1))


def derive_schedule(t, b) -> ScheduleConfig:
    """The recipe's schedule (a TrainConfig) scaled to the budget's epochs (a BudgetConfig), and
    base_lr scaled to the global batch."""
    epochs = b.epochs if b.epochs is not None else max(1, round(t.epochs * b.epoch_scale))
    scale = epochs / t.epochs
    batch = t.batch_size * world_size()
    milestones = (
        [max(1, round(m * scale)) for m in t.decay_milestones]
        if t.sched == Schedule.multistep
        else []
    )
    return ScheduleConfig(epochs, t.warmup_epochs * scale, milestones, t.lr_for(batch), batch)
