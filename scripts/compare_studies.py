"""What the recipe does to a roadmap's conclusions: each step's change in one study beside
another's, from the roadmap.csv that plot_roadmap.py wrote for each.

    python scripts/compare_studies.py docs/results/femto_cpu docs/results/femto_converged \
        --out docs/results/femto_converged --names "3 epochs, transplanted" "converged, small-scale"

Writes compare.md, compare.csv and compare.png/.svg into --out: per step, each study's mean top-1
and its change from the previous adopted step with the 95% interval and whether it is real (the t
interval over seeds excludes zero), the paper's change, and whether the two studies agree in sign;
steps that either study lacks are listed."""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from roadmap.files import quiet_if_the_reader_goes

COLUMNS = ["step", "label", "a_mean", "a_delta", "a_low", "a_high", "a_real", "b_mean", "b_delta", "b_low", "b_high",
           "b_real", "paper_delta", "same_sign", "flipped"]


def number(text: str) -> float | None:
    return float(text) if text not in ("", None) else None


def read(folder: Path) -> dict[str, dict]:
    path = folder / "roadmap.csv"
    try:
        with open(path, newline="") as f:
            return {r["step"]: r for r in csv.DictReader(f)}
    except (OSError, csv.Error, KeyError) as e:
        sys.exit(f"error: {path} cannot be read ({type(e).__name__}: {e}); make it with scripts/plot_roadmap.py")


def compare(a: dict[str, dict], b: dict[str, dict]) -> list[dict]:
    rows = []
    for step, ra in a.items():
        if step not in b:
            continue
        rb = b[step]
        row = {
            "step": step,
            "label": rb["label"] or ra["label"],
            "paper_delta": number(rb["paper_delta"]),
        }
        for side, r in (("a", ra), ("b", rb)):
            row.update(
                {
                    f"{side}_mean": number(r["mean"]),
                    f"{side}_delta": number(r["delta"]),
                    f"{side}_low": number(r["delta_low"]),
                    f"{side}_high": number(r["delta_high"]),
                    f"{side}_real": r["real"] == "True",
                }
            )
        both = row["a_delta"] is not None and row["b_delta"] is not None
        row["same_sign"] = (row["a_delta"] > 0) == (row["b_delta"] > 0) if both else None
        row["flipped"] = bool(both and not row["same_sign"] and row["a_real"] and row["b_real"])
        rows.append(row)
    return rows


def cell(r: dict, side: str) -> str:
    if r[f"{side}_delta"] is None:
        return ""
    interval = (
        f" [{r[side + '_low']:+.2f}, {r[side + '_high']:+.2f}]"
        if r[f"{side}_low"] is not None
        else ""
    )
    return f"{r[side + '_delta']:+.2f}{interval}{' **real**' if r[side + '_real'] else ''}"


def write(rows: list[dict], out: Path, names: list[str], missing: list[str]) -> None:
    with open(out / "compare.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows({k: "" if r[k] is None else r[k] for k in COLUMNS} for r in rows)
    steps = [r for r in rows if r["a_delta"] is not None and r["b_delta"] is not None]
    lines = [f"# Each step's change: {names[0]} (A) and {names[1]} (B)", "",
             "Change from the previous adopted step in points, with the 95% t interval over seeds; **real** where it "
             "excludes zero. Paper: Table 10's change on ImageNet-1K.", "",
             "| step | A top-1 | A change | B top-1 | B change | paper | A, B same sign |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        same = {True: "yes", False: "**no**" if r["flipped"] else "no", None: ""}[r["same_sign"]]
        paper = f"{r['paper_delta']:+.2f}" if r["paper_delta"] is not None else ""
        means = [f"{r[k]:.2f}" if r[k] is not None else "no run" for k in ("a_mean", "b_mean")]
        lines.append(f"| {r['label']} | {means[0]} | {cell(r, 'a')} | {means[1]} | {cell(r, 'b')} | {paper} | {same} |")
    agree = sum(bool(r["same_sign"]) for r in steps)
    real_a, real_b = (
        [r["label"] for r in steps if r["a_real"]],
        [r["label"] for r in steps if r["b_real"]],
    )
    lines += ["", f"The two agree in sign on {agree} of {len(steps)} steps. Real in A: {', '.join(real_a) or 'none'}. "
              f"Real in B: {', '.join(real_b) or 'none'}. Real in both with opposite signs (a conclusion the recipe "
              f"reverses): {', '.join(r['label'] for r in steps if r['flipped']) or 'none'}."]
    if missing:
        lines += ["", f"In one study only: {', '.join(missing)}."]
    (out / "compare.md").write_text("\n".join(lines) + "\n")
    draw(rows, out, names)


def draw(rows: list[dict], out: Path, names: list[str]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 0.38 * len(rows) + 1.6))
    ys = list(range(len(rows)))[::-1]
    for side, offset, color, name in (
        ("a", 0.15, "#8c8c8c", names[0]),
        ("b", -0.15, "#4c72b0", names[1]),
    ):
        named = False  # the legend names each study once, at its first point (the first row has no change)
        for y, r in zip(ys, rows):
            if r[f"{side}_delta"] is None:
                continue
            err = (
                [[r[f"{side}_delta"] - r[f"{side}_low"]], [r[f"{side}_high"] - r[f"{side}_delta"]]]
                if r[f"{side}_low"] is not None
                else None
            )
            ax.errorbar(r[f"{side}_delta"], y + offset, xerr=err, fmt="o", ms=5, capsize=2, lw=1, color=color,
                        mfc=color if r[f"{side}_real"] else "white", label=None if named else name)
            named = True
    ax.plot(
        [r["paper_delta"] for r in rows if r["paper_delta"] is not None],
        [y for y, r in zip(ys, rows) if r["paper_delta"] is not None],
        "D",
        ms=4,
        color="#dd8452",
        label="paper (ImageNet-1K)",
    )
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(ys, [r["label"] for r in rows], fontsize=8)
    ax.set_xlabel(
        "change from the previous adopted step (points); filled: the 95% t interval excludes 0"
    )
    ax.grid(axis="x", color="0.9")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(out / f"compare.{ext}", dpi=130)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("a", type=Path, help="the first study's chart folder (its roadmap.csv)")
    ap.add_argument("b", type=Path, help="the second study's chart folder")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--names", nargs=2, default=["A", "B"], metavar=("A", "B"))
    args = ap.parse_args()
    a, b = read(args.a), read(args.b)
    rows = compare(a, b)
    if not rows:
        sys.exit(f"error: {args.a} and {args.b} have no step in common")
    missing = sorted(set(a) ^ set(b))
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        write(rows, args.out, args.names, missing)
    except OSError as e:
        sys.exit(f"error: could not write into --out {args.out} ({e.strerror or e})")
    print(f"{len(rows)} steps compared; wrote {args.out / 'compare.md'}, compare.csv, compare.png")


if __name__ == "__main__":
    quiet_if_the_reader_goes()  # `| head`: the report stops there, the work goes on
    main()
