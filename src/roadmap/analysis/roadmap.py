"""The paper's Figure 2 from a sweep's run records: a row per step in paper order, ours beside the
paper's, the change of each step with its intervals, and the agreement of our changes with the
paper's."""
from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

from ..config.steps import load_regime, roadmap_steps
from ..record import RunRecord
from .chart import Mark, draw
from .curves import chart_curves
from .read import readable
from .rows import (
    Row,
    bootstrap_fields,
    change_fields,
    correct_by_seed,
    fmt,
    interval_cells,
    md_tail,
    mean_of,
    seed_stats,
    variant_title,
    write_csv,
)
from .stats import agreement

COLUMNS = ["step", "label", "n", "mean", "std", "ci_low", "ci_high", "min", "max", "gmacs", "params", "images_per_s",
           "paper_top1", "paper_gflops", "adopted", "delta", "delta_low", "delta_high", "delta_method", "real",
           "boot_low", "boot_high", "boot_n", "boot_real", "paper_delta", "failed"]
AGREEMENT = ["steps", "sign_agree", "sign_compared", "sign_agreement", "spearman"]


def compare_with_paper(rows: list[Row]) -> dict:
    """Sign agreement and Spearman's rank correlation of our step-to-step changes and the
    paper's."""
    pairs = [
        (r.delta, r.paper_delta) for r in rows if r.delta is not None and r.paper_delta is not None
    ]
    return agreement([a for a, _ in pairs], [b for _, b in pairs])


def roadmap_rows(
    records: list[RunRecord], metric: str = "final_top1"
) -> tuple[list[Row], list[RunRecord]]:
    """One row per step in paper order (steps with no completed run included), and the runs not
    charted."""
    good = readable(records)
    records = good + [r for r in records if r.status == "unreadable"]  # damaged: named, not charted
    settings = {(r.data, r.budget, r.regime) for r in good}
    if len(settings) > 1:
        raise ValueError(f"these records mix datasets/budgets/regimes {sorted(map(str, settings))}; chart one sweep "
                         "at a time")
    variants: dict[str, set] = {}
    for r in good:
        variants.setdefault(r.step, set()).add(r.variant)
    for step, found in variants.items():
        if len(found) > 1:
            raise ValueError(f"the records of {step} come from {len(found)} variants ({'; '.join(sorted(found))}); "
                             "chart one variant at a time (read.choose_variant, plot_roadmap.py --variant)")
    done = [r for r in records if r.status == "completed" and getattr(r, metric) is not None]
    failed = [r for r in records if r not in done]
    steps = roadmap_steps(good[0].regime)
    known = {s.name for s in steps}
    extra = sorted({r.step for r in records} - known)  # steps of the user's own, after the paper's
    rows, previous = [], None
    for s in steps + extra:
        name = s if isinstance(s, str) else s.name
        meta = None if isinstance(s, str) else s.meta
        paper = meta.paper if meta else None
        runs = [r for r in done if r.step == name]
        row = Row(step=name, label=meta.label if meta else name, **seed_stats(runs, metric),
                  correct=correct_by_seed(runs), gmacs=mean_of([r.gmacs for r in runs]),
                  params=mean_of([r.params for r in runs]), images_per_s=mean_of([r.images_per_s for r in runs]),
                  paper_top1=paper.top1 if paper else None, paper_gflops=paper.gflops if paper else None,
                  adopted=meta.adopted if meta else True, failed=sum(r.step == name for r in failed))
        if previous is not None:
            row = replace(row, **change_fields(previous.by_seed, row.by_seed))
            if metric == "final_top1":  # the predictions are the last epoch's
                row = replace(row, **bootstrap_fields(previous.correct, row.correct))
            if row.paper_top1 is not None and previous.paper_top1 is not None:
                # 2-decimal numbers
                row.paper_delta = round(row.paper_top1 - previous.paper_top1, 4)
        if row.adopted:
            previous = row
        rows.append(row)
    return rows, failed


def write_tables(rows: list[Row], failed: list[RunRecord], out: Path, title: str, agree: dict,
                 notes: list[str] = ()) -> None:
    """roadmap.csv (a row per step), roadmap_agreement.csv (one row) and roadmap.md (both, the
    failures, and `notes`: what the chart left out)."""
    write_csv(rows, out / "roadmap.csv", COLUMNS)
    with open(out / "roadmap_agreement.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=AGREEMENT)
        w.writeheader()
        w.writerow({k: "" if agree[k] is None else agree[k] for k in AGREEMENT})
    lines = [f"# {title}", "", "| step | label | n | mean | 95% CI | std | GMACs | params | images/s | change | "
             "change 95% CI | real? | bootstrap 95% CI | real? | paper top-1 | paper change | paper GFLOPs | failed |",
             "|" + "---|" * 18]
    for r in rows:
        ci, dci, real = interval_cells(r)
        boot = (
            f"[{r.boot_low:+.2f}, {r.boot_high:+.2f}] ({r.boot_n})"
            if r.boot_low is not None
            else ""
        )
        lines.append(f"| {r.step} | {r.label}{'' if r.adopted else ' (not adopted)'} | {r.n} | "
                     f"{fmt(r.mean, '.2f')} | {ci} | {fmt(r.std, '.2f')} | {fmt(r.gmacs, '.3f')} | "
                     f"{fmt(r.params, ',.0f')} | {fmt(r.images_per_s, '.0f')} | {fmt(r.delta, '+.2f')} | "
                     f"{dci} | {real} | {boot} | {({True: '**yes**', False: 'no', None: ''})[r.boot_real]} | "
                     f"{fmt(r.paper_top1, '.2f')} | {fmt(r.paper_delta, '+.2f')} | "
                     f"{fmt(r.paper_gflops, '.2f')} | {r.failed} |")
    lines += ["", "Change: from the previous adopted step (side branches are compared with it too), paired by seed "
              "where both steps have the same seeds, else Welch's interval; **yes** where the 95% interval excludes "
              "zero. Bootstrap: the paired bootstrap over seeds and test images (4,000 replicates; seeds drawn with "
              "replacement, and the test images once for all seeds), from each run's predictions.npz: it adds the "
              "test set's sampling error, which the t interval over seeds leaves out, but with few seeds it "
              "cannot see the seed-to-seed spread that a t interval's wide quantile allows for.", "",
              f"Agreement with the paper over the {agree['steps']} steps where both changes exist: "
              + (f"the sign agrees on {agree['sign_agree']} of {agree['sign_compared']}" if agree["sign_compared"]
                 else "no signs to compare")
              + (f", Spearman's rank correlation {agree['spearman']:+.2f}." if agree["spearman"] is not None
                 else ", too few steps for a rank correlation.")]
    missing = [r.step for r in rows if r.n == 0]
    if missing:
        lines += ["", f"Steps with no completed run: {', '.join(missing)}."]
    lines += md_tail(
        [f"- {r.step} seed {r.seed}: {r.reason or r.status} ({r.path})" for r in failed], notes
    )
    (out / "roadmap.md").write_text("\n".join(lines) + "\n")


def draw_roadmap(rows: list[Row], out: Path, title: str, metric: str, data: str, agree: dict,
                 paper_source: str) -> None:
    """roadmap.png/.svg: our top-1 per step, and each step's change beside the paper's
    (chart.py)."""
    marks = [Mark(r, r.label + ("" if r.adopted else " (side branch)"), hollow=not r.adopted, paper=r.paper_delta)
             for r in rows]
    agreed = (
        f"sign agrees on {agree['sign_agree']} of {agree['sign_compared']}"
        if agree["sign_compared"]
        else "no signs to compare"
    ) + (f", Spearman {agree['spearman']:+.2f}" if agree["spearman"] is not None else "")
    draw(marks, out, "roadmap", title, f"{metric.replace('_top1', ' top-1')} (%) on {data}",
         "change from the previous adopted step (points)", f"paper's change, ImageNet-1K ({paper_source})",
         f"our change beside the paper's: {agreed} ({agree['steps']} steps compared)")


def chart_roadmap(records: list[RunRecord], out: Path, metric: str = "final_top1",
                  notes: list[str] = ()) -> tuple[list[Row], list[RunRecord]]:
    """The chart and tables of one variant's records (choose_variant), `notes` saying what was left
    out."""
    if not records:
        raise ValueError("no run records (metrics.json) found")
    if any(r.undo for r in records):
        raise ValueError(
            "these are leave-one-out records (undo=...): chart them apart from the forward roadmap"
        )
    rows, failed = roadmap_rows(records, metric)
    agree = compare_with_paper(rows)
    first = readable(records)[0]  # roadmap_rows checked there is one
    data, budget = first.data, first.budget
    regime = load_regime(first.regime)
    seeds = sorted({r.seed for r in records if r.status == "completed"}, key=str)
    title = (f"{regime.title.split(' (')[0]} roadmap ({regime.name}) on {data} ({budget} budget"
             f"{variant_title(first.variant)}), seeds {', '.join(map(str, seeds)) or 'none'}")
    out.mkdir(parents=True, exist_ok=True)
    write_tables(rows, failed, out, title, agree, notes)
    draw_roadmap(rows, out, title, metric, data, agree, "Table 11" if "Table 11" in regime.paper_source else "Table 10")
    chart_curves(records, [(r.step, r.label) for r in rows], out, f"Learning curves: {title}", data,
                 {r.step for r in rows if not r.adopted})
    return rows, failed


