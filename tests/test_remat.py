"""Cheap forward values the backward sweep reads once are recomputed there, not kept."""
import numpy as np

import s2s_ad as ad
from s2s_ad import reference
from helpers import function_from_source

GELU = """
def f(x, c):
    h = 0.5 * x * (1.0 + np.tanh(0.79788456 * (x + 0.044715 * (x * x * x))))
    return np.sum(h * c)
"""


def _kept(source):
    line = next(l for l in source.splitlines() if "Kept for the backward sweep" in l)
    return {item.split(" (")[0] for item in line.split(":", 1)[1].strip(" .").split(", ")}


def test_gelu_keeps_its_input_and_tanh_only():
    f = function_from_source(GELU)
    rng = np.random.default_rng(0)
    x, c = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    g = ad.grad(f)
    np.testing.assert_allclose(g(x, c), reference.grad(f, [x, c], 0), rtol=1e-10)
    source = ad.source(g)
    kept = _kept(source)
    # x itself and np.tanh(...) only: 0.5 * x, x * x and 1.0 + tanh are recomputed
    assert len(kept - {"x", "c"}) == 1, source
    assert "(0.5 * x)" in source, source
    v = rng.standard_normal(x.shape)
    np.testing.assert_allclose(ad.hvp(f)(x, c, v), reference.hvp(f, [x, c], 0, v), rtol=1e-9)


def test_values_read_twice_stay_kept():
    f = function_from_source("def f(x):\n    y = 2.0 * x\n    return np.sum(y * y * y)\n")
    x = np.array([0.5, -1.0])
    g = ad.grad(f)
    np.testing.assert_allclose(g(x), reference.grad(f, [x], 0))
    assert "y" in _kept(ad.source(g))
