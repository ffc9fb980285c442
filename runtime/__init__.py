"""emo3d's edge runtime: text -> 52 blendshape scores on ONNX Runtime, and the 60 Hz avatar loop.

Cheap to import: the public names load their module on first use (no onnxruntime, no renderer,
never torch)::

    from runtime import Engine, EngineOptions, AvatarLoop, LoopOptions
    engine = Engine.create(EngineOptions(model="default"))
    loop = AvatarLoop(engine, LoopOptions(transition_ms=400))
    loop.set_text("furious scowl")
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Engine": "engine", "EngineOptions": "engine", "Prediction": "engine", "TruncationWarning": "engine",
    "AvatarLoop": "loop", "LoopOptions": "loop", "Frame": "loop",
    "OneEuroFilter": "filters", "ease": "filters",
    "select_providers": "providers", "ProviderFallbackWarning": "providers",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{mod}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
