"""scripts/benchmark.py measures and reports; the speed targets themselves are read off its output, not tested."""
import json

from conftest import ROOT, run_cli


def test_benchmark_times_steps_references_and_the_real_pipeline(tmp_path):
    proc = run_cli(ROOT / "scripts/benchmark.py", "--reference", "--resolution", "32", "--batch-size", "4",
                   "--warmup", "1", "--windows", "2", "--iters", "1", "--data", "fashion_mnist_small",
                   "--workers", "0", "--memory-format", "channels_last", "--out", tmp_path, check=True)
    report = json.loads((tmp_path / "benchmark.json").read_text())
    models = [r["model"] for r in report["results"]]
    assert models == ["micro/separate_downsample", "baseline/resnet50", "timm/convnext_tiny", "torchvision/resnet50"]
    by = {r["model"]: r for r in report["results"]}
    for r in report["results"]:
        assert len(r["windows"]) == 2 and r["images_per_s"] > 0 and r["peak_memory_gb"] > 0
    for step, ref in [("micro/separate_downsample", "timm/convnext_tiny"), ("baseline/resnet50", "torchvision/resnet50")]:
        assert report["ratios"][step] == by[step]["images_per_s"] / by[ref]["images_per_s"]
        assert by[step]["real_fraction"] == by[step]["real_images_per_s"] / by[step]["images_per_s"]
        assert f"ratio {step} / {ref}" in proc.stdout
    assert report["settings"]["memory_format"] == "channels_last" and report["environment"]["torch"]
    assert "| timm/convnext_tiny |" in (tmp_path / "benchmark.md").read_text()
