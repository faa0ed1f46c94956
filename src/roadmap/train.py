"""Train and evaluate one step. Resumable and exact: every epoch ends in an atomic checkpoint that carries the
run's record, and each epoch's randomness depends only on (seed, epoch), so a resumed run repeats the numbers
of one never interrupted. One process at a time holds a run directory."""
from __future__ import annotations

import logging
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from omegaconf import OmegaConf
from timm.utils import ModelEmaV3
from tqdm import tqdm

from .config import RunConfig
from .data import build_datasets, check_data, seed_all
from .device_data import build_batches
from .distributed import Context, check_device, setup, teardown
from .errors import Interrupted, NonFiniteLoss, RoadmapError, WriteFailed
from .lock import RunLock
from .measure import describe
from .model import build_model
from .naming import variant_name
from .recipe import build_loss, build_mixup, build_optimizer, build_scheduler, scaled_lr
from .records import (PREDICTIONS, check_same_config, git_commit, hardware, load_checkpoint, plain, read_json,
                      record_from_checkpoint, remove_stale_temporaries, save_checkpoint, save_predictions, summarize, write_config,
                      write_json)
from .signals import check, deferred, interruptible
from .tracking import Tracker, run_identity

log = logging.getLogger(__name__)


@dataclass
class Trainer:
    """Everything a training epoch needs, built once per process."""
    model: torch.nn.Module
    net: torch.nn.Module       # what trains: DDP-wrapped and/or compiled
    eval_net: torch.nn.Module  # the bare (or compiled) module: DDP's forward is a collective
    optimizer: torch.optim.Optimizer
    scheduler: object
    ema: ModelEmaV3 | None
    mixup: object
    criterion: torch.nn.Module
    train_loader: object  # batches on the device, from either pipeline (device_data.py)
    val_loader: object
    pipeline: str
    pipeline_probe: dict | None  # data.pipeline=auto's measurement (images/s per core each way), if it made one
    iters: int
    autocast: object
    channels_last: bool


def build_trainer(cfg: RunConfig, ctx: Context, state: dict | None) -> Trainer:
    seed_all(cfg.seed)
    train_set, val_set = build_datasets(cfg)
    cuda = ctx.device.type == "cuda"
    channels_last = cfg.system.channels_last  # on the CPU too: 1.0x to 2.3x faster per femto step (docs/femto_cpu.md)
    model = build_model(cfg)
    if cfg.system.sync_bn and ctx.world > 1:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(ctx.device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    resumed = state["record"].get("pipeline") if state is not None else None
    train_loader, val_loader, pipeline, probe = build_batches(cfg, train_set, val_set, ctx.rank, ctx.world,
                                                              ctx.device, channels_last, resumed)
    iters = min(len(train_loader), cfg.budget.max_train_iters or len(train_loader))
    optimizer = build_optimizer(cfg, model, scaled_lr(cfg, cfg.train.batch_size * ctx.world),
                                fused=cuda if cfg.system.fused_optimizer is None else cfg.system.fused_optimizer)
    ema = ModelEmaV3(model, decay=cfg.train.ema_decay) if cfg.train.ema else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if ema is not None and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])
    scheduler = build_scheduler(cfg, optimizer, iters)
    scheduler.step_update(state["global_step"] if state is not None else 0)
    mixup = build_mixup(cfg)
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[ctx.device] if cuda else None) \
        if ctx.world > 1 else model
    eval_net = model
    if cfg.system.compile:
        net, eval_net = torch.compile(net), torch.compile(model)
    amp = cuda if cfg.system.amp is None else cfg.system.amp
    autocast = torch.autocast(ctx.device.type, dtype=torch.bfloat16) if amp else nullcontext()
    return Trainer(model, net, eval_net, optimizer, scheduler, ema, mixup, build_loss(cfg, mixup), train_loader,
                   val_loader, pipeline.value, probe, iters, autocast, channels_last)


@dataclass
class Evaluation:
    top1: float          # %, over every process's share of the validation set
    top5: float
    images: int
    images_per_s: float
    loss: float          # plain cross-entropy (no label smoothing), per image
    predictions: torch.Tensor | None = None  # (images, 2): predicted and true class by validation index, if asked


@torch.inference_mode()
def evaluate(model, loader, ctx: Context, t: Trainer, max_iters: int | None, predictions: bool = False) -> Evaluation:
    """Top-1/top-5 over every process's share of the validation set, and optionally each image's prediction."""
    model.eval()
    correct1 = correct5 = seen = 0
    loss_sum = torch.zeros((), dtype=torch.float64, device=ctx.device)
    preds: list[torch.Tensor] = []
    t0 = time.perf_counter()
    total = len(loader) if max_iters is None else min(len(loader), max_iters)
    for i, (x, y) in enumerate(tqdm(loader, total=total, desc="  evaluation", unit="it", leave=False,
                                    disable=not ctx.main, dynamic_ncols=True)):
        check()  # a signal held since the last batch
        if max_iters is not None and i >= max_iters:
            break
        with t.autocast:
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


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}"


def train_steps(cfg: RunConfig, ctx: Context, t: Trainer, epoch: int, step: int, label: str,
                later_epochs: int = 0, epoch_s: float | None = None,
                tracker: Tracker | None = None) -> tuple[dict, int]:
    """One epoch of training, without evaluation: (its part of the history row, the global step after it).
    The bar shows the run's time left too: this epoch's, plus `later_epochs` more of `epoch_s` seconds each (or of
    this epoch's projected length while no epoch has ended). Every `wandb.log_every` global steps the `tracker`
    gets the iteration's loss and learning rate (and gradient norm with `wandb.grad_norm`)."""
    every = cfg.wandb.log_every if tracker is not None and tracker.run is not None else 0
    seed_all(cfg.seed * 100_003 + epoch * 1_009 + ctx.rank)  # each epoch's randomness, resume or not
    t.train_loader.set_epoch(epoch)
    t.net.train()
    cuda = ctx.device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(ctx.device)
    loss_sum, seen, t0 = torch.zeros((), device=ctx.device), 0, time.perf_counter()
    with tqdm(total=t.iters, desc=label, disable=not ctx.main, unit="it", dynamic_ncols=True) as bar:
        for i, (x, y) in enumerate(t.train_loader):
            check()  # a signal held since the last batch
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
            if point and ctx.main:
                values = {"train/loss": loss.item(), "train/lr": lr}
                if cfg.wandb.grad_norm and norm is not None:
                    values["train/grad_norm"] = norm.item()
                tracker.log(values, step=step)
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
                    rate = seen * ctx.world / elapsed
                    this_left = elapsed / (i + 1) * (t.iters - i - 1)
                    run_left = this_left + later_epochs * (epoch_s or elapsed / (i + 1) * t.iters)
                    bar.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{rate:.1f}" if rate < 100 else f"{rate:.0f}",
                                    run_left=_clock(run_left), refresh=False)
            bar.update()
        if cuda:
            torch.cuda.synchronize(ctx.device)
        train_time = time.perf_counter() - t0
    loss_total, seen_total = ctx.sum([loss_sum.item(), seen])
    if not all(torch.isfinite(p).all() for p in t.model.parameters()):
        raise NonFiniteLoss(f"the weights became NaN or infinite in epoch {epoch + 1}")
    return {"epoch": epoch + 1, "train_loss": loss_total / (t.iters * ctx.world), "lr": t.optimizer.param_groups[0]["lr"],
            "images_per_s": seen_total / train_time}, step


def train_epoch(cfg: RunConfig, ctx: Context, t: Trainer, epoch: int, step: int, label: str,
                last: bool = False, later_epochs: int = 0, epoch_s: float | None = None,
                tracker: Tracker | None = None) -> tuple[dict, int, torch.Tensor | None]:
    """One epoch of training and its evaluation: (the history row, the global step after it, and after the `last`
    epoch each validation image's predicted and true class)."""
    t0 = time.perf_counter()
    trained, step = train_steps(cfg, ctx, t, epoch, step, label, later_epochs, epoch_s, tracker)
    ev = evaluate(t.eval_net, t.val_loader, ctx, t, cfg.budget.max_eval_iters, predictions=last)
    row = {"epoch": trained["epoch"], "train_loss": trained["train_loss"], "val_top1": ev.top1, "val_top5": ev.top5,
           "val_loss": ev.loss, "val_images": ev.images, "lr": trained["lr"], "images_per_s": trained["images_per_s"],
           "eval_images_per_s": ev.images_per_s, "epoch_time_s": time.perf_counter() - t0}
    if t.ema is not None:
        ema = evaluate(t.ema.module, t.val_loader, ctx, t, cfg.budget.max_eval_iters)
        row["val_top1_ema"], row["val_top5_ema"] = ema.top1, ema.top5
    if ctx.device.type == "cuda":
        row["gpu_mem_gb"] = torch.cuda.max_memory_allocated(ctx.device) / 2**30
    return row, step, ev.predictions


def completed_without_checkpoint(cfg: RunConfig, run_dir: Path) -> dict | None:
    """A completed record whose run kept no checkpoint (committed results copied back into a sweep folder): the
    record, if its config.yaml is this config; None otherwise (then the run trains as usual)."""
    record = read_json(run_dir / "metrics.json")
    if not record or record.get("status") != "completed" or not (run_dir / "config.yaml").is_file():
        return None
    try:
        saved = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"))
        check_same_config(saved, plain(cfg), run_dir)
    except Exception:  # another config, or an unreadable one: not this run's record
        return None
    return record


def start_record(cfg: RunConfig, run_dir: Path, state: dict | None, epochs: int, variant: str) -> dict:
    """The run's record, derived from its last complete checkpoint whenever there is one: a metrics.json that is
    missing, unreadable or behind the checkpoint is rebuilt from it."""
    if state is not None:
        check_same_config(state["config"], plain(cfg), run_dir)
        record = record_from_checkpoint(state, epochs)
    else:
        record = {"status": "running", "reason": None, "signal": None, "history": [],
                  "wandb_id": (read_json(run_dir / "metrics.json") or {}).get("wandb_id")}
        summarize(record)
    params, gmacs = describe(cfg.model, cfg.data.resolution)
    identity = {"step": cfg.step.name, "label": cfg.step.label, "seed": cfg.seed, "variant": variant,
                "regime": cfg.regime.name, "undo": cfg.undo, "data": cfg.data.name, "budget": cfg.budget.name, "epochs": epochs, "run_dir": str(run_dir),
                "params": params, "gmacs": gmacs, "resolution": cfg.data.resolution}
    return dict.fromkeys(identity) | record | identity  # who the run is first, then how it went


def ended(record: dict, e: BaseException, ckpt: Path) -> str:
    """Record how the run ended; returns the one line to tell the user."""
    kept = f"the last good checkpoint ({ckpt}, epoch {record['epochs_done']}) was kept" if record["epochs_done"] \
        else "no checkpoint was written yet"
    if isinstance(e, Interrupted):
        record.update(status="interrupted", signal=e.signal_name, reason=f"interrupted by {e.signal_name}")
        return f"interrupted by {e.signal_name}; {kept}. Run the same command again to resume."
    if isinstance(e, SystemExit):  # a launcher's own signal handler (submitit's requeue on SLURM) ended the run
        record.update(status="interrupted", reason=f"stopped by SystemExit({e.code}), e.g. a requeue")
        return f"stopped by SystemExit({e.code}); {kept}. The same command (or the requeued job) resumes it."
    record.update(status="failed", reason=f"{type(e).__name__}: {e}")
    if isinstance(e, NonFiniteLoss):
        return f"{e}; {kept}. Lower train.base_lr or set train.grad_clip."
    if isinstance(e, WriteFailed):
        return f"{e}. {kept[0].upper()}{kept[1:]}; free space and run the same command again to resume."
    return f"{type(e).__name__}: {e}"


def can_start(cfg: RunConfig) -> None:
    """What a single run checks before its directory is made: the device, and the data with the batch size
    (ValueError, one line; nothing written)."""
    try:
        check_device(cfg.system)
        images = check_data(cfg)
    except RoadmapError as e:
        raise ValueError(str(e)) from None
    world = int(os.environ.get("WORLD_SIZE", 1))
    if images is not None and cfg.train.batch_size > images // world:
        raise ValueError(f"train.batch_size={cfg.train.batch_size} is not allowed: larger than the {images // world} "
                         f"training images each of {world} process(es) gets from {cfg.data.name}; lower it")


def train(cfg: RunConfig, run_dir: Path, group: str | None = None, overrides: Sequence[str] = (),
          jobs_side_by_side: int = 1) -> dict:
    """Train `cfg` in `run_dir`, resuming from its checkpoint. Returns the run record (metrics.json).
    `jobs_side_by_side`: how many runs share this machine's cores (system.threads=0 divides them).

    `overrides`, the command line's, are written to overrides.yaml; those that change what the run computes
    name its variant (naming.py)."""
    variant = variant_name(overrides)
    ctx = setup(cfg.system, jobs_side_by_side)
    run_dir.mkdir(parents=True, exist_ok=True)
    record_path, ckpt_path = run_dir / "metrics.json", run_dir / "checkpoint.pt"
    epochs = cfg.schedule_epochs()[0]
    tracker, record = None, {}
    try:
        with RunLock(run_dir, enabled=ctx.main), interruptible():
            if ctx.main:
                remove_stale_temporaries(run_dir)
            state = load_checkpoint(ckpt_path) if ckpt_path.exists() else None  # a corrupt one is left as it is
            kept = completed_without_checkpoint(cfg, run_dir) if state is None else None
            if kept is not None:  # e.g. restored from docs/results/ on another machine: nothing to train
                log.info("%s already completed (%s, config.yaml the same; no checkpoint kept): nothing to do",
                         run_dir, record_path.name)
                return kept
            record = start_record(cfg, run_dir, state, epochs, variant)  # another config: refused, nothing touched
            if record["status"] == "completed":
                if ctx.main and read_json(record_path) != record:
                    write_json(record, record_path)
                    log.info("%s disagreed with %s; rebuilt from the checkpoint", record_path, ckpt_path)
                log.info("%s already completed (%d epochs): nothing to do", run_dir, epochs)
                return record
            if state is not None:
                log.info("resuming %s from its checkpoint after epoch %d of %d", run_dir, state["epoch"], epochs)
            record.update(hardware=hardware(ctx.device, ctx.world), git_commit=git_commit())
            try:
                if ctx.main:
                    write_json(record, record_path)
                    write_config(cfg, run_dir / "config.yaml", overrides)
                t = build_trainer(cfg, ctx, state)
                record["pipeline"] = t.pipeline  # data.pipeline=auto resolved: workers or device
                if t.pipeline_probe is not None:
                    record["pipeline_probe"] = t.pipeline_probe
                    log.info("data.pipeline=auto chose %s (images/s per core, measured: %s)", t.pipeline,
                             t.pipeline_probe)
                if ctx.main:
                    name, keys, tags = run_identity(cfg, variant, record, overrides, run_dir)
                    tracker = Tracker(cfg.wandb, run_dir, name, group, plain(cfg) | keys, record.get("wandb_id"),
                                      tags=tags)
                    record.update(wandb_id=tracker.id, wandb_group=group)
                    write_json(record, record_path)
                step = state["global_step"] if state is not None else 0
                who = f"{cfg.step.name}{f' without {cfg.undo}' if cfg.undo else ''} seed {cfg.seed}"
                for epoch in range(len(record["history"]), epochs):
                    with deferred():
                        done = record["history"]
                        row, step, predictions = train_epoch(
                            cfg, ctx, t, epoch, step, f"{who} epoch {epoch + 1}/{epochs}", last=epoch + 1 == epochs,
                            later_epochs=epochs - epoch - 1,
                            epoch_s=sum(h["epoch_time_s"] for h in done) / len(done) if done else None,
                            tracker=tracker)
                    if not ctx.main:
                        continue
                    if predictions is not None:  # before the checkpoint that completes the run
                        save_predictions(predictions, run_dir / PREDICTIONS)
                        record["predictions"] = PREDICTIONS
                    after = summarize(dict(record, history=record["history"] + [row]))
                    save_checkpoint({"model": t.model.state_dict(), "optimizer": t.optimizer.state_dict(),
                                     "ema": t.ema.state_dict() if t.ema is not None else None, "epoch": epoch + 1,
                                     "global_step": step, "config": plain(cfg), "record": after}, ckpt_path)
                    record = after
                    write_json(record, record_path)
                    tracker.log(row, step=step)
                    if cfg.wandb.log_checkpoints:
                        tracker.log_checkpoint(ckpt_path, epoch + 1, {"val_top1": row["val_top1"]})
                    log.info("epoch %d/%d: loss %.4f, top-1 %.2f, top-5 %.2f, %.0f images/s", epoch + 1, epochs,
                             row["train_loss"], row["val_top1"], row["val_top5"], row["images_per_s"])
                record["status"] = "completed"
                if ctx.main:
                    write_json(record, record_path)
                    log.info("completed %s: final top-1 %.2f, best %.2f, %s of training and evaluation; record %s",
                             who, record["final_top1"], record["best_top1"], _clock(record["wall_time_s"]),
                             record_path)
            except BaseException as e:
                if isinstance(e, KeyboardInterrupt):  # SIGINT under a handler other than ours
                    e = Interrupted("SIGINT", 2)
                message = ended(record, e, ckpt_path)
                if ctx.main:
                    try:
                        write_json(record, record_path)
                    except WriteFailed as again:
                        message += f" The record could not be updated either ({again})."
                if isinstance(e, (RoadmapError, Interrupted)):
                    e.args = (message,)  # the one line run.py prints
                    raise e from None
                raise
    finally:
        if tracker is not None:
            tracker.summary({k: record.get(k) for k in ("best_top1", "final_top1", "params", "gmacs",
                                                        "images_per_s", "status")})
            tracker.finish(0 if record.get("status") == "completed" else 1)
        teardown()
    return record
