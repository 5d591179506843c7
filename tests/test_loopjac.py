"""Elementwise loops: the backward sweep multiplies the adjoint by the product of every
iteration's local derivative, computed on all iterations at once (s2s_ad/loopjac.py)."""
import numpy as np
import pytest

import s2s_ad as ad
from s2s_ad import reference
from helpers import function_from_source

FAST = "all iterations at once"

FUSED = [
    "x = np.sin(x) * 0.9 + 0.1 * np.cos(x) * x",
    "x = np.tanh(x * w) + 0.5 * x",
    "x = np.exp(-x * x) + x",
    "x = x + 1.0",
    "x = np.sqrt(x * x + 1.0) - 0.5 * x",
    "x = x * x * 0.5 + w",
]


def _check(body, x, steps=7, expect_fast=True, rtol=1e-10):
    f = function_from_source(
        f"def f(x, w):\n    for i in range({steps}):\n        {body}\n    return np.sum(x * x * w)\n")
    w = np.linspace(0.5, 1.5, x.shape[-1] if x.ndim else 1).astype(x.dtype)
    if not x.ndim:
        w = w[0]
    g = ad.grad(f)
    got = g(x, w)
    ref = reference.grad(f, [x.astype(float), np.asarray(w, float)], 0)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=1e-12)
    assert np.asarray(got).dtype == x.dtype
    assert (FAST in ad.source(g)) == expect_fast, ad.source(g)
    return f, w


@pytest.mark.parametrize("body", FUSED)
@pytest.mark.parametrize("shape", [(), (5,), (2, 5)])
def test_elementwise_loops_fuse_and_stay_right(body, shape):
    x = np.random.default_rng(0).uniform(-0.8, 0.8, shape)
    f, w = _check(body, x)
    v = np.random.default_rng(1).standard_normal(shape)
    np.testing.assert_allclose(ad.hvp(f)(x, w, v), reference.hvp(f, [x, w], 0, v),
                               rtol=1e-8, atol=1e-10)


def test_float32_stays_float32():
    _check(FUSED[0], np.random.default_rng(0).uniform(-1, 1, 6).astype(np.float32), rtol=1e-4)


@pytest.mark.parametrize("body", [
    "x = np.sin(x) + 0.01 * i",              # reads the loop index
    "x = np.maximum(x, 0.1) * 0.9",          # a mask as partial derivative
    "x = np.sin(x) * w",                     # fine alone ...
])
def test_fallbacks_and_borderline_cases_are_right(body):
    fast = body == "x = np.sin(x) * w"       # ... w is a constant here (wrt x only)
    _check(body, np.random.default_rng(0).uniform(-0.8, 0.8, 5), expect_fast=fast)


def test_an_outer_value_with_a_derivative_keeps_the_general_loop():
    f = function_from_source("def f(x, w):\n    for i in range(4):\n        x = np.sin(x * w)\n"
                             "    return np.sum(x)\n")
    x, w = np.array([0.3, 0.7]), np.array([0.9, 1.1])
    g = ad.grad(f, wrt=(0, 1))
    gx, gw = g(x, w)
    np.testing.assert_allclose(gx, reference.grad(f, [x, w], 0), rtol=1e-10)
    np.testing.assert_allclose(gw, reference.grad(f, [x, w], 1), rtol=1e-10)
    assert FAST not in ad.source(g)


def test_zero_iterations_keep_the_general_loop():
    _check("x = np.sin(x)", np.array([0.3, 0.7]), steps=0, expect_fast=False)
