"""Datasets: the shipped Fashion-MNIST subset, Fashion-MNIST, CIFAR and image folders, with timm's
transforms (RandomResizedCrop or pad-and-crop, flip, RandAugment, random erasing) for the workers
pipeline; a validation split held out of the training images (data.val_split); images fitted to the
resolution by padding (data.fit=pad). Missing data is a DataError that says where it looked and what
to do, raised before a run writes anything (check_data)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from timm.data import create_transform
from timm.data.transforms_factory import transforms_imagenet_train
from torch.utils.data import Dataset
from torchvision import transforms

from ..enums import Crop, Fit
from ..errors import DataError
from ..schema import RunConfig
from .fashion_mnist import read_fashion_mnist

SHIPPED = Path(__file__).resolve().parent / "fashion_mnist_small.npz"


class ArrayDataset(Dataset):
    """Images held in memory as uint8 arrays (N, H, W) or (N, H, W, 3)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = (
            images,
            np.asarray(labels, dtype=np.int64),
            transform,
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i]).convert("RGB")), int(self.labels[i])


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
    """train/ and val/ under data.root, each with one folder per class holding at least one image,
    as many classes in both as data.num_classes: DataError naming what is not so (a scan of the
    folder names, not of every file)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS
    dirs = [Path(cfg.root) / s for s in ("train", "val")]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise DataError(f"{cfg.name}: folder(s) not found: {', '.join(missing)}. Expected {cfg.root}/train/<class>/* "
                        f"and {cfg.root}/val/<class>/*; set data.root.")
    classes = [sorted(c.name for c in d.iterdir() if c.is_dir()) for d in dirs]
    if len(classes[0]) != cfg.num_classes or classes[0] != classes[1]:
        raise DataError(f"{cfg.root}: {len(classes[0])} train and {len(classes[1])} val class folders"
                        f"{'' if len(classes[0]) != len(classes[1]) or classes[0] == classes[1] else ' of other names'}"
                        f", data.num_classes={cfg.num_classes}; they must agree.")
    for d in dirs:
        for c in classes[0]:
            if not any(f.name.lower().endswith(IMG_EXTENSIONS) for f in (d / c).iterdir()):
                raise DataError(f"{d / c} holds no image ({', '.join(IMG_EXTENSIONS)}): every class folder needs "
                                f"at least one; remove the folder or add its images (data.root={cfg.root!r})")
    return dirs


def load_image(path: str) -> Image.Image:
    """An image file as RGB (torchvision's loader), or DataError naming the file when it cannot be
    read."""
    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except Exception as e:  # PIL's UnidentifiedImageError, a truncated file, OSError
        raise DataError(f"{path} is not a readable image ({type(e).__name__}: {str(e)[:80]}); remove or replace it"
                        ) from None


def _image_folder(cfg, train_tf, eval_tf):
    from torchvision.datasets import ImageFolder
    dirs = _folders(cfg)
    return ImageFolder(str(dirs[0]), train_tf, loader=load_image), ImageFolder(
        str(dirs[1]), eval_tf, loader=load_image
    )


def _cifar10(cfg):
    from torchvision.datasets import CIFAR10
    return _cifar(cfg, CIFAR10, "cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz")


def _cifar100(cfg):
    from torchvision.datasets import CIFAR100
    return _cifar(cfg, CIFAR100, "cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz")


ARRAYS = {"fashion_mnist_small": _shipped, "fashion_mnist": _fashion_mnist, "cifar10": _cifar10, "cifar100": _cifar100}
FOLDERS = {"imagenet", "image_folder"}


# the last arrays loaded, by (name, root): a run's data check and its training read them once
_LAST: dict = {}


def load_arrays(cfg) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x_train, y_train), (x_val, y_val)) of an in-memory dataset (`cfg`: a DataConfig)."""
    key = (cfg.name, cfg.root)
    if key not in _LAST:
        arrays = ARRAYS[cfg.name](cfg)
        _LAST.clear()
        _LAST[key] = arrays
    return _LAST[key]


def fit_arrays(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, H, W[, 3]) centred in a size x size frame: padded with zeros where smaller,
    centre-cropped where larger, every other pixel as it was (torchvision's CenterCrop, image by
    image)."""
    h, w = images.shape[1:3]
    top, left = [(size - n) // 2 if size > n else 0 for n in (h, w)]
    pad = [(0, 0), (top, max(0, size - h) - top), (left, max(0, size - w) - left)] + [(0, 0)] * (
        images.ndim - 3
    )
    framed = np.pad(images, pad) if size > min(h, w) else images
    h, w = framed.shape[1:3]
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return np.ascontiguousarray(framed[:, top:top + size, left:left + size])


def split_validation(labels: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held out): indices of `labels`, `n` held out stratified by class (each class's share
    of n, by largest remainder), chosen by `seed` alone; both sorted."""
    classes, counts = np.unique(labels, return_counts=True)
    quota = n * counts / counts.sum()
    take = np.floor(quota).astype(int)
    take[np.argsort(-(quota - take), kind="stable")[:n - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    held = np.concatenate(
        [rng.permutation(np.flatnonzero(labels == c))[:k] for c, k in zip(classes, take)]
    )
    held = np.sort(held)
    return np.setdiff1d(np.arange(len(labels)), held), held


def crop_transform(cfg: RunConfig):
    """The workers pipeline's pad-and-crop (train.crop=pad): the image at data.resolution (resized,
    unless data.fit =pad framed it already), then torchvision's RandomCrop(resolution,
    padding=train.crop_padding)."""
    r, mode = cfg.data.resolution, transforms.InterpolationMode(cfg.train.interpolation)
    return transforms.Compose([transforms.Resize(r, interpolation=mode), transforms.CenterCrop(r),
                               transforms.RandomCrop(r, padding=cfg.train.crop_padding)])


def build_transforms(cfg: RunConfig):
    t, d = cfg.train, cfg.data
    common = dict(interpolation=t.interpolation, mean=tuple(d.mean), std=tuple(d.std))
    parts = transforms_imagenet_train(d.resolution, scale=tuple(t.crop_scale), ratio=tuple(t.crop_ratio),
                                      hflip=t.hflip, color_jitter=None, auto_augment=t.auto_augment,
                                      re_prob=t.re_prob, re_mode="pixel", separate=True, **common)
    # timm's RandomResizedCrop (the first of its primary transforms) made pad-and-crop
    if t.crop == Crop.pad:
        parts[0].transforms[0] = crop_transform(cfg)
    train_tf = transforms.Compose(list(parts))
    eval_tf = create_transform(d.resolution, is_training=False, crop_pct=d.eval_crop_pct, **common)
    if d.fit == Fit.pad and d.name in FOLDERS:  # arrays are framed once, in memory (build_datasets)
        frame = transforms.CenterCrop(d.resolution)
        train_tf, eval_tf = (
            transforms.Compose([frame, train_tf]),
            transforms.Compose([frame, eval_tf]),
        )
    return train_tf, eval_tf


def training_arrays(
    cfg: RunConfig,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """((x, y) trained on, (x, y) evaluated): the dataset's training and test arrays, or with
    data.val_split the training arrays less the held-out images, and those images; each fitted to
    the resolution if data.fit=pad."""
    d = cfg.data
    (x_train, y_train), (x_val, y_val) = load_arrays(d)
    if d.val_split:
        # a sweep's job meets it here, not in check_data
        check_split(d.val_split, d.name, len(x_train))
        kept, held = split_validation(y_train, d.val_split, d.val_split_seed)
        (x_train, y_train), (x_val, y_val) = (
            (x_train[kept], y_train[kept]),
            (x_train[held], y_train[held]),
        )
    if d.fit == Fit.pad:
        x_train, x_val = fit_arrays(x_train, d.resolution), fit_arrays(x_val, d.resolution)
    return (x_train, y_train), (x_val, y_val)


def build_datasets(cfg: RunConfig) -> tuple[Dataset, Dataset]:
    """Train and validation sets (the test set, or the held-out split of data.val_split); raises
    DataError before any training if the files are not there."""
    train_tf, eval_tf = build_transforms(cfg)
    name = cfg.data.name
    if name in FOLDERS:
        return _image_folder(cfg.data, train_tf, eval_tf)
    if name not in ARRAYS:
        raise DataError(
            f"data.name={name!r} is unknown; valid: {', '.join(sorted(ARRAYS) + sorted(FOLDERS))}"
        )
    (x_train, y_train), (x_val, y_val) = training_arrays(cfg)
    top = max(int(y_train.max()), int(y_val.max())) + 1
    if top > cfg.data.num_classes:
        raise DataError(
            f"{name} has labels up to {top - 1} but data.num_classes={cfg.data.num_classes}"
        )
    return ArrayDataset(x_train, y_train, train_tf), ArrayDataset(x_val, y_val, eval_tf)


def check_split(split: int, name: str, images: int) -> None:
    if split >= images:
        raise DataError(f"data.val_split={split} is not allowed: {name} has {images} training images; hold out fewer")


def check_data(cfg: RunConfig) -> int | None:
    """Raise DataError now, before a run writes anything, if the dataset cannot be had (CIFAR is
    downloaded here when it is missing and data.download allows it). Returns the number of training
    images (None for image folders, which are not counted here)."""
    name, split = cfg.data.name, cfg.data.val_split
    if name in FOLDERS:
        if split:
            raise DataError(f"data.val_split={split} is not allowed for {name}: it holds out images of a dataset "
                            "held in memory (fashion_mnist_small, fashion_mnist, cifar10, cifar100); for an image "
                            "folder, move the images to hold out into a folder of their own")
        _folders(cfg.data)
        return None
    if name in ARRAYS:
        (x_train, y_train), (_, y_val) = load_arrays(cfg.data)
        top = max(int(y_train.max()), int(y_val.max())) + 1
        if top > cfg.data.num_classes:
            raise DataError(
                f"data.num_classes={cfg.data.num_classes} is not allowed: {name} has labels up to "
                f"{top - 1}; set it to at least {top}"
            )
        check_split(split, name, len(x_train))
        return len(x_train) - split
    raise DataError(
        f"data.name={name!r} is unknown; valid: {', '.join(sorted(ARRAYS) + sorted(FOLDERS))}"
    )
