"""Whole models: gradients of an MLP with softmax cross-entropy and of a causal
self-attention block with layer norm, against finite differences."""
import numpy as np

import s2s_ad as ad
from helpers import assert_tree_close, check_forward, check_hvp, numeric_grad
from models_src import attention_loss, mlp_loss


def mlp_params(rng, dtype=np.float64):
    return {"W1": rng.normal(size=(5, 7)).astype(dtype) * 0.5, "b1": rng.normal(size=7).astype(dtype),
            "W2": rng.normal(size=(7, 3)).astype(dtype) * 0.5, "b2": rng.normal(size=3).astype(dtype)}


def test_mlp_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    params, x, y = mlp_params(rng), rng.normal(size=(6, 5)), rng.integers(0, 3, size=6)
    value, g = ad.value_and_grad(mlp_loss)(params, x, y)
    assert np.isclose(value, mlp_loss(params, x, y))
    assert_tree_close(g, numeric_grad(mlp_loss, [params, x, y], 0), rtol=1e-5, atol=1e-7)


def test_mlp_float32_keeps_dtype():
    rng = np.random.default_rng(2)
    params, x, y = mlp_params(rng, np.float32), rng.normal(size=(6, 5)).astype(np.float32), \
        rng.integers(0, 3, size=6)
    g = ad.grad(mlp_loss)(params, x, y)
    for key in params:
        assert g[key].dtype == np.float32
    g64 = ad.grad(mlp_loss)({k: v.astype(np.float64) for k, v in params.items()}, x.astype(np.float64), y)
    assert_tree_close(g, g64, rtol=1e-3, atol=1e-4)


def test_attention_gradient_matches_finite_differences():
    rng = np.random.default_rng(3)
    C = 4
    p = {"gamma": 1 + 0.1 * rng.normal(size=C), "beta": 0.1 * rng.normal(size=C),
         **{k: rng.normal(size=(C, C)) * 0.5 for k in ("Wq", "Wk", "Wv", "Wo")}}
    x, target = rng.normal(size=(2, 5, C)), rng.normal(size=(2, 5, C))
    g_p, g_x = ad.grad(attention_loss, wrt=("p", "x"))(p, x, target)
    assert_tree_close(g_p, numeric_grad(attention_loss, [p, x, target], 0), rtol=1e-5, atol=1e-7)
    assert_tree_close(g_x, numeric_grad(attention_loss, [p, x, target], 1), rtol=1e-5, atol=1e-7)


def test_models_forward_mode():
    rng = np.random.default_rng(4)
    params, x, y = mlp_params(rng), rng.normal(size=(6, 5)), rng.integers(0, 3, size=6)
    check_forward(mlp_loss, [params, x, y], (0,), rng)
    C = 4
    p = {"gamma": 1 + 0.1 * rng.normal(size=C), "beta": 0.1 * rng.normal(size=C),
         **{k: rng.normal(size=(C, C)) * 0.5 for k in ("Wq", "Wk", "Wv", "Wo")}}
    check_forward(attention_loss, [p, rng.normal(size=(2, 5, C)), rng.normal(size=(2, 5, C))],
                  (0, 1), rng)


def test_models_hvp():
    rng = np.random.default_rng(6)
    params, x, y = mlp_params(rng), rng.normal(size=(6, 5)), rng.integers(0, 3, size=6)
    check_hvp(mlp_loss, [params, x, y], 0, rng)
    C = 4
    p = {"gamma": 1 + 0.1 * rng.normal(size=C), "beta": 0.1 * rng.normal(size=C),
         **{k: rng.normal(size=(C, C)) * 0.5 for k in ("Wq", "Wk", "Wv", "Wo")}}
    args = [p, rng.normal(size=(2, 5, C)), rng.normal(size=(2, 5, C))]
    check_hvp(attention_loss, args, 0, rng)
    check_hvp(attention_loss, args, 1, rng)
