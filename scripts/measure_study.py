"""Measure what a study profile costs on this machine: every step's training images/s through the real loop.

    python scripts/measure_study.py --threads 1 regime=femto data=fashion_mnist model.stem_stride=2
    python scripts/measure_study.py --threads 2 --steps macro/patchify micro/separate_downsample regime=femto ...

Each step is built as `run.py` builds it (the same config, data, pipeline, augmentation, Mixup/CutMix and
optimizer) and trained for `--iters` iterations after `--warmup` untimed ones by `train_epoch` itself; evaluation
is timed apart on `--eval-batches` batches (the training loop as `train_epoch` runs it: `train_steps`). Two copies started side by side (one thread each) measure the
throughput of a sweep that runs two jobs at once. Prints one line per step and writes a JSON list to --out.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import torch

from roadmap import load_config, roadmap_steps
from roadmap.distributed import Context
from roadmap.train import build_trainer, evaluate, train_steps


def measure(step: str, overrides: list[str], iters: int, warmup: int, eval_batches: int) -> dict:
    cfg = load_config(step, [*overrides, "wandb=disabled"])
    ctx = Context(0, 1, torch.device("cpu"))
    t = build_trainer(cfg, ctx, None)
    train_steps(cfg, ctx, replace(t, iters=warmup), 0, 0, f"{step} warm-up")
    row, _ = train_steps(cfg, ctx, replace(t, iters=iters), 1, warmup, f"{step} timed")
    t0 = time.perf_counter()
    evaluate(t.eval_net, t.val_loader, ctx, t, eval_batches)
    eval_s = time.perf_counter() - t0
    return {"step": step, "train_images_per_s": row["images_per_s"], "iters": iters,
            "batch_size": cfg.train.batch_size, "eval_images_per_s": eval_batches * cfg.train.batch_size / eval_s,
            "train_images": len(t.train_loader) * cfg.train.batch_size, "threads": torch.get_num_threads()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", nargs="+", default=["all"])
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--eval-batches", type=int, default=10)
    ap.add_argument("--out", default=None)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
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
            json.dump({"overrides": args.overrides, "threads": args.threads, "steps": out}, f, indent=2)


if __name__ == "__main__":
    main()
