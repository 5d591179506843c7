"""Shared test helpers: functions written as real source files, and finite differences."""
import contextlib
import hashlib
import importlib.util
import pathlib
import sys
import tempfile

import numpy as np

_DIR = pathlib.Path(tempfile.mkdtemp(prefix="s2s_ad_tests_"))


def module_from_source(source, prefix="case"):
    """Import `source` as a module from a real file, so s2s_ad reads it like user code."""
    name = f"{prefix}_{hashlib.sha1(source.encode()).hexdigest()[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    path = _DIR / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def function_from_source(source, name="f"):
    return getattr(module_from_source("import numpy as np\n\n\n" + source), name)


def numeric_grad(f, args, wrt, eps=1e-6):
    """Central differences of scalar f with respect to args[wrt] (float64, any structure)."""
    args = list(args)
    leaves, rebuild = _flatten(args[wrt])
    grads = []
    for k, leaf in enumerate(leaves):
        if isinstance(leaf, float):
            def at(v):
                new = list(leaves)
                new[k] = v
                args[wrt] = rebuild(new)
                return float(f(*args))
            grads.append((at(leaf + eps) - at(leaf - eps)) / (2 * eps))
            continue
        base = np.array(leaf, dtype=np.float64)
        g = np.zeros_like(base)
        for i in np.ndindex(base.shape):
            vals = []
            for sign in (1, -1):
                x = base.copy()
                x[i] += sign * eps
                new = list(leaves)
                new[k] = x
                args[wrt] = rebuild(new)
                vals.append(float(f(*args)))
            g[i] = (vals[0] - vals[1]) / (2 * eps)
        grads.append(g)
    return rebuild(grads)


def _flatten(tree):
    if isinstance(tree, dict):
        keys = list(tree)
        parts = [_flatten(tree[k]) for k in keys]
        sizes = [len(p[0]) for p in parts]

        def rebuild(leaves):
            out, i = {}, 0
            for key, (_, rb), n in zip(keys, parts, sizes):
                out[key] = rb(leaves[i:i + n])
                i += n
            return out
        return [l for p in parts for l in p[0]], rebuild
    if isinstance(tree, (list, tuple)):
        kind = type(tree)
        parts = [_flatten(t) for t in tree]
        sizes = [len(p[0]) for p in parts]

        def rebuild(leaves):
            out, i = [], 0
            for (_, rb), n in zip(parts, sizes):
                out.append(rb(leaves[i:i + n]))
                i += n
            return kind(out)
        return [l for p in parts for l in p[0]], rebuild
    return [tree], lambda leaves: leaves[0]


def assert_tree_close(actual, expected, rtol=1e-6, atol=1e-8, dtype=None):
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys()
        for k in expected:
            assert_tree_close(actual[k], expected[k], rtol, atol, dtype)
        return
    if isinstance(expected, (list, tuple)):
        assert type(actual) is type(expected) and len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_tree_close(a, e, rtol, atol, dtype)
        return
    if isinstance(expected, float):
        assert isinstance(actual, float), f"expected a Python float, got {type(actual)}"
    else:
        assert np.shape(actual) == np.shape(expected), (np.shape(actual), np.shape(expected))
        if dtype is not None:
            assert actual.dtype == dtype, f"dtype {actual.dtype}, expected {dtype}"
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


def random_like(tree, rng):
    """A random direction with the structure, shapes and dtypes of `tree`."""
    if isinstance(tree, dict):
        return {k: random_like(v, rng) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(random_like(v, rng) for v in tree)
    if isinstance(tree, float):
        return float(rng.normal())
    return rng.normal(size=np.shape(tree)).astype(np.asarray(tree).dtype)


def tree_dot(a, b):
    if isinstance(a, dict):
        return sum(tree_dot(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return sum(tree_dot(x, y) for x, y in zip(a, b))
    return float(np.sum(np.asarray(a) * np.asarray(b)))


def check_forward(f, args, wrt, rng, rtol=1e-7):
    """jvp along a random direction against <grad, v> and the dual-number reference."""
    import s2s_ad as ad
    from s2s_ad import reference
    grads = ad.grad(f, wrt=wrt)(*args)
    direction = tuple(random_like(args[i], rng) for i in wrt)
    value, derivative = ad.jvp(f, wrt=wrt)(*args, direction)
    np.testing.assert_allclose(value, f(*args), rtol=1e-12)
    np.testing.assert_allclose(derivative, sum(tree_dot(g, v) for g, v in zip(grads, direction)),
                               rtol=rtol, atol=1e-9)
    _, oracle = reference.jvp(f, args, wrt, direction)
    np.testing.assert_allclose(derivative, oracle, rtol=rtol, atol=1e-9)


from s2s_ad.testing import _axpy, _scale  # noqa: E402  (shared with check_grads)


def check_hvp(f, args, wrt, rng, rtol=1e-7, eps=1e-5):
    """hvp (forward mode over the generated adjoint) against the nested-dual reference and
    against central differences of the gradient."""
    import s2s_ad as ad
    from s2s_ad import reference
    v = random_like(args[wrt], rng)
    hv = ad.hvp(f, wrt=wrt)(*args, v)
    expected = reference.hvp(f, args, wrt, v)
    assert_tree_close(hv, expected, rtol=rtol, atol=1e-8)
    plus, minus = list(args), list(args)
    plus[wrt] = _axpy(args[wrt], v, eps)
    minus[wrt] = _axpy(args[wrt], v, -eps)
    g = ad.grad(f, wrt=wrt)
    numeric = _axpy(g(*plus), g(*minus), -1.0)
    numeric = _scale(numeric, 1 / (2 * eps))
    assert_tree_close(hv, numeric, rtol=1e-4, atol=1e-6)


def _same_info(a, b):
    """Infos equal in everything a specialisation reads."""
    from s2s_ad.specialize import Info
    if type(a) is not type(b) or not isinstance(a, Info):
        return a == b
    if (a.kind, a.shape, a.dtype, a.dynamic, a.ndim) != (b.kind, b.shape, b.dtype, b.dynamic,
                                                         b.ndim):
        return False
    if a.kind in ("list", "tuple", "stack"):
        return len(a.value) == len(b.value) and all(map(_same_info, a.value, b.value))
    if a.kind == "dict":
        return a.value.keys() == b.value.keys() and all(
            _same_info(a.value[k], b.value[k]) for k in a.value)
    return a.kind in ("float", "array", "other") or a.value == b.value


@contextlib.contextmanager
def derived_infos_checked():
    """Every whole-program recording s2s_ad makes inside the block is made twice, derived
    (s2s_ad/derive.py) and by running the program, and the two must agree. Yields a dict
    counting the recordings derived and those that fell back to running."""
    from s2s_ad import specialize
    record, derive = specialize.record, specialize.derive
    counts = {"derived": 0, "ran": 0}

    def checked(program, args, previous=None, only=None):
        if only is not None:
            return record(program, args, previous, only)
        specialize.derive = lambda program, args: None
        try:
            ran = record(program, args, previous, only)
        finally:
            specialize.derive = derive
        if derive(program, args) is None:
            counts["ran"] += 1
            return ran
        counts["derived"] += 1
        derived = record(program, args, previous, only)
        for name in ran[0].keys() | derived[0].keys():
            assert _same_info(ran[0].get(name), derived[0].get(name)), (
                f"{program.name}: {name} recorded as {ran[0].get(name)}, "
                f"derived as {derived[0].get(name)}")
        return ran
    specialize.record = checked
    try:
        yield counts
    finally:
        specialize.record = record
