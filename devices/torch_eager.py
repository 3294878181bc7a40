"""PyTorch eager execution (`torch-cpu`, `torch-cuda`): the module-level path.

Eager timing is what a researcher gets before any export, so it is a device of its own. It times
PyTorch modules only; an ONNX model is timed by the ONNX Runtime and TensorRT devices.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from .base import Device, DeviceUnavailable
from .measurement import Measurement
from .timing import TimingConfig, measure


class TorchEagerDevice(Device):
    def __init__(self, spec: str = "torch-cpu"):
        name, _, opts = spec.partition(":")
        self.spec = spec
        self.cuda = name == "torch-cuda"
        threads = None
        for tok in filter(None, opts.split(":")):
            k, _, v = tok.partition("=")
            if k == "threads" and not self.cuda:
                try:
                    threads = int(v)
                except ValueError:
                    raise ValueError(f"device {spec!r}: threads={v!r} is not an integer") from None
            else:
                raise ValueError(f"device {spec!r}: unknown option {k!r}; {name} accepts "
                                 f"{'no options' if self.cuda else 'threads=N'}")
        if self.cuda:
            import torch

            if not torch.cuda.is_available():
                raise DeviceUnavailable(f"device {spec!r}: torch sees no CUDA GPU here; use --device torch-cpu")
            self.threads = None
            self.device_id = "torch-cuda"
        else:
            self.threads = threads if threads is not None else (os.cpu_count() or 1)
            if self.threads < 1:
                raise ValueError(f"device {spec!r}: threads must be >= 1")
            self.device_id = f"torch-cpu-t{self.threads}"

    def info(self) -> dict:
        import torch

        d = super().info()
        d.update(runtime="torch-eager", runtime_version=torch.__version__, providers=[self.device_id])
        if self.cuda:
            d["gpu"] = torch.cuda.get_device_name(0)
        return d

    def _runner(self, module, input_shape):
        import torch

        dev = "cuda" if self.cuda else "cpu"
        module = module.eval().to(dev)
        x = torch.randn(*input_shape, generator=torch.Generator().manual_seed(0)).to(dev)

        if not self.cuda:
            def run():
                with torch.inference_mode():
                    module(x)

            return run
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

        def run_cuda():
            with torch.inference_mode():
                start.record()
                module(x)
                end.record()
            end.synchronize()
            return start.elapsed_time(end)

        return run_cuda

    def measure_module(self, module, input_shape: Sequence[int], cfg: TimingConfig = TimingConfig(),
                       ref_module=None, ref_latency_ms=None, cache=None, key=None,
                       ref_input_shape=None) -> Measurement:
        import torch

        prev = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            if self.cuda:
                torch.cuda.reset_peak_memory_stats()
            run = self._runner(module, input_shape)
            ref = None
            if ref_module is not None:
                from .reference import reference_input

                ref = self._runner(ref_module, ref_input_shape or reference_input(int(input_shape[0])))
            timing = measure(run, cfg, ref_fn=ref)
            kw = {"param_bytes": int(sum(p.numel() * p.element_size() for p in module.parameters())
                                     + sum(b.numel() * b.element_size() for b in module.buffers()))}
            if self.cuda:
                kw.update(peak_mem_bytes=int(torch.cuda.max_memory_allocated()), peak_mem_source="torch-cuda-allocator")
        finally:
            torch.set_num_threads(prev)
        return Measurement.from_timing(self.spec, int(input_shape[0]), self.threads, timing, cfg,
                                       ref_latency_ms, extra={"runtime": "torch-eager"}, **kw)

    def measure_onnx(self, onnx_bytes, input_shapes=None, cfg: TimingConfig = TimingConfig(),
                     ref_onnx=None, ref_latency_ms=None) -> Measurement:
        raise DeviceUnavailable(
            f"device {self.spec!r} times PyTorch modules, not ONNX models; measure the module itself "
            "(measure_module), or time the ONNX model on cpu, cuda or trt"
        )
