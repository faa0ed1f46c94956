"""A run's life in its directory: the lock, resuming from the checkpoint, the record (metrics.json)
written as the run goes, the checkpoint after every epoch, and how the run ended, in its record and
in one line for the user. Resumable and exact: every epoch ends in an atomic checkpoint that carries
the run's record, and each epoch's randomness depends only on (seed, epoch), so a resumed run
repeats the numbers of one never interrupted."""
from __future__ import annotations

import logging
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from omegaconf import OmegaConf

from ..config.variants import variant_name
from ..data.loaders import check_batch
from ..data.sources import check_data
from ..errors import Interrupted, NonFiniteLoss, RoadmapError, WriteFailed
from ..model import describe
from ..record import PREDICTIONS, EpochRow, RunRecord, clock, save_predictions
from ..schedule import world_size
from ..schema import RunConfig
from .checkpoint import (
    check_same_config,
    config_dict,
    git_commit,
    hardware,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
    write_config,
)
from .distributed import Context, check_device, setup, teardown
from .lock import RunLock
from .loop import train_epoch
from .meter import Meter
from .signals import deferred, hang_on_the_parent, held, interruptible
from .tracking import Tracker, run_identity
from .trainer import Trainer, build_trainer

log = logging.getLogger(__name__)


def can_start(cfg: RunConfig) -> None:
    """What a single run checks before its directory is made: the device, and the data with the
    batch size (ValueError, one line; nothing written)."""
    try:
        check_device(cfg.system)
        images = check_data(cfg)
        if images is not None:
            check_batch(cfg.train.batch_size, images, world_size(), cfg.data.name)
    except RoadmapError as e:
        raise ValueError(str(e)) from None


def completed_without_checkpoint(cfg: RunConfig, run_dir: Path) -> RunRecord | None:
    """A completed record whose run kept no checkpoint (committed results copied back into a sweep
    folder): the record, if its config.yaml is this config; None otherwise (then the run trains as
    usual)."""
    record = RunRecord.read(run_dir / "metrics.json")
    if record is None or record.status != "completed" or not (run_dir / "config.yaml").is_file():
        return None
    try:
        saved = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"))
        check_same_config(saved, config_dict(cfg), run_dir)
    except Exception:  # another config, or an unreadable one: not this run's record
        return None
    return record


KILLED = "its process ended without recording how (SIGKILL, out of memory, a power cut)"


def start_record(
    cfg: RunConfig, run_dir: Path, state: dict | None, epochs: int, variant: str
) -> RunRecord:
    """The run's record, derived from its last complete checkpoint whenever there is one: a
    metrics.json that is missing, unreadable or behind the checkpoint is rebuilt from it. Another
    config's checkpoint: ConfigMismatch."""
    before = RunRecord.read(run_dir / "metrics.json")
    if state is not None:
        check_same_config(state["config"], config_dict(cfg), run_dir)
        record = RunRecord.from_checkpoint(state["record"], epochs)
    else:
        # a run that never finished an epoch: its W&B run
        record = RunRecord.new(wandb_id=before.wandb_id if before else None)
    if before is not None and before.status != "completed":  # how the last part ended stays in the record
        record.interruptions = [*before.interruptions, {
            "epochs_done": record.epochs_done, "status": "killed" if before.status == "running" else before.status,
            "signal": before.signal, "reason": before.reason or (KILLED if before.status == "running" else None)}]
    params, gmacs = describe(cfg.model, cfg.data.resolution)
    record.step, record.label, record.seed, record.variant = cfg.step.name, cfg.step.label, cfg.seed, variant
    record.regime, record.undo, record.data, record.budget = cfg.regime.name, cfg.undo, cfg.data.name, cfg.budget.name
    record.epochs, record.run_dir, record.resolution = epochs, str(run_dir), cfg.data.resolution
    record.params, record.gmacs = params, gmacs
    return record


def record_ending(record: RunRecord, e: BaseException, ckpt: Path) -> str:
    """Record how the run ended; returns the one line to tell the user."""
    kept = (
        f"the last good checkpoint ({ckpt}, epoch {record.epochs_done}) was kept"
        if record.epochs_done
        else "no checkpoint was written yet"
    )
    if isinstance(e, Interrupted):
        how = f"interrupted: {e.cause}" if e.cause else f"interrupted by {e.signal_name}"
        record.status, record.signal, record.reason = "interrupted", None if e.cause else e.signal_name, how
        return f"{how}; {kept}. Run the same command again to resume."
    # a launcher's own signal handler (submitit's requeue on SLURM) ended the run
    if isinstance(e, SystemExit):
        record.status, record.reason = (
            "interrupted",
            f"stopped by SystemExit({e.code}), e.g. a requeue",
        )
        return f"stopped by SystemExit({e.code}); {kept}. The same command (or the requeued job) resumes it."
    record.status, record.reason = "failed", f"{type(e).__name__}: {e}"
    if isinstance(e, NonFiniteLoss):
        return f"{e}; {kept}. Lower train.base_lr or set train.grad_clip."
    if isinstance(e, WriteFailed):
        return f"{e}. {kept[0].upper()}{kept[1:]}; free space and run the same command again to resume."
    # ours say what to do in their own words (the record keeps the type); others are named by their type
    return str(e) if isinstance(e, RoadmapError) else f"{type(e).__name__}: {e}"


@dataclass
class Run:
    """The run's record as it stands (the last epoch saved), its W&B run once started, and whether
    training began (from then on, however the run ends, its record says how)."""
    record: RunRecord
    tracker: Tracker | None = None
    started: bool = False


def train(cfg: RunConfig, run_dir: Path, group: str | None = None, overrides: Sequence[str] = (),
          jobs_side_by_side: int = 1) -> RunRecord:
    """Train `cfg` in `run_dir`, resuming from its checkpoint; returns the run's record
    (metrics.json). `jobs_side_by_side`: how many runs share this machine's cores (system.threads=0
    divides them). `overrides`, the command line's, are written to overrides.yaml; those that change
    what the run computes name its variant."""
    ctx = setup(cfg.system, jobs_side_by_side)
    run_dir.mkdir(parents=True, exist_ok=True)
    run = Run(RunRecord.new())
    with finishing(run), RunLock(run_dir, enabled=ctx.main), interruptible():
        if jobs_side_by_side > 1:  # a job in one of joblib's worker processes: it stops if the sweep's dies
            hang_on_the_parent()
        try:
            state, done = resume_or_done(cfg, ctx, run_dir, run, overrides)
            if done is not None:
                return done
            train_epochs(cfg, ctx, run_dir, run, state, overrides, group)
        # recorded with the lock held and signals still ours (a second one waits)
        except BaseException as e:
            # refused before training began (another run's directory, a lock): nothing written
            if not run.started:
                raise
            raise record_end(e, ctx, run, run_dir) from None
    record = run.record
    if ctx.main:  # the run's closing line, after W&B's one line
        log.info("completed %s seed %s: final top-1 %.2f, best %.2f, %s of training and evaluation; record %s",
                 record.step + (f" without {record.undo}" if record.undo else ""), record.seed, record.final_top1,
                 record.best_top1, clock(record.wall_time_s), run_dir / "metrics.json")
    return record


def resume_or_done(cfg: RunConfig, ctx: Context, run_dir: Path, run: Run,
                   overrides: Sequence[str]) -> tuple[dict | None, RunRecord | None]:
    """(the checkpoint to resume from or None, None), or (None, the record) of a run already
    completed."""
    record_path, ckpt_path = run_dir / "metrics.json", run_dir / "checkpoint.pt"
    if ctx.main:
        remove_stale_temporaries(run_dir)
    # a corrupt one is left as it is
    state = load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    restored = completed_without_checkpoint(cfg, run_dir) if state is None else None
    # e.g. restored from docs/results/ on another machine: nothing to train
    if restored is not None:
        log.info(
            "%s already completed (%s, config.yaml the same; no checkpoint kept): nothing to do",
            run_dir,
            record_path.name,
        )
        return None, restored
    epochs = cfg.schedule.epochs
    # or refused
    record = run.record = start_record(cfg, run_dir, state, epochs, variant_name(overrides))
    if record.status == "completed":
        written = RunRecord.read(record_path)
        if ctx.main and (written is None or written.to_dict() != record.to_dict()):
            record.write(record_path)
            log.info("%s disagreed with %s; rebuilt from the checkpoint", record_path, ckpt_path)
        log.info("%s already completed (%d epochs): nothing to do", run_dir, epochs)
        return None, record
    if state is not None:
        log.info(
            "resuming %s from its checkpoint after epoch %d of %d", run_dir, state["epoch"], epochs
        )
    describe_start(cfg, ctx, record)
    return state, None


def describe_start(cfg: RunConfig, ctx: Context, record: RunRecord) -> None:
    """What the record says of this part of the run: the machine, the code, the learning rate, the
    evaluated set."""
    machine, commit = hardware(ctx.device, ctx.world), git_commit()
    if record.epochs_done and (record.hardware, record.git_commit) != (machine, commit):
        # epochs trained by other code, or on another machine, stay theirs in the record
        record.earlier_parts.append({"until_epoch": record.epochs_done, "git_commit": record.git_commit,
                                     "hardware": record.hardware})
    record.hardware, record.git_commit = machine, commit
    batch, recipe = cfg.train.batch_size * ctx.world, cfg.train
    record.effective_lr = recipe.lr_for(batch)
    record.eval_set = "val_split" if cfg.data.val_split else "test"
    log.info("learning rate %.4g: train.base_lr=%g per %d images, %s scaling to the global batch of %d; "
             "evaluated on %s", record.effective_lr, recipe.base_lr, recipe.ref_batch, recipe.lr_scaling.value, batch,
             f"{cfg.data.val_split} held-out training images (data.val_split)" if cfg.data.val_split
             else "the test set")


def train_epochs(cfg: RunConfig, ctx: Context, run_dir: Path, run: Run, state: dict | None,
                 overrides: Sequence[str], group: str | None) -> None:
    """Build the trainer and train the epochs not done yet, a checkpoint and the record after
    each."""
    run.started = True
    # before the data and the pipeline: a run that fails there is in the dashboard, failed, with why
    if ctx.main:
        run.record.write(run_dir / "metrics.json")
        write_config(cfg, run_dir / "config.yaml", overrides)
        run.tracker = start_tracker(cfg, run_dir, run.record, overrides, group)
    trainer = build_trainer(cfg, ctx, state)
    with closing(trainer):  # its loader workers end with the run, whichever way it ends
        note_pipeline(trainer, ctx, run.record, run_dir)
        name = f"{cfg.step.name}{f' without {cfg.undo}' if cfg.undo else ''} seed {cfg.seed}"
        meter = Meter(cfg, ctx, trainer.iters, name, run.record.epochs, run.tracker,
                      [row.epoch_time_s for row in run.record.history])
        step = state["global_step"] if state is not None else 0
        for epoch in range(run.record.epochs_done, run.record.epochs):
            with deferred():
                row, step, predictions = train_epoch(cfg, ctx, trainer, meter, epoch, step,
                                                     last=epoch + 1 == run.record.epochs)
            if ctx.main:
                save_epoch(cfg, trainer, run, run_dir, row, step, predictions)
        run.record.status = "completed"
        if ctx.main:
            run.record.write(run_dir / "metrics.json")
            # the record says completed first: a rerun finds it so either way
            if not cfg.system.keep_checkpoint:
                (run_dir / "checkpoint.pt").unlink(missing_ok=True)


def start_tracker(cfg: RunConfig, run_dir: Path, record: RunRecord, overrides: Sequence[str],
                  group: str | None) -> Tracker:
    name, keys, tags = run_identity(cfg, record.variant, record, overrides, run_dir)
    tracker = Tracker(
        cfg.wandb, run_dir, name, group, config_dict(cfg) | keys, record.wandb_id, tags=tags
    )
    record.wandb_id, record.wandb_group = tracker.id, group
    record.write(run_dir / "metrics.json")
    return tracker


def note_pipeline(trainer: Trainer, ctx: Context, record: RunRecord, run_dir: Path) -> None:
    record.pipeline = trainer.pipeline
    # what data.pipeline=auto chose by (data/pipelines.py: kept_choice)
    if trainer.pipeline_probe is not None:
        record.pipeline_probe = trainer.pipeline_probe
    if ctx.main:
        record.write(run_dir / "metrics.json")  # the trainer is set up: its pipeline in the record


def save_epoch(cfg: RunConfig, trainer: Trainer, run: Run, run_dir: Path, row: EpochRow, step: int,
               predictions) -> None:
    """The epoch's checkpoint, then its record (a signal waits until both are written), then W&B and
    the log."""
    ckpt_path, record = run_dir / "checkpoint.pt", run.record
    with held():
        if predictions is not None:  # before the checkpoint that completes the run
            save_predictions(
                predictions[:, 0].numpy(), predictions[:, 1].numpy(), run_dir / PREDICTIONS
            )
            record.predictions = PREDICTIONS
        after = record.with_epoch(row)
        save_checkpoint({"model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict(),
                         "ema": trainer.ema.state_dict() if trainer.ema is not None else None, "epoch": row.epoch,
                         "global_step": step, "config": config_dict(cfg), "record": after.to_dict()}, ckpt_path)
        run.record = after
        after.write(run_dir / "metrics.json")
        after.write_summary(run_dir / "summary.csv")
    run.tracker.log(row.to_dict(), step=step)
    if cfg.wandb.log_checkpoints:
        run.tracker.log_checkpoint(ckpt_path, row.epoch, {"val_top1": row.val_top1})
    log.info("epoch %d/%d: loss %.4f, top-1 %.2f, top-5 %.2f, %.0f images/s", row.epoch, after.epochs,
             row.train_loss, row.val_top1, row.val_top5, row.images_per_s)


def record_end(e: BaseException, ctx: Context, run: Run, run_dir: Path) -> BaseException:
    """Record how the run ended; returns what to raise: ours with the one line for the user, others
    as they are."""
    if isinstance(e, KeyboardInterrupt):  # SIGINT under a handler other than ours
        e = Interrupted("SIGINT", 2)
    message = record_ending(run.record, e, run_dir / "checkpoint.pt")
    if ctx.main:
        try:
            run.record.write(run_dir / "metrics.json")
        except WriteFailed as again:
            message += f" The record could not be updated either ({again})."
    if isinstance(e, (RoadmapError, Interrupted)):
        e.args = (message,)  # the one line run.py prints
    return e


@contextmanager
def finishing(run: Run):
    """On the way out, however the run ended: its W&B run's summary and exit code, and the process
    group's end."""
    try:
        yield
    finally:
        if run.tracker is not None:
            run.tracker.summary({k: getattr(run.record, k) for k in ("best_top1", "final_top1", "params", "gmacs",
                                                                      "images_per_s", "status", "reason")})
            run.tracker.finish(0 if run.record.status == "completed" else 1)
        teardown()
