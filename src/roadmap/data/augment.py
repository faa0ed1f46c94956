"""timm's training and eval transforms on batches of uint8 images, per sample, on any device
(`data.pipeline=device`).

timm applies, image by image in PIL: RandomResizedCrop (scale, ratio, interpolation) or, with
train.crop=pad, torchvision's RandomCrop(resolution, padding) on the image at the resolution, a
horizontal flip, RandAugment as the recipe's string parses it, ToTensor + Normalize, and random
erasing in `pixel` mode. Here every sample of a batch draws its own parameters from the same
distributions (from a torch.Generator, so a batch depends only on its seed), and the ops run batched
with torch. The RandAugment string is parsed by timm itself (`rand_augment_transform`), so the op
list, layer count, probability and magnitude noise are timm's; each op follows the PIL function timm
calls, with PIL's integer rounding, so images stay uint8-valued between ops. Differences that remain
(tests/test_data_augment.py states them): geometric ops and the crop's resize interpolate with
torch's bicubic (a = -0.75; PIL's affine transform uses a = -1, its resize a = -0.5 with
antialiasing), so they differ from PIL by about one level on average; the eval resize is torch's
antialiased one, as PIL's. Supported: RandAugment strings (`rand-...`) whose ops are all batched
here, bicubic or bilinear interpolation. Mixup/CutMix stay timm's, applied after this."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from timm.data.auto_augment import rand_augment_transform

from ..schema import device_augments

LEVEL_DENOM = 10.0  # timm's RandAugment magnitude scale: magnitude m means a level of m / 10

GEOMETRIC = {"Rotate", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel"}
SIGNED = GEOMETRIC | {"ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing", "SharpnessIncreasing"}


def level(
    name: str, m: torch.Tensor, sign: torch.Tensor, translate_pct: float = 0.45
) -> torch.Tensor:
    """timm's level-to-argument functions (auto_augment.py), for magnitudes `m` and signs
    (+1/-1)."""
    f = m / LEVEL_DENOM
    if name == "Rotate":
        return f * 30.0 * sign
    if name in ("ShearX", "ShearY"):
        return f * 0.3 * sign
    if name in ("TranslateXRel", "TranslateYRel"):
        return f * translate_pct * sign
    if name.endswith("Increasing") and name[:-len("Increasing")] in ("Color", "Contrast", "Brightness", "Sharpness"):
        return (1.0 + f * 0.9 * sign).clamp(min=0.1)
    if name == "PosterizeIncreasing":
        return 4 - (f * 4).floor()
    if name == "SolarizeIncreasing":
        return 256 - (f * 256).floor()
    if name == "SolarizeAdd":
        return (f * 110).floor().clamp(max=128)
    if name in ("AutoContrast", "Equalize", "Invert"):
        return torch.zeros_like(m)
    raise ValueError(
        f"RandAugment op {name} has no batched version here; the device pipeline supports: "
        f"{', '.join(sorted(OPS))}. Use data.pipeline=workers for this recipe"
    )


def _gray(x: torch.Tensor) -> torch.Tensor:
    """PIL's RGB -> L: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16, as (n, 1, H, W)."""
    return torch.floor((x[:, 0:1] * 19595 + x[:, 1:2] * 38470 + x[:, 2:3] * 7471 + 32768) / 65536)


def _blend(degenerate: torch.Tensor, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """PIL's Image.blend(degenerate, x, f): computed in float, clipped, truncated to uint8."""
    return (degenerate + f.view(-1, 1, 1, 1) * (x - degenerate)).clamp(0, 255).floor()


def _lut(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Apply a per-sample, per-channel table (n, C, 256) to integer-valued x (n, C, H, W)."""
    n, c = x.shape[:2]
    return table.gather(2, x.long().view(n, c, -1)).view_as(x).to(x.dtype)


def auto_contrast(x, _):
    flat = x.flatten(2)
    lo, hi = flat.amin(2, keepdim=True).double(), flat.amax(2, keepdim=True).double()
    scale = 255.0 / (hi - lo).clamp(min=1)
    ramp = torch.arange(256, device=x.device, dtype=torch.float64)
    table = (ramp * scale - lo * scale).floor().clamp(0, 255)  # int(ix * scale + offset), clipped
    return _lut(x, torch.where(hi > lo, table, ramp.expand_as(table)))


def equalize(x, _):
    n, c = x.shape[:2]
    hist = torch.zeros(n, c, 256, device=x.device, dtype=torch.long)
    hist.scatter_add_(
        2, x.long().view(n, c, -1), torch.ones_like(x, dtype=torch.long).view(n, c, -1)
    )
    idx = torch.arange(256, device=x.device)
    last = torch.where(hist > 0, idx, -1).amax(2, keepdim=True)
    # Pillow 12: (sum(histo) - histo[-1]) // 255
    step = (hist.sum(2, keepdim=True) - hist.gather(2, last)) // 255
    before = hist.cumsum(2) - hist
    table = ((step // 2 + before) // step.clamp(min=1)).clamp(max=255)
    return _lut(x, torch.where(step > 0, table, idx.expand_as(table)))


def invert(x, _):
    return 255 - x


def posterize(x, bits):
    div = torch.exp2(8 - bits).view(-1, 1, 1, 1)
    return torch.floor(x / div) * div


def solarize(x, thresh):
    return torch.where(x < thresh.view(-1, 1, 1, 1), x, 255 - x)


def solarize_add(x, add):
    return torch.where(x < 128, (x + add.view(-1, 1, 1, 1)).clamp(max=255), x)


def color(x, f):
    return _blend(_gray(x).expand_as(x), x, f)


def contrast(x, f):
    # ImageStat of L, rounded
    mean = torch.floor(_gray(x).double().mean((1, 2, 3)) + 0.5).to(x.dtype)
    return _blend(mean.view(-1, 1, 1, 1).expand_as(x), x, f)


def brightness(x, f):
    return _blend(torch.zeros_like(x), x, f)


def sharpness(x, f):
    # SMOOTH
    kernel = torch.tensor([[1, 1, 1], [1, 5, 1], [1, 1, 1]], dtype=x.dtype, device=x.device) / 13
    n, c, h, w = x.shape
    smooth = F.conv2d(x.reshape(n * c, 1, h, w), kernel.view(1, 1, 3, 3)).view(n, c, h - 2, w - 2)
    degenerate = x.clone()  # PIL's 3x3 filter leaves the border pixels as they are
    degenerate[:, :, 1:-1, 1:-1] = torch.floor(smooth.clamp(0, 255) + 0.5)
    return _blend(degenerate, x, f)


def _affine(name: str, arg: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """PIL's affine matrix (n, 2, 3) for each geometric op: output pixel centre (X, Y) -> input
    point."""
    n = arg.shape[0]
    m = torch.zeros(n, 2, 3, device=arg.device, dtype=torch.float32)
    m[:, 0, 0] = m[:, 1, 1] = 1
    if name == "ShearX":
        m[:, 0, 1] = arg
    elif name == "ShearY":
        m[:, 1, 0] = arg
    elif name == "TranslateXRel":
        m[:, 0, 2] = arg * w
    elif name == "TranslateYRel":
        m[:, 1, 2] = arg * h
    else:  # Rotate: PIL's Image.rotate about the centre, counter-clockwise
        a = torch.deg2rad(-arg)
        cos, sin, cx, cy = torch.cos(a), torch.sin(a), w / 2, h / 2
        m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = cos, sin, -sin, cos
        m[:, 0, 2] = cx - cos * cx - sin * cy
        m[:, 1, 2] = cy + sin * cx - cos * cy
    return m


def warp(x: torch.Tensor, m: torch.Tensor, out_hw: tuple[int, int], fill: torch.Tensor | None,
         mode: str = "bicubic") -> torch.Tensor:
    """Sample x at m @ (X, Y, 1) for every output pixel centre (bicubic or bilinear), rounded to
    integers; points outside the image take `fill` (per channel) as in PIL's transform, or the
    border when `fill` is None."""
    h, w = x.shape[-2:]
    oh, ow = out_hw
    ys = torch.arange(oh, device=x.device, dtype=torch.float32) + 0.5
    xs = torch.arange(ow, device=x.device, dtype=torch.float32) + 0.5
    pts = torch.stack(
        [xs.expand(oh, ow), ys[:, None].expand(oh, ow), torch.ones(oh, ow, device=x.device)], -1
    )
    uv = torch.einsum("nij,hwj->nhwi", m, pts)
    grid = torch.stack([uv[..., 0] * (2 / w) - 1, uv[..., 1] * (2 / h) - 1], -1)
    out = F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=False)
    out = torch.floor(out.clamp(0, 255) + 0.5)
    if fill is not None:
        outside = (uv[..., 0] < 0) | (uv[..., 0] >= w) | (uv[..., 1] < 0) | (uv[..., 1] >= h)
        out = torch.where(outside[:, None], fill.view(1, -1, 1, 1), out)
    return out


OPS = {"AutoContrast": auto_contrast, "Equalize": equalize, "Invert": invert, "PosterizeIncreasing": posterize,
       "SolarizeIncreasing": solarize, "SolarizeAdd": solarize_add, "ColorIncreasing": color,
       "ContrastIncreasing": contrast, "BrightnessIncreasing": brightness, "SharpnessIncreasing": sharpness,
       **{g: None for g in GEOMETRIC}}


def pad_crop(x: torch.Tensor, offsets: torch.Tensor, padding: int) -> torch.Tensor:
    """torchvision's RandomCrop(size, padding) per sample: (n, C, R, R) zero-padded by `padding` on
    each side, then the R x R window at each sample's (top, left) `offsets` (n, 2) of the padded
    image."""
    n, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4).permute(0, 2, 3, 1)
    rows = offsets[:, :1] + torch.arange(h, device=x.device)
    cols = offsets[:, 1:] + torch.arange(w, device=x.device)
    picked = padded[
        torch.arange(n, device=x.device)[:, None, None], rows[:, :, None], cols[:, None, :]
    ]
    return picked.permute(0, 3, 1, 2)


def apply_op(
    name: str, x: torch.Tensor, arg: torch.Tensor, fill: torch.Tensor, mode: str = "bicubic"
) -> torch.Tensor:
    """One RandAugment op on integer-valued float images (n, 3, H, W) with per-sample arguments
    `arg`."""
    if name in GEOMETRIC:
        return warp(x, _affine(name, arg, *x.shape[-2:]), tuple(x.shape[-2:]), fill, mode)
    return OPS[name](x, arg)


class BatchAugment:
    """The recipe's timm train transform for a batch (`train`) and its eval transform (`eval`)."""

    def __init__(self, resolution: int, mean, std, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), hflip: float = 0.5,
                 auto_augment: str | None = None, re_prob: float = 0.0, interpolation: str = "bicubic",
                 eval_crop_pct: float = 1.0, crop: str = "random_resized", padding: int = 4):
        self.resolution, self.scale, self.ratio, self.hflip, self.re_prob = resolution, scale, ratio, hflip, re_prob
        if crop not in ("random_resized", "pad"):
            raise ValueError(f"train.crop={crop!r}: the device pipeline does random_resized or pad")
        self.crop, self.padding = crop, padding
        self.eval_crop_pct, self.mode = eval_crop_pct, interpolation
        if interpolation not in ("bicubic", "bilinear"):
            raise ValueError(f"train.interpolation={interpolation!r}: the device pipeline does bicubic or bilinear")
        self.mean, self.std = torch.tensor(mean) * 255, torch.tensor(std) * 255
        # timm's img_mean
        self.fill = torch.tensor([min(255, round(255 * v)) for v in mean], dtype=torch.float32)
        self.ops, self.layers, self.weights, self.prob = [], 0, None, 0.0
        if auto_augment:
            if not device_augments(auto_augment):
                raise ValueError(
                    f"train.auto_augment={auto_augment!r}: the device pipeline does RandAugment "
                    "('rand-...') only; use data.pipeline=workers for other policies"
                )
            hparams = dict(
                translate_const=int(resolution * 0.45), img_mean=tuple(self.fill.int().tolist())
            )
            ra = rand_augment_transform(auto_augment, hparams)
            self.ops = [op.name for op in ra.ops]
            for name in self.ops:
                # fails now, naming the op, if it has no batched version
                level(name, torch.zeros(1), torch.ones(1))
            first = ra.ops[0]
            self.layers, self.weights, self.prob = ra.num_layers, ra.choice_weights, first.prob
            self.magnitude, self.mstd = float(first.magnitude), float(first.magnitude_std)
            self.mmax = float(first.magnitude_max or LEVEL_DENOM)
            self.translate_pct = first.hparams.get("translate_pct", 0.45)

    @classmethod
    def from_config(cls, cfg) -> "BatchAugment":
        t, d = cfg.train, cfg.data
        return cls(d.resolution, d.mean, d.std, tuple(t.crop_scale), tuple(t.crop_ratio), hflip=t.hflip,
                   auto_augment=t.auto_augment, re_prob=t.re_prob, interpolation=t.interpolation,
                   eval_crop_pct=d.eval_crop_pct, crop=t.crop.value, padding=t.crop_padding)

    # -- parameters: every draw from `g`, so a batch depends only on the generator's seed --------------------
    def crop_boxes(self, n: int, h: int, w: int, g: torch.Generator, device) -> torch.Tensor:
        """timm's RandomResizedCrop.get_params per sample: (top, left, height, width), 10 tries,
        then centre."""
        u = torch.rand(n, 10, 4, generator=g, device=device, dtype=torch.float64)
        area = (self.scale[0] + u[..., 0] * (self.scale[1] - self.scale[0])) * h * w
        lr = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        aspect = torch.exp(lr[0] + u[..., 1] * (lr[1] - lr[0]))
        tw, th = torch.round(torch.sqrt(area * aspect)), torch.round(torch.sqrt(area / aspect))
        ok = (tw <= w) & (th <= h)
        first = torch.where(ok.any(1), ok.float().argmax(1), torch.full((n,), -1, device=device))
        k = first.clamp(min=0)[:, None]
        th, tw = th.gather(1, k)[:, 0], tw.gather(1, k)[:, 0]
        top = torch.floor(u[..., 2].gather(1, k)[:, 0] * (h - th + 1))
        left = torch.floor(u[..., 3].gather(1, k)[:, 0] * (w - tw + 1))
        # fallback: the whole image, its ratio clamped into range, centred
        fh, fw = h, w
        if w / h < min(self.ratio):
            fh = round(w / min(self.ratio))
        elif w / h > max(self.ratio):
            fw = round(h * max(self.ratio))
        fallback = torch.tensor(
            [(h - fh) // 2, (w - fw) // 2, fh, fw], device=device, dtype=torch.float64
        )
        boxes = torch.stack([top, left, th, tw], 1)
        return torch.where((first < 0)[:, None], fallback, boxes)

    def op_params(
        self, n: int, g: torch.Generator, device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(op index, applied, argument), each (layers, n): timm's RandAugment and AugmentOp
        draws."""
        shape = (self.layers, n)
        if self.weights is None:  # uniform, with replacement
            idx = torch.randint(len(self.ops), shape, generator=g, device=device)
        else:  # weighted, without replacement within an image
            w = torch.as_tensor(self.weights, device=device, dtype=torch.float32).expand(n, -1)
            idx = torch.multinomial(w, self.layers, replacement=False, generator=g).T
        applied = torch.rand(shape, generator=g, device=device) <= self.prob
        if self.mstd == float("inf"):
            m = torch.rand(shape, generator=g, device=device) * self.magnitude
        else:
            m = self.magnitude + self.mstd * torch.randn(shape, generator=g, device=device)
        m = m.clamp(0, self.mmax)
        sign = torch.where(torch.rand(shape, generator=g, device=device) > 0.5, -1.0, 1.0)
        arg = torch.zeros(shape, device=device)
        for k, name in enumerate(self.ops):
            sel = idx == k
            if sel.any():
                arg[sel] = level(name, m[sel], sign[sel], self.translate_pct).float()
        return idx, applied, arg

    # -- the transforms ---------------------------------------------------------------------------------------
    def randaugment(self, x: torch.Tensor, idx, applied, arg) -> torch.Tensor:
        fill = self.fill.to(x.device)
        for layer in range(self.layers):
            for k, name in enumerate(self.ops):
                sel = ((idx[layer] == k) & applied[layer]).nonzero()[:, 0]
                if len(sel):
                    x[sel] = apply_op(name, x[sel], arg[layer, sel], fill, self.mode)
        return x

    def erase(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """timm's RandomErasing(mode='pixel', max_count=1) per sample on normalized images."""
        n, c, h, w = x.shape
        dev = x.device
        go = torch.rand(n, generator=g, device=dev) < self.re_prob
        u = torch.rand(n, 10, 4, generator=g, device=dev, dtype=torch.float64)
        area = (0.02 + u[..., 0] * (1 / 3 - 0.02)) * h * w
        aspect = torch.exp(math.log(0.3) + u[..., 1] * (math.log(1 / 0.3) - math.log(0.3)))
        eh, ew = torch.round(torch.sqrt(area * aspect)), torch.round(torch.sqrt(area / aspect))
        ok = (ew < w) & (eh < h)
        k = ok.float().argmax(1, keepdim=True)
        go &= ok.any(1)
        eh, ew = eh.gather(1, k), ew.gather(1, k)
        top = torch.floor(u[..., 2].gather(1, k) * (h - eh + 1))
        left = torch.floor(u[..., 3].gather(1, k) * (w - ew + 1))
        rows, cols = torch.arange(h, device=dev)[None], torch.arange(w, device=dev)[None]
        inside = ((rows >= top) & (rows < top + eh))[:, :, None] & (
            (cols >= left) & (cols < left + ew)
        )[:, None, :]
        noise = torch.randn(x.shape, generator=g, device=dev, dtype=x.dtype)
        return torch.where((inside & go[:, None, None])[:, None], noise, x)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.device).view(1, -1, 1, 1)) / self.std.to(x.device).view(
            1, -1, 1, 1
        )

    def crop_offsets(self, n: int, g: torch.Generator, device) -> torch.Tensor:
        """torchvision's RandomCrop.get_params per sample on the padded image: (top, left), each in
        [0, 2 padding]."""
        return torch.randint(0, 2 * self.padding + 1, (n, 2), generator=g, device=device)

    def train(self, images: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """uint8 (n, 3, H, W) -> normalized float (n, 3, R, R), each sample with its own draws."""
        n, _, h, w = images.shape
        dev, r = images.device, self.resolution
        if self.crop == "pad":
            x = self.resize(images, r) if (h, w) != (r, r) else images.float()
            x = pad_crop(x, self.crop_offsets(n, g, dev), self.padding)
        else:
            boxes = self.crop_boxes(n, h, w, g, dev).float()
            m = torch.zeros(n, 2, 3, device=dev)
            m[:, 0, 0], m[:, 0, 2] = boxes[:, 3] / r, boxes[:, 1]  # input x = left + X * width / R
            m[:, 1, 1], m[:, 1, 2] = boxes[:, 2] / r, boxes[:, 0]
            x = warp(images.float(), m, (r, r), None, self.mode)
        flip = torch.rand(n, generator=g, device=dev) < self.hflip
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        if self.layers:
            x = self.randaugment(x, *self.op_params(n, g, dev))
        x = self.normalize(x)
        return self.erase(x, g) if self.re_prob > 0 else x

    def resize(self, images: torch.Tensor, r: int, crop_pct: float = 1.0) -> torch.Tensor:
        """Resize the shorter side to r / crop_pct (antialiased, as PIL), rounded to integers;
        centre crop r."""
        h, w = images.shape[-2:]
        size = math.floor(r / crop_pct)
        oh, ow = (size, max(1, int(size * w / h))) if h <= w else (max(1, int(size * h / w)), size)
        x = images.float()
        if (oh, ow) != (h, w):  # PIL's resize to the same size is a copy
            x = F.interpolate(x, size=(oh, ow), mode=self.mode, antialias=True, align_corners=False)
            x = torch.floor(x.clamp(0, 255) + 0.5)
        top, left = int(round((oh - r) / 2.0)), int(round((ow - r) / 2.0))
        return x[..., top:top + r, left:left + r]

    def eval(self, images: torch.Tensor) -> torch.Tensor:
        """timm's eval transform: resize the shorter side to R / crop_pct (antialiased), centre crop
        R."""
        return self.normalize(self.resize(images, self.resolution, self.eval_crop_pct))
