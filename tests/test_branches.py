"""`if` / `elif` / `else` and early returns, in grad, jvp and hvp, for inputs that take
every branch."""
import numpy as np
import pytest

import branches_src as B
import s2s_ad as ad
from helpers import assert_tree_close, check_forward, check_hvp, numeric_grad

R = np.random.default_rng(13)
POS, NEG = R.uniform(0.5, 1.5, size=4), -R.uniform(0.5, 1.5, size=4)

CASES = [
    (B.relu_or_tanh, [R.normal(size=5), True], (0,)),
    (B.relu_or_tanh, [R.normal(size=5), False], (0,)),
    (B.data_dependent, [POS], (0,)),
    (B.data_dependent, [NEG], (0,)),
    (B.elif_chain, [POS * 3], (0,)),
    (B.elif_chain, [POS], (0,)),
    (B.elif_chain, [NEG], (0,)),
    (B.early_return, [POS, NEG], (0, 1)),
    (B.early_return, [POS, POS], (0, 1)),
    (B.only_then, [POS], (0,)),
    (B.only_then, [NEG], (0,)),
    (B.branch_in_loop, [POS], (0,)),
    (B.nested_branches, [POS, 1], (0,)),
    (B.nested_branches, [NEG, 1], (0,)),
    (B.nested_branches, [POS, -1], (0,)),
]
IDS = [f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(CASES)]


@pytest.mark.parametrize("f,args,wrt", CASES, ids=IDS)
def test_branch_gradient(f, args, wrt):
    value, grads = ad.value_and_grad(f, wrt=wrt)(*args)
    assert np.isclose(value, f(*args))
    for g, i in zip(grads, wrt):
        assert_tree_close(g, numeric_grad(f, args, i), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("f,args,wrt", CASES, ids=IDS)
def test_branch_forward_and_hvp(f, args, wrt):
    check_forward(f, args, wrt, np.random.default_rng(1))
    check_hvp(f, args, wrt[0], np.random.default_rng(2))


def test_one_specialisation_serves_both_branches():
    """The first call sees one branch; a later call with the same shapes that takes the
    other branch records it and regenerates the code, then both run from the cache."""
    df = ad.grad(B.data_dependent)
    g_pos = df(POS)
    g_neg = df(NEG)
    assert_tree_close(g_neg, numeric_grad(B.data_dependent, [NEG], 0), rtol=1e-5)
    assert_tree_close(df(POS), g_pos)
    src = ad.source(df)
    assert "unrecorded" not in src
    assert "t1 = s > 0" in src and "if t1:" in src and "if not t1:" in src
