"""Train and evaluate one step. Resumable: every epoch ends in an atomic checkpoint and metrics.json."""
from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from timm.utils import ModelEmaV3
from tqdm import tqdm

from .config import RunConfig
from .data import build_datasets, build_loaders, seed_all, to_device
from .distributed import Context, setup, teardown
from .errors import ConfigMismatch, NonFiniteLoss
from .measure import count_gmacs, count_params
from .model import build_model
from .recipe import build_loss, build_mixup, build_optimizer, build_scheduler, scaled_lr
from .records import (check_same_config, git_commit, hardware, load_checkpoint, plain, read_json,
                      save_checkpoint, write_config, write_json)
from .tracking import Tracker

log = logging.getLogger(__name__)


@torch.no_grad()
def evaluate(model, loader, ctx: Context, autocast, channels_last: bool, max_iters: int | None) -> tuple[float, ...]:
    """(top-1 %, top-5 %, images) over every process's share of the validation set."""
    model.eval()
    correct1 = correct5 = seen = 0
    for i, batch in enumerate(loader):
        if max_iters is not None and i >= max_iters:
            break
        x, y = to_device(batch, ctx.device, channels_last)
        with autocast:
            out = model(x).float()
        top = out.topk(min(5, out.shape[1]), dim=1).indices
        correct1 += (top[:, 0] == y).sum().item()
        correct5 += (top == y[:, None]).any(1).sum().item()
        seen += len(y)
    correct1, correct5, seen = ctx.sum([correct1, correct5, seen])
    return 100.0 * correct1 / max(seen, 1), 100.0 * correct5 / max(seen, 1), int(seen)


def _finite(model: torch.nn.Module) -> bool:
    return all(torch.isfinite(p).all() for p in model.parameters())


def train(cfg: RunConfig, run_dir: Path, group: str | None = None) -> dict:
    """Train `cfg` in `run_dir`, resuming from its checkpoint. Returns the run record (metrics.json)."""
    ctx = setup(cfg.system)
    run_dir.mkdir(parents=True, exist_ok=True)
    record_path, ckpt_path = run_dir / "metrics.json", run_dir / "checkpoint.pt"
    config = plain(cfg)
    epochs = cfg.schedule_epochs()[0]
    record = read_json(record_path) or {}
    tracker = None
    try:
        state = load_checkpoint(ckpt_path) if ckpt_path.exists() else None  # CorruptCheckpoint: keep it, say so
        if state is not None:
            check_same_config(state["config"], config, run_dir)
            if state["epoch"] >= epochs and record.get("status") == "completed":
                log.info("%s already completed (%d epochs): nothing to do", run_dir, epochs)
                return record
        record.update(step=cfg.step.name, label=cfg.step.label, seed=cfg.seed, data=cfg.data.name,
                      budget=cfg.budget.name, epochs=epochs, run_dir=str(run_dir), status="running", reason=None,
                      history=state["history"] if state is not None else [])
        seed_all(cfg.seed)
        train_set, val_set = build_datasets(cfg)
        cuda = ctx.device.type == "cuda"
        channels_last = cuda and cfg.system.channels_last
        model = build_model(cfg)
        record.update(params=count_params(model), gmacs=count_gmacs(cfg.model, cfg.data.resolution),
                      resolution=cfg.data.resolution, hardware=hardware(ctx.device, ctx.world), git_commit=git_commit())
        if cfg.system.sync_bn and ctx.world > 1:
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(ctx.device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        train_loader, val_loader = build_loaders(cfg, train_set, val_set, ctx.rank, ctx.world, pin=cuda)
        iters = min(len(train_loader), cfg.budget.max_train_iters or len(train_loader))
        global_batch = cfg.train.batch_size * ctx.world
        optimizer = build_optimizer(cfg, model, scaled_lr(cfg, global_batch), fused=cuda and cfg.system.fused_optimizer)
        ema = ModelEmaV3(model, decay=cfg.train.ema_decay) if cfg.train.ema else None
        start, step, wall = 0, 0, 0.0
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if ema is not None and state.get("ema") is not None:
                ema.load_state_dict(state["ema"])
            start, step, wall = state["epoch"], state["global_step"], state["wall_time_s"]
            log.info("resuming %s from epoch %d of %d", ckpt_path, start, epochs)
        scheduler = build_scheduler(cfg, optimizer, iters)
        scheduler.step_update(step)
        mixup = build_mixup(cfg)
        criterion = build_loss(cfg, mixup)
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[ctx.device] if cuda else None) \
            if ctx.world > 1 else model
        # evaluation runs on the bare module: DDP's forward is a collective, and shards may differ by a batch
        eval_net = model
        if cfg.system.compile:
            net, eval_net = torch.compile(net), torch.compile(model)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda and cfg.system.amp else nullcontext()
        if ctx.main:
            write_config(cfg, run_dir / "config.yaml")
            tracker = Tracker(cfg.wandb, run_dir, f"{cfg.step.name}/seed{cfg.seed}", group, config,
                              record.get("wandb_id"))
            record.update(wandb_id=tracker.id, wandb_group=group)
            write_json(record, record_path)
        for epoch in range(start, epochs):
            seed_all(cfg.seed * 100_003 + epoch * 1_009 + ctx.rank)  # each epoch's randomness, resume or not
            train_loader.sampler.set_epoch(epoch)
            net.train()
            if cuda:
                torch.cuda.reset_peak_memory_stats(ctx.device)
            loss_sum, seen, t0 = torch.zeros((), device=ctx.device), 0, time.perf_counter()
            bar = tqdm(total=iters, desc=f"{cfg.step.name} epoch {epoch + 1}/{epochs}", disable=not ctx.main,
                       unit="it", dynamic_ncols=True)
            for i, batch in enumerate(train_loader):
                if i >= iters:
                    break
                x, y = to_device(batch, ctx.device, channels_last)
                if mixup is not None:
                    x, y = mixup(x, y)
                with autocast:
                    loss = criterion(net(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.train.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
                optimizer.step()
                step += 1
                scheduler.step_update(step)
                if ema is not None:
                    ema.update(model, step=step)
                loss_sum += loss.detach()
                seen += x.shape[0]
                if i % 10 == 0 or i + 1 == iters or not cuda:  # a GPU sync: not every iteration there
                    if not torch.isfinite(loss_sum):  # NaN and inf stick in the sum: none since the last check
                        raise NonFiniteLoss(
                            f"the loss became {loss.item()} by epoch {epoch + 1}, iteration {i + 1} (lr "
                            f"{optimizer.param_groups[0]['lr']:.3g}); the last good checkpoint was kept "
                            f"({ckpt_path if ckpt_path.exists() else 'none yet'}). Lower train.base_lr or set "
                            "train.grad_clip.")
                    if ctx.main:
                        rate = seen * ctx.world / (time.perf_counter() - t0)
                        bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{rate:.0f}", refresh=False)
                bar.update()
            if cuda:
                torch.cuda.synchronize(ctx.device)
            train_time = time.perf_counter() - t0
            bar.close()
            loss_total, seen_total = ctx.sum([loss_sum.item(), seen])
            if not _finite(model):
                raise NonFiniteLoss(f"the weights became NaN or infinite in epoch {epoch + 1}; the last good "
                                    "checkpoint was kept. Lower train.base_lr or set train.grad_clip.")
            top1, top5, val_images = evaluate(eval_net, val_loader, ctx, autocast, channels_last,
                                              cfg.budget.max_eval_iters)
            row = {"epoch": epoch + 1, "train_loss": loss_total / (iters * ctx.world), "val_top1": top1,
                   "val_top5": top5, "val_images": val_images, "lr": optimizer.param_groups[0]["lr"],
                   "images_per_s": seen_total / train_time, "epoch_time_s": time.perf_counter() - t0}
            if ema is not None:
                row["val_top1_ema"], row["val_top5_ema"], _ = evaluate(ema.module, val_loader, ctx, autocast,
                                                                       channels_last, cfg.budget.max_eval_iters)
            if cuda:
                row["gpu_mem_gb"] = torch.cuda.max_memory_allocated(ctx.device) / 2**30
            wall += row["epoch_time_s"]
            if ctx.main:
                save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                 "ema": ema.state_dict() if ema is not None else None, "epoch": epoch + 1,
                                 "global_step": step, "wall_time_s": wall, "config": config,
                                 "history": record["history"] + [row]}, ckpt_path)
                record["history"].append(row)
                _summarize(record, wall)
                write_json(record, record_path)
                tracker.log(row, step=step)
                log.info("epoch %d/%d: loss %.4f, top-1 %.2f, top-5 %.2f, %.0f images/s", epoch + 1, epochs,
                         row["train_loss"], top1, top5, row["images_per_s"])
        record["status"] = "completed"
    except ConfigMismatch:
        raise  # the directory belongs to another configuration: touch nothing
    except BaseException as e:
        record.update(status="failed", reason=f"{type(e).__name__}: {e}")
        if ctx.main:
            write_json(record, record_path)
        raise
    finally:
        if tracker is not None:
            tracker.summary({k: record.get(k) for k in ("best_top1", "final_top1", "params", "gmacs",
                                                        "images_per_s", "status")})
            tracker.finish(0 if record.get("status") == "completed" else 1)
        teardown()
    if ctx.main:
        write_json(record, record_path)
    return record


def _summarize(record: dict, wall: float) -> None:
    h = record["history"]
    record.update(best_top1=max(r["val_top1"] for r in h), final_top1=h[-1]["val_top1"], epochs_done=len(h),
                  images_per_s=sum(r["images_per_s"] for r in h) / len(h), wall_time_s=wall)

