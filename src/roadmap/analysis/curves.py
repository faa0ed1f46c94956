"""Learning curves beside the roadmap's chart: each step's top-1 after every epoch, the mean over
its seeds (the completed runs of the chart's variant), as curves.png/.svg and curves.csv."""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from ..record import RunRecord
from .rows import write_csv

COLUMNS = ["step", "label", "epoch", "n", "mean", "min", "max"]


@dataclass
class CurvePoint:
    """A step's top-1 after one epoch over its completed runs: how many, the mean, min and max."""
    step: str
    label: str
    epoch: int
    n: int
    mean: float
    min: float
    max: float


def curve_rows(records: list[RunRecord], order: list[tuple[str, str]]) -> list[CurvePoint]:
    """One row per (step, epoch) of the completed runs: top-1 after that epoch, mean, min and max
    over the seeds. `order`: (step, label) in the chart's order."""
    rows = []
    for step, label in order:
        runs = [r for r in records if r.step == step and r.status == "completed" and r.history]
        for epoch in range(1, max((len(r.history) for r in runs), default=0) + 1):
            values = [r.history[epoch - 1].val_top1 for r in runs if len(r.history) >= epoch]
            rows.append(CurvePoint(step, label, epoch, len(values), statistics.fmean(values), min(values),
                                   max(values)))
    return rows


def draw_curves(rows: list[CurvePoint], out: Path, title: str, data: str) -> None:
    """curves.png/.svg: one line per step (mean over seeds), coloured in roadmap order, the legend
    beside the axes; the seeds' range is in curves.csv."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    steps = list(dict.fromkeys((r.step, r.label) for r in rows))
    fig, ax = plt.subplots(figsize=(11, 5.5))
    cmap = plt.get_cmap("viridis")
    for i, (step, label) in enumerate(steps):
        mine = [r for r in rows if r.step == step]
        ax.plot([r.epoch for r in mine], [r.mean for r in mine], "-o", ms=3, lw=1.3,
                color=cmap(i / max(1, len(steps) - 1)), label=label)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"top-1 (%) on {data} after the epoch, mean over seeds")
    ax.set_title(title, fontsize=9)
    ax.grid(color="0.9")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="step (roadmap order)",
              title_fontsize=8)
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(out / f"curves.{ext}", dpi=130)
    plt.close(fig)


def chart_curves(
    records: list[RunRecord], order: list[tuple[str, str]], out: Path, title: str, data: str
) -> None:
    rows = curve_rows(records, order)
    if not rows:
        return
    write_csv(rows, out / "curves.csv", COLUMNS)
    draw_curves(rows, out, title, data)
