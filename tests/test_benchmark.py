"""scripts/benchmark.py measures and reports; the speed targets themselves are read off its output, not tested."""
import importlib.util
import json
import statistics
import time

import pytest
import torch
from conftest import ROOT, run_cli

from roadmap.data.augment import BatchAugment
from roadmap.data.sources import ArrayDataset

pytestmark = pytest.mark.slow  # the benchmark script end to end, with tiny settings


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / f"scripts/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("pipeline", ["device", "workers"])
def test_benchmark_times_steps_references_and_the_real_pipeline_interleaved(tmp_path, pipeline):
    proc = run_cli(ROOT / "scripts/benchmark.py", "--reference", "--resolution", "32", "--batch-size", "4",
                   "--warmup", "1", "--windows", "3", "--iters", "1", "--data", "fashion_mnist_small",
                   "--workers", "0", "--pipeline", pipeline, "--memory-format", "channels_last", "--out", tmp_path,
                   check=True)
    report = json.loads((tmp_path / "benchmark.json").read_text())
    models = [r["model"] for r in report["results"]]
    assert models == ["micro/separate_downsample", "baseline/resnet50", "timm/convnext_tiny", "torchvision/resnet50"]
    by = {r["model"]: r for r in report["results"]}
    for r in report["results"]:
        assert len(r["windows"]) == 3 and r["images_per_s"] == statistics.median(r["windows"])
        assert r["peak_memory_gb"] > 0
    for step, ref in [("micro/separate_downsample", "timm/convnext_tiny"), ("baseline/resnet50", "torchvision/resnet50")]:
        pairs = [a / b for a, b in zip(by[step]["windows"], by[ref]["windows"])]  # window i of A against window i of B
        ratio = report["ratios"][step]
        assert (ratio["median"], ratio["min"], ratio["max"], ratio["pairs"]) == \
            (statistics.median(pairs), min(pairs), max(pairs), 3)
        assert 0 < by[step]["real_fraction"]["min"] <= by[step]["real_fraction"]["median"] <= \
            by[step]["real_fraction"]["max"]
        assert f"ratio {step} / {ref}: {ratio['median']:.3f} (spread" in proc.stdout
        assert f"real data ({pipeline})" in proc.stdout
    assert report["settings"]["memory_format"] == "channels_last" and report["settings"]["pipeline"] == pipeline
    assert "| timm/convnext_tiny |" in (tmp_path / "benchmark.md").read_text()


def test_augment_only_times_both_pipelines_side_by_side_per_core(tmp_path):
    proc = run_cli(ROOT / "scripts/benchmark.py", "--augment-only", "--data", "fashion_mnist_small", "--resolution",
                   "32", "--batch-size", "32", "--workers", "1", "--warmup", "1", "--windows", "2", "--iters", "2",
                   "--out", tmp_path, check=True)
    report = json.loads((tmp_path / "benchmark.json").read_text())
    aug = report["augment_only"]
    assert set(aug) == {"workers", "device"} and aug["workers"]["cores"] == 1
    for r in aug.values():
        assert len(r["windows"]) == 2 and r["images_per_s_per_core"] == r["images_per_s"] / r["cores"] > 0
    assert report["device_over_workers_per_core"]["pairs"] == 2
    assert "device / workers per core:" in proc.stdout


def test_augment_only_times_each_pipeline_alone_and_reads_one_slowed_on_purpose_as_slower(monkeypatch):
    """No loader worker is alive in the device pipeline's windows, and a pipeline made slower (a sleep per image in
    the workers' dataset, or per batch on the device) reads slower by about as much, the other one not."""
    bench = load_script("benchmark")
    args = bench.parse_args(["--augment-only", "--data", "fashion_mnist_small", "--steps", "micro/separate_downsample",
                             "--resolution", "32", "--batch-size", "16", "--workers", "1", "--warmup", "1",
                             "--windows", "2", "--iters", "3"])
    cpu = torch.device("cpu")
    base = bench.augment_only(args, cpu)["augment_only"]
    assert base["device"]["workers_alive_in_windows"] == 0 and base["workers"]["cores"] == 1
    get = ArrayDataset.__getitem__
    monkeypatch.setattr(ArrayDataset, "__getitem__", lambda self, i: (time.sleep(0.01), get(self, i))[1])
    slow_workers = bench.augment_only(args, cpu)["augment_only"]
    assert slow_workers["workers"]["images_per_s"] < min(100.0, 0.5 * base["workers"]["images_per_s"])  # <= 1/0.01
    monkeypatch.setattr(ArrayDataset, "__getitem__", get)
    train = BatchAugment.train
    monkeypatch.setattr(BatchAugment, "train", lambda self, x, g: (time.sleep(0.2), train(self, x, g))[1])
    slow_device = bench.augment_only(args, cpu)["augment_only"]
    assert slow_device["device"]["images_per_s"] < min(80.0, 0.5 * base["device"]["images_per_s"])  # 16 per 0.2 s
    assert slow_device["workers"]["images_per_s"] > 2 * slow_workers["workers"]["images_per_s"]


def test_compare_times_each_step_both_ways_interleaved_and_reports_the_ratio_per_step(tmp_path):
    proc = run_cli(ROOT / "scripts/benchmark.py", "--regime", "femto", "--steps", "baseline/resnet50", "micro/gelu",
                   "--resolution", "32", "--batch-size", "4", "--compare", "memory-format", "--threads", "1",
                   "--warmup", "1", "--windows", "3", "--iters", "1", "--out", tmp_path, check=True)
    report = json.loads((tmp_path / "benchmark.json").read_text())
    assert report["settings"]["threads"] == 1 and [r["step"] for r in report["rows"]] == ["baseline/resnet50",
                                                                                          "micro/gelu"]
    for row in report["rows"]:
        a, b = row["windows"]["contiguous"], row["windows"]["channels_last"]
        pairs = [y / x for x, y in zip(a, b)]
        assert row["channels_last_over_contiguous"]["median"] == statistics.median(pairs) and len(pairs) == 3
        assert row["contiguous"] == statistics.median(a) and row["channels_last"] == statistics.median(b)
    assert f"channels_last faster for {report['faster_for']} of 2 steps" in proc.stdout
