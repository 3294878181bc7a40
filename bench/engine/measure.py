"""`hwnas measure`: end-to-end latency of any ONNX model (or PyTorch module) on a device, by the
suite's protocol: warm-up by count and time, repeats until the median's confidence interval is
narrow enough (or the time cap), rounds interleaved with the fixed reference network after a
calibration of that reference, so the figure is drift compensated (docs/design.md, "Measurement
rules"). Memory and energy come with it where the device reads them; what it cannot read stays
empty, labelled by its `*_source` column.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd
from hwnas.core.io import atomic_write_bytes
from hwnas.devices.measurement import Measurement
from hwnas.devices.timing import TimingConfig

#: the columns of a `hwnas measure` row that a reader looks at first (then the rest of the record)
FIRST_COLUMNS = ("model", "model_sha256", "device", "batch", "threads", "latency_norm_ms", "latency_ms",
                 "latency_ci_rel", "n", "stable", "ref_latency_ms", "peak_mem_bytes", "peak_mem_source",
                 "energy_mj", "energy_source", "param_bytes", "activation_bytes", "measured_at")


def onnx_inputs(onnx_bytes: bytes) -> dict[str, list[int | str]]:
    """Graph input name -> declared shape (a str for a dynamic dimension); initializers left out."""
    import onnx

    try:
        graph = onnx.load_from_string(onnx_bytes).graph
    except Exception as exc:  # onnx raises DecodeError and others for a file that is not a model
        raise ValueError(f"not an ONNX model ({type(exc).__name__}: {str(exc)[:120]}); export it with "
                         "torch.onnx.export or check the file") from None
    inits = {i.name for i in graph.initializer}
    out = {}
    for i in graph.input:
        if i.name in inits:
            continue
        dims = i.type.tensor_type.shape.dim
        out[i.name] = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or "?")
                       for d in dims]
    return out


def parse_shapes(text: str | None) -> dict[str, tuple[int, ...]] | None:
    """'1x3x224x224' (the model's one input) or 'x=1x3x224x224,mask=1x224' -> name -> shape
    ('' for the single input: named when the model is read)."""
    if not text:
        return None
    out = {}
    for part in text.split(","):
        name, sep, dims = part.strip().rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            raise ValueError(f"input shape {part.strip()!r} is not [NAME=]AxBxC, e.g. 1x3x224x224") from None
        if any(d <= 0 for d in shape):
            raise ValueError(f"input shape {part.strip()!r} has a non-positive dimension")
        out[name if sep else ""] = shape
    return out


def _shapes_for(inputs: dict, given: Mapping[str, Sequence[int]] | None) -> dict[str, tuple[int, ...]]:
    """Every input's shape: given ones (an unnamed one names the model's single input), else declared."""
    given = dict(given or {})
    if "" in given:
        if len(inputs) != 1:
            raise ValueError(f"the model has {len(inputs)} inputs ({', '.join(inputs)}); name each shape as "
                             "NAME=AxBxC")
        given[next(iter(inputs))] = given.pop("")
    unknown = set(given) - set(inputs)
    if unknown:
        raise ValueError(f"the model has no input(s) named {', '.join(sorted(unknown))}; its inputs: "
                         f"{', '.join(inputs)}")
    out = {}
    for name, dims in inputs.items():
        if name in given:
            out[name] = tuple(int(d) for d in given[name])
        elif all(isinstance(d, int) for d in dims):
            out[name] = tuple(dims)
        else:
            shown = "x".join(str(d) for d in dims)
            raise ValueError(f"input {name!r} has a dynamic shape ({shown}); give it, e.g. --input-shape "
                             f"{name}={'x'.join(str(d) if isinstance(d, int) else '1' for d in dims)}")
    return out


def measure_model(model, device="cpu:threads=1", input_shapes: Mapping[str, Sequence[int]] | None = None,
                  cfg: TimingConfig = TimingConfig(), reference: bool = True) -> Measurement:
    """Time `model` end to end on `device` (a spec or a Device) by the suite's protocol.

    `model`: a path to an .onnx file, ONNX bytes, or a `torch.nn.Module` (then `input_shapes` is
    its input shape with the batch, e.g. (1, 3, 32, 32), or {"x": shape}). With `reference`,
    the reference network is calibrated alone first and then interleaved, and the result holds
    `latency_norm_ms` beside the raw `latency_ms`.
    """
    from hwnas.devices.base import Device
    from hwnas.devices.reference import reference_input, reference_module, reference_onnx
    from hwnas.devices.registry import create_device

    dev = device if isinstance(device, Device) else create_device(device)
    if not dev.measures:
        raise ValueError(f"device {dev.spec!r} is a table measured by others; it cannot time a new model")
    module = None if isinstance(model, bytes | str | os.PathLike) else model
    if module is None:
        data = model if isinstance(model, bytes) else _read_model(model)
        shapes = _shapes_for(onnx_inputs(data), input_shapes)
    else:
        shape = input_shapes if not isinstance(input_shapes, Mapping) else next(iter(input_shapes.values()), None)
        if shape is None:
            raise ValueError("a PyTorch module needs its input shape (batch included), e.g. (1, 3, 32, 32)")
        shapes = {"x": tuple(int(d) for d in shape)}
    batch = int(next(iter(shapes.values()))[0]) if shapes else 1
    ref_ms = None
    if reference:  # calibration as `hwnas profile` does it: the reference alone, a longer run
        ccfg = replace(cfg, min_runs=max(cfg.min_runs, 200), max_runs=max(cfg.max_runs, 200))
        ref_ms = dev.calibrate(reference_module(), reference_input(batch), ccfg).latency_ms
    if module is not None:
        return dev.measure_module(module, shapes["x"], cfg, ref_module=reference_module() if reference else None,
                                  ref_latency_ms=ref_ms)
    return dev.measure_onnx(data, shapes, cfg, ref_onnx=reference_onnx(batch) if reference else None,
                            ref_latency_ms=ref_ms)


def _read_model(path) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such ONNX model")
    return p.read_bytes()


def measurement_row(m: Measurement, model_name: str, model_sha256: str | None = None) -> dict:
    """One table row: the model, then the measurement's columns (raw samples left out)."""
    import json

    from hwnas.devices.table import now_iso

    row = {"model": model_name, "model_sha256": model_sha256, **m.row(), "measured_at": now_iso()}
    row = {k: json.dumps(v, default=str) if isinstance(v, list | dict | tuple) else v for k, v in row.items()}
    return {**{k: row.get(k) for k in FIRST_COLUMNS}, **{k: v for k, v in row.items() if k not in FIRST_COLUMNS}}


def summary_line(m: Measurement, model_name: str) -> str:
    """'model.onnx on cpu:threads=1: 1.234 ms (drift-compensated; raw 1.250 ms, +-1.8%, n=240), ...'."""
    lat = (f"{m.latency_norm_ms:.4g} ms drift-compensated (raw median {m.latency_ms:.4g} ms)"
           if m.latency_norm_ms is not None else f"{m.latency_ms:.4g} ms raw median (no reference)")
    ci = f"95% CI +-{m.latency_ci_rel:.1%}, n={m.n}" + ("" if m.stable else ", UNSTABLE: hit the time cap")
    mem = (f"peak memory {m.peak_mem_bytes / 2**20:.2f} MiB ({m.peak_mem_source})" if m.peak_mem_bytes is not None
           else "peak memory not measured")
    energy = (f"energy {m.energy_mj:.4g} mJ/inference ({m.energy_source})" if m.energy_mj is not None
              else "energy not measured")
    return f"{model_name} on {m.device} (batch {m.batch}): {lat}, {ci}; {mem}; {energy}"


def append_row(path: str | os.PathLike, row: dict) -> Path:
    """Add `row` to the CSV or Parquet table at `path` (created when absent), atomically."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"--out {p}: write a .csv or .parquet file")
    df = pd.DataFrame([row])
    if p.exists():
        from hwnas.devices.table import read_table_file

        df = pd.concat([read_table_file(p), df], ignore_index=True)
    for c in [c for c in df.columns if pd.api.types.is_object_dtype(df[c])]:  # numbers and empties stay numeric
        try:
            df[c] = pd.to_numeric(df[c])
        except (ValueError, TypeError):
            df[c] = df[c].astype("string")
    if suffix == ".csv":
        atomic_write_bytes(p, df.to_csv(index=False).encode())
    else:
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        atomic_write_bytes(p, buf.getvalue())
    return p
