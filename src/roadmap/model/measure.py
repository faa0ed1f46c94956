"""Parameters and multiply-accumulates (the paper's "FLOPs", fvcore convention)."""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode

from .network import build_model


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _meta_model(model_cfg, num_classes: int | None) -> torch.nn.Module:
    """The network on the meta device: no memory, milliseconds."""
    cfg = copy.deepcopy(getattr(model_cfg, "model", model_cfg))
    if num_classes is not None:
        cfg.num_classes = num_classes
    with torch.device("meta"):
        return build_model(cfg).eval()


SHAPE_KEEPERS = (F.batch_norm, F.layer_norm, F.gelu)


class _ShapeKeepersAsIdentity(TorchFunctionMode):
    """BatchNorm, LayerNorm and GELU as the identity: on the meta device their decompositions run op by op in
    Python (BatchNorm 15 times the cost of the rest of a ResNet's forward, LayerNorm half of a ConvNeXt's, GELU
    half of a check of a GELU network); each keeps the shape, counts no MACs and runs on any map, so measuring
    skips them."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return args[0] if func in SHAPE_KEEPERS else func(*args, **(kwargs or {}))


def _meta_forward(model: torch.nn.Module, resolution: int) -> None:
    with torch.no_grad(), _ShapeKeepersAsIdentity():
        model(torch.empty(1, model.cfg.in_chans, resolution, resolution, device="meta"))


def _gmacs(model: torch.nn.Module, resolution: int) -> float:
    with FlopCounterMode(display=False) as counter:
        _meta_forward(model, resolution)
    return counter.get_total_flops() / 2 / 1e9


def count_gmacs(model_cfg, resolution: int = 224, num_classes: int | None = None) -> float:
    """GMACs of one image at `resolution`: FlopCounterMode counts 2 per MAC (convs and matmuls),
    halved."""
    return _gmacs(_meta_model(model_cfg, num_classes), resolution)


def describe(model_cfg, resolution: int = 224, num_classes: int | None = None) -> tuple[int, float]:
    """(parameters, GMACs) of a model config."""
    model = _meta_model(model_cfg, num_classes)
    return count_params(model), _gmacs(model, resolution)


def feature_sizes(model_cfg, resolution: int) -> list[int]:
    """The side of the feature map after the stem and after each stage, for a `resolution` input."""
    model = _meta_model(model_cfg, None)
    sizes: list[int] = []
    for m in [model.stem, *model.stages]:
        m.register_forward_hook(lambda m, args, out: sizes.append(out.shape[-1]))
    _meta_forward(model, resolution)
    return sizes


_RUN: set[tuple[str, int]] = set()  # (network, resolution) pairs that ran, so that each one is built once per process


def check_input_size(model_cfg, resolution: int) -> None:
    """Raise ValueError if some layer cannot run on a `resolution` input (a 2x2/2 conv on a 1x1 map,
    say), naming the layer, the map it gets and the smallest resolution that runs. Builds the network
    (20 to 40 ms) for a pair of network and resolution not seen to run before in this process."""
    key = (repr(getattr(model_cfg, "model", model_cfg)), resolution)
    if key in _RUN:
        return
    model = _meta_model(model_cfg, None)
    names = {m: n for n, m in model.named_modules()}
    seen: dict = {}
    hooks = [m.register_forward_pre_hook(lambda m, args: seen.update(module=m, shape=tuple(args[0].shape)))
             for m in model.modules() if not list(m.children())]

    def runs(size: int) -> bool:
        try:
            _meta_forward(model, size)
            return True
        except RuntimeError:
            return False

    if runs(resolution):
        _RUN.add(key)
        return
    module, shape = seen["module"], seen["shape"]
    for h in hooks:
        h.remove()
    smallest = next((r for r in range(resolution + 1, 513) if runs(r)), None)
    raise ValueError(
        f"data.resolution={resolution} is too small for this network: {names[module]} "
        f"({type(module).__name__}) gets a {shape[-2]}x{shape[-1]} map and cannot run; "
        + (f"use data.resolution={smallest} or more" if smallest else "no size up to 512 runs")
    )
