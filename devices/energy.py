"""Energy per inference, from hardware counters only; never estimated silently.

Sources, in order of preference:
- "nvml": NVIDIA's total-energy counter (mJ since driver load, Volta and newer), read before and
  after a window of runs long enough for the counter to tick; falls back to "nvml-power"
  (power samples every 10 ms, integrated with the trapezoid rule) on GPUs without the counter.
- "rapl": Intel/AMD RAPL package energy from /sys/class/powercap when readable (wraps handled).
- "none": no counter here; energy is empty (None).
Idle power, measured over a window with nothing running, is subtracted, so the figure is the
energy the inference itself adds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")


class EnergyMeter:
    """Cumulative energy in millijoules; `read()` is monotonic between wraps."""

    source = "none"

    def read_mj(self) -> float:
        raise NotImplementedError

    def close(self) -> None:
        return None


class RaplMeter(EnergyMeter):
    source = "rapl"

    def __init__(self, zones: list[Path]):
        self.zones = zones
        self.max_uj = [int((z / "max_energy_range_uj").read_text()) for z in zones]
        self._last = [self._raw(z) for z in zones]
        self._acc = 0.0

    @staticmethod
    def _raw(z: Path) -> int:
        return int((z / "energy_uj").read_text())

    def read_mj(self) -> float:
        for i, z in enumerate(self.zones):
            now = self._raw(z)
            d = now - self._last[i]
            if d < 0:  # counter wrapped
                d += self.max_uj[i]
            self._acc += d / 1e3
            self._last[i] = now
        return self._acc


def rapl_zones() -> list[Path]:
    """Top-level package zones whose counter this process can read."""
    out = []
    if POWERCAP.is_dir():
        for z in sorted(POWERCAP.glob("intel-rapl:*")):
            if z.name.count(":") != 1:
                continue  # sub-zones (core, uncore) are inside the package figure
            try:
                int((z / "energy_uj").read_text())
                int((z / "max_energy_range_uj").read_text())
            except (OSError, ValueError):
                continue
            out.append(z)
    return out


class NvmlMeter(EnergyMeter):
    """Total-energy counter of one GPU, or integrated power samples where it is missing."""

    def __init__(self, index: int = 0, sample_s: float = 0.01):
        import pynvml  # lazy: only on GPU machines

        pynvml.nvmlInit()
        self._nv = pynvml
        self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        try:
            pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.source = "nvml"
            self._thread = None
        except pynvml.NVMLError:
            self.source = "nvml-power"
            self._acc = 0.0
            self._stop = threading.Event()
            self._lock = threading.Lock()
            self._thread = threading.Thread(target=self._sample, args=(sample_s,), daemon=True)
            self._thread.start()

    def _sample(self, dt: float) -> None:
        t_prev = time.perf_counter()
        p_prev = self._nv.nvmlDeviceGetPowerUsage(self.handle)  # milliwatts
        while not self._stop.wait(dt):
            t = time.perf_counter()
            p = self._nv.nvmlDeviceGetPowerUsage(self.handle)
            with self._lock:
                self._acc += (p + p_prev) / 2 * (t - t_prev)  # mW * s = mJ
            t_prev, p_prev = t, p

    def read_mj(self) -> float:
        if self._thread is None:
            return float(self._nv.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        with self._lock:
            return self._acc

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=1)
        try:
            self._nv.nvmlShutdown()
        except Exception:
            pass


def open_meter(kind: str = "auto", gpu_index: int = 0) -> EnergyMeter | None:
    """A meter for `kind` ("gpu", "cpu" or "auto"); None where no counter is readable."""
    if kind in ("gpu", "auto"):
        try:
            return NvmlMeter(gpu_index)
        except Exception:
            if kind == "gpu":
                return None
    if kind in ("cpu", "auto"):
        zones = rapl_zones()
        if zones:
            return RaplMeter(zones)
    return None


@dataclass
class EnergyResult:
    energy_mj: float | None  # per inference, idle subtracted
    energy_source: str
    idle_power_w: float | None = None
    window_s: float | None = None
    runs: int = 0


def idle_power_w(meter: EnergyMeter, window_s: float = 0.5) -> float:
    e0, t0 = meter.read_mj(), time.perf_counter()
    time.sleep(window_s)
    e1, t1 = meter.read_mj(), time.perf_counter()
    return (e1 - e0) / 1e3 / (t1 - t0)


def measure_energy(run: Callable[[], object], meter: EnergyMeter | None, window_s: float = 1.0,
                   idle_w: float | None = None, sync: Callable[[], object] | None = None) -> EnergyResult:
    """Run `run` back to back for at least `window_s` and return energy per inference.

    The window must span several counter updates (NVML ~ 10-100 ms, RAPL ~ 1 ms); one second is
    the default. `sync` waits for asynchronous devices before the counter is read.
    """
    if meter is None:
        return EnergyResult(None, "none")
    if idle_w is None:
        idle_w = idle_power_w(meter, min(window_s, 0.5))
    if sync:
        sync()
    e0, t0, n = meter.read_mj(), time.perf_counter(), 0
    while True:
        run()
        n += 1
        if time.perf_counter() - t0 >= window_s:
            break
    if sync:
        sync()
    e1, t1 = meter.read_mj(), time.perf_counter()
    dt = t1 - t0
    net_mj = (e1 - e0) - idle_w * 1e3 * dt
    return EnergyResult(max(net_mj, 0.0) / n, meter.source, idle_w, dt, n)
