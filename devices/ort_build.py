"""Which onnxruntime build is installed, and why a GPU execution provider cannot start.

`onnxruntime` (CPU build) and `onnxruntime-gpu` are two distributions of one import name: with
both installed, whichever pip wrote last owns the shared files, and the CPU build silently hides
the CUDA and TensorRT providers. hwnas therefore depends on neither directly: `pip install
hwnas[cpu]` brings the CPU build, `pip install hwnas[gpu]` the GPU one (pyproject.toml), and a GPU
device checks at start-up, with one line naming the fix, that the build it is about to use can
run its provider (`check_gpu_provider`).
"""

from __future__ import annotations

import ctypes
import importlib.metadata as md
import os
from collections.abc import Callable

CPU_DIST, GPU_DIST = "onnxruntime", "onnxruntime-gpu"
GPU_INSTALL = ("pip uninstall -y onnxruntime onnxruntime-gpu && pip install 'hwnas[gpu]' "
               "(or `make setup-gpu` in a checkout)")
#: provider name -> the shared library onnxruntime loads for it (beside onnxruntime's own library)
PROVIDER_LIBS = {"CUDAExecutionProvider": "libonnxruntime_providers_cuda.so",
                 "TensorrtExecutionProvider": "libonnxruntime_providers_tensorrt.so"}


class BuildError(OSError):
    """The installed onnxruntime cannot run the provider; the message is the one line to show."""


def installed_builds() -> dict[str, str]:
    """onnxruntime distributions installed here -> version (`onnxruntime`, `onnxruntime-gpu`, ...)."""
    out = {}
    for d in md.distributions():
        name = (d.metadata["Name"] or "").lower().replace("_", "-")
        if name == CPU_DIST or name.startswith(CPU_DIST + "-"):
            out[name] = d.version
    return out


def _load_library(path: str) -> str | None:
    """dlopen `path` (with onnxruntime's shared provider bridge first); the loader's error or None."""
    folder = os.path.dirname(path)
    try:
        ctypes.CDLL(os.path.join(folder, "libonnxruntime_providers_shared.so"), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(path)
    except OSError as exc:
        return str(exc)
    return None


def provider_load_error(provider: str, ort_module=None,
                        load: Callable[[str], str | None] = _load_library) -> str | None:
    """Why onnxruntime would fail to initialise `provider` (the dynamic loader's message, e.g.
    'libcudnn.so.9: cannot open shared object file'), or None when its library loads.

    onnxruntime lists a provider as available when its build has it, even when the CUDA, cuDNN or
    TensorRT libraries it needs are missing; loading the provider's library names what is missing.
    Builds of onnxruntime >= 1.21 can load those libraries from the nvidia-* pip packages
    (`onnxruntime.preload_dlls()`); that is tried before giving up.
    """
    lib = PROVIDER_LIBS.get(provider)
    if ort_module is None:
        import onnxruntime as ort_module
    if lib is None:
        return None
    path = os.path.join(os.path.dirname(ort_module.__file__), "capi", lib)
    if not os.path.exists(path):
        return f"{lib} is not in this onnxruntime build"
    err = load(path)
    if err is not None and hasattr(ort_module, "preload_dlls"):
        try:
            ort_module.preload_dlls()
        except Exception:  # preloading is a best effort; the loader's first message stands
            pass
        else:
            err = load(path)
    return err


def check_gpu_provider(provider: str, builds: dict[str, str] | None = None, ort_module=None,
                       load: Callable[[str], str | None] = _load_library) -> None:
    """Raise BuildError with one line when `provider` cannot run with the installed onnxruntime."""
    builds = installed_builds() if builds is None else builds
    if CPU_DIST in builds and GPU_DIST in builds:
        raise BuildError(
            f"both {CPU_DIST} {builds[CPU_DIST]} (CPU build) and {GPU_DIST} {builds[GPU_DIST]} are installed; "
            f"they share the import name and the CPU build hides {provider}: {GPU_INSTALL}")
    if ort_module is None:
        try:
            import onnxruntime as ort_module
        except ImportError:
            raise BuildError(f"onnxruntime is not installed; for {provider}: {GPU_INSTALL}") from None
    have = list(ort_module.get_available_providers())
    if provider not in have:
        if CPU_DIST in builds and GPU_DIST not in builds:
            why = f"{CPU_DIST} {builds[CPU_DIST]} is the CPU build"
        else:
            why = f"this onnxruntime build ({', '.join(f'{k} {v}' for k, v in builds.items()) or 'unknown'}) lacks it"
        raise BuildError(f"{provider} is not available ({why}; it has {', '.join(have)}): {GPU_INSTALL}")
    err = provider_load_error(provider, ort_module, load)
    if err is not None:
        raise BuildError(f"onnxruntime cannot load {provider}: {err.splitlines()[0][:200]}; install the CUDA, "
                         "cuDNN (and for TensorRT, TensorRT) versions this onnxruntime-gpu release was built for "
                         "(onnxruntime's CUDA execution provider page lists them)")
