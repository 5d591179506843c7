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
    # x itself and np.tanh(...) only: 0.5 * x, x * x and 1.0 + tanh are written out in
    # the derivative (an elementwise region, s2s_ad/pointwise.py), not kept
    assert len(kept - {"x", "c"}) == 1, source
    v = rng.standard_normal(x.shape)
    np.testing.assert_allclose(ad.hvp(f)(x, c, v), reference.hvp(f, [x, c], 0, v), rtol=1e-9)


def test_values_read_twice_stay_kept():
    # Both matrix adjoints read y: recomputing it twice would cost more than keeping it.
    f = function_from_source("def f(x, W, V):\n    y = 2.0 * x\n"
                             "    return np.sum(np.tanh(y @ W)) + np.sum(np.sin(y @ V))\n")
    rng = np.random.default_rng(0)
    x, W, V = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    g = ad.grad(f, wrt=(1, 2))
    for got, i in zip(g(x, W, V), (1, 2)):
        np.testing.assert_allclose(got, reference.grad(f, [x, W, V], i), rtol=1e-10)
    assert "y" in _kept(ad.source(g))


def test_a_cheap_value_read_once_by_a_matmul_adjoint_is_recomputed():
    # W_bar = h.T @ g reads h = 0.5 * x once: written out there, not kept.
    f = function_from_source("def f(x, W):\n    h = 0.5 * x\n    return np.sum(np.tanh(h @ W))\n")
    rng = np.random.default_rng(0)
    x, W = rng.standard_normal((4, 3)), rng.standard_normal((3, 2))
    g = ad.grad(f, wrt=1)
    np.testing.assert_allclose(g(x, W), reference.grad(f, [x, W], 1), rtol=1e-10)
    source = ad.source(g)
    assert "h" not in _kept(source), source
    assert "(0.5 * x)" in source, source
