"""The development runs of HELP's protocol: `auto`'s small-sample members and weighting
rules on the development devices and sample seeds only (never the evaluation devices).

    python3 -m hwnas.bench.experiments.protocol_dev --k 10 --seeds 100-105

prints, per rule, the mean Spearman over the development devices and draws: each member alone,
the previous rule (three members, LOO ** 4) and `auto`'s rule for a grid of `prior_strength` (k0)
and `weight_power` (p). The figures behind results/predictors/help-protocol/DEVELOPMENT.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from hwnas.core import paths
from hwnas.predictors.auto import SMALL_PRIOR_CANDIDATES
from hwnas.predictors.base import create_predictor
from hwnas.predictors.transfer import PriorTables
from scipy.stats import spearmanr

from ..engine.predictors import split
from .predictor_experiments import (
    DEVELOPMENT_DEVICES,
    DEVELOPMENT_SEEDS,
    device_columns,
    prior_columns,
)

PREVIOUS_MEMBERS = ("transfer", "transfer-nearest", "ridge-cost")


def member_draws(table: Path, devices, k: int, seeds, n_test: int = 3000,
                 members=SMALL_PRIOR_CANDIDATES) -> list[dict]:
    """For each device and seed: the members' LOO Spearman (from `auto`), their prior-side scores,
    their predictions on `n_test` random held-out cells, and those cells' latencies."""
    from hwnas.search.spaces import create_space

    space = create_space("nb201")
    df = pd.read_csv(table)
    archs = [space.validate(space.from_str(s)) for s in df.arch_str]
    columns = device_columns(table)
    out = []
    for dev in devices:
        cols = prior_columns(columns, dev)
        prior = PriorTables(list(df.arch_str), [f"{Path(table).stem}:{c}" for c in cols], df[cols].to_numpy(float))
        y = df[dev].to_numpy(np.float64)
        for seed in seeds:
            tr, te = split(len(y), k, seed)
            te = np.sort(np.random.default_rng(seed + 999).choice(te, min(n_test, len(te)), replace=False))
            X, Xt = [archs[i] for i in tr], [archs[i] for i in te]
            auto = create_predictor("auto", space=space, seed=seed, target="cost", candidates=tuple(members),
                                    prior_strength=0).fit(X, y[tr], prior=prior)
            preds = {}
            for name in members:
                m = create_predictor(name, space=space, seed=seed)
                preds[name] = m.fit(X, y[tr], prior=prior if m.uses_prior else None).predict(Xt)
            out.append({"device": dev, "seed": seed, "k": k, "loo": dict(auto.cv_spearman_),
                        "prior": auto.prior_protocol_scores(prior, k, list(members)), "preds": preds, "y": y[te]})
    return out


def combine(draw: dict, members, k0: float, power: float, use_prior: bool = True) -> np.ndarray:
    """`auto`'s small-sample average of the members' predictions for one draw."""
    lam = draw["k"] / (draw["k"] + k0) if np.isfinite(k0) else 0.0
    ev = {m: lam * draw["loo"][m] + (1 - lam) * draw["prior"][m] if use_prior and m in draw["prior"]
          else draw["loo"][m] for m in members}
    raw = {m: max(v, 0.0) ** power for m, v in ev.items()}
    total = sum(raw.values()) or 1.0
    return sum(raw[m] / total * draw["preds"][m] for m in members)


def rule_table(draws: list[dict], strengths=(0, 5, 10, 20, 40, np.inf), powers=(1, 4, 8, 16)) -> pd.DataFrame:
    """Mean Spearman of each member and rule over the draws (one row per rule)."""
    members = list(draws[0]["preds"])
    rows = []
    for d in draws:
        r = {m: spearmanr(d["preds"][m], d["y"]).statistic for m in members}
        old = [m for m in PREVIOUS_MEMBERS if m in members]
        if old:
            r["previous rule (3 members, LOO ** 4)"] = spearmanr(combine(d, old, 0, 4, use_prior=False), d["y"]).statistic
        for k0 in strengths:
            for p in powers:
                r[f"k0 = {k0:g}, p = {p:g}"] = spearmanr(combine(d, members, k0, p), d["y"]).statistic
        rows.append(r)
    return pd.DataFrame(rows).mean().rename("mean spearman").to_frame()


def _seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi) + 1)) if hi else [int(s) for s in text.split(",")]


def run(k: int, seed_text: str, data: str | None = None) -> str:
    """The rule table of `auto`'s member weighting at k samples on the development devices and
    the given development seeds (`hwnas dev predictors`); the reported seeds are refused."""
    seeds = _seeds(seed_text)
    if not set(seeds) <= set(DEVELOPMENT_SEEDS):
        raise ValueError(f"--seeds {seed_text}: development seeds only ({DEVELOPMENT_SEEDS[0]}-{DEVELOPMENT_SEEDS[-1]})")
    table = paths.data_dir(data) / "help-latency/help_nasbench201_latency_ms.csv"
    return rule_table(member_draws(table, DEVELOPMENT_DEVICES, k, seeds)).round(4).to_string()
