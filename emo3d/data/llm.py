"""Optional LLM backend for the builder: an OpenAI-compatible chat-completions endpoint writes the
three descriptions of a face and then labels their 8-emotion distribution, as the paper did with
GPT-3.5. Standard library only (``urllib``); base URL, model and key are configurable.
"""
from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from emo3d.errors import InvalidInputError, ProviderError
from emo3d.options import check_int, check_number
from emo3d.schema import EMOTIONS, N_EMOTIONS

__all__ = ["LLMOptions", "LLMClient", "make_text_fn"]


@dataclass
class LLMOptions:
    """``base_url`` like ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is appended)."""
    base_url: str
    model: str = "gpt-4o-mini"
    api_key: Optional[str] = None          # default: $OPENAI_API_KEY (may be empty for local servers)
    timeout: float = 60.0
    temperature: float = 0.9
    retries: int = 2

    def __post_init__(self):
        if not self.base_url or not str(self.base_url).startswith(("http://", "https://")):
            raise InvalidInputError(f"LLM base_url must be an http(s) URL, got {self.base_url!r}")
        if not self.model:
            raise InvalidInputError("LLM model must be a non-empty name")
        check_number(self.timeout, "LLMOptions.timeout (seconds)", 0, lo_open=True)
        check_number(self.temperature, "LLMOptions.temperature", 0, 2)
        check_int(self.retries, "LLMOptions.retries", 0)
        if self.api_key is None:
            self.api_key = os.environ.get("OPENAI_API_KEY", "")


class LLMClient:
    def __init__(self, options: LLMOptions):
        self.options = options
        self.url = options.base_url.rstrip("/") + "/chat/completions"

    def chat(self, messages: Sequence[dict], *, seed: Optional[int] = None) -> str:
        """One chat completion; returns the first choice's content."""
        o = self.options
        body = {"model": o.model, "messages": list(messages), "temperature": o.temperature}
        if seed is not None:
            body["seed"] = int(seed)
        headers = {"Content-Type": "application/json"}
        if o.api_key:
            headers["Authorization"] = f"Bearer {o.api_key}"
        last = None
        for _ in range(o.retries + 1):
            req = urllib.request.Request(self.url, data=json.dumps(body).encode(), headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=o.timeout) as r:
                    reply = json.loads(r.read().decode("utf-8"))
                return str(reply["choices"][0]["message"]["content"])
            except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError) as exc:
                last = exc
        raise ProviderError(f"LLM endpoint {self.url} failed after {o.retries + 1} tries: {last!r}")

    def ask_json(self, messages: Sequence[dict], *, seed: Optional[int] = None, check: Callable) -> object:
        """Chat until the reply holds a JSON object that ``check`` accepts (returns its value)."""
        last = ""
        for k in range(self.options.retries + 1):
            text = self.chat(messages, seed=None if seed is None else seed + k)
            m = re.search(r"\{.*\}", text, re.S)
            if m:
                try:
                    return check(json.loads(m.group(0)))
                except (ValueError, KeyError, TypeError):
                    pass
            last = text
        raise ProviderError(f"LLM endpoint {self.url} gave no usable JSON; last reply: {last[:200]!r}")


_SYSTEM = "You write short, vivid descriptions of human facial expressions for a dataset."


def _texts_check(obj) -> Tuple[str, ...]:
    texts = tuple(str(t).strip() for t in obj["texts"])
    if len(texts) != 3 or not all(texts) or len(set(texts)) != 3:
        raise ValueError("need three different non-empty texts")
    return texts


def _emotion_check(obj) -> np.ndarray:
    d = np.array([float(obj["emotions"][e]) for e in EMOTIONS], dtype=np.float64)
    if d.shape != (N_EMOTIONS,) or not np.all(np.isfinite(d)) or np.any(d < 0) or np.any(d > 1) or d.sum() <= 0:
        raise ValueError("emotions must be 8 values in [0, 1], not all zero")
    return d.astype(np.float32)


def make_text_fn(options: LLMOptions):
    """A builder ``text_fn(dist, intensity, subject, side, rng) -> (texts, dist)``: the LLM writes three
    descriptions (about 12 words, subject with age and gender, facial features) for the sampled
    emotions, then rates the texts' distribution over the 8 emotions (the row's emotion vector)."""
    client = LLMClient(options)

    def text_fn(dist, intensity, subject, side, rng):
        from .textgen import INTENSITY_NAMES, intensity_level
        mix = ", ".join(f"{e} {v:.1f}" for e, v in zip(EMOTIONS, dist) if v > 0)
        who = subject.phrase(rng)
        seed = int(rng.integers(2**31 - 1))
        texts = client.ask_json([
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content":
                f"Write three different descriptions (about 12 words each) of the face of {who} "
                f"showing {INTENSITY_NAMES[intensity_level(intensity)]} emotion with this mix: {mix}. "
                "Mention facial features (brows, eyes, mouth, jaw). "
                'Answer as JSON: {"texts": ["...", "...", "..."]}'}], seed=seed, check=_texts_check)
        emo = client.ask_json([
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content":
                "Rate how strongly these descriptions express each emotion, from 0 to 1:\n"
                + "\n".join(f"- {t}" for t in texts)
                + "\nAnswer as JSON: {\"emotions\": {" + ", ".join(f'"{e}": x' for e in EMOTIONS) + "}}"}],
            seed=seed + 1000, check=_emotion_check)
        return texts, emo

    return text_fn
