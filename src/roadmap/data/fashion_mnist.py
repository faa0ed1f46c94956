"""Fashion-MNIST's four idx files read into arrays, each checked against its header. Imports numpy only (no torch,
timm or PIL), so that scripts/make_fashion_mnist_small.py, which rebuilds the shipped subset, starts in a fraction
of a second."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from ..errors import DataError

FASHION_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
                 "t10k": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def read_fashion_mnist(root: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    paths = [Path(root) / f for f in FASHION_FILES[split]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"Fashion-MNIST files not found: {', '.join(missing)}. Install Debian's "
                        "dataset-fashion-mnist (apt install dataset-fashion-mnist), or put the four idx .gz files "
                        "from https://github.com/zalandoresearch/fashion-mnist in one folder and set data.root to it.")
    images, labels = read_idx(paths[0], 3), read_idx(paths[1], 1)
    if len(images) != len(labels):
        raise DataError(f"{paths[0]} holds {len(images)} images but {paths[1]} holds {len(labels)} labels; the two "
                        f"files do not belong together: restore them (data.root={root!r})")
    return images, labels.astype(np.int64)


def read_idx(path: Path, dims: int) -> np.ndarray:
    """A gzipped idx file of unsigned bytes (magic 0x0000080N, N sizes, the data), checked against
    its header: DataError naming the file when it is not one (truncated, not gzip, garbage, sizes
    that do not match)."""
    fix = "restore it (Debian: apt install --reinstall dataset-fashion-mnist) or set data.root to a good copy"
    try:
        with gzip.open(path) as f:
            raw = f.read()
    except (OSError, EOFError, ValueError) as e:  # not gzip, truncated
        raise DataError(
            f"{path} is not a readable gzip file ({type(e).__name__}: {str(e)[:80]}); {fix}"
        ) from None
    head = 4 * (1 + dims)
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
    if magic != 0x800 + dims or len(raw) < head:
        raise DataError(
            f"{path} is not an idx file of {dims}-dimensional unsigned bytes (its header says "
            f"{magic if magic is None else hex(magic)}, expected {hex(0x800 + dims)}); {fix}"
        )
    sizes = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    if len(raw) - head != int(np.prod(sizes)):
        raise DataError(f"{path} holds {len(raw) - head} bytes of data where its header announces "
                        f"{' x '.join(map(str, sizes))}; {fix}")
    return np.frombuffer(raw, np.uint8, offset=head).reshape(sizes)
