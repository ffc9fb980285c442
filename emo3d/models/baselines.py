"""The paper's baselines (Section 4.1, Table 2) as PyTorch modules.

Every model is an encoder plus a head. Heads take the pooled embedding so that training with a
frozen encoder can cache embeddings once, and so that the head alone exports to ONNX:

* ``LmMlpHead``   LM + MLP: embedding -> MLP -> 51 sigmoid.
* ``EmotionHead`` Emotion-XLM: an extractor predicts 8 emotion intensities (sigmoid) and their one-hot;
  [embedding, v, o] (768 + 16 = 784 for BERT-size encoders) -> regression MLP -> 51 sigmoid. Teacher
  forcing: in training a share of the rows get the ground-truth emotions instead of the extractor's.
* ``ClipMlp``     CLIP + MLP (official): 512 -> 256 -> 128 -> 51, ReLU, sigmoid.
* ``VaeClip``     VAE-CLIP (official): 51 -> 256 -> (mu, logvar) in CLIP space; decoder 512 -> 256 ->
  dropout -> 51 sigmoid. Inference decodes the CLIP text embedding.

``TextModel(encoder, head)`` is the full model: ``forward(input_ids, attention_mask) -> dict``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from emo3d.errors import InvalidInputError
from emo3d.options import check_int, check_number
from emo3d.schema import EMOTIONS, MODEL_NAMES

N_OUT = len(MODEL_NAMES)      # 51
N_EMO = len(EMOTIONS)         # 8
CLIP_LAMBDA_TEXT = 0.004      # official VAE-CLIP weights
CLIP_LAMBDA_IMAGE = 0.002


# --------------------------------------------------------------------------- heads
@dataclass
class HeadConfig:
    """Architecture of a head; stored as ``manifest.head``."""
    kind: str
    in_dim: int
    hidden: Tuple[int, ...] = (256,)
    dropout: float = 0.1
    emotion_hidden: int = 256        # emotion kind: extractor width (0: a linear extractor)
    teacher_forcing: float = 0.5     # emotion kind: share of rows fed ground-truth emotions in training
    lambda_blendshape: float = 1.0   # emotion kind: λ1
    lambda_emotion: float = 1.0      # emotion kind: λ2
    lambda_text: float = CLIP_LAMBDA_TEXT    # vae_clip
    lambda_image: float = CLIP_LAMBDA_IMAGE  # vae_clip
    anchors: int = 0                 # lm_mlp/emotion: number of emotion-word anchor embeddings (0: none)
    anchor_temperature: float = 0.05

    def __post_init__(self) -> None:
        from emo3d.manifest import KINDS
        if self.kind not in KINDS:
            raise InvalidInputError(f"head kind {self.kind!r} is not one of {', '.join(KINDS)}")
        self.hidden = tuple(int(h) for h in self.hidden)
        if self.in_dim <= 0 or any(h <= 0 for h in self.hidden) or self.emotion_hidden < 0:
            raise InvalidInputError(f"head widths must be positive (in_dim={self.in_dim}, hidden={self.hidden})")
        check_number(self.dropout, "dropout", 0, 1, hi_open=True)
        check_int(self.anchors, "anchors", 0)
        check_number(self.anchor_temperature, "anchor_temperature", 0, lo_open=True)
        if self.anchors and self.kind not in ("lm_mlp", "emotion"):
            raise InvalidInputError("anchors apply to the text kinds lm_mlp and emotion only")
        check_number(self.teacher_forcing, "teacher_forcing", 0, 1)

    def to_dict(self) -> Dict[str, Any]:
        from dataclasses import asdict
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "HeadConfig":
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _mlp(sizes: Sequence[int], dropout: float) -> nn.Sequential:
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class _AnchorMixin:
    """Optional emotion-word anchors: buffers ``anchor_emb`` [K,D] (embeddings of emotion words from the
    training lexicon) and ``anchor_map`` [K,8] (their emotion). ``features`` appends the zero-shot
    distribution softmax(embeds @ anchor_emb.T / T) @ anchor_map (8 values) to the embedding, which
    carries the encoder's notion of similar words over to words the training texts never used."""

    def _init_anchors(self, cfg: HeadConfig) -> int:
        if cfg.anchors:
            self.register_buffer("anchor_emb", torch.zeros(cfg.anchors, cfg.in_dim))
            self.register_buffer("anchor_map", torch.zeros(cfg.anchors, N_EMO))
            return cfg.in_dim + N_EMO
        return cfg.in_dim

    def set_anchors(self, emb: torch.Tensor, emotion_index: Sequence[int]) -> None:
        if not self.cfg.anchors or emb.shape != self.anchor_emb.shape:
            raise InvalidInputError(f"expected {self.cfg.anchors} anchors of width {self.cfg.in_dim}, "
                                    f"got {tuple(emb.shape)}")
        self.anchor_emb.copy_(F.normalize(emb.float(), dim=-1))
        self.anchor_map.zero_()
        self.anchor_map[torch.arange(len(emotion_index)), torch.as_tensor(list(emotion_index))] = 1.0

    def features(self, embeds: torch.Tensor) -> torch.Tensor:
        if not self.cfg.anchors:
            return embeds
        sims = F.normalize(embeds, dim=-1) @ self.anchor_emb.t() / self.cfg.anchor_temperature
        return torch.cat([embeds, torch.softmax(sims, dim=-1) @ self.anchor_map], dim=-1)


class LmMlpHead(_AnchorMixin, nn.Module):
    """LM + MLP: ``forward(embeds [B,D]) -> {"blendshapes": [B,51]}``."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        width = self._init_anchors(cfg)
        self.mlp = _mlp((width, *cfg.hidden, N_OUT), cfg.dropout)

    def forward(self, embeds: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {"blendshapes": torch.sigmoid(self.mlp(self.features(embeds)))}

    def loss(self, out, target, emotions=None) -> Tuple[torch.Tensor, Dict[str, float]]:
        mse = F.mse_loss(out["blendshapes"], target)
        return mse, {"mse": float(mse.detach())}


def one_hot_max(v: torch.Tensor) -> torch.Tensor:
    """One-hot of the arg-max (export-friendly: a comparison, no OneHot op)."""
    return (v >= v.max(dim=-1, keepdim=True).values).to(v.dtype)


class EmotionHead(_AnchorMixin, nn.Module):
    """Emotion-XLM: ``forward(embeds, emotions=None) -> {"blendshapes": [B,51], "emotions": [B,8]}``.

    In training mode with ``emotions`` given, a ``teacher_forcing`` share of the rows use the
    ground-truth emotions (and their one-hot) instead of the extractor's.
    """

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        width = self._init_anchors(cfg)
        self.extractor = _mlp((width, cfg.emotion_hidden, N_EMO) if cfg.emotion_hidden else (width, N_EMO), cfg.dropout)
        self.regressor = _mlp((width + 2 * N_EMO, *cfg.hidden, N_OUT), cfg.dropout)

    def forward(self, embeds: torch.Tensor, emotions: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        embeds = self.features(embeds)
        v = torch.sigmoid(self.extractor(embeds))
        feed = v
        if self.training and emotions is not None and self.cfg.teacher_forcing > 0:
            use_gt = (torch.rand(v.shape[0], 1, device=v.device) < self.cfg.teacher_forcing).to(v.dtype)
            feed = use_gt * emotions.to(v.dtype) + (1 - use_gt) * v
        x = torch.cat([embeds, feed, one_hot_max(feed)], dim=-1)
        return {"blendshapes": torch.sigmoid(self.regressor(x)), "emotions": v}

    def loss(self, out, target, emotions=None) -> Tuple[torch.Tensor, Dict[str, float]]:
        mse = F.mse_loss(out["blendshapes"], target)
        if emotions is None:
            return mse, {"mse": float(mse.detach())}
        emo = F.mse_loss(out["emotions"], emotions)
        total = self.cfg.lambda_blendshape * mse + self.cfg.lambda_emotion * emo
        return total, {"mse": float(mse.detach()), "emotion_mse": float(emo.detach())}


class ClipMlp(nn.Module):
    """CLIP + MLP (official): ``forward(embeds [B,512]) -> {"blendshapes": [B,51]}``."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        self.mlp = nn.Sequential(nn.Linear(cfg.in_dim, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                                 nn.Linear(128, N_OUT))

    def forward(self, embeds: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {"blendshapes": torch.sigmoid(self.mlp(embeds))}

    def loss(self, out, target, emotions=None) -> Tuple[torch.Tensor, Dict[str, float]]:
        mse = F.mse_loss(out["blendshapes"], target)
        return mse, {"mse": float(mse.detach())}


class VaeClip(nn.Module):
    """VAE-CLIP (official). ``encode(blendshapes) -> (mu, logvar)``; ``decode(z)``;
    ``decode_text(text_embeds) -> {"blendshapes"}``; ``forward(embeds)`` = ``decode_text``."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.in_dim
        self.encoder = nn.Sequential(nn.Linear(N_OUT, 256), nn.ReLU())
        self.fc_mu = nn.Linear(256, d)
        self.fc_logvar = nn.Linear(256, d)
        self.decoder = nn.Sequential(nn.Linear(d, 256), nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(256, N_OUT))

    def encode(self, blendshapes: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(blendshapes)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))

    def decode_text(self, embeds: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {"blendshapes": self.decode(embeds)}

    forward = decode_text

    def reconstruct(self, blendshapes: torch.Tensor) -> Dict[str, torch.Tensor]:
        mu, logvar = self.encode(blendshapes)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        return {"recon": self.decode(z), "z": z, "mu": mu, "logvar": logvar}

    def vae_loss(self, target: torch.Tensor, text: Optional[torch.Tensor],
                 image: Optional[torch.Tensor]) -> Tuple[torch.Tensor, Dict[str, float]]:
        """MSE(recon) + λ_text (1 - cos(text, z)) + λ_image (1 - cos(image, z))."""
        r = self.reconstruct(target)
        recon = F.mse_loss(r["recon"], target)
        total = recon
        parts = {"recon": float(recon.detach())}
        if text is not None:
            lt = (1 - F.cosine_similarity(text, r["z"], dim=-1)).mean()
            total = total + self.cfg.lambda_text * lt
            parts["text"] = float(lt.detach())
        if image is not None:
            li = (1 - F.cosine_similarity(image, r["z"], dim=-1)).mean()
            total = total + self.cfg.lambda_image * li
            parts["image"] = float(li.detach())
        return total, parts

    def vae_loss_official(self, target: torch.Tensor, text: torch.Tensor,
                          image: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, float]]:
        """The official notebook's loss on (text, image, scores) triples: the DataLoader hands it text
        and image embeddings as [B,1,D], so ``F.cosine_similarity(emb, z)`` (dim=1) broadcasts to
        [B,B,D] and takes the cosine over the BATCH axis, per feature; reproduced here as is
        (``--vae-loss official``). z is sampled (the official model always reparameterises)."""
        mu, logvar = self.encode(target)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        recon = F.mse_loss(self.decode(z), target)
        zn = F.normalize(z, dim=-1)

        def cos(a):
            an = F.normalize(a, dim=-1).unsqueeze(1)          # [B,1,D], as the official batches are
            return F.cosine_similarity(an, zn, dim=1).mean() if len(a) > 1 else \
                F.cosine_similarity(an.squeeze(1), zn, dim=1).mean()   # B=1: squeeze(0) leaves [1,D]
        lt, li = 1 - cos(text), 1 - cos(image)
        total = recon + self.cfg.lambda_text * lt + self.cfg.lambda_image * li
        return total, {"recon": float(recon.detach()), "text": float(lt.detach()), "image": float(li.detach())}

    def loss(self, out, target, emotions=None) -> Tuple[torch.Tensor, Dict[str, float]]:
        mse = F.mse_loss(out["blendshapes"], target)
        return mse, {"mse": float(mse.detach())}


HEADS = {"lm_mlp": LmMlpHead, "emotion": EmotionHead, "clip_mlp": ClipMlp, "vae_clip": VaeClip}


def build_head(cfg: HeadConfig) -> nn.Module:
    return HEADS[cfg.kind](cfg)


class TextModel(nn.Module):
    """Encoder + head: ``forward(input_ids, attention_mask) -> dict(blendshapes=[B,51], emotions=[B,8]?)``."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.head = head

    @property
    def kind(self) -> str:
        return self.head.cfg.kind

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Dict[str, torch.Tensor]:
        return self.head(self.encoder(input_ids, attention_mask))


class HeadExport(nn.Module):
    """Tuple-output adapter for ONNX export: ``sentence_embedding -> blendshapes (, emotions)``."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head = head

    def forward(self, sentence_embedding: torch.Tensor):
        out = self.head(sentence_embedding)
        if "emotions" in out:
            return out["blendshapes"], out["emotions"]
        return out["blendshapes"]
