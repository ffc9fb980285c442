"""Public parallel corpora for the language alignment (emo3d.models.parallel_corpora) and their pairs in the
alignment's fit (emo3d.models.language_align_fit: ``extra``): tiny corpora and embeddings built in-test."""
import numpy as np
import pytest
from support.assets import require_module

from emo3d.errors import AssetError, InvalidInputError
from emo3d.models import corpora
from emo3d.models.language_align import ALIGN_FILE, LanguageAlignment
from emo3d.models.parallel_corpora import (TATOEBA_CODES, load, load_goemotions_translation, load_tatoeba,
                                           parse_specs)

D = 12


def _goemotions(root):
    """A tiny GoEmotions folder: ids t* in train, d* in dev, x* in test."""
    root.mkdir()
    rows = {"train": [("I love this so much", "18", "t1"), ("this is so unfair", "2", "t2")],
            "dev": [("I miss them", "25", "d1"), ("the bus is late", "27", "d2")],
            "test": [("what a scary night", "14", "x1")]}
    for split in corpora.SPLITS:
        (root / f"{split}.tsv").write_text("".join(f"{t}\t{l}\t{i}\n" for t, l, i in rows[split]), encoding="utf-8")
    return root


def test_goemotions_translation_keeps_train_and_dev_ids_with_their_english_rows(tmp_path):
    ge = _goemotions(tmp_path / "ge")
    # the TSV layout (text, labels, id; no header): a test row, an unknown id and an untranslated row are dropped
    tsv = tmp_path / "fa.tsv"
    tsv.write_text("من این را خیلی دوست دارم\t18\tt1\n"
                   "دلم برایشان تنگ شده\t25\td1\n"
                   "چه شب ترسناکی\t14\tx1\n"
                   "بی ربط\t27\tzz9\n"
                   "the bus is late\t27\td2\n", encoding="utf-8")
    fa = load_goemotions_translation(tsv, "fa", ge)
    assert fa.corpus == "goemotions-fa" and fa.language == "fa" and len(fa) == 2
    assert fa.english == ("I love this so much", "I miss them")
    assert fa.texts == ("من این را خیلی دوست دارم", "دلم برایشان تنگ شده")
    # the CSV layout (header with <language>_text and id)
    csv = tmp_path / "ru.csv"
    csv.write_text('ru_text,text,labels,id\n"это так несправедливо",this is so unfair,[2],t2\n'
                   '"какая страшная ночь",what a scary night,[14],x1\n'
                   'I miss them,I miss them,[25],d1\n', encoding="utf-8")
    ru = load_goemotions_translation(csv, "ru", ge)
    assert ru.texts == ("это так несправедливо",) and ru.english == ("this is so unfair",)
    with pytest.raises(InvalidInputError, match="not one of the alignment's"):
        load_goemotions_translation(csv, "xx", ge)
    bad = tmp_path / "bad.txt"
    bad.write_text("just one column\n", encoding="utf-8")
    with pytest.raises(AssetError, match="neither a CSV"):
        load_goemotions_translation(bad, "ru", ge)


def test_tatoeba_folder_is_read_line_by_line(tmp_path):
    folder = tmp_path / "tatoeba"
    folder.mkdir()
    (folder / "tatoeba.fra-eng.fra").write_text("Je suis content.\nIl pleut.\n\n", encoding="utf-8")
    (folder / "tatoeba.fra-eng.eng").write_text("I am happy.\nIt is raining.\nEmpty line above.\n", encoding="utf-8")
    (folder / "tatoeba.jpn-eng.jpn").write_text("悲しいです。\nOK\n", encoding="utf-8")
    (folder / "tatoeba.jpn-eng.eng").write_text("I am sad.\nOK\n", encoding="utf-8")
    got = {p.language: p for p in load_tatoeba(folder)}
    assert sorted(got) == ["fr", "ja"]                  # the languages whose two files are there
    assert got["fr"].texts == ("Je suis content.", "Il pleut.") and got["fr"].english[1] == "It is raining."
    assert got["ja"].texts == ("悲しいです。",)          # a line left in English is dropped
    (folder / "tatoeba.spa-eng.spa").write_text("Hola.\n", encoding="utf-8")
    (folder / "tatoeba.spa-eng.eng").write_text("Hello.\nBye.\n", encoding="utf-8")
    with pytest.raises(AssetError, match="line i of one"):
        load_tatoeba(folder, ["es"])
    with pytest.raises(AssetError, match="cannot read"):
        load_tatoeba(folder, ["de"])
    with pytest.raises(AssetError, match="no tatoeba"):
        load_tatoeba(tmp_path)
    assert set(TATOEBA_CODES) == {"fr", "es", "de", "it", "pt", "ru", "zh", "ja", "ar", "fa"}


def test_specs_name_the_corpus_and_its_path(tmp_path):
    assert parse_specs(["tatoeba=/a/b", "goemotions-fa=/c.tsv"]) == {"tatoeba": "/a/b", "goemotions-fa": "/c.tsv"}
    for bad in ("tatoeba", "xed=/x", "goemotions-xx=/y", "tatoeba="):
        with pytest.raises(InvalidInputError, match="NAME=PATH"):
            parse_specs([bad])
    ge = _goemotions(tmp_path / "ge")
    (tmp_path / "fa.tsv").write_text("دلم برایشان تنگ شده\t25\td1\n", encoding="utf-8")
    got = load({"goemotions-fa": str(tmp_path / "fa.tsv")}, ge)
    assert [(p.corpus, p.language, len(p)) for p in got] == [("goemotions-fa", "fa", 1)]


def _rotated(n, q, shift, rng):
    en = rng.standard_normal((n, D))
    return (en @ q + shift).astype(np.float32), en.astype(np.float32)


def test_extra_pairs_fit_the_map_and_its_target(tmp_path):
    """Few hand-written pairs (too few for a D x D map) + many corpus pairs with their own English: the map
    recovers the language's rotation, and sends the pairs' mean to their English mean (``targets``)."""
    require_module("torch", "pip install 'emo3d[train]'")
    from emo3d.models.language_align_fit import fit
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    fr_few, en_few = _rotated(4, q, 2.0, rng)
    par = {"en": en_few, "fr": fr_few}
    fr_more, en_more = _rotated(400, q, 2.0, rng)
    en_more += 0.5                     # the corpus's English sits elsewhere than the hand-written sentences
    fr_more += 0.5 * np.ones(D) @ q    # (its translations moved the same way)
    few = fit(par, en_few, ridge=1e-3)
    more = fit(par, en_few, ridge=1e-3, extra={"fr": [(fr_more, en_more, 1.0)]})
    assert np.abs(few.maps[0] - q.T).max() > 0.1                          # 4 pairs cannot fix a 12 x 12 map
    np.testing.assert_allclose(more.maps[0], q.T, atol=5e-3)
    w = np.r_[np.ones(4), np.ones(400)]
    np.testing.assert_allclose(more.targets[0], (w @ np.r_[en_few, en_more]) / w.sum(), atol=1e-5)
    np.testing.assert_allclose(more.means[1], (w @ np.r_[fr_few, fr_more]) / w.sum(), atol=1e-5)
    x = fr_more[:5]
    got = more(["bonjour"] * 5, x)
    p = more.probs(["bonjour"] * 5, x)
    np.testing.assert_allclose(got, p[:, :1] * x + p[:, 1:] * en_more[:5], atol=2e-2)
    # a weight below 1 shrinks the corpus's share of the means
    light = fit(par, en_few, ridge=1e-3, extra={"fr": [(fr_more, en_more, 0.01)]})
    w = np.r_[np.ones(4), np.full(400, 0.01)]
    np.testing.assert_allclose(light.targets[0], (w @ np.r_[en_few, en_more]) / w.sum(), atol=1e-5)
    # the file keeps the targets; a file without them (fitted on shared English only) maps onto English's mean
    back = LanguageAlignment.load(more.save(tmp_path / ALIGN_FILE))
    np.testing.assert_allclose(back.targets, more.targets, atol=1e-6)
    old = LanguageAlignment(more.languages, more.lid_w, more.lid_b, more.means, more.maps, more.ridge)
    np.testing.assert_array_equal(old.targets, more.means[:1])
    with pytest.raises(InvalidInputError, match="parallel sentences lack"):
        fit(par, en_few, extra={"ru": [(fr_more, en_more, 1.0)]})
    with pytest.raises(InvalidInputError, match="weight > 0"):
        fit(par, en_few, extra={"fr": [(fr_more, en_more[:3], 1.0)]})


def test_corpus_pairs_are_embedded_and_counted(tmp_path):
    from emo3d.models.language_align_fit import corpus_pairs
    ge = _goemotions(tmp_path / "ge")
    (tmp_path / "fa.tsv").write_text("من این را خیلی دوست دارم\t18\tt1\nدلم برایشان تنگ شده\t25\td1\n",
                                     encoding="utf-8")
    seen = []

    def embed(texts):
        seen.extend(texts)
        return np.full((len(texts), D), float(len(seen)), np.float32)
    counts = {}
    got = corpus_pairs([f"goemotions-fa={tmp_path / 'fa.tsv'}"], embed, 0.5, ge, counts)
    assert list(got) == ["fa"] and counts == {"goemotions-fa/fa": 2}
    src, en, w = got["fa"][0]
    assert src.shape == en.shape == (2, D) and w == 0.5
    assert seen == ["من این را خیلی دوست دارم", "دلم برایشان تنگ شده", "I love this so much", "I miss them"]


def test_tuning_bundle_sets_take_the_pairs_as_unlabelled_groups_of_two(tmp_path):
    """``tune_bundle --parallel``: each corpus pair joins the encoder tuning's parallel set as a group of two
    (English first), without an emotion label (only the consistency term reads it)."""
    from emo3d.models import tune_bundle
    ge = _goemotions(tmp_path / "ge")
    folder = tmp_path / "tatoeba"
    folder.mkdir()
    (folder / "tatoeba.deu-eng.deu").write_text("Ich bin froh.\nEs regnet.\n", encoding="utf-8")
    (folder / "tatoeba.deu-eng.eng").write_text("I am glad.\nIt is raining.\n", encoding="utf-8")
    base = tune_bundle.default_sets(ge)
    sets = tune_bundle.default_sets(ge, [f"tatoeba={folder}"])
    texts0, labels0, group0, lang0 = base["parallel"]
    texts, labels, group, lang = sets["parallel"]
    n = len(texts0)
    assert list(texts[:n]) == list(texts0) and np.array_equal(labels[:n], labels0)
    assert texts[n:] == ["I am glad.", "Ich bin froh.", "It is raining.", "Es regnet."]
    assert lang[n:] == ["en", "de", "en", "de"]
    g = group0.max() + 1
    assert group[n:].tolist() == [g, g, g + 1, g + 1] and not labels[n:].any()
    assert labels.shape == (len(texts), labels0.shape[1]) and sets["goemotions_train"][0] == base["goemotions_train"][0]
