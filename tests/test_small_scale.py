"""The knobs a small-image study needs: pad-and-crop (train.crop=pad), the crop's aspect range, fitting an image to
the resolution by padding (data.fit=pad), how the learning rate follows the batch (train.lr_scaling) and a validation
split held out of the training images (data.val_split); each on both pipelines, against torchvision's own
transforms where there is one."""
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from roadmap import load_config
from roadmap.data.augment import BatchAugment, pad_crop
from roadmap.data.pipelines import DeviceBatches
from roadmap.data.sources import SHIPPED, build_datasets, fit_arrays, split_validation, training_arrays

MEAN, STD = (0.286,) * 3, (0.353,) * 3


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """Twelve Fashion-MNIST images, 28x28, centred in 32x32 frames as data.fit=pad makes them, as RGB."""
    x = fit_arrays(np.load(SHIPPED)["x_train"][:12], 32)
    return np.repeat(x[..., None], 3, -1)


def test_fit_pad_keeps_every_pixel_inside_the_frame_as_torchvisions_center_crop_does():
    x = np.load(SHIPPED)["x_train"][:20]
    framed = fit_arrays(x, 32)
    assert framed.shape == (20, 32, 32) and framed.dtype == np.uint8
    assert np.array_equal(framed[:, 2:30, 2:30], x)  # pixel for pixel, 2 zero rows and columns on each side
    assert not framed[:, :2].any() and not framed[:, 30:].any() and not framed[:, :, :2].any()
    for size in (32, 33, 28, 20):  # larger (even and odd margins), the same, smaller: torchvision's CenterCrop
        ours = fit_arrays(x, size)
        theirs = np.stack([np.asarray(transforms.CenterCrop(size)(Image.fromarray(a))) for a in x])
        assert np.array_equal(ours, theirs), size
    rgb = np.stack([x, x, x], -1)
    assert np.array_equal(fit_arrays(rgb, 32)[..., 1], framed)


def test_both_pipelines_frame_the_data_by_padding_and_evaluate_it_unchanged():
    cfg = load_config("baseline/resnet50", ["data.fit=pad", "train.batch_size=8", "data.pipeline=device"])
    train, val = build_datasets(cfg)
    assert train.images.shape[1:] == (32, 32) and val.images.shape[1:] == (32, 32)
    x = np.load(SHIPPED)["x_val"][:16]
    dev = DeviceBatches(val, cfg, 0, 1, torch.device("cpu"), False, train=False)
    ours = next(iter(dev))[0]
    workers = torch.stack([val[i][0] for i in range(16)])  # timm's eval transform, in PIL
    assert torch.allclose(ours, workers, atol=1e-5)  # the same pixels, normalized in another order
    pixels = ours[:, 0, 2:30, 2:30] * STD[0] + MEAN[0]
    assert torch.allclose(pixels * 255, torch.from_numpy(x).float(), atol=1e-3)  # not resized: the same pixels


def test_pad_and_crop_gives_torchvisions_random_crop_for_the_same_offsets(frames):
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    offsets = torch.tensor([[0, 0], [8, 8], [0, 8], [8, 0], [3, 5], [4, 4]] * 2)
    ours = pad_crop(x, offsets, 4)
    for k, (top, left) in enumerate(offsets.tolist()):
        padded = transforms.Pad(4)(Image.fromarray(frames[k]))  # RandomCrop(32, padding=4): pad, then crop at (i, j)
        theirs = np.asarray(transforms.functional.crop(padded, top, left, 32, 32))
        assert np.array_equal(ours[k].permute(1, 2, 0).numpy(), theirs), (top, left)
    # torchvision's own draw, made to pick the same offsets, gives the same image
    crop = transforms.RandomCrop(32, padding=4)
    torch.manual_seed(5)
    i, j, _, _ = crop.get_params(transforms.Pad(4)(Image.fromarray(frames[0])), (32, 32))
    torch.manual_seed(5)
    drawn = np.asarray(crop(Image.fromarray(frames[0])))
    assert np.array_equal(pad_crop(x[:1], torch.tensor([[i, j]]), 4)[0].permute(1, 2, 0).numpy(), drawn)


def test_every_pad_and_crop_offset_in_range_occurs_on_the_device():
    aug = BatchAugment(32, MEAN, STD, crop="pad", padding=4)
    g = torch.Generator().manual_seed(0)
    offsets = torch.cat([aug.crop_offsets(512, g, "cpu") for _ in range(4)])
    assert offsets.min() == 0 and offsets.max() == 8
    seen = {tuple(o) for o in offsets.tolist()}
    assert seen == {(i, j) for i in range(9) for j in range(9)}  # all 81, none outside


def test_the_device_pipelines_pad_and_crop_batch_is_the_torchvision_crop_of_its_own_offsets(frames):
    """The whole training transform (no flip, no RandAugment) against torchvision's pad-and-crop, normalized."""
    aug = BatchAugment(32, MEAN, STD, crop="pad", padding=4, hflip=0.0)
    images = torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous()
    out = aug.train(images, torch.Generator().manual_seed(3))
    offsets = aug.crop_offsets(len(frames), torch.Generator().manual_seed(3), "cpu")
    norm = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    for k, (top, left) in enumerate(offsets.tolist()):
        theirs = norm(transforms.functional.crop(transforms.Pad(4)(Image.fromarray(frames[k])), top, left, 32, 32))
        assert torch.allclose(out[k], theirs, atol=1e-5)


def test_the_workers_pipeline_pad_and_crop_is_torchvisions_random_crop():
    cfg = load_config("baseline/resnet50", ["train.crop=pad", "train.crop_padding=3", "data.fit=pad"])
    train, _ = build_datasets(cfg)
    first = train.transform.transforms[0].transforms[0]  # the primary transforms' crop
    crop = first.transforms[-1]
    assert isinstance(crop, transforms.RandomCrop) and crop.padding == 3 and crop.size == (32, 32)
    torch.manual_seed(11)
    x, _ = train[0]
    torch.manual_seed(11)
    i, j, _, _ = crop.get_params(transforms.Pad(3)(Image.fromarray(train.images[0])), (32, 32))
    assert x.shape == (3, 32, 32)
    expected = transforms.functional.crop(transforms.Pad(3)(Image.fromarray(train.images[0])), i, j, 32, 32)
    flipped = transforms.functional.hflip(expected)
    got = (x[0] * STD[0] + MEAN[0]) * 255
    assert any(torch.allclose(got, torch.from_numpy(np.array(e)).float(), atol=1e-3) for e in (expected, flipped))


def test_the_random_resized_crops_aspect_range_is_a_setting_on_both_pipelines():
    cfg = load_config("baseline/resnet50", ["train.crop_ratio=[1.0,1.0]", "train.crop_scale=[0.25,0.25]"])
    train, _ = build_datasets(cfg)
    rrc = train.transform.transforms[0].transforms[0]
    assert rrc.ratio == (1.0, 1.0) and rrc.scale == (0.25, 0.25)
    aug = BatchAugment.from_config(cfg)
    boxes = aug.crop_boxes(256, 28, 28, torch.Generator().manual_seed(0), "cpu")
    assert torch.all(boxes[:, 2] == 14) and torch.all(boxes[:, 3] == 14)  # square quarter-area boxes only
    with pytest.raises(ValueError, match=r"train.crop_ratio=\[2.0, 1.0\] is not allowed"):
        load_config("baseline/resnet50", ["train.crop_ratio=[2.0,1.0]"])
    with pytest.raises(ValueError, match="train.crop_padding=-1 is not allowed"):
        load_config("baseline/resnet50", ["train.crop_padding=-1"])


@pytest.mark.parametrize("rule, batch, expected", [
    ("linear", 128, 4e-3 * 128 / 4096),      # 1.25e-4: the enhanced recipe carried to batch 128
    ("linear", 8192, 8e-3),
    ("sqrt", 128, 4e-3 / math.sqrt(32)),     # 7.07e-4
    ("sqrt", 1024, 2e-3),
    ("none", 128, 4e-3),
    ("none", 8192, 4e-3),
])
def test_the_learning_rate_follows_the_batch_by_the_chosen_rule(rule, batch, expected):
    cfg = load_config("baseline/enhanced_recipe", [f"train.lr_scaling={rule}", f"train.batch_size={batch}"])
    assert cfg.train.lr_for(batch) == pytest.approx(expected, rel=1e-12)
    sgd = load_config("baseline/resnet50", [f"train.lr_scaling={rule}"])  # 0.1 per 256
    assert sgd.train.lr_for(64) == pytest.approx({"linear": 0.025, "sqrt": 0.05, "none": 0.1}[rule])
    with pytest.raises(ValueError, match="train.lr_scaling"):
        load_config("baseline/resnet50", ["train.lr_scaling=quadratic"])


def test_the_validation_split_is_stratified_disjoint_and_fixed_by_its_own_seed():
    labels = np.load(SHIPPED)["y_train"]  # 500 per class
    kept, held = split_validation(labels, 1000, seed=0)
    assert len(held) == 1000 and len(kept) == 4000 and not set(kept) & set(held)
    assert sorted(set(kept) | set(held)) == list(range(5000))
    assert np.bincount(labels[held]).tolist() == [100] * 10
    again, _ = split_validation(labels, 1000, seed=0)[::-1]
    assert np.array_equal(again, held)
    assert not np.array_equal(split_validation(labels, 1000, seed=1)[1], held)
    uneven = np.array([0] * 70 + [1] * 20 + [2] * 10)  # shares 7, 2, 1 of 10
    assert np.bincount(uneven[split_validation(uneven, 10, 0)[1]]).tolist() == [7, 2, 1]
    assert np.bincount(uneven[split_validation(uneven, 11, 0)[1]], minlength=3).sum() == 11


def test_every_step_and_seed_holds_out_the_same_images_and_evaluates_them():
    x, y = np.load(SHIPPED)["x_train"], np.load(SHIPPED)["y_train"]
    splits = []
    for step, seed in (("baseline/resnet50", 0), ("micro/gelu", 1), ("micro/separate_downsample", 2)):
        cfg = load_config(step, ["data.val_split=500", f"seed={seed}"])
        (xt, yt), (xv, yv) = training_arrays(cfg)
        splits.append((xv, yv))
        assert len(xv) == 500 and len(xt) == 4500 and np.bincount(yv).tolist() == [50] * 10
        trained = {a.tobytes() for a in xt}
        assert not any(a.tobytes() in trained for a in xv)  # no held-out image is trained on
        assert all(a.tobytes() in {b.tobytes() for b in x} for a in xv[:50])  # they are training images
    assert all(np.array_equal(a[0], splits[0][0]) and np.array_equal(a[1], splits[0][1]) for a in splits)
    moved = training_arrays(load_config("micro/gelu", ["data.val_split=500", "data.val_split_seed=1"]))[1][0]
    assert not np.array_equal(moved, splits[0][0])
    assert len(y) == 5000
