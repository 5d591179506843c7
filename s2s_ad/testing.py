"""`check_grads`: the compiler's derivatives against an independent oracle.

Every derivative s2s_ad generates for `f` is compared with the dual-number forward mode
of `reference.py` (which shares no code with the compiler: a tight tolerance) and with
central finite differences in float64 (a loose one), along seeded random directions:

- "fwd": jvp(f) along v;
- "rev": the gradient, by the inner-product test <grad f, v> = f'(x) v (for a non-scalar
  output, the vector-Jacobian product with a random cotangent u: <u J, v> = <u, J v>);
- order 2 (scalar f): hvp along v (forward mode over the generated adjoint) against nested
  duals and against central differences of the gradient.
"""
import numpy as np

from . import api, reference


def check_grads(f, args, order=2, modes=("fwd", "rev"), wrt=None, seed=0, rtol=None,
                eps=1e-6):
    """Raise AssertionError when a derivative of `f` at `args` disagrees with the
    reference or with finite differences. `wrt` defaults to every float argument."""
    args = list(args)
    rng = np.random.default_rng(seed)
    if wrt is None:
        wrt = tuple(i for i, a in enumerate(args) if _is_float_tree(a))
    wrt = (wrt,) if isinstance(wrt, int) else tuple(wrt)
    low = any(_leaves_dtype(args[i]) == np.float32 for i in wrt)
    tight = rtol or (2e-4 if low else 1e-7)
    loose = 3e-2 if low else 1e-4
    floor = 1e-3 if low else 1e-8   # finite differences' own error near zero
    out = f(*args)
    scalar = np.ndim(out) == 0
    for i in wrt:
        v = _random_like(args[i], rng)
        exact = _reference_jvp(f, args, i, v)
        numeric = _central(f, args, i, v, eps)
        if "fwd" in modes:
            _, got = api.jvp(f, wrt=i)(*args, v)
            _close(f"jvp of {_name(f)} along a random direction of argument {i}", got, exact, tight)
            _close(f"jvp of {_name(f)} against finite differences (argument {i})", got, numeric,
                   loose, floor)
        if "rev" in modes:
            if scalar:
                g = api.grad(f, wrt=i)(*args)
                _close(f"<grad, v> of {_name(f)} against the reference jvp (argument {i})",
                       _dot(g, v), exact, tight)
                _close(f"<grad, v> of {_name(f)} against finite differences (argument {i})",
                       _dot(g, v), numeric, loose, floor)
            else:
                u = rng.normal(size=np.shape(out)).astype(np.asarray(out).dtype)
                _, g = api.Transformed(f, "vjp", i)(*args, u)
                _close(f"<u J, v> of {_name(f)} against <u, J v> of the reference "
                       f"(argument {i})", _dot(g, v), _dot(u, exact), tight)
        if order >= 2 and scalar:
            got = api.hvp(f, wrt=i)(*args, v)
            _close(f"hvp of {_name(f)} against nested duals (argument {i})", got,
                   reference.hvp(f, args, i, v), tight)
            plus, minus = list(args), list(args)
            plus[i], minus[i] = _axpy(args[i], v, 1e-5), _axpy(args[i], v, -1e-5)
            g = api.grad(f, wrt=i)
            _close(f"hvp of {_name(f)} against differences of the gradient (argument {i})",
                   got, _scale(_axpy(g(*plus), g(*minus), -1.0), 1 / 2e-5), 10 * loose,
                   100 * floor)


def _name(f):
    return getattr(f, "__name__", repr(f))


def _close(what, actual, expected, rtol, floor=1e-12):
    """`floor`: an absolute tolerance, for finite differences whose own error (truncation,
    rounding) does not shrink with the value (a Hessian that vanishes)."""
    a, e = _flat(actual), _flat(expected)
    if a.shape != e.shape:
        raise AssertionError(f"{what}: shapes differ, {a.shape} (s2s_ad) vs {e.shape}")
    scale = max(np.max(np.abs(e), initial=0.0), 1e-12)
    err = np.max(np.abs(a - e), initial=0.0)
    if not err <= rtol * scale + floor or not np.all(np.isfinite(a) == np.isfinite(e)):
        worst = int(np.argmax(np.abs(a - e))) if a.size else 0
        raise AssertionError(
            f"{what}: s2s_ad gives {a.flat[worst] if a.size else a!r}, the check gives "
            f"{e.flat[worst] if e.size else e!r} (max error {err:.3g}, tolerance "
            f"{rtol:.1g} x {scale:.3g})")


def _reference_jvp(f, args, i, v):
    return reference.jvp(f, args, i, v)[1]


def _central(f, args, i, v, eps):
    """Central differences in float64 along v."""
    hi = [_to64(a) for a in args]
    lo = list(hi)
    hi[i] = _axpy(_to64(args[i]), _to64(v), eps)
    lo[i] = _axpy(_to64(args[i]), _to64(v), -eps)
    return _scale(_axpy(_to64(f(*hi)), _to64(f(*lo)), -1.0), 1 / (2 * eps))


def _map(fn, tree):
    if isinstance(tree, dict):
        return {k: _map(fn, v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_map(fn, v) for v in tree)
    return fn(tree)


def _to64(tree):
    def cast(x):
        if isinstance(x, float):
            return x
        if hasattr(x, "dtype") and np.issubdtype(x.dtype, np.floating):
            return x.astype(np.float64)
        return x
    return _map(cast, tree)


def _axpy(x, v, a):
    if isinstance(x, dict):
        return {k: _axpy(x[k], v[k], a) for k in x}
    if isinstance(x, (list, tuple)):
        return type(x)(_axpy(p, q, a) for p, q in zip(x, v))
    return x + a * v


def _scale(x, a):
    return _map(lambda y: y * a, x)


def _dot(a, b):
    return float(np.sum(_flat(a) * _flat(b)))


def _flat(tree):
    parts = []

    def walk(x):
        if isinstance(x, dict):
            for k in x:
                walk(x[k])
        elif isinstance(x, (list, tuple)):
            for y in x:
                walk(y)
        else:
            parts.append(np.ravel(np.asarray(x, dtype=np.float64)))
    walk(tree)
    return np.concatenate(parts) if parts else np.zeros(0)


def _random_like(tree, rng):
    def draw(x):
        if isinstance(x, float):
            return float(rng.normal())
        return rng.normal(size=np.shape(x)).astype(x.dtype)
    return _map(draw, tree)


def _is_float_tree(tree):
    leaves = []
    _map(leaves.append, tree)
    return bool(leaves) and all(isinstance(x, float) or (hasattr(x, "dtype") and
                                np.issubdtype(x.dtype, np.floating)) for x in leaves)


def _leaves_dtype(tree):
    leaves = []
    _map(leaves.append, tree)
    dtypes = {np.asarray(x).dtype for x in leaves}
    return np.float32 if np.dtype(np.float32) in dtypes else np.float64
