"""Which physical GPU a CUDA device index is, and its NVML handle.

CUDA numbers the GPUs a process sees after `CUDA_VISIBLE_DEVICES` (and `CUDA_DEVICE_ORDER`,
fastest first by default); NVML numbers every GPU of the machine in PCI order. The two orders
differ as soon as either is set or the GPUs differ, so an NVML handle taken by the CUDA index can
read another board's power. Here a CUDA index is resolved through the CUDA driver API (libcuda,
which every NVIDIA driver installs: no torch, no CUDA toolkit needed) to its PCI bus id and UUID,
and the NVML handle is the device with that bus id (then that UUID).

The identity also keys engine caches: an engine built for one GPU model or compute capability
must never be served to another.
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass

from .base import DeviceUnavailable, safe_id

_CC_MAJOR, _CC_MINOR = 75, 76  # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR / _MINOR


@dataclass(frozen=True)
class GpuIdentity:
    index: int  # CUDA device index in this process
    name: str
    pci_bus_id: str  # normalised: "0000:3b:00.0"
    uuid: str | None  # "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", as nvidia-smi prints it
    compute_capability: tuple[int, int]

    def tag(self) -> str:
        """A file-name-safe tag of the GPU model and compute capability: 'nvidia-h100-sm90'."""
        return f"{safe_id(self.name)}-sm{self.compute_capability[0]}{self.compute_capability[1]}"

    def info(self) -> dict:
        return {"gpu": self.name, "gpu_pci_bus_id": self.pci_bus_id, "gpu_uuid": self.uuid,
                "compute_capability": f"{self.compute_capability[0]}.{self.compute_capability[1]}"}


def normalise_bus_id(text: str | bytes) -> str:
    """'00000000:3B:00.0', '0000:3b:00.0' or '3b:00.0' -> '0000:3b:00.0'."""
    s = text.decode() if isinstance(text, bytes) else str(text)
    m = re.fullmatch(r"\s*(?:([0-9a-fA-F]+):)?([0-9a-fA-F]+):([0-9a-fA-F]+)\.([0-9a-fA-F]+)\s*", s.rstrip("\x00"))
    if not m:
        raise ValueError(f"not a PCI bus id: {s!r}")
    dom, bus, dev, fn = (int(g, 16) if g else 0 for g in m.groups())
    return f"{dom:04x}:{bus:02x}:{dev:02x}.{fn:x}"


def format_uuid(raw: bytes) -> str:
    h = raw.hex()
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


class CudaDriver:
    """The few CUDA driver API calls needed to name a device (ctypes over libcuda)."""

    def __init__(self, lib=None):
        if lib is None:
            try:
                lib = ctypes.CDLL("libcuda.so.1")
            except OSError as exc:
                raise DeviceUnavailable(f"no NVIDIA driver here (libcuda: {exc}); use --device cpu") from None
        self.lib = lib
        self._check(lib.cuInit(0), "cuInit")

    def _check(self, rc: int, what: str) -> None:
        if rc != 0:
            msg = ctypes.c_char_p()
            try:
                self.lib.cuGetErrorString(rc, ctypes.byref(msg))
                text = (msg.value or b"").decode()
            except Exception:
                text = ""
            raise DeviceUnavailable(f"CUDA driver call {what} failed with error {rc} {text}".strip())

    def count(self) -> int:
        n = ctypes.c_int()
        self._check(self.lib.cuDeviceGetCount(ctypes.byref(n)), "cuDeviceGetCount")
        return n.value

    def _device(self, index: int) -> ctypes.c_int:
        dev = ctypes.c_int()
        self._check(self.lib.cuDeviceGet(ctypes.byref(dev), int(index)), f"cuDeviceGet({index})")
        return dev

    def identity(self, index: int) -> GpuIdentity:
        n = self.count()
        if not 0 <= index < n:
            raise DeviceUnavailable(f"CUDA device {index} does not exist here ({n} visible; "
                                    "CUDA_VISIBLE_DEVICES renumbers them from 0)")
        dev = self._device(index)
        name = ctypes.create_string_buffer(256)
        self._check(self.lib.cuDeviceGetName(name, 256, dev), "cuDeviceGetName")
        bus = ctypes.create_string_buffer(64)
        self._check(self.lib.cuDeviceGetPCIBusId(bus, 64, dev), "cuDeviceGetPCIBusId")
        raw = (ctypes.c_char * 16)()
        uuid = format_uuid(bytes(raw)) if self.lib.cuDeviceGetUuid(raw, dev) == 0 else None
        cc = []
        for attr in (_CC_MAJOR, _CC_MINOR):
            v = ctypes.c_int()
            self._check(self.lib.cuDeviceGetAttribute(ctypes.byref(v), attr, dev), "cuDeviceGetAttribute")
            cc.append(v.value)
        return GpuIdentity(int(index), name.value.decode(errors="replace"), normalise_bus_id(bus.value),
                           uuid, (cc[0], cc[1]))


def cuda_identity(index: int = 0, driver: CudaDriver | None = None) -> GpuIdentity:
    """The identity of CUDA device `index` as this process sees it."""
    return (driver or CudaDriver()).identity(index)


def nvml_handle(nvml, identity: GpuIdentity):
    """The NVML handle of the GPU `identity` names: matched by PCI bus id, then by UUID (an
    initialised `pynvml` module or a stand-in with the same functions)."""
    uuids = []
    for i in range(nvml.nvmlDeviceGetCount()):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        if normalise_bus_id(nvml.nvmlDeviceGetPciInfo(h).busId) == identity.pci_bus_id:
            return h
        u = nvml.nvmlDeviceGetUUID(h)
        uuids.append((u.decode() if isinstance(u, bytes) else str(u), h))
    for u, h in uuids:
        if identity.uuid and u == identity.uuid:
            return h
    raise LookupError(f"NVML has no GPU at PCI bus id {identity.pci_bus_id} (CUDA device {identity.index}, "
                      f"{identity.name}); NVML and the CUDA driver disagree: check the driver installation")
