"""A run's record, metrics.json: who the run is, each epoch's numbers, and how the run ended.

`RunRecord` is made for a new run (`new`), from a checkpoint (`from_checkpoint`), from a
metrics.json (`read`, `load`) or from a W&B run (`from_wandb`), and written by `write` alone. The
summary fields are derived from the history, the one source of every recorded number. Keys that this
version does not know are kept and written back as they were; records written before a field existed
read with its default."""
from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .files import atomic_write, read_json

# the last epoch's predicted and true class of every validation image
PREDICTIONS = "predictions.npz"
SUMMARY = ("best_top1", "final_top1", "epochs_done", "images_per_s", "wall_time_s")
SUMMARY_COLUMNS = ["epoch", "train_loss", "val_loss", "val_top1", "val_top5", "lr", "images_per_s", "eval_images_per_s",
                   "epoch_time_s"]  # summary.csv
# how a run ended, as written; readers add "killed" (running, but no process holds the run) and
# "unreadable"
STATUSES = ("running", "completed", "failed", "interrupted")
ENDED = ("completed", "failed", "interrupted")


def clock(seconds: float | None) -> str:
    """h:mm:ss ("unknown" for None)."""
    if seconds is None:
        return "unknown"
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


def _split(cls, data: dict) -> tuple[dict, dict]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}, {
        k: v for k, v in data.items() if k not in names
    }


@dataclass(kw_only=True)
class EpochRow:
    """One epoch: training, then evaluation on the whole validation set (or budget.max_eval_iters
    batches)."""
    epoch: int
    train_loss: float
    val_top1: float
    val_top5: float
    # plain cross-entropy per image (records from before it have none)
    val_loss: Optional[float] = None
    val_images: Optional[int] = None
    lr: float
    images_per_s: float                 # training images per second, all processes together
    eval_images_per_s: Optional[float] = None
    epoch_time_s: Optional[float] = None
    val_top1_ema: Optional[float] = None
    val_top5_ema: Optional[float] = None
    gpu_mem_gb: Optional[float] = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> "EpochRow":
        known, extra = _split(cls, data)
        return cls(**known, extra=extra)

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "extra" and v is not None}
        return out | self.extra


@dataclass(kw_only=True)
class RunRecord:
    # who the run is
    step: Optional[str] = None
    label: Optional[str] = None
    seed: Optional[int] = None
    # the overrides that change what the run computes ("" for the step as it is)
    variant: str = ""
    regime: str = "r50"        # records from before regimes existed are Table 10's
    undo: Optional[str] = None  # the leave-one-out study's undone step
    data: Optional[str] = None
    budget: Optional[str] = None
    epochs: Optional[int] = None
    run_dir: Optional[str] = None
    params: Optional[int] = None
    gmacs: Optional[float] = None
    resolution: Optional[int] = None
    # the learning rate after scaling to the global batch (train.lr_scaling)
    effective_lr: Optional[float] = None
    # what was evaluated: "test", or "val_split" (data.val_split training images)
    eval_set: Optional[str] = None
    # how it went
    status: str = "running"
    reason: Optional[str] = None
    signal: Optional[str] = None
    history: list = field(default_factory=list)  # EpochRow per epoch done
    wandb_id: Optional[str] = None
    best_top1: Optional[float] = None
    final_top1: Optional[float] = None
    epochs_done: int = 0
    images_per_s: Optional[float] = None
    wall_time_s: Optional[float] = None
    # of the run's last part (a resumed run's parts can differ) ...
    hardware: Optional[dict] = None
    git_commit: Optional[str] = None
    # ... and each earlier part whose code or machine was another: {"until_epoch", "git_commit",
    # "hardware"}
    earlier_parts: list = field(default_factory=list)
    # each earlier part that ended before the run did, as the metrics.json it left said: {"epochs_done", "status",
    # "signal", "reason"} (status killed where it still said running: its process died without a word)
    interruptions: list = field(default_factory=list)
    pipeline: Optional[str] = None        # data.pipeline as resolved: workers or device
    # what data.pipeline=auto measured, images/s per core each way
    pipeline_probe: Optional[dict] = None
    wandb_group: Optional[str] = None
    predictions: Optional[str] = None     # PREDICTIONS, once the last epoch has written it
    # not written: where a reader found it, and keys this version does not know
    path: Optional[str] = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def new(cls, **identity: Any) -> "RunRecord":
        """A run that starts now: its identity (step, seed, variant, ...), running, no epoch
        done."""
        return cls(**identity)

    @classmethod
    def from_dict(cls, data: dict, path: str | None = None) -> "RunRecord":
        known, extra = _split(cls, data)
        known.pop("path", None)
        record = cls(**known, extra=extra, path=path)
        record.history = [
            EpochRow.from_dict(r) if isinstance(r, dict) else r for r in record.history
        ]
        if record.regime is None:
            record.regime = "r50"
        return record

    def to_dict(self) -> dict:
        out = {
            f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("path", "extra")
        }
        out["history"] = [r.to_dict() for r in self.history]
        return out | self.extra

    @classmethod
    def from_checkpoint(cls, state_record: dict, epochs: int) -> "RunRecord":
        """The record as a checkpoint saved it, its status derived: completed only after every
        epoch."""
        record = cls.from_dict(state_record).summarize()
        record.status = "completed" if record.epochs_done == epochs else "running"
        record.reason = record.signal = None
        return record

    @classmethod
    def load(cls, path: Path) -> "RunRecord":
        """The record in `path` (a metrics.json); ValueError saying why when it cannot be read as
        one."""
        try:
            data = read_json(path)
        except (OSError, ValueError) as e:
            raise ValueError(f"metrics.json unreadable ({type(e).__name__})") from None
        if not isinstance(data, dict):
            raise ValueError(f"metrics.json holds a {type(data).__name__}, not a record")
        if not isinstance(data.get("history", []), list):
            raise ValueError(
                f"metrics.json field history={data['history']!r:.40} is not a list of epochs"
            )
        try:
            record = cls.from_dict(data, path=str(Path(path).parent))
        except (TypeError, AttributeError) as e:
            raise ValueError(
                f"metrics.json is not a run record ({type(e).__name__}: {e})"
            ) from None
        record.check_types()
        return record

    def check_types(self) -> None:
        """ValueError naming the first field whose value is not of its kind (a hand-edited record,
        say)."""
        number = lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))  # noqa: E731
        text = lambda v: v is None or isinstance(v, str)  # noqa: E731
        checks = [("seed", lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)), "a whole number"),
                  ("epochs_done", lambda v: isinstance(v, int) and not isinstance(v, bool), "a whole number"),
                  ("status", lambda v: isinstance(v, str), "a status such as completed"),
                  ("history", lambda v: isinstance(v, list), "a list of epochs")]
        checks += [
            (k, text, "text or null")
            for k in ("step", "label", "regime", "undo", "data", "budget", "variant")
        ]
        checks += [(k, number, "a number or null") for k in ("best_top1", "final_top1", "images_per_s",
                                                              "wall_time_s", "gmacs", "params", "effective_lr")]
        for name, ok, kind in checks:
            if not ok(getattr(self, name)):
                raise ValueError(f"metrics.json field {name}={getattr(self, name)!r} is not {kind}")
        for row in self.history:
            if not isinstance(row, EpochRow) or not all(
                number(getattr(row, k)) for k in ("val_top1", "train_loss")
            ):
                raise ValueError(
                    f"metrics.json has an epoch that is not a row of numbers ({row!r:.80})"
                )

    @classmethod
    def read(cls, path: Path) -> "RunRecord | None":
        """The record in `path`, or None when it is missing or damaged."""
        try:
            return cls.load(path)
        except ValueError:
            return None

    @classmethod
    def from_wandb(cls, run) -> "RunRecord":
        """A training run as the W&B API gives it (`wandb.Api().runs(...)`): its config and
        summary."""
        cfg, summary = run.config, run.summary
        status = summary.get("status") or ("completed" if run.state == "finished" else run.state)
        return cls(step=cfg["step"]["name"], label=cfg["step"]["label"], seed=cfg["seed"],
                   regime=cfg.get("regime", {}).get("name") or "r50", undo=cfg.get("undo"),
                   variant=cfg.get("variant") or "", data=cfg["data"]["name"], budget=cfg["budget"]["name"],
                   status=status, reason=None if status == "completed" else f"W&B state {run.state}", path=run.url,
                   **{k: summary.get(k) for k in ("final_top1", "best_top1", "params", "gmacs", "images_per_s")})

    def summarize(self) -> "RunRecord":
        """The summary fields from the history."""
        h = self.history
        self.epochs_done = len(h)
        self.best_top1 = max(r.val_top1 for r in h) if h else None
        self.final_top1 = h[-1].val_top1 if h else None
        self.images_per_s = sum(r.images_per_s for r in h) / len(h) if h else None
        self.wall_time_s = sum(r.epoch_time_s or 0.0 for r in h) if h else None
        return self

    def with_epoch(self, row: EpochRow) -> "RunRecord":
        """A copy with one more epoch done, its summary updated (the record the epoch's checkpoint
        carries)."""
        out = RunRecord.from_dict(self.to_dict(), path=self.path)
        out.history.append(row)
        return out.summarize()

    def check_completed(self) -> None:
        missing = [k for k in SUMMARY if getattr(self, k) is None]
        if self.status == "completed" and missing:
            raise AssertionError(f"a completed record must have {missing}; not written")

    def write(self, path: Path) -> None:
        """metrics.json, atomically (WriteFailed on a full disk); a completed record must have its
        summary."""
        self.check_completed()
        atomic_write(Path(path), lambda f: f.write(json.dumps(self.to_dict(), indent=2).encode()))

    def write_summary(self, path: Path) -> None:
        """summary.csv beside metrics.json, one row per epoch (as timm's train.py writes it),
        atomically."""
        write_csv(
            path,
            SUMMARY_COLUMNS,
            ({k: "" if v is None else v for k, v in asdict(row).items()} for row in self.history),
        )


def save_predictions(pred: np.ndarray, target: np.ndarray, path: Path) -> None:
    """Each validation image's predicted and true class, as predictions.npz (`pred`, `target`;
    uint16, compressed: a few KB for 10,000 images)."""
    atomic_write(path, lambda f: np.savez_compressed(f, pred=pred.astype(np.uint16), target=target.astype(np.uint16)))


def load_predictions(path: Path):
    """(pred, target) arrays of a predictions.npz, or None when it is missing or unreadable."""
    try:
        return read_predictions(path)
    except ValueError:
        return None


def read_predictions(path: Path):
    """(pred, target) arrays of a predictions.npz; ValueError saying why when it is missing, damaged
    (truncated, empty, not a zip) or not two arrays of one length."""
    try:
        with np.load(path) as d:
            pred, target = d["pred"].astype(np.int64), d["target"].astype(np.int64)
    # OSError, BadZipFile, EOFError, KeyError, ValueError: all mean damaged here
    except Exception as e:
        detail = f": {str(e).splitlines()[0][:80]}" if str(e) else ""
        raise ValueError(f"{path} is unreadable ({type(e).__name__}{detail})") from None
    if pred.ndim != 1 or pred.shape != target.shape:
        raise ValueError(
            f"{path} does not hold one prediction per target ({pred.shape} and {target.shape})"
        )
    return pred, target


TABLE_COLUMNS = ["step", "variant", "undo", "seeds", "completed", "mean_final_top1", "statuses"]


def runs_table(records: list[RunRecord]) -> list[dict]:
    """A sweep's table: one row per step, undone step and variant, with its seeds, how many
    completed, their mean final top-1 and every status counted (a sweep's end and scripts/status.py
    print it)."""
    groups: dict[tuple, list[RunRecord]] = {}
    for r in records:
        groups.setdefault((str(r.step), r.variant or "", r.undo or ""), []).append(r)
    rows = []
    for (step, variant, undo), runs in sorted(groups.items()):
        done = [r.final_top1 for r in runs if r.status == "completed" and r.final_top1 is not None]
        counts = Counter(r.status for r in runs)
        rows.append({"step": step, "variant": variant, "undo": undo,
                     "seeds": " ".join(str(s) for s in sorted({r.seed for r in runs if r.seed is not None})),
                     "completed": len(done), "mean_final_top1": round(sum(done) / len(done), 2) if done else "",
                     "statuses": ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))})
    return rows


def print_table(rows: list[dict], out) -> None:
    names = [
        r["step"]
        + (f" without {r['undo']}" if r["undo"] else "")
        + (f" {r['variant']}" if r["variant"] else "")
        for r in rows
    ]
    width = max([len(n) for n in names] + [4])
    print(f"{'step':{width}}  seeds    done  mean top-1  statuses", file=out)
    for name, r in zip(names, rows):
        print(f"{name:{width}}  {r['seeds']:7}  {r['completed']:4}  {str(r['mean_final_top1']):>10}  {r['statuses']}",
              file=out)


def write_table(rows: list[dict], path: Path) -> None:
    write_csv(path, TABLE_COLUMNS, rows)


def write_csv(path: Path, columns: list[str], rows) -> None:
    """A CSV of `rows` (dicts; keys not in `columns` left out), written atomically."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    atomic_write(Path(path), lambda f: f.write(buf.getvalue().encode()))
