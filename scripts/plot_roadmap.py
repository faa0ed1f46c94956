"""The paper's Figure 2 from your runs: roadmap.png/.svg, roadmap.csv and roadmap.md.

    python scripts/plot_roadmap.py outputs/sweeps/cifar100-short-r50  # every metrics.json below
    python scripts/plot_roadmap.py --wandb ENTITY/PROJECT --group cifar100-short-r50
    python scripts/plot_roadmap.py SWEEP_DIR --out figures/ --metric best_top1
    python scripts/plot_roadmap.py SWEEP_DIR --log-wandb  # also a W&B run of job_type chart
    python scripts/plot_roadmap.py SWEEP_DIR --variant model.kernel_size=5  # a side sweep's runs

Two panels that share the steps, in paper order. Left: the mean top-1 over seeds with its 95% t
interval, on an axis fitted to the data; side branches (kernel 5, 9, 11) hollow. Right: each step's
change from the previous adopted step in points, with the paired t interval over seeds (filled where
it excludes zero) and the paired bootstrap over seeds and test images, beside the paper's
ImageNet-1K change on the same axis; the sign agreement and Spearman's rank correlation with the
paper in its title. roadmap.md and roadmap.csv add GMACs and images/s (roadmap_agreement.csv the
agreement). Steps with no completed run are shown as such; failed, killed and damaged runs are
counted and named, never charted.

Records of one variant are charted: by default the one that covers the most steps, so runs of a side
sweep into the same folder (`-m step=micro/gelu model.kernel_size=5`) are left out and named;
`--variant` picks another.

A leave-one-out sweep (`+sweep=leave_one_out`) gives leave_one_out.png/.svg/.csv/.md instead: the
change from the full model when each step is undone, with its 95% interval, beside the paper's gain
when the step was adopted."""
import argparse
import sys
from pathlib import Path

from roadmap.analysis import leave_one_out
from roadmap.analysis.publish import log_to_wandb
from roadmap.analysis.read import (
    check_predictions,
    choose_variant,
    describe_left_out,
    one_per_run,
    readable,
    records_from_dirs,
    records_from_wandb,
)
from roadmap.analysis.roadmap import chart_roadmap, compare_with_paper
from roadmap.files import quiet_if_the_reader_goes
from roadmap.record import RunRecord


def wandb_group(args, records: list[RunRecord]) -> str:
    """The sweep's W&B group: --group, else the one its runs were logged in, else the sweep folder's
    name."""
    groups = {r.wandb_group for r in records} - {None}
    if args.group or len(groups) == 1:
        return args.group or groups.pop()
    r = records[0]
    return f"{r.data}-{r.budget}-{r.regime}" + ("-leave_one_out" * bool(r.undo))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "paths", nargs="*", type=Path, help="sweep or run directories to search for metrics.json"
    )
    ap.add_argument(
        "--wandb", metavar="ENTITY/PROJECT", help="read the runs from the W&B API instead"
    )
    ap.add_argument("--group", help="with --wandb: the sweep's W&B group")
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: beside the runs, the first "
        "folder given; with --wandb, outputs/charts/<group>)",
    )
    ap.add_argument("--metric", choices=["final_top1", "best_top1"], default="final_top1")
    ap.add_argument("--variant", default=None, help="chart the runs of this variant (the overrides that name its "
                    "run directories, e.g. 'model.kernel_size=5'; '' for the steps as they are); default: the variant "
                    "with the most steps, the others named as left out")
    ap.add_argument(
        "--log-wandb",
        action="store_true",
        help="log the chart and table as a W&B run of job_type "
        "chart in the sweep's group (offline without an API key)",
    )
    ap.add_argument("--wandb-project", default="roadmap", help="with --log-wandb: the W&B project")
    ap.add_argument("--wandb-entity", default=None, help="with --log-wandb: the W&B entity")
    args = ap.parse_args()
    if bool(args.paths) == bool(args.wandb) or (args.wandb and not args.group):
        ap.error("give sweep directories, or --wandb ENTITY/PROJECT with --group G")
    # beside the sweep it charts, so that charting a second sweep keeps the first's chart
    if args.out is None:
        args.out = args.paths[0] if args.paths else Path("outputs/charts") / args.group
    try:
        records = (
            records_from_wandb(args.wandb, args.group)
            if args.wandb
            else records_from_dirs(args.paths)
        )
        records, copies = one_per_run(records)
        records, variant, left = choose_variant(records, args.variant)
        notes = describe_left_out(left) + copies + check_predictions(records)
        good = readable(records)
        reverse = any(r.undo for r in good)  # a leave-one-out sweep
        if reverse:
            rows, failed = leave_one_out.chart_leave_one_out(records, args.out, args.metric, notes)
        else:
            rows, failed = chart_roadmap(records, args.out, args.metric, notes)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    except OSError as e:  # --out read-only, full, or under a file
        sys.exit(f"error: could not write the chart into --out {args.out} ({e.strerror or e}); choose another folder")
    except Exception as e:  # the W&B API: no key, no network, no such project
        if not args.wandb or "wandb" not in type(e).__module__:
            raise
        sys.exit(f"error: --wandb {args.wandb} could not be read ({type(e).__name__}: {str(e).splitlines()[0]}). "
                 "Log in with `wandb login` (or set WANDB_API_KEY), or chart the local records instead: "
                 "python scripts/plot_roadmap.py outputs/sweeps/<data>-<budget>-<regime>")
    for note in notes:
        print(note)
    if reverse:
        ran = sum(r.n > 0 for r in rows[1:])
        print(f"leave one out: {sum(r.n for r in rows)} completed runs over {ran} of {len(rows) - 1} undone steps "
              f"and {'the' if rows[0].n else 'no run of the'} full model, {len(failed)} failed; wrote "
              f"{', '.join(str(args.out / f'leave_one_out.{e}') for e in ('png', 'svg', 'csv', 'md'))}")
        if args.log_wandb:
            group = wandb_group(args, records)
            where = log_to_wandb(rows, {}, args.out, group, args.wandb_project, args.wandb_entity,
                                 chart="leave_one_out", columns=leave_one_out.COLUMNS)
            print(f"W&B chart run in group {group}: {where or 'not logged (W&B unavailable)'}")
        return
    done = sum(r.n for r in rows)
    missing = [r.step for r in rows if r.n == 0]
    print(f"{done} completed runs over {len(rows) - len(missing)} of {len(rows)} steps, {len(failed)} failed; "
          f"wrote {', '.join(str(args.out / f'roadmap.{e}') for e in ('png', 'svg', 'csv', 'md'))}")
    if missing:
        print(f"no completed run: {', '.join(missing)}")
    if args.log_wandb:
        group = wandb_group(args, records)
        where = log_to_wandb(
            rows, compare_with_paper(rows), args.out, group, args.wandb_project, args.wandb_entity
        )
        print(f"W&B chart run in group {group}: {where or 'not logged (W&B unavailable)'}")


if __name__ == "__main__":
    quiet_if_the_reader_goes()  # `| head`: the report stops there, the work goes on
    main()
