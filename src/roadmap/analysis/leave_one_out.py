"""The leave-one-out study's chart from a `+sweep=leave_one_out` sweep: the drop from the full model
when each adopted step is undone, with its 95% interval (paired by seed), beside the paper's gain
when the step was adopted.

    leave_one_out.png/.svg, leave_one_out.csv, leave_one_out.md  (written by scripts/plot_roadmap.py)
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..config.steps import load_regime, roadmap_steps
from ..config.undo import undoable
from ..record import RunRecord
from .chart import Mark, draw
from .read import readable
from .rows import Row, change_fields, fmt, interval_cells, md_tail, seed_stats, variant_title, write_csv

COLUMNS = ["undo", "label", "n", "mean", "ci_low", "ci_high", "gmacs", "params", "delta", "delta_low", "delta_high",
           "delta_method", "real", "paper_gain", "failed"]


def paper_gains(regime: str) -> dict[str, float]:
    """The paper's top-1 change when each adopted step was adopted (from the previous adopted
    step)."""
    gains, previous = {}, None
    for s in roadmap_steps(regime):
        top1 = s.meta.paper.top1 if s.meta.paper else None
        if top1 is not None and previous is not None:
            gains[s.name] = round(top1 - previous, 4)
        if s.meta.adopted:
            previous = top1
    return gains


def leave_one_out_rows(
    records: list[RunRecord], metric: str = "final_top1"
) -> tuple[list[Row], list[RunRecord]]:
    """The full model's row, then one per undone step in paper order, each with its change from the
    full model."""
    good = readable(records)  # damaged ones are listed as failed
    kinds = {(r.step, r.regime, r.data, r.budget, r.variant) for r in good}
    if len(kinds) > 1:
        raise ValueError(
            f"these leave-one-out records mix models, regimes, datasets, budgets or variants "
            f"{sorted(map(str, kinds))}; chart one sweep at a time"
        )
    step, regime = good[0].step, good[0].regime
    labels = {s.name: s.meta.label for s in roadmap_steps(regime)}
    gains = paper_gains(regime)
    done = [r for r in records if r.status == "completed" and getattr(r, metric) is not None]
    failed = [r for r in records if r not in done]
    order = [None, *undoable(step)]
    order += sorted({r.undo for r in records} - set(order))  # undone steps of the user's own
    rows, full = [], None
    for undo in order:
        runs = [r for r in done if r.undo == undo]
        row = Row(undo=undo or "", label=f"full model: {labels.get(step, step)}" if undo is None
                  else f"without {labels.get(undo, undo)}", **seed_stats(runs, metric),
                  gmacs=runs[0].gmacs if runs else None, params=runs[0].params if runs else None,
                  paper_gain=gains.get(undo), failed=sum(r.undo == undo for r in failed))
        if undo is None:
            full = row
        elif full is not None:
            row = replace(row, **change_fields(full.by_seed, row.by_seed))
        rows.append(row)
    return rows, failed


def write_tables(
    rows: list[Row], failed: list[RunRecord], out: Path, title: str, notes: list[str] = ()
) -> None:
    write_csv(rows, out / "leave_one_out.csv", COLUMNS)
    lines = [f"# {title}", "", "| undone step | n | mean | 95% CI | GMACs | change from full | change 95% CI | real? | "
             "paper gain when adopted | failed |", "|" + "---|" * 10]
    for r in rows:
        ci, dci, real = interval_cells(r)
        lines.append(
            f"| {r.label} | {r.n} | {fmt(r.mean, '.2f')} | {ci} | {fmt(r.gmacs, '.3f')} | "
            f"{fmt(r.delta, '+.2f')} | {dci} | {real} | {fmt(r.paper_gain, '+.2f')} | {r.failed} |"
        )
    lines += ["", "Change: undone minus full model, paired by seed where the seeds match (else Welch's interval); "
              "**yes** where the 95% interval excludes zero. Paper gain: the paper's top-1 change when the step was "
              "adopted (ImageNet-1K, forward roadmap), for comparison."]
    lines += md_tail([f"- {r.undo or 'full model'} seed {r.seed}: {r.reason or r.status} ({r.path})"
                      for r in failed], notes)
    (out / "leave_one_out.md").write_text("\n".join(lines) + "\n")


def draw_leave_one_out(
    rows: list[Row], out: Path, title: str, metric: str, data: str, paper_source: str
) -> None:
    """leave_one_out.png/.svg: the full model's and each undone model's top-1, and each drop beside
    the paper's gain when the step was adopted, negated (chart.py)."""
    marks = [
        Mark(r, r.label, paper=-r.paper_gain if r.paper_gain is not None else None) for r in rows
    ]
    draw(marks, out, "leave_one_out", title, f"{metric.replace('_top1', ' top-1')} (%) on {data}",
         "change from the full model when the step is undone (points)",
         f"minus the paper's gain when adopted, ImageNet-1K ({paper_source})",
         "undoing a step that helps moves left; the paper's diamond is where its gain says")


def chart_leave_one_out(records: list[RunRecord], out: Path, metric: str = "final_top1",
                        notes: list[str] = ()) -> tuple[list[Row], list[RunRecord]]:
    """The chart and tables of one variant's records (report.choose_variant), `notes` saying what
    was left out."""
    rows, failed = leave_one_out_rows(records, metric)
    r0 = readable(records)[0]
    full = rows[0]
    seeds = sorted({r.seed for r in records if r.status == "completed"}, key=str)
    regime = load_regime(r0.regime)
    title = (f"Leave one out from {r0.step} ({regime.title}) on "
             f"{r0.data} ({r0.budget} budget{variant_title(r0.variant)}), "
             f"seeds {', '.join(map(str, seeds)) or 'none'}"
             + (f"; full model {full.mean:.2f}" if full.mean is not None else "; the full model has no run"))
    out.mkdir(parents=True, exist_ok=True)
    write_tables(rows, failed, out, title, notes)
    source = "Table 11" if "Table 11" in regime.paper_source else "Table 10"
    draw_leave_one_out(rows, out, title, metric, r0.data, source)
    return rows, failed
