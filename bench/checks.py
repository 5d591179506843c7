"""Correctness checks, run before anything is timed.

Gradients here are an array or nested dicts / lists / tuples of arrays (the shapes
``ad.value_and_grad`` returns); ``leaves`` flattens them to (name, array) pairs.
"""
import numpy as np


def leaves(tree, name="grad"):
    if isinstance(tree, dict):
        for key, sub in tree.items():
            yield from leaves(sub, f"{name}[{key!r}]")
    elif isinstance(tree, (tuple, list)):
        for i, sub in enumerate(tree):
            yield from leaves(sub, f"{name}[{i}]")
    else:
        yield name, tree


def tree_map(fn, *trees):
    """fn over the leaves of trees of one structure (nested dicts, lists, tuples)."""
    first = trees[0]
    if isinstance(first, dict):
        return {k: tree_map(fn, *(t[k] for t in trees)) for k in first}
    if isinstance(first, (list, tuple)):
        return type(first)(tree_map(fn, *parts) for parts in zip(*trees))
    return fn(*trees)


def _replace_leaf(tree, index, new, counter=None):
    """A copy of tree (dicts/lists/tuples rebuilt, arrays shared) with leaf number `index`
    (in ``leaves`` order) replaced by `new`."""
    counter = [0] if counter is None else counter
    if isinstance(tree, dict):
        return {k: _replace_leaf(v, index, new, counter) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_replace_leaf(v, index, new, counter) for v in tree)
    i = counter[0]
    counter[0] += 1
    return new if i == index else tree


def check_finite_differences(f, value_and_grad, args, seed=0, count=2, eps=1e-5, tol=1e-7,
                             floor=1e-3):
    """Check value_and_grad's gradient w.r.t. args[0] against central differences of f.

    Run it on float64 arguments. For each random unit direction v touching one leaf of x
    (a random direction over all ~800k MLP parameters would barely see an error in a
    10-element bias), compare the directional derivative g.v with
    (f(x + eps v) - f(x - eps v)) / (2 eps); the error is measured relative to |g_leaf|
    (>= |g.v|), which is scale free yet not fooled by directions nearly orthogonal to the
    gradient, floored at `floor` times the largest |g_leaf| (a leaf whose exact gradient
    is 0, like the GPT's key biases, would otherwise be judged on rounding noise).
    Returns the worst relative error.
    """
    x, rest = args[0], args[1:]
    for name, leaf in leaves(x, "args[0]"):
        if leaf.dtype != np.float64:  # float32 differences would be mostly rounding noise
            raise TypeError(f"finite differences need float64 arguments, {name} is {leaf.dtype}")
    _, grad = value_and_grad(*args)
    x_leaves, g_leaves = list(leaves(x, "x")), list(leaves(grad))
    norms = [float(np.linalg.norm(g)) for _, g in g_leaves]
    rng = np.random.default_rng(seed)
    worst = 0.0
    for i, ((name, leaf), (_, g)) in enumerate(zip(x_leaves, g_leaves)):
        for _ in range(count):
            v = rng.standard_normal(leaf.shape)
            v /= np.linalg.norm(v)
            fd = (f(_replace_leaf(x, i, leaf + eps * v), *rest)
                  - f(_replace_leaf(x, i, leaf - eps * v), *rest)) / (2 * eps)
            err = abs(fd - np.vdot(g, v)) / max(norms[i], floor * max(norms), 1e-30)
            worst = max(worst, err)
            if err > tol:
                raise AssertionError(f"finite differences disagree on {name}: "
                                     f"fd={fd:.6g}, g.v={np.vdot(g, v):.6g}, rel. err {err:.2e}")
    return worst


def compare(got, want, rtol, floor=1e-4, check_dtype=True):
    """None if ``got == want`` as (value, gradient) pairs, else a one-line reason.

    Same structure, shapes and dtypes (dtypes only if check_dtype), and every leaf within
    rtol of that leaf's largest magnitude (an elementwise rtol is meaningless for float32
    entries near 0), floored at `floor` times the largest magnitude of any leaf (a leaf
    whose exact gradient is 0, like the GPT's key biases, holds only rounding noise).
    """
    (got_value, got_grad), (want_value, want_grad) = got, want
    got_leaves = [("value", got_value)] + list(leaves(got_grad))
    want_leaves = [("value", want_value)] + list(leaves(want_grad))
    if [n for n, _ in got_leaves] != [n for n, _ in want_leaves]:
        return f"structure {[n for n, _ in got_leaves]} != {[n for n, _ in want_leaves]}"
    top = max(float(np.max(np.abs(np.asarray(b)), initial=0.0)) for _, b in want_leaves[1:]) \
        if len(want_leaves) > 1 else 0.0
    for (name, a), (_, b) in zip(got_leaves, want_leaves):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or (check_dtype and a.dtype != b.dtype):
            return f"{name}: {a.dtype}{list(a.shape)} != expected {b.dtype}{list(b.shape)}"
        scale = float(np.max(np.abs(b), initial=0.0))
        if name != "value":
            scale = max(scale, floor * top)
        err = float(np.max(np.abs(a - b), initial=0.0))
        if not err <= rtol * scale:  # 'not <=' also catches NaN
            return f"{name}: max abs error {err:.3g} > {rtol:g} * {scale:.3g}"
    return None
