"""Shapes and dtypes derived without running the program (s2s_ad/derive.py): the same as
recorded by running it, on the models and the zoo; and where they cannot be derived
exactly, recorded by running instead (with the derivatives still right)."""
import numpy as np
import pytest

import s2s_ad as ad
import s2s_ad.derive
from helpers import check_hvp, derived_infos_checked, function_from_source, numeric_grad
from models_src import attention_loss, mlp_loss
from test_zoo import CASES, IDS

R = np.random.default_rng(5)


@pytest.fixture(autouse=True)
def fresh_transformations(monkeypatch):
    """Every function transformed again (other tests' cached transformations would
    answer the calls here without a recording)."""
    import weakref
    monkeypatch.setattr(ad.api, "_CACHE", weakref.WeakKeyDictionary())


@pytest.fixture(params=["stand-ins", "rules"])
def every_array_ruled(request, monkeypatch):
    """By default small arrays are computed with (as cheap as a rule); with SMALL = 0 every
    array goes through the rules, as the transformer's do."""
    if request.param == "rules":
        monkeypatch.setattr(s2s_ad.derive, "SMALL", 0)
    return request.param


def test_models_derived_as_recorded(every_array_ruled):
    params = {"W1": R.normal(size=(5, 7)), "b1": R.normal(size=7),
              "W2": R.normal(size=(7, 3)).astype(np.float32), "b2": R.normal(size=3)}
    x, y = R.normal(size=(6, 5)), R.integers(0, 3, size=6)
    C = 4
    p = {"gamma": 1 + 0.1 * R.normal(size=C), "beta": 0.1 * R.normal(size=C),
         **{k: R.normal(size=(C, C)) * 0.5 for k in ("Wq", "Wk", "Wv", "Wo")}}
    a, t = R.normal(size=(2, 3, C)), R.normal(size=(2, 3, C))
    with derived_infos_checked() as counts:
        for f, args in ((mlp_loss, (params, x, y)), (attention_loss, (p, a, t))):
            for kind in (ad.value_and_grad, ad.grad):
                kind(f)(*args)
            ad.hvp(f)(*args, ad.grad(f)(*args))
            ad.jvp(f)(*args, ad.grad(f)(*args))
    assert counts["derived"] >= 4, counts


def test_transformer_derived_as_recorded(every_array_ruled):
    transformer = pytest.importorskip("models.transformer")
    params = transformer.init_params(5, 2, 8, 2, 4, seed=3, dtype=np.float32)
    idx, targets = R.integers(0, 5, (3, 4)), R.integers(0, 5, (3, 4))
    with derived_infos_checked() as counts:
        g = ad.grad(transformer.gpt_loss)(params, idx, targets, 2)
        ad.hvp(transformer.gpt_loss)(params, idx, targets, 2, g)
    # the loss (its loop over layers unrolled) and hvp's adjoint are both derived
    assert counts["derived"] >= 2 and counts["ran"] == 0, counts


@pytest.mark.parametrize("f,args,wrt", CASES, ids=IDS)
def test_zoo_derived_as_recorded(f, args, wrt):
    """Loops, branches, while loops, masks: recorded by running where not derived."""
    with derived_infos_checked():
        ad.grad(f, wrt=wrt)(*args)
        ad.hvp(f, wrt=wrt[0])(*args, args[wrt[0]])


@pytest.mark.parametrize("source,why", [
    ("def f(x):\n    m = x > 0\n    return np.sum(x[m] ** 2)\n", "a boolean mask"),
    ("def f(x):\n    y = np.sin(x)\n    k = int(np.argmax(y))\n    return np.sum(x[:k + 1] ** 2)\n",
     "an integer computed from data"),
    ("def f(x):\n    return np.sum(positive_log(np.exp(x)))\n\n\n"
     "def positive_log(y):\n    if np.any(y <= 0):\n        raise ValueError('not positive')\n"
     "    return np.log(y)\n", "an operation that refuses a stand-in (zeros)"),
    ("def f(x):\n    for i in range(3):\n        x = np.sin(x) * x\n    return np.sum(x)\n",
     "a loop"),
])
def test_not_derivable_is_recorded_by_running(source, why):
    f = function_from_source(source.replace("def f(", f"def f_{len(why)}("), f"f_{len(why)}")
    if "positive_log" in source:   # a primitive with a rule of its own, not inlined
        import sys
        ad.defrule(sys.modules[f.__module__].positive_log, "y", partials={"y": "1.0 / y"})
    x = R.normal(size=80) + 0.5   # larger than derive.SMALL: ruled on, not computed with
    with derived_infos_checked() as counts:
        g = ad.grad(f)(x)
        check_hvp(f, [x], 0, R)
    # the user's function is recorded by running (hvp's adjoint may not compute the part
    # in question, and be derived)
    assert counts["ran"] >= 1, (why, counts)
    np.testing.assert_allclose(g, numeric_grad(f, [x], 0), rtol=1e-5, atol=1e-7)
