"""emo3d's edge runtime: text -> 52 blendshape scores on ONNX Runtime, and the 60 Hz avatar loop.

Cheap to import: the public names load their module on first use (no onnxruntime, no renderer,
never torch)::

    from runtime import Engine, EngineOptions, AvatarLoop, LoopOptions
    engine = Engine.create(EngineOptions(model="default"))
    loop = AvatarLoop(engine, LoopOptions(transition_ms=400))
    loop.set_text("furious scowl")
"""
from __future__ import annotations

from emo3d.lazy import lazy_exports

_LAZY = {
    "Engine": "engine", "EngineOptions": "engine", "Prediction": "engine", "TruncationWarning": "engine",
    "AvatarLoop": "loop", "LoopOptions": "loop", "Frame": "loop",
    "OneEuroFilter": "filters", "ease": "filters",
    "select_providers": "providers", "ProviderFallbackWarning": "providers",
}

__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
