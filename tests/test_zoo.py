"""The zoo: combinations of control flow, helpers and containers, in grad, jvp and hvp."""
import numpy as np
import pytest

import s2s_ad as ad
import zoo_src as Z
from helpers import assert_tree_close, check_forward, check_hvp, numeric_grad

R = np.random.default_rng(17)
CASES = [
    (Z.helper_with_branch_in_loop, [R.uniform(0.1, 1, size=3), R.normal(size=3)], (0, 1)),
    (Z.helper_with_branch_in_loop, [-R.uniform(0.1, 1, size=3), R.normal(size=3)], (0, 1)),
    (Z.while_in_helper, [R.normal(size=4)], (0,)),
    (Z.nested_loops_with_branch, [R.normal(size=(2, 3))], (0,)),
    (Z.early_return_after_loop, [R.normal(size=3)], (0,)),
    (Z.early_return_after_loop, [R.uniform(20, 30, size=3)], (0,)),
    (Z.enumerate_with_break, [[R.normal(size=3) for _ in range(4)], R.normal(size=3)], (0, 1)),
    (Z.item_assignment_in_branch, [R.uniform(0.1, 1, size=3)], (0,)),
    (Z.item_assignment_in_branch, [-R.uniform(0.1, 1, size=3)], (0,)),
    (Z.closure_in_loop, [R.normal(size=(2, 3)), R.normal(size=(3, 3)) * 0.5], (0, 1)),
    (Z.tuple_returns_in_loop, [[R.uniform(0.5, 1, size=3), R.uniform(0.5, 1, size=4)]], (0,)),
    (Z.comprehension_with_condition, [[R.normal(size=3), R.normal(size=4), R.normal(size=3)],
                                      R.normal(size=3)], (1,)),
    (Z.dict_params_loop, [{"a": R.normal(size=3), "b": R.normal(size=3)}, R.normal(size=3)], (0, 1)),
    (Z.while_with_continue, [R.normal(size=3)], (0,)),
    (Z.augmented_everything, [R.uniform(0.5, 1.5, size=3)], (0,)),
    (Z.float_argument_loop, [0.7, R.normal(size=3)], (0, 1)),
    (Z.return_inside_loop, [R.uniform(0.5, 1, size=3), R.uniform(0.5, 1, size=3)], (0, 1)),
    (Z.return_inside_loop, [R.uniform(-0.3, -0.1, size=3), R.uniform(0.5, 1, size=3)], (0, 1)),
    (Z.return_inside_nested_loop, [R.uniform(0.5, 1, size=3)], (0,)),
    (Z.return_inside_nested_loop, [R.uniform(0.01, 0.02, size=3)], (0,)),
    (Z.mask_assignment, [R.normal(size=5), R.normal(size=5)], (0, 1)),
]
IDS = [f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(CASES)]


@pytest.mark.parametrize("f,args,wrt", CASES, ids=IDS)
def test_zoo_gradient(f, args, wrt):
    value, grads = ad.value_and_grad(f, wrt=wrt)(*args)
    assert np.isclose(value, f(*args))
    for g, i in zip(grads, wrt):
        assert_tree_close(g, numeric_grad(f, args, i), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("f,args,wrt", CASES, ids=IDS)
def test_zoo_forward_and_hvp(f, args, wrt):
    check_forward(f, args, wrt, np.random.default_rng(1))
    check_hvp(f, args, wrt[0], np.random.default_rng(2))
