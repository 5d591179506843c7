"""ad.flatten: flat parameter vectors for nested dicts / lists / tuples of float arrays."""
from collections import namedtuple

import numpy as np
import pytest

import s2s_ad as ad
from helpers import function_from_source

R = np.random.default_rng(3)


def assert_same_tree(a, b):
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert list(a) == list(b)  # the dict's own key order is kept
        for k in a:
            assert_same_tree(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same_tree(x, y)
    elif isinstance(a, np.ndarray):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


def test_round_trip_dict_of_arrays():
    tree = {"W": R.normal(size=(3, 2)), "b": R.normal(size=2)}
    v, unflatten = ad.flatten(tree)
    assert v.shape == (8,) and v.dtype == np.float64
    # sorted keys: W before b
    np.testing.assert_array_equal(v, np.concatenate([tree["W"].ravel(), tree["b"]]))
    back = unflatten(v)
    assert_same_tree(back, tree)
    assert back["W"] is not tree["W"] and not np.shares_memory(back["W"], v)


def test_round_trip_nested_lists_tuples_floats_and_0d():
    Point = namedtuple("Point", "x y")
    tree = {"blocks": [{"g": np.ones(3), "s": np.array(2.5)}, {"g": np.zeros(3), "s": np.array(-1.0)}],
            "pair": (1.5, np.float64(0.25)), "pt": Point(np.arange(2.0), 3.0), "empty": []}
    v, unflatten = ad.flatten(tree)
    assert v.shape == (3 + 1 + 3 + 1 + 2 + 2 + 1,)
    back = unflatten(v)
    assert_same_tree(back, tree)
    assert isinstance(back["pair"][0], float) and not isinstance(back["pair"][0], np.floating)
    assert isinstance(back["pair"][1], np.float64)
    assert back["blocks"][0]["s"].shape == () and isinstance(back["blocks"][0]["s"], np.ndarray)
    # a changed vector lands in the right leaves
    back2 = unflatten(v + 1.0)
    assert back2["pair"][0] == 2.5 and back2["pt"].y == 4.0
    np.testing.assert_array_equal(back2["blocks"][1]["g"], np.ones(3))


def test_float32_stays_float32_and_mixed_dtypes_promote():
    tree = {"a": np.ones((2, 2), np.float32), "b": 0.5}
    v, unflatten = ad.flatten(tree)
    assert v.dtype == np.float32  # Python floats are weak (NEP 50)
    back = unflatten(v.astype(np.float64))
    assert back["a"].dtype == np.float32 and isinstance(back["b"], float)
    v, unflatten = ad.flatten([np.ones(2, np.float32), np.ones(1, np.float64)])
    assert v.dtype == np.float64
    assert unflatten(v)[0].dtype == np.float32
    assert ad.flatten([1.0, 2.0])[0].dtype == np.float64
    v, unflatten = ad.flatten({})
    assert v.shape == (0,) and unflatten(v) == {}


def test_single_array_and_python_float():
    x = R.normal(size=(2, 3))
    v, unflatten = ad.flatten(x)
    np.testing.assert_array_equal(v, x.ravel())
    assert_same_tree(unflatten(v), x)
    v, unflatten = ad.flatten(2.0)
    assert v.tolist() == [2.0] and unflatten(v) == 2.0


def test_order_is_deterministic():
    a, b, c = R.normal(size=2), R.normal(size=3), R.normal(size=1)
    v1, _ = ad.flatten({"b": b, "a": a, "c": [c]})
    v2, un2 = ad.flatten({"c": [c], "a": a, "b": b})
    np.testing.assert_array_equal(v1, v2)
    np.testing.assert_array_equal(v1, np.concatenate([a, b, c]))
    assert list(un2(v1)) == ["c", "a", "b"]


@pytest.mark.parametrize("bad, message", [
    ({"n": 3}, r"\['n'\] is int"),
    ({"x": [np.ones(2), np.arange(3)]}, r"\['x'\]\[1\] is an array of dtype int"),
    ([True], r"is bool"),
    ({"s": "text"}, r"is a str"),
    ({"z": np.ones(2, complex)}, r"dtype complex128"),
])
def test_non_float_leaves_raise_a_clear_error(bad, message):
    with pytest.raises(TypeError, match=message):
        ad.flatten(bad)


def test_unflatten_checks_its_argument():
    _, unflatten = ad.flatten({"a": np.ones(3)})
    with pytest.raises(ValueError, match="1-D array of 3"):
        unflatten(np.ones(4))
    with pytest.raises(ValueError, match="1-D array of 3"):
        unflatten(np.ones((3, 1)))


mlp = function_from_source(
    "def mlp(params, x, y):\n"
    "    h = np.tanh(x @ params['W1'] + params['b1'])\n"
    "    z = h @ params['layers'][0]['W'] + params['scale'] * params['layers'][0]['b']\n"
    "    return np.mean((z - y) ** 2)\n", "mlp")


def test_composes_with_value_and_grad_and_hvp():
    params = {"b1": R.normal(size=4), "W1": R.normal(size=(3, 4)),
              "layers": [{"W": R.normal(size=(4, 2)), "b": R.normal(size=2)}], "scale": 0.7}
    x, y = R.normal(size=(5, 3)), R.normal(size=(5, 2))
    x0, unflatten = ad.flatten(params)
    vg = ad.value_and_grad(mlp)

    def fun(v):  # what scipy.optimize.minimize(..., jac=True) calls
        value, g = vg(unflatten(v), x, y)
        return value, ad.flatten(g)[0]

    value, gflat = fun(x0)
    value0, g = vg(params, x, y)
    assert value == value0
    np.testing.assert_array_equal(gflat, ad.flatten(g)[0])
    assert gflat.shape == x0.shape
    # finite differences along a random direction of the flat vector
    d = R.normal(size=x0.shape)
    eps = 1e-6
    numeric = (mlp(unflatten(x0 + eps * d), x, y) - mlp(unflatten(x0 - eps * d), x, y)) / (2 * eps)
    assert gflat @ d == pytest.approx(numeric, rel=1e-6)

    h = ad.hvp(mlp)

    def hessp(v, p):  # what minimize(..., hessp=hessp) calls
        return ad.flatten(h(unflatten(v), x, y, unflatten(p)))[0]

    hv = hessp(x0, d)
    numeric = (fun(x0 + eps * d)[1] - fun(x0 - eps * d)[1]) / (2 * eps)
    np.testing.assert_allclose(hv, numeric, rtol=1e-5, atol=1e-7)
