"""The device pipeline's augmentation against timm's own transforms: op by op on images, and in distribution."""
import json
import math
import random

import numpy as np
import pytest
import torch
from PIL import Image
from timm.data import create_transform
from timm.data.auto_augment import NAME_TO_OP, rand_augment_transform
from timm.data.random_erasing import RandomErasing
from timm.data.transforms import RandomResizedCropAndInterpolation

from roadmap import load_config
from roadmap.data.augment import GEOMETRIC, BatchAugment, apply_op, level, warp
from roadmap.data.pipelines import DeviceBatches
from roadmap.data.sources import SHIPPED, build_datasets

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FILL = (124, 116, 104)  # timm's img_mean for MEAN
RA = "rand-m9-mstd0.5-inc1"
INC1 = ["AutoContrast", "Equalize", "Invert", "Rotate", "PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd",
        "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing", "ShearX", "ShearY",
        "TranslateXRel", "TranslateYRel"]
# mean absolute difference from timm's PIL op, in uint8 levels, measured on these images (2026-11-23): pointwise ops
# are exact; geometric ops interpolate bicubic with a = -0.75 where PIL's affine transform uses a = -1
GEOMETRIC_MAD = 1.5


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """48 colourful 28x28 RGB images: three Fashion-MNIST images as the three channels of each."""
    x = np.load(SHIPPED)["x_train"][:144]
    return np.stack([x[0:48], x[48:96], x[96:144]], -1)


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float()


def _timm_op(name: str, img: Image.Image, arg: float) -> np.ndarray:
    args = () if name in ("AutoContrast", "Equalize", "Invert") else \
        (int(arg),) if name in ("PosterizeIncreasing", "SolarizeIncreasing", "SolarizeAdd") else (arg,)
    return np.asarray(NAME_TO_OP[name](img, *args, fillcolor=FILL, resample=Image.BICUBIC))


def test_the_recipes_string_parses_to_timms_op_list_in_both(images):
    aug = BatchAugment(32, MEAN, STD, auto_augment=RA)
    assert aug.ops == INC1 and aug.layers == 2 and aug.prob == 0.5 and (aug.magnitude, aug.mstd) == (9.0, 0.5)
    assert [op.name for op in rand_augment_transform(RA, {}).ops] == INC1
    with pytest.raises(ValueError, match="RandAugment op Cutout has no batched version"):
        level("Cutout", torch.zeros(1), torch.ones(1))


@pytest.mark.parametrize("magnitude", [3.0, 9.0, 10.0])
@pytest.mark.parametrize("name", INC1)
def test_each_op_matches_timms_pil_op_image_by_image(images, name, magnitude):
    n = len(images)
    sign = torch.tensor([1.0, -1.0]).repeat(n // 2)
    arg = level(name, torch.full((n,), magnitude), sign)
    ours = apply_op(name, _tensor(images), arg, torch.tensor(FILL, dtype=torch.float32))
    theirs = _tensor(np.stack([_timm_op(name, Image.fromarray(a), v) for a, v in zip(images, arg.tolist())]))
    mad = (ours - theirs).abs().mean().item()
    assert mad <= (GEOMETRIC_MAD if name in GEOMETRIC else 2.0), (name, mad)
    if name not in GEOMETRIC:
        assert mad == 0.0, (name, mad)  # pointwise ops follow PIL's integer arithmetic exactly
    if name not in ("AutoContrast", "Equalize"):  # the op did something to these images
        assert (ours != _tensor(images)).any()


def test_the_crop_resize_matches_pils_resized_crop(images):
    boxes = [(2, 3, 20, 17), (0, 0, 28, 28), (5, 1, 11, 14), (7, 9, 21, 19)]  # top, left, height, width
    x = _tensor(images[:4])
    m = torch.zeros(4, 2, 3)
    for k, (t, le, h, w) in enumerate(boxes):
        m[k, 0, 0], m[k, 0, 2], m[k, 1, 1], m[k, 1, 2] = w / 32, le, h / 32, t
    ours = warp(x, m, (32, 32), None)
    theirs = _tensor(np.stack([np.asarray(Image.fromarray(a).crop((le, t, le + w, t + h)).resize((32, 32), Image.BICUBIC))
                               for a, (t, le, h, w) in zip(images[:4], boxes)]))
    assert (ours - theirs).abs().mean().item() <= 2.5


def test_the_eval_transform_matches_timms(images):
    timm_eval = create_transform(32, is_training=False, interpolation="bicubic", mean=MEAN, std=STD, crop_pct=1.0)
    theirs = torch.stack([timm_eval(Image.fromarray(a)) for a in images])
    ours = BatchAugment(32, MEAN, STD).eval(_tensor(images).to(torch.uint8))
    levels = (ours - theirs).abs() * torch.tensor(STD).view(1, 3, 1, 1) * 255
    # torch's antialiased bicubic resize against PIL's: 0.14 levels on average here, a few edge pixels differ more
    assert levels.mean().item() <= 0.5 and levels.quantile(0.99).item() <= 2.01


def _ks(a, b) -> float:
    """Two-sample Kolmogorov-Smirnov statistic."""
    a, b = np.sort(np.asarray(a, float)), np.sort(np.asarray(b, float))
    grid = np.concatenate([a, b])
    return float(np.abs(np.searchsorted(a, grid, "right") / len(a) - np.searchsorted(b, grid, "right") / len(b)).max())


def _ks_critical(n: int, m: int, alpha_c: float = 1.95) -> float:  # alpha = 0.001
    return alpha_c * math.sqrt((n + m) / (n * m))


def _chi2_homogeneity(a: dict, b: dict) -> tuple[float, int]:
    keys = sorted(set(a) | set(b))
    na, nb = sum(a.values()), sum(b.values())
    stat = 0.0
    for k in keys:
        tot = a.get(k, 0) + b.get(k, 0)
        for obs, n in ((a.get(k, 0), na), (b.get(k, 0), nb)):
            exp = tot * n / (na + nb)
            stat += (obs - exp) ** 2 / exp
    return stat, len(keys) - 1


def _chi2_critical(df: int) -> float:
    """Wilson-Hilferty: the chi-square quantile at p = 0.999."""
    z = 3.090
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def _timm_draws(n: int) -> list[tuple[str, float]]:
    """What timm's RandAugment applies to n images: (op, its argument) per applied op, recorded in place of the op."""
    ra = rand_augment_transform(RA, dict(translate_const=14, img_mean=FILL))
    seen: list = []
    for op in ra.ops:
        op.aug_fn = (lambda name: lambda img, *args, **kw: (seen.append((name, args[0] if args else 0.0)), img)[1])(
            op.name)
    random.seed(0)
    np.random.seed(0)
    img = Image.new("RGB", (28, 28))
    for _ in range(n):
        ra(img)
    return seen


def test_op_choice_probability_and_magnitudes_are_distributed_as_timms():
    n = 20_000
    theirs = _timm_draws(n)
    aug = BatchAugment(28, MEAN, STD, auto_augment=RA)
    idx, applied, arg = aug.op_params(n, torch.Generator().manual_seed(0), "cpu")
    ours = [(aug.ops[i], a) for i, ok, a in zip(idx.flatten().tolist(), applied.flatten().tolist(),
                                                 arg.flatten().tolist()) if ok]
    # how many ops are applied: 2 layers x p = 0.5 each, per image
    p_ours, p_theirs = len(ours) / (2 * n), len(theirs) / (2 * n)
    assert abs(p_ours - p_theirs) < 3.3 * math.sqrt(0.25 / n) * math.sqrt(2), (p_ours, p_theirs)
    count = lambda draws: {k: sum(1 for d in draws if d[0] == k) for k in INC1}  # noqa: E731
    stat, df = _chi2_homogeneity(count(ours), count(theirs))
    assert df == 14 and stat < _chi2_critical(df), stat
    for name in ("Rotate", "ColorIncreasing", "ShearX", "TranslateYRel", "SolarizeIncreasing", "PosterizeIncreasing"):
        a = [v for k, v in ours if k == name]
        b = [v for k, v in theirs if k == name]
        assert _ks(a, b) < _ks_critical(len(a), len(b)), name
        if name == "Rotate":  # a fixed magnitude, or no sign flips, would fail the test above; see it can
            fixed = [math.copysign(27.0, v) for v in b]
            assert _ks(a, fixed) > _ks_critical(len(a), len(fixed))


def test_a_never_drawn_op_fails_the_frequency_test():
    theirs = _timm_draws(5_000)
    ours = [d for d in _timm_draws(5_000) if d[0] != "Invert"]
    count = lambda draws: {k: sum(1 for d in draws if d[0] == k) for k in INC1}  # noqa: E731
    stat, df = _chi2_homogeneity(count(ours), count(theirs))
    assert stat > _chi2_critical(df)


def test_crop_areas_and_aspect_ratios_are_distributed_as_timms():
    n = 20_000
    random.seed(0)
    img = Image.new("RGB", (28, 28))
    theirs = np.array([RandomResizedCropAndInterpolation.get_params(img, (0.08, 1.0), (3 / 4, 4 / 3))
                       for _ in range(n)], float)
    ours = BatchAugment(32, MEAN, STD).crop_boxes(n, 28, 28, torch.Generator().manual_seed(0), "cpu").numpy()
    for column in (lambda b: b[:, 2] * b[:, 3] / 784, lambda b: np.log(b[:, 3] / b[:, 2]),
                   lambda b: b[:, 0] / np.maximum(28 - b[:, 2], 1), lambda b: b[:, 1] / np.maximum(28 - b[:, 3], 1)):
        assert _ks(column(ours), column(theirs)) < _ks_critical(n, n)
    assert (ours[:, 2] <= 28).all() and (ours[:, 0] + ours[:, 2] <= 28).all() and (ours[:, 1] + ours[:, 3] <= 28).all()


def test_random_erasing_is_distributed_as_timms():
    n = 4_000
    random.seed(0)
    torch.manual_seed(0)
    erase = RandomErasing(0.25, mode="pixel", device="cpu")
    theirs = torch.stack([erase(torch.zeros(3, 32, 32)) for _ in range(n)])
    ours = BatchAugment(32, MEAN, STD, re_prob=0.25).erase(torch.zeros(n, 3, 32, 32), torch.Generator().manual_seed(0))
    areas = lambda x: (x[:, 0] != 0).sum((1, 2)).numpy()  # noqa: E731
    a, b = areas(ours), areas(theirs)
    assert abs((a > 0).mean() - (b > 0).mean()) < 3.3 * math.sqrt(0.25 * 0.75 / n) * math.sqrt(2)
    assert _ks(a[a > 0], b[b > 0]) < _ks_critical((a > 0).sum(), (b > 0).sum())
    assert abs(ours[ours != 0].std().item() - 1) < 0.02  # per-pixel standard normal noise


def test_device_batches_depend_only_on_seed_epoch_and_iteration():
    cfg = load_config("convnext_t", ["train.batch_size=16", "data.pipeline=device"])
    train, val = build_datasets(cfg)

    def epoch(e: int, seed_cfg=cfg) -> list:
        batches = DeviceBatches(train, seed_cfg, 0, 1, torch.device("cpu"), False, train=True)
        batches.set_epoch(e)
        out = []
        for i, (x, y) in enumerate(batches):
            out.append((x, y))
            if i == 2:
                break
        return out

    a, b, c = epoch(1), epoch(1), epoch(2)
    assert all(torch.equal(x1, x2) and torch.equal(y1, y2) for (x1, y1), (x2, y2) in zip(a, b))
    assert not torch.equal(a[0][0], c[0][0])
    other = epoch(1, load_config("convnext_t", ["train.batch_size=16", "seed=1"]))
    assert not torch.equal(a[0][0], other[0][0])
    x = a[0][0]
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 and abs(x.mean().item()) < 2
    evals = DeviceBatches(val, cfg, 0, 1, torch.device("cpu"), False, train=False)
    assert sum(len(y) for _, y in evals) == 1000 and len(evals) == math.ceil(1000 / cfg.eval_batch_size)
    assert cfg.eval_batch_size == 32 and max(len(y) for _, y in evals) == 32  # twice the training batch


def test_auto_measures_both_pipelines_on_the_cpu_and_keeps_a_resumed_runs_choice(monkeypatch, tmp_path):
    """auto: for arrays, the pipeline that makes batches faster per core here (either way round, by what the probe
    measures; each pipeline timed alone); workers for folders and for recipes the device cannot make; the device
    on CUDA and with several processes; a resumed run's own pipeline. device on a folder is refused."""
    import random

    import numpy as np
    from torch.utils.data import TensorDataset

    from roadmap.data import pipelines as device_data
    from roadmap.data.pipelines import probe_pipelines, resolve_pipeline
    from roadmap.enums import Pipeline
    from roadmap.errors import DataError
    cfg = load_config("convnext_t", ["train.batch_size=16", "data.num_workers=1"])
    train, _ = build_datasets(cfg)
    cpu = torch.device("cpu")
    states = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    probe = probe_pipelines(cfg, train, cpu)
    assert set(probe) == {"device", "workers"} and all(v > 0 for v in probe.values())
    assert torch.equal(states[0], torch.get_rng_state()) and states[1] == random.getstate()
    assert (states[2] == np.random.get_state()[1]).all()  # the run's random streams untouched
    for measured, chosen in (({"device": 2.0, "workers": 1.0}, Pipeline.device),
                             ({"device": 1.0, "workers": 2.0}, Pipeline.workers)):
        cfg.paths.output_dir = str(tmp_path / chosen.value)  # no choice kept there yet
        monkeypatch.setattr(device_data, "probe_pipelines", lambda *a, m=measured: m)
        assert resolve_pipeline(cfg, train, cpu) == (chosen, measured)
        assert resolve_pipeline(cfg, train, cpu, resumed="device") == (Pipeline.device, None)
        assert resolve_pipeline(cfg, train, torch.device("meta"), world=2) == (Pipeline.device, None)
    folder = TensorDataset(torch.zeros(2, 3, 8, 8))  # anything not held as uint8 arrays, e.g. an ImageFolder
    assert resolve_pipeline(cfg, folder, cpu) == (Pipeline.workers, None)
    assert resolve_pipeline(load_config("convnext_t", ["train.auto_augment=original"]), train, cpu)[0] == \
        Pipeline.workers
    with pytest.raises(DataError, match="data.pipeline=device needs a dataset held in memory .* use data.pipeline=workers"):
        resolve_pipeline(load_config("convnext_t", ["data.pipeline=device"]), folder)


def test_auto_measures_once_per_machine_and_data_and_later_runs_build_only_the_kept_pipeline(monkeypatch, tmp_path):
    from roadmap.data import pipelines
    from roadmap.enums import Pipeline
    cfg = load_config("convnext_t", ["train.batch_size=16", "data.num_workers=1", f"paths.output_dir={tmp_path}"])
    train, _ = build_datasets(cfg)
    cpu, probes = torch.device("cpu"), []
    monkeypatch.setattr(pipelines, "probe_pipelines", lambda *a: probes.append(1) or {"device": 1.0, "workers": 3.0})
    assert pipelines.resolve_pipeline(cfg, train, cpu) == (Pipeline.workers, {"device": 1.0, "workers": 3.0})
    kept = json.loads((tmp_path / pipelines.CHOICES).read_text())
    assert list(kept) == [pipelines.choice_key(cfg)] and kept[pipelines.choice_key(cfg)]["pipeline"] == "workers"
    built = []  # a later run: no probe, so no DeviceBatches and no loader workers made to time them
    monkeypatch.setattr(pipelines, "DeviceBatches", lambda *a, **k: built.append(1))
    assert pipelines.resolve_pipeline(cfg, train, cpu) == (Pipeline.workers, {"device": 1.0, "workers": 3.0})
    assert len(probes) == 1 and not built
    other = load_config("convnext_t", ["train.batch_size=16", "data.num_workers=1", f"paths.output_dir={tmp_path}",
                                       "data.resolution=48"])
    pipelines.resolve_pipeline(other, train, cpu)  # other data: measured, and kept beside the first
    assert len(probes) == 2 and len(json.loads((tmp_path / pipelines.CHOICES).read_text())) == 2
    (tmp_path / pipelines.CHOICES).write_text("{not json")  # damaged: measured again, and the file rewritten
    assert pipelines.resolve_pipeline(cfg, train, cpu)[0] == Pipeline.workers and len(probes) == 3
    assert list(json.loads((tmp_path / pipelines.CHOICES).read_text())) == [pipelines.choice_key(cfg)]
