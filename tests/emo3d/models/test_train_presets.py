"""Training presets (ours | paper) and the official VAE-CLIP loss (--vae-loss official)."""
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from emo3d.errors import InvalidInputError
from emo3d.models import cli as train_cli
from emo3d.models.baselines import HeadConfig, VaeClip
from emo3d.models.official import pair_rows_by_target
from emo3d.models.presets import preset_values
from emo3d.models.train import TrainOptions, train_from_pairs
from support.tiny_clip import make_tiny_clip_folder


def test_preset_table():
    assert preset_values("paper", "clip_mlp") == {"optimizer": "adam", "lr": 1e-4, "batch_size": 32, "epochs": 50,
                                                  "patience": 50, "weight_decay": 0.0}
    vae = preset_values("paper", "vae_clip")
    assert (vae["lr"], vae["batch_size"], vae["epochs"], vae["lambda_text"], vae["lambda_image"]) == \
        (1e-3, 32, 50, 0.004, 0.002)
    assert preset_values("ours", "lm_mlp") == {"optimizer": "adamw", "lr": 1e-3, "batch_size": 64, "epochs": 200,
                                               "patience": 15, "weight_decay": 1e-4}
    with pytest.raises(InvalidInputError, match="publishes training code for clip_mlp, vae_clip only"):
        preset_values("paper", "emotion")
    with pytest.raises(InvalidInputError, match="not one of"):
        preset_values("mine", "clip_mlp")


def test_cli_applies_the_preset_and_explicit_flags_win(monkeypatch, capsys):
    seen = []

    def fake_train(opts):
        seen.append(opts)
        raise InvalidInputError("stop here")
    monkeypatch.setattr("emo3d.models.train.train", fake_train)
    base = ["--data", "d", "--out", "o"]
    assert train_cli.main(["--model", "clip", "--preset", "paper", *base]) == 2
    o = seen[-1]
    assert (o.optimizer, o.lr, o.batch_size, o.epochs, o.patience, o.weight_decay, o.preset) == \
        ("adam", 1e-4, 32, 50, 50, 0.0, "paper")
    assert train_cli.main(["--model", "vae_clip", "--preset", "paper", "--lr", "5e-4", "--vae-loss", "official",
                           *base]) == 2
    o = seen[-1]
    assert (o.lr, o.vae_loss, o.lambda_text, o.lambda_image) == (5e-4, "official", 0.004, 0.002)
    assert train_cli.main(["--model", "lm_mlp", *base]) == 2
    o = seen[-1]
    assert (o.optimizer, o.lr, o.batch_size, o.epochs, o.patience, o.preset) == ("adamw", 1e-3, 64, 200, 15, "ours")
    assert train_cli.main(["--model", "lm_mlp", "--preset", "paper", *base]) == 2
    assert "use --preset ours" in capsys.readouterr().err
    with pytest.raises(InvalidInputError, match="vae-loss official"):
        TrainOptions(model="clip_mlp", vae_loss="official")
    with pytest.raises(InvalidInputError, match="optimizer"):
        TrainOptions(optimizer="sgd")


def test_official_vae_loss_is_the_notebooks_batch_axis_cosine():
    torch.manual_seed(0)
    head = VaeClip(HeadConfig("vae_clip", 16, dropout=0.0)).train()
    y, text, image = torch.rand(8, 51), torch.randn(8, 16), torch.randn(8, 16)
    torch.manual_seed(1)
    got, parts = head.vae_loss_official(y, text, image)
    # the notebook, with its DataLoader shapes: embeddings [B,1,D] (encode_text of one text each)
    torch.manual_seed(1)
    mu, logvar = head.encode(y)
    z = mu + torch.randn_like(logvar) * torch.exp(0.5 * logvar)
    mse = F.mse_loss(head.decode(z), y)
    t3, i3 = text.unsqueeze(1).squeeze(0), image.unsqueeze(1).squeeze(0)
    lt = 1 - F.cosine_similarity(F.normalize(t3, dim=-1), F.normalize(z, dim=-1)).mean()
    li = 1 - F.cosine_similarity(F.normalize(i3, dim=-1), F.normalize(z, dim=-1)).mean()
    ref = mse + 0.004 * lt + 0.002 * li
    assert float(got) == pytest.approx(float(ref), rel=1e-6)
    assert parts["text"] == pytest.approx(float(lt), rel=1e-6)
    # it is not the paper's per-row cosine
    per_row = 1 - F.cosine_similarity(text, z, dim=-1).mean()
    assert abs(float(per_row) - float(lt)) > 1e-3


def test_triples_pair_text_rows_with_the_image_of_the_same_vector():
    y = torch.tensor([[0.1, 0.2], [0.3, 0.4], [0.1, 0.2], [0.3, 0.4], [0.9, 0.9], [0.5, 0.5]])
    m = torch.tensor([0, 0, 1, 1, 0, 1])       # text, text, image, image, text (no image), image (no text)
    ti, ii = pair_rows_by_target(y, m)
    assert ti.tolist() == [0, 1] and ii.tolist() == [2, 3]


def _pairs(n_per=3, seed=0):
    rng = np.random.default_rng(seed)
    protos = np.random.default_rng(5).random((4, 52)).astype(np.float32) * 0.8
    words = ["happy", "sad", "furious", "wide"]
    texts, targets, emos = [], [], []
    for k, w in enumerate(words):
        for r in range(n_per):
            texts.append(f"a {w} face" if r == 0 else f"the very {w} face {'eyes' * r}")
            targets.append(np.clip(protos[k] + rng.normal(0, 0.02, 52), 0, 1).astype(np.float32))
            e = np.zeros(8, np.float32)
            e[k] = 1
            emos.append(e)
    return types.SimpleNamespace(texts=texts, targets=np.array(targets), emotions=np.array(emos))


def test_vae_official_training_end_to_end(tmp_path):
    from PIL import Image
    clip = make_tiny_clip_folder(tmp_path / "clip", projection_dim=16)
    train = _pairs()
    rng = np.random.default_rng(0)
    img_rows = [0, 3, 6, 9]                     # the first text of each word has an image (same vector)
    paths = []
    for i in img_rows:
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(paths[-1])
    images = types.SimpleNamespace(paths=paths, targets=train.targets[img_rows], emotions=train.emotions[img_rows],
                                   flip=np.zeros(len(paths), bool))
    opts = TrainOptions(model="vae_clip", backbone=str(clip), out=str(tmp_path / "v"), progress=False,
                        cache_embeddings=False, dropout=0.0, vae_loss="official", preset="paper",
                        **{**preset_values("paper", "vae_clip"), "epochs": 6, "batch_size": 2, "lr": 1e-2})
    r = train_from_pairs(opts, train, _pairs(1, seed=1), train_images=images)
    assert r.metrics["n_train_rows"] == len(img_rows)            # only the triples train
    losses = [h["train_loss"] for h in r.history]
    assert len(losses) == 6 and losses[-1] < losses[0], losses    # every epoch ran (no early stop)
    assert r.manifest.extra["options"]["vae_loss"] == "official"
    assert r.manifest.extra["options"]["optimizer"] == "adam"
