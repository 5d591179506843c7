"""Dead arrays updated in place (s2s_ad/inplace.py) and sums of products as one einsum
(s2s_ad/contract.py). Each case is checked against the reference and finite differences
in both modes at second order, in float32 where it matters; the cases where an in-place
update would be wrong (a view still read, a wider result, a different dtype, a narrow
adjoint, an array a loop keeps) check that the code does not do it, and that the
numbers are right."""
import numpy as np
import pytest

import s2s_ad as ad
from s2s_ad import reference
from helpers import function_from_source

N = 6


@pytest.fixture(autouse=True)
def small_arrays_count(monkeypatch):
    """The passes leave arrays under 64 KiB alone; here every array counts, so that the
    cases stay small enough for the reference's exact derivatives."""
    import s2s_ad.inplace
    import s2s_ad.release
    monkeypatch.setattr(s2s_ad.inplace, "RELEASE_BYTES", 1)
    monkeypatch.setattr(s2s_ad.release, "RELEASE_BYTES", 1)


def _rng_args(*shapes, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.5, 1.5, s).astype(dtype) for s in shapes]


def _body(transformed, *args):
    """The generated statements (no docstring, no comments)."""
    src = ad.source(transformed, *args)
    body = src.split('"""')[-1]
    return [line.strip() for line in body.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def _check(f, args, rtol=1e-8, wrt=None):
    for i in wrt or range(len(args)):
        np.testing.assert_allclose(ad.grad(f, wrt=i)(*args), reference.grad(f, list(args), i),
                                   rtol=rtol, atol=1e-10)
    ad.check_grads(f, list(args), order=2)


LAYER = """
def f(x, W, b, c):
    h = x @ W + b
    h = h * 0.5
    return np.sum(np.tanh(h) * c)
"""


def test_bias_add_is_in_place_and_right():
    f = function_from_source(LAYER)
    args = _rng_args((N, N), (N, N), (N,), (N, N))
    copies = [a.copy() for a in args]
    _check(f, args)
    for a, c in zip(args, copies):
        np.testing.assert_array_equal(a, c)           # the inputs are never written
    body = _body(ad.value_and_grad(f, wrt=(0, 1, 2, 3)), *args)
    assert "h += b" in body, body
    assert any(line.endswith("*= 0.5") for line in body), body


def test_float32_stays_float32():
    f = function_from_source(LAYER)
    args = _rng_args((N, N), (N, N), (N,), (N, N), dtype=np.float32)
    g = ad.grad(f, wrt=(0, 1, 2, 3))(*args)
    assert all(x.dtype == np.float32 for x in g)
    ref = [reference.grad(f, [a.astype(float) for a in args], i) for i in range(4)]
    for x, r in zip(g, ref):
        np.testing.assert_allclose(x, r, rtol=2e-4, atol=1e-5)


VIEW_STILL_READ = """
def f(x):
    y = x * 2.0
    v = y.T
    y = y + 1.0
    return np.sum(y * v)
"""

WIDER_RESULT = """
def f(x, r):
    y = x * 2.0
    y = y + r
    return np.sum(y * y)
"""

MIXED_DTYPE = """
def f(x, w):
    y = x * 2.0
    y = y + w
    return np.sum(y * y)
"""

NARROW_ADJOINT = """
def f(x, g):
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    y = xc / np.sqrt(var + 1e-5) * g
    return np.sum(y * y * x)
"""

LOOP_KEEPS_IT = """
def f(x, n):
    y = x * 1.5
    s = 0.0
    for i in range(n):
        s = s + np.sum(np.sin(y) * x)
        y = y + x
    z = y * 3.0
    return s + np.sum(z)
"""


def test_no_update_of_an_array_a_view_of_which_is_read_later():
    f = function_from_source(VIEW_STILL_READ)
    (x,) = _rng_args((N, N))
    _check(f, [x])
    body = _body(ad.value_and_grad(f), x)
    assert not any(line.startswith("y +=") for line in body), body


def test_no_update_when_the_result_is_wider():
    f = function_from_source(WIDER_RESULT)
    x, r = _rng_args((N,), (3, N))   # y + r is (3, 6): larger than y
    _check(f, [x, r])


def test_no_update_when_the_result_has_another_dtype():
    f = function_from_source(MIXED_DTYPE)
    (x,) = _rng_args((N, N), dtype=np.float32)
    (w,) = _rng_args((N, N), seed=1)               # float64: z is float64
    g = ad.grad(f, wrt=1)(x, w)
    assert g.dtype == np.float64
    np.testing.assert_allclose(g, reference.grad(f, [x.astype(float), w], 1), rtol=1e-6)
    body = _body(ad.value_and_grad(f, wrt=1), x, w)
    assert not any(line.startswith("y +=") for line in body), body


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_narrow_adjoints_are_not_updated_into(dtype):
    f = function_from_source(NARROW_ADJOINT)
    x, g = _rng_args((2, 3, 8), (8,), dtype=dtype)
    if dtype == np.float64:
        _check(f, [x, g], rtol=1e-7)
    else:
        ref = reference.grad(f, [x.astype(float), g.astype(float)], 0)
        np.testing.assert_allclose(ad.grad(f)(x, g), ref, rtol=2e-3, atol=1e-4)


def test_an_array_a_loop_reads_is_not_updated():
    f = function_from_source(LOOP_KEEPS_IT)
    (x,) = _rng_args((N, N))
    _check(f, [x, 3], wrt=[0])


def test_chains_update_one_array():
    f = function_from_source("""
def f(x, a, b):
    y = x @ a
    z = (y + b) * 0.5 - b
    return np.sum(z * z)
""")
    args = _rng_args((N, N), (N, N), (N,))
    _check(f, args)
    body = _body(ad.value_and_grad(f, wrt=(0, 1, 2)), *args)
    assert any("+= b" in line for line in body) and any("*= 0.5" in line for line in body), body


# -- sums of products as einsum ----------------------------------------------------------

ROW_SUMS = """
def f(x, g):
    p = np.exp(x - np.max(x, axis=-1, keepdims=True))
    p = p / np.sum(p, axis=-1, keepdims=True)
    return np.sum(p * g)
"""

SCALE = """
def f(x, s):
    y = x * s
    return np.sum(np.tanh(y))
"""


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_adjoint_row_sum_is_an_einsum(dtype):
    f = function_from_source(ROW_SUMS)
    x, g = _rng_args((2, 3, 5), (2, 3, 5), dtype=dtype)
    body = " ".join(_body(ad.value_and_grad(f), x, g))
    assert "np.einsum('abc,abc->ab'" in body, body
    if dtype == np.float64:
        _check(f, [x, g])
    else:
        r = ad.grad(f)(x, g)
        assert r.dtype == np.float32
        np.testing.assert_allclose(r, reference.grad(f, [x.astype(float), g.astype(float)], 0),
                                   rtol=1e-3, atol=1e-5)


def test_scale_gradient_is_an_einsum_over_leading_axes():
    f = function_from_source(SCALE)
    x, s = _rng_args((2, 3, 4), (4,))
    body = " ".join(_body(ad.value_and_grad(f, wrt=1), x, s))
    assert "np.einsum('abc,abc->c'" in body, body
    _check(f, [x, s])


def test_full_sums_stay_np_sum():
    """A full sum keeps np.sum's pairwise summation (einsum adds in one running total)."""
    from s2s_ad.contract import _einsum
    from s2s_ad import astb
    info = {"a": ((N, N), np.dtype(np.float32)), "b": ((N, N), np.dtype(np.float32)),
            "c": ((N,), np.dtype(np.float32))}.get
    assert _einsum(astb.parse_expr("np.sum(a * b)"), info) is None
    assert _einsum(astb.parse_expr("np.sum(a * c, axis=0)"), info) is None   # broadcasts
    assert _einsum(astb.parse_expr("np.sum(a * b, axis=0)"), info) is not None


def test_a_chain_that_reads_the_operand_again_is_left_alone():
    """`y * 2.0 + y` as `y *= 2.0; y += y` would give 4y, not 3y."""
    f = function_from_source("""
def f(x):
    y = x * 1.5
    y = y * 2.0 + y
    return np.sum(np.sin(y))
""")
    (x,) = _rng_args((N, N))
    _check(f, [x])
    np.testing.assert_allclose(ad.value_and_grad(f)(x)[0], np.sum(np.sin(4.5 * x)))


def test_a_user_name_takes_over_another_users_dead_array():
    """Two names of the user's with different meanings both stay: `z = y; z -= 1.0`."""
    f = function_from_source("""
def f(x, w):
    y = x * w
    z = y - 1.0
    return np.sum(np.tanh(z))
""")
    args = _rng_args((N, N), (N, N))
    _check(f, args)
    body = _body(ad.value_and_grad(f, wrt=(0, 1)), *args)
    assert "z = y" in body and "z -= 1.0" in body, body


def test_an_alias_a_loop_read_is_not_updated_into():
    """Found by the nightly property profile: `v2 = v1` before a loop whose body takes a view
    of v2 (kept after the loop); v1 (np.tanh(x0), shared with a later use) must not then be
    scaled in place, or the view and the value change."""
    f = function_from_source("""
def f(x0, x1, x2):
    v1 = np.tanh(x0)
    v2 = v1
    for i in range(1):
        v3 = np.transpose(v2)
        v2 = np.tanh(v2 * x0 + 0.1 * i)
    v7 = np.exp(0.5 * np.tanh(x0))
    return np.sum(v3) + np.sum(v7)
""")
    x0, x1 = _rng_args((3,), (3,))
    x2 = np.array(0.5)
    value, tangent = ad.jvp(f, wrt=0)(x0, x1, x2, np.ones(3))
    np.testing.assert_allclose(value, f(x0, x1, x2))
    np.testing.assert_allclose(tangent, np.sum(reference.grad(f, [x0, x1, x2], 0)))
    ad.check_grads(f, [x0, x1, x2], order=2, wrt=0)


def test_a_summed_adjoint_that_is_scattered_into_stays_np_sum():
    """Found by the nightly property profile: a keepdims sum written as einsum is a view
    (np.expand_dims); an adjoint that an indexing rule then scatters into (np.add.at) must
    stay a new array, or forward mode over that adjoint (hvp) refuses the update."""
    f = function_from_source("""
def f(x0, x1):
    v3 = np.tanh(np.tanh(x0))
    v9 = np.tanh(x0 + x1)
    v10 = v3[np.array([0, 0, 0])]
    v12 = np.tanh(v9 * v3)
    return np.sum(v10) + np.sum(v12)
""")
    x0 = np.full((1, 1, 1), 0.3)
    (x1,) = _rng_args((2,))
    ad.check_grads(f, [x0, x1], order=2)
    v = np.ones_like(x0)
    eps = 1e-6
    fd = (ad.grad(f)(x0 + eps * v, x1) - ad.grad(f)(x0 - eps * v, x1)) / (2 * eps)
    np.testing.assert_allclose(ad.hvp(f)(x0, x1, v), fd, rtol=1e-6)
