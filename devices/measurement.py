"""The record every device returns for one model (block or whole network), local or remote.

Units live in field names. A value that was not measured is None (an empty cell in tables),
never a guess: `energy_source` says where energy came from ("nvml", "rapl" or "none").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .timing import TimingConfig, TimingResult, summarize


@dataclass
class Measurement:
    device: str
    batch: int
    threads: int | None
    # raw timing (median is primary)
    latency_ms: float
    latency_mean_ms: float
    latency_std_ms: float
    latency_p90_ms: float
    latency_p99_ms: float
    latency_cov: float
    latency_ci_rel: float
    n: int
    stable: bool
    # reference-normalised timing (drift compensated); None without a reference
    ref_ratio: float | None = None
    ref_latency_ms: float | None = None  # reference latency from the calibration phase
    latency_norm_ms: float | None = None  # ref_ratio * ref_latency_ms
    # energy per inference
    energy_mj: float | None = None
    energy_source: str = "none"
    # memory
    param_bytes: int | None = None
    activation_bytes: int | None = None  # analytic peak from ONNX shape inference
    peak_mem_bytes: int | None = None  # measured by the runtime, where it exposes one
    peak_mem_source: str = "none"
    precision: str = "fp32"
    wall_s: float | None = None
    busy_s: float | None = None
    samples_ms: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_timing(cls, device: str, batch: int, threads: int | None, timing: TimingResult,
                    cfg: TimingConfig, ref_latency_ms: float | None = None, **kw) -> Measurement:
        s = summarize(timing.samples_ms, cfg.confidence)
        ratio = timing.ratio
        if timing.ratios:  # per-round ratios are the raw material of the normalised figure
            kw["extra"] = {**kw.get("extra", {}), "ratios": [float(r) for r in timing.ratios]}
        return cls(
            device=device, batch=batch, threads=threads,
            latency_ms=s["median_ms"], latency_mean_ms=s["mean_ms"], latency_std_ms=s["std_ms"],
            latency_p90_ms=s["p90_ms"], latency_p99_ms=s["p99_ms"], latency_cov=s["cov"],
            latency_ci_rel=s["ci_rel"], n=s["n"], stable=timing.stable,
            ref_ratio=ratio, ref_latency_ms=ref_latency_ms,
            latency_norm_ms=ratio * ref_latency_ms if ratio is not None and ref_latency_ms else None,
            wall_s=timing.wall_s, busy_s=timing.busy_s, samples_ms=list(timing.samples_ms), **kw,
        )

    @property
    def latency_best_ms(self) -> float:
        """The figure tables and predictors use by default: normalised when available."""
        return self.latency_norm_ms if self.latency_norm_ms is not None else self.latency_ms

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measurement:
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"measurement has unknown field(s): {', '.join(sorted(unknown))}")
        m = cls(**d)
        if not (isinstance(m.latency_ms, int | float) and math.isfinite(m.latency_ms) and m.latency_ms >= 0):
            raise ValueError(f"measurement latency_ms must be a finite non-negative number, got {m.latency_ms!r}")
        return m

    def row(self, keep_samples: bool = False) -> dict[str, Any]:
        """Flat table row (samples as a list only when asked: they make tables large)."""
        d = self.to_dict()
        extra = d.pop("extra")
        if not keep_samples:
            d.pop("samples_ms")
        d.update({f"extra_{k}": v for k, v in extra.items()})
        return d
