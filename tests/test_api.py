"""The public API: wrt forms, decorators, containers, dtypes, the cache, the generated code."""
import importlib.util
import linecache

import numpy as np
import pytest

import s2s_ad as ad
from helpers import assert_tree_close, function_from_source, module_from_source, numeric_grad

RNG = np.random.default_rng(5)
A, B = RNG.normal(size=(3, 4)), RNG.normal(size=(4,))

f2 = function_from_source("def f2(a, b, k=2.0):\n    return np.sum(np.tanh(a * b) * k)\n", "f2")


@pytest.mark.parametrize("wrt,expected", [
    (0, "a"), ("a", "a"), (1, "b"), ("b", "b"), (-2, "b"), ((0, 1), ("a", "b")),
    (("b", 0), ("b", "a")), ((1,), ("b",)),
])
def test_wrt_by_index_name_and_tuple(wrt, expected):
    got = ad.grad(f2, wrt=wrt)(A, B)
    numeric = {"a": numeric_grad(f2, [A, B], 0), "b": numeric_grad(f2, [A, B], 1)}
    if isinstance(expected, tuple):
        assert isinstance(got, tuple) and len(got) == len(expected)
        for g, name in zip(got, expected):
            assert_tree_close(g, numeric[name], rtol=1e-6)
    else:
        assert_tree_close(got, numeric[expected], rtol=1e-6)


def test_keyword_and_default_arguments():
    g1 = ad.grad(f2)(A, B, k=3.0)
    g2 = ad.grad(f2)(A, b=B, k=3.0)
    assert_tree_close(g1, numeric_grad(lambda a, b: f2(a, b, 3.0), [A, B], 0), rtol=1e-6)
    assert_tree_close(g2, g1)


def test_decorator_forms():
    mod = module_from_source(
        "import numpy as np\nimport s2s_ad as ad\n\n\n@ad.grad\ndef g1(x):\n    return np.sum(x * x)\n\n\n"
        "@ad.value_and_grad(wrt=(0, 1))\ndef g2(x, y):\n    return np.sum(x * y)\n", "decorated")
    assert_tree_close(mod.g1(B), 2 * B)
    value, (gx, gy) = mod.g2(B, 2 * B)
    assert np.isclose(value, np.sum(2 * B * B))
    assert_tree_close(gx, 2 * B)
    assert_tree_close(gy, B)


def test_value_and_grad_returns_the_value():
    value, g = ad.value_and_grad(f2, wrt=1)(A, B)
    assert value == pytest.approx(f2(A, B))
    assert_tree_close(g, ad.grad(f2, wrt=1)(A, B))


nested = function_from_source(
    "def nested(p, x):\n"
    "    h = np.tanh(x @ p['layers'][0]['W'] + p['layers'][0]['b'])\n"
    "    h = h @ p['layers'][1][0] * p['scale']\n"
    "    return np.sum(h ** 2) + p['layers'][1][1] * 0.0 + p['bias'] * np.sum(h)\n", "nested")


def test_nested_containers_give_gradients_of_the_same_structure():
    p = {"layers": [{"W": RNG.normal(size=(3, 4)), "b": RNG.normal(size=4)},
                    (RNG.normal(size=(4, 2)), 1.5)],
         "scale": 0.7, "bias": RNG.normal(size=()), "unused": np.ones(3)}
    x = RNG.normal(size=(5, 3))
    g = ad.grad(nested)(p, x)
    assert isinstance(g["layers"], list) and isinstance(g["layers"][1], tuple)
    assert isinstance(g["scale"], float) and isinstance(g["layers"][1][1], float)
    np.testing.assert_array_equal(g["unused"], np.zeros(3))
    assert_tree_close(g, numeric_grad(nested, [p, x], 0), rtol=1e-5, atol=1e-8)


def test_float32_dict_keeps_dtype_and_shape():
    p = {"W": RNG.normal(size=(3, 4)).astype(np.float32), "b": np.float32(0.5) * np.ones(4, np.float32)}
    f = function_from_source("def f(p, x):\n    return np.mean((x @ p['W'] + p['b']) ** 2)\n")
    g = ad.grad(f)(p, RNG.normal(size=(2, 3)).astype(np.float32))
    assert g["W"].dtype == np.float32 and g["W"].shape == (3, 4)
    assert g["b"].dtype == np.float32 and g["b"].shape == (4,)


def test_gradients_are_fresh_arrays_and_inputs_are_untouched():
    f = function_from_source("def f(x, y):\n    return np.sum(x * y) + np.sum(x)\n")
    x, y = RNG.normal(size=3), RNG.normal(size=3)
    x0, y0 = x.copy(), y.copy()
    gx, gy = ad.grad(f, wrt=(0, 1))(x, y)
    assert not np.shares_memory(gx, y) and not np.shares_memory(gy, x)
    gx += 1.0
    gy *= 2.0
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y, y0)
    g = ad.grad(function_from_source("def f(x, y):\n    return np.sum(x + y)\n"), wrt=(0, 1))(x, y)
    assert not np.shares_memory(g[0], g[1])
    g[0][0] = 5.0


def test_output_not_depending_on_wrt_gives_zeros():
    f = function_from_source("def f(x, y):\n    return np.sum(y * 2.0)\n")
    np.testing.assert_array_equal(ad.grad(f)(A, A), np.zeros_like(A))


def test_cache_second_call_does_no_transformation(monkeypatch):
    f = function_from_source("def f(x):\n    return np.sum(np.sin(x))\n")
    df = ad.grad(f)
    df(B)
    calls = []
    original = ad.api.Transformed._transform
    monkeypatch.setattr(ad.api.Transformed, "_transform",
                        lambda self, *a: calls.append(1) or original(self, *a))
    df(B)
    ad.grad(f)(B)           # a new grad(f) shares the cache
    assert calls == []
    df(A)                   # new shapes: a new specialisation
    assert calls == [1]
    # alternating signatures: each call is served by its own entry (the last call's entry
    # is tried first, and must not serve another signature)
    for x in (B, A, B.astype(np.float32), B, A, B.astype(np.float32)):
        g = df(x)
        assert g.shape == x.shape and g.dtype == x.dtype
        assert_tree_close(g, np.cos(x))
    assert calls == [1, 1]


def test_redefining_a_global_gives_a_fresh_transformation():
    mod = module_from_source("import numpy as np\nSCALE = 2.0\n\n\ndef f(x):\n"
                             "    return np.sum(x) * SCALE\n", "redefine")
    df = ad.grad(mod.f)
    assert_tree_close(df(B), 2.0 * np.ones(4))
    mod.SCALE = 3.0
    assert_tree_close(df(B), 3.0 * np.ones(4))


def test_generated_source_is_deterministic_and_runs_standalone(tmp_path):
    src1 = ad.source(ad.grad(f2, wrt=(0, 1)), A, B)
    ad.api._CACHE.clear()
    src2 = ad.source(ad.grad(f2, wrt=(0, 1)), A, B)
    assert src1 == src2
    assert "asarray" not in src1
    path = tmp_path / "standalone.py"
    path.write_text(src1)
    spec = importlib.util.spec_from_file_location("standalone", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert_tree_close(module.grad_f2(A, B, 2.0), ad.grad(f2, wrt=(0, 1))(A, B))


def test_rebinding_a_closure_variable_gives_a_fresh_transformation():
    """A closure reads its cell when called (late binding): after `nonlocal k; k = 3.0`,
    f uses 3.0. The cache took closure cells as a snapshot and kept serving code made
    for the old k and W, a silently wrong gradient."""
    mod = module_from_source(
        "import numpy as np\n\n\ndef outer():\n    k = 2.0\n    W = np.ones(4)\n\n"
        "    def f(x):\n        return np.sum(x * k) + np.sum(x * W)\n\n"
        "    def rebind(v):\n        nonlocal k, W\n        k = v\n        W = np.full(4, v)\n\n"
        "    return f, rebind\n", "closure")
    f, rebind = mod.outer()
    df = ad.grad(f)
    assert_tree_close(df(B), 3.0 * np.ones(4))
    rebind(3.0)
    assert_tree_close(df(B), 6.0 * np.ones(4))


def test_changing_a_setting_on_a_config_object_gives_a_fresh_transformation():
    """`cfg.scale` (an attribute of a module-level object, not of a module) is read into
    the generated code as a constant; setting cfg.scale = 3.0 afterwards left grad serving
    the old constant, a silently wrong gradient."""
    mod = module_from_source("import numpy as np\n\n\nclass Config:\n    scale = 2.0\n\n\n"
                             "cfg = Config()\n\n\ndef f(x):\n    return np.sum(x * cfg.scale)\n",
                             "config")
    df = ad.grad(mod.f)
    assert_tree_close(df(B), 2.0 * np.ones(4))
    mod.cfg.scale = 3.0
    assert_tree_close(df(B), 3.0 * np.ones(4))


def test_generated_code_is_in_linecache_for_tracebacks():
    df = ad.grad(f2)
    df(A, B)
    fn, _ = df.specialization(A, B)
    filename = fn.__code__.co_filename
    assert "".join(linecache.getlines(filename)) == ad.source(df)


def test_generated_code_quality():
    mod = module_from_source(
        "import numpy as np\n\n\ndef loss(W, b, x, y):\n    h = np.tanh(x @ W + b)\n"
        "    return np.mean((h - y) ** 2)\n", "quality")
    W, b, x, y = RNG.normal(size=(3, 3)), RNG.normal(size=3), RNG.normal(size=(4, 3)), RNG.normal(size=(4, 3))
    src = ad.source(ad.grad(mod.loss, wrt=("W", "b")), W, b, x, y)
    assert "with respect to W, b; reverse mode" in src
    assert "Kept for the backward sweep: h (4x3 float64)" in src
    assert "# quality_" in src and ":5  h = np.tanh(x @ W + b)" in src
    assert "x_bar" not in src and "y_bar" not in src      # not in wrt: no adjoint
    assert "zeros" not in src                               # nothing to add to
    assert "1.0 - h * h" in src                             # tanh reuses its output
    assert "W_bar = x.T @" in src and "b_bar = np.sum(" in src
    assert "out =" not in src                               # the value is dead in grad


def test_user_registered_rule():
    mod = module_from_source(
        "import numpy as np\n\n\ndef softplus(x):\n    return np.log1p(np.exp(x))\n\n\n"
        "def f(x):\n    return np.sum(softplus(x) * x)\n", "userrule")
    ad.defrule(mod.softplus, "x", partials={"x": "1.0 / (1.0 + np.exp(-x))"})
    g = ad.grad(mod.f)(B)
    assert_tree_close(g, numeric_grad(mod.f, [B], 0), rtol=1e-6)
    assert "softplus(x)" in ad.source(ad.grad(mod.f))


def test_user_rule_called_twice_with_the_same_arguments():
    """The second mysq(x) reuses the first's value; it used to rename the op before it
    (b = np.tanh(x) became b = mysq(x)): a wrong value and gradient without an error."""
    mod = module_from_source(
        "import numpy as np\n\n\ndef mysq(x):\n    return x * x\n\n\n"
        "def f(x):\n    a = mysq(x)\n    b = np.tanh(x)\n    c = mysq(x)\n"
        "    return np.sum(a + b + c)\n", "userrule_twice")
    ad.defrule(mod.mysq, "x", partials={"x": "2.0 * x"})
    value, g = ad.value_and_grad(mod.f)(B)
    assert value == pytest.approx(mod.f(B), rel=1e-12)
    assert_tree_close(g, numeric_grad(mod.f, [B], 0), rtol=1e-6)
    assert "b = np.tanh(x)" in ad.source(ad.value_and_grad(mod.f))
    v = RNG.normal(size=B.shape)
    t = np.tanh(B)
    assert_tree_close(ad.hvp(mod.f)(B, v), v * (4.0 - 2.0 * t * (1.0 - t * t)), rtol=1e-10)


def test_source_needs_a_transformed_function():
    with pytest.raises(TypeError):
        ad.source(f2)


def test_forward_sources_run_standalone(tmp_path):
    """jvp and hvp sources import the runtime helpers they call (they did not, and ran only
    inside s2s_ad); item assignment's tangent is one call on both tangents, with no zero
    array made only to be added to."""
    f = function_from_source("def f(x):\n    y = x * x\n    y[1:] += np.tanh(x[:2])\n"
                             "    y[0] = x[2] * 3.0\n    return np.sum(y * y)\n")
    x, v = np.array([0.3, -0.7, 1.1]), np.array([1.0, 0.5, -2.0])
    for transform, call_args in ((ad.jvp, (x, v)), (ad.hvp, (x, v))):
        t = transform(f)
        expected = t(*call_args)
        src = ad.source(t)
        assert "from s2s_ad.runtime import" in src and "zeros_like" not in src
        path = tmp_path / f"{transform.__name__}_standalone.py"
        path.write_text(src)
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        fn = next(getattr(module, n) for n in dir(module) if n.startswith(("jvp_", "hvp_")))
        assert_tree_close(fn(*call_args), expected)


def test_ints_read_off_values_are_not_specialised_on():
    """The cache keys arrays by shape and floats by type, so an int computed from their
    values (int(t * 10), a count of positives) may differ on the next call with the same
    key. Code specialised on the first call's int crashed on the next (a reshape to the
    old shape) or, worse, gave a wrong gradient (a sum over the old count): such ints are
    now unknown to the transformation, so what they shape is handled as data-dependent."""
    f = function_from_source("def f(x, t):\n    k = int(t * 10)\n"
                             "    return np.sum(np.reshape(x[:k * 2], (k, 2)) ** 2)\n")
    x = np.arange(1.0, 9.0)
    df = ad.grad(f)
    for t, k in ((0.2, 2), (0.3, 3), (0.2, 2)):
        expected = np.where(np.arange(8) < 2 * k, 2 * x, 0.0)
        np.testing.assert_allclose(df(x, t), expected, rtol=1e-12)
    g = function_from_source("def f(x):\n    n = int(np.sum(x > 0))\n    z = np.zeros(n) + x[0]\n"
                             "    return np.sum(z * x[1])\n")
    with pytest.raises(ad.TransformError) as info:
        ad.grad(g)(np.array([1.0, 2.0, 2.5, -1.0]))
    assert "depends on the data" in str(info.value) and info.value.lineno is not None
