"""The femto regime (Table 10 scaled as timm scales its small ConvNeXts) and the study profile that uses it."""
import numpy as np
import pytest
import timm
import torch
from conftest import step_config
from test_model import _randomize_stats

from roadmap import build_model, count_params, load_config, roadmap_steps
from roadmap.model import copy_weights_from, describe
from roadmap.record import load_predictions
from roadmap.train.lifecycle import train


def test_femto_last_step_is_timms_convnext_femto_in_parameters_and_logits():
    torch.manual_seed(0)
    reference = timm.create_model("convnext_femto", pretrained=False).eval()  # conv_mlp: 1x1 convs in its MLP
    _randomize_stats(reference)
    model = build_model(load_config("micro/separate_downsample", ["regime=femto", "model.num_classes=1000"])).eval()
    assert count_params(model) == count_params(reference) == 5_217_784
    copy_weights_from(model, reference)  # its 1x1 convs map onto our Linear layers
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert theirs.abs().max() > 1e-2 and (ours - theirs).abs().max().item() <= 1e-4


def test_femto_baseline_is_the_bottleneck_resnet_at_half_width_and_two_thirds_depth():
    """ResNet-50's bottleneck network with base width 32 and depths 2, 3, 4, 2, its stem halved too (32 channels):
    5,152,136 parameters at 1000 classes, 4,137,386 at Fashion-MNIST's 10. timm's ResNet of that shape keeps a
    64-channel stem; with ours widened to 64 the two are the same network, parameter for parameter and in logits."""
    from timm.models.resnet import Bottleneck, ResNet
    cfg = load_config("baseline/resnet50", ["regime=femto", "model.num_classes=1000"])
    assert list(cfg.model.depths) == [2, 3, 4, 2] and list(cfg.model.widths) == [128, 256, 512, 1024]
    assert cfg.model.stem_width == 32
    assert describe(cfg.model, 32)[0] == 5_152_136
    assert describe(load_config("baseline/resnet50", ["regime=femto", "data=fashion_mnist"]).model, 32)[0] == 4_137_386
    torch.manual_seed(0)
    reference = ResNet(Bottleneck, [2, 3, 4, 2], channels=(32, 64, 128, 256)).eval()
    _randomize_stats(reference)
    model = build_model(load_config("baseline/resnet50", ["regime=femto", "model.num_classes=1000",
                                                          "model.stem_width=64"])).eval()
    assert count_params(model) == count_params(reference) == 5_152_136 + 9_888  # the wider stem's weights
    copy_weights_from(model, reference)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert theirs.abs().max() > 1e-2 and (ours - theirs).abs().max().item() <= 1e-4


def test_femto_follows_the_roadmap_widths_and_depths():
    models = {s.name: step_config(s.name, "femto").model for s in roadmap_steps("femto")}
    depths = {name: list(model.depths) for name, model in models.items()}
    widths = {name: model.base_width for name, model in models.items()}
    assert depths["baseline/enhanced_recipe"] == [2, 3, 4, 2] and depths["macro/stage_ratio"] == [2, 2, 6, 2]
    assert widths["macro/patchify"] == widths["resnextify/depthwise"] == 32 and widths["resnextify/width"] == 48
    assert len(depths) == 17


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["femto_cpu", "femto_converged_cpu"])
@pytest.mark.parametrize("step", [s.name for s in roadmap_steps("femto")])
def test_every_step_trains_one_iteration_under_the_study_profile(step, profile, tmp_path):
    """Each study's profile as it runs (full Fashion-MNIST when installed, else the shipped subset), cut to one
    training iteration and one evaluation batch; a completed record and its predictions come out."""
    from pathlib import Path
    data = [] if Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file() \
        else ["data=fashion_mnist_small"]
    cfg = load_config(step, [f"+experiment={profile}", *data, "budget.epochs=1", "budget.max_train_iters=1",
                             "budget.max_eval_iters=1", "wandb=disabled"])
    assert cfg.regime.name == "femto" and cfg.model.stem_stride == 4 and cfg.system.threads == 1
    if profile == "femto_converged_cpu":  # each step's own recipe, at its small scale
        assert cfg.train.name == ("classic_small" if step == "baseline/resnet50" else "enhanced_small")
        assert cfg.data.resolution == 48
    params, _ = describe(cfg.model, cfg.data.resolution)
    threads = torch.get_num_threads()
    try:
        record = train(cfg, tmp_path)
        assert record.hardware["threads"] == 1 and torch.get_num_threads() == 1  # the profile's one per job
    finally:
        torch.set_num_threads(threads)
    assert record.status == "completed" and record.params == params
    pred, target = load_predictions(tmp_path / "predictions.npz")
    assert len(pred) == len(target) == cfg.eval_batch_size and np.isin(pred, range(10)).all()  # one eval batch
