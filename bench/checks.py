"""Correctness checks, run before anything is timed.

Gradients here are an array, a dict of arrays or a tuple of those (the shapes
``ad.value_and_grad`` returns); ``leaves`` flattens them to (name, array) pairs.
"""
import numpy as np


def leaves(tree, name="grad"):
    if isinstance(tree, dict):
        for key, sub in tree.items():
            yield from leaves(sub, f"{name}[{key!r}]")
    elif isinstance(tree, tuple):
        for i, sub in enumerate(tree):
            yield from leaves(sub, f"{name}[{i}]")
    else:
        yield name, tree


def _shift(x, direction, step):
    """x + step * direction for an array or a dict of arrays (direction may omit keys)."""
    if isinstance(x, dict):
        return {k: v + step * direction[k] if k in direction else v for k, v in x.items()}
    return x + step * direction


def _per_leaf_directions(x, rng, count):
    """Random unit directions touching one leaf of x at a time: a random direction over
    all ~800k MLP parameters would barely see an error in a 10-element bias."""
    named = x.items() if isinstance(x, dict) else [(None, x)]
    for key, leaf in named:
        for _ in range(count):
            v = rng.standard_normal(leaf.shape)
            v /= np.linalg.norm(v)
            yield key, v


def check_finite_differences(f, value_and_grad, args, seed=0, count=2, eps=1e-5, tol=1e-7):
    """Check value_and_grad's gradient w.r.t. args[0] against central differences of f.

    Run it on float64 arguments. For each unit direction v on one leaf, compare the
    directional derivative g.v with (f(x + eps v) - f(x - eps v)) / (2 eps); the error
    is measured relative to |g_leaf| (>= |g.v|), which is scale free yet not fooled
    by directions nearly orthogonal to the gradient. Returns the worst relative error.
    """
    x, rest = args[0], args[1:]
    for name, leaf in leaves(x, "args[0]"):
        if leaf.dtype != np.float64:  # float32 differences would be mostly rounding noise
            raise TypeError(f"finite differences need float64 arguments, {name} is {leaf.dtype}")
    _, grad = value_and_grad(*args)
    worst = 0.0
    for key, v in _per_leaf_directions(x, np.random.default_rng(seed), count):
        g = grad if key is None else grad[key]
        direction = v if key is None else {key: v}
        fd = (f(_shift(x, direction, eps), *rest) - f(_shift(x, direction, -eps), *rest)) / (2 * eps)
        err = abs(fd - np.vdot(g, v)) / max(np.linalg.norm(g), 1e-30)
        worst = max(worst, err)
        if err > tol:
            where = "x" if key is None else f"x[{key!r}]"
            raise AssertionError(f"finite differences disagree on {where}: "
                                 f"fd={fd:.6g}, g.v={np.vdot(g, v):.6g}, rel. err {err:.2e}")
    return worst


def compare(got, want, rtol):
    """None if ``got == want`` as (value, gradient) pairs, else a one-line reason.

    Same structure, shapes and dtypes, and every leaf within rtol of that leaf's
    largest magnitude (an elementwise rtol is meaningless for float32 entries near 0).
    """
    (got_value, got_grad), (want_value, want_grad) = got, want
    got_leaves = [("value", got_value)] + list(leaves(got_grad))
    want_leaves = [("value", want_value)] + list(leaves(want_grad))
    if [n for n, _ in got_leaves] != [n for n, _ in want_leaves]:
        return f"structure {[n for n, _ in got_leaves]} != {[n for n, _ in want_leaves]}"
    for (name, a), (_, b) in zip(got_leaves, want_leaves):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype != b.dtype:
            return f"{name}: {a.dtype}{list(a.shape)} != expected {b.dtype}{list(b.shape)}"
        scale = float(np.max(np.abs(b), initial=0.0))
        err = float(np.max(np.abs(a - b), initial=0.0))
        if not err <= rtol * scale:  # 'not <=' also catches NaN
            return f"{name}: max abs error {err:.3g} > {rtol:g} * {scale:.3g}"
    return None
