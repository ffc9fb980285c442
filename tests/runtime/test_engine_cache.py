"""Issue #17: the Engine's prediction cache never hands out its own mutable state: a caller changing a
Prediction in place (vector, scores, emotions) cannot corrupt later results, also across threads."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from runtime.engine import Engine, EngineOptions
from support.tiny import make_tiny_model

PROMPTS = ["furious scowl", "happy smile", "sad frown", "surprised gasp"]


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return Engine.create(EngineOptions(model=make_tiny_model(tmp_path_factory.mktemp("m") / "model",
                                                             emotions=True), device="cpu"))


def _vandalise(p):
    p.vector *= 2
    p.vector[0] = 99
    p.scores["jawOpen"] = -1.0
    p.emotions["anger"] = 42.0


@pytest.mark.parametrize("batch", [False, True])
def test_in_place_changes_do_not_reach_the_cache(engine, batch):
    engine.clear_cache()
    ref = {t: engine.predict(t) for t in PROMPTS}          # miss: the caller's object
    ref = {t: (p.vector.copy(), dict(p.scores), dict(p.emotions)) for t, p in ref.items()}
    engine.clear_cache()
    first = engine.predict(PROMPTS + PROMPTS) if batch else [engine.predict(t) for t in PROMPTS]
    for p in first:                                         # misses (and a duplicate within the batch)
        _vandalise(p)
    for _ in range(2):
        for t in PROMPTS:
            p = engine.predict(t)                           # hits
            assert p.cached
            assert np.array_equal(p.vector, ref[t][0]) and p.scores == ref[t][1] and p.emotions == ref[t][2]
            assert p.vector.flags.writeable                 # the caller's own copy
            _vandalise(p)


def test_threads_changing_their_results_never_corrupt_others(engine):
    engine.clear_cache()
    ref = {t: engine.predict(t).vector.copy() for t in PROMPTS}
    engine.clear_cache()                                    # the threads' first calls are misses
    bad, done = [], []

    def worker(k):
        for i in range(300):
            t = PROMPTS[(i + k) % len(PROMPTS)]
            if i % 50 == 0 and k == 0:
                engine.clear_cache()                        # more misses while the others read hits
            p = engine.predict(t)
            if not np.array_equal(p.vector, ref[t]):
                bad.append((k, i, t))
            _vandalise(p)
        done.append(k)
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert sorted(done) == [0, 1, 2, 3] and bad == [], bad[:5]
    assert engine.cache_info()["hits"] > 4 * 300 // 2


def test_lone_surrogate_is_invalid_input(engine):
    from emo3d.errors import InvalidInputError
    with pytest.raises(InvalidInputError, match="surrogate.*U\\+DCFF"):
        engine.predict("\udcff angry")
    with pytest.raises(InvalidInputError, match="text #1"):
        engine.predict(["happy", "sad \ud800"])


def test_threads_are_capped_per_core():
    import os
    from emo3d.errors import InvalidInputError
    from runtime.engine import MAX_THREADS_PER_CORE
    limit = MAX_THREADS_PER_CORE * (os.cpu_count() or 1)
    assert EngineOptions(model="x", threads=limit).threads == limit
    with pytest.raises(InvalidInputError, match=f"EngineOptions.threads must be an integer in \\[0, {limit}\\]"):
        EngineOptions(model="x", threads=100000)
