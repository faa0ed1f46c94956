"""The settings whose values are names: each enum's values are what the YAML and the command line write
(`model.norm=layer`). The schema (schema.py) types its fields with them."""
from __future__ import annotations

from enum import Enum


class Stem(Enum):
    resnet = "resnet"      # 7x7/2 conv + norm + act + 3x3/2 max-pool
    patchify = "patchify"  # 4x4/4 conv + norm


class SpatialConv(Enum):
    dense = "dense"          # groups = 1
    depthwise = "depthwise"  # groups = channels


class Layout(Enum):
    bottleneck = "bottleneck"            # 1x1 reduce (width/expansion) -> kxk -> 1x1 back to width
    inverted = "inverted"                # 1x1 expand (width*expansion) -> kxk -> 1x1 back to width
    depthwise_first = "depthwise_first"  # kxk at width -> 1x1 expand (width*expansion) -> 1x1 back


class Activation(Enum):
    relu = "relu"
    gelu = "gelu"


class Placement(Enum):
    every_conv = "every_conv"        # norms: after each conv; activations: after the first two convs and the add
    one_per_block = "one_per_block"  # norm: after the kxk conv; activation: after the block's second conv


class Norm(Enum):
    batch = "batch"  # BatchNorm2d
    layer = "layer"  # LayerNorm over channels at each position (not GroupNorm(1))


class Downsample(Enum):
    in_block = "in_block"  # first block of a stage strides on its kxk conv; 1x1/2 conv + norm shortcut
    separate = "separate"  # norm + 2x2/2 conv between stages; blocks keep their shape


class Pointwise(Enum):
    auto = "auto"      # 1x1 convs on large CPU channels_last maps, Linear otherwise (model/network.py)
    linear = "linear"  # Linear layers on the NHWC view (timm's convnext_tiny)
    conv = "conv"      # 1x1 convolutions (timm's conv_mlp)


class Init(Enum):
    kaiming = "kaiming"            # torchvision ResNet: kaiming-normal fan-out convs, default Linear
    trunc_normal = "trunc_normal"  # ConvNeXt: trunc-normal std 0.02 for convs and linears, zero biases


class Pipeline(Enum):
    auto = "auto"        # device for in-memory array datasets, workers for image folders
    workers = "workers"  # timm's PIL transforms in DataLoader workers
    device = "device"    # the uint8 dataset on the training device, each batch augmented there (augment.py)


class Crop(Enum):
    random_resized = "random_resized"  # timm's RandomResizedCrop: a random box (train.crop_scale, crop_ratio), resized
    pad = "pad"                        # CIFAR's: zero-pad by train.crop_padding, then a random crop back to size


class Fit(Enum):
    resize = "resize"  # the image resized to data.resolution (timm's transforms: the crop resizes, eval resizes)
    pad = "pad"        # centred in a data.resolution frame of zeros, every pixel kept (torchvision's CenterCrop)


class LrScaling(Enum):
    linear = "linear"  # base_lr x batch / ref_batch (Goyal et al.; the paper's recipes)
    sqrt = "sqrt"      # base_lr x sqrt(batch / ref_batch)
    none = "none"      # base_lr as it is, whatever the batch


class Optimizer(Enum):
    sgd = "sgd"
    adamw = "adamw"


class Schedule(Enum):
    multistep = "multistep"
    cosine = "cosine"


class WandbMode(Enum):
    auto = "auto"        # online with an API key, else offline
    online = "online"
    offline = "offline"
    disabled = "disabled"


class WandbConsole(Enum):
    wrap = "wrap"          # the run's console output (log lines, progress bars) in its Logs tab, as printed
    redirect = "redirect"  # the same, captured at the file-descriptor level (output of C extensions too)
    off = "off"


