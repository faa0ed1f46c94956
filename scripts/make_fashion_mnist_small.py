"""Rebuild the dataset shipped in the package: src/roadmap/data/fashion_mnist_small.npz.

A class-balanced subset of Fashion-MNIST (Zalando SE, MIT licence): the first 500 training images of
each class and the first 100 test images of each class, 28x28 uint8. Source: the four idx .gz files,
e.g. from Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist).

    python scripts/make_fashion_mnist_small.py [--root DIR] [--train-per-class 500] [--val-per-class 100] [--out F]
"""
import argparse
from pathlib import Path

import numpy as np

from roadmap.data.fashion_mnist import read_fashion_mnist
from roadmap.files import quiet_if_the_reader_goes

OUT = Path(__file__).resolve().parents[1] / "src/roadmap/data/fashion_mnist_small.npz"


def first_per_class(x: np.ndarray, y: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:n] for c in np.unique(y)]))
    return x[keep], y[keep]


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--root", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--train-per-class", type=int, default=500)
    ap.add_argument("--val-per-class", type=int, default=100)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    x_train, y_train = first_per_class(
        *read_fashion_mnist(args.root, "train"), args.train_per_class
    )
    x_val, y_val = first_per_class(*read_fashion_mnist(args.root, "t10k"), args.val_per_class)
    np.savez_compressed(args.out, x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): train {x_train.shape}, val {x_val.shape}")


if __name__ == "__main__":
    quiet_if_the_reader_goes()  # `| head`: the report stops there, the work goes on
    main()
