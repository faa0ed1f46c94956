"""Honest step-to-step statistics: is a change between two steps real, and does it agree with the
paper?

- `change(a, b)`: the change from step a's runs to step b's, with a 95% confidence interval. Runs are paired by
  seed where both steps have the same seeds (at least two): the interval is the paired t interval of the
  per-seed differences. Otherwise Welch's interval of the two means, with the Welch-Satterthwaite degrees of
  freedom rounded down (slightly wider than exact). With a single run on either side there is no interval.
- A change is `real` when its interval excludes zero.
- `agreement(ours, paper)`: sign agreement and Spearman's rank correlation of our changes and the paper's.

Student's t quantiles are exact for integer degrees of freedom (the closed forms of Abramowitz &
Stegun 26.7.3-4, inverted by bisection), so nothing beyond the standard library is needed."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass


def t_two_sided_cdf(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with integer `df` >= 1."""
    theta = math.atan(abs(t) / math.sqrt(df))
    c, s = math.cos(theta), math.sin(theta)
    if df % 2:  # odd
        if df == 1:
            return 2 * theta / math.pi
        term, total = c, c
        for k in range(3, df - 1, 2):  # cos^(k) terms: c * (2/3) c^2 * (4/5) c^2 ...
            term *= (k - 1) / k * c * c
            total += term
        return 2 / math.pi * (theta + s * total)
    term, total = 1.0, 1.0
    for k in range(2, df - 1, 2):
        term *= (k - 1) / k * c * c
        total += term
    return s * total


def t_quantile(p: float, df: int) -> float:
    """The t with P(|T| <= t) = p (e.g. p=0.95 gives the two-sided 95% critical value)."""
    lo, hi = 0.0, 1.0
    while t_two_sided_cdf(hi, df) < p:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_two_sided_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2


@dataclass
class Change:
    # mean of b minus mean of a (or the mean per-seed difference when paired)
    delta: float
    low: float | None          # 95% interval, None with a single run on either side
    high: float | None
    method: str                # "paired" (n seeds), "welch", or "single run"
    n: int                     # pairs, or the smaller run count

    @property
    def real(self) -> bool | None:
        return None if self.low is None else (self.low > 0 or self.high < 0)


def change(a: dict[int, float], b: dict[int, float], level: float = 0.95) -> Change | None:
    """The change from runs `a` to runs `b` ({seed: value}); None when either side has no run."""
    if not a or not b:
        return None
    common = sorted(set(a) & set(b))
    if len(common) >= 2 and set(a) == set(b):
        diffs = [b[s] - a[s] for s in common]
        mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
        half = t_quantile(level, len(diffs) - 1) * sd / math.sqrt(len(diffs))
        return Change(mean, mean - half, mean + half, "paired", len(diffs))
    va, vb = list(a.values()), list(b.values())
    delta = statistics.fmean(vb) - statistics.fmean(va)
    if len(va) < 2 or len(vb) < 2:
        return Change(delta, None, None, "single run", min(len(va), len(vb)))
    qa, qb = statistics.variance(va) / len(va), statistics.variance(vb) / len(vb)
    se = math.sqrt(qa + qb)
    if se == 0:
        return Change(delta, delta, delta, "welch", min(len(va), len(vb)))
    df = (qa + qb) ** 2 / (qa ** 2 / (len(va) - 1) + qb ** 2 / (len(vb) - 1))
    half = t_quantile(level, max(1, math.floor(df))) * se
    return Change(delta, delta - half, delta + half, "welch", min(len(va), len(vb)))


def ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties given their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rank correlation (Pearson's on ranks); None for fewer than 3 pairs or a constant
    side."""
    if len(x) < 3:
        return None
    rx, ry = ranks(x), ranks(y)
    try:
        return statistics.correlation(rx, ry)
    except statistics.StatisticsError:
        return None


def agreement(ours: list[float], paper: list[float]) -> dict:
    """How our step-to-step changes agree with the paper's, over the steps where both exist."""
    pairs = [(a, b) for a, b in zip(ours, paper) if a is not None and b is not None]
    same = sum((a > 0) == (b > 0) for a, b in pairs if a != 0 and b != 0)
    signed = sum(1 for a, b in pairs if a != 0 and b != 0)
    return {"steps": len(pairs), "sign_agreement": same / signed if signed else None, "sign_agree": same,
            "sign_compared": signed, "spearman": spearman([a for a, _ in pairs], [b for _, b in pairs])}


@dataclass
class Bootstrap:
    delta: float  # mean over seeds of the per-seed accuracy difference, in points
    low: float    # percentile interval over the replicates
    high: float
    seeds: int
    images: int
    replicates: int

    @property
    def real(self) -> bool:
        return self.low > 0 or self.high < 0


def bootstrap_replicates(diffs, replicates: int = 4000, seed: int = 0, chunk: int = 1000):
    """The replicates of `paired_bootstrap` (fractions, not points): (replicates,) array."""
    import numpy as np
    d = np.asarray(diffs, dtype=np.float64)
    if d.ndim != 2 or d.size == 0:
        raise ValueError(f"diffs must be a non-empty (seeds, images) array, not shape {d.shape}")
    k, n = d.shape
    # Images with the same column of differences are interchangeable: drawing images is drawing
    # these patterns (at most 3^seeds of them) with their frequencies, the same distribution for a
    # fraction of the work.
    patterns, counts = np.unique(d.T, axis=0, return_counts=True)  # (patterns, seeds), (patterns,)
    rng = np.random.default_rng(seed)
    out = np.empty(replicates)
    for start in range(0, replicates, chunk):
        r = min(chunk, replicates - start)
        # (r, patterns): how many drawn images have each
        weights = rng.multinomial(n, counts / n, size=r)
        per_seed = patterns.T @ weights.T / n              # (seeds, r)
        picks = rng.integers(0, k, size=(r, k))            # the seeds drawn in each replicate
        out[start:start + r] = per_seed[picks, np.arange(r)[:, None]].mean(1)
    return out


def paired_bootstrap(
    diffs, level: float = 0.95, replicates: int = 4000, seed: int = 0
) -> Bootstrap:
    """The change in top-1 (points) between two steps, from `diffs` (seeds, images): correct_b -
    correct_a per seed and test image (-1, 0 or 1; the same images in every run). Each replicate
    draws seeds with replacement and, once for all seeds, test images with replacement (the test set
    is shared, so its sampling error is too); the replicate's change is the mean over the drawn
    seeds of the mean difference over the drawn images. Percentile interval. Deterministic for a
    given `seed`, so a report made twice is the same."""
    import numpy as np
    d = np.asarray(diffs, dtype=np.float64)
    out = bootstrap_replicates(d, replicates, seed)
    tail = (1 - level) / 2
    low, high = np.quantile(out, [tail, 1 - tail], method="inverted_cdf")
    return Bootstrap(100 * float(d.mean()), 100 * float(low), 100 * float(high), d.shape[0], d.shape[1], replicates)
