"""Copy weights from reference implementations into ours: torchvision's ResNets, timm's ResNets and
ConvNeXts, and the official facebookresearch ConvNeXt (its modules, or its checkpoints' state
dicts).

Our modules are registered in timm's and torchvision's order, so the two state dicts pair up one to
one; a 1x1 conv and a Linear of the same size are the same weights. The official ConvNeXt registers
all four downsampling layers (the stem first) before the stages, so its tensors are first put in
stage order: downsampling layer i, then stage i. Anything else that differs is an error that names
the first tensor where the two disagree."""
from __future__ import annotations

import re
from typing import Mapping

import torch
from torch import nn

from .network import Block


def _same_weights(ours: torch.Tensor, theirs: torch.Tensor) -> bool:
    if ours.shape == theirs.shape:
        return True
    squeeze = lambda t: t.reshape(t.shape[:2]) if t.dim() == 4 and t.shape[2:] == (1, 1) else t  # noqa: E731
    return squeeze(ours).shape == squeeze(theirs).shape


def _stage_order(state: list[tuple[str, torch.Tensor]]) -> list[tuple[str, torch.Tensor]]:
    """The official ConvNeXt's tensors in timm's order: downsample_layers.i before stages.i, the
    rest after."""
    def key(item: tuple[int, tuple[str, torch.Tensor]]) -> tuple:
        i, (name, _) = item
        m = re.match(r"(downsample_layers|stages)\.(\d+)\.", name)
        if m is None:
            return (1, 0, 0, i)  # the final norm and the head, as they were
        return (0, int(m.group(2)), m.group(1) == "stages", i)
    return [t for _, t in sorted(enumerate(state), key=key)]


def _tensors(
    reference: nn.Module | Mapping[str, torch.Tensor],
) -> tuple[list[tuple[str, torch.Tensor]], str]:
    if isinstance(reference, nn.Module):
        state, kind = reference.state_dict(), type(reference).__name__
    else:
        state, kind = reference, "state dict"
        # an official checkpoint: {"model": ...}
        if "model" in state and isinstance(state["model"], Mapping):
            state = state["model"]
    items = list(state.items())
    if any(name.startswith("downsample_layers.") for name, _ in items):
        items, kind = _stage_order(items), f"official ConvNeXt {kind}"
    return items, kind


def copy_weights_from(model: nn.Module, reference: nn.Module | Mapping[str, torch.Tensor],
                      classifier: bool = True) -> None:
    """Load `reference`'s parameters and buffers (a module, a state dict, or an official checkpoint)
    into `model`, or raise ValueError saying where they differ. With `classifier=False` the last
    Linear (weight and bias) is left out on both sides, so that a network with another number of
    classes keeps its own, for fine-tuning."""
    ours, (theirs, kind) = list(model.state_dict().items()), _tensors(reference)
    if not classifier:
        for side, network in ((ours, "this network"), (theirs, f"the {kind}")):
            if len(side) < 2 or side[-2][1].dim() != 2 or side[-1][1].dim() != 1:
                raise ValueError(f"classifier=False leaves out the last Linear layer, but {network} does not end with "
                                 f"one ({', '.join(n for n, _ in side[-2:])})")
        ours, theirs = ours[:-2], theirs[:-2]
    for i, ((name, mine), (ref_name, ref)) in enumerate(zip(ours, theirs)):
        if not _same_weights(mine, ref):
            hint = " (another number of classes? copy with classifier=False)" \
                if classifier and i >= len(ours) - 2 and ref.dim() <= 2 else ""
            raise ValueError(
                f"the architectures differ: tensor {i} is {name} {tuple(mine.shape)} in this network but "
                f"{ref_name} {tuple(ref.shape)} in the {kind}{hint}. ResNets match baseline/resnet50 with their "
                "depths, ConvNeXts micro/separate_downsample (convnext_t) with their depths and model.base_width.")
    if len(ours) != len(theirs):
        shorter, longer = (ours, theirs) if len(ours) < len(theirs) else (theirs, ours)
        raise ValueError(
            f"the architectures differ: this network has {len(ours)} tensors, the {kind} {len(theirs)}; "
            f"the first unmatched one is {longer[len(shorter)][0]}.")
    state = {name: ref.reshape(mine.shape) for (name, mine), (_, ref) in zip(ours, theirs)}
    model.load_state_dict(state, strict=classifier)


def upgrade_state_dict(
    model: nn.Module, state: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """A state dict of `model` written before its blocks' layers had names (each block's `branch.N.`
    keys, by position in an nn.Sequential) with today's names (`conv1.`, `dwconv.`, ...); today's
    state dicts unchanged. Keys may carry a prefix (an EMA's `module.`)."""
    blocks = {
        name: block.legacy_names()
        for name, block in model.named_modules()
        if isinstance(block, Block)
    }
    out = {}
    for key, value in state.items():
        head, found, tail = key.partition(".branch.")
        block = (
            next((b for b in blocks if head == b or head.endswith("." + b)), None)
            if found
            else None
        )
        if block is None:
            out[key] = value
            continue
        index, rest = tail.split(".", 1)
        out[f"{head}.{blocks[block][int(index)]}.{rest}"] = value
    return out
