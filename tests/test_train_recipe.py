"""The recipes are built from timm's parts as the paper's Table 5 and torchvision describe them."""
import pytest
import torch
from PIL import Image
from timm.data import Mixup
from timm.data.auto_augment import _RAND_INCREASING_TRANSFORMS, rand_augment_ops
from timm.loss import SoftTargetCrossEntropy

from roadmap import build_model, load_config
from roadmap.train.recipe import build_loss, build_mixup, build_optimizer, build_scheduler, scaled_lr


def test_learning_rate_scales_with_the_global_batch():
    enhanced, classic = load_config("micro/gelu"), load_config("baseline/resnet50")
    assert scaled_lr(enhanced, 4096) == pytest.approx(4e-3)
    assert scaled_lr(enhanced, 1024) == pytest.approx(1e-3)
    assert scaled_lr(classic, 256) == pytest.approx(0.1) and scaled_lr(classic, 512) == pytest.approx(0.2)


def test_classic_recipe_is_plain_momentum_sgd_with_decay_on_every_weight():
    cfg = load_config("baseline/resnet50")
    model = build_model(cfg)
    opt = build_optimizer(cfg, model, 0.1, fused=False)
    assert type(opt) is torch.optim.SGD and opt.defaults["momentum"] == 0.9 and not opt.defaults["nesterov"]
    assert all(g["weight_decay"] == 1e-4 for g in opt.param_groups)
    assert build_mixup(cfg) is None and type(build_loss(cfg, None)) is torch.nn.CrossEntropyLoss


def test_enhanced_recipe_is_adamw_without_decay_on_norms_biases_and_layer_scales():
    cfg = load_config("micro/separate_downsample")
    model = build_model(cfg)
    opt = build_optimizer(cfg, model, 4e-3, fused=False)
    assert type(opt) is torch.optim.AdamW and opt.defaults["betas"] == (0.9, 0.999)
    decayed = {id(p) for g in opt.param_groups if g["weight_decay"] == 0.05 for p in g["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in decayed) == (p.dim() > 1), name
    mixup = build_mixup(cfg)
    assert isinstance(mixup, Mixup) and (mixup.mixup_alpha, mixup.cutmix_alpha) == (0.8, 1.0)
    assert mixup.label_smoothing == 0.1 and mixup.switch_prob == 0.5
    assert isinstance(build_loss(cfg, mixup), SoftTargetCrossEntropy)
    assert (cfg.model.drop_path, cfg.model.init.value, cfg.train.ema) == (0.1, "trunc_normal", False)


def _lrs(cfg, iters_per_epoch):
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = build_scheduler(cfg, opt, iters_per_epoch)
    out = []
    for step in range(cfg.schedule.epochs * iters_per_epoch):
        sched.step_update(step)
        out.append(opt.param_groups[0]["lr"])
    return out


def test_cosine_schedule_warms_up_per_iteration_then_decays_to_min_lr():
    cfg = load_config("micro/gelu", ["budget.epochs=30"])  # 300 epochs scaled to 30: warm-up 20 -> 2
    assert (cfg.schedule.epochs, cfg.schedule.warmup_epochs, cfg.schedule.decay_milestones) == (30, 2.0, [])  # no milestones: the cosine schedule has none
    lrs = _lrs(cfg, 10)
    assert lrs[0] == pytest.approx(1e-6) and lrs[10] == pytest.approx(0.5, rel=0.01)  # halfway through warm-up
    assert max(lrs) == pytest.approx(1.0, rel=1e-3) and lrs.index(max(lrs)) == 20
    assert all(a >= b for a, b in zip(lrs[20:], lrs[21:])) and lrs[-1] < 1e-3


def test_classic_schedule_steps_down_tenfold_at_the_scaled_milestones():
    cfg = load_config("baseline/resnet50", ["budget=quick"])  # 90 epochs -> 9, milestones 30/60 -> 3/6
    assert (cfg.schedule.epochs, cfg.schedule.warmup_epochs, cfg.schedule.decay_milestones) == (9, 0.0, [3, 6])
    lrs = _lrs(cfg, 10)
    assert lrs[0] == lrs[28] == 1.0
    assert lrs[35] == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.01)


def test_every_randaugment_op_works_at_the_largest_magnitude_the_recipe_reaches():
    # rand-m9-mstd0.5-inc1 draws magnitudes up to 10, where PosterizeIncreasing keeps 0 bits
    image = Image.new("RGB", (32, 32), (120, 60, 200))
    for op in rand_augment_ops(magnitude=10, transforms=_RAND_INCREASING_TRANSFORMS):
        op.prob, op.magnitude_std = 1.0, 0.0
        assert op(image).size == (32, 32), op.name
