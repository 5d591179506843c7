"""The adjoint of an embedding look-up `table[index]` (an integer array index) is written
as `scatter_rows(index, g, shape)`: the same sums as np.add.at into zeros."""
import numpy as np
import pytest

import s2s_ad as ad
from s2s_ad import reference
from s2s_ad.runtime import scatter_rows
from helpers import function_from_source


@pytest.mark.parametrize("table_shape,index_shape", [
    ((7,), (12,)), ((7, 3), (12,)), ((7, 3), (4, 5)), ((5, 2, 3), (6,)), ((4, 3), (0,)),
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scatter_rows_sums_like_add_at(table_shape, index_shape, dtype):
    rng = np.random.default_rng(0)
    index = rng.integers(-table_shape[0], table_shape[0], index_shape)
    v = rng.standard_normal(index_shape + table_shape[1:]).astype(dtype)
    expected = np.zeros(table_shape, dtype)
    np.add.at(expected, index, v)
    got = scatter_rows(index, v, table_shape)
    assert got.dtype == dtype and got.shape == table_shape
    # (float32: the sums are added in another order)
    np.testing.assert_allclose(got, expected, rtol=1e-6 if dtype == np.float32 else 1e-12,
                               atol=1e-6 if dtype == np.float32 else 0)


EMBED = """
def f(table, idx, w):
    e = table[idx]
    return np.sum(np.tanh(e) * w)
"""


@pytest.mark.parametrize("table_shape,index_shape", [((6, 3), (4, 5)), ((6,), (9,))])
def test_embedding_gradient_uses_scatter_rows_and_is_right(table_shape, index_shape):
    f = function_from_source(EMBED)
    rng = np.random.default_rng(1)
    table = rng.standard_normal(table_shape)
    idx = rng.integers(0, table_shape[0], index_shape)
    w = rng.standard_normal(index_shape + table_shape[1:])
    g = ad.grad(f)
    np.testing.assert_allclose(g(table, idx, w), reference.grad(f, [table, idx, w], 0),
                               rtol=1e-10, atol=1e-12)
    assert "scatter_rows(idx, " in ad.source(g), ad.source(g)
    ad.check_grads(f, [table, idx, w], order=2, wrt=0)
    g32 = ad.grad(f)(table.astype(np.float32), idx, w.astype(np.float32))
    assert g32.dtype == np.float32
