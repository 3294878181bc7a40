"""Checkpoints: one file per run, written atomically after every epoch.

A checkpoint holds the weights, optimizer state, the finished epoch count, the run's options and
the per-epoch history, so `--resume` after a kill continues at the next epoch and, because each
epoch's randomness is derived from (seed, epoch), ends with the same weights as an uninterrupted
run.

Reading never runs code: `torch.load(weights_only=True)` accepts plain containers, numbers,
strings and tensors only, so a crafted file holding any other object is refused in one line.
"""

from __future__ import annotations

import io
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch

FORMAT = "hwnas-supernet/1"
REQUIRED_KEYS = ("space", "epoch", "model")


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any]) -> Path:
    from hwnas.core.io import atomic_write_bytes

    buf = io.BytesIO()
    torch.save({"format": FORMAT, "torch_version": str(torch.__version__), **state}, buf)
    remove_stale_temps(path)
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def remove_stale_temps(path: str | os.PathLike) -> list[Path]:
    """Delete the hidden temp files (`.NAME.xxxxxxxx`) a killed atomic write of `path` left.
    Callers hold the output's lock, so no live writer owns them."""
    p = Path(path)
    pat = re.compile(rf"^\.{re.escape(p.name)}\.[A-Za-z0-9_]{{8}}$")
    gone = []
    if p.parent.is_dir():
        for f in p.parent.iterdir():
            if pat.match(f.name) and f.is_file():
                f.unlink(missing_ok=True)
                gone.append(f)
    return gone


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(
            f"{p}: no such checkpoint; train one with `hwnas supernet train --out {p}`"
        )
    try:
        from torch.torch_version import TorchVersion  # a str subclass older checkpoints hold

        with torch.serialization.safe_globals([TorchVersion]):
            state = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses any global that is not a tensor or plain container: never run it
        why = str(exc).splitlines()
        hint = next((ln.strip() for ln in why if "GLOBAL" in ln or "Unsupported" in ln), "")
        if hint:
            raise ValueError(f"{p}: refused, the checkpoint holds objects other than tensors and plain "
                             f"data ({hint[:160]}); only load checkpoints written by `hwnas supernet "
                             "train`, or retrain it") from None
        raise ValueError(f"{p}: not a readable checkpoint (truncated or not a torch file); retrain it "
                         "or point at another file") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a corrupt or foreign file
        raise ValueError(f"{p}: not a readable checkpoint ({type(exc).__name__}: truncated or not a torch "
                         "file); retrain it or point at another file") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ValueError(f"{p}: not an hwnas supernet checkpoint (format {state.get('format') if isinstance(state, dict) else '?'}); retrain it")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing or not isinstance(state.get("model"), dict) or type(state.get("epoch")) is not int:
        what = f"no {', '.join(missing)}" if missing else "a malformed model or epoch entry"
        raise ValueError(f"{p}: damaged hwnas checkpoint ({what}); retrain it with `hwnas supernet train`")
    return state


def load_supernet(path: str | os.PathLike, space=None):
    """(supernet with the checkpoint's weights, checkpoint dict)."""
    from hwnas.search.spaces import create_space

    from .base import create_supernet

    state = load_checkpoint(path)
    name = state["space"]
    if space is not None:
        sp = create_space(space)
        if sp.name != name:
            raise ValueError(f"{path}: checkpoint is of space {name!r}, not {sp.name!r}; pass --space {name}")
    else:
        sp = create_space(name, **state.get("space_kwargs", {}))
    try:
        net = create_supernet(sp, **state.get("supernet_config", {}))
        net.load_state_dict(state["model"])
    except (RuntimeError, TypeError, KeyError) as exc:
        first = str(exc).strip().splitlines()
        raise ValueError(f"{path}: the checkpoint's weights do not fit the {name} supernet "
                         f"({first[0][:200] if first else type(exc).__name__}); retrain it with "
                         "`hwnas supernet train` or pass the checkpoint of this space") from None
    return net, state
