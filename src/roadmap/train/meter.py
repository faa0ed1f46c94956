"""What watches the batches, so that the loop only trains (as the official ConvNeXt's
`MetricLogger.log_every`): the progress bar with images/s and the run's time left, W&B's points
every `wandb.log_every` steps, the check that the loss stays finite, and the signals held since the
last batch."""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import torch

from ..errors import NonFiniteLoss
from ..record import clock
from ..schema import RunConfig
from .distributed import Context
from .progress import progress_bar
from .signals import raise_pending
from .tracking import Tracker


def watched(batches: Iterable, total: int, desc: str, ctx: Context, leave: bool = True) -> Iterator:
    """The first `total` batches under a progress bar, each after the signals held since the last
    one."""
    bar = progress_bar(
        total, desc, side_by_side=ctx.side_by_side, disable=not ctx.main, leave=leave
    )
    with bar:
        for i, batch in enumerate(batches):
            raise_pending()
            if i >= total:
                break
            yield batch
            bar.update()


class Meter:
    """A run's training meter: `batches` wraps an epoch's, `update` takes each step's loss, `totals`
    ends the epoch. `epoch_times` (seconds, training and evaluation) gives the time left of the
    epochs after this one."""

    def __init__(self, cfg: RunConfig, ctx: Context, iters: int, name: str, epochs: int = 1,
                 tracker: Tracker | None = None, epoch_times: Iterable[float] = ()):
        self.cfg, self.ctx, self.iters, self.name, self.epochs = cfg, ctx, iters, name, epochs
        self.tracker = (
            tracker if tracker is not None and tracker.run is not None and ctx.main else None
        )
        self.log_every = cfg.wandb.log_every if self.tracker is not None else 0
        self.epoch_times = list(epoch_times)
        self.cuda = ctx.device.type == "cuda"
        self.epoch = self.step = self.index = self.seen = 0

    def label(self, epoch: int) -> str:
        return f"{self.name} epoch {epoch + 1}/{self.epochs}"

    def batches(self, batches: Iterable, epoch: int, step: int) -> Iterator:
        """The epoch's training batches; `step` is the global step before it."""
        self.epoch, self.step, self.seen = epoch, step, 0
        self.loss_sum = torch.zeros((), device=self.ctx.device)
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.ctx.device)
        self.started = time.perf_counter()
        self.bar = progress_bar(self.iters, self.label(epoch), side_by_side=self.ctx.side_by_side,
                                disable=not self.ctx.main)
        with self.bar:
            for self.index, batch in enumerate(batches):
                raise_pending()
                if self.index >= self.iters:
                    break
                yield batch
                self.bar.update()
            if self.cuda:
                torch.cuda.synchronize(self.ctx.device)
        self.train_time = time.perf_counter() - self.started

    @property
    def wants_grad_norm(self) -> bool:
        """Whether the coming step is a W&B point that logs the gradient norm."""
        return (
            bool(self.log_every)
            and self.cfg.wandb.grad_norm
            and (self.step + 1) % self.log_every == 0
        )

    def update(
        self, loss: torch.Tensor, images: int, lr: float, grad_norm: torch.Tensor | None = None
    ) -> None:
        """After a step that trained `images` at `lr`."""
        self.step += 1
        self.loss_sum += loss.detach()
        self.seen += images
        if self.log_every and self.step % self.log_every == 0:
            values = {"train/loss": loss.item(), "train/lr": lr}
            if self.cfg.wandb.grad_norm and grad_norm is not None:
                values["train/grad_norm"] = grad_norm.item()
            self.tracker.log(values, step=self.step)
        # on a GPU, a sync: not every step
        if self.index % 10 == 0 or self.index + 1 == self.iters or not self.cuda:
            self._check(loss, lr)

    def _check(self, loss: torch.Tensor, lr: float) -> None:
        # NaN and inf stick in the sum: none since the last check
        if not torch.isfinite(self.loss_sum):
            raise NonFiniteLoss(
                f"the loss became {loss.item()} by epoch {self.epoch + 1}, iteration "
                f"{self.index + 1} (lr {lr:.3g})"
            )
        if self.ctx.main:
            elapsed = time.perf_counter() - self.started
            rate, per_iter = self.seen * self.ctx.world / elapsed, elapsed / (self.index + 1)
            epoch_s = (
                sum(self.epoch_times) / len(self.epoch_times)
                if self.epoch_times
                else per_iter * self.iters
            )
            left = (
                per_iter * (self.iters - self.index - 1) + (self.epochs - self.epoch - 1) * epoch_s
            )
            self.bar.set_postfix(
                loss=f"{loss.item():.4f}",
                img_s=f"{rate:.1f}" if rate < 100 else f"{rate:.0f}",
                run_left=clock(left),
                refresh=False,
            )

    def totals(self, model: torch.nn.Module) -> dict:
        """The epoch's mean training loss and images/s over every process; NonFiniteLoss if a weight
        is not finite."""
        loss_total, seen_total = self.ctx.sum([self.loss_sum.item(), self.seen])
        if not all(torch.isfinite(p).all() for p in model.parameters()):
            raise NonFiniteLoss(f"the weights became NaN or infinite in epoch {self.epoch + 1}")
        return {
            "train_loss": loss_total / (self.iters * self.ctx.world),
            "images_per_s": seen_total / self.train_time,
        }
