"""Where a sweep stands, running or stopped: one row per step and variant (seeds, mean final top-1,
statuses), then what is running (epochs done, time left), what failed or was killed and why.

    python scripts/status.py outputs/sweeps/fashion_mnist-femto_converged-femto
    python scripts/status.py SWEEP_DIR --csv table.csv        # the table as CSV too
    python scripts/status.py SWEEP_DIR --epochs      # and the top-1 of each completed run's epochs

Reads every metrics.json below the folders (a damaged one is named); a run whose record says running
while no process holds it is shown as killed. The time left of a running run is its mean epoch time
times the epochs it has left (until its first epoch ends, unknown). The last line adds up the completed runs'
epoch times (training and evaluation, as their records count them; start-up left out): a sweep of two jobs side by
side takes about half of it on the clock."""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from roadmap.analysis.read import records_from_dirs
from roadmap.errors import WriteFailed
from roadmap.files import quiet_if_the_reader_goes
from roadmap.record import RunRecord, clock, print_table, runs_table, write_table


def time_left(r: RunRecord) -> float | None:
    times = [row.epoch_time_s for row in r.history if row.epoch_time_s]
    if not times or r.epochs is None:
        return None
    return statistics.fmean(times) * max(0, r.epochs - r.epochs_done)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("paths", nargs="+", type=Path, help="sweep (or run) directories")
    ap.add_argument("--csv", type=Path, help="also write the table here")
    ap.add_argument("--epochs", action="store_true",
                    help="also each completed run's top-1 after every epoch and its wall time")
    args = ap.parse_args()
    try:
        records = records_from_dirs(args.paths)
    except FileNotFoundError as e:
        sys.exit(f"error: {e}")
    if not records:
        sys.exit(f"error: no run record (metrics.json) under {', '.join(map(str, args.paths))}")
    rows = runs_table(records)
    print_table(rows, sys.stdout)
    running = [r for r in records if r.status == "running"]
    for r in running:
        print(f"running: {r.path}: epoch {r.epochs_done} of {r.epochs} done, about {clock(time_left(r))} left")
    if running:
        print(f"time left of the running runs: about {clock(max((time_left(r) or 0) for r in running))} "
              f"(runs not started yet are not counted)")
    for r in records:
        if r.status in ("failed", "killed", "interrupted", "unreadable"):
            print(f"{r.status}: {r.path}: {r.reason or ''}")
    completed = [r for r in records if r.status == "completed"]
    if args.epochs:
        for r in sorted(completed, key=lambda r: (str(r.step), r.seed or 0)):
            top1 = ", ".join(f"{h.val_top1:.2f}" for h in r.history)
            minutes = round((r.wall_time_s or 0) / 60)
            print(f"{r.step} seed {r.seed}: top-1 after each epoch {top1}; {minutes} min")
    other = len(records) - len(completed) - len(running)
    spent = sum(r.wall_time_s or 0.0 for r in completed)
    print(f"{len(records)} run(s): {len(completed)} completed, {len(running)} running, {other} other; "
          f"the completed runs' epochs took {clock(spent)} (h:mm:ss) in all, one after another")
    if args.csv:
        try:
            write_table(rows, args.csv)
        except WriteFailed as e:
            sys.exit(f"error: {e}")


if __name__ == "__main__":
    quiet_if_the_reader_goes()  # `| head`: the report stops there, the work goes on
    main()
