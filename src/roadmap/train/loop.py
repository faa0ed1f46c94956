"""The training loop: one epoch (`train_steps`), evaluation (`evaluate`), and the two together
(`train_epoch`). Each epoch's randomness depends only on (seed, epoch, rank), so a resumed run
repeats an uninterrupted one. The meter (meter.py) shows progress, logs to W&B and checks the loss
and signals; the loop below only trains."""
from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from ..data.seeds import epoch_seed, seed_all
from ..record import EpochRow
from ..schema import RunConfig
from .distributed import Context
from .meter import Meter, watched
from .trainer import Trainer


def train_steps(cfg: RunConfig, ctx: Context, trainer: Trainer, meter: Meter, epoch: int,
                step: int) -> tuple[dict, int]:
    """One epoch of training: ({train_loss, lr, images_per_s}, the global step after it)."""
    seed_all(epoch_seed(cfg.seed, epoch, ctx.rank))
    trainer.train_batches.set_epoch(epoch)
    trainer.net.train()
    for x, y in meter.batches(trainer.train_batches, epoch, step):
        if trainer.mixup is not None:
            x, y = trainer.mixup(x, y)
        with trainer.autocast:
            loss = trainer.criterion(trainer.net(x), y)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = gradient_norm(cfg, trainer.model, meter.wants_grad_norm)
        lr = trainer.optimizer.param_groups[0]["lr"]  # the rate this step trains with
        trainer.optimizer.step()
        step += 1
        trainer.scheduler.step_update(step)
        if trainer.ema is not None:
            trainer.ema.update(trainer.model, step=step)
        meter.update(loss, x.shape[0], lr, grad_norm)
    return meter.totals(trainer.model) | {"lr": trainer.optimizer.param_groups[0]["lr"]}, step


def gradient_norm(cfg: RunConfig, model: torch.nn.Module, wanted: bool) -> torch.Tensor | None:
    """Clips the gradients to `train.grad_clip` if set, returning their norm before; measures it if
    `wanted`."""
    if cfg.train.grad_clip:
        return torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
    if wanted:
        return torch.nn.utils.get_total_norm(
            [p.grad for p in model.parameters() if p.grad is not None]
        )
    return None


@dataclass
class Evaluation:
    top1: float          # %, over every process's share of the validation set
    top5: float
    images: int
    images_per_s: float
    loss: float          # plain cross-entropy (no label smoothing), per image
    # (images, 2): predicted and true class by validation index, if asked
    predictions: torch.Tensor | None = None


@torch.inference_mode()
def evaluate(model, batches, ctx: Context, autocast: AbstractContextManager, max_iters: int | None,
             predictions: bool = False, label: str = "") -> Evaluation:
    """Top-1/top-5 and loss over every process's share of the validation set, and optionally each
    image's prediction."""
    model.eval()
    correct1 = correct5 = seen = 0
    loss_sum = torch.zeros((), dtype=torch.float64, device=ctx.device)
    preds: list[torch.Tensor] = []
    started = time.perf_counter()
    total = len(batches) if max_iters is None else min(len(batches), max_iters)
    for x, y in watched(
        batches, total, f"  evaluation of {label}" if label else "  evaluation", ctx, leave=False
    ):
        with autocast:
            out = model(x).float()
        loss_sum += torch.nn.functional.cross_entropy(out, y, reduction="sum").double()
        top = out.topk(min(5, out.shape[1]), dim=1).indices
        correct1 += (top[:, 0] == y).sum().item()
        correct5 += (top == y[:, None]).any(1).sum().item()
        seen += len(y)
        if predictions:
            preds.append(torch.stack([top[:, 0], y], 1).cpu())
    elapsed = time.perf_counter() - started
    correct1, correct5, seen, loss = ctx.sum([correct1, correct5, seen, loss_sum.item()])
    gathered = ctx.gather_strided(torch.cat(preds)) if predictions and preds else None
    return Evaluation(100.0 * correct1 / max(seen, 1), 100.0 * correct5 / max(seen, 1), int(seen),
                      seen / max(elapsed, 1e-9), loss / max(seen, 1), gathered)


def train_epoch(cfg: RunConfig, ctx: Context, trainer: Trainer, meter: Meter, epoch: int, step: int,
                last: bool = False) -> tuple[EpochRow, int, torch.Tensor | None]:
    """One epoch of training and its evaluation: (its row, the global step after it, and after the
    `last` epoch each validation image's predicted and true class)."""
    started, label = time.perf_counter(), meter.label(epoch)
    trained, step = train_steps(cfg, ctx, trainer, meter, epoch, step)
    ev = evaluate(trainer.eval_net, trainer.val_batches, ctx, trainer.autocast, cfg.budget.max_eval_iters,
                  predictions=last, label=label)
    row = EpochRow(epoch=epoch + 1, train_loss=trained["train_loss"], val_top1=ev.top1, val_top5=ev.top5,
                   val_loss=ev.loss, val_images=ev.images, lr=trained["lr"], images_per_s=trained["images_per_s"],
                   eval_images_per_s=ev.images_per_s)
    if trainer.ema is not None:
        ema = evaluate(trainer.ema.module, trainer.val_batches, ctx, trainer.autocast, cfg.budget.max_eval_iters,
                       label=f"{label} (EMA)")
        row.val_top1_ema, row.val_top5_ema = ema.top1, ema.top5
    if ctx.device.type == "cuda":
        row.gpu_mem_gb = torch.cuda.max_memory_allocated(ctx.device) / 2**30
    row.epoch_time_s = time.perf_counter() - started
    meter.epoch_times.append(row.epoch_time_s)
    return row, step, ev.predictions
