"""The training loop: one epoch (`train_steps`), evaluation (`evaluate`), and the two together (`train_epoch`).
Each epoch's randomness depends only on (seed, epoch, rank), so a resumed run repeats an uninterrupted one."""
from __future__ import annotations

import time
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from ..data.seeds import epoch_seed, seed_all
from ..errors import NonFiniteLoss
from ..record import EpochRow, clock
from ..schema import RunConfig
from .distributed import Context
from .progress import progress_bar
from .signals import raise_pending
from .tracking import Tracker
from .trainer import Trainer


@dataclass
class Evaluation:
    top1: float          # %, over every process's share of the validation set
    top5: float
    images: int
    images_per_s: float
    loss: float          # plain cross-entropy (no label smoothing), per image
    predictions: torch.Tensor | None = None  # (images, 2): predicted and true class by validation index, if asked


@torch.inference_mode()
def evaluate(model, batches, ctx: Context, autocast: AbstractContextManager, max_iters: int | None,
             predictions: bool = False, label: str = "") -> Evaluation:
    """Top-1/top-5 and loss over every process's share of the validation set, and optionally each image's
    prediction."""
    model.eval()
    correct1 = correct5 = seen = 0
    loss_sum = torch.zeros((), dtype=torch.float64, device=ctx.device)
    preds: list[torch.Tensor] = []
    t0 = time.perf_counter()
    total = len(batches) if max_iters is None else min(len(batches), max_iters)
    desc = f"  evaluation of {label}" if label else "  evaluation"
    for i, (x, y) in enumerate(progress_bar(total, desc, side_by_side=ctx.side_by_side, leave=False,
                                            disable=not ctx.main, iterable=batches)):
        raise_pending()  # a signal held since the last batch
        if max_iters is not None and i >= max_iters:
            break
        with autocast:
            out = model(x).float()
        loss_sum += torch.nn.functional.cross_entropy(out, y, reduction="sum").double()
        top = out.topk(min(5, out.shape[1]), dim=1).indices
        correct1 += (top[:, 0] == y).sum().item()
        correct5 += (top == y[:, None]).any(1).sum().item()
        seen += len(y)
        if predictions:
            preds.append(torch.stack([top[:, 0], y], 1).cpu())
    elapsed = time.perf_counter() - t0
    correct1, correct5, seen, loss = ctx.sum([correct1, correct5, seen, loss_sum.item()])
    gathered = ctx.gather_strided(torch.cat(preds)) if predictions and preds else None
    return Evaluation(100.0 * correct1 / max(seen, 1), 100.0 * correct5 / max(seen, 1), int(seen),
                      seen / max(elapsed, 1e-9), loss / max(seen, 1), gathered)


def train_steps(cfg: RunConfig, ctx: Context, t: Trainer, epoch: int, step: int, label: str,
                later_epochs: int = 0, epoch_s: float | None = None,
                tracker: Tracker | None = None) -> tuple[dict, int]:
    """One epoch of training: ({train_loss, lr, images_per_s}, the global step after it). The bar shows the run's
    time left: this epoch's, plus `later_epochs` more of `epoch_s` seconds each (or of this epoch's projected
    length while none has ended). Every `wandb.log_every` global steps the tracker gets the loss and learning rate
    (and gradient norm with `wandb.grad_norm`)."""
    every = cfg.wandb.log_every if tracker is not None and tracker.run is not None and ctx.main else 0
    seed_all(epoch_seed(cfg.seed, epoch, ctx.rank))
    t.train_batches.set_epoch(epoch)
    t.net.train()
    cuda = ctx.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(ctx.device)
    loss_sum, seen, t0 = torch.zeros((), device=ctx.device), 0, time.perf_counter()
    with progress_bar(t.iters, label, side_by_side=ctx.side_by_side, disable=not ctx.main) as bar:
        for i, (x, y) in enumerate(t.train_batches):
            raise_pending()  # a signal held since the last batch
            if i >= t.iters:
                break
            if t.mixup is not None:
                x, y = t.mixup(x, y)
            with t.autocast:
                loss = t.criterion(t.net(x), y)
            t.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            point = every and (step + 1) % every == 0
            norm = None
            if cfg.train.grad_clip:
                norm = torch.nn.utils.clip_grad_norm_(t.model.parameters(), cfg.train.grad_clip)
            elif point and cfg.wandb.grad_norm:
                norm = torch.nn.utils.get_total_norm([p.grad for p in t.model.parameters() if p.grad is not None])
            lr = t.optimizer.param_groups[0]["lr"]  # the rate this iteration trains with
            t.optimizer.step()
            step += 1
            if point:
                tracker.log({"train/loss": loss.item(), "train/lr": lr,
                             **({"train/grad_norm": norm.item()} if cfg.wandb.grad_norm and norm is not None
                                else {})}, step=step)
            t.scheduler.step_update(step)
            if t.ema is not None:
                t.ema.update(t.model, step=step)
            loss_sum += loss.detach()
            seen += x.shape[0]
            if i % 10 == 0 or i + 1 == t.iters or not cuda:  # a GPU sync: not every iteration there
                if not torch.isfinite(loss_sum):  # NaN and inf stick in the sum: none since the last check
                    raise NonFiniteLoss(f"the loss became {loss.item()} by epoch {epoch + 1}, iteration {i + 1} "
                                        f"(lr {t.optimizer.param_groups[0]['lr']:.3g})")
                if ctx.main:
                    elapsed = time.perf_counter() - t0
                    rate, per_iter = seen * ctx.world / elapsed, elapsed / (i + 1)
                    left = per_iter * (t.iters - i - 1) + later_epochs * (epoch_s or per_iter * t.iters)
                    bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{rate:.1f}" if rate < 100 else f"{rate:.0f}",
                                    run_left=clock(left), refresh=False)
            bar.update()
        if cuda:
            torch.cuda.synchronize(ctx.device)
        train_time = time.perf_counter() - t0
    loss_total, seen_total = ctx.sum([loss_sum.item(), seen])
    if not all(torch.isfinite(p).all() for p in t.model.parameters()):
        raise NonFiniteLoss(f"the weights became NaN or infinite in epoch {epoch + 1}")
    return {"train_loss": loss_total / (t.iters * ctx.world), "lr": t.optimizer.param_groups[0]["lr"],
            "images_per_s": seen_total / train_time}, step


def train_epoch(cfg: RunConfig, ctx: Context, t: Trainer, epoch: int, step: int, label: str,
                last: bool = False, later_epochs: int = 0, epoch_s: float | None = None,
                tracker: Tracker | None = None) -> tuple[EpochRow, int, torch.Tensor | None]:
    """One epoch of training and its evaluation: (its row, the global step after it, and after the `last` epoch
    each validation image's predicted and true class)."""
    t0 = time.perf_counter()
    trained, step = train_steps(cfg, ctx, t, epoch, step, label, later_epochs, epoch_s, tracker)
    ev = evaluate(t.eval_net, t.val_batches, ctx, t.autocast, cfg.budget.max_eval_iters, predictions=last, label=label)
    row = EpochRow(epoch=epoch + 1, train_loss=trained["train_loss"], val_top1=ev.top1, val_top5=ev.top5,
                   val_loss=ev.loss, val_images=ev.images, lr=trained["lr"], images_per_s=trained["images_per_s"],
                   eval_images_per_s=ev.images_per_s, epoch_time_s=time.perf_counter() - t0)
    if t.ema is not None:
        ema = evaluate(t.ema.module, t.val_batches, ctx, t.autocast, cfg.budget.max_eval_iters,
                       label=f"{label} (EMA)")
        row.val_top1_ema, row.val_top5_ema = ema.top1, ema.top5
    if ctx.device.type == "cuda":
        row.gpu_mem_gb = torch.cuda.max_memory_allocated(ctx.device) / 2**30
    return row, step, ev.predictions
