"""Energy per inference, from hardware counters only; never estimated silently.

Sources, in order of preference:
- "nvml": NVIDIA's total-energy counter (mJ since driver load, Volta and newer), read before and
  after a window of runs long enough for the counter to tick; falls back to "nvml-power"
  (power samples every 10 ms, integrated with the trapezoid rule) on GPUs without the counter.
- "rapl": Intel/AMD RAPL package energy from /sys/class/powercap when readable (wraps handled).
- "none": no counter here; energy is empty (None).
Idle power is subtracted, so the figure is the energy the inference itself adds. It is sampled
*before* the timing loop, after the device has had COOLDOWN_S seconds with nothing to run (a GPU
sampled right after a loop is still hot and draws more than at idle, which made energy per
inference read low), and reused for IDLE_MAX_AGE_S seconds, so a table of many blocks pays the
cool-down once every few minutes, not once per block.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

POWERCAP = Path("/sys/class/powercap")
COOLDOWN_S = 3.0  # nothing runs on the device this long before idle power is sampled
IDLE_WINDOW_S = 1.0  # idle power is the mean over this window
IDLE_MAX_AGE_S = 300.0  # an idle figure older than this is measured again

log = logging.getLogger(__name__)


class EnergyMeter:
    """Cumulative energy in millijoules; `read()` is monotonic between wraps."""

    source = "none"
    key = "none"  # which counter: idle figures are remembered per key

    def read_mj(self) -> float:
        raise NotImplementedError

    def close(self) -> None:
        return None


class RaplMeter(EnergyMeter):
    source = "rapl"

    def __init__(self, zones: list[Path]):
        self.zones = zones
        self.key = "rapl:" + ",".join(z.name for z in zones)
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
    """Total-energy counter of one GPU, or integrated power samples where it is missing.

    `index` is the CUDA device index of this process; the NVML handle is the GPU with the same
    PCI bus id (devices/gpu.py), not NVML's device `index`, which ignores CUDA_VISIBLE_DEVICES.
    `nvml` and `identity` replace pynvml and the CUDA driver's answer (tests pass stand-ins).
    """

    def __init__(self, index: int = 0, sample_s: float = 0.01, nvml=None, identity=None):
        if nvml is None:
            import pynvml as nvml  # lazy: only on GPU machines
        if identity is None:
            from .gpu import cuda_identity

            identity = cuda_identity(index)
        nvml.nvmlInit()
        self._nv = nvml
        self.identity = identity
        self.key = f"nvml:{identity.pci_bus_id}"
        try:
            self.handle = _nvml_handle(nvml, identity)
        except Exception:
            nvml.nvmlShutdown()
            raise
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.source = "nvml"
            self._thread = None
        except nvml.NVMLError:
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

    def power_limit_w(self) -> float | None:
        """The board's enforced power limit (W), where NVML reports one."""
        try:
            return self._nv.nvmlDeviceGetEnforcedPowerLimit(self.handle) / 1e3
        except Exception:
            return None

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


def _nvml_handle(nvml, identity):
    from .gpu import nvml_handle

    return nvml_handle(nvml, identity)


_WARNED: set[str] = set()


def _warn_once(line: str) -> None:
    if line not in _WARNED:  # once per process, not once per measured block
        _WARNED.add(line)
        log.warning(line)


def open_meter(kind: str = "auto", gpu_index: int = 0) -> EnergyMeter | None:
    """A meter for `kind` ("gpu", "cpu" or "auto"); None where no counter is readable."""
    if kind in ("gpu", "auto"):
        try:
            return NvmlMeter(gpu_index)
        except Exception as exc:
            if kind == "gpu":
                _warn_once(f"no GPU energy counter ({exc}); energy stays empty")
                return None
    if kind in ("cpu", "auto"):
        zones = rapl_zones()
        if zones:
            return RaplMeter(zones)
    return None


@dataclass
class EnergyResult:
    energy_mj: float | None  # per inference, idle subtracted; None when not measured
    energy_source: str
    idle_power_w: float | None = None
    window_s: float | None = None
    runs: int = 0
    power_w: float | None = None  # mean power over the window (idle included)
    power_limit_w: float | None = None  # the board's enforced limit, where the meter knows it

    def extra(self) -> dict:
        """The figures behind energy_mj, for a measurement's `extra`."""
        return {k: v for k, v in (("idle_power_w", self.idle_power_w), ("power_w", self.power_w),
                                  ("power_limit_w", self.power_limit_w), ("energy_window_s", self.window_s))
                if v is not None}


def idle_power_w(meter: EnergyMeter, window_s: float = IDLE_WINDOW_S, cooldown_s: float = COOLDOWN_S,
                 sleep=time.sleep) -> float:
    """Mean power (W) over `window_s` with nothing running, after `cooldown_s` of quiet."""
    sleep(cooldown_s)
    e0, t0 = meter.read_mj(), time.perf_counter()
    sleep(window_s)
    e1, t1 = meter.read_mj(), time.perf_counter()
    return (e1 - e0) / 1e3 / (t1 - t0)


_IDLE: dict[str, tuple[float, float]] = {}  # meter key -> (idle W, when measured)
_IDLE_LOCK = threading.Lock()


def idle_baseline(meter: EnergyMeter | None, max_age_s: float = IDLE_MAX_AGE_S, **kw) -> float | None:
    """Idle power of `meter`'s device, measured now (cool-down, then a window) unless a figure of
    the same counter is younger than `max_age_s`. Call it before a timing loop, never after."""
    if meter is None:
        return None
    with _IDLE_LOCK:
        hit = _IDLE.get(meter.key)
        if hit is not None and time.monotonic() - hit[1] < max_age_s:
            return hit[0]
        w = idle_power_w(meter, **kw)
        _IDLE[meter.key] = (w, time.monotonic())
        return w


def measure_energy(run: Callable[[], object], meter: EnergyMeter | None, window_s: float = 1.0,
                   idle_w: float | None = None, sync: Callable[[], object] | None = None) -> EnergyResult:
    """Run `run` back to back for at least `window_s` and return energy per inference.

    `idle_w` is the idle power measured *before* the timing loop (`idle_baseline`); without it,
    idle power is measured here after a cool-down, before this window. The window must span
    several counter updates (NVML ~ 10-100 ms, RAPL ~ 1 ms); one second is the default. `sync`
    waits for asynchronous devices before the counter is read. A window that drew less than idle
    power (a counter or idle figure that cannot be trusted) gives no figure, not zero.
    """
    if meter is None:
        return EnergyResult(None, "none")
    if idle_w is None:
        idle_w = idle_baseline(meter)
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
    limit = meter.power_limit_w() if hasattr(meter, "power_limit_w") else None
    power = (e1 - e0) / 1e3 / dt
    if net_mj <= 0:
        log.warning("%s: the window drew %.2f W, not above the idle %.2f W; energy left empty", meter.source, power, idle_w)
        return EnergyResult(None, "none", idle_w, dt, n, power, limit)
    return EnergyResult(net_mj / n, meter.source, idle_w, dt, n, power, limit)
