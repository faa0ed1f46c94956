"""The network of every step is what the paper describes: counted, compared with the references, and run."""
import dataclasses
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F
import torchvision
from conftest import step_config
from official_layout import OfficialConvNeXt, official_state_dict
from timm.models.convnext import checkpoint_filter_fn
from torch import nn

from roadmap import build_model, load_config, roadmap_steps
from roadmap.enums import Pointwise
from roadmap.model import (
    Block,
    LayerNorm2d,
    check_input_size,
    copy_weights_from,
    count_gmacs,
    count_params,
    describe,
    feature_sizes,
    upgrade_state_dict,
)
from roadmap.model.network import CONV_POINTWISE_WORK, pointwise_as_convs

STEPS = [s.name for s in roadmap_steps()]
REGIMES = ["r50", "r200"]
ROOT = Path(__file__).resolve().parents[1]


# the paper's Tables 10 and 11 as the project's spec gives them (copied from shared/paper/ into the repository)



@pytest.mark.parametrize("regime", REGIMES)
@pytest.mark.parametrize("step", STEPS)
def test_gmacs_match_the_paper(step, regime):
    cfg = step_config(step, regime)
    gmacs = count_gmacs(cfg.model, 224, num_classes=1000)
    if step == "micro/layer_norm":  # BN -> LN adds no MACs (Table 10 prints 4.46, an erratum; Table 11 agrees)
        assert gmacs == count_gmacs(step_config("micro/fewer_norms", regime).model, 224, num_classes=1000)
        assert regime != "r50" or "erratum" in cfg.step.paper.note
    else:
        assert abs(gmacs - cfg.step.paper.gflops) <= 0.05, (step, gmacs, cfg.step.paper.gflops)


def test_the_r200_regime_goes_from_timms_resnet200_to_convnext_base():
    def params(step, *overrides):
        return describe(load_config(step, ["regime=r200", "model.num_classes=1000", *overrides]).model, 224)[0]
    with torch.device("meta"):
        resnet200, convnext_b = (count_params(timm.create_model(n)) for n in ("resnet200", "convnext_base"))
    assert params("baseline/resnet50") == params("baseline/enhanced_recipe") == resnet200
    assert params("convnext_t") == convnext_b
    cfg = load_config("macro/stage_ratio", ["regime=r200"])
    assert (cfg.model.depths, cfg.model.base_width, cfg.model.drop_path) == ([3, 3, 27, 3], 84, 0.5)
    assert load_config("resnextify/width", ["regime=r200"]).model.base_width == 128
    assert load_config("baseline/resnet50", ["regime=r200"]).model.drop_path == 0.0  # the classic recipe's
    labels = {s.name: s.meta.label for s in roadmap_steps("r200")}
    assert labels["baseline/resnet50"] == "ResNet-200 (PyTorch)"
    assert labels["micro/separate_downsample"] == "separate d.s. conv (ConvNeXt-B)"



def test_reference_counts_match_the_spec():
    assert count_params(torchvision.models.resnet50()) == 25_557_032
    assert abs(count_gmacs(load_config("baseline/resnet50", ["model.num_classes=1000"]), 224) - 4.089) < 0.001


@pytest.mark.parametrize("step,expected", [("baseline/resnet50", 25_557_032),
                                           ("micro/separate_downsample", 28_589_128),
                                           ("convnext_t", 28_589_128)])
def test_parameter_counts_are_exact(step, expected):
    params, _ = describe(step_config(step).model, 224, 1000)
    assert params == expected


def _randomize_stats(module: torch.nn.Module) -> None:
    """BN statistics and layer scales away from their defaults, so that equal logits mean something."""
    g = torch.Generator().manual_seed(1)
    for name, t in module.state_dict().items():
        if name.endswith(("running_mean", "bias")):
            t.copy_(torch.rand(t.shape, generator=g) - 0.5)
        elif name.endswith(("running_var", "gamma")) or (t.dim() == 1 and name.endswith("weight")):
            t.copy_(torch.rand(t.shape, generator=g) + 0.5)


@pytest.mark.parametrize("step,make_reference", [
    ("baseline/resnet50", lambda: torchvision.models.resnet50()),
    ("micro/separate_downsample", lambda: timm.create_model("convnext_tiny", pretrained=False)),
])
def test_copied_reference_weights_give_the_same_logits(step, make_reference):
    torch.manual_seed(0)
    reference = make_reference().eval()
    _randomize_stats(reference)
    model = build_model(load_config(step, ["model.num_classes=1000"])).eval()
    copy_weights_from(model, reference)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert theirs.abs().max() > 1e-2  # not a trivially zero output
    assert (ours - theirs).abs().max().item() <= 1e-4


def test_the_official_convnext_module_and_checkpoint_give_the_same_logits():
    torch.manual_seed(0)
    reference = timm.create_model("convnext_tiny", pretrained=False).eval()
    _randomize_stats(reference)
    official_state = official_state_dict(reference.state_dict())
    back = checkpoint_filter_fn({"model": official_state}, reference)  # timm's converter from the official format
    assert all(torch.equal(back[k].reshape(v.shape), v) for k, v in reference.state_dict().items())
    official = OfficialConvNeXt().eval()
    official.load_state_dict(official_state)
    assert list(official.state_dict()) == list(official_state)  # the official order: all downsampling first
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        theirs = official(x)
        assert theirs.abs().max() > 1e-2 and (theirs - reference(x)).abs().max() <= 1e-4
        for source in (official, official_state, {"model": official_state}):  # a module, a state dict, a checkpoint
            model = build_model(load_config("convnext_t", ["model.num_classes=1000"])).eval()
            copy_weights_from(model, source)
            assert (model(x) - theirs).abs().max().item() <= 1e-4


@pytest.mark.parametrize("step,make_reference", [
    ("convnext_t", lambda: timm.create_model("convnext_tiny", pretrained=False)),
    ("baseline/resnet50", lambda: torchvision.models.resnet50()),
])
def test_a_checkpoint_without_its_classifier_loads_into_a_10_class_network(step, make_reference):
    torch.manual_seed(0)
    reference = make_reference().eval()
    _randomize_stats(reference)
    model = build_model(load_config(step, ["model.num_classes=10"])).eval()
    fc = model.fc.weight.clone()
    with pytest.raises(ValueError, match=r"\(10, \d+\) in this network but .*\(1000, \d+\).*classifier=False"):
        copy_weights_from(model, reference)
    source = official_state_dict(reference.state_dict()) if step == "convnext_t" else reference.state_dict()
    copy_weights_from(model, source, classifier=False)
    assert torch.equal(model.fc.weight, fc)  # its own classifier, untouched
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours = model.head_norm(model.forward_features(x).mean((2, 3), keepdim=True)).flatten(1)
        theirs = reference.forward_head(reference.forward_features(x), pre_logits=True) if step == "convnext_t" \
            else torch.flatten(reference.avgpool(nn.Sequential(*list(reference.children())[:-2])(x)), 1)
        assert model(x).shape == (2, 10)
    assert (ours - theirs).abs().max().item() <= 1e-4


def test_copying_into_a_different_architecture_fails_clearly():
    model = build_model(load_config("micro/gelu", ["model.num_classes=1000"]))
    with pytest.raises(ValueError, match="architectures differ.*stem.0.weight.*conv1.weight"):
        copy_weights_from(model, torchvision.models.resnet50())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="architectures differ"):
        copy_weights_from(build_model(load_config("baseline/resnet50")), torchvision.models.resnet50())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("step", STEPS)
def test_every_step_trains_forward_and_backward(step):
    """Every parameter of every step's network gets a finite, non-zero gradient (at 32x32; that each network runs at
    224x224 is shown by counting its GMACs there, test_gmacs_match_the_paper)."""
    torch.manual_seed(0)
    cfg = step_config(step)
    cfg.model.drop_path = 0.0
    model = build_model(cfg).train()
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.logsumexp(1).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name



def test_layer_norm_normalizes_channels_at_each_position_not_the_whole_map():
    x = torch.randn(2, 8, 5, 5) * 3 + 1
    y = LayerNorm2d(8)(x)
    assert torch.allclose(y.mean(1), torch.zeros(2, 5, 5), atol=1e-5)
    assert not torch.allclose(y, torch.nn.GroupNorm(1, 8, eps=1e-6)(x), atol=1e-3)


def test_depthwise_conv_has_one_group_per_channel():
    block = next(m for m in build_model(load_config("inverted_bottleneck/invert")).modules() if isinstance(m, Block))
    spatial = block.conv2
    assert spatial.groups == spatial.in_channels == spatial.out_channels == 96 * 4


def test_drop_path_rises_linearly_over_blocks_not_stages():
    model = build_model(load_config("micro/separate_downsample", ["model.drop_path=0.1"]))
    rates = [getattr(b.drop_path, "drop_prob", 0.0) for b in model.modules() if isinstance(b, Block)]
    assert len(rates) == 18
    assert rates == pytest.approx([0.1 * i / 17 for i in range(18)])


@pytest.mark.slow
@pytest.mark.parametrize("step", ["baseline/resnet50", "micro/gelu"])
def test_every_odd_kernel_from_3_to_31_works(step):
    previous = 0.0
    for k in range(3, 32, 2):
        cfg = load_config(step, [f"model.kernel_size={k}"])
        gmacs = count_gmacs(cfg, 64)
        assert gmacs > previous
        previous = gmacs
    # the largest kernel runs forward, in a network a quarter as wide (ResNet-50's own holds 0.25 G weights per
    # 31x31 conv of its last stage)
    model = build_model(load_config(step, ["model.kernel_size=31", "model.base_width=16"])).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)


@pytest.mark.parametrize("overrides", [
    ["model.norm=layer"],
    ["model.norm=layer", "model.downsample=separate", "model.layer_scale=1e-6"],
    ["model.activation=gelu", "model.act_placement=one_per_block", "model.norm_placement=one_per_block"],
    ["model.depths=[2,2]", "model.widths=[256,512]"],
])
def test_knobs_work_off_the_roadmap_on_resnet50(overrides):
    model = build_model(load_config("baseline/resnet50", overrides)).train()
    out = model(torch.randn(2, 3, 32, 32))
    out.sum().backward()
    assert out.shape == (2, 10) and torch.isfinite(out).all()





def test_every_step_has_the_documented_feature_maps_at_each_stem_stride():
    for step in STEPS:  # the stem reduces 32 by the stride; each later stage halves the map
        model = step_config(step).model
        for stride in (1, 2, 4):
            maps = feature_sizes(dataclasses.replace(model, stem_stride=stride), 32)
            assert maps == [32 // stride, 32 // stride, 16 // stride, 8 // stride, 4 // stride], (step, stride)


@pytest.mark.parametrize("stride", [1, 2, 4])
@pytest.mark.parametrize("step", ["baseline/resnet50", "micro/separate_downsample"])  # the ResNet and patchify stems
def test_both_stems_train_at_32_at_each_stride(step, stride):
    cfg = load_config(step, [f"model.stem_stride={stride}", "model.drop_path=0"])
    torch.manual_seed(0)
    model = build_model(cfg).train()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.logsumexp(1).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_the_resnet_stem_drops_its_max_pool_then_its_stride():
    stems = {s: build_model(load_config("baseline/resnet50", [f"model.stem_stride={s}"])).stem for s in (1, 2, 4)}
    kinds = {s: [type(m).__name__ for m in stem] for s, stem in stems.items()}
    assert kinds[4] == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"] and kinds[2] == kinds[1] == kinds[4][:3]
    assert [(stem[0].kernel_size, stem[0].stride) for stem in stems.values()] == [((3, 3), (1, 1)), ((7, 7), (2, 2)),
                                                                                   ((7, 7), (2, 2))]
    patch = build_model(load_config("convnext_t", ["model.stem_stride=2"])).stem[0]
    assert (patch.kernel_size, patch.stride) == ((2, 2), (2, 2))


SIZES = [  # timm's model, and the overrides of ours that make it
    ("convnext_small", "convnext_t", ["model.depths=[3,3,27,3]"]),
    ("convnext_base", "convnext_t", ["model.depths=[3,3,27,3]", "model.base_width=128"]),
    ("convnext_large", "convnext_t", ["model.depths=[3,3,27,3]", "model.base_width=192"]),
    ("resnet101", "baseline/resnet50", ["model.depths=[3,4,23,3]"]),
    ("resnet152", "baseline/resnet50", ["model.depths=[3,8,36,3]"]),
    ("resnet200", "baseline/resnet50", ["model.depths=[3,24,36,3]"]),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,step,overrides", SIZES, ids=[s[0] for s in SIZES])
def test_every_size_by_override_equals_timms_model_in_parameters_and_logits(name, step, overrides):
    torch.manual_seed(0)
    reference = timm.create_model(name, pretrained=False).eval()
    _randomize_stats(reference)
    model = build_model(load_config(step, [*overrides, "model.num_classes=1000"])).eval()
    assert count_params(model) == count_params(reference)
    copy_weights_from(model, reference)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    assert theirs.abs().max() > 1e-2 and (ours - theirs).abs().max().item() <= 1e-4


@pytest.mark.slow
def test_convnext_xlarge_by_override_has_timms_parameter_count():
    with torch.device("meta"):
        reference = timm.create_model("convnext_xlarge", pretrained=False)
    cfg = load_config("convnext_t", ["model.depths=[3,3,27,3]", "model.base_width=256", "model.num_classes=1000"])
    assert describe(cfg.model, 224)[0] == count_params(reference) == 350_196_968


@pytest.mark.parametrize("step, scale", [("micro/layer_norm", 0.0), ("micro/separate_downsample", 0.5)])
def test_the_nhwc_convnext_block_computes_the_conv_formulation(step, scale, monkeypatch):
    """ConvNeXt-style blocks run LayerNorm and Linear on NHWC (1x1 convs on large channels_last CPU maps, or as
    `model.pointwise` says), with the layer scale folded into the last pointwise layer: the same function and gradients as the official formulation,
    gamma * (1x1 conv(GELU(1x1 conv(LayerNorm2d(dwconv(x)))))) + x, with the same weights."""
    torch.manual_seed(0)
    blocks = lambda m: [b for b in m.stages[1] if isinstance(b, Block)]  # noqa: E731
    shallow = "model.depths=[1,2,1,1]"  # the block under test is the second of stage 2: the rest need not be built
    block = blocks(build_model(load_config(step, [f"model.layer_scale={scale}", shallow])))[1].eval()
    dw, ln, fc1, act, fc2 = block.dwconv, block.norm, block.pwconv1, block.act, block.pwconv2
    assert isinstance(fc1, nn.Linear) and isinstance(ln, nn.LayerNorm) and (block.gamma is None) == (scale == 0)
    for p in block.parameters():
        p.data.uniform_(0.5, 1.5)

    def reference(x):
        y = F.layer_norm(dw(x).permute(0, 2, 3, 1), ln.normalized_shape, ln.weight, ln.bias, ln.eps)
        y = F.conv2d(act(F.conv2d(y.permute(0, 3, 1, 2), fc1.weight[..., None, None], fc1.bias)),
                     fc2.weight[..., None, None], fc2.bias)
        return x + (y if block.gamma is None else block.gamma.view(1, -1, 1, 1) * y)

    convs = []
    conv2d = F.conv2d
    monkeypatch.setattr(F, "conv2d", lambda *a, **k: convs.append(1) or conv2d(*a, **k))
    block.double()  # in float64, so that the two orders of summation agree far below any real difference
    small = torch.randn(2, dw.in_channels, 9, 9, dtype=torch.float64)
    n = -(-CONV_POINTWISE_WORK // (dw.in_channels * 81))  # the fewest 9x9 maps that take the conv path
    big = torch.randn(n, dw.in_channels, 9, 9, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    assert big.numel() >= CONV_POINTWISE_WORK and pointwise_as_convs(Pointwise.auto, big)
    assert not pointwise_as_convs(Pointwise.auto, small)
    cases = [(small, Pointwise.auto, 0), (big, Pointwise.auto, 2), (big, Pointwise.linear, 0), (small, Pointwise.conv, 2)]
    for x, path, pointwise_convs in cases:
        block.pointwise_path = path
        g = torch.randn_like(x)
        x.requires_grad_(True)
        params = [x, *block.parameters()]
        convs.clear()
        ours = torch.autograd.grad((block(x) * g).sum(), params)
        assert len(convs) == 1 + pointwise_convs  # the depthwise conv, and the pointwise layers as convs or not
        theirs = torch.autograd.grad((reference(x) * g).sum(), params)
        for name, a, b in zip(["input", *(n for n, _ in block.named_parameters())], ours, theirs):
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-9 * b.abs().max().item()), (name, path)
        with torch.no_grad():
            assert torch.allclose(block(x), reference(x), rtol=1e-9, atol=1e-9)
    plain = blocks(build_model(load_config(step, ["model.norm_placement=every_conv", shallow])))[1]
    assert not any(isinstance(m, nn.Linear) for m in plain.modules())  # other placements keep 1x1 convs


@pytest.mark.parametrize("step", ["baseline/resnet50", "micro/layer_norm", "micro/separate_downsample"])
def test_under_bf16_autocast_a_block_returns_the_type_the_reference_block_returns(step):
    """Under autocast a block's branch ends in bf16; the residual sum's type decides the precision of the stream
    between blocks. It is the reference's: timm's ConvNeXt block without and with layer scale (whose y * gamma is
    fp32), for fp32 and bf16 input (the folded layer scale must not make it narrower), and torchvision's Bottleneck
    on a ResNet's bf16 stream. On an fp32 stream, which a ResNet has not under autocast, torchvision's in-place sum
    would round it to bf16; ours keeps it fp32."""
    from timm.models.convnext import ConvNeXtBlock
    from torchvision.models.resnet import Bottleneck
    torch.manual_seed(0)
    block = [b for b in build_model(load_config(step)).stages[1] if isinstance(b, Block)][1]
    c = (block.conv1 if step == "baseline/resnet50" else block.dwconv).in_channels
    reference = Bottleneck(c, c // 4) if step == "baseline/resnet50" else \
        ConvNeXtBlock(c, ls_init_value=1e-6 if block.gamma is not None else None)
    for dtype in (torch.float32, torch.bfloat16):
        x = torch.randn(2, c, 9, 9, dtype=dtype)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            theirs = torch.float32 if isinstance(reference, Bottleneck) and dtype == torch.float32 else reference(x).dtype
            assert block(x).dtype == theirs, dtype


def test_a_block_names_its_layers_as_the_reference_code_does_and_forward_uses_them():
    bottleneck = [b for b in build_model(load_config("baseline/resnet50")).modules() if isinstance(b, Block)][1]
    assert [type(getattr(bottleneck, n)).__name__ for n in Block.BOTTLENECK] == \
        ["Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d", "ReLU", "Conv2d", "BatchNorm2d"]
    convnext = [b for b in build_model(load_config("convnext_t")).modules() if isinstance(b, Block)][1]
    assert [type(getattr(convnext, n)).__name__ for n in Block.CONVNEXT] == \
        ["Conv2d", "LayerNorm", "Identity", "Linear", "Identity", "GELU", "Linear", "Identity"]
    x = torch.randn(2, bottleneck.conv1.in_channels, 8, 8)
    with torch.no_grad():
        bottleneck.eval()
        before = bottleneck(x)
        bottleneck.conv2.weight.zero_()  # the branch then ends in norm3's shift; forward must go through conv2
        assert not torch.allclose(bottleneck(x), before)


def test_model_pointwise_reaches_every_convnext_block():
    for path in Pointwise:
        model = build_model(load_config("convnext_t", [f"model.pointwise={path.value}"]))
        assert {b.pointwise_path for b in model.modules() if isinstance(b, Block)} == {path}


def test_checkpoints_written_before_the_layers_had_names_load_with_the_same_logits():
    """tests/data/legacy_state_dicts.pt: every step's small network with random tensors and its logits, written by
    the code of cc831c8 (tests/data/make_legacy_state_dicts.py); today's network loads it through the key map."""
    legacy = torch.load(ROOT / "tests" / "data" / "legacy_state_dicts.pt", weights_only=True)
    assert set(legacy) == {*STEPS, "input"}
    for step in STEPS:
        overrides = ["model.depths=[1,2]", "model.base_width=8", "model.drop_path=0"]
        model = build_model(load_config(step, overrides + (["model.layer_scale=0.5"] if "separate" in step else [])))
        state = legacy[step]["state"]
        assert any(".branch." in k for k in state) and not any(".branch." in k for k in model.state_dict()), step
        with pytest.raises(RuntimeError):
            model.load_state_dict(state)
        model.load_state_dict(upgrade_state_dict(model, state))
        ema = {f"module.{k}": v for k, v in state.items()}  # an EMA's keys carry a prefix
        assert upgrade_state_dict(model, ema) == {f"module.{k}": v for k, v in upgrade_state_dict(model, state).items()}
        with torch.no_grad():
            assert torch.allclose(model.eval()(legacy["input"]), legacy[step]["logits"], rtol=1e-5, atol=1e-5), step
        assert upgrade_state_dict(model, model.state_dict()).keys() == model.state_dict().keys()


def test_a_network_is_built_to_check_each_input_size_once_and_a_size_too_small_is_refused_every_time(monkeypatch):
    """src/roadmap/config/compose.py checks every loaded config (check_input_size), and a notebook, a sweep's joblib
    worker or a test loads the same network often: a pair of network and resolution seen to run is not built again."""
    import roadmap.model.measure as measure
    model = dataclasses.replace(load_config("convnext_t").model, depths=[1, 1, 1, 2])  # new to the process
    built = []
    meta_model = measure._meta_model
    monkeypatch.setattr(measure, "_meta_model", lambda *a: built.append(a) or meta_model(*a))
    check_input_size(model, 32)
    check_input_size(model, 32)
    assert len(built) == 1
    check_input_size(dataclasses.replace(model, kernel_size=5), 32)
    check_input_size(model, 64)
    assert len(built) == 3
    for _ in range(2):
        with pytest.raises(ValueError, match=r"data.resolution=16 is too small .* 1x1 map .* use data.resolution=32"):
            check_input_size(model, 16)
    assert len(built) == 5
