"""Lazy public names for package ``__init__`` modules: ``import runtime`` stays cheap (no onnxruntime, no
renderer, never torch) and each name loads its submodule on first use.

    __getattr__, __dir__ = lazy_exports(__name__, {"Engine": "engine", "AvatarLoop": "loop"})
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, List, Mapping, Tuple


def lazy_exports(package: str, names: Mapping[str, str]) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """Module-level ``__getattr__``/``__dir__`` for ``package``: ``names`` maps a public name to the submodule
    that defines it, relative (``"engine"``) or, with a dot, absolute (``"native.render"``). A loaded name
    is cached in the package's globals."""
    def __getattr__(name: str) -> Any:
        mod = names.get(name)
        if mod is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        target = mod if "." in mod else f"{package}.{mod}"
        value = getattr(importlib.import_module(target), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> List[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__
