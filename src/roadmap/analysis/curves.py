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


def panels(rows: list[CurvePoint], side: set[str] = frozenset()
           ) -> list[tuple[str, tuple[str, str] | None, list[tuple[str, str]]]]:
    """The curves' panels: the steps, (step, label) in roadmap order, grouped by the stage their
    name starts with (`large_kernel/k7`: large_kernel; a name without a stage is its own), each
    with the step it builds on: the last adopted step of the stage before (`side`: the side
    branches, never built on), None for the first."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for step, label in dict.fromkeys((r.step, r.label) for r in rows):
        groups.setdefault(step.split("/")[0], []).append((step, label))
    out, before = [], None
    for stage, steps in groups.items():
        out.append((stage, before, steps))
        before = next((s for s in reversed(steps) if s[0] not in side), before)
    return out


def draw_curves(rows: list[CurvePoint], out: Path, title: str, data: str, side: set[str] = frozenset()) -> None:
    """curves.png/.svg: a panel per stage of the roadmap (macro design, ResNeXt, ...), a line per
    step (mean over seeds) with the seeds' range shaded, and, dashed grey, the last adopted step of
    the stage before, which the stage's steps build on (`side`: the side branches, not adopted).
    The numbers are in curves.csv."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    groups = panels(rows, side)
    cols = min(3, len(groups))
    nrows = -(-len(groups) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.6 * cols, 3.4 * nrows + 0.6), sharex=True, sharey=True,
                             squeeze=False)
    colours = plt.get_cmap("tab10").colors
    for ax, (stage, before, steps) in zip(axes.flat, groups):
        lines = ([(before, "0.55", "--")] if before else []) + [
            (step, colours[i % len(colours)], "-") for i, step in enumerate(steps)]
        for (step, label), colour, style in lines:
            mine = [r for r in rows if r.step == step]
            epochs = [r.epoch for r in mine]
            ax.plot(epochs, [r.mean for r in mine], style, marker="o", ms=2.5, lw=1.2, color=colour,
                    label=label + (" (side branch)" if step in side else ""))
            if style == "-" and any(r.n > 1 for r in mine):
                ax.fill_between(epochs, [r.min for r in mine], [r.max for r in mine], color=colour, alpha=0.15, lw=0)
        ax.set_title(stage.replace("_", " "), fontsize=9)
        ax.grid(color="0.9")
        ax.legend(fontsize=7, loc="lower right")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes.flat[len(groups):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel(f"top-1 (%) on {data}")
    fig.suptitle(f"{title}\nmean over seeds after each epoch, the seeds' range shaded; dashed: the stage before",
                 fontsize=9)
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(out / f"curves.{ext}", dpi=130)
    plt.close(fig)


def chart_curves(
    records: list[RunRecord], order: list[tuple[str, str]], out: Path, title: str, data: str,
    side: set[str] = frozenset()
) -> None:
    rows = curve_rows(records, order)
    if not rows:
        return
    write_csv(rows, out / "curves.csv", COLUMNS)
    draw_curves(rows, out, title, data, side)
