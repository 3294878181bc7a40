"""Devices by name, timm-style: `register_device`, `list_devices`, `create_device(spec)`.

A spec is `name[:options]`: `cpu`, `cpu:threads=2`, `cuda`, `trt:fp16`, `trt-native:fp16`,
`torch-cpu`, `table:PATH:COLUMN`, `remote:http://host:port`. The built-in devices are registered
in devices/catalog.py, which the registry imports on its first look-up (core.registry.BUILTINS),
the way it reads other packages' entry points.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from hwnas.core.registry import Registry

from .base import Device

#: name -> factory `fn(spec) -> Device`; metadata: kind, needs_gpu, measures, example
_REGISTRY: Registry = Registry("device")
#: what a device's `kind` says: how it gets its numbers
KINDS = ("onnxruntime", "tensorrt", "torch", "table", "remote")


def register_device(name: str, *, kind: str, needs_gpu: bool = False, measures: bool = True,
                    example: str | None = None) -> Callable:
    """Decorator: register a factory `fn(spec) -> Device` under `name` with its metadata."""
    if kind not in KINDS:
        raise ValueError(f"device {name!r}: kind {kind!r} is not one of {', '.join(KINDS)}")
    return _REGISTRY.register(name, kind=kind, needs_gpu=needs_gpu, measures=measures,
                              example=example or name)


_REGISTRY.plugin_adder = lambda name, obj, **meta: register_device(name, **meta)(obj)  # hwnas.devices


def list_devices(pattern: str = "*", **where) -> list[str]:
    """Registered device names matching `pattern`, filtered by metadata
    (`list_devices(needs_gpu=False)`, `list_devices(kind="torch")`)."""
    return _REGISTRY.names(pattern, **where)


def device_info(name: str) -> dict:
    """The metadata `name` was registered with (kind, needs_gpu, measures, example)."""
    return _REGISTRY.meta(name)


def create_device(spec: str) -> Device:
    """A device from its spec; an unknown name is a KeyError naming the known ones."""
    spec = spec.strip()
    name = spec.split(":", 1)[0]
    if name not in _REGISTRY:
        raise KeyError(f"unknown device {name!r} (from {spec!r}); known: {', '.join(list_devices())}")
    return _REGISTRY[name](spec)


def split_specs(text: str) -> list[str]:
    """Split a comma-separated device list; a comma starts a new spec only before a known name,
    so options and URLs may contain commas."""
    names = "|".join(re.escape(n) for n in sorted(_REGISTRY, key=len, reverse=True))
    parts = re.split(rf",\s*(?=(?:{names})(?::|$|,))", text.strip())
    return [p.strip() for p in parts if p.strip()]
