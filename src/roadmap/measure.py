"""Parameters and multiply-accumulates (the paper's "FLOPs", fvcore convention)."""
from __future__ import annotations

import copy

import torch
from torch.utils.flop_counter import FlopCounterMode

from .model import build_model


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_gmacs(model_cfg, resolution: int = 224, num_classes: int | None = None) -> float:
    """GMACs of one image at `resolution`: FlopCounterMode counts 2 per MAC (convs and matmuls), halved.

    The network is built on the meta device, so this allocates nothing and takes milliseconds."""
    cfg = copy.deepcopy(getattr(model_cfg, "model", model_cfg))
    if num_classes is not None:
        cfg.num_classes = num_classes
    with torch.device("meta"):
        model = build_model(cfg).eval()
        x = torch.empty(1, cfg.in_chans, resolution, resolution)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 2 / 1e9


def describe(model_cfg, resolution: int = 224, num_classes: int | None = None) -> tuple[int, float]:
    """(parameters, GMACs) of a model config."""
    cfg = copy.deepcopy(getattr(model_cfg, "model", model_cfg))
    if num_classes is not None:
        cfg.num_classes = num_classes
    with torch.device("meta"):
        params = count_params(build_model(cfg))
    return params, count_gmacs(cfg, resolution)
