"""The paper's Figure 2 from a sweep's run records: one row per step, the paper's numbers beside ours."""
from __future__ import annotations

import csv
import json
import shlex
import statistics
from pathlib import Path

from omegaconf import OmegaConf

from .lock import is_held
from .stats import agreement, change, t_quantile
from .steps import load_regime, roadmap_steps

COLUMNS = ["step", "label", "n", "mean", "std", "ci_low", "ci_high", "min", "max", "gmacs", "params", "images_per_s",
           "paper_top1", "paper_gflops", "adopted", "delta", "delta_low", "delta_high", "delta_method", "real",
           "boot_low", "boot_high", "boot_n", "boot_real", "paper_delta", "failed"]
AGREEMENT = ["steps", "sign_agree", "sign_compared", "sign_agreement", "spearman"]


def _step_of(run_dir: Path) -> str:
    try:
        return str(OmegaConf.load(run_dir / "config.yaml").step.name)
    except Exception:  # noqa: BLE001 - no config either: the run is named by its directory
        return str(run_dir)


def records_from_dirs(paths: list[Path]) -> list[dict]:
    """Every metrics.json under the given sweep (or run) directories, each once."""
    seen, out = set(), []
    for root in paths:
        if not Path(root).exists():
            raise FileNotFoundError(f"{root}: no such directory")
        for path in sorted(Path(root).rglob("metrics.json")):
            if path.resolve() not in seen:
                seen.add(path.resolve())
                try:
                    rec = json.loads(path.read_text())
                    why = None if isinstance(rec, dict) else f"metrics.json holds a {type(rec).__name__}, not a record"
                except (OSError, ValueError) as e:  # damaged: running the run's command again rebuilds it
                    why = f"metrics.json unreadable ({type(e).__name__})"
                if why is not None:
                    rec = {"step": _step_of(path.parent), "status": "unreadable",
                           "reason": f"{why}; run the same command again to rebuild it from its checkpoint"}
                elif rec.get("status") == "running" and is_held(path.parent) is False:  # its process is gone
                    rec = rec | {"status": "killed", "reason": f"killed: the record says running but no process "
                                 f"holds the run (after {rec.get('epochs_done') or 0} epoch(s)); run the same "
                                 "command again to resume it"}
                out.append(rec | {"path": str(path.parent)})
    return out


def records_from_wandb(project: str, group: str, api=None) -> list[dict]:
    """The same records from the W&B API: the runs of one group (a sweep) of ENTITY/PROJECT."""
    if api is None:
        import wandb
        api = wandb.Api()
    out = []
    for run in api.runs(project, filters={"group": group}):
        cfg, summary = run.config, run.summary
        status = summary.get("status") or ("completed" if run.state == "finished" else run.state)
        out.append({"step": cfg["step"]["name"], "label": cfg["step"]["label"], "seed": cfg["seed"],
                    "regime": cfg.get("regime", {}).get("name", "r50"), "undo": cfg.get("undo"),
                    "data": cfg["data"]["name"], "budget": cfg["budget"]["name"], "status": status,
                    "reason": None if status == "completed" else f"W&B state {run.state}", "path": run.url,
                    **{k: summary.get(k) for k in ("final_top1", "best_top1", "params", "gmacs", "images_per_s")}})
    return out


def readable(records: list[dict]) -> list[dict]:
    """The records that could be read (damaged ones stay in the list that readers name as failed); ValueError
    naming the damaged ones when there is none."""
    out = [r for r in records if r.get("status") != "unreadable"]
    if records and not out:
        raise ValueError(f"no readable run record among {len(records)}: "
                         + "; ".join(f"{r['path']}: {r['reason']}" for r in records[:3]))
    return out


def choose_variant(records: list[dict], variant: str | None = None) -> tuple[list[dict], str, dict[str, list[dict]]]:
    """The records of one variant (run.py's overrides that change what a run computes; "" for the steps as they
    are), the variant, and the records left out, by variant. By default the variant that covers the most steps
    (the steps as they are on a tie), so a side sweep into a roadmap's folder (`-m step=micro/gelu
    model.kernel_size=5`) leaves the roadmap's chart as it was. Damaged records, of no known variant, stay in to be
    named. ValueError for a `variant` that no record has."""
    steps: dict[str, set] = {}
    for r in readable(records):
        steps.setdefault(r.get("variant") or "", set()).add(r.get("step"))
    if variant is None:
        variant = max(steps, key=lambda v: (len(steps[v]), v == ""), default="")
    elif variant not in steps:
        raise ValueError(f"--variant {variant!r} is not among these records' variants: "
                         + "; ".join(repr(v) for v in sorted(steps)))
    kept = [r for r in records if r.get("status") == "unreadable" or (r.get("variant") or "") == variant]
    left: dict[str, list[dict]] = {}
    for r in records:
        if r not in kept:
            left.setdefault(r.get("variant") or "", []).append(r)
    return kept, variant, left


def describe_left_out(left: dict[str, list[dict]]) -> list[str]:
    """One line per variant left out of a chart: its runs, steps, and how to chart it instead."""
    return [f"left out {len(runs)} run(s) of variant {v!r} ({', '.join(sorted({str(r.get('step')) for r in runs}))}); "
            f"chart them with --variant {shlex.quote(v)}" for v, runs in sorted(left.items())]


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else None


def mean_interval(values: list[float], level: float = 0.95) -> tuple[float | None, float | None]:
    """The t interval of the mean of `values` (None, None for fewer than two)."""
    if len(values) < 2:
        return None, None
    half = t_quantile(level, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return statistics.fmean(values) - half, statistics.fmean(values) + half


def seed_stats(runs: list[dict], metric: str) -> dict:
    """n, mean, standard deviation, the mean's 95% interval, min and max of `metric` over `runs`, and the values by
    seed for pairing (by run when a seed appears twice, from two places: then there is nothing to pair)."""
    values = [r[metric] for r in runs]
    by_seed = {r.get("seed"): r[metric] for r in runs}
    if len(by_seed) < len(runs):
        by_seed = {f"{r.get('seed')}#{i}": r[metric] for i, r in enumerate(runs)}
    low, high = mean_interval(values)
    return {"n": len(values), "mean": statistics.fmean(values) if values else None,
            "std": statistics.stdev(values) if len(values) > 1 else None, "ci_low": low, "ci_high": high,
            "min": min(values, default=None), "max": max(values, default=None), "by_seed": by_seed}


NO_CHANGE = {"delta": None, "delta_low": None, "delta_high": None, "delta_method": None, "real": None,
             "boot_low": None, "boot_high": None, "boot_n": None, "boot_real": None}


def correct_by_seed(runs: list[dict]) -> dict:
    """{seed: (test images,) bool array, right or wrong} from the runs' predictions.npz; runs without one are left
    out (W&B records, older runs), and so is a seed recorded twice."""
    from .records import load_predictions
    out, seen = {}, set()
    for r in runs:
        seed, path = r.get("seed"), r.get("path")
        if seed in seen:
            out.pop(seed, None)
            continue
        seen.add(seed)
        loaded = load_predictions(Path(path) / r["predictions"]) if path and r.get("predictions") else None
        if loaded is not None:
            out[seed] = loaded
    return out


def bootstrap_fields(before: dict, after: dict) -> dict:
    """The paired bootstrap over seeds and test images (stats.paired_bootstrap) for the seeds both steps have
    predictions of, on the same test images; empty fields when there are none."""
    import numpy as np

    from .stats import paired_bootstrap
    seeds = sorted(set(before) & set(after), key=str)
    seeds = [s for s in seeds if np.array_equal(before[s][1], after[s][1])]  # the same images, in the same order
    if not seeds:
        return {}
    diffs = np.stack([(after[s][0] == after[s][1]).astype(np.int8) - (before[s][0] == before[s][1]).astype(np.int8)
                      for s in seeds])
    b = paired_bootstrap(diffs)
    return {"boot_low": round(b.low, 4), "boot_high": round(b.high, 4), "boot_n": f"{b.seeds} seeds x {b.images}",
            "boot_real": b.real}


def change_fields(before: dict, after: dict) -> dict:
    """The change from one row's runs to another's (stats.change, paired by seed where it can), as row fields."""
    c = change(before, after)
    if c is None:
        return dict(NO_CHANGE)
    return {"delta": c.delta, "delta_low": c.low, "delta_high": c.high, "delta_method": f"{c.method}, n={c.n}",
            "real": c.real}


def write_csv(rows: list[dict], path: Path, columns: list[str]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        w.writeheader()
        w.writerows({k: ("" if r[k] is None else r[k]) for k in columns} for r in rows)


def fmt(value, spec: str) -> str:
    return "" if value is None else format(value, spec)


def interval_cells(r: dict) -> tuple[str, str, str]:
    """A row's markdown cells: the mean's 95% interval, the change's interval (and method), and whether it is real."""
    ci = f"[{r['ci_low']:.2f}, {r['ci_high']:.2f}]" if r["ci_low"] is not None else ""
    dci = f"[{r['delta_low']:+.2f}, {r['delta_high']:+.2f}] ({r['delta_method']})" \
        if r["delta_low"] is not None else (r["delta_method"] or "")
    return ci, dci, {True: "**yes**", False: "no", None: ""}[r["real"]]


def compare_with_paper(rows: list[dict]) -> dict:
    """Sign agreement and Spearman's rank correlation of our step-to-step changes and the paper's."""
    pairs = [(r["delta"], r["paper_delta"]) for r in rows if r["delta"] is not None and r["paper_delta"] is not None]
    return agreement([a for a, _ in pairs], [b for _, b in pairs])


def summarize(records: list[dict], metric: str = "final_top1") -> tuple[list[dict], list[dict]]:
    """One row per step in paper order (steps with no completed run included), and the failed runs."""
    good = readable(records)
    records = good + [r for r in records if r.get("status") == "unreadable"]  # damaged: named, not charted
    settings = {(r.get("data"), r.get("budget"), r.get("regime") or "r50") for r in good}
    if len(settings) > 1:
        raise ValueError(f"these records mix datasets/budgets/regimes {sorted(map(str, settings))}; chart one sweep "
                         "at a time")
    variants: dict[str, set] = {}
    for r in good:
        variants.setdefault(r.get("step"), set()).add(r.get("variant") or "")
    for step, found in variants.items():
        if len(found) > 1:
            raise ValueError(f"the records of {step} come from {len(found)} variants ({'; '.join(sorted(found))}); "
                             "chart one variant at a time (report.choose_variant, plot_roadmap.py --variant)")
    done = [r for r in records if r.get("status") == "completed" and r.get(metric) is not None]
    failed = [r for r in records if r not in done]
    steps = roadmap_steps(good[0].get("regime") or "r50")
    known = {s.name for s in steps}
    extra = sorted({r["step"] for r in records} - known)  # steps of the user's own, after the paper's
    rows, previous = [], None
    for s in steps + extra:
        name = s if isinstance(s, str) else s.name
        meta = None if isinstance(s, str) else s.meta
        runs = [r for r in done if r["step"] == name]
        row = {"step": name, "label": meta.label if meta else name, **seed_stats(runs, metric),
               "correct": correct_by_seed(runs),
               "gmacs": _mean([r.get("gmacs") for r in runs]), "params": _mean([r.get("params") for r in runs]),
               "images_per_s": _mean([r.get("images_per_s") for r in runs]),
               "paper_top1": meta.paper_top1 if meta else None, "paper_gflops": meta.paper_gflops if meta else None,
               "adopted": meta.adopted if meta else True, **NO_CHANGE, "paper_delta": None,
               "failed": sum(r["step"] == name for r in failed)}
        if previous is not None:
            row.update(change_fields(previous["by_seed"], row["by_seed"]))
            if metric == "final_top1":  # the predictions are the last epoch's
                row.update(bootstrap_fields(previous["correct"], row["correct"]))
            if row["paper_top1"] is not None and previous["paper_top1"] is not None:
                row["paper_delta"] = round(row["paper_top1"] - previous["paper_top1"], 4)  # 2-decimal numbers
        if row["adopted"]:
            previous = row
        rows.append(row)
    return rows, failed


def write_tables(rows: list[dict], failed: list[dict], out: Path, title: str, agree: dict,
                 notes: list[str] = ()) -> None:
    """roadmap.csv (a row per step), roadmap_agreement.csv (one row) and roadmap.md (both, the failures, and
    `notes`: what the chart left out)."""
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
        boot = f"[{r['boot_low']:+.2f}, {r['boot_high']:+.2f}] ({r['boot_n']})" if r["boot_low"] is not None else ""
        lines.append(f"| {r['step']} | {r['label']}{'' if r['adopted'] else ' (not adopted)'} | {r['n']} | "
                     f"{fmt(r['mean'], '.2f')} | {ci} | {fmt(r['std'], '.2f')} | {fmt(r['gmacs'], '.3f')} | "
                     f"{fmt(r['params'], ',.0f')} | {fmt(r['images_per_s'], '.0f')} | {fmt(r['delta'], '+.2f')} | "
                     f"{dci} | {real} | {boot} | {({True: '**yes**', False: 'no', None: ''})[r['boot_real']]} | "
                     f"{fmt(r['paper_top1'], '.2f')} | {fmt(r['paper_delta'], '+.2f')} | "
                     f"{fmt(r['paper_gflops'], '.2f')} | {r['failed']} |")
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
    missing = [r["step"] for r in rows if r["n"] == 0]
    if missing:
        lines += ["", f"Steps with no completed run: {', '.join(missing)}."]
    if failed:
        lines += ["", f"Failed runs ({len(failed)}):"]
        lines += [f"- {r.get('step')} seed {r.get('seed')}: {r.get('reason') or r.get('status')} ({r.get('path')})"
                  for r in failed]
    if notes:
        lines += ["", "Not in this chart (other variants in the same folders):"] + [f"- {n}" for n in notes]
    (out / "roadmap.md").write_text("\n".join(lines) + "\n")


def plot(rows: list[dict], out: Path, title: str, metric: str, data: str, agree: dict, paper_source: str) -> None:
    """roadmap.png/.svg: our top-1 per step, and each step's change beside the paper's (chart.py)."""
    from .chart import draw
    marks = [dict(r, label=r["label"] + ("" if r["adopted"] else " (side branch)"), hollow=not r["adopted"],
                  paper=r["paper_delta"]) for r in rows]
    agreed = (f"sign agrees on {agree['sign_agree']} of {agree['sign_compared']}" if agree["sign_compared"]
              else "no signs to compare") + (f", Spearman {agree['spearman']:+.2f}" if agree["spearman"] is not None
                                             else "")
    draw(marks, out, "roadmap", title, f"{metric.replace('_top1', ' top-1')} (%) on {data}",
         "change from the previous adopted step (points)", f"paper's change, ImageNet-1K ({paper_source})",
         f"our change beside the paper's: {agreed} ({agree['steps']} steps compared)")


def variant_title(variant: str) -> str:
    return f", variant {variant}" if variant else ""


def report(records: list[dict], out: Path, metric: str = "final_top1",
           notes: list[str] = ()) -> tuple[list[dict], list[dict]]:
    """The chart and tables of one variant's records (choose_variant), `notes` saying what was left out."""
    if not records:
        raise ValueError("no run records (metrics.json) found")
    if any(r.get("undo") for r in records):
        raise ValueError("these are leave-one-out records (undo=...): chart them apart from the forward roadmap")
    rows, failed = summarize(records, metric)
    agree = compare_with_paper(rows)
    first = readable(records)[0]  # summarize checked there is one
    data, budget = first.get("data"), first.get("budget")
    regime = load_regime(first.get("regime") or "r50")
    seeds = sorted({r.get("seed") for r in records if r.get("status") == "completed"}, key=str)
    title = (f"{regime.title.split(' (')[0]} roadmap ({regime.name}) on {data} ({budget} budget"
             f"{variant_title(first.get('variant'))}), seeds {', '.join(map(str, seeds)) or 'none'}")
    out.mkdir(parents=True, exist_ok=True)
    write_tables(rows, failed, out, title, agree, notes)
    plot(rows, out, title, metric, data, agree, "Table 11" if "Table 11" in regime.paper_source else "Table 10")
    for r in rows:
        r.pop("by_seed")
        r.pop("correct")
    return rows, failed


def log_to_wandb(rows: list[dict], agree: dict, out: Path, group: str, project: str = "roadmap",
                 entity: str | None = None, mode: str = "auto", chart: str = "roadmap",
                 columns: list[str] = COLUMNS) -> str | None:
    """One W&B run of job_type `chart` in the sweep's group: the chart image (`<chart>.png`), the table of its
    rows and a bar chart of it, and the agreement figures (if any) in its summary. Offline without an API key.
    Returns the run's directory."""
    import wandb

    from .config import WandbConfig, WandbMode
    from .tracking import Tracker
    columns = [c for c in columns if c != "adopted"] + (["adopted"] if "adopted" in columns else [])
    table = wandb.Table(columns=columns, data=[[r[c] for c in columns] for r in rows])
    cfg = WandbConfig(mode=WandbMode(mode), project=project, entity=entity)
    tracker = Tracker(cfg, out, f"chart/{group}", group, {"steps": len(rows), "group": group, "chart": chart}, None,
                      job_type="chart", tags=("chart", *(["leave_one_out"] * (chart == "leave_one_out"))))
    if tracker.run is None:
        return None
    tracker.log({f"{chart}/chart": wandb.Image(str(out / f"{chart}.png")), f"{chart}/table": table,
                 f"{chart}/top1": wandb.plot.bar(table, "label", "mean", title="top-1 per step" if chart == "roadmap"
                                                 else "top-1 with each step undone")}, step=0)
    if agree:
        tracker.summary({f"agreement/{k}": v for k, v in agree.items()})
    where = tracker.run.dir
    tracker.finish()
    return where
