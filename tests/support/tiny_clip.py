"""A tiny random CLIP folder (``save_pretrained`` layout + a word-level fast tokenizer), offline."""
from __future__ import annotations

from pathlib import Path

WORDS = "furious scowl happy smile sad frown a very the face with eyes wide open".split()


def make_tiny_clip_folder(folder: str | Path, *, projection_dim: int = 16, seed: int = 2) -> Path:
    """CLIPModel (2 layers, width 32, 32 px images, ``projection_dim``) + image processor + tokenizer."""
    import torch
    from tokenizers import Tokenizer, models as tmodels, pre_tokenizers
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, PreTrainedTokenizerFast
    torch.manual_seed(seed)
    cfg = CLIPConfig(text_config=dict(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, max_position_embeddings=77, bos_token_id=0,
                                      eos_token_id=2, pad_token_id=1),
                     vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, image_size=32, patch_size=8),
                     projection_dim=projection_dim)
    folder = Path(folder)
    CLIPModel(cfg).eval().save_pretrained(folder)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    vocab.update({w: i + 4 for i, w in enumerate(WORDS)})
    tok = Tokenizer(tmodels.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>",
                            bos_token="<s>", eos_token="</s>").save_pretrained(folder)
    return folder
