"""The measurement protocol, torch-free (the remote agent uses it on small boards).

Rules (see docs/design.md, "Measurement rules"):
- warm up by count *and* time;
- repeat until the 95% confidence half-width of the median is within `rel_ci` of the median, or
  `max_s` / `max_runs` is reached (then the row is flagged unstable);
- interleave with a fixed reference network: rounds of `round_runs` runs of the target, then of
  the reference; the per-round ratio of medians cancels the machine's speed drift, and
  `median(ratios) x reference latency from the calibration phase` is the normalised latency.

A run callable executes one inference synchronously. It may return the elapsed milliseconds
itself (GPU devices timing with CUDA events); when it returns None, wall time is measured here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

RunFn = Callable[[], "float | None"]


@dataclass(frozen=True)
class TimingConfig:
    warmup_runs: int = 10
    warmup_s: float = 0.2
    min_runs: int = 20
    max_runs: int = 5000
    rel_ci: float = 0.02  # target 95% CI half-width of the median, relative to the median
    max_s: float = 10.0  # time cap for one measurement (warm-up excluded)
    round_runs: int = 10  # runs per interleaving round
    confidence: float = 0.95

    def __post_init__(self):
        if not 0 < self.rel_ci < 1:
            raise ValueError(f"rel_ci must be in (0, 1), got {self.rel_ci}")
        if self.min_runs < 3 or self.max_runs < self.min_runs:
            raise ValueError(f"need 3 <= min_runs <= max_runs, got {self.min_runs}, {self.max_runs}")
        if self.round_runs < 1:
            raise ValueError(f"round_runs must be >= 1, got {self.round_runs}")

    def to_dict(self) -> dict:
        return asdict(self)


def _call_ms(fn: RunFn) -> float:
    t0 = time.perf_counter_ns()
    out = fn()
    t1 = time.perf_counter_ns()
    return float(out) if out is not None else (t1 - t0) / 1e6


def warm_up(fn: RunFn, cfg: TimingConfig) -> int:
    """Run until both the count and the time of the warm-up are reached; returns runs done."""
    n, t_end = 0, time.perf_counter() + cfg.warmup_s
    while n < cfg.warmup_runs or time.perf_counter() < t_end:
        fn()
        n += 1
    return n


@lru_cache(maxsize=4096)
def median_ci_ranks(n: int, confidence: float = 0.95) -> tuple[int, int]:
    """The order statistics (0-based) bounding the median's CI among n samples (binomial ranks).

    Cached: the stopping rule asks after every round, and scipy's binomial quantiles cost more than
    a short round of a small block's runs (they were the largest cost outside inference)."""
    from scipy import stats  # here, not at the top: `hwnas --help` reads TimingConfig's defaults

    lo = int(stats.binom.ppf((1 - confidence) / 2, n, 0.5))
    hi = int(stats.binom.isf((1 - confidence) / 2, n, 0.5))
    return max(lo - 1, 0), min(hi, n - 1)


def median_ci(samples, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free CI of the median from order statistics (binomial ranks)."""
    x = np.sort(np.asarray(samples, dtype=float))
    n = len(x)
    if n < 3:
        return float(x[0]), float(x[-1])
    lo, hi = median_ci_ranks(n, float(confidence))
    return float(x[lo]), float(x[hi])


def rel_halfwidth(samples, confidence: float = 0.95) -> float:
    lo, hi = median_ci(samples, confidence)
    med = float(np.median(samples))
    return (hi - lo) / 2 / med if med > 0 else math.inf


def summarize(samples_ms, confidence: float = 0.95) -> dict[str, float]:
    """Median (primary), mean, std, p90, p99, CoV, n, relative CI half-width."""
    x = np.asarray(samples_ms, dtype=float)
    mean = float(x.mean())
    return {
        "median_ms": float(np.median(x)),
        "mean_ms": mean,
        "std_ms": float(x.std(ddof=1)) if len(x) > 1 else 0.0,
        "p90_ms": float(np.percentile(x, 90)),
        "p99_ms": float(np.percentile(x, 99)),
        "cov": float(x.std(ddof=1) / mean) if len(x) > 1 and mean > 0 else 0.0,
        "n": int(len(x)),
        "ci_rel": rel_halfwidth(x, confidence),
    }


@dataclass
class TimingResult:
    samples_ms: list[float]
    ref_samples_ms: list[float]  # empty without a reference
    ratios: list[float]  # per-round median(target) / median(reference)
    stable: bool  # CI target met before the caps
    wall_s: float  # time spent in this measurement, warm-up included
    busy_s: float  # time inside run calls (target and reference), for the overhead benchmark

    @property
    def ratio(self) -> float | None:
        return float(np.median(self.ratios)) if self.ratios else None


def measure(fn: RunFn, cfg: TimingConfig = TimingConfig(), ref_fn: RunFn | None = None,
            ref_warm: bool = False) -> TimingResult:
    """Time `fn` by the protocol; with `ref_fn`, interleave rounds with the reference.

    `ref_warm=True` skips the reference's warm-up (a reused session that ran seconds ago).
    Without a reference, stop when the median's CI meets `rel_ci`. With one, stop when the CI of
    the median of the per-round ratios does (needs at least 5 rounds), so the normalised figure
    is as tight as asked for.
    """
    t_start = time.perf_counter()
    warm_up(fn, cfg)
    if ref_fn is not None and not ref_warm:  # ref_warm: the caller ran it moments ago
        warm_up(ref_fn, cfg)
    t0 = time.perf_counter()
    samples: list[float] = []
    ref_samples: list[float] = []
    ratios: list[float] = []
    busy = 0.0
    stable = False
    while True:
        k = cfg.round_runs if ref_fn is not None else max(1, min(cfg.round_runs, cfg.min_runs))
        rnd = [_call_ms(fn) for _ in range(k)]
        samples.extend(rnd)
        busy += sum(rnd) / 1e3
        if ref_fn is not None:
            rref = [_call_ms(ref_fn) for _ in range(k)]
            ref_samples.extend(rref)
            busy += sum(rref) / 1e3
            ratios.append(float(np.median(rnd) / np.median(rref)))
        if len(samples) >= cfg.min_runs:
            if ref_fn is None:
                stable = rel_halfwidth(samples, cfg.confidence) <= cfg.rel_ci
            else:
                stable = len(ratios) >= 5 and rel_halfwidth(ratios, cfg.confidence) <= cfg.rel_ci
            if stable or len(samples) >= cfg.max_runs or time.perf_counter() - t0 >= cfg.max_s:
                break
    return TimingResult(samples, ref_samples, ratios, stable, time.perf_counter() - t_start, busy)
