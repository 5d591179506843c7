"""Generated code frees large arrays (`del`) as soon as it no longer reads them."""
import numpy as np
import pytest

import s2s_ad as ad
from s2s_ad import reference
from helpers import function_from_source

SOURCE = """
def f(W, x):
    h = np.tanh(x @ W)
    z = h @ W.T
    u = np.sin(z) * h
    return np.sum(u * u)
"""


def _args():
    rng = np.random.default_rng(0)
    return rng.standard_normal((100, 100)) * 0.1, rng.standard_normal((100, 100))


def test_large_intermediates_are_deleted_and_results_unchanged():
    f = function_from_source(SOURCE)
    W, x = _args()
    vag = ad.value_and_grad(f)
    value, g = vag(W, x)
    source = ad.source(vag)
    deleted = {n.strip() for line in source.splitlines() if line.strip().startswith("del ")
               for n in line.strip()[4:].split(",")}
    assert deleted, source
    assert not deleted & {"W", "x"}            # arguments belong to the caller
    # A deleted name is never read again, and the return comes last.
    lines = source.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("del "):
            for name in line.strip()[4:].split(", "):
                later = "\n".join(lines[i + 1:])
                assert not any(tok == name for tok in _tokens(later)), (name, source)
    np.testing.assert_allclose(value, f(W, x))
    np.testing.assert_allclose(g, reference.grad(f, [W, x], 0), rtol=1e-10)


def test_small_arrays_are_not_deleted():
    f = function_from_source(SOURCE)
    g = ad.grad(f)
    g(np.ones((3, 3)), np.ones((3, 3)))
    assert "del " not in ad.source(g)


def test_hvp_reads_an_adjoint_that_deletes():
    f = function_from_source(SOURCE)
    W, x = _args()
    v = np.random.default_rng(1).standard_normal(W.shape)
    np.testing.assert_allclose(ad.hvp(f)(W, x, v), reference.hvp(f, [W, x], 0, v), rtol=1e-9)


def test_user_del_then_read_is_refused():
    f = function_from_source("def f(x):\n    y = x * 2\n    del y\n    return np.sum(y)\n")
    with pytest.raises(ad.TransformError, match="before it is assigned"):
        ad.grad(f)(np.ones(3))


def test_user_del_of_a_dead_name_is_accepted():
    f = function_from_source("def f(x):\n    y = x * 2\n    z = y * y\n    del y\n    return np.sum(z)\n")
    np.testing.assert_allclose(ad.grad(f)(np.ones(3)), 8.0 * np.ones(3))


def _tokens(text):
    import io
    import tokenize
    return [t.string for t in tokenize.generate_tokens(io.StringIO(text).readline)
            if t.type == tokenize.NAME]
