"""Offline builder: layout the reader loads, determinism, resume after an interrupted build, the FACS
prior, texts, the LLM backend against a local HTTP server, --source hf offline, the card."""
from __future__ import annotations

import http.server
import json
import re
import threading
import time

import numpy as np
import pytest

from emo3d import data as dataset
from emo3d.data import builder, facs, lexicon, vocabulary
from emo3d.data.stats import content_words
from emo3d.data.builder import BuildOptions, build
from emo3d.data.cli import main as data_main
from emo3d import schema
from emo3d.errors import AssetError, InvalidInputError

I = schema.MEDIAPIPE_INDEX


def opts(out, **kw):
    base = dict(samples=6, seed=3, images=False, shard_size=2, primitives=False, card=False, progress=False,
                workers=1)
    base.update(kw)
    return BuildOptions(out=out, **base)


def test_build_without_images_loads_through_the_reader(tmp_path):
    res = build(opts(tmp_path / "d", primitives=True, card=True))
    assert res.samples == 6 and res.images == 0 and res.distinct_texts == 18
    assert not (tmp_path / ".d.build").exists()
    rel = dataset.read_release(tmp_path / "d")
    assert sorted(s.sample_id for s in rel.samples) == list(range(6))
    assert sum(len(rel.split(s)) for s in ("train", "val", "test")) == 6
    for s in rel.samples:
        assert len(set(s.texts)) == 3
        assert s.prior is not None and np.array_equal(s.blendshapes[0], s.prior)
        assert s.blendshapes[1:] == (None, None, None) and s.images == (None,) * 4
        assert abs(float(s.emotions.sum()) - 1) < 1e-5 and 0.3 <= s.intensity <= 1
    tp = dataset.text_pairs(rel.samples, target="prior")
    assert len(tp) == 18 and tp.targets.max() <= 1
    card = (tmp_path / "d" / "CARD.md").read_text()
    assert card.startswith("# Emo3D-format dataset: d\n") and len(re.findall(r"\| happiness \| \d+ \|", card)) == 1
    assert (tmp_path / "d" / "card_emotions.png").stat().st_size > 1000
    from emo3d.data.primitives import read_primitives
    prim = read_primitives(tmp_path / "d")
    assert {p.level for p in prim} == {"slight", "moderate", "strong"}
    fury = [p for p in prim if p.word == "fury"]
    assert len(fury) == 6 and [p.gender for p in fury] == ["male"] * 3 + ["female"] * 3
    assert fury[0].emotions[schema.EMOTION_INDEX["anger"]] == fury[0].emotions.max()
    assert fury[2].prior.sum() > fury[0].prior.sum()   # stronger intensity, stronger face
    assert all(p.image is None for p in fury)          # no gendered heads given: no images
    # an existing folder is never replaced without --overwrite
    with pytest.raises(InvalidInputError, match="overwrite"):
        build(opts(tmp_path / "d"))


def test_build_is_deterministic_for_a_seed(tmp_path):
    build(opts(tmp_path / "a"))
    build(opts(tmp_path / "b", shard_size=4))   # sharding does not change rows
    build(opts(tmp_path / "c", seed=4))
    for name in ("train_data.csv", "val_data.csv", "test_data.csv"):
        assert (tmp_path / "a/data" / name).read_bytes() == (tmp_path / "b/data" / name).read_bytes()
    ta = {t for s in dataset.read_release(tmp_path / "a").samples for t in s.texts}
    tc = {t for s in dataset.read_release(tmp_path / "c").samples for t in s.texts}
    assert not ta & tc


def test_interrupted_build_resumes_without_duplicates(tmp_path, monkeypatch):
    out = tmp_path / "r"
    real = builder.make_sample

    def dying(i, seed, **kw):
        if i == 3:
            raise KeyboardInterrupt
        return real(i, seed, **kw)

    monkeypatch.setattr(builder, "make_sample", dying)
    with pytest.raises(KeyboardInterrupt):
        build(opts(out))
    assert not out.exists()                                   # nothing half-written is visible
    shards = sorted(p.name for p in (tmp_path / ".r.build" / "shards").glob("*.csv"))
    assert shards == ["shard_00000.csv"]                        # sample 3 was in shard 1: not written
    with pytest.raises(InvalidInputError, match="resume"):      # other options must not mix in
        build(opts(out, seed=9))
    monkeypatch.setattr(builder, "make_sample", real)
    res = build(opts(out))
    assert res.resumed_shards == 1
    ids = [s.sample_id for s in dataset.read_release(out).samples]
    assert ids == list(range(6))
    build(opts(tmp_path / "ref"))
    assert (out / "data/train_data.csv").read_bytes() == (tmp_path / "ref/data/train_data.csv").read_bytes()


def test_facs_prototypes_and_prior():
    from emo3d import facs as prototypes     # the core owns the prototypes; emo3d.data.facs mixes them
    h = prototypes.prototype("happiness")
    assert h[I["mouthSmileLeft"]] > 0.5 and h[I["cheekSquintRight"]] > 0.3 and h[I["browDownLeft"]] == 0
    a = prototypes.prototype("anger", 0.5)
    assert a[I["browDownLeft"]] == pytest.approx(0.4) and a[I["mouthSmileLeft"]] == 0
    assert not prototypes.prototype("neutral").any()
    c = prototypes.prototype("contempt", side="R")
    assert c[I["mouthSmileRight"]] > 0 and c[I["mouthSmileLeft"]] == 0
    assert np.array_equal(prototypes.prototype("contempt", side="L"), schema.mirror(c))
    d = np.zeros(8)
    d[schema.EMOTION_INDEX["surprise"]] = 1
    p0 = facs.prior(d, 0.6)
    p1 = facs.prior(d, 0.6, text="her jaw is set, a clenched jaw")
    assert p1[I["mouthPressLeft"]] > p0[I["mouthPressLeft"]]
    assert facs.prior(d, 0.6, text="wide eyes")[I["eyeWideLeft"]] > p0[I["eyeWideLeft"]]
    assert np.all((p0 >= 0) & (p0 <= 1)) and p0[0] == 0
    mix = facs.prior({"disgust": 0.6, "contempt": 0.4}, 1.0)
    assert mix[I["noseSneerLeft"]] > 0 and mix[I["mouthDimpleRight"]] > 0
    r1 = facs.prior(d, 0.6, rng=np.random.default_rng(1))
    r2 = facs.prior(d, 0.6, rng=np.random.default_rng(1))
    assert np.array_equal(r1, r2) and not np.array_equal(r1, p0)
    for bad in ([0] * 8, [1] * 7, [1, -1, 0, 0, 0, 0, 0, 0], [np.nan] + [1] * 7):
        with pytest.raises(InvalidInputError):
            facs.prior(bad)
    with pytest.raises(InvalidInputError, match="intensity"):
        facs.prior(d, 1.5)
    with pytest.raises(InvalidInputError, match="accepted"):
        prototypes.prototype("joyous")
    assert facs.find_cues("Wide-open eyes and a furrowed brow.") == ["wide_eyes", "furrowed_brow"]


def test_prototype_vectors_are_computed_once_and_read_only():
    """The prior's per-emotion vectors are cached: equal to a fresh au_vector, the same object on every call,
    and nobody can write into the cached copy."""
    from emo3d import facs as prototypes
    for e in schema.EMOTIONS:
        for side in ("L", "R"):
            v = prototypes.prototype_vector(e, side)
            assert np.array_equal(v, prototypes.au_vector(prototypes.prototype_aus(e, side)))
            assert v is prototypes.prototype_vector(e, side) and not v.flags.writeable
    with pytest.raises(ValueError):
        prototypes.prototype_vector("anger", "R")[0] = 1.0
    with pytest.raises(InvalidInputError, match="accepted"):
        prototypes.prototype_vector("joyous")
    with pytest.raises(InvalidInputError, match="'L' or 'R'"):
        prototypes.prototype_vector("anger", "left")
    # the conversions' permutations are cached the same way and stay right
    perm = schema._perm(schema.MEDIAPIPE_NAMES, schema.MODEL_NAMES)
    assert perm is schema._perm(list(schema.MEDIAPIPE_NAMES), list(schema.MODEL_NAMES)) and not perm.flags.writeable
    v = np.arange(52, dtype=np.float32)
    assert np.array_equal(schema.mediapipe_to_model(v), v[1:]) and schema.model_to_mediapipe(v[1:])[0] == 0


def test_texts_are_varied_and_in_the_papers_style():
    ms = [builder.make_sample(i, 0).sample for i in range(400)]
    texts = [t for s in ms for t in s.texts]
    assert len(set(texts)) >= 0.97 * len(texts)
    words = [len(content_words(t)) for t in texts]
    assert 11 <= np.mean(words) <= 14.5     # the paper's Table 3: 11.3-13.6 content words per description
    assert min(words) <= 7 and max(words) >= 20     # lengths vary (Figure 8)
    for s in ms:     # every text names its dominant emotion with one of that emotion's words or idioms
        ew = vocabulary.emotion_words(s.dominant)
        syn = set(ew.synonyms) | {vocabulary.fill(i, p) for i in ew.idioms for p in ("her", "his", "their")}
        assert all(any(w in t.lower() for w in syn) for t in s.texts), (s.dominant, s.texts)
    # sentence openings vary: no single first word dominates
    firsts = [t.split()[0] for t in texts]
    assert max(firsts.count(f) for f in set(firsts)) < 0.35 * len(texts)
    # intensity words follow the intensity
    strong = [s for s in ms if s.intensity >= 0.8 and s.dominant != "neutral"]
    inten = set(vocabulary.INTENSITY_ADVERBS[2] + vocabulary.INTENSITY_ADJECTIVES[2])
    assert sum(any(w in inten for w in re.findall(r"[a-z]+", " ".join(s.texts))) for s in strong) == len(strong)
    # the dominant-class mix is near Figure 9
    dom = np.bincount([int(np.argmax(s.emotions)) for s in ms], minlength=8) / len(ms)
    assert np.abs(dom - builder._DOMINANT_P).max() < 0.06


def test_lexicon_distributions_come_from_emolex():
    d = lexicon.word_distribution("fury")
    assert d[schema.EMOTION_INDEX["anger"]] == d.max() and abs(d.sum() - 1) < 1e-6
    assert lexicon.word_distribution("abacus")[schema.EMOTION_INDEX["neutral"]] == 1
    assert "furious" in lexicon.adjectives("anger") and "joy" in lexicon.nouns("happiness")


class _FakeLLM(http.server.BaseHTTPRequestHandler):
    calls: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).calls.append((self.path, body, self.headers.get("Authorization")))
        prompt = body["messages"][-1]["content"]
        n = len(type(self).calls)
        if prompt.startswith("Write"):
            content = ("Sure! " if n % 2 else "") + json.dumps(
                {"texts": [f"Text {n} a: wide eyes.", f"Text {n} b.", f"Text {n} c."]})
        else:
            content = json.dumps({"emotions": {e: (0.9 if e == "fear" else 0.1) for e in schema.EMOTIONS}})
        out = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


def test_llm_backend_against_a_local_server(tmp_path, monkeypatch):
    _FakeLLM.calls = []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeLLM)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    try:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
        build(opts(tmp_path / "l", samples=2, text="llm", llm_base_url=url, llm_model="tiny"))
    finally:
        srv.shutdown()
        srv.server_close()
    rel = dataset.read_release(tmp_path / "l")
    assert len(_FakeLLM.calls) == 4
    path, body, auth = _FakeLLM.calls[0]
    assert path == "/v1/chat/completions" and body["model"] == "tiny" and auth == "Bearer sk-test"
    s = sorted(rel.samples, key=lambda s: s.sample_id)[0]
    assert s.texts == ("Text 1 a: wide eyes.", "Text 1 b.", "Text 1 c.") and s.prompt_type == "offline_llm"
    assert s.emotions[schema.EMOTION_INDEX["fear"]] == pytest.approx(0.9)
    assert s.prior[I["eyeWideLeft"]] > 0.5   # fear prior + the "wide eyes" phrase
    with pytest.raises(InvalidInputError, match="llm_base_url"):
        BuildOptions(out=tmp_path / "x", text="llm")


def test_llm_endpoint_down_is_a_clear_error(tmp_path):
    from emo3d.data.llm import LLMClient, LLMOptions
    from emo3d.errors import ProviderError
    c = LLMClient(LLMOptions(base_url="http://127.0.0.1:9/v1", timeout=2, retries=0))
    with pytest.raises(ProviderError, match="127.0.0.1:9"):
        c.chat([{"role": "user", "content": "hi"}])


def test_source_hf_fails_at_once_offline(monkeypatch, tmp_path, capsys):
    from emo3d.data.hf import fetch_release
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t = time.monotonic()
    with pytest.raises(AssetError, match="--source local --path"):
        fetch_release(source="hf")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")   # nothing listens on the discard port
    with pytest.raises(AssetError, match="--source local --path"):
        fetch_release(source="hf", timeout=2)
    assert time.monotonic() - t < 10
    assert data_main(["fetch", "--source", "hf", "--timeout", "2"]) == 2
    assert "--source local" in capsys.readouterr().err


def test_build_with_images(tmp_path, face_landmarker):
    res = build(opts(tmp_path / "i", samples=2, images=True, renders=2, image_size=192))
    rel = dataset.read_release(tmp_path / "i")
    s = sorted(rel.samples, key=lambda s: s.sample_id)[0]
    assert s.images[:2] == ("images_0_1000/0_0.jpeg", "images_0_1000/0_1.jpeg") and s.images[2:] == (None, None)
    assert (tmp_path / "i" / s.images[0]).stat().st_size > 1000
    assert res.images == 4
    got = [b for x in rel.samples for b in x.blendshapes if b is not None]
    assert len(got) + res.faces_missed == 4 and len(got) >= 2
    assert all(not np.array_equal(b, x.prior) for x in rel.samples for b in x.blendshapes if b is not None)
    ip = dataset.image_pairs(rel.samples, rel.root, mirror=True)
    assert len(ip) == 2 * len(got) and ip.paths[0].is_file()


def test_cli_build_check_and_card(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["build", "--out", str(out), "--samples", "3", "--seed", "1", "--no-images", "--quiet",
            "--no-card", "--no-primitives", "--shard-size", "2"]
    assert data_main(argv) == 0
    assert "3 samples" in capsys.readouterr().out
    assert data_main(argv) == 2                       # exists: refuses without --overwrite
    assert "--overwrite" in capsys.readouterr().err
    # a stray temp file from a killed run never reaches the output
    work = tmp_path / ".cli2.build"
    (work / "images_0_1000").mkdir(parents=True)
    (work / "images_0_1000" / ".0_0.jpeg.abc.tmp").write_bytes(b"x")
    assert data_main(["build", "--out", str(tmp_path / "cli2")] + argv[3:]) == 0
    assert not list((tmp_path / "cli2").rglob("*.tmp"))
    assert data_main(["check", str(out)]) == 0
    assert data_main(["card", str(out)]) == 0
    assert (out / "CARD.md").is_file() and (out / "card_samples.png").is_file()
    assert data_main(["build", "--out", str(tmp_path / "x"), "--samples", "0"]) == 2


def test_cli_check_source_hf_offline(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert data_main(["check", "--source", "hf"]) == 2
    err = capsys.readouterr().err
    assert "HF_HUB_OFFLINE" in err and "emo3d data check DIR" in err


def test_two_builds_never_write_one_folder(tmp_path):
    with builder._Lock(tmp_path / "busy"):
        with pytest.raises(InvalidInputError, match="another emo3d data build"):
            build(opts(tmp_path / "busy"))
    assert build(opts(tmp_path / "busy")).samples == 6
    assert not (tmp_path / ".busy.lock").exists()


def test_killed_before_the_final_rename_publishes_without_rebuilding(tmp_path, monkeypatch):
    out = tmp_path / "f"
    real_publish = builder._publish

    def die(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(builder, "_publish", die)
    with pytest.raises(KeyboardInterrupt):
        build(opts(out))
    assert not out.exists() and (tmp_path / ".f.build" / "data" / "train_data.csv").is_file()
    monkeypatch.setattr(builder, "_publish", real_publish)
    monkeypatch.setattr(builder, "make_sample", lambda *a, **k: pytest.fail("rebuilt a finished build"))
    res = build(opts(out))
    assert res.samples == 6 and not (out / "shards").exists() and not (tmp_path / ".f.build").exists()
    assert json.loads((out / "build.json").read_text())["finished"] > 0
