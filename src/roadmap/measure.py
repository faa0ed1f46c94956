"""Parameters and multiply-accumulates (the paper's "FLOPs", fvcore convention)."""
from __future__ import annotations

import copy

import torch
from torch.utils.flop_counter import FlopCounterMode

from .model import build_model


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _meta_model(model_cfg, num_classes: int | None) -> torch.nn.Module:
    """The network on the meta device: no memory, milliseconds."""
    cfg = copy.deepcopy(getattr(model_cfg, "model", model_cfg))
    if num_classes is not None:
        cfg.num_classes = num_classes
    with torch.device("meta"):
        return build_model(cfg).eval()


def _gmacs(model: torch.nn.Module, resolution: int) -> float:
    x = torch.empty(1, model.cfg.in_chans, resolution, resolution, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 2 / 1e9


def count_gmacs(model_cfg, resolution: int = 224, num_classes: int | None = None) -> float:
    """GMACs of one image at `resolution`: FlopCounterMode counts 2 per MAC (convs and matmuls), halved."""
    return _gmacs(_meta_model(model_cfg, num_classes), resolution)


def describe(model_cfg, resolution: int = 224, num_classes: int | None = None) -> tuple[int, float]:
    """(parameters, GMACs) of a model config."""
    model = _meta_model(model_cfg, num_classes)
    return count_params(model), _gmacs(model, resolution)
