"""Print every roadmap step in paper order: parameters, GMACs, the paper's GFLOPs and top-1, and the difference.

    python scripts/inspect_steps.py                    # table at 224x224, 1000 classes
    python scripts/inspect_steps.py --json             # the same as a JSON list
    python scripts/inspect_steps.py --resolution 32 --num-classes 100
"""
from __future__ import annotations

import argparse
import json

from roadmap import load_config, roadmap_steps
from roadmap.measure import describe


def rows(resolution: int, num_classes: int) -> list[dict]:
    out = []
    for s in roadmap_steps():
        params, gmacs = describe(load_config(s.name).model, resolution, num_classes)
        out.append({"step": s.name, "label": s.meta.label, "params": params, "gmacs": round(gmacs, 4),
                    "paper_gflops": s.meta.paper_gflops, "paper_top1": s.meta.paper_top1, "note": s.meta.note})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print a JSON list of objects")
    ap.add_argument("--resolution", type=int, default=224, help="input size (default 224)")
    ap.add_argument("--num-classes", type=int, default=1000, help="classifier outputs (default 1000)")
    args = ap.parse_args()
    table = rows(args.resolution, args.num_classes)
    if args.json:
        print(json.dumps(table, indent=2))
        return
    paper_setting = args.resolution == 224 and args.num_classes == 1000
    print(f"Roadmap at {args.resolution}x{args.resolution}, {args.num_classes} classes. GMACs = multiply-accumulates"
          " (torch.utils.flop_counter / 2), the paper's 'GFLOPs'.")
    if not paper_setting:
        print("The paper's numbers are at 224x224 with 1000 classes; the difference column is not comparable here.")
    print(f"| {'step':28s} | {'params':>11s} | {'GMACs':>6s} | {'paper':>5s} | {'diff':>6s} | {'top-1':>5s} | note")
    print(f"|{'-' * 30}|{'-' * 13}|{'-' * 8}|{'-' * 7}|{'-' * 8}|{'-' * 7}|------")
    for r in table:
        diff = r["gmacs"] - r["paper_gflops"]
        print(f"| {r['step']:28s} | {r['params']:>11,d} | {r['gmacs']:6.3f} | {r['paper_gflops']:5.2f} | "
              f"{diff:+6.3f} | {r['paper_top1']:5.2f} | {r['note']}")


if __name__ == "__main__":
    main()
