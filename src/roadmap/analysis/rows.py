"""The statistics of a chart's rows, shared by the roadmap and leave-one-out charts: each row's runs
over seeds (mean and its t interval), the change between two rows (paired by seed, or Welch's; and
the paired bootstrap over seeds and test images), and the table cells and CSV they are written
as."""
from __future__ import annotations

import csv
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..record import RunRecord, load_predictions
from .stats import change, paired_bootstrap, t_quantile


@dataclass
class Row:
    """One row of a chart and its tables: a step of the roadmap (roadmap.py), or the full model or a
    model with one step undone (leave_one_out.py). The CSVs write the columns their COLUMNS name, in
    that order."""
    label: str
    step: str = ""
    undo: str = ""               # leave-one-out: the undone step ("" for the full model)
    adopted: bool = True         # False: a side branch (kernel 5, 9, 11), drawn hollow
    n: int = 0                   # completed runs, over seeds
    # top-1 over them, its standard deviation, the mean's 95% t interval, min and max
    mean: float | None = None
    std: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    min: float | None = None
    max: float | None = None
    gmacs: float | None = None
    params: float | None = None
    images_per_s: float | None = None
    # the change from the row compared with (stats.change), its interval and method
    delta: float | None = None
    delta_low: float | None = None
    delta_high: float | None = None
    delta_method: str | None = None
    real: bool | None = None     # whether that interval excludes zero
    # the paired bootstrap over seeds and test images (stats.paired_bootstrap)
    boot_low: float | None = None
    boot_high: float | None = None
    boot_n: str | None = None
    boot_real: bool | None = None
    paper_top1: float | None = None
    paper_gflops: float | None = None
    paper_delta: float | None = None  # the paper's change from its previous adopted step
    # leave-one-out: the paper's gain when the undone step was adopted
    paper_gain: float | None = None
    failed: int = 0              # runs that did not complete
    by_seed: dict = field(default_factory=dict, repr=False)  # top-1 by seed, for pairing
    # (pred, target) by seed, for the bootstrap
    correct: dict = field(default_factory=dict, repr=False)


def mean_of(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def mean_interval(values: list[float], level: float = 0.95) -> tuple[float | None, float | None]:
    """The t interval of the mean of `values` (None, None for fewer than two)."""
    if len(values) < 2:
        return None, None
    half = t_quantile(level, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return statistics.fmean(values) - half, statistics.fmean(values) + half


def seed_stats(runs: list[RunRecord], metric: str) -> dict:  # Row's fields n to max, and by_seed
    """n, mean, standard deviation, the mean's 95% interval, min and max of `metric` over `runs`,
    and the values by seed for pairing (by run when a seed appears twice, from two places: then
    there is nothing to pair)."""
    values = [getattr(r, metric) for r in runs]
    by_seed = {r.seed: getattr(r, metric) for r in runs}
    if len(by_seed) < len(runs):
        by_seed = {f"{r.seed}#{i}": getattr(r, metric) for i, r in enumerate(runs)}
    low, high = mean_interval(values)
    return {"n": len(values), "mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else None, "ci_low": low, "ci_high": high,
            "min": min(values, default=None), "max": max(values, default=None), "by_seed": by_seed}


def correct_by_seed(runs: list[RunRecord]) -> dict:
    """{seed: (pred, target) arrays} from the runs' predictions.npz; runs without one are left out
    (W&B records, older runs), and so is a seed recorded twice."""
    out, seen = {}, set()
    for r in runs:
        seed = r.seed
        if seed in seen:
            out.pop(seed, None)
            continue
        seen.add(seed)
        loaded = (
            load_predictions(Path(r.path) / r.predictions) if r.path and r.predictions else None
        )
        if loaded is not None:
            out[seed] = loaded
    return out


def bootstrap_fields(before: dict, after: dict) -> dict:
    """The paired bootstrap over seeds and test images (stats.paired_bootstrap) for the seeds both
    steps have predictions of, on the same test images; empty fields when there are none."""
    seeds = sorted(set(before) & set(after), key=str)
    # the same images, in the same order
    seeds = [s for s in seeds if np.array_equal(before[s][1], after[s][1])]
    if not seeds:
        return {}
    diffs = np.stack([(after[s][0] == after[s][1]).astype(np.int8) - (before[s][0] == before[s][1]).astype(np.int8)
                      for s in seeds])
    b = paired_bootstrap(diffs)
    return {
        "boot_low": round(b.low, 4),
        "boot_high": round(b.high, 4),
        "boot_n": f"{b.seeds} seeds x {b.images}",
        "boot_real": b.real,
    }


def change_fields(before: dict, after: dict) -> dict:
    """The change from one row's runs to another's (stats.change, paired by seed where it can), as
    row fields."""
    c = change(before, after)
    if c is None:
        return {}
    return {"delta": c.delta, "delta_low": c.low, "delta_high": c.high, "delta_method": f"{c.method}, n={c.n}",
            "real": c.real}


def write_csv(rows: list, path: Path, columns: list[str]) -> None:
    """`rows` (Row, or any dataclass with these fields) as CSV, None as an empty cell."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(
            {k: ("" if getattr(r, k) is None else getattr(r, k)) for k in columns} for r in rows
        )


def fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def interval_cells(r: Row) -> tuple[str, str, str]:
    """A row's markdown cells: the mean's 95% interval, the change's interval (and method), and
    whether it is real."""
    ci = f"[{r.ci_low:.2f}, {r.ci_high:.2f}]" if r.ci_low is not None else ""
    dci = f"[{r.delta_low:+.2f}, {r.delta_high:+.2f}] ({r.delta_method})" \
        if r.delta_low is not None else (r.delta_method or "")
    return ci, dci, {True: "**yes**", False: "no", None: ""}[r.real]




def variant_title(variant: str) -> str:
    return f", variant {variant}" if variant else ""


def md_tail(failed: list[str], notes: list[str]) -> list[str]:
    """The end of a chart's markdown table: the runs not charted, and what the chart left out."""
    lines = ["", f"Failed runs ({len(failed)}):", *failed] if failed else []
    if notes:
        lines += ["", "Notes (runs left out, copies counted once, damaged files):"] + [
            f"- {n}" for n in notes
        ]
    return lines
