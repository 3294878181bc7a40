"""Checkpoints: one file per run, written atomically after every epoch.

A checkpoint holds the weights, optimizer state, the finished epoch count, the run's options and
the per-epoch history, so `--resume` after a kill continues at the next epoch and, because each
epoch's randomness is derived from (seed, epoch), ends with the same weights as an uninterrupted
run.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch

FORMAT = "hwnas-supernet/1"


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    from devices.table import atomic_write_bytes

    buf = io.BytesIO()
    torch.save({"format": FORMAT, "torch_version": torch.__version__, **state}, buf)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(
            f"{p}: no such checkpoint; train one with `hwnas supernet train --out {p}`"
        )
    try:
        state = torch.load(p, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a corrupt or foreign file
        raise ValueError(f"{p}: not a readable checkpoint ({type(exc).__name__}); retrain or point at another file") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{p}: not an hwnas supernet checkpoint (format {state.get('format') if isinstance(state, dict) else '?'}); retrain it")
    return state


def load_supernet(path: str | os.PathLike, space=None):
    """(supernet with the checkpoint's weights, checkpoint dict)."""
    from search.spaces import create_space

    from .base import create_supernet

    state = load_checkpoint(path)
    name = state["space"]
    if space is not None:
        sp = create_space(space)
        if sp.name != name:
            raise ValueError(f"{path}: checkpoint is of space {name!r}, not {sp.name!r}; pass --space {name}")
    else:
        sp = create_space(name, **state.get("space_kwargs", {}))
    net = create_supernet(sp, **state.get("supernet_config", {}))
    net.load_state_dict(state["model"])
    return net, state
