"""Training throughput (forward + backward + optimizer step) and peak memory of roadmap steps.

    python scripts/benchmark.py                                   # ResNet-50 and ConvNeXt-T steps, 224x224
    python scripts/benchmark.py --reference --precision bf16 --memory-format channels_last --compile
    python scripts/benchmark.py --steps all --batch-size 256      # every step
    python scripts/benchmark.py --data fashion_mnist_small --resolution 32   # also through the real loader

Each model is timed in one process under identical settings: random data already on the device, AdamW (fused
on CUDA), cross-entropy; `--warmup` untimed iterations (compilation included), then the median images/s of
`--windows` device-synchronised windows of `--iters` iterations. `--reference` adds timm convnext_tiny and
torchvision resnet50 and prints our/reference ratios. `--data NAME` also trains on the real data pipeline (the
step's own recipe: augmentation and Mixup) and prints its images/s as a fraction of the synthetic figure.
Writes benchmark.json and benchmark.md into --out.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from contextlib import nullcontext
from datetime import datetime, timezone
from pathlib import Path

import timm
import torch
import torchvision

from roadmap import build_model, load_config, roadmap_steps
from roadmap.data import build_datasets, build_loaders, to_device
from roadmap.recipe import build_loss, build_mixup

PAIRS = {"micro/separate_downsample": "timm/convnext_tiny", "baseline/resnet50": "torchvision/resnet50"}


def make_model(name: str, num_classes: int) -> torch.nn.Module:
    if name == "timm/convnext_tiny":
        return timm.create_model("convnext_tiny", pretrained=False, num_classes=num_classes)
    if name == "torchvision/resnet50":
        return torchvision.models.resnet50(num_classes=num_classes)
    return build_model(load_config(name, [f"model.num_classes={num_classes}", "model.drop_path=0"]))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # process peak RSS, KiB -> GiB


def time_training(model, batches, args, device) -> dict:
    """Median images/s over timed windows; `batches()` yields (x, y) on the device."""
    fmt = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    model = model.to(device, memory_format=fmt).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    net = torch.compile(model) if args.compile else model
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if args.precision == "bf16" else nullcontext()
    loss_fn = batches.loss

    def step(x, y):
        with autocast:
            loss = loss_fn(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    it = iter(batches)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(args.warmup):
        step(*next(it))
    sync(device)
    rates = []
    for _ in range(args.windows):
        t0 = time.perf_counter()
        n = 0
        for _ in range(args.iters):
            x, y = next(it)
            step(x, y)
            n += x.shape[0]
        sync(device)
        rates.append(n / (time.perf_counter() - t0))
    return {"images_per_s": statistics.median(rates), "windows": rates, "peak_memory_gb": peak_memory_gb(device)}


class Synthetic:
    """The same random batch again and again, already on the device: the model alone is timed."""

    def __init__(self, args, device, fmt):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(args.batch_size, 3, args.resolution, args.resolution, generator=g).to(
            device, memory_format=fmt)
        self.y = torch.randint(0, args.num_classes, (args.batch_size,), generator=g).to(device)
        self.loss = torch.nn.CrossEntropyLoss()

    def __iter__(self):
        while True:
            yield self.x, self.y


class RealData:
    """The runner's pipeline: the dataset, its augmentation and loader, Mixup, the recipe's loss."""

    def __init__(self, step, args, device, fmt):
        cfg = load_config(step, [f"data={args.data}", f"data.resolution={args.resolution}",
                                 f"train.batch_size={args.batch_size}", f"data.num_workers={args.workers}"])
        train, val = build_datasets(cfg)
        self.loader, _ = build_loaders(cfg, train, val, rank=0, world=1, pin=device.type == "cuda")
        self.mixup = build_mixup(cfg)
        self.loss = build_loss(cfg, self.mixup)
        self.num_classes, self.device, self.channels_last = cfg.data.num_classes, device, fmt == torch.channels_last

    def __iter__(self):
        epoch = 0
        while True:
            self.loader.sampler.set_epoch(epoch)
            for batch in self.loader:
                x, y = to_device(batch, self.device, self.channels_last)
                yield self.mixup(x, y) if self.mixup is not None else (x, y)
            epoch += 1


def environment(device: torch.device) -> dict:
    env = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "device": str(device),
           "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
           "torch_threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__,
           "torchvision": torchvision.__version__, "timm": timm.__version__}
    if device.type == "cuda":
        env.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version())
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", nargs="+", default=list(PAIRS), help="step names, or 'all'")
    ap.add_argument("--reference", action="store_true", help="also time timm convnext_tiny and torchvision resnet50")
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=None, help="default 128 on CUDA, 16 on the CPU")
    ap.add_argument("--num-classes", type=int, default=1000)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--memory-format", choices=["contiguous", "channels_last"], default="contiguous")
    ap.add_argument("--compile", action="store_true", help="torch.compile each model")
    ap.add_argument("--warmup", type=int, default=None, help="untimed iterations (default 10 on CUDA, 2 on CPU)")
    ap.add_argument("--windows", type=int, default=5)
    ap.add_argument("--iters", type=int, default=None, help="iterations per window (default 20 CUDA, 3 CPU)")
    ap.add_argument("--data", help="also time the real pipeline of this data group (e.g. cifar100)")
    ap.add_argument("--workers", type=int, default=8, help="loader workers with --data")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, default=Path("outputs/benchmark"))
    args = ap.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    args.batch_size = args.batch_size or (128 if cuda else 16)
    args.warmup = args.warmup if args.warmup is not None else (10 if cuda else 2)
    args.iters = args.iters or (20 if cuda else 3)
    if cuda:
        torch.backends.cudnn.benchmark = True
    steps = [s.name for s in roadmap_steps()] if args.steps == ["all"] else args.steps
    names = steps + ([PAIRS[s] for s in steps if s in PAIRS] if args.reference else [])
    fmt = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    settings = {k: getattr(args, k) for k in ("resolution", "batch_size", "precision", "memory_format", "compile",
                                              "warmup", "windows", "iters", "data")}
    results = []
    for name in names:
        torch.manual_seed(0)
        r = {"model": name} | time_training(make_model(name, args.num_classes), Synthetic(args, device, fmt),
                                            args, device)
        if args.data and name in steps:
            torch.manual_seed(0)
            real_batches = RealData(name, args, device, fmt)
            real = time_training(make_model(name, real_batches.num_classes), real_batches, args, device)
            r |= {"real_images_per_s": real["images_per_s"], "real_fraction": real["images_per_s"] / r["images_per_s"]}
        results.append(r)
        print(f"{name:28s} {r['images_per_s']:9.1f} images/s  peak {r['peak_memory_gb']:.2f} GiB"
              + (f"  real data {r['real_images_per_s']:.1f} images/s = {r['real_fraction']:.2f} of synthetic"
                 if "real_fraction" in r else ""), flush=True)
    by = {r["model"]: r for r in results}
    ratios = {s: by[s]["images_per_s"] / by[ref]["images_per_s"] for s, ref in PAIRS.items() if s in by and ref in by}
    for s, ratio in ratios.items():
        print(f"ratio {s} / {PAIRS[s]}: {ratio:.3f}")
    report = {"environment": environment(device), "settings": settings, "results": results, "ratios": ratios,
              "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "benchmark.json").write_text(json.dumps(report, indent=2))
    env = report["environment"]
    lines = [f"`python {report['command']}` on {env.get('gpu', env['cpu'])} ({env['device']}, {env['cpu_count']} "
             f"CPUs), torch {env['torch']}, timm {env['timm']}, torchvision {env['torchvision']}, {env['date']}",
             "", f"Settings: {json.dumps(settings)}", "",
             "| model | images/s | peak memory (GiB) | real-data images/s | real / synthetic |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['model']} | {r['images_per_s']:.1f} | {r['peak_memory_gb']:.2f} | "
                     f"{r.get('real_images_per_s', float('nan')):.1f} | {r.get('real_fraction', float('nan')):.2f} |")
    lines += [""] + [f"- {s} / {PAIRS[s]}: **{v:.3f}**" for s, v in ratios.items()]
    (args.out / "benchmark.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
