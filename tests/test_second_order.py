"""jvp / hvp / jacobian / hessian / third order through composition, and check_grads."""
import numpy as np
import pytest

import s2s_ad as ad
from helpers import function_from_source
from s2s_ad import reference
from models_src import attention_loss, mlp_loss

R = np.random.default_rng(21)
vec = function_from_source("def vec(x, W):\n    return np.tanh(W @ x) * x[0]\n", "vec")
scal = function_from_source(
    "def scal(x):\n    return np.sum(np.sin(x) * x ** 2) + x[0] * x[1]\n", "scal")
cubic = function_from_source("def cubic(x):\n    return np.sin(x) * x ** 3\n", "cubic")


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_jacobian_modes_agree_with_finite_differences(mode):
    x, W = R.normal(size=3), R.normal(size=(4, 3))
    J = ad.jacobian(vec, mode=mode)(x, W)
    eps = 1e-6
    numeric = np.stack([(vec(x + eps * e, W) - vec(x - eps * e, W)) / (2 * eps)
                        for e in np.eye(3)], axis=-1)
    assert J.shape == (4, 3)
    np.testing.assert_allclose(J, numeric, rtol=1e-6, atol=1e-8)


def test_jacobian_of_matrix_argument_shape():
    x, W = R.normal(size=3), R.normal(size=(4, 3))
    J = ad.jacobian(vec, wrt="W")(x, W)
    assert J.shape == (4, 4, 3)
    np.testing.assert_allclose(J, ad.jacobian(vec, wrt=1, mode="forward")(x, W), rtol=1e-12)


def test_hessian_is_symmetric_and_matches_differences_of_the_gradient():
    x = R.normal(size=3)
    H = ad.hessian(scal)(x)
    g = ad.grad(scal)
    numeric = np.stack([(g(x + 1e-5 * e) - g(x - 1e-5 * e)) / 2e-5 for e in np.eye(3)])
    np.testing.assert_allclose(H, numeric, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(H, H.T, rtol=1e-12)


def test_third_derivative_by_composing_grad():
    d3 = ad.grad(ad.grad(ad.grad(cubic)))
    x = 0.7
    exact = (-np.cos(x) * x ** 3 - 9 * np.sin(x) * x ** 2 + 18 * np.cos(x) * x
             + 6 * np.sin(x))
    assert d3(x) == pytest.approx(exact, rel=1e-12)


def test_hvp_source_is_forward_mode_over_the_adjoint():
    h = ad.hvp(scal)
    h(R.normal(size=3), R.normal(size=3))
    src = ad.source(h)
    assert "def hvp_grad_scal(x, x_dot):" in src
    assert "forward mode over the generated adjoint grad_scal" in src


def test_jvp_with_tuple_wrt_and_wrong_tangent_shape():
    x, W = R.normal(size=3), R.normal(size=(4, 3))
    value, d = ad.jvp(vec, wrt=(0, 1))(x, W, (np.ones(3), np.zeros((4, 3))))
    np.testing.assert_allclose(d, ad.jacobian(vec)(x, W) @ np.ones(3), rtol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        ad.jvp(vec)(x, W, np.ones(4))


def test_check_grads_passes_on_models_and_catches_a_wrong_rule():
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(5, 7)) * .5, "b1": rng.normal(size=7),
              "W2": rng.normal(size=(7, 3)) * .5, "b2": rng.normal(size=3)}
    ad.check_grads(mlp_loss, [params, rng.normal(size=(6, 5)), rng.integers(0, 3, size=6)])
    C = 4
    p = {"gamma": 1 + 0.1 * rng.normal(size=C), "beta": 0.1 * rng.normal(size=C),
         **{k: rng.normal(size=(C, C)) * 0.5 for k in ("Wq", "Wk", "Wv", "Wo")}}
    ad.check_grads(attention_loss, [p, rng.normal(size=(2, 3, C)), rng.normal(size=(2, 3, C))],
                   wrt=0)
    ad.check_grads(vec, [R.normal(size=3), R.normal(size=(4, 3))], order=1)

    wrong = function_from_source("def wrong(x):\n    return np.sum(mysoftplus(x))\n\n\n"
                                 "def mysoftplus(x):\n    return np.log1p(np.exp(x))\n", "wrong")
    import sys
    mod = sys.modules[wrong.__module__]
    ad.defrule(mod.mysoftplus, "x", partials={"x": "1.0 / (1.0 + np.exp(x))"})  # wrong sign
    with pytest.raises(AssertionError, match="jvp of wrong along a random direction"):
        ad.check_grads(wrong, [R.normal(size=4)], order=1, modes=("fwd",))


def test_check_grads_float32():
    f = function_from_source("def f32(x):\n    return np.sum(np.tanh(x) ** 2)\n", "f32")
    ad.check_grads(f, [R.normal(size=5).astype(np.float32)])


def test_hvp_keeps_float32_where_a_loop_resets_a_scalar_adjoint():
    # The adjoint resets s_bar to the Python number 0.0 at the end of each iteration (a
    # weak scalar); forward mode over it broadcast that tangent alone to b's shape, which
    # made it, and the whole Hessian-vector product, float64. Found by the nightly profile.
    f = function_from_source(
        "def reset(x):\n    a = np.tanh(x)\n    for i in range(3):\n        b = np.tanh(a)\n"
        "        s = np.sum(b)\n    return np.sum(x * x) + np.tanh(s)\n", "reset")
    x, v = np.array([0.3, 0.2], np.float32), np.array([1.0, -0.5], np.float32)
    h = ad.hvp(f)(x, v)
    assert h.dtype == np.float32
    exact = reference.hvp(f, [x.astype(np.float64)], 0, v.astype(np.float64))
    np.testing.assert_allclose(h, exact, rtol=1e-5)
    ad.check_grads(f, [x])
