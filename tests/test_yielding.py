"""The server's in-process worker embeds in slices and lets questions go first."""

import numpy as np

from ragqa.service.yielding import YieldingEmbedder
from ragqa.testing import HashEmbedder


def test_slices_wait_while_questions_are_answered():
    inner = HashEmbedder()
    answering = iter([True, True, True] + [False] * 100)  # a question is being answered, then none
    asked = []

    def busy(quiet):
        asked.append(quiet)
        return next(answering)

    e = YieldingEmbedder(inner, busy, quiet=1.0, max_wait=60)
    texts = [f"text number {i}" for i in range(40)]
    out = e.embed(texts)
    assert inner.calls == [16, 16, 8]  # slices of 16
    assert asked[:4] == [1.0] * 4 and len(asked) == 6  # waited 3 checks, then one check a slice
    assert np.allclose(out, inner.embed(texts))
    assert (e.name, e.dimension) == (inner.name, inner.dimension)


def test_ingest_is_never_starved():
    inner = HashEmbedder()
    e = YieldingEmbedder(inner, lambda quiet: True, quiet=1.0, max_wait=0.05)  # questions never stop
    assert e.embed(["a", "b"]).shape == (2, inner.dimension) and inner.calls == [2]
    assert e.embed([]).shape == (0, inner.dimension)
