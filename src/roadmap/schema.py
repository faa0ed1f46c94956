"""Typed configuration: every knob of the roadmap is a field here (no Hydra). One home per value: a
field without a default (MISSING) is given by every file of its group in configs/, one with a default
by none (tests/test_config.py). config/compose.py merges the composition into RunConfig and converts
it with `OmegaConf.to_object`, which runs the `__post_init__` checks: each setting's range (the table
in checks.py), and below, the checks that relate settings. Code below the entry point sees only these
dataclasses."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import List, Optional

from . import enums
from .checks import MISSING, Bound, check, check_bounds, fail
from .regime import RegimeConfig, StepMeta
from .schedule import ScheduleConfig, derive_schedule

# what may change between a run and its resumption: where and how it runs, and the paper's numbers
# and labels beside it, not what it computes (left out of a run's directory and config check)
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
    """Whether the device pipeline (augment.py) makes this augmentation: none, or RandAugment."""
    return not auto_augment or auto_augment.startswith("rand")


@dataclass
class ModelConfig:
    """The network: its architecture in the baseline step (configs/step/baseline/resnet50.yaml) and
    the steps over it, drop_path and init in the recipes."""
    depths: List[int] = MISSING
    # Stage widths follow from base_width and the layout: a bottleneck's residual width is 4 x base x
    # 2^i (its 3x3 conv at base x 2^i), another block's base x 2^i, so "width 96" is written once.
    # Explicit widths (the residual width per stage) win, for off-roadmap networks.
    base_width: int = MISSING
    widths: Optional[List[int]] = MISSING
    stem: enums.Stem = MISSING
    stem_width: Optional[int] = MISSING  # None: base_width
    # How much the stem reduces the image: 4 (the paper); 2 or 1 for small images (the ResNet stem
    # drops its max-pool, then its stride; the patchify stem's patch equals the stride)
    stem_stride: int = MISSING
    spatial_conv: enums.SpatialConv = MISSING
    layout: enums.Layout = MISSING
    expansion: int = MISSING
    kernel_size: int = MISSING
    activation: enums.Activation = MISSING
    act_placement: enums.Placement = MISSING
    norm: enums.Norm = MISSING
    norm_placement: enums.Placement = MISSING
    downsample: enums.Downsample = MISSING
    head_norm: bool = MISSING
    layer_scale: float = MISSING  # initial per-channel scale on the residual branch; 0: off
    drop_path: float = MISSING    # stochastic depth, rising linearly from 0 to this over all blocks
    init: enums.Init = MISSING
    pointwise: enums.Pointwise = enums.Pointwise.auto  # how ConvNeXt's pointwise layers run
    in_chans: int = 3
    num_classes: int = "${data.num_classes}"  # type: ignore[assignment]  # the dataset's

    def __post_init__(self) -> None:
        check_bounds(self, "model", ("base_width", "expansion"))  # before the widths they give
        if self.widths is None:
            scale = self.expansion if self.layout == enums.Layout.bottleneck else 1
            self.widths = [scale * self.base_width * 2 ** i for i in range(len(self.depths))]
        if self.stem_width is None:
            self.stem_width = self.base_width
        check_bounds(self, "model")
        if len(self.depths) != len(self.widths):
            fail("model.depths", list(self.depths),
                  f"it has {len(self.depths)} stages but model.widths={list(self.widths)} has "
                  f"{len(self.widths)}; give one depth per width")
        if self.layout == enums.Layout.bottleneck and any(w % self.expansion for w in self.widths):
            fail("model.widths", list(self.widths), "with layout=bottleneck every width must be "
                 f"divisible by model.expansion={self.expansion}")

    def hidden_width(self, width: int) -> int:
        """Channels inside a block whose residual width is `width`."""
        bottleneck = self.layout == enums.Layout.bottleneck
        return width // self.expansion if bottleneck else width * self.expansion


@dataclass
class TrainConfig:
    """A training recipe, every value in configs/recipe/. The learning rate is base_lr per ref_batch
    images, scaled to the global batch by lr_scaling."""
    name: str = MISSING  # classic, enhanced; classic_small, enhanced_small at recipe_scale=small
    opt: enums.Optimizer = MISSING
    base_lr: float = MISSING
    ref_batch: int = MISSING
    lr_scaling: enums.LrScaling = MISSING
    batch_size: int = MISSING  # per process
    momentum: float = MISSING
    betas: List[float] = MISSING
    weight_decay: float = MISSING
    wd_exclude_1d: bool = MISSING  # no weight decay on biases, norms and layer scales
    epochs: int = MISSING
    sched: enums.Schedule = MISSING
    warmup_epochs: float = MISSING
    warmup_lr: float = MISSING
    min_lr: float = MISSING
    decay_milestones: List[int] = MISSING
    decay_rate: float = MISSING
    auto_augment: Optional[str] = MISSING
    re_prob: float = MISSING
    crop: enums.Crop = MISSING
    crop_scale: List[float] = MISSING  # random_resized: the box's area fraction
    crop_ratio: List[float] = MISSING  # ... and its aspect range
    crop_padding: int = MISSING  # pad: zeros on each side before the random crop
    hflip: float = MISSING
    interpolation: str = MISSING
    mixup: float = MISSING
    cutmix: float = MISSING
    mixup_switch_prob: float = MISSING
    smoothing: float = MISSING
    grad_clip: Optional[float] = MISSING
    ema: bool = MISSING
    ema_decay: float = MISSING

    def __post_init__(self) -> None:
        check_bounds(self, "train")
        if self.base_lr > 10:
            fail("train.base_lr", self.base_lr, "a learning rate per train.ref_batch images of at "
                 "most 10 (the recipes use 4e-3 per 4096 and 0.1 per 256)")
        check("train.warmup_epochs", self.warmup_epochs,
              Bound(0, self.epochs, f"0 <= warmup < train.epochs={self.epochs}", high_open=True))

    def lr_for(self, global_batch: int) -> float:
        """The learning rate at this global batch: base_lr per ref_batch images, scaled by
        lr_scaling."""
        ratio = global_batch / self.ref_batch
        rule = {"linear": ratio, "sqrt": math.sqrt(ratio), "none": 1.0}
        return self.base_lr * rule[self.lr_scaling.value]


@dataclass
class DataConfig:
    """A dataset (configs/data/ gives each of these values)."""
    name: str = MISSING
    root: str = MISSING  # where the files are; empty = the dataset's default place
    num_classes: int = MISSING
    resolution: int = MISSING
    grayscale: bool = MISSING  # 1-channel source images, repeated to 3 channels
    mean: List[float] = MISSING
    std: List[float] = MISSING
    eval_crop_pct: float = MISSING
    download: bool = MISSING
    num_workers: int = MISSING  # the workers pipeline's
    pipeline: enums.Pipeline = enums.Pipeline.auto
    fit: enums.Fit = enums.Fit.resize  # how an image reaches data.resolution
    # training images held out (stratified by class) and evaluated instead of the test set, to choose
    # a recipe without the test set; the same images for every step and seed (val_split_seed's)
    val_split: int = 0
    val_split_seed: int = 0

    def __post_init__(self) -> None:
        check_bounds(self, "data")


@dataclass
class BudgetConfig:
    """Scales the recipe's schedule (epochs, warm-up, milestones), never the network."""
    name: str = MISSING
    epoch_scale: float = MISSING
    epochs: Optional[int] = MISSING          # absolute epoch count; wins over epoch_scale
    max_train_iters: Optional[int] = MISSING  # per epoch, for smoke tests
    max_eval_iters: Optional[int] = MISSING

    def __post_init__(self) -> None:
        check_bounds(self, "budget")


@dataclass
class SystemConfig:
    device: str = "auto"        # auto: cuda when present, else cpu
    # bf16 autocast. null: on CUDA only; true: on the CPU too (slow on CPUs without bf16 units: for
    # testing the path, or on CPUs that have them); false: never
    amp: Optional[bool] = None
    channels_last: bool = True  # NHWC tensors, on CUDA and on the CPU (faster on both)
    compile: bool = False
    fused_optimizer: Optional[bool] = None  # torch's fused AdamW/SGD. null: on CUDA only
    sync_bn: bool = False
    deterministic: bool = False
    # torch's intra-op threads; 0: every core for a lone run, cores / n_jobs for each of the jobs
    # that Hydra's joblib launcher runs side by side (threads fighting over cores slow a run)
    threads: int = 0
    eval_batch_size: int = 0  # images per evaluation batch; 0: 2 x train.batch_size
    # false: a run that completes deletes its checkpoint.pt, keeping its record, config and
    # predictions (the same command still finds it completed); it is kept while the run trains
    keep_checkpoint: bool = True

    def __post_init__(self) -> None:
        if self.device not in ("auto", "cpu", "cuda") and not self.device.startswith("cuda:"):
            fail("system.device", self.device, "auto, cpu, cuda or cuda:N")
        check_bounds(self, "system")

    def resolve_threads(self, jobs_side_by_side: int = 1, cores: int | None = None) -> int:
        """`threads`, or for 0 the cores shared out among the jobs running at once."""
        return self.threads or max(1, (cores or os.cpu_count() or 1) // max(1, jobs_side_by_side))


@dataclass
class WandbConfig:
    """W&B: the mode from configs/wandb/, the rest here."""
    mode: enums.WandbMode = MISSING
    project: str = "roadmap"
    entity: Optional[str] = None
    group: Optional[str] = None  # default: the sweep's directory name in a multirun
    tags: List[str] = field(default_factory=list)
    log_every: int = 50  # iterations between train/loss and train/lr points (0: per epoch only)
    grad_norm: bool = False  # train/grad_norm at those points too (before any clipping)
    console: enums.WandbConsole = enums.WandbConsole.wrap
    log_checkpoints: bool = False  # each epoch's checkpoint as a model artifact (latest, epoch<N>)
    save_code: bool = False      # the project's .py and .yaml files as a code artifact

    def __post_init__(self) -> None:
        check_bounds(self, "wandb")


@dataclass
class PathsConfig:
    """configs/paths/: the values live there (the YAML interpolates them into the run directories
    and data roots)."""
    output_dir: str = MISSING
    data_dir: str = MISSING


def section(cls):
    """A section of RunConfig, as OmegaConf's node of its fields: most values come from configs/
    (MISSING here), so no section is ever built from its Python defaults alone."""
    def node():
        # only when OmegaConf expands the schema: the model and data need no Hydra
        from omegaconf import OmegaConf
        return OmegaConf.structured(cls)
    return field(default_factory=node)


@dataclass
class RunConfig:
    step: StepMeta = section(StepMeta)
    regime: RegimeConfig = section(RegimeConfig)
    # The reverse study: a step of this step's roadmap whose own changes are undone
    # (leave_one_out.py); None: none
    undo: Optional[str] = None
    model: ModelConfig = section(ModelConfig)
    train: TrainConfig = section(TrainConfig)
    data: DataConfig = section(DataConfig)
    budget: BudgetConfig = section(BudgetConfig)
    system: SystemConfig = section(SystemConfig)
    wandb: WandbConfig = section(WandbConfig)
    paths: PathsConfig = section(PathsConfig)
    seed: int = 0
    schedule: ScheduleConfig = section(ScheduleConfig)  # derived: what runs (ScheduleConfig)

    def __post_init__(self) -> None:
        self.regime.fill(self.step)
        derived = derive_schedule(self.train, self.budget)
        for name, value in vars(self.schedule).items():
            if value is not None and value != getattr(derived, name):
                fail(f"schedule.{name}", value, "no value of its own: schedule.* says what runs, "
                     f"derived from train.* and budget.* ({getattr(derived, name)!r} here); set "
                     "budget.epochs or budget.epoch_scale for the schedule, train.base_lr for the "
                     "learning rate")
        self.schedule = derived
        check_bounds(self, "")
        if self.model.num_classes < self.data.num_classes:
            fail("model.num_classes", self.model.num_classes, f"at least the dataset's class count, data.num_classes="
                  f"{self.data.num_classes} ({self.data.name}); leave model.num_classes out to follow it")
        t = self.train
        if self.data.pipeline == enums.Pipeline.device and not device_augments(t.auto_augment):
            fail("data.pipeline", "device", "the device pipeline does RandAugment (train.auto_augment="
                 f"'rand-...') only, not {t.auto_augment!r}; use data.pipeline=workers or auto")
        if self.model.norm == enums.Norm.batch and t.batch_size < 2:
            fail("train.batch_size", t.batch_size, "at least 2 with model.norm=batch (BatchNorm "
                 "normalizes over the batch), or model.norm=layer")
        if (t.mixup > 0 or t.cutmix > 0) and t.batch_size % 2:
            fail("train.batch_size", t.batch_size, f"an even number: Mixup/CutMix (train.mixup={t.mixup}, "
                  f"train.cutmix={t.cutmix}) pairs each image with another; or train.mixup=0 train.cutmix=0")

    @property
    def eval_batch_size(self) -> int:
        """Images per evaluation batch: system.eval_batch_size, or twice the training batch."""
        return self.system.eval_batch_size or 2 * self.train.batch_size

