"""A ConvNeXt in the layout of the official facebookresearch code, for testing `copy_weights_from` offline.

The official package is not installable here. This module is written for the tests from the official code's
published structure, not copied from it: the same attribute names (downsample_layers, stages, dwconv, norm,
pwconv1, pwconv2, gamma, norm, head), the same registration order (every downsampling layer, the stem first,
before the stages), Linear layers for the pointwise convs on NHWC tensors, and LayerNorms with eps 1e-6. Its
forward is checked against timm's convnext_tiny in the tests, so it cannot drift from the real thing unnoticed.
`official_state_dict` turns a timm ConvNeXt's state dict into the official checkpoints' key names and order."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ChannelsFirstLayerNorm(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c))

    def forward(self, x):
        return F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, 1e-6).permute(0, 3, 1, 2)


class OfficialBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.dwconv = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c, eps=1e-6)
        self.pwconv1, self.act, self.pwconv2 = nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(1e-6 * torch.ones(c))

    def forward(self, x):
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class OfficialConvNeXt(nn.Module):
    def __init__(self, depths=(3, 3, 9, 3), dims=(96, 192, 384, 768), num_classes=1000):
        super().__init__()
        self.downsample_layers = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(3, dims[0], 4, stride=4), ChannelsFirstLayerNorm(dims[0]))]
            + [nn.Sequential(ChannelsFirstLayerNorm(dims[i - 1]), nn.Conv2d(dims[i - 1], dims[i], 2, stride=2))
               for i in range(1, 4)])
        self.stages = nn.ModuleList([nn.Sequential(*[OfficialBlock(dims[i]) for _ in range(depths[i])])
                                     for i in range(4)])
        self.norm = nn.LayerNorm(dims[-1], eps=1e-6)
        self.head = nn.Linear(dims[-1], num_classes)

    def forward(self, x):
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.head(self.norm(x.mean((-2, -1))))


def official_state_dict(timm_state: dict) -> dict:
    """timm ConvNeXt key names -> the official checkpoints' names, in the official order."""
    renames = [(r"^stem\.", "downsample_layers.0."), (r"^stages\.(\d+)\.downsample\.", r"downsample_layers.\1."),
               (r"^stages\.(\d+)\.blocks\.(\d+)\.conv_dw\.", r"stages.\1.\2.dwconv."),
               (r"^stages\.(\d+)\.blocks\.(\d+)\.mlp\.fc1\.", r"stages.\1.\2.pwconv1."),
               (r"^stages\.(\d+)\.blocks\.(\d+)\.mlp\.fc2\.", r"stages.\1.\2.pwconv2."),
               (r"^stages\.(\d+)\.blocks\.(\d+)\.", r"stages.\1.\2."),
               (r"^head\.norm\.", "norm."), (r"^head\.fc\.", "head.")]
    import re
    out = {}
    for name, t in timm_state.items():
        for pattern, repl in renames:
            if re.match(pattern, name):
                name = re.sub(pattern, repl, name)
                break
        out[name] = t
    first = [k for k in out if k.startswith("downsample_layers.")]
    return {k: out[k] for k in first + [k for k in out if k not in first]}
