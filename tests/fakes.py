"""Small stand-ins several test modules build: a synthetic block table and an installed plugin."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def synthetic_block_table(path: Path) -> Path:
    """An mbv3-fmnist block table whose latency grows with kernel, expansion and width (for the
    latency-spread selection of reference sets and pools); written to `path`."""
    from hwnas.search.spaces import create_space

    sp = create_space("mbv3-fmnist")
    rows = [{"block_key": b.key, "kind": "block",
             "latency_norm_ms": 0.01 * b.params["kernel"] * b.params["expand"] * b.params["c_out"] / 16}
            for b in sp.all_blocks()]
    rows += [{"block_key": b.key, "kind": "fixed", "latency_norm_ms": 0.05} for b in sp.fixed_blocks()]
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(path)
    return path


def install_plugin(site: Path, module: str, source: str, entry_points: str) -> None:
    """What `pip install` leaves in `site`: the module and a dist-info with entry_points.txt."""
    site.mkdir(exist_ok=True)
    (site / f"{module}.py").write_text(source)
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    dist = module.replace("_", "-")
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
