"""``emo3d import official``: the official Emo3D checkpoints as emo3d model folders.

The official repository (MahshidDehghani/Emo3D, ``Emo3D/models``) ships two PyTorch state dicts:

* ``CLIP_Baseline.pth`` — the CLIP + MLP baseline: ``network.{0,2,4}.{weight,bias}`` (a
  ``Sequential`` of Linear 512→256, ReLU, Linear 256→128, ReLU, Linear 128→51, Sigmoid). Our
  :class:`~emo3d.models.baselines.ClipMlp` is the same stack under ``mlp.`` with the sigmoid applied
  after it, so the keys are renamed ``network.`` → ``mlp.`` and nothing else changes.
* ``VAE_CLIP.pt`` — VAE-CLIP: ``encoder.0``, ``fc_mu``, ``fc_logvar``, ``decoder.{0,3}`` (decoder =
  Linear 512→256, ReLU, Dropout, Linear 256→51, Sigmoid); the key names already equal
  :class:`~emo3d.models.baselines.VaeClip`'s.
  Inference (the official ``generate``) decodes the CLIP text embedding, as ``VaeClip.forward`` does.

Both files were saved from a CUDA session (their storages are tagged ``cuda:0``), so they are loaded
with ``map_location="cpu"``; a CPU-only ``torch.load`` of either fails without it.

Both heads take the raw (not L2-normalised) CLIP ViT-B/32 text features, ``encode_text`` in the
official notebooks; the folder's backbone is ``openai/clip-vit-base-patch32`` with ``normalize``
off (``--backbone`` names another, e.g. a local copy). Outputs are the 51 MediaPipe shapes without
``_neutral`` in the release's order, which is ``schema.MODEL_NAMES``.

The folder (``manifest.json`` + ``head.safetensors`` + ``head.onnx``) is what ``emo3d train`` writes,
so ``emo3d export`` and the runtime take it like any trained model. Checkpoints are read with
``weights_only=True``: a pickled module or anything but a tensor dict is refused.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from emo3d.assets import sha256_file
from emo3d.errors import Emo3DError, InvalidInputError, ModelFileError
from emo3d.manifest import ModelManifest

from .backbones import PAPER_CLIP, resolve_backbone

__all__ = ["OfficialLayout", "LAYOUTS", "ImportResult", "detect_kind", "convert_state", "import_checkpoint",
           "pair_rows_by_target", "main"]

OFFICIAL_REPO = "https://github.com/MahshidDehghani/Emo3D"
HIDDEN_MLP = (256, 128)      # ClipMLP(hidden_dim1=256, hidden_dim2=128)
HIDDEN_VAE = 256             # VAE(hidden_size=256)


@dataclass(frozen=True)
class OfficialLayout:
    """One official checkpoint's key layout: its file name, our kind, the key prefix renames, and the
    keys (after renaming) with their shapes as functions of the embedding width ``d``."""
    kind: str
    file: str
    renames: Tuple[Tuple[str, str], ...]
    shapes: Tuple[Tuple[str, Tuple[str, ...]], ...]

    def expected(self, d: int) -> Dict[str, Tuple[int, ...]]:
        env = {"d": d, "h1": HIDDEN_MLP[0], "h2": HIDDEN_MLP[1], "h": HIDDEN_VAE, "out": 51}
        return {k: tuple(env[s] for s in dims) for k, dims in self.shapes}


LAYOUTS: Dict[str, OfficialLayout] = {
    "clip_mlp": OfficialLayout(
        "clip_mlp", "CLIP_Baseline.pth", (("network.", "mlp."),),
        (("mlp.0.weight", ("h1", "d")), ("mlp.0.bias", ("h1",)), ("mlp.2.weight", ("h2", "h1")),
         ("mlp.2.bias", ("h2",)), ("mlp.4.weight", ("out", "h2")), ("mlp.4.bias", ("out",)))),
    "vae_clip": OfficialLayout(
        "vae_clip", "VAE_CLIP.pt", (),
        (("encoder.0.weight", ("h", "out")), ("encoder.0.bias", ("h",)), ("fc_mu.weight", ("d", "h")),
         ("fc_mu.bias", ("d",)), ("fc_logvar.weight", ("d", "h")), ("fc_logvar.bias", ("d",)),
         ("decoder.0.weight", ("h", "d")), ("decoder.0.bias", ("h",)), ("decoder.3.weight", ("out", "h")),
         ("decoder.3.bias", ("out",)))),
}


@dataclass
class ImportResult:
    """``out`` the model folder; ``kind``; ``sha256`` of the source checkpoint; ``renamed`` old → new
    key; ``in_dim`` the embedding width; ``onnx`` the head export info (with its parity)."""
    out: Path
    kind: str
    source: str
    sha256: str
    in_dim: int
    renamed: Dict[str, str] = field(default_factory=dict)
    onnx: Dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"out": str(self.out), "kind": self.kind, "source": self.source, "sha256": self.sha256,
                "in_dim": self.in_dim, "renamed": len(self.renamed),
                "onnx_parity_max_abs_diff": self.onnx.get("parity_max_abs_diff")}


def load_state(path: str | Path) -> Dict[str, "object"]:
    """A checkpoint's state dict on the CPU (``map_location='cpu'``: the official files were saved on CUDA)."""
    import torch
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"official checkpoint {path} does not exist (expected CLIP_Baseline.pth or "
                             f"VAE_CLIP.pt from {OFFICIAL_REPO}, Emo3D/models/)")
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means "not a plain state dict"
        raise ModelFileError(f"{path} is not a readable PyTorch state dict (torch.load weights_only=True "
                             f"failed: {str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path} holds {type(state).__name__}, not a state dict of tensors "
                             f"(save it with torch.save(model.state_dict(), path))")
    return dict(state)


def detect_kind(keys: Sequence[str]) -> str:
    """``clip_mlp`` for ``network.*`` keys, ``vae_clip`` for ``fc_mu.*`` keys."""
    keys = set(keys)
    if any(k.startswith("network.") for k in keys):
        return "clip_mlp"
    if "fc_mu.weight" in keys:
        return "vae_clip"
    raise ModelFileError(f"unrecognised checkpoint layout (keys: {', '.join(sorted(keys)[:6])} ...); "
                         f"accepted: the official CLIP_Baseline.pth (network.*) or VAE_CLIP.pt (fc_mu.*, ...)")


def convert_state(state: Dict[str, "object"], kind: Optional[str] = None
                  ) -> Tuple[str, int, Dict[str, "object"], Dict[str, str]]:
    """Official keys → ours. Returns (kind, in_dim, converted state, renamed old → new). Missing,
    unexpected or mis-shaped keys raise ``ModelFileError`` naming them."""
    kind = kind or detect_kind(list(state))
    if kind not in LAYOUTS:
        raise InvalidInputError(f"kind {kind!r} has no official checkpoint; accepted: {', '.join(LAYOUTS)}")
    layout = LAYOUTS[kind]
    out, renamed = {}, {}
    for k, v in state.items():
        new = k
        for old_prefix, new_prefix in layout.renames:
            if k.startswith(old_prefix):
                new = new_prefix + k[len(old_prefix):]
        if new != k:
            renamed[k] = new
        out[new] = v.detach().to("cpu").contiguous()
    width_key = "mlp.0.weight" if kind == "clip_mlp" else "fc_mu.weight"
    if width_key not in out:
        raise ModelFileError(f"{layout.file} layout: key {width_key!r} (after renaming) is missing")
    d = int(out[width_key].shape[1] if kind == "clip_mlp" else out[width_key].shape[0])
    expected = layout.expected(d)
    missing = sorted(set(expected) - set(out))
    unexpected = sorted(set(out) - set(expected))
    if missing or unexpected:
        raise ModelFileError(f"{layout.file} layout ({kind}): missing keys {missing}, unexpected keys {unexpected}")
    bad = [f"{k}: {tuple(out[k].shape)} != {s}" for k, s in expected.items() if tuple(out[k].shape) != s]
    if bad:
        raise ModelFileError(f"{layout.file} layout ({kind}, embedding width {d}): wrong shapes: {'; '.join(bad)}")
    return kind, d, out, renamed


def import_checkpoint(checkpoint: str | Path, out: str | Path, *, kind: Optional[str] = None,
                      backbone: str = PAPER_CLIP, onnx: bool = True) -> ImportResult:
    """Write ``out`` (replaced atomically): manifest.json + head.safetensors (+ head.onnx)."""
    import torch
    from .baselines import HeadConfig, build_head
    from .io import save_model
    checkpoint = Path(checkpoint)
    state = load_state(checkpoint)
    kind, d, converted, renamed = convert_state(state, kind)
    spec = resolve_backbone(backbone, normalize=False, allow_download=False)
    if spec.family != "clip":
        raise InvalidInputError(f"--backbone {backbone!r} is not a CLIP model; the official heads take CLIP "
                                f"text features (default {PAPER_CLIP})")
    if spec.hidden_size and spec.hidden_size != d:
        raise InvalidInputError(f"--backbone {backbone!r} gives {spec.hidden_size}-d features but {checkpoint.name} "
                                f"expects {d}-d")
    head = build_head(HeadConfig(kind=kind, in_dim=d, hidden=HIDDEN_MLP if kind == "clip_mlp" else (HIDDEN_VAE,)))
    with torch.no_grad():
        head.load_state_dict(converted, strict=True)
    head.eval()
    digest = sha256_file(checkpoint)
    manifest = ModelManifest(kind=kind, backbone=spec.manifest_dict(), name=f"official-{kind}")
    manifest.extra["official"] = {
        "source": OFFICIAL_REPO, "file": checkpoint.name, "sha256": digest, "renamed": renamed,
        "inputs": "raw CLIP text features (encode_text, not L2-normalised)",
        "note": "weights unchanged; the VAE's dropout rate is not in the checkpoint (inactive at inference)"}
    folder = save_model(head, manifest, out, onnx=onnx)
    saved = ModelManifest.load(folder)
    return ImportResult(out=Path(folder), kind=kind, source=str(checkpoint), sha256=digest, in_dim=d,
                        renamed=renamed, onnx=dict(saved.onnx.get("head", {})))


def pair_rows_by_target(targets, modality):
    """Official VAE-CLIP triples: for every text row (modality 0), the first image row (modality 1) with
    the bit-identical target vector — text_pairs and image_pairs give a sample's texts and its image i the
    same blendshape vector i (mirrored rows: the mirrored vector). Returns (text indices, image indices)
    as int64 tensors; text rows with no such image are left out."""
    import torch
    y = targets.detach().cpu().contiguous().numpy()
    m = modality.detach().cpu().numpy()
    first: Dict[bytes, int] = {}
    for i in np.flatnonzero(m == 1):
        first.setdefault(y[i].tobytes(), int(i))
    pairs = [(int(i), first[y[i].tobytes()]) for i in np.flatnonzero(m == 0) if y[i].tobytes() in first]
    ti = torch.tensor([a for a, _ in pairs], dtype=torch.long)
    ii = torch.tensor([b for _, b in pairs], dtype=torch.long)
    return ti, ii


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="emo3d import official",
                                description="Turn the official Emo3D checkpoints (CLIP_Baseline.pth, VAE_CLIP.pt) "
                                            "into emo3d model folders (manifest.json + head.safetensors + head.onnx).")
    p.add_argument("checkpoints", nargs="+", type=Path, metavar="CHECKPOINT")
    p.add_argument("--out", required=True, type=Path,
                   help="parent folder: each checkpoint becomes OUT/<kind> (clip_mlp, vae_clip)")
    p.add_argument("--backbone", default=PAPER_CLIP,
                   help=f"CLIP backbone recorded in the manifest (hub id or local folder; default {PAPER_CLIP})")
    p.add_argument("--no-onnx", action="store_true", help="skip head.onnx")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "official":
        print("usage: emo3d import official CHECKPOINT [CHECKPOINT ...] --out DIR\n"
              "(the only source is 'official': the checkpoints of the Emo3D repository)", file=sys.stderr)
        return 2
    args = _parser().parse_args(argv[1:])
    try:
        kinds = [detect_kind(list(load_state(c))) for c in args.checkpoints]
        dup = sorted({k for k in kinds if kinds.count(k) > 1})
        if dup:
            raise InvalidInputError(f"two checkpoints of kind {dup[0]}; give one CLIP_Baseline.pth and/or one VAE_CLIP.pt")
        results = [import_checkpoint(c, args.out / k, kind=k, backbone=args.backbone, onnx=not args.no_onnx)
                   for c, k in zip(args.checkpoints, kinds)]
    except Emo3DError as e:
        print(f"emo3d import: {e}", file=sys.stderr)
        return 2
    print(json.dumps([r.to_dict() for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
