"""Measure what a study profile costs on this machine: every step's training images/s through the
real loop.

    python scripts/measure_study.py --threads 1 regime=femto data=fashion_mnist model.stem_stride=2
    python scripts/measure_study.py --threads 2 --steps macro/patchify micro/separate_downsample regime=femto ...

    python scripts/measure_study.py --estimate a.json b.json --epochs 3 --seeds 3 --jobs 2  # its length

Each step is built as `run.py` builds it (the same config, data, pipeline, augmentation,
Mixup/CutMix and optimizer) and trained for `--iters` iterations after `--warmup` untimed ones by
the training loop itself (`train_steps`, as a run calls it); evaluation is timed apart on
`--eval-batches` batches. Two copies started side by side (one thread each) measure the throughput
of a sweep that runs two jobs at once. Prints one line per step and writes a JSON list to --out.
`--estimate` reads such files (the mean of several, per step) and prints the study's wall time: each
run trains `--epochs` epochs of the measured training set and evaluates after each, plus
`--overhead` seconds (start-up, W&B, checkpoints), `--jobs` runs at a time."""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import torch

from roadmap import load_config, roadmap_steps
from roadmap.files import quiet_if_the_reader_goes
from roadmap.train.distributed import Context
from roadmap.train.loop import evaluate, train_steps
from roadmap.train.meter import Meter
from roadmap.train.trainer import build_trainer


def measure(step: str, overrides: list[str], iters: int, warmup: int, eval_batches: int) -> dict:
    cfg = load_config(step, [*overrides, "wandb=disabled"])
    ctx = Context(0, 1, torch.device("cpu"))
    t = build_trainer(cfg, ctx, None)
    train_steps(
        cfg, ctx, replace(t, iters=warmup), Meter(cfg, ctx, warmup, f"{step} warm-up"), 0, 0
    )
    row, _ = train_steps(
        cfg, ctx, replace(t, iters=iters), Meter(cfg, ctx, iters, f"{step} timed"), 1, warmup
    )
    t0 = time.perf_counter()
    evaluate(t.eval_net, t.val_batches, ctx, t.autocast, eval_batches)
    eval_s = time.perf_counter() - t0
    return {
        "step": step,
        "train_images_per_s": row["images_per_s"],
        "iters": iters,
        "batch_size": cfg.train.batch_size,
        "eval_images_per_s": eval_batches * cfg.eval_batch_size / eval_s,
        "train_images": len(t.train_batches) * cfg.train.batch_size,
        "threads": torch.get_num_threads(),
    }


def estimate(
    paths: list[str], epochs: int, seeds: int, jobs: int, eval_images: int, overhead: float
) -> float:
    """The study's wall time in hours from measure_study JSON files (rates averaged over the files
    per step)."""
    runs = [json.load(open(p))["steps"] for p in paths]
    total = 0.0
    for per_file in zip(*runs):
        train = sum(r["train_images_per_s"] for r in per_file) / len(per_file)
        evals = sum(r["eval_images_per_s"] for r in per_file) / len(per_file)
        run_s = epochs * (per_file[0]["train_images"] / train + eval_images / evals) + overhead
        total += seeds * run_s
        print(f"{per_file[0]['step']:28s} {run_s / 60:6.1f} min a run")
    hours = total / jobs / 3600
    print(f"{len(runs[0])} steps x {seeds} seeds, {epochs} epochs, {jobs} at a time: {hours:.2f} h")
    return hours


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--estimate", nargs="+", metavar="JSON", help="print the study's length from these files"
    )
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument(
        "--jobs", type=int, default=2, help="runs side by side (1 for a single multi-thread run)"
    )
    ap.add_argument("--eval-images", type=int, default=10_000)
    ap.add_argument(
        "--overhead", type=float, default=25.0, help="seconds a run spends outside its epochs"
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", nargs="+", default=["all"])
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--eval-batches", type=int, default=10)
    ap.add_argument("--out", default=None)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    if args.estimate:
        estimate(args.estimate, args.epochs, args.seeds, args.jobs, args.eval_images, args.overhead)
        return
    torch.set_num_threads(args.threads)
    regime = next((o.split("=", 1)[1] for o in args.overrides if o.startswith("regime=")), "r50")
    steps = [s.name for s in roadmap_steps(regime)] if args.steps == ["all"] else args.steps
    out = []
    for step in steps:
        r = measure(step, args.overrides, args.iters, args.warmup, args.eval_batches)
        out.append(r)
        print(f"{step:28s} train {r['train_images_per_s']:7.1f} images/s  eval {r['eval_images_per_s']:7.1f} images/s",
              flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                {"overrides": args.overrides, "threads": args.threads, "steps": out}, f, indent=2
            )


if __name__ == "__main__":
    quiet_if_the_reader_goes()  # `| head`: the report stops there, the work goes on
    main()
