"""Typed configuration: every knob of the roadmap is a field here (no Hydra); the values live in configs/.

Hydra composes `configs/`; config/store.py registers `RunConfig` with its ConfigStore as `run_schema`, and
config/compose.py merges the composition into it and converts it with `OmegaConf.to_object`, which runs the
`__post_init__` checks: each setting's range from the table in checks.py, and below, the checks that relate
settings. The choices of named settings are the enums of enums.py. Code below the entry point only ever sees these
dataclasses.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from .checks import check_bounds, fail, in_range
from .enums import (  # noqa: F401 (re-exported: the types of the settings)
    Activation,
    Crop,
    Downsample,
    Fit,
    Init,
    Layout,
    LrScaling,
    Norm,
    Optimizer,
    Pipeline,
    Placement,
    Pointwise,
    Schedule,
    SpatialConv,
    Stem,
    WandbConsole,
    WandbMode,
)

# what may change between a run and its resumption: where and how it runs, and the paper's numbers and labels that
# reports set beside it, not what it computes (a run's directory and its config check leave these out)
RESUMABLE_CHANGES = ("system.", "wandb.", "paths", "data.num_workers", "data.root", "data.download",
                     "model.pointwise", "regime.paper", "regime.title", "regime.compare_with", "step.label",
                     "step.paper", "step.note", "train.name")


def flatten(d: dict, prefix: str = "") -> dict:
    """{"model": {"kernel_size": 7}} -> {"model.kernel_size": 7}"""
    out = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def device_augments(auto_augment: Optional[str]) -> bool:
    """Whether the device pipeline (augment.py) can make this recipe's augmentation: none, or RandAugment."""
    return not auto_augment or auto_augment.startswith("rand")


@dataclass
class PaperRow:
    """One row of the paper's table for a regime. `label` names the step where the regime names a network."""
    top1: Optional[float] = None
    top1_std: Optional[float] = None
    gflops: Optional[float] = None
    label: Optional[str] = None
    note: str = ""


@dataclass
class StepMeta:
    """Where a step sits in the roadmap (from its file), and the paper's row for it (`paper`, filled in from the
    regime's table, so one step file serves every roadmap; the chart's one source)."""
    name: str = "custom"
    label: str = "custom"
    order: int = -1
    adopted: bool = True
    paper: Optional[PaperRow] = None


@dataclass
class RegimeConfig:
    """What the paper's two roadmaps differ in (configs/regime/): Table 10, ResNet-50 to ConvNeXt-T (r50), and
    Table 11, ResNet-200 to ConvNeXt-B (r200). Step files refer to these (`${regime.width}`), never to numbers."""
    name: str = "r50"
    title: str = "ResNet-50 to ConvNeXt-T (Table 10)"
    baseline_depths: List[int] = field(default_factory=lambda: [3, 4, 6, 3])
    depths: List[int] = field(default_factory=lambda: [3, 3, 9, 3])  # from the stage-ratio step on
    baseline_width: int = 64
    narrow_width: int = 64  # from the stage-ratio step until the width step
    width: int = 96         # from the width step on
    drop_path: float = 0.1  # stochastic depth with the enhanced recipe
    paper: Dict[str, PaperRow] = field(default_factory=dict)  # by step name
    paper_source: str = ""  # where `paper` comes from, or why it is empty
    # a regime without paper numbers of its own (femto) is compared with another's (r50): its reports take that
    # regime's numbers, with this one's labels
    compare_with: Optional[str] = None

    def __post_init__(self) -> None:
        for name in ("baseline_depths", "depths"):
            if not getattr(self, name) or any(d < 1 for d in getattr(self, name)):
                fail(f"regime.{name}", list(getattr(self, name)), "a non-empty list of positive block counts")
        for name in ("baseline_width", "narrow_width", "width"):
            if getattr(self, name) < 1:
                fail(f"regime.{name}", getattr(self, name), "a positive base width")

    def fill(self, meta: StepMeta) -> StepMeta:
        """`meta` with this regime's row of the paper (and its label, where the regime names the step)."""
        row = self.paper.get(meta.name)
        if row is not None:
            meta.paper, meta.label = row, row.label or meta.label
        return meta


@dataclass
class ModelConfig:
    depths: List[int] = field(default_factory=lambda: [3, 4, 6, 3])
    # Stage widths follow from base_width and the layout: a bottleneck's residual width is 4 x base x 2^i (its
    # 3x3 conv runs at base x 2^i), an inverted or depthwise-first block's is base x 2^i. So "width 96" is written
    # once, whatever the layout. Explicit widths (the residual width per stage) win, for off-roadmap networks.
    base_width: int = 64
    widths: Optional[List[int]] = None
    stem: Stem = Stem.resnet
    stem_width: Optional[int] = None  # None: base_width
    # How much the stem reduces the image: 4 as in the paper; 2 or 1 for small images (the ResNet stem drops its
    # max-pool, then its stride, becoming a CIFAR-style 3x3/1 conv; the patchify stem's patch equals the stride)
    stem_stride: int = 4
    spatial_conv: SpatialConv = SpatialConv.dense
    layout: Layout = Layout.bottleneck
    expansion: int = 4
    kernel_size: int = 3
    activation: Activation = Activation.relu
    act_placement: Placement = Placement.every_conv
    norm: Norm = Norm.batch
    norm_placement: Placement = Placement.every_conv
    downsample: Downsample = Downsample.in_block
    head_norm: bool = False
    layer_scale: float = 0.0  # initial value of the per-channel scale on the residual branch; 0 = off
    drop_path: float = 0.0    # stochastic depth, rising linearly from 0 to this over all blocks
    init: Init = Init.kaiming
    pointwise: Pointwise = Pointwise.auto  # how a ConvNeXt block's pointwise layers run; the same function either way
    in_chans: int = 3
    num_classes: int = 1000

    def __post_init__(self) -> None:
        check_bounds(self, "model", ("base_width", "expansion"))  # before the widths they give
        if self.widths is None:
            scale = self.expansion if self.layout == Layout.bottleneck else 1
            self.widths = [scale * self.base_width * 2 ** i for i in range(len(self.depths))]
        if self.stem_width is None:
            self.stem_width = self.base_width
        if self.stem_stride not in (1, 2, 4):
            fail("model.stem_stride", self.stem_stride, "4 (the paper), 2 or 1 (for small images)")
        if len(self.depths) != len(self.widths):
            fail("model.depths", list(self.depths),
                  f"it has {len(self.depths)} stages but model.widths={list(self.widths)} has "
                  f"{len(self.widths)}; give one depth per width")
        if not self.depths or any(d < 1 for d in self.depths):
            fail("model.depths", list(self.depths), "a non-empty list of positive block counts")
        if any(w < 1 for w in self.widths):
            fail("model.widths", list(self.widths), "a list of positive channel counts")
        if not (1 <= self.kernel_size <= 31 and self.kernel_size % 2 == 1):
            fail("model.kernel_size", self.kernel_size, "an odd integer from 1 to 31")
        if self.layout == Layout.bottleneck and any(w % self.expansion for w in self.widths):
            fail("model.widths", list(self.widths),
                  f"with layout=bottleneck every width must be divisible by model.expansion={self.expansion}")
        check_bounds(self, "model")

    def hidden_width(self, width: int) -> int:
        """Channels inside a block whose residual width is `width`."""
        if self.layout == Layout.bottleneck:
            return width // self.expansion
        return width * self.expansion


@dataclass
class TrainConfig:
    """A training recipe (see configs/recipe/). Learning rate is base_lr per ref_batch images, scaled to the
    global batch by lr_scaling."""
    name: str = "custom"  # the recipe's name (classic, enhanced; classic_small, enhanced_small at recipe_scale=small)
    opt: Optimizer = Optimizer.adamw
    base_lr: float = 4e-3
    ref_batch: int = 4096
    lr_scaling: LrScaling = LrScaling.linear
    batch_size: int = 128  # per process
    momentum: float = 0.9
    betas: List[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.05
    wd_exclude_1d: bool = True  # no weight decay on biases, norms and layer scales
    epochs: int = 300
    sched: Schedule = Schedule.cosine
    warmup_epochs: float = 20
    warmup_lr: float = 1e-6
    min_lr: float = 1e-6
    decay_milestones: List[int] = field(default_factory=lambda: [30, 60])
    decay_rate: float = 0.1
    auto_augment: Optional[str] = "rand-m9-mstd0.5-inc1"
    re_prob: float = 0.25
    crop: Crop = Crop.random_resized
    crop_scale: List[float] = field(default_factory=lambda: [0.08, 1.0])  # random_resized: the box's area fraction
    crop_ratio: List[float] = field(default_factory=lambda: [0.75, 1.3333333333333333])  # ... and its aspect range
    crop_padding: int = 4  # pad: zeros on each side before the random crop
    hflip: float = 0.5
    interpolation: str = "bicubic"
    mixup: float = 0.8
    cutmix: float = 1.0
    mixup_switch_prob: float = 0.5
    smoothing: float = 0.1
    grad_clip: Optional[float] = None
    ema: bool = False
    ema_decay: float = 0.9999

    def __post_init__(self) -> None:
        check_bounds(self, "train")
        if self.base_lr > 10:
            fail("train.base_lr", self.base_lr, "a learning rate per train.ref_batch images of at most 10 "
                  "(the recipes use 4e-3 per 4096 and 0.1 per 256)")
        in_range("train.warmup_epochs", self.warmup_epochs, 0, self.epochs, high_open=True,
                  allowed=f"0 <= warmup < train.epochs={self.epochs}")
        if len(self.betas) != 2:
            fail("train.betas", list(self.betas), "two numbers, e.g. [0.9, 0.999]")
        if not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas):
            fail("train.betas", list(self.betas), "two numbers in [0, 1), e.g. [0.9, 0.999]")
        if list(self.decay_milestones) != sorted(set(self.decay_milestones)) or any(
                m < 1 for m in self.decay_milestones):
            fail("train.decay_milestones", list(self.decay_milestones), "increasing positive epochs, e.g. [30, 60]")
        if len(self.crop_scale) != 2 or not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            fail("train.crop_scale", list(self.crop_scale), "[min, max] with 0 < min <= max <= 1")
        if len(self.crop_ratio) != 2 or not all(isinstance(r, (int, float)) and math.isfinite(r)
                                                 for r in self.crop_ratio) or not 0 < self.crop_ratio[0] <= \
                self.crop_ratio[1]:
            fail("train.crop_ratio", list(self.crop_ratio), "[min, max] aspect ratios with 0 < min <= max, e.g. "
                  "[0.75, 1.333] (timm's)")
        if not all(isinstance(a, (int, float)) and math.isfinite(a) and a >= 0 for a in (self.mixup, self.cutmix)):
            fail("train.mixup/cutmix", (self.mixup, self.cutmix), "alphas >= 0 (0 turns one off)")
        if self.interpolation not in ("bilinear", "bicubic"):
            fail("train.interpolation", self.interpolation, "bilinear or bicubic")

    def lr_for(self, global_batch: int) -> float:
        """The learning rate at this global batch: base_lr per ref_batch images, scaled by lr_scaling."""
        ratio = global_batch / self.ref_batch
        return self.base_lr * {LrScaling.linear: ratio, LrScaling.sqrt: math.sqrt(ratio), LrScaling.none: 1.0}[
            self.lr_scaling]


@dataclass
class DataConfig:
    name: str = "fashion_mnist_small"
    root: str = ""  # where the files are; empty = the dataset's default place
    num_classes: int = 10
    resolution: int = 32
    grayscale: bool = False  # 1-channel source images, repeated to 3 channels
    mean: List[float] = field(default_factory=lambda: [0.485, 0.456, 0.406])
    std: List[float] = field(default_factory=lambda: [0.229, 0.224, 0.225])
    eval_crop_pct: float = 1.0
    download: bool = True
    num_workers: int = 2  # the workers pipeline's
    pipeline: Pipeline = Pipeline.auto
    fit: Fit = Fit.resize  # how an image reaches data.resolution
    # training images held out (stratified by class) and evaluated instead of the test set: for choosing a recipe
    # without looking at the test set. The same images for every step and seed: they depend on val_split_seed alone
    val_split: int = 0
    val_split_seed: int = 0

    def __post_init__(self) -> None:
        check_bounds(self, "data")
        if self.num_classes != "???" and self.num_classes < 1:
            fail("data.num_classes", self.num_classes, "a positive number of classes")
        for name, low_open in (("mean", False), ("std", True)):
            values = getattr(self, name)
            if len(values) != 3 or not all(isinstance(v, (int, float)) and math.isfinite(v) and
                                           (v > 0 if low_open else True) for v in values):
                fail(f"data.{name}", list(values), "three finite numbers, one per channel" +
                      (", each > 0" if low_open else ""))


@dataclass
class BudgetConfig:
    """Scales the recipe's schedule (epochs, warm-up, milestones) without touching the network."""
    name: str = "full"
    epoch_scale: float = 1.0
    epochs: Optional[int] = None          # absolute epoch count; wins over epoch_scale
    max_train_iters: Optional[int] = None  # per epoch, for smoke tests
    max_eval_iters: Optional[int] = None

    def __post_init__(self) -> None:
        check_bounds(self, "budget")


@dataclass
class SystemConfig:
    device: str = "auto"        # auto: cuda when present, else cpu
    # bf16 autocast. null: on CUDA only; true: on the CPU too (slow on CPUs without bf16 units: for testing the
    # path, or on CPUs that have them); false: never
    amp: Optional[bool] = None
    channels_last: bool = True  # NHWC tensors, on CUDA and on the CPU (faster on both)
    compile: bool = False
    fused_optimizer: Optional[bool] = None  # torch's fused AdamW/SGD. null: on CUDA only; true: on the CPU too
    sync_bn: bool = False
    deterministic: bool = False
    # torch's intra-op threads (CPU work); 0: every core for a lone run, cores / n_jobs for each of n_jobs jobs that
    # Hydra's joblib launcher runs side by side (threads fighting over cores slow a run several-fold)
    threads: int = 0
    # images per evaluation batch (no gradients: twice the training batch fits); 0: 2 x train.batch_size
    eval_batch_size: int = 0
    # false: a run that completes deletes its checkpoint.pt, keeping its record, config and predictions (a rerun of
    # the same command still finds it completed); while it trains the checkpoint is kept, for resuming
    keep_checkpoint: bool = True

    def __post_init__(self) -> None:
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            fail("system.device", self.device, "auto, cpu, cuda or cuda:N")
        check_bounds(self, "system")

    def resolve_threads(self, jobs_side_by_side: int = 1, cores: int | None = None) -> int:
        """The thread count to use: `threads`, or for 0 the cores shared out among the jobs running at once."""
        cores = cores or os.cpu_count() or 1
        return self.threads or max(1, cores // max(1, jobs_side_by_side))


@dataclass
class WandbConfig:
    mode: WandbMode = WandbMode.auto
    project: str = "roadmap"
    entity: Optional[str] = None
    group: Optional[str] = None  # default: the sweep's directory name in a multirun
    tags: List[str] = field(default_factory=list)
    log_every: int = 50          # iterations between train/loss and train/lr points (0: the epoch rows only)
    grad_norm: bool = False      # train/grad_norm at those points too (the norm before any clipping)
    console: WandbConsole = WandbConsole.wrap
    log_checkpoints: bool = False  # each epoch's checkpoint as a model artifact (aliases latest, epoch<N>)
    save_code: bool = False      # the project's .py and .yaml files as a code artifact

    def __post_init__(self) -> None:
        check_bounds(self, "wandb")


@dataclass
class PathsConfig:
    """configs/paths/: the values live there (the YAML interpolates them into the run directories and data roots)."""
    output_dir: str = "???"
    data_dir: str = "???"


@dataclass
class ScheduleConfig:
    """What runs, derived from train.* and budget.* (never set it): the recipe's schedule after the budget's
    scaling (milestones only for the multistep schedule), and its learning rate at the global batch.
    train.epochs, train.warmup_epochs, train.decay_milestones and train.base_lr stay the recipe's nominal values."""
    epochs: Optional[int] = None
    warmup_epochs: Optional[float] = None
    decay_milestones: Optional[List[int]] = None
    lr: Optional[float] = None
    global_batch: Optional[int] = None


def world_size() -> int:
    """Processes training together (torchrun's WORLD_SIZE; 1 without it)."""
    return int(os.environ.get("WORLD_SIZE", 1))


@dataclass
class RunConfig:
    step: StepMeta = field(default_factory=StepMeta)
    regime: RegimeConfig = field(default_factory=RegimeConfig)
    # The reverse study: a step of this step's roadmap whose own changes are undone (leave_one_out.py); None: none
    undo: Optional[str] = None
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    system: SystemConfig = field(default_factory=SystemConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    seed: int = 0
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)  # derived: what runs (ScheduleConfig)

    def __post_init__(self) -> None:
        self.regime.fill(self.step)
        derived = self.derived_schedule()
        for name, value in vars(self.schedule).items():
            if value is not None and value != getattr(derived, name):
                fail(f"schedule.{name}", value, f"no value of its own: schedule.* says what runs, derived from "
                      f"train.* and budget.* ({getattr(derived, name)!r} here); set budget.epochs or "
                      "budget.epoch_scale for the schedule, train.base_lr for the learning rate")
        self.schedule = derived
        check_bounds(self, "")
        if self.model.in_chans != 3:
            fail("model.in_chans", self.model.in_chans, "3: every dataset reaches the network as RGB (grayscale "
                  "images are repeated to 3 channels)")
        if self.model.num_classes < self.data.num_classes:
            fail("model.num_classes", self.model.num_classes, f"at least the dataset's class count, data.num_classes="
                  f"{self.data.num_classes} ({self.data.name}); leave model.num_classes out to follow it")
        t = self.train
        if self.data.pipeline == Pipeline.device and not device_augments(t.auto_augment):
            fail("data.pipeline", "device", f"the device pipeline does RandAugment (train.auto_augment='rand-...') "
                  f"only, not {t.auto_augment!r}; use data.pipeline=workers or auto")
        if self.model.norm == Norm.batch and t.batch_size < 2:
            fail("train.batch_size", t.batch_size, "at least 2 with model.norm=batch (BatchNorm normalizes over "
                  "the batch), or model.norm=layer")
        if (t.mixup > 0 or t.cutmix > 0) and t.batch_size % 2:
            fail("train.batch_size", t.batch_size, f"an even number: Mixup/CutMix (train.mixup={t.mixup}, "
                  f"train.cutmix={t.cutmix}) pairs each image with another; or train.mixup=0 train.cutmix=0")

    @property
    def eval_batch_size(self) -> int:
        """Images per evaluation batch: system.eval_batch_size, or twice the training batch."""
        return self.system.eval_batch_size or 2 * self.train.batch_size

    def derived_schedule(self) -> ScheduleConfig:
        """What runs: the schedule after the budget and the learning rate at the global batch (see ScheduleConfig)."""
        return derive_schedule(self.train, self.budget)

    def schedule_epochs(self) -> tuple[int, float, List[int]]:
        """Epochs, warm-up epochs and milestones after the budget's scaling."""
        s = derive_schedule(self.train, self.budget)
        return s.epochs, s.warmup_epochs, s.decay_milestones


def derive_schedule(t: TrainConfig, b: BudgetConfig) -> ScheduleConfig:
    """The recipe's schedule scaled to the budget's epochs, and base_lr scaled to the global batch."""
    epochs = b.epochs if b.epochs is not None else max(1, round(t.epochs * b.epoch_scale))
    scale = epochs / t.epochs
    batch = t.batch_size * world_size()
    milestones = [max(1, round(m * scale)) for m in t.decay_milestones] if t.sched == Schedule.multistep else []
    return ScheduleConfig(epochs, t.warmup_epochs * scale, milestones, t.lr_for(batch), batch)
