"""What onnxruntime's own profiler says about a session: which execution provider ran each node,
and the peak of its CPU allocator.

Both come from onnxruntime's session profiling (`SessionOptions.enable_profiling`): a few runs
are profiled, `end_profiling()` stops the profiler (later runs, the timed ones, are not profiled)
and writes a Chrome-trace JSON whose "Node" events carry, per kernel run, the `provider` that ran
it, its `op_name` and the allocator's figures (`mem_in_use_peak`, `mem_arena_held`, in bytes).

- Provider placement: kernels are counted after graph optimisation and fusion, so a subgraph
  fused into one TensorRT engine counts once (op `TRTKernel_graph_...`); a node TensorRT and CUDA
  both rejected shows up as a kernel on CPUExecutionProvider, which is what must not pass unseen.
- Memory: `mem_in_use_peak` is the session's CPU arena high-water mark since the session was
  created: the intermediate tensors and outputs as onnxruntime's allocation planner placed them
  (buffer reuse, fusions and layout reorders included) plus pre-packed weights. Weights the CPU
  provider reads in place from the model, and the caller's input buffers, are not in it: it is
  the runtime's working memory, the measured counterpart of memory.activation_bytes. It is the
  runtime's own accounting, not a process-wide figure, so it does not depend on the machine's
  load or on the Python process' other allocations (the same network gives the same figure every
  time); onnxruntime builds whose profiler does not report it leave the figure empty (None).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
PEAK_SOURCE = "ort-cpu-arena-peak"  # peak_mem_source of figures taken from the profile


@dataclass
class SessionProfile:
    """Kernels per provider, op types per provider, and the CPU allocator's peaks (bytes)."""

    kernels: dict[str, int] = field(default_factory=dict)
    ops: dict[str, dict[str, int]] = field(default_factory=dict)
    cpu_peak_bytes: int | None = None
    cpu_arena_held_bytes: int | None = None

    def off_provider(self, provider: str) -> dict[str, int]:
        """Op type -> kernels that ran on some other provider than `provider` (and than the
        TensorRT provider's CUDA fallback when `provider` is TensorRT)."""
        ok = {provider, "CUDAExecutionProvider"} if provider == "TensorrtExecutionProvider" else {provider}
        out: Counter = Counter()
        for prov, ops in self.ops.items():
            if prov not in ok:
                out.update(ops)
        return dict(out)

    def placement(self) -> str:
        """'TensorrtExecutionProvider=1;CUDAExecutionProvider=2': a table cell, stable order."""
        return ";".join(f"{p}={n}" for p, n in sorted(self.kernels.items(), key=lambda kv: (-kv[1], kv[0])))


def enable(so, folder: str | os.PathLike) -> None:
    """Turn profiling on in `so`; the trace lands in `folder` (a temporary folder of the caller)."""
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(os.fspath(folder), "ort-profile")


def parse(events: list[dict]) -> SessionProfile:
    """A SessionProfile from the trace's events (a list of Chrome-trace dicts)."""
    kernels: dict[str, set[str]] = {}
    ops: dict[str, Counter] = {}
    seen: set[tuple[str, str]] = set()
    peak = held = None
    for e in events:
        if e.get("cat") != "Node" or not str(e.get("name", "")).endswith("_kernel_time"):
            continue
        args = e.get("args") or {}
        prov = str(args.get("provider") or "unknown")
        name = str(e["name"])
        kernels.setdefault(prov, set()).add(name)
        if (prov, name) not in seen:  # a kernel profiled on several runs counts once
            seen.add((prov, name))
            ops.setdefault(prov, Counter())[str(args.get("op_name") or "?")] += 1
        if prov == CPU:
            if "mem_in_use_peak" in args:
                peak = max(peak or 0, int(args["mem_in_use_peak"]))
            if "mem_arena_held" in args:
                held = max(held or 0, int(args["mem_arena_held"]))
    return SessionProfile({p: len(k) for p, k in kernels.items()}, {p: dict(c) for p, c in ops.items()},
                          peak, held)


def collect(sess, run: Callable[[], object], runs: int = 2) -> SessionProfile:
    """Run `run` `runs` times on a session made with profiling enabled, stop the profiler and read
    its trace (then delete it). Two runs: the second uses the memory pattern the first planned."""
    for _ in range(max(1, runs)):
        run()
    path = sess.end_profiling()
    try:
        with open(path) as fh:
            events = json.load(fh)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    return parse(events if isinstance(events, list) else events.get("traceEvents", []))


def report_fallback(prof: SessionProfile, provider: str, what: str = "model") -> str | None:
    """One warning line when kernels ran off the requested GPU provider; None when none did."""
    off = prof.off_provider(provider)
    if not off:
        return None
    total = sum(prof.kernels.values())
    line = (f"{what}: {sum(off.values())} of {total} kernels ran off {provider} "
            f"({', '.join(f'{op} x{n}' for op, n in sorted(off.items()))}); placement {prof.placement()}")
    log.warning(line)
    return line
