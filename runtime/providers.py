"""Execution-provider choice for ONNX Runtime: TensorRT -> CUDA -> CPU.

``device="auto"`` uses a GPU provider only where a GPU really exists: the onnxruntime-gpu wheel lists
``CUDAExecutionProvider`` and ``TensorrtExecutionProvider`` on machines without one, so the list alone
proves nothing. A requested provider that is missing falls back down the chain with a warning, or
raises :class:`~emo3d.errors.ProviderError` under ``strict``.
"""
from __future__ import annotations

import functools
import glob
import logging
import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

from emo3d.errors import ProviderError

log = logging.getLogger("emo3d.runtime")

DEVICES = ("auto", "cpu", "cuda", "tensorrt")
PROVIDER_NAMES = {
    "tensorrt": "TensorrtExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
DEVICE_OF = {v: k for k, v in PROVIDER_NAMES.items()}
CHAIN = ("tensorrt", "cuda", "cpu")


class ProviderFallbackWarning(UserWarning):
    """A requested execution provider is unavailable; a slower one runs instead."""


def available_providers() -> List[str]:
    """What the installed onnxruntime wheel was built with (NOT what the machine can run)."""
    import onnxruntime as ort
    return list(ort.get_available_providers())


@functools.lru_cache(maxsize=1)
def gpu_present() -> bool:
    """True when an NVIDIA GPU is really usable: device nodes exist, or ``nvidia-smi -L`` lists one.

    ``EMO3D_NO_GPU=1`` forces False (handy to test the CPU path on a GPU machine).
    """
    if os.environ.get("EMO3D_NO_GPU", "").strip() not in ("", "0"):
        return False
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if glob.glob("/dev/nvidia[0-9]*"):
        return True
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=5)
            return out.returncode == 0 and "GPU" in out.stdout
        except (OSError, subprocess.SubprocessError):
            return False
    return False


@functools.lru_cache(maxsize=1)
def tensorrt_present() -> bool:
    """True when the TensorRT runtime library can be found (the TensorRT EP needs libnvinfer)."""
    import ctypes.util
    if ctypes.util.find_library("nvinfer"):
        return True
    try:
        import importlib.util
        return importlib.util.find_spec("tensorrt") is not None or \
            importlib.util.find_spec("tensorrt_libs") is not None
    except (ImportError, ValueError):
        return False


@dataclass
class ProviderChoice:
    """The providers to hand ``InferenceSession`` (first = preferred) and why."""
    requested: str
    providers: List[str]
    notes: List[str] = field(default_factory=list)

    @property
    def device(self) -> str:
        return DEVICE_OF.get(self.providers[0], self.providers[0])


def select_providers(device: str = "auto", *, strict: bool = False,
                     available: Optional[Sequence[str]] = None, gpu: Optional[bool] = None,
                     tensorrt: Optional[bool] = None) -> ProviderChoice:
    """Pick the provider chain for ``device`` (auto | cpu | cuda | tensorrt).

    ``available``/``gpu``/``tensorrt`` override the probes (tests pass the 'GPU wheel without GPU' case).
    A missing requested provider warns (:class:`ProviderFallbackWarning`) and falls back down
    TensorRT -> CUDA -> CPU, or raises :class:`ProviderError` when ``strict``.
    """
    device = str(device).lower()
    if device not in DEVICES:
        raise ProviderError(f"device {device!r} is not one of {', '.join(DEVICES)}")
    avail = list(available) if available is not None else available_providers()
    probes = {"gpu": gpu, "trt": tensorrt}

    def has(what: str) -> bool:  # probe lazily: a CPU-only wheel never pays for nvidia-smi / ldconfig
        if probes[what] is None:
            probes[what] = gpu_present() if what == "gpu" else tensorrt_present()
        return bool(probes[what])

    def usable(dev: str) -> Optional[str]:
        """None if ``dev`` can run here, else the reason it cannot."""
        if dev == "cpu":
            return None if PROVIDER_NAMES["cpu"] in avail else "CPUExecutionProvider missing from onnxruntime"
        name = PROVIDER_NAMES[dev]
        if name not in avail:
            return (f"{name} is not in this onnxruntime build (install onnxruntime-gpu; "
                    f"built with: {', '.join(avail)})")
        if not has("gpu"):
            return f"{name} is in the onnxruntime build but no NVIDIA GPU was found"
        if dev == "tensorrt" and not has("trt"):
            return f"{name} is in the onnxruntime build but the TensorRT library (libnvinfer) was not found"
        return None

    notes: List[str] = []
    if device == "auto":
        chain = [d for d in CHAIN if usable(d) is None]
        if not chain:
            raise ProviderError(f"no usable onnxruntime provider (built with: {', '.join(avail)})")
        return ProviderChoice("auto", [PROVIDER_NAMES[d] for d in chain], notes)

    why = usable(device)
    if why is None:
        start = CHAIN.index(device)
        chain = [d for d in CHAIN[start:] if usable(d) is None]
        return ProviderChoice(device, [PROVIDER_NAMES[d] for d in chain], notes)
    if strict:
        raise ProviderError(f"device {device!r} requested with strict_device: {why}")
    start = CHAIN.index(device) + 1
    chain = [d for d in CHAIN[start:] if usable(d) is None]
    if not chain:
        raise ProviderError(f"device {device!r} unavailable ({why}) and nothing to fall back to")
    msg = f"device {device!r} unavailable: {why}; falling back to {PROVIDER_NAMES[chain[0]]}"
    warnings.warn(msg, ProviderFallbackWarning, stacklevel=3)
    notes.append(msg)
    return ProviderChoice(device, [PROVIDER_NAMES[d] for d in chain], notes)


def check_session(choice: ProviderChoice, session_providers: Sequence[str], *, strict: bool) -> str:
    """After the session exists: the provider that really runs; warn/raise if it is not the requested one.

    A CUDA/TensorRT provider that fails to initialise (driver, libraries) makes ORT fall back silently.
    """
    running = session_providers[0] if session_providers else "CPUExecutionProvider"
    wanted = choice.providers[0]
    if running != wanted:
        msg = (f"{wanted} did not initialise (missing driver or libraries); {running} runs instead")
        if strict and choice.requested != "auto":
            raise ProviderError(f"device {choice.requested!r} requested with strict_device: {msg}")
        warnings.warn(msg, ProviderFallbackWarning, stacklevel=3)
    return running
