"""The roadmap's figure, for the forward study and the leave-one-out study alike: two panels that
share the rows.

Left, our top-1 per row (mean and its 95% interval over seeds) on an axis fitted to the data. Right,
each row's change in points (forward: from the previous adopted step; leave-one-out: from the full
model), ours with the t interval over seeds and the paired bootstrap over seeds and test images,
filled where the t interval excludes zero, beside the paper's change on the same axis. Every mark is
in the legend; nothing is drawn outside the figure."""
from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from .rows import Row

OURS, PAPER, GREY = "#4c72b0", "#dd8452", "0.45"


@dataclass
class Mark:
    """A row as the chart draws it: its numbers, its label on the axis, hollow for a side branch,
    and the paper's change drawn beside ours (forward: the paper's change; leave-one-out: minus its
    gain when adopted)."""
    row: Row
    label: str
    hollow: bool = False
    paper: float | None = None


def drawn(marks: list[Mark]) -> tuple[list[Mark], list[str]]:
    """(the rows to draw: those with a completed run, or the first when none has one; the labels of
    the others)."""
    return [m for m in marks if m.row.n] or marks[:1], [m.label for m in marks if not m.row.n]


def draw(marks: list[Mark], out: Path, stem: str, title: str, level_label: str, change_label: str,
         paper_label: str, subtitle: str = "") -> None:
    """`marks`: the chart's rows, in order. Writes `<stem>.png` and `<stem>.svg` into `out`. Rows
    without a completed run are not drawn (a partial sweep): they are named under the panels."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    marks, missing = drawn(marks)
    title_lines, sub_lines = textwrap.wrap(title, 110), textwrap.wrap(subtitle, 55)
    # inches above the panels
    top_in = 0.25 + 0.2 * len(title_lines) + 0.17 * max(1, len(sub_lines)) + 0.1
    height = 0.36 * len(marks) + 1.6 + top_in + 0.3 * bool(missing)
    fig, (left, right) = plt.subplots(1, 2, sharey=True, figsize=(12, height),
                                      gridspec_kw={"width_ratios": [1, 1], "wspace": 0.06})
    ys = list(range(len(marks)))[::-1]  # the first row at the top
    level_panel(left, marks, ys, level_label)
    change_panel(right, marks, ys, change_label, "\n".join(sub_lines))
    fig.legend(
        handles=legend(marks, paper_label), loc="lower center", ncol=3, fontsize=8, frameon=False
    )
    if missing:
        fig.text(0.01, 0.005, textwrap.fill(f"No completed run yet, not drawn: {', '.join(missing)}", 190),
                 fontsize=7, color=GREY, va="bottom")
    fig.suptitle("\n".join(title_lines), fontsize=10, y=1 - 0.12 / height)
    label_in = 0.3 + 0.068 * max(len(m.label) for m in marks)  # the longest row label at 9 pt
    bottom_in = 1.15 + 0.3 * bool(missing)
    fig.subplots_adjust(left=min(0.45, label_in / 12), right=0.98, top=1 - top_in / height, bottom=bottom_in / height)
    for ext in ("png", "svg"):
        fig.savefig(out / f"{stem}.{ext}", dpi=150)
    plt.close(fig)


def level_panel(ax, marks: list[Mark], ys: list[int], level_label: str) -> None:
    """Left: each row's mean top-1 with its 95% interval over seeds, on an axis fitted to the
    data."""
    rows = [m.row for m in marks]
    spans = [(r.ci_low if r.ci_low is not None else r.mean, r.ci_high if r.ci_high is not None else r.mean)
             for r in rows if r.mean is not None]
    lo, hi = (min(a for a, _ in spans), max(b for _, b in spans)) if spans else (0.0, 100.0)
    # top-1 is a percentage: an interval past it is cut at the axis
    lo, hi = max(lo, 0.0), min(hi, 100.0)
    pad = max(0.3, 0.08 * (hi - lo))
    for y, m, r in zip(ys, marks, rows):
        if r.mean is None:
            ax.text(lo, y, f"no completed run{', %d failed' % r.failed if r.failed else ''}", va="center",
                    fontsize=8, color=GREY, style="italic")
            continue
        err = [[r.mean - r.ci_low], [r.ci_high - r.mean]] if r.ci_low is not None else None
        ax.errorbar(r.mean, y, xerr=err, fmt="o", ms=6, capsize=3, color=OURS, lw=1.2,
                    mfc="white" if m.hollow else OURS)
        ax.text(hi + pad * 0.4, y, f"{r.mean:.2f}", va="center", fontsize=8)
    ax.set_xlim(lo - pad, hi + pad * 2.2)
    ax.set_title("our top-1, mean over seeds", fontsize=9)
    ax.set_xlabel(level_label, fontsize=9)
    ax.set_yticks(ys, [m.label for m in marks], fontsize=9)
    ax.grid(axis="x", color="0.9")


def change_panel(ax, marks: list[Mark], ys: list[int], change_label: str, title: str) -> None:
    """Right: each row's change with its t interval and paired bootstrap, filled where real, beside
    the paper's."""
    values = [v for m in marks for v in (m.row.delta_low, m.row.delta_high, m.row.boot_low, m.row.boot_high,
                                         m.row.delta, m.paper) if v is not None]
    span = max([abs(v) for v in values] + [0.5])
    for y, m in zip(ys, marks):
        r = m.row
        if m.paper is not None:
            ax.plot(m.paper, y + 0.18, "D", ms=5, color=PAPER)
        if r.delta is None:
            continue
        if r.boot_low is not None:
            ax.plot([r.boot_low, r.boot_high], [y - 0.12] * 2, color=OURS, lw=4.5, alpha=0.3, solid_capstyle="butt")
        err = (
            [[r.delta - r.delta_low], [r.delta_high - r.delta]] if r.delta_low is not None else None
        )
        ax.errorbar(r.delta, y - 0.12, xerr=err, fmt="o", ms=6, capsize=3, color=OURS, lw=1.2,
                    mfc=OURS if r.real else "white")
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_xlim(-1.12 * span, 1.12 * span)
    ax.set_xlabel(change_label, fontsize=9)
    ax.grid(axis="x", color="0.9")
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="y", length=0)


def legend(marks: list[Mark], paper_label: str) -> list:
    """Every kind of mark the panels draw, and only those."""
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], marker="o", color=OURS, ls="-", lw=1.2, label="ours: mean, 95% t interval over seeds")]
    if any(m.hollow for m in marks):
        handles.append(Line2D([], [], marker="o", color=OURS, mfc="white", ls="", label="side branch (not adopted)"))
    handles += [Line2D([], [], marker="o", color=OURS, ls="", label="our change: real (t interval excludes 0)"),
                Line2D([], [], marker="o", color=OURS, mfc="white", ls="", label="our change: not shown real")]
    if any(m.row.boot_low is not None for m in marks):
        handles.append(Line2D([], [], color=OURS, lw=4.5, alpha=0.3,
                              label="paired bootstrap, seeds x test images (95%)"))
    handles.append(Line2D([], [], marker="D", color=PAPER, ls="", label=paper_label))
    return handles
