"""The settings whose values are names: each enum's values are what the YAML and the command line
write (`model.norm=layer`). The schema (schema.py) types its fields with them."""
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
    # norms: after each conv; activations: after the first two convs and the add
    every_conv = "every_conv"
    # norm: after the kxk conv; activation: after the block's second conv
    one_per_block = "one_per_block"


class Norm(Enum):
    batch = "batch"  # BatchNorm2d
    layer = "layer"  # LayerNorm over channels at each position (not GroupNorm(1))


class Downsample(Enum):
    # first block of a stage strides on its kxk conv; 1x1/2 conv + norm shortcut
    in_block = "in_block"
    separate = "separate"  # norm + 2x2/2 conv between stages; blocks keep their shape


class Pointwise(Enum):
    # 1x1 convs on large CPU channels_last maps, Linear otherwise (model/network.py)
    auto = "auto"
    linear = "linear"  # Linear layers on the NHWC view (timm's convnext_tiny)
    conv = "conv"      # 1x1 convolutions (timm's conv_mlp)


class Init(Enum):
    # torchvision ResNet: kaiming-normal fan-out convs, default Linear
    kaiming = "kaiming"
    # ConvNeXt: trunc-normal std 0.02 for convs and linears, zero biases
    trunc_normal = "trunc_normal"


class Pipeline(Enum):
    auto = "auto"        # device for in-memory array datasets, workers for image folders
    workers = "workers"  # timm's PIL transforms in DataLoader workers
    # the uint8 dataset on the training device, each batch augmented there (augment.py)
    device = "device"


class Crop(Enum):
    # timm's RandomResizedCrop: a random box (train.crop_scale, crop_ratio), resized
    random_resized = "random_resized"
    # CIFAR's: zero-pad by train.crop_padding, then a random crop back to size
    pad = "pad"


class Fit(Enum):
    # the image resized to data.resolution (timm's transforms: the crop resizes, eval resizes)
    resize = "resize"
    # centred in a data.resolution frame of zeros, every pixel kept (torchvision's CenterCrop)
    pad = "pad"


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
    # the run's console output (log lines, progress bars) in its Logs tab, as printed
    wrap = "wrap"
    # the same, captured at the file-descriptor level (output of C extensions too)
    redirect = "redirect"
    off = "off"


