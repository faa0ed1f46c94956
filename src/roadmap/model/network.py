"""One residual block and one network that, parameterized by `ModelConfig`, is every roadmap step.

Module order follows torchvision's ResNet and timm's ConvNeXt (stem, then per stage an optional
downsampling layer and its blocks, then the head), so their weights copy across in order (weights.py).
A conv has a bias unless BatchNorm follows it (BN's shift makes one redundant; LayerNorm's does not).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import nn

from ..schema import Activation, Downsample, Init, Layout, ModelConfig, Norm, Placement, SpatialConv, Stem


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW tensor, separately at each position (as in ConvNeXt)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__(channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class ToChannelsLast(nn.Module):
    """NCHW -> NHWC (a view), so that norms and 1x1 convs run as LayerNorm and Linear on the last dimension."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1)


class ToChannelsFirst(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 3, 1, 2)


# A ConvNeXt block's per-position layers (LayerNorm, two pointwise layers) are the same function whether the
# pointwise layers run as Linear on NHWC (as timm's convnext_tiny) or as 1x1 convolutions (as timm's convnext_femto).
# On the CPU, on channels_last maps whose positions (batch x height x width) times channels reach this, the
# convolutions are faster; below it the Linear layers are (measured on this project's 2-core CPU, from 25,000 to
# 400,000: docs/benchmarks.md).
CONV_POINTWISE_WORK = 2**17


def pointwise_as_convs(x: torch.Tensor) -> bool:
    b, c, h, w = x.shape
    return x.device.type == "cpu" and b * c * h * w >= CONV_POINTWISE_WORK and \
        x.is_contiguous(memory_format=torch.channels_last)


def make_norm(cfg: ModelConfig, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if cfg.norm == Norm.batch else LayerNorm2d(channels)


def make_act(cfg: ModelConfig) -> nn.Module:
    return nn.ReLU(inplace=True) if cfg.activation == Activation.relu else nn.GELU()


def conv(cfg: ModelConfig, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1,
         normed: bool = False, padding: int | None = None) -> nn.Conv2d:
    bias = not (normed and cfg.norm == Norm.batch)
    pad = k // 2 if padding is None else padding
    return nn.Conv2d(cin, cout, k, stride=stride, padding=pad, groups=groups, bias=bias)


class Block(nn.Module):
    """Three convs (1x1 / kxk / 1x1 in the order `layout` gives) on the residual branch, plus a shortcut."""

    def __init__(self, cfg: ModelConfig, cin: int, cout: int, stride: int, drop_path: float):
        super().__init__()
        hidden = cfg.hidden_width(cout)
        dw = cfg.spatial_conv == SpatialConv.depthwise
        k = cfg.kernel_size
        if cfg.layout == Layout.depthwise_first:  # (cin, cout, kernel, stride, groups)
            specs = [(cin, cin, k, stride, cin if dw else 1), (cin, hidden, 1, 1, 1), (hidden, cout, 1, 1, 1)]
            spatial = 0
        else:
            specs = [(cin, hidden, 1, 1, 1), (hidden, hidden, k, stride, hidden if dw else 1),
                     (hidden, cout, 1, 1, 1)]
            spatial = 1
        every_norm = cfg.norm_placement == Placement.every_conv
        every_act = cfg.act_placement == Placement.every_conv
        layers: list[nn.Module] = []
        for i, (ci, co, kk, s, g) in enumerate(specs):
            normed = every_norm or i == spatial
            layers.append(conv(cfg, ci, co, kk, s, g, normed=normed))
            if normed:
                layers.append(make_norm(cfg, co))
            if (every_act and i < 2) or (not every_act and i == 1):
                layers.append(make_act(cfg))
        if cfg.layout == Layout.depthwise_first and cfg.norm == Norm.layer and not every_norm and not every_act:
            # ConvNeXt's block: after the kxk conv everything is per position, so it runs on NHWC as timm's and the
            # official code do: LayerNorm and Linear layers (the same weights as 1x1 convs), two permutes a block.
            norm, pw1, act, pw2 = layers[1:]
            layers = [layers[0], ToChannelsLast(), nn.LayerNorm(norm.normalized_shape, eps=norm.eps),
                      nn.Linear(pw1.in_channels, pw1.out_channels), act, nn.Linear(pw2.in_channels, pw2.out_channels),
                      ToChannelsFirst()]
        self.nhwc = len(layers) == 7 and isinstance(layers[1], ToChannelsLast)
        self.gamma = nn.Parameter(torch.full((cout,), cfg.layer_scale)) if cfg.layer_scale > 0 else None
        self.branch = nn.Sequential(*layers)
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(conv(cfg, cin, cout, 1, stride, normed=True), make_norm(cfg, cout))
        else:
            self.shortcut = nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.post_act = make_act(cfg) if every_act else nn.Identity()

    def nhwc_branch(self, x: torch.Tensor) -> torch.Tensor:
        """The ConvNeXt branch with the layer scale folded into the last pointwise layer: gamma * (W y + b) as
        (gamma W) y + gamma b, the same function and gradients without timm's passes over the block's output (the
        multiply forward; in backward, the gradient's multiply and gamma's reduction). Its pointwise layers run as
        1x1 convolutions on CPU channels_last maps large enough (`pointwise_as_convs`), as Linear layers on the NHWC
        view otherwise."""
        dw, _, norm, pw1, act, pw2, _ = self.branch
        w2, b2 = pw2.weight, pw2.bias
        if self.gamma is not None:
            w2, b2 = w2 * self.gamma[:, None], b2 * self.gamma
        y = dw(x)
        if pointwise_as_convs(x):
            y = F.layer_norm(y.permute(0, 2, 3, 1), norm.normalized_shape, norm.weight, norm.bias, norm.eps)
            y = act(F.conv2d(y.permute(0, 3, 1, 2), pw1.weight[:, :, None, None], pw1.bias))
            return F.conv2d(y, w2[:, :, None, None], b2)
        y = act(pw1(norm(y.permute(0, 2, 3, 1))))
        return F.linear(y, w2, b2).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.nhwc:
            y = self.nhwc_branch(x)
        else:
            y = self.branch(x)
            if self.gamma is not None:
                y = y * self.gamma.view(1, -1, 1, 1)
        y, shortcut = self.drop_path(y), self.shortcut(x)
        # The sum in place, as torchvision's (no backward here needs the branch's output), in the type that timm's
        # and the official blocks' sum has under autocast: the widest of the branch, the shortcut and the layer
        # scale (their y * gamma is fp32 when y is bf16); the folded scale leaves the branch bf16.
        wide = torch.promote_types(y.dtype, shortcut.dtype)
        if self.gamma is not None:
            wide = torch.promote_types(wide, self.gamma.dtype)
        return self.post_act((y if y.dtype == wide else y.to(wide)).add_(shortcut))


def make_stem(cfg: ModelConfig) -> nn.Sequential:
    """Reduces the image `stem_stride` times: patchify, a sxs/s conv + norm; ResNet, a 7x7/2 conv + norm + act
    + 3x3/2 max-pool at stride 4, without the max-pool at 2, and a CIFAR-style 3x3/1 conv + norm + act at 1."""
    c, s = cfg.stem_width, cfg.stem_stride
    if cfg.stem == Stem.patchify:
        return nn.Sequential(conv(cfg, cfg.in_chans, c, s, stride=s, normed=True, padding=0), make_norm(cfg, c))
    layers = [conv(cfg, cfg.in_chans, c, 7 if s > 1 else 3, stride=min(s, 2), normed=True), make_norm(cfg, c),
              make_act(cfg)]
    return nn.Sequential(*layers, *([nn.MaxPool2d(3, stride=2, padding=1)] if s == 4 else []))


class Network(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.stem = make_stem(cfg)
        n = sum(cfg.depths)
        rates = [cfg.drop_path * i / max(n - 1, 1) for i in range(n)]  # as torch.linspace(0, rate, n)
        separate = cfg.downsample == Downsample.separate
        stages, cin, b = [], cfg.stem_width, 0
        for i, (depth, width) in enumerate(zip(cfg.depths, cfg.widths)):
            layers: list[nn.Module] = []
            stride = 2 if i > 0 else 1
            if separate and i > 0:
                layers += [make_norm(cfg, cin), conv(cfg, cin, width, 2, stride=2, padding=0)]
                cin, stride = width, 1
            for j in range(depth):
                layers.append(Block(cfg, cin, width, stride if j == 0 else 1, rates[b]))
                cin, b = width, b + 1
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.head_norm = make_norm(cfg, cin) if cfg.head_norm else nn.Identity()
        self.fc = nn.Linear(cin, cfg.num_classes)
        self.num_features = cin
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                if self.cfg.init == Init.trunc_normal:
                    nn.init.trunc_normal_(m.weight, std=0.02)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(self.stem(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head_norm(x.mean((2, 3), keepdim=True))
        return self.fc(x.flatten(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def build_model(cfg) -> Network:
    """Build the network of a `RunConfig` (or of a bare `ModelConfig`)."""
    return Network(getattr(cfg, "model", cfg))
