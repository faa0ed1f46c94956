"""One residual block and one network that, parameterized by `ModelConfig`, is every roadmap step.

Module order follows torchvision's ResNet and timm's ConvNeXt (stem, then per stage an optional
downsampling layer and its blocks, then the head), so their weights copy across in order
(weights.py). A conv has a bias unless BatchNorm follows it (BN's shift makes one redundant;
LayerNorm's does not)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import DropPath, LayerNorm2d
from torch import nn

from ..enums import Activation, Downsample, Init, Layout, Norm, Placement, Pointwise, SpatialConv, Stem
from ..schema import ModelConfig

# How ConvNeXt's pointwise layers run (`model.pointwise`; the same weights and function either way):
# as Linear layers on the NHWC view (timm's convnext_tiny), as 1x1 convolutions (timm's conv_mlp, as
# in convnext_femto), or, with `auto`, as convolutions on CPU channels_last maps of at least this
# many values and as Linear layers otherwise (measured on this project's 2-core CPU, from 25,000 to
# 400,000 values: docs/benchmarks.md).
CONV_POINTWISE_WORK = 2**17


def pointwise_as_convs(path: Pointwise, x: torch.Tensor) -> bool:
    if path != Pointwise.auto:
        return path == Pointwise.conv
    return x.device.type == "cpu" and x.numel() >= CONV_POINTWISE_WORK and \
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
    """A residual block: three convs on the branch, named as in the reference code, plus a shortcut.

    1x1 -> kxk -> 1x1 (`layout` bottleneck or inverted) is torchvision's Bottleneck: conv1, norm1,
    act1, conv2, norm2, act2, conv3, norm3, and `post_act` after the sum. kxk -> 1x1 -> 1x1
    (depthwise_first) is the official ConvNeXt block: dwconv, norm, pwconv1, act, pwconv2, with the
    layers that the steps before `micro/fewer_norms` still have (dwact, pwnorm1, pwnorm2). A layer
    that a step leaves out is an nn.Identity, so every step has the same names."""

    BOTTLENECK = ("conv1", "norm1", "act1", "conv2", "norm2", "act2", "conv3", "norm3")
    CONVNEXT = ("dwconv", "norm", "dwact", "pwconv1", "pwnorm1", "act", "pwconv2", "pwnorm2")

    def __init__(self, cfg: ModelConfig, cin: int, cout: int, stride: int, drop_path: float):
        super().__init__()
        # the layer scale first: its place in the state dict (and the optimizer's order) is timm's
        # and the official's
        self.gamma = (
            nn.Parameter(torch.full((cout,), cfg.layer_scale)) if cfg.layer_scale > 0 else None
        )
        hidden, k = cfg.hidden_width(cout), cfg.kernel_size
        groups = lambda c: c if cfg.spatial_conv == SpatialConv.depthwise else 1  # noqa: E731
        every_norm = cfg.norm_placement == Placement.every_conv
        every_act = cfg.act_placement == Placement.every_conv
        norm = lambda c, on: make_norm(cfg, c) if on else nn.Identity()  # noqa: E731
        act = lambda on: make_act(cfg) if on else nn.Identity()  # noqa: E731
        # ConvNeXt's own block: after the kxk conv everything is per position, so LayerNorm and the
        # pointwise layers run on the NHWC view, as timm's and the official code do (Linear layers:
        # the same weights as 1x1 convs)
        self.channels_last_mlp = cfg.layout == Layout.depthwise_first and cfg.norm == Norm.layer \
            and not every_norm and not every_act
        if cfg.layout == Layout.depthwise_first:
            self.names = self.CONVNEXT
            self.dwconv = conv(cfg, cin, cin, k, stride, groups(cin), normed=True)
            self.norm = nn.LayerNorm(cin, eps=1e-6) if self.channels_last_mlp else norm(cin, True)
            self.dwact = act(every_act)
            self.pwconv1 = self._pointwise_layer(cfg, cin, hidden, every_norm)
            self.pwnorm1 = norm(hidden, every_norm)
            self.act = act(True)
            self.pwconv2 = self._pointwise_layer(cfg, hidden, cout, every_norm)
            self.pwnorm2 = norm(cout, every_norm)
        else:
            self.names = self.BOTTLENECK
            self.conv1 = conv(cfg, cin, hidden, 1, normed=every_norm)
            self.norm1, self.act1 = norm(hidden, every_norm), act(every_act)
            self.conv2 = conv(cfg, hidden, hidden, k, stride, groups(hidden), normed=True)
            self.norm2, self.act2 = norm(hidden, True), act(True)
            self.conv3 = conv(cfg, hidden, cout, 1, normed=every_norm)
            self.norm3 = norm(cout, every_norm)
        self.pointwise_path = cfg.pointwise
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                conv(cfg, cin, cout, 1, stride, normed=True), make_norm(cfg, cout)
            )
        else:
            self.shortcut = nn.Identity()
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.post_act = make_act(cfg) if every_act else nn.Identity()

    def _pointwise_layer(self, cfg: ModelConfig, cin: int, cout: int, normed: bool) -> nn.Module:
        return (
            nn.Linear(cin, cout)
            if self.channels_last_mlp
            else conv(cfg, cin, cout, 1, normed=normed)
        )

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        """The residual branch, scaled by gamma if the block has a layer scale."""
        if self.channels_last_mlp:
            return self.convnext_branch(x)
        if self.names == self.CONVNEXT:
            y = self.dwact(self.norm(self.dwconv(x)))
            y = self.pwnorm2(self.pwconv2(self.act(self.pwnorm1(self.pwconv1(y)))))
        else:
            y = self.act1(self.norm1(self.conv1(x)))
            y = self.norm3(self.conv3(self.act2(self.norm2(self.conv2(y)))))
        return y if self.gamma is None else y * self.gamma.view(1, -1, 1, 1)

    def convnext_branch(self, x: torch.Tensor) -> torch.Tensor:
        """dwconv, then LayerNorm, pwconv1, act and pwconv2 at each position, with the layer scale
        folded into pwconv2: gamma * (W y + b) as (gamma W) y + gamma b, the same function and
        gradients without timm's passes over the block's output (the multiply forward; in backward,
        the gradient's multiply and gamma's reduction). The pointwise layers run as Linear layers on
        the NHWC view or as 1x1 convolutions (`model.pointwise`)."""
        w2, b2 = self.pwconv2.weight, self.pwconv2.bias
        if self.gamma is not None:
            w2, b2 = w2 * self.gamma[:, None], b2 * self.gamma
        y = self.dwconv(x)
        if pointwise_as_convs(self.pointwise_path, x):
            n = self.norm
            y = F.layer_norm(
                y.permute(0, 2, 3, 1), n.normalized_shape, n.weight, n.bias, n.eps
            ).permute(0, 3, 1, 2)
            y = self.act(F.conv2d(y, self.pwconv1.weight[:, :, None, None], self.pwconv1.bias))
            return F.conv2d(y, w2[:, :, None, None], b2)
        y = self.act(self.pwconv1(self.norm(y.permute(0, 2, 3, 1))))
        return F.linear(y, w2, b2).permute(0, 3, 1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, shortcut = self.drop_path(self.branch(x)), self.shortcut(x)
        # The sum in place, as torchvision's (no backward here needs the branch's output), in the
        # type that timm's and the official blocks' sum has under autocast: the widest of the
        # branch, the shortcut and the layer scale (their y * gamma is fp32 when y is bf16); the
        # folded scale leaves the branch bf16.
        wide = torch.promote_types(y.dtype, shortcut.dtype)
        if self.gamma is not None:
            wide = torch.promote_types(wide, self.gamma.dtype)
        return self.post_act((y if y.dtype == wide else y.to(wide)).add_(shortcut))

    def legacy_names(self) -> list[str | None]:
        """The layer at each position of the unnamed nn.Sequential `branch` that checkpoints written
        before the layers had names hold (None: a permute, without weights)."""
        if self.channels_last_mlp:
            return ["dwconv", None, "norm", "pwconv1", "act", "pwconv2", None]
        return [name for name in self.names if not isinstance(getattr(self, name), nn.Identity)]


def make_stem(cfg: ModelConfig) -> nn.Sequential:
    """Reduces the image `stem_stride` times: patchify, a sxs/s conv + norm; ResNet, a 7x7/2 conv +
    norm + act + 3x3/2 max-pool at stride 4, without the max-pool at 2, and a CIFAR-style 3x3/1 conv
    + norm + act at 1."""
    c, s = cfg.stem_width, cfg.stem_stride
    if cfg.stem == Stem.patchify:
        return nn.Sequential(
            conv(cfg, cfg.in_chans, c, s, stride=s, normed=True, padding=0), make_norm(cfg, c)
        )
    layers = [
        conv(cfg, cfg.in_chans, c, 7 if s > 1 else 3, stride=min(s, 2), normed=True),
        make_norm(cfg, c),
        make_act(cfg),
    ]
    return nn.Sequential(*layers, *([nn.MaxPool2d(3, stride=2, padding=1)] if s == 4 else []))


class Network(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.stem = make_stem(cfg)
        n = sum(cfg.depths)
        # as torch.linspace(0, rate, n)
        rates = [cfg.drop_path * i / max(n - 1, 1) for i in range(n)]
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
        if self.fc.weight.is_meta:  # shapes only (measuring, checking): no values to draw, half the build's time
            return
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
