"""The chain track's ground truth: subnets trained from scratch under one fixed protocol.

A reference set is chosen stratified over the latency range of a measured block table (one arch
nearest each of N evenly spaced latencies, from a seeded pool of random archs and random
monotone paths up from the smallest), and each arch is trained with every protocol seed. Rows (arch, seed) are appended
as they finish, so `make standalone` resumes after a kill; a protocol that differs from the one
recorded in the sidecar refuses to mix rows. The supernet's estimate of each arch is a separate
column, filled by `add_supernet_estimates` once a supernet checkpoint exists.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from hwnas.bench.engine.protocol import StandaloneProtocol
from hwnas.core.log import bars_off
from hwnas.core.paths import portable
from hwnas.devices.table import read_sidecar, write_table

log = logging.getLogger(__name__)

COLUMNS = ["arch_str", "seed", "val_acc", "test_acc", "latency_ms", "latency_table_ms", "macs",
           "params", "train_wall_s", "train_cpu_s"]


@dataclass
class LatencyModel:
    """Latency of whole archs from a measured block table: the table sum (what a
    `latency_ms<=X@<device>` constraint reads) and, when validate-lut's whole-network calibration
    of this very table exists, the calibrated figure; `source` says which `latency_ms` is."""

    space: object
    table_path: Path
    source: str = ""
    _calib: object = field(default=None, repr=False)

    def __post_init__(self):
        from hwnas.devices.lut import BlockTable, calibration_path, read_calibration
        from hwnas.predictors.baselines import LUTSumPredictor

        self.table = BlockTable.from_file(self.table_path, "latency_norm_ms")
        self.source = "table sum (latency_norm_ms, reference-normalised)"
        calib = read_calibration(self.table_path, "latency_norm_ms")
        if calib is not None:
            self._calib = LUTSumPredictor.from_calibration(self.space, self.table_path, calib)
            self.source = f"whole-network calibration {calibration_path(self.table_path).name} of the table sum"

    def table_ms(self, archs) -> np.ndarray:
        return np.array([self.table.network_sum(self.space, a) for a in archs])

    def latency_ms(self, archs) -> np.ndarray:
        return self._calib.predict(archs) if self._calib is not None else self.table_ms(archs)


def select_reference(space, latency: LatencyModel, n: int = 40, seed: int = 0,
                     pool: int = 20_000) -> list:
    """N archs, one nearest each of N evenly spaced latencies over the pool's range.

    Uniform samples crowd the middle of a chain space's latency range, so the pool also holds
    random monotone paths from the smallest to the largest arch (each step adds a block or
    swaps one for a slower choice): every latency has candidates nearby.
    """
    rng = np.random.default_rng(seed)
    archs = space.sample_many(pool, rng, unique=True)
    archs += [a for _ in range(max(1, pool // 200)) for a in _monotone_path(space, latency, rng)]
    archs = list(dict.fromkeys(archs))
    lat = latency.latency_ms(archs)
    chosen: list[int] = []
    for target in np.linspace(lat.min(), lat.max(), n):
        order = np.argsort(np.abs(lat - target))
        chosen.append(next(int(i) for i in order if int(i) not in chosen))
    return [archs[i] for i in sorted(chosen, key=lambda i: lat[i])]


def _monotone_path(space, latency: LatencyModel, rng: np.random.Generator) -> list:
    """Archs up from the smallest (300 proposals), each slower than the one before."""
    arch = [list(st) for st in space.smallest()]
    cost = latency.table_ms([space.smallest()])[0]
    out = [space.smallest()]
    for _ in range(300):
        s = int(rng.integers(len(arch)))
        st = space.stages[s]
        cand = [list(b) for b in arch]
        if len(cand[s]) < st.max_depth and rng.random() < 0.5:
            cand[s].append(int(rng.integers(len(st.choices))))
        else:
            cand[s][int(rng.integers(len(cand[s])))] = int(rng.integers(len(st.choices)))
        a = tuple(tuple(b) for b in cand)
        c = latency.table_ms([a])[0]
        if c > cost:
            arch, cost = cand, c
            out.append(a)
    return out


# ---- training (one task per (arch, seed); runs in executor workers) -------------------------
_WORKER: dict = {}


def _init(space_name: str, protocol: dict, threads: int | None = None) -> None:
    import torch
    from hwnas.search.data import load_dataset
    from hwnas.search.spaces import create_space

    proto = StandaloneProtocol(**{**protocol, "seeds": tuple(protocol["seeds"])})
    if threads:
        torch.set_num_threads(threads)
    space = create_space(space_name)
    _WORKER.update(space=space, protocol=proto,
                   data=load_dataset(proto.data, shape=space.input_shape, seed=proto.split_seed))


def _train(task: tuple[str, int]) -> dict:
    from hwnas.search.supernet import train_standalone
    from hwnas.search.supernet.evaluate import count_params_macs

    arch_str, seed = task
    space, proto, data = _WORKER["space"], _WORKER["protocol"], _WORKER["data"]
    arch = space.from_str(arch_str)
    t0, c0 = time.perf_counter(), time.process_time()
    r = train_standalone(space, arch, data, proto.train_config(seed), progress=False, test=True)
    params, macs = count_params_macs(space, arch)
    return {"arch_str": arch_str, "seed": seed, "val_acc": r["val_acc"], "test_acc": r["test_acc"],
            "params": int(params), "macs": int(macs), "train_wall_s": time.perf_counter() - t0,
            "train_cpu_s": time.process_time() - c0}


def train_reference(space, table_path: str | Path, out: str | Path, n: int = 40, seed: int = 0,
                    protocol: StandaloneProtocol | None = None, executor: str = "process",
                    workers: int | None = 2, archs: list | None = None, limit: int | None = None,
                    progress: bool = True, selection: str | None = None) -> pd.DataFrame:
    """Train the reference set (or `archs`) with every protocol seed; resumable, appends rows.

    `selection` says in the sidecar where `archs` came from (the reference set's rule is stated
    when no archs are given)."""
    from hwnas.search.supernet.executor import create_executor
    from tqdm.auto import tqdm

    proto = protocol or StandaloneProtocol()
    out_p = Path(out)
    latency = LatencyModel(space, Path(table_path))
    old, old_meta = _read(out_p)
    if old_meta and old_meta.get("protocol") != proto.key():
        raise ValueError(f"{out_p}: trained with protocol {old_meta.get('protocol')}, not {proto.key()}; "
                         "use the same protocol, another --out, or move the file away")
    if archs is None:
        archs = select_reference(space, latency, n=n, seed=seed)
        selection = (f"{n} archs nearest {n} evenly spaced latencies over 20,000 random archs "
                     f"and 100 random monotone paths up from the smallest (seed {seed})")
    elif selection is None:
        selection = f"{len(archs)} archs given by the caller"
    archs = list(dict.fromkeys([space.validate(a) for a in archs]))
    if not old.empty:  # archs of an earlier call stay in the set
        archs = list(dict.fromkeys([space.from_str(s) for s in old["arch_str"].unique()] + archs))
    strs = [space.to_str(a) for a in archs]
    lat = dict(zip(strs, latency.latency_ms(archs), strict=True))
    lat_table = dict(zip(strs, latency.table_ms(archs), strict=True))
    done = {(r.arch_str, int(r.seed)) for r in old.itertuples()}
    order = _ends_first(sorted(strs, key=lat.__getitem__))
    todo = [(s, sd) for s in order for sd in proto.seeds if (s, sd) not in done][:limit]
    meta = {"kind": "standalone-reference", "space": space.name, "protocol": proto.key(),
            "latency_table": portable(Path(table_path)), "latency_source": latency.source,
            "selection": selection,
            "columns": {"val_acc": "top-1 % on the whole val split", "test_acc": "top-1 % on the whole test split",
                        "latency_ms": latency.source, "latency_table_ms": "sum of the block table's latency_norm_ms",
                        "supernet_val_acc": "the supernet's estimate (BN recalibrated, whole val split); empty until measured"}}
    rows = old.to_dict("records")
    if todo:
        log.info("stand-alone: %d runs to do (%d done), %s executor, %s workers", len(todo), len(done),
                 executor, workers)
        ex = create_executor(executor, workers)
        try:
            ex.start(_init, (space.name, {**asdict(proto), "seeds": list(proto.seeds)}))
            with tqdm(total=len(todo), desc="stand-alone", disable=bars_off() or not progress, mininterval=1.0) as bar:
                for r in ex.map(_train, todo):
                    r.update(latency_ms=float(lat[r["arch_str"]]), latency_table_ms=float(lat_table[r["arch_str"]]))
                    rows.append(r)
                    _write(rows, out_p, {**meta, "complete": False})
                    bar.update(1)
        finally:
            ex.close()
    have = {(r["arch_str"], int(r["seed"])) for r in rows}
    complete = all((s, sd) in have for s in strs for sd in proto.seeds)
    return _write(rows, out_p, {**meta, "complete": complete})


def _ends_first(items: list) -> list:
    """Fastest, slowest, second fastest, ...: the runs that decide the set's spread (its two
    end deciles) land first, so a partial set already answers whether the protocol spreads."""
    lo, hi, out = 0, len(items) - 1, []
    while lo <= hi:
        out.append(items[lo])
        if hi != lo:
            out.append(items[hi])
        lo, hi = lo + 1, hi - 1
    return out


def add_supernet_estimates(space, out: str | Path, checkpoint: str | Path, calib_images: int = 512,
                           workers: int | None = None, executor: str = "process") -> pd.DataFrame:
    """Fill `supernet_val_acc` of every arch in the reference file (whole val split)."""
    from hwnas.search.supernet import SubnetEvaluator, load_checkpoint

    out_p = Path(out)
    df, meta = _read(out_p)
    if df.empty:
        raise FileNotFoundError(f"{out_p}: no stand-alone rows yet; run `make standalone` first")
    ck = load_checkpoint(checkpoint)
    archs = list(df["arch_str"].unique())
    with SubnetEvaluator(space, str(checkpoint), data=meta["protocol"]["data"], calib_images=calib_images,
                         val_images=None, workers=workers, executor=executor,
                         seed=meta["protocol"]["split_seed"]) as ev:
        est = dict(zip(archs, ev([space.from_str(s) for s in archs]), strict=True))
    df["supernet_val_acc"] = df["arch_str"].map(est)
    meta.update(supernet_checkpoint=portable(Path(checkpoint)), supernet_epochs=ck["epoch"],
                supernet_train_config=ck.get("train_config"))
    return _write(df.to_dict("records"), out_p, meta)


def _read(path: Path) -> tuple[pd.DataFrame, dict]:
    if not path.exists():
        return pd.DataFrame(columns=COLUMNS), {}
    return pd.read_parquet(path), read_sidecar(path)


def _write(rows: list[dict], path: Path, meta: dict) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    cols = COLUMNS + [c for c in df.columns if c not in COLUMNS]
    df = df.reindex(columns=cols).sort_values(["latency_ms", "arch_str", "seed"]).reset_index(drop=True)
    df["seed"] = df["seed"].astype("int64")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_table(df, path, meta={**meta, "rows": len(df), "load_avg_1min": round(os.getloadavg()[0], 2)})
    return df
