"""The settings' checks that need no other setting, in one table (BOUNDS), and the one-line error
every check in the schema raises: `train.base_lr=-1 is not allowed: a positive number`. Imports
nothing of the project."""
from __future__ import annotations

import math
from typing import NamedTuple

# OmegaConf's mark of a value that configs/ must give (the schema's fields without a default)
MISSING = "???"


def fail(field_name: str, value, allowed: str) -> None:
    raise ValueError(f"{field_name}={value!r} is not allowed: {allowed}")


class Bound(NamedTuple):
    """A setting's range: [low, high], an end left open excluding itself, None unbounded; or, for a
    list, each item's range, with the list's length and order."""
    low: float | None
    high: float | None
    allowed: str               # what the one-line error says is allowed
    low_open: bool = False
    high_open: bool = False
    whole: bool = False        # an integer (not a bool)
    optional: bool = False     # null allowed too
    items: int | None = None   # a list of this many numbers (0: any number, at least one)
    empty: bool = False        # ... or none
    ordered: bool = False      # a list in increasing order (strictly, of whole numbers)
    choices: tuple = ()        # the only values allowed


def _number(value, b: Bound) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    if b.whole and not isinstance(value, int):
        return False
    return (b.low is None or (value > b.low if b.low_open else value >= b.low)) and \
        (b.high is None or (value < b.high if b.high_open else value <= b.high))


def allows(b: Bound, value) -> bool:
    """Whether `value` lies within the bound."""
    if value is None:
        return b.optional
    if b.choices:
        return not isinstance(value, bool) and value in b.choices
    if b.items is None:
        return _number(value, b)
    if not isinstance(value, (list, tuple)) or (b.items and len(value) != b.items):
        return False
    if not value:
        return b.empty
    steps = zip(value, value[1:])
    return all(_number(v, b) for v in value) and not (b.ordered and any(x >= y if b.whole else x > y
                                                                         for x, y in steps))


# Every check of a setting that needs no other setting, in one table; those relating settings live
# in schema.py.
BOUNDS = {
    **{f"regime.{k}": Bound(1, None, "a non-empty list of positive block counts", whole=True, items=0)
       for k in ("baseline_depths", "depths")},
    **{f"regime.{k}": Bound(1, None, "a positive base width") for k in ("baseline_width", "narrow_width", "width")},
    "model.base_width": Bound(1, None, "a positive integer (ResNet-50 64, ConvNeXt-T 96)"),
    "model.expansion": Bound(1, None, "an integer >= 1"),
    "model.depths": Bound(1, None, "a non-empty list of positive block counts", whole=True, items=0),
    "model.widths": Bound(1, None, "a list of positive channel counts", whole=True, optional=True,
                          items=0),
    # model.num_classes: at least data.num_classes
    "model.stem_width": Bound(1, None, "a positive integer"),
    "model.in_chans": Bound(None, None, "3: every dataset reaches the network as RGB (grayscale images are repeated "
                            "to 3 channels)", choices=(3,)),
    "model.stem_stride": Bound(None, None, "4 (the paper), 2 or 1 (for small images)", choices=(1, 2, 4)),
    "model.kernel_size": Bound(None, None, "an odd integer from 1 to 31", choices=tuple(range(1, 32, 2))),
    "model.layer_scale": Bound(0, None, "0 (off) or a positive initial scale such as 1e-6"),
    "model.drop_path": Bound(0, 1, "a rate in [0, 1)", high_open=True),
    **{f"train.{k}": Bound(0, None, "a positive number", low_open=True)
       for k in ("base_lr", "ref_batch", "batch_size", "epochs")},
    **{f"train.{k}": Bound(0, None, "a finite learning rate >= 0") for k in ("warmup_lr", "min_lr")},
    "train.momentum": Bound(0, 1, "a momentum in [0, 1)", high_open=True),
    "train.betas": Bound(0, 1, "two numbers in [0, 1), e.g. [0.9, 0.999]", high_open=True, items=2),
    "train.weight_decay": Bound(0, 1, "a finite decay in [0, 1] (0.05 AdamW, 1e-4 SGD)"),
    "train.decay_milestones": Bound(1, None, "increasing positive epochs, e.g. [30, 60], or []", whole=True,
                                    items=0, empty=True, ordered=True),
    "train.decay_rate": Bound(0, None, "a finite factor > 0 at each milestone, e.g. 0.1 (above 1 raises the rate)",
                              low_open=True),
    "train.crop_scale": Bound(0, 1, "[min, max] with 0 < min <= max <= 1", low_open=True, items=2, ordered=True),
    "train.crop_ratio": Bound(0, None, "[min, max] aspect ratios with 0 < min <= max, e.g. [0.75, 1.333] (timm's)",
                              low_open=True, items=2, ordered=True),
    "train.crop_padding": Bound(0, None, "a whole number of pixels >= 0 (CIFAR's 4)", whole=True),
    **{f"train.{k}": Bound(0, 1, "a probability in [0, 1]") for k in ("re_prob", "hflip", "mixup_switch_prob")},
    **{f"train.{k}": Bound(0, None, "an alpha >= 0 (0 turns it off)") for k in ("mixup", "cutmix")},
    "train.smoothing": Bound(0, 1, "a label smoothing in [0, 1)", high_open=True),
    "train.grad_clip": Bound(0, None, "null (off) or a positive norm", low_open=True, optional=True),
    "train.ema_decay": Bound(0, 1, "a decay in (0, 1), e.g. 0.9999", low_open=True, high_open=True),
    "train.interpolation": Bound(None, None, "bilinear or bicubic", choices=("bilinear", "bicubic")),
    "data.num_classes": Bound(1, None, "a positive number of classes"),
    "data.resolution": Bound(8, None, "an input size of at least 8 pixels"),
    "data.mean": Bound(None, None, "three finite numbers, one per channel", items=3),
    "data.std": Bound(0, None, "three finite numbers, one per channel, each > 0", low_open=True, items=3),
    "data.eval_crop_pct": Bound(0, 1, "a fraction in (0, 1]", low_open=True),
    "data.num_workers": Bound(0, None, "0 (load in the main process) or more"),
    "data.val_split": Bound(0, None, "a whole number >= 0 (0: evaluate on the test set)", whole=True),
    "data.val_split_seed": Bound(0, None, "a whole number >= 0", whole=True),
    "budget.epoch_scale": Bound(0, None, "a positive factor", low_open=True),
    **{f"budget.{k}": Bound(1, None, "null or a positive integer", optional=True)
       for k in ("epochs", "max_train_iters", "max_eval_iters")},
    "system.threads": Bound(0, None, "0 (automatic) or a positive number of threads"),
    "system.eval_batch_size": Bound(0, None, "0 (twice train.batch_size) or a positive number"),
    "wandb.log_every": Bound(0, None, "a whole number of iterations >= 0 (0: per epoch only)", whole=True),
    "seed": Bound(0, 2**31, "an integer from 0 to 2**31 - 1", high_open=True),
}


def check(key: str, value, b: Bound) -> None:
    """Fail in one line unless `value` lies within the bound."""
    if not allows(b, value):
        fail(key, list(value) if isinstance(value, (list, tuple)) else value, b.allowed)


def check_bounds(config, section: str, names: tuple[str, ...] | None = None) -> None:
    """Fail in one line on the first setting of `section` ("" for the top level) outside its
    BOUNDS."""
    for key, b in BOUNDS.items():
        where, _, name = key.rpartition(".")
        if where == section and (names is None or name in names):
            check(key, getattr(config, name), b)


def check_auto_augment(policy: str) -> None:
    """Fail in one line unless timm can build this augmentation policy ('rand-m9-mstd0.5-inc1',
    'augmix-...', 'original', 'v0', ...), as its create_transform would later."""
    from timm.data.auto_augment import (
        augment_and_mix_transform,
        auto_augment_transform,
        rand_augment_transform,
    )
    build = rand_augment_transform if policy.startswith("rand") else \
        augment_and_mix_transform if policy.startswith("augmix") else auto_augment_transform
    try:
        build(policy, {"translate_const": 10, "img_mean": (124, 116, 104)})
    except Exception as e:  # timm asserts, or fails parsing a number
        fail(
            "train.auto_augment",
            policy,
            f"a timm policy such as 'rand-m9-mstd0.5-inc1' (RandAugment), "
            f"'augmix-m5-w4-d2', 'original' or 'v0', or null for none ({type(e).__name__}"
            f"{': ' + str(e).splitlines()[0][:80] if str(e) else ''})",
        )


