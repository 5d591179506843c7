"""Elementwise regions walked back in one step (s2s_ad/pointwise.py): `x_bar = y_bar * dy/dx`
with dy/dx simplified while it is built. Checked in both modes, at second order, in float32,
against the reference and finite differences; and that the backward sweep really is one
statement with like terms collected."""
import numpy as np
import pytest

import s2s_ad as ad
from s2s_ad import reference
from s2s_ad.pointwise import Poly, emit
from s2s_ad import astb
from helpers import function_from_source

GELU = """
def f(x, w):
    h = 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * (x * x * x))))
    return np.sum(h * w)
"""

BODIES = [
    "y = x * x * x",                                   # like terms: 3.0 * x ** 2
    "y = 2.0 * (x * x) - x / 3.0 + 1.0",
    "y = np.sin(np.cos(x)) * x",                       # calls stay names: np.cos(t) kept
    "y = (x + 1.0) / (x * x + 2.0)",                   # a quotient of two sums
    "y = 1.0 / (1.0 + np.exp(-x))",                    # sigmoid
    "y = np.tanh(x) * np.tanh(x) - x",
    "y = np.sqrt(x * x + 1.0) - np.log1p(x * x)",
    "y = -x * (x - x)",                                # cancels: derivative 0 * ...
    "y = x / 2.0 - x * 0.5 + x",                       # linear, a number derivative
    "t = np.exp(0.5 * x)\n    y = t * t",
]


def _program(body):
    return function_from_source(f"def f(x, w):\n    {body}\n    return np.sum(y * w)\n")


def _args(dtype=np.float64, shape=(3, 4)):
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 1.5, shape).astype(dtype)
    return x, rng.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("body", BODIES + ["GELU"])
def test_region_derivatives_both_modes_second_order(body):
    f = function_from_source(GELU) if body == "GELU" else _program(body)
    x, w = _args()
    np.testing.assert_allclose(ad.grad(f)(x, w), reference.grad(f, [x, w], 0), rtol=1e-9,
                               atol=1e-12)
    ad.check_grads(f, [x, w], order=2)


@pytest.mark.parametrize("body", BODIES + ["GELU"])
def test_region_derivatives_keep_float32(body):
    f = function_from_source(GELU) if body == "GELU" else _program(body)
    x, w = _args(np.float32)
    g = ad.grad(f)(x, w)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, reference.grad(f, [x.astype(float), w.astype(float)], 0),
                               rtol=2e-4, atol=1e-5)
    ad.check_grads(f, [x, w], order=2)


def test_gelu_backward_is_one_statement_with_the_cube_collected():
    f = function_from_source(GELU)
    source = ad.source(ad.grad(f, wrt=0), *_args())
    backward = source.split("-- backward sweep --")[1]
    lines = [s.strip() for s in backward.splitlines() if s.strip() and not s.strip().startswith(("#", "del"))]
    # x_bar = w * (...) and the return: no adjoint per intermediate of the region
    assert len(lines) == 2, backward
    assert "0.134145" in lines[0] or "0.1341" in lines[0] or "0.0535" in lines[0], backward
    assert "_bar" not in lines[0].split("=")[1].replace("x_bar", ""), backward


def test_cube_gives_three_x_squared():
    f = _program("y = x * x * x")
    source = ad.source(ad.grad(f, wrt=0), *_args())
    backward = source.split("-- backward sweep --")[1]
    assert "3.0 * (x * x)" in backward, backward


def test_an_intermediate_read_elsewhere_ends_the_region():
    # t is read by the return as well: its adjoint gets both contributions.
    f = function_from_source("def f(x, w):\n    t = x * x\n    y = np.tanh(t) * t\n"
                             "    return np.sum(y * w) + np.sum(t)\n")
    x, w = _args()
    np.testing.assert_allclose(ad.grad(f)(x, w), reference.grad(f, [x, w], 0), rtol=1e-10)
    ad.check_grads(f, [x, w], order=2)


def test_broadcast_operands_are_not_in_a_region():
    # b broadcasts: x * b is not elementwise in x alone; both adjoints still right.
    f = function_from_source("def f(x, b):\n    y = np.tanh(x * b) * x\n    return np.sum(y)\n")
    rng = np.random.default_rng(2)
    x, b = rng.standard_normal((3, 4)), rng.standard_normal(4)
    for i in (0, 1):
        np.testing.assert_allclose(ad.grad(f, wrt=i)(x, b), reference.grad(f, [x, b], i),
                                   rtol=1e-10)
    ad.check_grads(f, [x, b], order=2)


def test_algebra_collects_and_folds():
    x = Poly.atom(astb.name("x"))
    cube = x * x * x
    assert astb.unparse_key(emit(cube)) == astb.unparse_key(emit(x * x * x))
    from s2s_ad.emit import unparse
    assert unparse(emit(x * Poly.number(2.0) + x)) == "3.0 * x"
    assert unparse(emit(x * x.reciprocal())) == "1.0"
    assert unparse(emit((x + Poly.number(1.0)) * Poly.number(2.0))) == "2.0 + 2.0 * x"
    assert emit(x + x * Poly.number(-1.0)).value == 0.0


@pytest.mark.parametrize("body", BODIES + ["GELU"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_large_arrays_build_the_derivative_in_place(body, dtype):
    # >= 64 KiB: the derivative is written as in-place statements (pointwise.emit_inplace).
    # Every function here is elementwise in x, so a corner of the large gradient (and hvp)
    # must equal the reference's on that corner alone (the oracle is slow on large arrays).
    f = function_from_source(GELU) if body == "GELU" else _program(body)
    x, w = _args(dtype, shape=(128, 160))
    v = np.random.default_rng(3).standard_normal(x.shape).astype(dtype)
    corner = (slice(0, 3), slice(0, 5))
    small = [x[corner].astype(float), w[corner].astype(float)]
    tol = dict(rtol=2e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-12)
    got = ad.grad(f)(x, w)
    assert got.dtype == dtype
    np.testing.assert_allclose(got[corner], reference.grad(f, small, 0), **tol)
    np.testing.assert_allclose(ad.hvp(f)(x, w, v)[corner],
                               reference.hvp(f, small, 0, v[corner].astype(float)), **tol)


def test_gelu_in_place_statements():
    f = function_from_source(GELU)
    source = ad.source(ad.grad(f, wrt=0), *_args(shape=(128, 160)))
    backward = source.split("-- backward sweep --")[1]
    assert "x_bar *= w" in backward, backward
    assert backward.count(" = ") <= 3, backward   # x_bar, one temporary and the return


def test_a_long_chain_of_squares_compiles_quickly_and_right():
    # Written out, t * t of a sum repeats the sum: 24 squarings would be 2 ** 24 factors.
    body = "\n".join("    t = t * t + x * 0.5" for _ in range(24))
    f = function_from_source(f"def f(x):\n    t = x\n{body}\n    return np.sum(np.tanh(t))\n")
    x = np.full(3, 0.1)
    np.testing.assert_allclose(ad.grad(f)(x), reference.grad(f, [x], 0), rtol=1e-10)
