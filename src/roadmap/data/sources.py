"""Datasets: the shipped Fashion-MNIST subset, Fashion-MNIST, CIFAR and image folders, with timm's transforms
(RandomResizedCrop, flip, RandAugment, random erasing) for the workers pipeline. Missing data is a DataError that
says where it looked and what to do, raised before a run writes anything (check_data)."""
from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from timm.data import create_transform
from torch.utils.data import Dataset

from ..errors import DataError
from ..schema import RunConfig

SHIPPED = Path(__file__).resolve().parent / "fashion_mnist_small.npz"
FASHION_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                 "t10k": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


class ArrayDataset(Dataset):
    """Images held in memory as uint8 arrays (N, H, W) or (N, H, W, 3)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, np.asarray(labels, dtype=np.int64), transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i]).convert("RGB")), int(self.labels[i])


def read_fashion_mnist(root: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    paths = [Path(root) / f for f in FASHION_FILES[split]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"Fashion-MNIST files not found: {', '.join(missing)}. Install Debian's "
                        "dataset-fashion-mnist (apt install dataset-fashion-mnist), or put the four idx .gz files "
                        "from https://github.com/zalandoresearch/fashion-mnist in one folder and set data.root to it.")
    with gzip.open(paths[0]) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(paths[1]) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    return images, labels


def _shipped(cfg):
    path = Path(cfg.root) if cfg.root else SHIPPED
    if cfg.root and path.exists() and not path.is_file():
        raise DataError(f"data.root={cfg.root!r} is not a file: {cfg.name} needs a .npz with x_train, y_train, "
                        "x_val, y_val (as scripts/make_fashion_mnist_small.py writes), or data.root= for the shipped "
                        "one")
    if not path.is_file():
        if cfg.root:
            raise DataError(f"data.root={cfg.root!r} does not exist: {cfg.name} needs a .npz with x_train, y_train, "
                            "x_val, y_val, or data.root= for the shipped one")
        raise DataError(f"the shipped dataset is missing: {path}. Rebuild it with scripts/make_fashion_mnist_small.py")
    try:
        d = np.load(path)
        return (d["x_train"], d["y_train"]), (d["x_val"], d["y_val"])
    except (OSError, ValueError, KeyError, AttributeError) as e:
        raise DataError(f"data.root={str(path)!r} is not a dataset this project can read ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:120]}); {cfg.name} needs a .npz with x_train, y_train, x_val, "
                        "y_val (as scripts/make_fashion_mnist_small.py writes), or data.root= for the shipped one")


def _fashion_mnist(cfg):
    return read_fashion_mnist(cfg.root, "train"), read_fashion_mnist(cfg.root, "t10k")


def _cifar(cfg, cls, folder: str, url: str):
    splits, root = [], Path(cfg.root)
    created = not root.exists()  # a download that fails leaves nothing behind
    for train in (True, False):
        try:
            ds = cls(cfg.root, train=train, download=False)
        except RuntimeError:
            if not cfg.download:
                raise DataError(f"{cls.__name__} not found in {Path(cfg.root) / folder} and data.download=false. "
                                f"Download {url}, extract it into {cfg.root}, or set data.root.") from None
            try:
                ds = cls(cfg.root, train=train, download=True)
            except Exception as e:
                if created:  # nothing left behind by a download that failed
                    shutil.rmtree(root, ignore_errors=True)
                raise DataError(f"{cls.__name__} not found in {Path(cfg.root) / folder} and the download failed "
                                f"({type(e).__name__}: {e}). Without internet, download {url} elsewhere, "
                                f"extract it into {cfg.root} (giving {folder}/), or set data.root.") from None
        splits.append((ds.data, np.asarray(ds.targets)))
    return splits[0], splits[1]


def _folders(cfg) -> list[Path]:
    dirs = [Path(cfg.root) / s for s in ("train", "val")]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise DataError(f"{cfg.name}: folder(s) not found: {', '.join(missing)}. Expected {cfg.root}/train/<class>/* "
                        f"and {cfg.root}/val/<class>/*; set data.root.")
    return dirs


def _image_folder(cfg, train_tf, eval_tf):
    from torchvision.datasets import ImageFolder
    dirs = _folders(cfg)
    train, val = ImageFolder(str(dirs[0]), train_tf), ImageFolder(str(dirs[1]), eval_tf)
    if len(train.classes) != cfg.num_classes or train.classes != val.classes:
        raise DataError(f"{cfg.root}: {len(train.classes)} train and {len(val.classes)} val class folders, "
                        f"data.num_classes={cfg.num_classes}; they must agree.")
    return train, val


def _cifar10(cfg):
    from torchvision.datasets import CIFAR10
    return _cifar(cfg, CIFAR10, "cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz")


def _cifar100(cfg):
    from torchvision.datasets import CIFAR100
    return _cifar(cfg, CIFAR100, "cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz")


ARRAYS = {"fashion_mnist_small": _shipped, "fashion_mnist": _fashion_mnist, "cifar10": _cifar10, "cifar100": _cifar100}
FOLDERS = {"imagenet", "image_folder"}


_LAST: dict = {}  # the last arrays loaded, by (name, root): a run's data check and its training read them once


def load_arrays(cfg) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_val, y_val)) of an in-memory dataset (`cfg`: a DataConfig)."""
    key = (cfg.name, cfg.root)
    if key not in _LAST:
        arrays = ARRAYS[cfg.name](cfg)
        _LAST.clear()
        _LAST[key] = arrays
    return _LAST[key]


def build_transforms(cfg: RunConfig):
    t, d = cfg.train, cfg.data
    common = dict(input_size=d.resolution, interpolation=t.interpolation, mean=tuple(d.mean), std=tuple(d.std))
    train_tf = create_transform(is_training=True, scale=tuple(t.crop_scale), hflip=t.hflip, color_jitter=None,
                                auto_augment=t.auto_augment, re_prob=t.re_prob, re_mode="pixel", **common)
    eval_tf = create_transform(is_training=False, crop_pct=d.eval_crop_pct, **common)
    return train_tf, eval_tf


def build_datasets(cfg: RunConfig) -> tuple[Dataset, Dataset]:
    """Train and validation sets; raises DataError before any training if the files are not there."""
    train_tf, eval_tf = build_transforms(cfg)
    name = cfg.data.name
    if name in FOLDERS:
        return _image_folder(cfg.data, train_tf, eval_tf)
    if name not in ARRAYS:
        raise DataError(f"data.name={name!r} is unknown; valid: {', '.join(sorted(ARRAYS) + sorted(FOLDERS))}")
    (x_train, y_train), (x_val, y_val) = load_arrays(cfg.data)
    top = max(int(y_train.max()), int(y_val.max())) + 1
    if top > cfg.data.num_classes:
        raise DataError(f"{name} has labels up to {top - 1} but data.num_classes={cfg.data.num_classes}")
    return ArrayDataset(x_train, y_train, train_tf), ArrayDataset(x_val, y_val, eval_tf)


def check_data(cfg: RunConfig) -> int | None:
    """Raise DataError now, before a run writes anything, if the dataset cannot be had (CIFAR is downloaded here
    when it is missing and data.download allows it). Returns the number of training images (None for image
    folders, which are not counted here)."""
    name = cfg.data.name
    if name in FOLDERS:
        _folders(cfg.data)
        return None
    if name in ARRAYS:
        (x_train, _), _ = load_arrays(cfg.data)
        return len(x_train)
    raise DataError(f"data.name={name!r} is unknown; valid: {', '.join(sorted(ARRAYS) + sorted(FOLDERS))}")
