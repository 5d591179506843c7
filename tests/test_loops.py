"""`for i in range(...)` loops in reverse mode, against finite differences."""
import numpy as np
import pytest

import loops_src as L
import s2s_ad as ad
from helpers import assert_tree_close, check_forward, check_hvp, function_from_source, numeric_grad

R = np.random.default_rng(7)

CASES = [
    (L.chain, [R.normal(size=6)], (0,)),
    (L.rnn, [{"Wx": R.normal(size=(3, 4)) * .5, "Wh": R.normal(size=(4, 4)) * .5, "b": R.normal(size=4)},
             R.normal(size=(5, 2, 3)), R.normal(size=(2, 4))], (0, 2)),
    (L.accumulate_from_zero, [R.normal(size=(5, 3))], (0,)),
    (L.augmented, [R.normal(size=3), R.normal(size=3)], (0, 1)),
    (L.nested, [R.normal(size=(2, 3)) * 0.5, R.normal(size=(3, 3)) * 0.5], (0, 1)),
    (L.defined_in_loop_used_after, [R.normal(size=4)], (0,)),
    (L.overwritten_every_iteration, [R.normal(size=4), R.normal(size=4)], (0, 1)),
    (L.range_with_start_and_step, [R.uniform(0.5, 1.0, size=3), 6], (0,)),
    (L.alias_before_loop, [R.uniform(0.5, 1.0, size=3)], (0,)),
    (L.counter, [R.normal(size=6)], (0,)),
    (L.loop_reads_rows, [R.normal(size=(4, 3)), R.normal(size=4)], (0, 1)),
    (L.layers, [{"layers": [{"W": R.normal(size=(3, 3)) * .5, "b": R.normal(size=3)} for _ in range(3)]},
                R.normal(size=(2, 3))], (0, 1)),
    (L.layers_with_count, [[R.normal(size=(3, 3)) * .5, R.normal(size=(3, 3)) * .5,
                            R.normal(size=(3, 3)) * .5], R.normal(size=(2, 3)), 2], (0, 1)),
    (L.over_list, [[R.normal(size=3), R.normal(size=3)], R.normal(size=3)], (0, 1)),
    (L.over_zip_enumerate, [(R.normal(size=3), R.normal(size=3)), [R.normal(size=3)] * 2], (0, 1)),
    (L.over_rows, [R.normal(size=(4, 3)), R.normal(size=3)], (0, 1)),
    (L.build_list_then_stack, [R.normal(size=(2, 3)), R.normal(size=(3, 3)) * .5], (0, 1)),
    (L.comprehension, [[R.normal(size=3), R.normal(size=3)], R.normal(size=3)], (0, 1)),
    (L.while_halving, [R.uniform(1, 2, size=3)], (0,)),
    (L.break_when_small, [R.normal(size=(2, 3)), R.normal(size=(3, 3)) * 0.3], (0, 1)),
    (L.break_when_small, [R.normal(size=(2, 3)), R.normal(size=(3, 3)) * 1.5], (0, 1)),
    (L.continue_on_negative, [[R.uniform(0.1, 1, size=3), -R.uniform(0.1, 1, size=3),
                               R.uniform(0.1, 1, size=3)], R.normal(size=3)], (0, 1)),
    (L.while_with_break, [R.normal(size=3)], (0,)),
    (L.item_assignment, [R.normal(size=4), R.normal(size=(2, 3))], (0, 1)),
    (L.item_assignment_in_loop, [R.normal(size=3)], (0,)),
    (L.closures, [R.normal(size=3), R.normal(size=3)], (0, 1)),
    (L.make_loss(R.normal(size=3)), [R.normal(size=3)], (0,)),
    (L.ifexp_and_boolop, [R.uniform(0.5, 1, size=4), 1], (0,)),
    (L.ifexp_and_boolop, [-R.uniform(0.5, 1, size=4), 1], (0,)),
]


@pytest.mark.parametrize("f,args,wrt", CASES, ids=[c[0].__name__ for c in CASES])
def test_loop_gradient(f, args, wrt):
    value, grads = ad.value_and_grad(f, wrt=wrt)(*args)
    assert np.isclose(value, f(*args))
    for g, i in zip(grads, wrt):
        assert_tree_close(g, numeric_grad(f, args, i), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("f,args,wrt", CASES[:5], ids=[c[0].__name__ for c in CASES[:5]])
def test_loop_float32(f, args, wrt):
    args32 = [{k: v.astype(np.float32) for k, v in a.items()} if isinstance(a, dict) else
              a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in args]
    grads = ad.grad(f, wrt=wrt)(*args32)
    for g, i in zip(grads, wrt):
        leaves = g.values() if isinstance(g, dict) else [g]
        assert all(leaf.dtype == np.float32 for leaf in leaves)


def test_loop_keeps_only_what_the_backward_sweep_reads():
    # The general reversed loop (the body reads the loop index): x, and sin(x), cos(x),
    # 0.1 * cos(x) reused by the derivative instead of recomputed.
    f = function_from_source("def f(x):\n    for i in range(20):\n        x = np.sin(x) * 0.9 + "
                             "0.1 * np.cos(x) * x + 0.01 * i\n    return np.sum(x * x)\n")
    src = ad.source(ad.grad(f), np.ones(4))
    assert "on stacks, one per iteration:" in src
    assert "for i in reversed(range(20)):" in src
    assert len([line for line in src.splitlines() if ".append(" in line]) == 4
    # An elementwise loop (tests/test_loopjac.py): x only, all iterations at once after.
    src = ad.source(ad.grad(L.chain), np.ones(4))
    assert "reversed(" not in src
    assert len([line for line in src.splitlines() if ".append(" in line]) == 1


def test_new_trip_count_is_a_new_specialisation():
    f = ad.grad(L.range_with_start_and_step)
    x = R.uniform(0.5, 1.0, size=3)
    for n in (3, 6):
        assert_tree_close(f(x, n), numeric_grad(L.range_with_start_and_step, [x, n], 0), rtol=1e-5)


@pytest.mark.parametrize("f,args,wrt", CASES, ids=[c[0].__name__ for c in CASES])
def test_forward_mode(f, args, wrt):
    check_forward(f, args, wrt, np.random.default_rng(3))


@pytest.mark.parametrize("f,args,wrt", CASES, ids=[c[0].__name__ for c in CASES])
def test_hvp(f, args, wrt):
    # (first argument only: the dual-number reference cannot run `total += dual` on a
    # plain array, which some cases do with respect to their other arguments)
    check_hvp(f, args, wrt[0], np.random.default_rng(5))


def test_numpy_function_of_a_list_stacks_it_first():
    # (finite differences only: the reference cannot take np.sum of a list of duals)
    x = R.normal(size=4)
    assert_tree_close(ad.grad(L.sum_of_a_list)(x), numeric_grad(L.sum_of_a_list, [x], 0),
                      rtol=1e-6)


def test_assigning_into_an_argument_leaves_the_callers_array_alone():
    x = R.normal(size=3)
    before = x.copy()
    g = ad.grad(L.assign_into_argument)(x)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(g, [2 * (before[0] - 1.0), 0.0, 2 * before[2]])
