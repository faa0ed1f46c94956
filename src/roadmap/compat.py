"""Copy weights from reference implementations (torchvision resnet50, timm convnext_tiny) into ours.

Our modules are registered in the references' order, so the two state dicts pair up one to one; a 1x1
conv and a Linear of the same size are the same weights. Anything else that differs is an error."""
from __future__ import annotations

import torch
from torch import nn


def _same_weights(ours: torch.Tensor, theirs: torch.Tensor) -> bool:
    if ours.shape == theirs.shape:
        return True
    squeeze = lambda t: t.reshape(t.shape[:2]) if t.dim() == 4 and t.shape[2:] == (1, 1) else t  # noqa: E731
    return squeeze(ours).shape == squeeze(theirs).shape


def copy_weights_from(model: nn.Module, reference: nn.Module) -> None:
    """Load `reference`'s parameters and buffers into `model`, or raise ValueError saying where they differ."""
    ours, theirs = list(model.state_dict().items()), list(reference.state_dict().items())
    kind = type(reference).__name__
    for i, ((name, mine), (ref_name, ref)) in enumerate(zip(ours, theirs)):
        if not _same_weights(mine, ref):
            raise ValueError(
                f"the architectures differ: tensor {i} is {name} {tuple(mine.shape)} in this network but "
                f"{ref_name} {tuple(ref.shape)} in the {kind}. torchvision resnet50 matches "
                "step baseline/resnet50 and timm convnext_tiny matches micro/separate_downsample (convnext_t).")
    if len(ours) != len(theirs):
        shorter, longer = (ours, theirs) if len(ours) < len(theirs) else (theirs, ours)
        raise ValueError(
            f"the architectures differ: this network has {len(ours)} tensors, the {kind} {len(theirs)}; "
            f"the first unmatched one is {longer[len(shorter)][0]}.")
    state = {name: ref.reshape(mine.shape) for (name, mine), (_, ref) in zip(ours, theirs)}
    model.load_state_dict(state)
