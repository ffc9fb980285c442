"""``--source hf``: download the official release (Hugging Face ``llm-lab/Emo3D``, MIT) through
huggingface_hub, or check a local copy (``--source local --path DIR``).

Offline (``HF_HUB_OFFLINE=1``, or the hub unreachable within ``timeout`` seconds) it fails at once
with a message naming the local-path option; nothing waits on long network retries.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Optional
from urllib.parse import urlparse

from emo3d.errors import AssetError, InvalidInputError
from emo3d.options import check_number
from emo3d.io import cache_dir

__all__ = ["fetch_release", "extract_archives", "REPO_ID"]

REPO_ID = "llm-lab/Emo3D"
_LOCAL_HINT = ("download the release elsewhere (https://huggingface.co/datasets/llm-lab/Emo3D) and use the "
               "local path: `emo3d data fetch --source local --path DIR`, `emo3d data check DIR` or "
               "dataset.read_release(DIR)")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _reachable(endpoint: str, timeout: float) -> Optional[str]:
    """None when a TCP connection to the hub opens within ``timeout``; else the reason."""
    u = urlparse(endpoint)
    host, port = u.hostname or "huggingface.co", u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"{host}:{port} unreachable ({exc.__class__.__name__}: {exc})"


def extract_archives(root, *, progress: bool = True) -> list:
    """Unzip the release's image archives (``data/*.zip``, e.g. ``prompt1_images_0_1000.zip``) into
    ``data/<name>/`` once (a ``data/.<name>.extracted`` marker records it); atomic per archive."""
    import shutil
    import tempfile
    import zipfile

    from tqdm.auto import tqdm
    data = Path(root) / "data"
    done = []
    for z in sorted(data.glob("*.zip")):
        marker = data / f".{z.stem}.extracted"
        target = data / z.stem
        if marker.is_file():
            continue
        tmp = Path(tempfile.mkdtemp(prefix=f".{z.stem}.", suffix=".tmp", dir=data))
        try:
            with zipfile.ZipFile(z) as zf:
                names = zf.namelist()
                for name in tqdm(names, desc=f"unzip {z.name}", unit="file", disable=not progress):
                    zf.extract(name, tmp)
            nested = all(n.startswith(f"{z.stem}/") for n in names)
            if target.exists():
                shutil.rmtree(target)
            os.replace(tmp / z.stem if nested else tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        marker.write_text("ok\n")
        done.append(target)
    return done


def fetch_release(*, source: str = "hf", path=None, out=None, timeout: float = 10.0,
                  extract: bool = True) -> Path:
    """Return a folder holding the release's ``data/``: downloaded (``hf``) or checked (``local``).
    ``extract``: unzip the image archives in ``data/`` (``extract_archives``)."""
    if source == "local":
        if path is None:
            raise InvalidInputError("--source local needs --path DIR (the folder that holds data/)")
        from .reader import read_release
        rel = read_release(path, check_images=False)
        if extract:
            extract_archives(rel.root)
        return rel.root
    if source != "hf":
        raise InvalidInputError(f"source must be 'hf' or 'local', got {source!r}")
    check_number(timeout, "timeout (seconds)", 0, lo_open=True)
    if _offline():
        raise AssetError(f"HF_HUB_OFFLINE is set, so {REPO_ID} cannot be downloaded; {_LOCAL_HINT}")
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    why = _reachable(endpoint, min(float(timeout), 10.0))
    if why:
        raise AssetError(f"cannot reach the Hugging Face hub to download {REPO_ID}: {why}; {_LOCAL_HINT}")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise AssetError(f"--source hf needs the huggingface_hub package (pip install huggingface_hub); "
                         f"{_LOCAL_HINT}") from exc
    target = Path(out) if out else cache_dir("datasets", "Emo3D")
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(timeout)))
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(timeout)))
    try:
        root = snapshot_download(repo_id=REPO_ID, repo_type="dataset", local_dir=str(target))
    except Exception as exc:  # noqa: BLE001 - hub errors come in many types
        raise AssetError(f"downloading {REPO_ID} failed: {exc}; {_LOCAL_HINT}") from exc
    if extract:
        extract_archives(root)
    return Path(root)
