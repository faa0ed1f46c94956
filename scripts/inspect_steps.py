"""Print every roadmap step in paper order: parameters, GMACs, the paper's GFLOPs and top-1, and the
difference.

    python scripts/inspect_steps.py                    # table at 224x224, 1000 classes
    python scripts/inspect_steps.py --json             # the same as a JSON list
    python scripts/inspect_steps.py --resolution 32 --num-classes 100  # each stage's map size too
    python scripts/inspect_steps.py --resolution 32 --override model.stem_stride=1
    python scripts/inspect_steps.py --regime r200      # Table 11: ResNet-200 to ConvNeXt-B
"""
from __future__ import annotations

import argparse
import json

from roadmap import load_config, roadmap_steps
from roadmap.config.steps import load_regime
from roadmap.files import quiet_if_the_reader_goes
from roadmap.model import describe, feature_sizes


def rows(
    resolution: int, num_classes: int, overrides: list[str], regime: str = "r50"
) -> list[dict]:
    out = []
    for s in roadmap_steps(regime):
        model = load_config(
            s.name, [f"regime={regime}", f"data.resolution={resolution}", *overrides]
        ).model
        params, gmacs = describe(model, resolution, num_classes)
        paper = s.meta.paper
        out.append({"step": s.name, "label": s.meta.label, "params": params, "gmacs": round(gmacs, 4),
                    "maps": feature_sizes(model, resolution), "paper_gflops": paper.gflops if paper else None,
                    "paper_top1": paper.top1 if paper else None, "note": paper.note if paper else ""})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--json", action="store_true", help="print a JSON list of objects")
    ap.add_argument("--resolution", type=int, default=224, help="input size (default 224)")
    ap.add_argument(
        "--num-classes", type=int, default=1000, help="classifier outputs (default 1000)"
    )
    ap.add_argument(
        "--regime",
        default="r50",
        help="r50: Table 10, ResNet-50 to ConvNeXt-T (default); "
        "r200: Table 11, ResNet-200 to ConvNeXt-B",
    )
    ap.add_argument(
        "--override",
        action="append",
        default=[],
        help="a config override for every step, e.g. model.stem_stride=2 (repeatable)",
    )
    args = ap.parse_args()
    try:
        regime = load_regime(args.regime)
        table = rows(args.resolution, args.num_classes, args.override, args.regime)
    except ValueError as e:
        ap.exit(1, f"error: {e}\n")
    if args.json:
        print(json.dumps(table, indent=2))
        return
    paper_setting = args.resolution == 224 and args.num_classes == 1000
    print(f"{regime.title} at {args.resolution}x{args.resolution}, {args.num_classes} classes. GMACs = "
          "multiply-accumulates (torch.utils.flop_counter / 2), the paper's 'GFLOPs'.")
    if not paper_setting:
        print("The paper's numbers are at 224x224 with 1000 classes; the difference column is not comparable here.")
    if all(r["paper_gflops"] is None for r in table):
        print(f"No paper numbers for {regime.name}: {regime.paper_source}")
    # feature-map sides: after the stem, then each stage
    maps = not paper_setting or bool(args.override)
    print(f"| {'step':28s} | {'params':>11s} | {'GMACs':>6s} | {'paper':>5s} | {'diff':>6s} | {'top-1':>5s} | "
          + ("maps (stem: stages) | " if maps else "") + "note")
    print(
        f"|{'-' * 30}|{'-' * 13}|{'-' * 8}|{'-' * 7}|{'-' * 8}|{'-' * 7}|"
        + ("-" * 21 + "|" if maps else "")
        + "------"
    )
    fmt = lambda v, spec, width: format(v, spec) if v is not None else "n/a".rjust(width)  # noqa: E731
    for r in table:
        diff = None if r["paper_gflops"] is None else r["gmacs"] - r["paper_gflops"]
        sides = (
            f" {r['maps'][0]}: {' '.join(map(str, r['maps'][1:]))}".ljust(20) + " |" if maps else ""
        )
        print(f"| {r['step']:28s} | {r['params']:>11,d} | {r['gmacs']:6.3f} | {fmt(r['paper_gflops'], '5.2f', 5)} | "
              f"{fmt(diff, '+6.3f', 6)} | {fmt(r['paper_top1'], '5.2f', 5)} |{sides} {r['note']}")


if __name__ == "__main__":
    quiet_if_the_reader_goes()  # `| head`: the report stops there, the work goes on
    main()
