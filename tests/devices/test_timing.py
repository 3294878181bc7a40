from __future__ import annotations

import time

import numpy as np
import pytest
from hwnas.devices.measurement import Measurement
from hwnas.devices.timing import TimingConfig, measure, median_ci, summarize


def sleeper(ms):
    def fn():
        t = time.perf_counter() + ms / 1e3
        while time.perf_counter() < t:
            pass
    return fn


def test_median_ci_contains_the_median_and_shrinks():
    rng = np.random.default_rng(0)
    small, large = rng.normal(10, 1, 30), rng.normal(10, 1, 3000)
    for x in (small, large):
        lo, hi = median_ci(x)
        assert lo <= np.median(x) <= hi
    assert np.subtract(*median_ci(large)[::-1]) < np.subtract(*median_ci(small)[::-1])


def test_summary_fields():
    s = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median_ms"] == 3.0 and s["n"] == 5 and s["p99_ms"] > s["p90_ms"] > s["median_ms"]


def test_reported_durations_are_used_and_stop_when_tight():
    cfg = TimingConfig(warmup_runs=2, warmup_s=0.0, min_runs=20, rel_ci=0.02, max_s=5)
    res = measure(lambda: 7.0, cfg)  # a device that times itself (CUDA events) returns ms
    assert res.stable and set(res.samples_ms) == {7.0} and len(res.samples_ms) == 20


def test_interleaved_ratio_tracks_the_true_ratio():
    cfg = TimingConfig(warmup_runs=2, warmup_s=0.0, min_runs=20, rel_ci=0.05, max_s=3, round_runs=5)
    res = measure(sleeper(2.0), cfg, ref_fn=sleeper(1.0))
    assert len(res.ratios) >= 5 and len(res.ref_samples_ms) == len(res.samples_ms)
    assert res.ratio == pytest.approx(2.0, rel=0.15)
    m = Measurement.from_timing("cpu", 1, 1, res, cfg, ref_latency_ms=1.0)
    assert m.latency_norm_ms == pytest.approx(2.0, rel=0.15) and m.latency_best_ms == m.latency_norm_ms


def test_time_cap_flags_unstable():
    rng = np.random.default_rng(1)
    cfg = TimingConfig(warmup_runs=1, warmup_s=0.0, min_runs=5, rel_ci=0.001, max_s=0.05)
    res = measure(lambda: float(rng.lognormal(0, 1)), cfg)
    assert not res.stable


def test_measurement_round_trip_rejects_unknown_fields():
    cfg = TimingConfig(warmup_runs=1, warmup_s=0.0, min_runs=5)
    m = Measurement.from_timing("cpu", 1, 2, measure(lambda: 1.0, cfg), cfg)
    assert Measurement.from_dict(m.to_dict()) == m
    with pytest.raises(ValueError, match="unknown field"):
        Measurement.from_dict({**m.to_dict(), "latency_s": 1})
    with pytest.raises(ValueError, match="finite non-negative"):
        Measurement.from_dict({**m.to_dict(), "latency_ms": -1.0})
    assert "samples_ms" not in m.row() and m.row()["energy_source"] == "none"


def test_cached_ci_ranks_give_the_same_interval_as_scipy_each_time():
    """The stopping rule's CI bounds come from a cache of binomial ranks (issue 25: scipy's
    quantiles were the largest cost outside inference); the interval is the one scipy gives."""
    from scipy import stats

    rng = np.random.default_rng(1)
    for conf in (0.9, 0.95, 0.99):
        for n in range(3, 400, 7):
            x = rng.lognormal(0, 0.3, n)
            lo = max(int(stats.binom.ppf((1 - conf) / 2, n, 0.5)) - 1, 0)
            hi = min(int(stats.binom.isf((1 - conf) / 2, n, 0.5)), n - 1)
            xs = np.sort(x)
            assert median_ci(x, conf) == (xs[lo], xs[hi])
            assert median_ci(list(x), conf) == (xs[lo], xs[hi])  # the cached second call
