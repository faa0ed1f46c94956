"""Copy a sweep's completed runs into the repository, so that its results outlive the machine they
ran on.

    python scripts/collect_results.py outputs/sweeps/fashion_mnist-femto_cpu-femto docs/results/femto_cpu/runs

For every run below SWEEP_DIR whose metrics.json says `completed`, copies metrics.json, config.yaml,
overrides.yaml and predictions.npz (a few KB each; never the checkpoint) to the same relative place
under DEST. Runs that did not complete, or whose predictions.npz is damaged, are listed and left
out; a run already copied is copied again only if it changed; DEST inside SWEEP_DIR is never read as
part of the sweep (no copies of copies). Prints how many runs are in DEST and how many were added.
`plot_roadmap.py DEST` charts them."""
from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import sys
from pathlib import Path

from roadmap.files import quiet_if_the_reader_goes
from roadmap.record import read_predictions

FILES = ("metrics.json", "config.yaml", "overrides.yaml", "predictions.npz")


def collect(sweep: Path, dest: Path) -> tuple[list[Path], list[tuple[Path, str]]]:
    """(runs copied or updated, [(run, why it was left out)])."""
    added, left = [], []
    for record_path in sorted(sweep.rglob("metrics.json")):
        run = record_path.parent
        # DEST inside the sweep: its copies are not runs
        if run.resolve().is_relative_to(dest.resolve()):
            continue
        try:
            record = json.loads(record_path.read_text())
            status = record.get("status") if isinstance(record, dict) else "not a record"
        except (OSError, ValueError) as e:
            status = f"unreadable ({type(e).__name__})"
        if status != "completed":
            left.append((run, str(status)))
            continue
        missing = [f for f in FILES if f != "overrides.yaml" and not (run / f).is_file()]
        if missing:
            left.append((run, f"completed but without {', '.join(missing)}"))
            continue
        try:
            read_predictions(run / "predictions.npz")
        except ValueError as why:
            left.append((run, f"completed but {str(why).replace(str(run) + '/', '')}"))
            continue
        target = dest / run.relative_to(sweep)
        changed = False
        for name in FILES:
            if (run / name).is_file() and not (
                (target / name).is_file() and filecmp.cmp(run / name, target / name, shallow=False)
            ):
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(run / name, target / name)
                changed = True
        if changed:
            added.append(target)
    return added, left


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "sweep", type=Path, help="the sweep directory (or any folder of run directories)"
    )
    ap.add_argument(
        "dest", type=Path, help="where the runs' files go, e.g. docs/results/<study>/runs"
    )
    args = ap.parse_args()
    if not args.sweep.is_dir():
        sys.exit(f"error: {args.sweep}: no such directory")
    try:
        added, left = collect(args.sweep, args.dest)
    except OSError as e:  # a read-only or full destination
        sys.exit(f"error: could not copy into {args.dest} ({e.strerror or e}{': ' + e.filename if e.filename else ''})"
                 "; choose a destination you can write to")
    total = len(list(args.dest.rglob("metrics.json"))) if args.dest.exists() else 0
    print(f"{total} completed run(s) in {args.dest}; {len(added)} added or updated now")
    for run, why in left:
        print(f"  left out {run.relative_to(args.sweep)}: {why}")


if __name__ == "__main__":
    quiet_if_the_reader_goes()  # `| head`: the report stops there, the work goes on
    main()
