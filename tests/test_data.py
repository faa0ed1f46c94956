"""The shipped dataset and the input pipeline."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, clean_env, run_cli

from roadmap import load_config
from roadmap.data.loaders import build_loaders
from roadmap.data.sources import SHIPPED, build_datasets

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def test_shipped_dataset_is_small_balanced_and_real():
    assert SHIPPED.stat().st_size < 4e6
    d = dict(np.load(SHIPPED))
    x = d["x_train"]
    assert x.shape == (5000, 28, 28) and d["x_val"].shape == (1000, 28, 28)
    assert np.bincount(d["y_train"]).tolist() == [500] * 10 and np.bincount(d["y_val"]).tolist() == [100] * 10
    assert x.std() > 50  # images, not placeholders
    assert len({img.tobytes() for img in x}) == 5000


@pytest.mark.skipif(not DEBIAN.is_dir(), reason="needs Debian's dataset-fashion-mnist to rebuild from")
def test_shipped_dataset_rebuilds_identically_from_the_source(tmp_path):
    out = tmp_path / "rebuilt.npz"
    run_cli(ROOT / "scripts/make_fashion_mnist_small.py", "--root", DEBIAN, "--out", out, check=True)
    a, b = np.load(SHIPPED), np.load(out)
    assert all(np.array_equal(a[k], b[k]) for k in a.files)


def test_the_rebuild_of_the_shipped_dataset_reads_fashion_mnist_without_torch_or_timm():
    """scripts/make_fashion_mnist_small.py needs numpy only (importing timm took it from 0.4 s to 3.5 s)."""
    code = ("import sys, runpy; runpy.run_path(sys.argv[1], run_name='not_main'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'timm', 'torchvision', 'PIL')))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "scripts/make_fashion_mnist_small.py")],
                         env=clean_env(), capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


@pytest.mark.parametrize("recipe", ["classic", "enhanced"])
def test_batches_are_normalized_3_channel_images_at_the_configured_resolution(recipe):
    cfg = load_config("micro/gelu", [f"recipe={recipe}", "data.resolution=48", "train.batch_size=8"])
    train, val = build_datasets(cfg)
    train_loader, val_loader = build_loaders(cfg, train, val, rank=0, world=1, pin=False)
    for loader in (train_loader, val_loader):
        x, y = next(iter(loader))
        batch = 8 if loader is train_loader else 16  # evaluation in batches of twice the training batch
        assert x.shape == (batch, 3, 48, 48) and x.dtype == torch.float32 and y.dtype == torch.int64
        assert torch.equal(x[:, 0], x[:, 1]) or recipe == "enhanced"  # grey stays grey without colour ops
        assert -3 < x.mean() < 3 and 0 <= y.min() and y.max() < 10
    assert len(train_loader) == 5000 // 8 and len(val_loader.dataset) == 1000


def test_holding_out_every_training_image_is_refused_in_one_line_where_a_sweeps_job_builds_its_data():
    """A sweep's jobs are not checked by check_data before they start: building the data says it, in one line."""
    from roadmap.errors import DataError
    cfg = load_config("baseline/resnet50", ["data.val_split=5000"])  # the shipped set has 5,000 training images
    with pytest.raises(DataError) as e:
        build_datasets(cfg)
    assert str(e.value) == ("data.val_split=5000 is not allowed: fashion_mnist_small has 5000 training images; "
                            "hold out fewer")


def test_a_read_only_image_array_becomes_device_images_without_a_warning():
    """A dataset read from a file can be a read-only array: torch warns on such an array (writing to the tensor would
    be undefined); the pipeline copies it instead."""
    import warnings

    from roadmap.data.pipelines import images_nchw
    gray = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4)
    gray.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = images_nchw(gray, torch.device("cpu"))
    assert x.shape == (2, 3, 4, 4) and all((x[:, c].numpy() == gray).all() for c in range(3))
