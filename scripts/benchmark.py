"""Training throughput (forward + backward + optimizer step) and peak memory of roadmap steps.

    python scripts/benchmark.py                                   # ResNet-50 and ConvNeXt-T steps, 224x224
    python scripts/benchmark.py --reference --precision bf16 --memory-format channels_last --compile
    python scripts/benchmark.py --steps all --batch-size 256      # every step
    python scripts/benchmark.py --data fashion_mnist_small --resolution 32 --pipeline device  # the real pipeline
    python scripts/benchmark.py --augment-only --data fashion_mnist_small --resolution 32    # augmentation alone
    python scripts/benchmark.py --loop --data fashion_mnist_small --resolution 32 --steps micro/gelu  # the loop's cost

Every model is timed in one process under identical settings: random data already on the device,
AdamW (fused on CUDA), cross-entropy. Each gets `--warmup` untimed iterations (compilation
included); then the models' timed windows of `--iters` device-synchronised iterations are
interleaved (A, B, A, B, ...) so that a noisy machine slows all of them alike, and each ratio is
reported as the median over the window pairs with its spread (min to max). `--reference` adds timm
convnext_tiny and torchvision resnet50 and prints our/reference ratios. `--data NAME` also trains
each step on the real pipeline (`--pipeline workers|device`; the step's recipe: augmentation and
Mixup) and prints its images/s as a fraction of the synthetic figure, measured in interleaved
windows too. `--augment-only` times making augmented batches alone, the workers pipeline
(`--workers` processes) beside the device pipeline, each while the other is idle, in images/s and
images/s per core. `--loop` times our training loop (`train_steps`: the recipe, checks, progress
bar, W&B points) against a plain PyTorch loop over the same model, batches and optimizer, in
interleaved windows, and evaluation apart. Writes benchmark.json (and benchmark.md) into --out."""
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
from roadmap.data.pipelines import build_batches, device_rate, workers_rate
from roadmap.data.sources import build_datasets
from roadmap.files import quiet_if_the_reader_goes
from roadmap.train.checkpoint import git_commit
from roadmap.train.recipe import build_loss, build_mixup

# each regime's first and last step against the reference implementation of the same network
REFERENCES = {
    "r50": {"micro/separate_downsample": "timm/convnext_tiny", "baseline/resnet50": "torchvision/resnet50"},
    "r200": {"micro/separate_downsample": "timm/convnext_base", "baseline/resnet50": "timm/resnet200"},
    # timm's ResNet of the femto baseline's shape keeps a 64-channel stem (ours has 32): 0.2% more
    # weights
    "femto": {"micro/separate_downsample": "timm/convnext_femto", "baseline/resnet50": "timm/resnet_femto"},
}
# --compare: each step timed both ways, (label, settings) for the first and the second
COMPARE = {"compile": (("eager", {"compile": False}), ("compiled", {"compile": True})),
           "memory-format": (("contiguous", {"memory_format": "contiguous"}),
                             ("channels_last", {"memory_format": "channels_last"}))}


def make_model(name: str, num_classes: int, regime: str) -> torch.nn.Module:
    if name == "torchvision/resnet50":
        return torchvision.models.resnet50(num_classes=num_classes)
    if name == "timm/resnet_femto":
        from timm.models.resnet import Bottleneck, ResNet
        return ResNet(
            Bottleneck, [2, 3, 4, 2], channels=(32, 64, 128, 256), num_classes=num_classes
        )
    if name.startswith("timm/"):
        return timm.create_model(name.split("/", 1)[1], pretrained=False, num_classes=num_classes)
    return build_model(load_config(name, [f"regime={regime}", f"model.num_classes={num_classes}",
                                          "model.drop_path=0"]))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    # process peak RSS, KiB -> GiB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def prepare_training(model, batches, args, device):
    """Warm `model` up on `batches` (which yield (x, y) on the device); returns (a function that
    times one window and returns its images/s, the peak memory of this model's warm-up in GiB)."""
    fmt = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    before = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    model = model.to(device, memory_format=fmt).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    net = torch.compile(model) if args.compile else model
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if args.precision == "bf16"
        else nullcontext()
    )
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
    peak = peak_memory_gb(device) - before / 2**30

    def window() -> float:
        t0, n = time.perf_counter(), 0
        for _ in range(args.iters):
            x, y = next(it)
            step(x, y)
            n += x.shape[0]
        sync(device)
        return n / (time.perf_counter() - t0)
    return window, peak


def interleaved(windows: dict, count: int) -> dict:
    """Time every entry's window in turn, `count` rounds: {name: [images/s per round]}."""
    rates = {name: [] for name in windows}
    for _ in range(count):
        for name, window in windows.items():
            rates[name].append(window())
    return rates


def ratio(a: list[float], b: list[float]) -> dict:
    """The ratio of two interleaved series: median over the window pairs and its spread."""
    r = [x / y for x, y in zip(a, b)]
    return {"median": statistics.median(r), "min": min(r), "max": max(r), "pairs": len(r)}


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


def one_step(args) -> str:
    """The step that a one-step mode (--augment-only, --loop) times: the first named, or the last of
    all."""
    return "micro/separate_downsample" if args.all_steps else args.steps[0]


def data_overrides(args, pipeline: str) -> list[str]:
    """A run's settings for the real data of --data, as the benchmark's arguments give them."""
    return [
        f"regime={args.regime}",
        f"data={args.data}",
        f"data.resolution={args.resolution}",
        f"train.batch_size={args.batch_size}",
        f"data.num_workers={args.workers}",
        f"data.pipeline={pipeline}",
        *([f"data.root={args.data_root}"] if args.data_root else []),
    ]


class RealData:
    """The runner's pipeline: the dataset, its augmentation on `pipeline`, Mixup, the recipe's
    loss."""

    def __init__(self, step, args, device, fmt, pipeline: str, mixup: bool = True):
        cfg = load_config(step, data_overrides(args, pipeline))
        self.cfg, (self.train, self.val) = cfg, build_datasets(cfg)
        self.batches, _, _, _ = build_batches(
            cfg, self.train, self.val, 0, 1, device, fmt == torch.channels_last
        )
        self.mixup = build_mixup(cfg) if mixup else None
        self.loss = build_loss(cfg, self.mixup)
        self.num_classes = cfg.data.num_classes

    def __iter__(self):
        epoch = 0
        while True:
            self.batches.set_epoch(epoch)
            for x, y in self.batches:
                yield self.mixup(x, y) if self.mixup is not None else (x, y)
            epoch += 1


def augment_only(args, device) -> dict:
    """Augmented batches alone, each pipeline timed while the other is idle: no loader worker lives
    during the device pipeline's windows (checked), and each workers window starts its workers
    afresh and times them in steady state only (roadmap.data.pipelines.workers_rate). Images/s, and
    per core used: the workers, or the torch threads, never more than the cores that exist."""
    import multiprocessing as mp
    step = one_step(args)
    fmt = torch.contiguous_format
    device_data = RealData(step, args, device, fmt, "device", mixup=False)
    # timm's transforms
    dataset = RealData(step, args, device, fmt, "workers", mixup=False).batches.loader.dataset
    here = os.cpu_count() or 1
    cores = {"workers": min(max(args.workers, 1), here),
             "device": 1 if device.type == "cuda" else min(torch.get_num_threads(), here)}
    alive = []  # loader workers alive during each device window

    def device_window() -> float:
        alive.append(len(mp.active_children()))
        return device_rate(device_data.batches, args.iters)

    rates = interleaved(
        {
            "workers": lambda: workers_rate(dataset, args.batch_size, args.workers, args.iters),
            "device": device_window,
        },
        args.windows,
    )
    out = {
        p: {
            "images_per_s": statistics.median(r),
            "cores": cores[p],
            "images_per_s_per_core": statistics.median(r) / cores[p],
            "windows": r,
        }
        for p, r in rates.items()
    }
    out["device"]["workers_alive_in_windows"] = max(alive)
    per_core = ratio(
        [x / cores["device"] for x in rates["device"]],
        [x / cores["workers"] for x in rates["workers"]],
    )
    for p, r in out.items():
        print(f"{p:8s} {r['images_per_s']:9.1f} images/s on {r['cores']} core(s): {r['images_per_s_per_core']:.1f} "
              "per core", flush=True)
    print(f"device / workers per core: {per_core['median']:.2f} (spread {per_core['min']:.2f} to "
          f"{per_core['max']:.2f} over {per_core['pairs']} window pairs)")
    return {"augment_only": out, "device_over_workers_per_core": per_core}


def compare_ways(args, device) -> dict:
    """Each step two ways (--compare), on the same random batch, all windows interleaved: images/s
    both ways and the second over the first per step, as the median over window pairs with its
    spread."""
    (first, a), (second, b) = COMPARE[args.compare]
    steps, windows = args.steps, {}
    for step in steps:
        for label, change in ((first, a), (second, b)):
            way = argparse.Namespace(**(vars(args) | change))
            fmt = (
                torch.channels_last
                if way.memory_format == "channels_last"
                else torch.contiguous_format
            )
            torch.manual_seed(0)
            model = make_model(step, args.num_classes, args.regime)
            windows[(step, label)], _ = prepare_training(
                model, Synthetic(way, device, fmt), way, device
            )
    rates = interleaved(windows, args.windows)
    rows = []
    for step in steps:
        r = ratio(rates[(step, second)], rates[(step, first)])
        rows.append({"step": step, first: statistics.median(rates[(step, first)]),
                     second: statistics.median(rates[(step, second)]), f"{second}_over_{first}": r,
                     "windows": {first: rates[(step, first)], second: rates[(step, second)]}})
        print(f"{step:28s} {first} {rows[-1][first]:8.1f}  {second} {rows[-1][second]:8.1f} images/s  "
              f"{second} / {first} {r['median']:.3f} ({r['min']:.3f} to {r['max']:.3f})", flush=True)
    faster = sum(row[f"{second}_over_{first}"]["median"] > 1 for row in rows)
    print(f"{second} faster for {faster} of {len(rows)} steps (median over window pairs)")
    return {"compare": args.compare, "rows": rows, "faster_for": faster}


def loop_overhead(args, device) -> dict:
    """Our training loop against a plain PyTorch one, on the same model, optimizer and real batches.
    Ours is `train_steps` as a run calls it: the step's recipe (Mixup/CutMix, the scheduler stepped
    every iteration, EMA where the recipe has it), signal and loss checks, the progress bar, and W&B
    points every `wandb.log_every` iterations (an offline run under --out). The plain loop: mixup,
    forward, loss, zero_grad, backward, step. Window i of each makes the same batches (the same
    epoch of the device pipeline, or a fresh pass of the loader workers); evaluation (`evaluate`,
    inference mode, its own batch size) is timed apart."""
    from dataclasses import replace

    from roadmap.enums import WandbMode
    from roadmap.schema import WandbConfig
    from roadmap.train.distributed import Context
    from roadmap.train.loop import evaluate, train_steps
    from roadmap.train.meter import Meter
    from roadmap.train.tracking import Tracker
    from roadmap.train.trainer import build_trainer
    step = one_step(args)
    cfg = load_config(
        step,
        [
            *data_overrides(args, args.pipeline),
            f"system.compile={args.compile}",
            f"system.channels_last={args.memory_format == 'channels_last'}",
            f"system.amp={args.precision == 'bf16'}",
            f"system.device={device.type}",
        ],
    )
    ctx = Context(0, 1, device)
    t = replace(build_trainer(cfg, ctx, None), iters=args.iters)
    tracker = Tracker(WandbConfig(mode=WandbMode.offline, log_every=cfg.wandb.log_every, console=cfg.wandb.console),
                      args.out, f"benchmark/{step}", None, {"benchmark": "loop"}, None, job_type="benchmark")
    global_step = [0]
    meter = Meter(cfg, ctx, t.iters, f"{step} ours", tracker=tracker)

    def ours(epoch: int) -> float:
        t0 = time.perf_counter()
        _, global_step[0] = train_steps(cfg, ctx, t, meter, epoch, global_step[0])
        sync(device)
        return args.iters * args.batch_size / (time.perf_counter() - t0)

    def plain(epoch: int) -> float:
        t.train_batches.set_epoch(epoch)
        t.net.train()
        t0 = time.perf_counter()
        for i, (x, y) in enumerate(t.train_batches):
            if i >= args.iters:
                break
            if t.mixup is not None:
                x, y = t.mixup(x, y)
            with t.autocast:
                loss = t.criterion(t.net(x), y)
            t.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            t.optimizer.step()
        sync(device)
        return args.iters * args.batch_size / (time.perf_counter() - t0)

    for w in range(args.warmup):  # compilation and the first passes, untimed
        ours(1000 + w), plain(1000 + w)
    rates = {"ours": [], "plain": []}
    for w in range(args.windows):  # ours and plain on the same epoch's batches, turn about
        rates["ours"].append(ours(w))
        rates["plain"].append(plain(w))
    tracker.finish()
    r = ratio(rates["ours"], rates["plain"])
    ev = evaluate(t.eval_net, t.val_batches, ctx, t.autocast, max(1, args.iters))
    print(f"ours {statistics.median(rates['ours']):.1f} images/s, plain {statistics.median(rates['plain']):.1f}: "
          f"ours / plain {r['median']:.3f} (spread {r['min']:.3f} to {r['max']:.3f} over {r['pairs']} window pairs); "
          f"evaluation {ev.images_per_s:.1f} images/s in batches of {cfg.eval_batch_size}", flush=True)
    return {"loop": {"step": step, "ours": rates["ours"], "plain": rates["plain"], "ours_over_plain": r,
                     "pipeline": t.pipeline, "eval_images_per_s": ev.images_per_s,
                     "eval_batch_size": cfg.eval_batch_size, "log_every": cfg.wandb.log_every}}


def environment(device: torch.device) -> dict:
    env = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": str(device),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "timm": timm.__version__,
        "commit": git_commit(),
    }
    if device.type == "cuda":
        env.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version())
    return env


def throughput(args, device) -> dict:
    """Every step (and with --reference its reference network) on one random batch, and with --data
    on the real pipeline too, all windows interleaved: images/s, peak memory, and our / reference
    ratios."""
    pairs = REFERENCES[args.regime]
    steps = args.steps
    names = steps + ([pairs[s] for s in steps if s in pairs] if args.reference else [])
    fmt = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    windows, peaks = {}, {}
    for name in names:  # each warmed up in turn, then all timed interleaved
        torch.manual_seed(0)
        windows[name], peaks[name] = prepare_training(
            make_model(name, args.num_classes, args.regime),
            Synthetic(args, device, fmt),
            args,
            device,
        )
        if args.data and name in steps:
            torch.manual_seed(0)
            real_batches = RealData(name, args, device, fmt, args.pipeline)
            windows[f"{name} [real]"], _ = prepare_training(
                make_model(name, real_batches.num_classes, args.regime), real_batches, args, device)
    rates = interleaved(windows, args.windows)
    results = [throughput_row(name, rates, peaks[name], args.pipeline) for name in names]
    ratios = {
        s: ratio(rates[s], rates[ref]) for s, ref in pairs.items() if s in rates and ref in rates
    }
    for s, r in ratios.items():
        print(f"ratio {s} / {pairs[s]}: {r['median']:.3f} (spread {r['min']:.3f} to {r['max']:.3f} over "
              f"{r['pairs']} window pairs)")
    return {"results": results, "ratios": ratios}


def throughput_row(name: str, rates: dict, peak: float, pipeline: str) -> dict:
    row = {"model": name, "images_per_s": statistics.median(rates[name]), "windows": rates[name],
           "peak_memory_gb": peak}
    real = rates.get(f"{name} [real]")
    if real is not None:
        row |= {
            "real_images_per_s": statistics.median(real),
            "real_fraction": ratio(real, rates[name]),
        }
    frac = row.get("real_fraction")
    print(f"{name:28s} {row['images_per_s']:9.1f} images/s  peak {row['peak_memory_gb']:.2f} GiB"
          + (f"  real data ({pipeline}) {row['real_images_per_s']:.1f} images/s = {frac['median']:.2f} "
             f"({frac['min']:.2f} to {frac['max']:.2f}) of synthetic" if frac else ""), flush=True)
    return row


def throughput_markdown(report: dict) -> str:
    env, pairs = report["environment"], REFERENCES[report["settings"]["regime"]]
    lines = [f"`python {report['command']}` on {env.get('gpu', env['cpu'])} ({env['device']}, {env['cpu_count']} "
             f"CPUs), torch {env['torch']}, timm {env['timm']}, torchvision {env['torchvision']}, {env['date']}",
             "", f"Settings: {json.dumps(report['settings'])}", "",
             "| model | images/s | peak memory (GiB) | real-data images/s | real / synthetic |",
             "|---|---|---|---|---|"]
    for r in report["results"]:
        frac = r.get("real_fraction")
        lines.append(
            f"| {r['model']} | {r['images_per_s']:.1f} | {r['peak_memory_gb']:.2f} | "
            f"{r.get('real_images_per_s', float('nan')):.1f} | "
            + (f"{frac['median']:.2f} ({frac['min']:.2f} to {frac['max']:.2f})" if frac else "")
            + " |"
        )
    lines += [""] + [
        f"- {s} / {pairs[s]}: **{v['median']:.3f}** (spread {v['min']:.3f} to {v['max']:.3f}, "
        f"{v['pairs']} window pairs)"
        for s, v in report["ratios"].items()
    ]
    return "\n".join(lines) + "\n"


RUNNERS = {
    "throughput": throughput,
    "augment-only": augment_only,
    "loop": loop_overhead,
    "compare": compare_ways,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--steps", nargs="+", default=list(REFERENCES["r50"]), help="step names, or 'all'"
    )
    ap.add_argument("--reference", action="store_true", help="also time the reference networks of the regime's "
                    "first and last step (r50: torchvision resnet50, timm convnext_tiny; femto: timm convnext_femto "
                    "and timm's ResNet of that shape; r200: timm resnet200, convnext_base)")
    ap.add_argument("--regime", choices=sorted(REFERENCES), default="r50")
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument(
        "--batch-size", type=int, default=None, help="default 128 on CUDA, 16 on the CPU"
    )
    ap.add_argument("--num-classes", type=int, default=1000)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument(
        "--memory-format", choices=["contiguous", "channels_last"], default="contiguous"
    )
    ap.add_argument("--compile", action="store_true", help="torch.compile each model")
    ap.add_argument(
        "--warmup", type=int, default=None, help="untimed iterations (default 10 on CUDA, 2 on CPU)"
    )
    ap.add_argument("--windows", type=int, default=5)
    ap.add_argument(
        "--iters", type=int, default=None, help="iterations per window (default 20 CUDA, 3 CPU)"
    )
    ap.add_argument("--data", help="also time the real pipeline of this data group (e.g. cifar100)")
    ap.add_argument(
        "--data-root", default=None, help="with --data: where its files are (data.root)"
    )
    ap.add_argument("--workers", type=int, default=8, help="loader workers of the workers pipeline")
    ap.add_argument(
        "--pipeline",
        choices=["workers", "device"],
        default="device",
        help="with --data: which pipeline makes the real batches (default device)",
    )
    ap.add_argument(
        "--augment-only",
        action="store_true",
        help="with --data: time augmentation alone, both pipelines side by side",
    )
    ap.add_argument("--compare", choices=sorted(COMPARE), help="time each step two ways in interleaved windows, "
                    "eager and compiled (compile) or contiguous and channels_last (memory-format), and print the "
                    "second over the first per step")
    ap.add_argument(
        "--threads", type=int, default=0, help="torch's CPU threads (default: torch's own choice)"
    )
    ap.add_argument(
        "--loop",
        action="store_true",
        help="with --data: our training loop (train_steps) against a "
        "plain PyTorch loop over the same model, batches and optimizer, and evaluation apart",
    )
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", type=Path, default=Path("outputs/benchmark"))
    args = ap.parse_args(argv)
    args.mode = "augment-only" if args.augment_only else "loop" if args.loop else \
        "compare" if args.compare else "throughput"
    if args.mode in ("augment-only", "loop") and not args.data:
        ap.error(f"--{args.mode} needs --data NAME")
    cuda = args.device.startswith("cuda")
    args.batch_size = args.batch_size or (128 if cuda else 16)
    args.warmup = args.warmup if args.warmup is not None else (10 if cuda else 2)
    args.iters = args.iters or (20 if cuda else 3)
    args.all_steps = args.steps == ["all"]
    args.steps = [s.name for s in roadmap_steps(args.regime)] if args.all_steps else args.steps
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    settings = {k: getattr(args, k) for k in ("regime", "resolution", "batch_size", "precision", "memory_format",
                                              "compile", "warmup", "windows", "iters", "data", "pipeline", "workers",
                                              "compare")} | {"threads": torch.get_num_threads()}
    command = " ".join([Path(sys.argv[0]).as_posix(), *(sys.argv[1:] if argv is None else argv)])
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"environment": environment(device), "settings": settings, "command": command,
              **RUNNERS[args.mode](args, device)}
    (args.out / "benchmark.json").write_text(json.dumps(report, indent=2))
    if args.mode == "throughput":
        (args.out / "benchmark.md").write_text(throughput_markdown(report))


if __name__ == "__main__":
    quiet_if_the_reader_goes()  # `| head`: the report stops there, the work goes on
    main()
