"""The language alignment of the reader's embeddings (emo3d.models.language_align): a tiny alignment built
in-test (languages whose embeddings are English's moved by a known offset and rotation), its exact effect,
its file, and the reader folder that names it."""
import json
from pathlib import Path

import numpy as np
import pytest
from support.assets import require_module

from emo3d.errors import InvalidInputError, ModelFileError
from emo3d.models.language_align import ALIGN_FILE, LanguageAlignment
from emo3d.models.language_align_fit import fit, ridge_map

D = 16


def _tiny(n=60, seed=0):
    """English embeddings and their 'translations': fr = en rotated + shifted, ru = en shifted."""
    rng = np.random.default_rng(seed)
    en = rng.standard_normal((n, D)).astype(np.float32)
    q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    fr = (en @ q + 2.0).astype(np.float32)
    ru = (en - 1.5).astype(np.float32)
    return {"en": en, "fr": fr, "ru": ru}, q


def test_ridge_map_recovers_a_linear_map_and_shrinks_to_identity():
    par, q = _tiny()
    src, dst = par["fr"] - par["fr"].mean(0), par["en"] - par["en"].mean(0)
    np.testing.assert_allclose(ridge_map(src, dst, 1e-6), q.T, atol=1e-4)     # fr -> en undoes the rotation
    np.testing.assert_allclose(ridge_map(src, dst, 1e9), np.eye(D), atol=1e-5)


def test_aligned_embedding_is_the_probability_weighted_map():
    require_module("torch", "pip install 'emo3d[train]'")
    par, q = _tiny()
    al = fit(par, par["en"], ridge=1e-4, seed=0)
    assert al.languages == ("en", "fr", "ru") and al.maps.shape == (2, D, D)
    # the maps are stored as float16 numbers (what the file holds) and send each language onto English
    assert np.array_equal(al.maps, al.maps.astype(np.float16).astype(np.float32))
    np.testing.assert_allclose(al.means[0], par["en"].mean(0), atol=1e-6)
    x = par["fr"][:5]
    by_map = (x - al.means[1]) @ al.maps[0] + al.means[0]
    np.testing.assert_allclose(by_map, par["en"][:5], atol=5e-3)
    # the script decides Cyrillic (ru, probability 1: the ru map alone); no letters: English (unchanged)
    got = al(["привет мир"] * 3 + ["123 :)"] * 2, np.concatenate([par["ru"][:3], par["en"][:2]]))
    np.testing.assert_allclose(got[:3], (par["ru"][:3] - al.means[2]) @ al.maps[1] + al.means[0], rtol=1e-6)
    np.testing.assert_array_equal(got[3:], par["en"][:2])
    # Latin letters: a softmax over the Latin languages from the identifier; the output is exactly its mix
    texts = ["bonjour tout le monde"] * 5
    p = al.probs(texts, x)
    assert p.shape == (5, 3) and np.allclose(p.sum(1), 1) and not p[:, 2].any()      # ru is not Latin
    z = x @ al.lid_w[:, :2] + al.lid_b[:2]
    np.testing.assert_allclose(p[:, :2], np.exp(z) / np.exp(z).sum(1, keepdims=True), rtol=1e-5)
    assert (p[:, 1] > 0.9).all()                          # the fr rows are told from English
    want = p[:, :1] * x + p[:, 1:2] * by_map
    np.testing.assert_allclose(al(texts, x), want, atol=1e-5)
    # English rows are told from French: they stay (nearly) where they are
    pe = al.probs(["hello there"] * 20, par["en"][:20])
    assert (pe[:, 0] > 0.8).all() and pe[:, 0].mean() > 0.95


def test_script_rules_name_the_language():
    langs = ("en", "ar", "fa", "ja", "ru", "zh")
    al = LanguageAlignment(langs, np.zeros((D, 6), np.float32), np.zeros(6, np.float32),
                           np.zeros((6, D), np.float32), np.tile(np.eye(D, dtype=np.float32), (5, 1, 1)), 0.1)
    p = al.probs(["我很生气", "私は怒っている", "я зол", "من عصبانی هستم", "أنا غاضب", "😡", "I am angry"],
                 np.zeros((7, D), np.float32))
    assert [langs[i] for i in p.argmax(1)] == ["zh", "ja", "ru", "fa", "ar", "en", "en"]
    assert (p.max(1) == 1).all()        # only English is among the Latin languages here: no guess


def test_alignment_file_round_trip_and_errors(tmp_path):
    require_module("torch", "pip install 'emo3d[train]'")
    par, _ = _tiny()
    al = fit(par, par["en"], ridge=0.1)
    back = LanguageAlignment.load(al.save(tmp_path / ALIGN_FILE))
    assert back.languages == al.languages and back.ridge == pytest.approx(0.1)
    for name in ("lid_w", "lid_b", "means", "maps"):
        np.testing.assert_array_equal(getattr(back, name), getattr(al, name))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFileError, match="bad.npz is not a readable language alignment"):
        LanguageAlignment.load(tmp_path / "bad.npz")
    with pytest.raises(ModelFileError, match="maps has shape"):
        LanguageAlignment(al.languages, al.lid_w, al.lid_b, al.means, al.maps[:1], 0.1)
    with pytest.raises(ModelFileError, match="English"):
        LanguageAlignment(("fr", "en", "ru"), al.lid_w, al.lid_b, al.means, al.maps, 0.1)
    with pytest.raises(InvalidInputError, match="ridge"):
        fit(par, par["en"], ridge=0)
    with pytest.raises(InvalidInputError, match="temperature"):
        fit(par, par["en"], temperature=0)
    sharp = fit(par, par["en"], ridge=0.1, temperature=0.5)       # the identifier's logits / 0.5
    np.testing.assert_allclose(sharp.lid_w, 2 * al.lid_w, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(sharp.maps, al.maps)
    with pytest.raises(InvalidInputError, match="English"):
        fit({"fr": par["fr"], "ru": par["ru"]}, par["en"])
    with pytest.raises(InvalidInputError, match="embeddings of shape"):
        al(["x"], np.zeros((1, D + 1), np.float32))


def test_reader_folder_applies_its_alignment(tmp_path):
    """A reader folder naming ``language_align.npz``: the head reads the aligned embedding, the unknown-text
    detector the encoder's own; a file of the wrong width is refused on load."""
    require_module("torch", "pip install 'emo3d[train]'")
    from emo3d.manifest import ModelManifest
    from emo3d.models.reader import NumpyEmotionHead, TextReader, read_safetensors
    from emo3d.models.train_reader import folder_embed
    default = Path(__file__).resolve().parents[3] / "emo3d/models/default"
    folder = tmp_path / "reader"
    folder.mkdir()
    for name in ("manifest.json", "head.safetensors", "unknown.npz"):
        (folder / name).write_bytes((default / name).read_bytes())
    manifest = ModelManifest.load(folder)
    manifest.files = {k: v for k, v in manifest.files.items() if k in ("head", "unknown")}
    manifest.backbone.pop("adapter", None)
    rng = np.random.default_rng(1)
    dim = 384
    en = rng.standard_normal((40, dim)).astype(np.float32)
    en /= np.linalg.norm(en, axis=1, keepdims=True)
    al = LanguageAlignment(("en", "ru"), np.zeros((dim, 2), np.float32), np.zeros(2, np.float32),
                           np.stack([en.mean(0), en.mean(0) + 0.5]).astype(np.float32),
                           (np.eye(dim, dtype=np.float32) * 0.5)[None], 0.1)
    al.save(folder / ALIGN_FILE)
    manifest.files["language_align"] = ALIGN_FILE
    manifest.save(folder)
    texts = ["отчёт лежит на столе", "the report is on the desk"]
    emb = rng.standard_normal((2, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)           # unit length, as the encoder's
    enc = lambda t: np.stack([emb[texts.index(x)] for x in t])   # noqa: E731
    reader = TextReader(folder, encoder=enc)
    want = emb.copy()
    want[0] = (emb[0] - al.means[1]) * 0.5 + al.means[0]          # ru: mapped; en: as it is
    np.testing.assert_allclose(reader.embed(texts), want, atol=1e-6)
    np.testing.assert_allclose(folder_embed(folder, enc)(texts), want, atol=1e-6)
    head = NumpyEmotionHead(read_safetensors(folder / "head.safetensors"), reader.head.logit_bias)
    r = reader.read(texts)
    np.testing.assert_allclose(r[0].emotions8, head(want[:1], reader.row_bias(texts[:1]))[1][0], atol=1e-6)
    assert r[0].unknown_score == pytest.approx(float(reader.unknown_scores(emb[:1])[0]), abs=1e-6)
    # a file whose width is not the head's is refused
    LanguageAlignment(("en", "ru"), np.zeros((8, 2), np.float32), np.zeros(2, np.float32),
                      np.zeros((2, 8), np.float32), np.eye(8, dtype=np.float32)[None], 0.1).save(folder / ALIGN_FILE)
    with pytest.raises(ModelFileError, match="language alignment maps 8-d"):
        TextReader(folder, encoder=enc)


def test_shipped_default_names_its_alignment():
    default = Path(__file__).resolve().parents[3] / "emo3d/models/default"
    manifest = json.loads((default / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["files"]["language_align"] == ALIGN_FILE
    assert manifest["extra"]["options"]["language_ridge"] > 0
    al = LanguageAlignment.load(default / manifest["files"]["language_align"])
    assert al.languages[0] == "en" and set(al.languages) == set(manifest["backbone"]["languages"])
    assert al.dim == manifest["backbone"]["hidden_size"]


class _HashedWords:
    """A stand-in for the e5 encoder: hashed word vectors, summed, L2-normalised (384-d)."""

    def __call__(self, texts):
        import hashlib
        import re
        out = np.zeros((len(texts), 384), np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()) or ["<empty>"]:
                seed = int.from_bytes(hashlib.sha256(w.encode()).digest()[:4], "little")
                out[i] += np.random.default_rng(seed).standard_normal(384).astype(np.float32)
            out[i] /= np.linalg.norm(out[i]) + 1e-9
        return out


def test_train_reader_fits_saves_and_refits_the_alignment(tmp_path):
    """The recipe's step: fitted on the parallel training sentences, the head trained on aligned embeddings,
    the file named in the manifest, read back by the reader; ``--language-only`` refits the same file."""
    require_module("torch", "pip install 'emo3d[train]'")
    import torch
    from emo3d.models import corpora
    from emo3d.models.reader import TextReader
    from emo3d.models.train_reader import ReaderTrainOptions, folder_embed, refit_language, train_reader
    root = tmp_path / "ge"
    root.mkdir()
    rows = {27: ["the bus leaves at noon", "the table is brown"], 17: ["what a lovely day", "so glad today"],
            25: ["my heart is broken", "tears all night"], 2: ["I am furious at you", "rage fills my chest"]}
    for split in corpora.SPLITS:
        (root / f"{split}.tsv").write_text("".join(f"{t}\t{k}\t{split}{k}{i}\n" for k, ts in rows.items()
                                                   for i, t in enumerate(ts)), encoding="utf-8")
    enc = _HashedWords()
    opts = ReaderTrainOptions(out=str(tmp_path / "reader"), goemotions=str(root), real_per_class=2,
                              synthetic_samples=10, multilingual_prompts=0.0, short_prompts=0.0, word_prompts=0.0,
                              epochs=3, patience=3, neutral_cv_folds=0, unknown_positives=50, unknown_negatives=100,
                              unknown_calibration_words=50, progress=False, language_ridge=0.5, language_english=200)
    res = train_reader(opts, embed=enc)
    folder = Path(res.out)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["files"]["language_align"] == ALIGN_FILE
    al = LanguageAlignment.load(folder / ALIGN_FILE)
    assert al.languages == ("en", "ar", "de", "es", "fa", "fr", "it", "ja", "pt", "ru", "zh") and al.ridge == 0.5
    assert manifest["metrics"]["language_align"]["languages"] == list(al.languages)
    texts = ["je suis furieux", "estoy muy triste", "我很生气", "the bus leaves at noon"]
    aligned = al(texts, enc(texts))
    assert not np.allclose(aligned[:3], enc(texts)[:3], atol=1e-3)         # translations are moved
    reader = TextReader(folder, encoder=enc)
    np.testing.assert_allclose(reader.embed(texts), aligned, atol=1e-6)
    np.testing.assert_allclose(folder_embed(folder, enc)(texts), aligned, atol=1e-6)
    with torch.no_grad():                   # the runtime head reads what the trained head was trained on
        ref = torch.sigmoid(res.head.extractor(torch.from_numpy(aligned))).numpy()
    got = reader.head(reader.embed(texts))[1]
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-(np.log(ref / (1 - ref)) + reader.head.logit_bias))), atol=1e-4)
    (folder / ALIGN_FILE).unlink()         # --language-only: the same data and encoder refit the same file
    assert refit_language(folder, enc, opts)["ridge"] == 0.5
    assert json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["files"]["language_align"] == ALIGN_FILE
    again = LanguageAlignment.load(folder / ALIGN_FILE)
    np.testing.assert_array_equal(again.maps, al.maps)
    np.testing.assert_array_equal(again.means, al.means)
    np.testing.assert_allclose(again.lid_w, al.lid_w, atol=1e-5)
    # --language-only --parallel: a translated GoEmotions file joins the Persian map (its test ids dropped)
    fa = tmp_path / "fa.tsv"
    fa.write_text("اتوبوس ظهر حرکت می کند\t27\ttrain270\nچه روز دوست داشتنی\t17\tdev170\n"
                  "قلبم شکسته است\t25\ttest250\nاشک تمام شب\t25\ttest251\n", encoding="utf-8")
    got = refit_language(folder, enc, opts, parallel=[f"goemotions-fa={fa}"], parallel_weight=2.0,
                         goemotions=str(root))
    assert got["parallel_corpora"][0]["corpus"] == "goemotions-fa" and got["parallel_weight"] == 2.0
    assert got["parallel_corpora"][0]["pairs"] == {"fa": 2} and got["fitted_on"].endswith("+ goemotions-fa")
    more = LanguageAlignment.load(folder / ALIGN_FILE)
    k = more.languages.index("fa") - 1
    assert not np.allclose(more.maps[k], al.maps[k], atol=1e-4)             # the Persian map moved ...
    others = [i for i in range(len(al.maps)) if i != k]
    np.testing.assert_array_equal(more.maps[others], al.maps[others])       # ... the others did not
    np.testing.assert_allclose(more.targets[others], np.tile(al.means[:1], (len(others), 1)), atol=1e-6)


def test_language_options_are_validated():
    from emo3d.models.train_reader import ReaderTrainOptions
    assert ReaderTrainOptions().language_ridge == 0.1 and ReaderTrainOptions().language_temperature == 0.5
    with pytest.raises(InvalidInputError, match="language_ridge"):
        ReaderTrainOptions(language_ridge=-1)
    with pytest.raises(InvalidInputError, match="language_temperature"):
        ReaderTrainOptions(language_temperature=0)
    with pytest.raises(InvalidInputError, match="language_english"):
        ReaderTrainOptions(language_english=0)
    with pytest.raises(InvalidInputError, match="NAME=PATH"):
        ReaderTrainOptions(parallel=("xed=/somewhere",))
    with pytest.raises(InvalidInputError, match="parallel_weight"):
        ReaderTrainOptions(parallel_weight=0)
