"""Memory figures of an ONNX model, each labelled by how it was obtained.

- `param_bytes`: bytes of the graph's initializers (weights, constants) - exact.
- `activation_bytes`: analytic peak of live intermediate tensors when nodes run in graph order,
  from onnx.shape_inference (a tensor lives from its producer until its last consumer); the
  graph input is counted, weights are not. A lower bound on what a runtime allocates.
- `peak_mem_bytes` (measured) comes from the runtime: onnxruntime's CPU arena peak read from its
  profiler (ort_profile.py: working memory, compared with `activation_bytes`), TensorRT's engine
  device memory, the torch CUDA allocator's peak; `peak_mem_source` says which.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

_DTYPE_BYTES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}


def _load(model):
    import onnx

    return onnx.load_from_string(model) if isinstance(model, bytes | bytearray) else model


def param_bytes(model) -> int:
    """Total bytes of initializers (and Constant nodes' tensors)."""
    from onnx import numpy_helper

    m = _load(model)
    total = sum(numpy_helper.to_array(t).nbytes for t in m.graph.initializer)
    for node in m.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.t is not None and a.t.dims is not None and a.HasField("t"):
                    total += numpy_helper.to_array(a.t).nbytes
    return int(total)


def _tensor_bytes(vi, overrides: Mapping[str, Sequence[int]]) -> int | None:
    tt = vi.type.tensor_type
    size = _DTYPE_BYTES.get(tt.elem_type)
    if size is None or not tt.HasField("shape"):
        return None
    if vi.name in overrides:
        dims = [int(d) for d in overrides[vi.name]]
    else:
        dims = []
        for d in tt.shape.dim:
            if not d.HasField("dim_value"):
                return None
            dims.append(int(d.dim_value))
    return int(np.prod(dims, dtype=np.int64)) * size


def activation_bytes(model, input_shapes: Mapping[str, Sequence[int]] | None = None) -> int | None:
    """Analytic peak of live activations (bytes); None when a shape cannot be inferred."""
    import onnx

    m = _load(model)
    overrides = dict(input_shapes or {})
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=False)
    g = inferred.graph
    init = {t.name for t in g.initializer}
    infos = {vi.name: vi for vi in list(g.input) + list(g.value_info) + list(g.output)}
    sizes: dict[str, int] = {}
    for name, vi in infos.items():
        if name in init:
            continue
        b = _tensor_bytes(vi, overrides)
        if b is not None:
            sizes[name] = b
    last_use: dict[str, int] = {}
    for i, node in enumerate(g.node):
        for t in node.input:
            last_use[t] = i
    outputs = {o.name for o in g.output}
    live = {vi.name for vi in g.input if vi.name not in init}
    for name in live:
        if name not in sizes:
            return None
    current = sum(sizes[n] for n in live)
    peak = current
    for i, node in enumerate(g.node):
        if node.op_type == "Constant":
            continue
        for t in node.output:
            if not t:
                continue
            if t not in sizes:
                return None
            live.add(t)
            current += sizes[t]
        peak = max(peak, current)
        for t in list(live):  # free what no later node reads (graph outputs stay)
            if t not in outputs and last_use.get(t, i) <= i:
                live.discard(t)
                current -= sizes[t]
    return int(peak)


def memory_row(model, input_shapes: Mapping[str, Sequence[int]] | None = None) -> dict[str, int | None]:
    """Both analytic figures for one model."""
    m = _load(model)
    return {"param_bytes": param_bytes(m), "activation_bytes": activation_bytes(m, input_shapes)}
