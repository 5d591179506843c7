"""Reference forward-mode AD by dual numbers: the test oracle of s2s_ad.

Deliberately independent of the compiler: nothing is imported from the rest of s2s_ad and
every derivative formula below is written afresh, one line or a few per primitive.

``Dual(value, tangent, tag)`` carries a primal value and a tangent of the same shape and
dtype.  Value and tangent may themselves be Duals with a smaller tag: nesting gives second
(and higher) derivatives.  An operation works at the *largest* tag among its operands; Duals
with smaller tags are constants at that level.  Every helper call takes a fresh, larger tag,
so nested ``jvp`` calls cannot confuse their perturbations.

Conventions at non-differentiable points:
* maximum/fmax(x, y): tangent of x where x >= y, else of y; minimum/fmin: of x where x <= y.
* clip(x, lo, hi) == minimum(maximum(x, lo), hi): at x == lo or x == hi, the tangent of x.
* max/min/amax/amin reductions: tangent averaged over all tied positions.
* abs/fabs: sign(x) * tx (0 at x == 0).  sign floor ceil rint trunc floor_divide: zero tangent.
* power x**y, tangent through y: log(x) for x > 0, 0 for x == 0, nan for x < 0.
* sqrt, norm at 0 and similar give inf/nan, as the true derivative does.
* sort: the tangent follows a stable argsort of the primal (ties are not differentiable).
Comparisons, logical ufuncs, argmax & co return plain NumPy values of the primal; zeros_like &
co return Duals with a zero tangent, so that ``y = np.zeros_like(x); y[i] = ...`` works.

Every ufunc or NumPy function without a rule raises NotImplementedError("reference: no rule
for <name>"): the oracle never returns a derivative it does not know.  Turning a Dual into a
plain ndarray (np.asarray, np.array([d0, d1]), storing into a plain array, plain_array.dot(d))
raises TypeError/ValueError instead of dropping the tangent; build arrays with np.stack and
allocate buffers with zeros_like.
"""
import itertools
import math
import operator

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

__all__ = ["Dual", "jvp", "grad", "hvp", "second_directional"]

LN2, LN10 = math.log(2.0), math.log(10.0)   # Python floats: they never widen float32


# ============================================================ small helpers
def _fail(name): raise NotImplementedError(f"reference: no rule for {name}")
def _tag(a): return a.tag if isinstance(a, Dual) else 0
def _shape(a): return np.shape(_p(a))
def _dtype(a): return np.asarray(_p(a)).dtype
def _mk(value, tangent, tag): return value if tangent is None else Dual(value, tangent, tag)
def _add(a, b): return b if a is None else a if b is None else a + b
def _ptree(a): return type(a)(_ptree(e) for e in a) if isinstance(a, (list, tuple)) else _p(a)
def _bcast(t, shape): return t if _shape(t) == tuple(shape) else np.copy(np.broadcast_to(t, shape))


def _p(a):
    """The primal: strip every level of Dual."""
    while isinstance(a, Dual):
        a = a.value
    return a


def _top(objs):
    """Largest tag among objs, looking one level into lists and tuples."""
    return max((_tag(e) for o in objs for e in (o if isinstance(o, (list, tuple)) else (o,))), default=0)


def _split(a, tag):
    """(value, tangent) of a at level tag; tangent None when a is a constant there."""
    return (a.value, a.tangent) if isinstance(a, Dual) and a.tag == tag else (a, None)


def _reshape_like(t, v):
    t = np.reshape(t, _shape(v))
    return t[()] if _shape(v) == () else t


def _axes(axis, nd):
    return tuple(range(nd)) if axis is None else tuple(a % nd for a in (axis if isinstance(axis, tuple) else (axis,)))


def _no_dual(args, kwargs, name):
    if _top(list(args) + list(kwargs.values())):
        _fail(f"{name} with a Dual in a non-differentiable argument")


def _check_index(idx):
    if _top(idx if isinstance(idx, tuple) else (idx,)):
        raise TypeError("reference: an index must not be a Dual")


def _inplace(arr, x, op):
    """op(arr, x) in place; promotes arr to a Dual if x carries a perturbation arr lacks,
    copies scalars and read-only views.  Returns the (possibly new) container."""
    if _tag(x) > _tag(arr):
        arr = Dual(arr, np.zeros(_shape(arr), _dtype(arr)), x.tag)
    elif not isinstance(arr, Dual) and not (isinstance(arr, np.ndarray) and arr.flags.writeable):
        arr = np.array(arr, copy=True)
    op(arr, x)
    return arr


# ============================================================ the Dual number
class Dual(NDArrayOperatorsMixin):
    __slots__ = ("value", "tangent", "tag")

    def __init__(self, value, tangent, tag=None):
        if _shape(value) != _shape(tangent):
            raise ValueError(f"reference: tangent shape {_shape(tangent)} != value shape {_shape(value)}")
        self.value, self.tangent = value, tangent
        self.tag = 1 + max(_tag(value), _tag(tangent)) if tag is None else tag

    def __repr__(self):
        return f"Dual(value={self.value!r}, tangent={self.tangent!r}, tag={self.tag})"

    shape = property(lambda self: _shape(self))
    ndim = property(lambda self: len(_shape(self)))
    size = property(lambda self: math.prod(_shape(self)))
    dtype = property(lambda self: _dtype(self))
    T = property(lambda self: np.transpose(self))

    def __len__(self): return len(np.asarray(_p(self)))
    def __iter__(self): return (self[i] for i in range(len(self)))
    def __bool__(self): return bool(_p(self))
    def __float__(self): raise TypeError("reference: float(Dual) would drop the tangent")

    def __array__(self, dtype=None, copy=None):
        raise TypeError("reference: a Dual cannot become a plain ndarray (the tangent would be lost); "
                        "use np.stack/np.concatenate instead of np.array([...])")

    def __getitem__(self, idx):
        _check_index(idx)
        return Dual(self.value[idx], self.tangent[idx], self.tag)

    def __setitem__(self, idx, v):
        _check_index(idx)
        if _tag(v) > self.tag:
            _fail("storing a Dual of an outer perturbation into an inner Dual")
        vv, vt = _split(v, self.tag)
        put = lambda a, x: operator.setitem(a, idx, x)
        self.value = _inplace(self.value, vv, put)
        self.tangent = _inplace(self.tangent, 0 if vt is None else vt, put)

    # ---- methods forwarding to the NumPy functions (which dispatch back to the rules)
    def _fwd(f):
        return lambda self, *a, **k: f(self, *a, **k)
    sum, mean, prod, var, std = _fwd(np.sum), _fwd(np.mean), _fwd(np.prod), _fwd(np.var), _fwd(np.std)
    max, min, dot, clip, cumsum = _fwd(np.max), _fwd(np.min), _fwd(np.dot), _fwd(np.clip), _fwd(np.cumsum)
    argmax, argmin, swapaxes, squeeze = _fwd(np.argmax), _fwd(np.argmin), _fwd(np.swapaxes), _fwd(np.squeeze)
    take, repeat, trace, diagonal, ravel = _fwd(np.take), _fwd(np.repeat), _fwd(np.trace), _fwd(np.diagonal), _fwd(np.ravel)
    copy = _fwd(np.copy)
    del _fwd

    def reshape(self, *shape, **k): return np.reshape(self, shape[0] if len(shape) == 1 else shape, **k)
    def transpose(self, *axes): return np.transpose(self, (axes[0] if len(axes) == 1 else axes) or None)
    def flatten(self): return np.copy(np.ravel(self))

    def astype(self, dtype, **k):
        if not np.issubdtype(np.dtype(dtype), np.inexact):
            return np.asarray(_p(self)).astype(dtype, **k)       # piecewise constant: no tangent
        cast = lambda a: a.astype(dtype, **k) if isinstance(a, Dual) else np.asarray(a).astype(dtype, **k)[()]
        return Dual(cast(self.value), cast(self.tangent), self.tag)

    # ---- NumPy protocols
    def __array_ufunc__(self, ufunc, method, *inputs, **kw):
        out = kw.pop("out", None)
        if out is not None:                        # x += y and friends: compute, then store
            res = self.__array_ufunc__(ufunc, method, *inputs, **kw)
            (o,) = out
            o[...] = res
            return o
        name = ufunc.__name__
        if method == "__call__" and not kw:
            return _call_ufunc(ufunc, inputs)
        if method == "reduce" and ufunc in _REDUCE and set(kw) <= {"axis", "keepdims"}:
            return _REDUCE[ufunc](inputs[0], **{"axis": 0, **kw})
        if method == "accumulate" and ufunc is np.add and set(kw) <= {"axis"}:
            return np.cumsum(inputs[0], **{"axis": 0, **kw})
        if method == "at" and ufunc is np.add and not kw and len(inputs) == 3:
            return _add_at(*inputs)
        _fail(f"{name}.{method}" + (f" with {sorted(kw)}" if kw else ""))

    def __array_function__(self, func, types, args, kwargs):
        rule = _FUNCS.get(func)
        if rule is None:
            _fail(func.__name__)
        if kwargs.get("out") is not None:
            _fail(f"{func.__name__} with out=")
        kwargs = {k: v for k, v in kwargs.items() if k != "out"}
        return rule(_top(list(args) + list(kwargs.values())), *args, **kwargs)


# ============================================================ ufunc rules
# Piecewise-constant results with no tangent at all: plain NumPy values of the primal.
_PLAIN = {np.greater, np.greater_equal, np.less, np.less_equal, np.equal, np.not_equal, np.logical_and,
          np.logical_or, np.logical_xor, np.logical_not, np.isfinite, np.isinf, np.isnan, np.signbit}
# Piecewise-constant real results: a Dual with zero tangent.
_ZERO = {np.sign, np.floor, np.ceil, np.rint, np.trunc, np.floor_divide}


def _dpow_x(x, y, z):                              # y * x**(y-1), and 0 where y == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        d = y * x ** (y - 1)
        return np.where(_p(y) == 0, 0, d) if np.any(_p(y) == 0) else d


def _dpow_y(x, y, z):                              # x**y * log(x); 0 at x == 0; nan for x < 0
    xp = _p(x)
    logx = np.where(xp > 0, np.log(np.where(xp > 0, x, 1)), np.where(xp == 0, 0.0, np.nan))
    return z * logx.astype(_dtype(z))              # a constant Python-float base must not widen z


# Partial derivatives d z / d input, as functions of (inputs..., z); tangent = sum t_i * d_i.
_PARTIALS = {
    # ---- unary: (x, z)
    np.negative: (lambda x, z: -1,),
    np.positive: (lambda x, z: 1,),
    np.reciprocal: (lambda x, z: -(z * z),),
    np.square: (lambda x, z: 2 * x,),
    np.sqrt: (lambda x, z: 0.5 / z,),
    np.cbrt: (lambda x, z: 1 / (3 * z * z),),
    np.exp: (lambda x, z: z,),
    np.exp2: (lambda x, z: z * LN2,),
    np.expm1: (lambda x, z: z + 1,),
    np.log: (lambda x, z: 1 / x,),
    np.log2: (lambda x, z: 1 / (x * LN2),),
    np.log10: (lambda x, z: 1 / (x * LN10),),
    np.log1p: (lambda x, z: 1 / (1 + x),),
    np.sin: (lambda x, z: np.cos(x),),
    np.cos: (lambda x, z: -np.sin(x),),
    np.tan: (lambda x, z: 1 + z * z,),
    np.arcsin: (lambda x, z: 1 / np.sqrt(1 - x * x),),
    np.arccos: (lambda x, z: -1 / np.sqrt(1 - x * x),),
    np.arctan: (lambda x, z: 1 / (1 + x * x),),
    np.sinh: (lambda x, z: np.cosh(x),),
    np.cosh: (lambda x, z: np.sinh(x),),
    np.tanh: (lambda x, z: 1 - z * z,),
    np.arcsinh: (lambda x, z: 1 / np.sqrt(x * x + 1),),
    np.arccosh: (lambda x, z: 1 / np.sqrt(x * x - 1),),
    np.arctanh: (lambda x, z: 1 / (1 - x * x),),
    np.absolute: (lambda x, z: np.sign(_p(x)),),
    np.fabs: (lambda x, z: np.sign(_p(x)),),
    np.deg2rad: (lambda x, z: math.pi / 180,),
    np.rad2deg: (lambda x, z: 180 / math.pi,),
    np.radians: (lambda x, z: math.pi / 180,),
    np.degrees: (lambda x, z: 180 / math.pi,),
    # ---- binary: (x, y, z)
    np.add: (lambda x, y, z: 1, lambda x, y, z: 1),
    np.subtract: (lambda x, y, z: 1, lambda x, y, z: -1),
    np.multiply: (lambda x, y, z: y, lambda x, y, z: x),
    np.divide: (lambda x, y, z: 1 / y, lambda x, y, z: -z / y),
    np.power: (_dpow_x, _dpow_y),
    np.maximum: (lambda x, y, z: _p(x) >= _p(y), lambda x, y, z: _p(x) < _p(y)),
    np.fmax: (lambda x, y, z: _p(x) >= _p(y), lambda x, y, z: _p(x) < _p(y)),
    np.minimum: (lambda x, y, z: _p(x) <= _p(y), lambda x, y, z: _p(x) > _p(y)),
    np.fmin: (lambda x, y, z: _p(x) <= _p(y), lambda x, y, z: _p(x) > _p(y)),
    np.logaddexp: (lambda x, y, z: np.exp(x - z), lambda x, y, z: np.exp(y - z)),
    np.logaddexp2: (lambda x, y, z: np.exp2(x - z), lambda x, y, z: np.exp2(y - z)),
    np.hypot: (lambda x, y, z: x / z, lambda x, y, z: y / z),
    np.arctan2: (lambda a, b, z: b / (a * a + b * b), lambda a, b, z: -a / (a * a + b * b)),
    np.remainder: (lambda x, y, z: 1, lambda x, y, z: -np.floor_divide(_p(x), _p(y))),
    np.fmod: (lambda x, y, z: 1, lambda x, y, z: -np.trunc(_p(x) / _p(y))),
}


def _multi(call, vals, tans, tag, z=None):
    """Multilinear op: tangent = sum_i call(vals with vals[i] replaced by tans[i])."""
    vals = list(vals)
    z = call(vals) if z is None else z
    t = None
    for i, ti in enumerate(tans):
        if ti is not None:
            t = _add(t, call(vals[:i] + [ti] + vals[i + 1:]))
    return _mk(z, t, tag)


def _call_ufunc(uf, inputs):
    if uf in _PLAIN:
        return uf(*map(_p, inputs))
    if uf not in _ZERO and uf not in _PARTIALS and uf is not np.matmul:
        _fail(uf.__name__)
    tag = _top(inputs)
    vals, tans = zip(*(_split(a, tag) for a in inputs))
    z = uf(*vals)
    if uf in _ZERO:
        return Dual(z, np.zeros(_shape(z), _dtype(z)), tag)
    if uf is np.matmul:
        return _multi(lambda o: np.matmul(*o), vals, tans, tag, z)
    t = None
    for d, ti in zip(_PARTIALS[uf], tans):
        if ti is not None:
            t = _add(t, ti * d(*vals, z))
    return Dual(z, _bcast(t, _shape(z)), tag)


def _add_at(a, idx, b):
    if not isinstance(a, Dual) or _tag(b) > a.tag:
        _fail("add.at into an array that is not the outermost Dual")
    bv, bt = _split(b, a.tag)
    a.value = _inplace(a.value, bv, lambda arr, x: np.add.at(arr, idx, x))
    if bt is not None:
        a.tangent = _inplace(a.tangent, bt, lambda arr, x: np.add.at(arr, idx, x))


# ============================================================ NumPy function rules
def _linear(f, drop=(), forbid=()):
    """f linear in its first argument: tangent = f(tangent, same other arguments)."""
    def rule(tag, x, *a, **k):
        _no_dual(a, k, f.__name__)
        if set(forbid) & set(k):
            _fail(f"{f.__name__} with {sorted(set(forbid) & set(k))}")
        xv, tx = _split(x, tag)
        v = f(xv, *a, **k)
        t = f(tx, *a, **{n: w for n, w in k.items() if n not in drop})
        if isinstance(v, (list, tuple)):
            return [Dual(vi, ti, tag) for vi, ti in zip(v, t)]
        return Dual(v, t, tag)
    return rule


def _seq_linear(f):
    """f linear in a sequence of arrays (concatenate, stack...); constants get zero tangents."""
    def rule(tag, seq, *a, **k):
        _no_dual(a, k, f.__name__)
        pairs = [_split(s, tag) for s in seq]
        v = f([p[0] for p in pairs], *a, **k)
        ts = [np.zeros(_shape(s), _dtype(v)) if t is None else t for s, (_, t) in zip(seq, pairs)]
        return Dual(v, f(ts, *a, **k), tag)
    return rule


def _multilinear(f, n=2):
    def rule(tag, *a, **k):
        _no_dual(a[n:], k, f.__name__)
        pairs = [_split(o, tag) for o in a[:n]]
        return _multi(lambda o: f(*o, *a[n:], **k), [p[0] for p in pairs], [p[1] for p in pairs], tag)
    return rule


def _einsum(tag, subs, *ops, **k):
    if not isinstance(subs, str):
        _fail("einsum in sublist form")
    _no_dual((), k, "einsum")
    pairs = [_split(o, tag) for o in ops]
    return _multi(lambda o: np.einsum(subs, *o, **k), [p[0] for p in pairs], [p[1] for p in pairs], tag)


def _plain(f):
    """Integer/boolean results (argmax, shape...): computed on the primal, no tangent."""
    return lambda tag, *a, **k: f(*_ptree(a), **{n: _ptree(w) for n, w in k.items()})


def _const_like(f):
    """zeros_like & co: a constant; kept a Dual (zero tangent) so that out[i] = dual works."""
    def rule(tag, a, *args, **k):
        _no_dual(args, k, f.__name__)
        v = f(_p(a), *args, **k)
        return Dual(v, np.zeros_like(v), tag) if np.issubdtype(v.dtype, np.inexact) else v
    return rule


# ---- reductions
def _extremum(f):
    """max/min: tangent averaged over the tied positions."""
    def rule(tag, x, axis=None, out=None, keepdims=False, **k):
        if k or out is not None:
            _fail(f"{f.__name__} with {sorted(k)}")
        xv, tx = _split(x, tag)
        m = f(xv, axis=axis, keepdims=True)
        mask = _p(xv) == _p(m)
        count = np.sum(mask, axis=axis, keepdims=True).astype(_dtype(tx))
        t = np.sum(tx * mask, axis=axis, keepdims=True) / count
        v = f(xv, axis=axis, keepdims=keepdims)
        return Dual(v, _reshape_like(t, v), tag)
    return rule


def _prod(tag, x, axis=None, dtype=None, out=None, keepdims=False, **k):
    """d prod = sum_i t_i * prod_{j != i} x_j (no division: exact with zeros)."""
    if k or dtype is not None or out is not None:
        _fail(f"prod with {sorted(k) or 'dtype'}")
    xv, tx = _split(x, tag)
    v = np.prod(xv, axis=axis, keepdims=keepdims)
    shp = _shape(xv)
    ax = _axes(axis, len(shp))
    rest = [a for a in range(len(shp)) if a not in ax]
    n, lead = math.prod(shp[a] for a in ax), [shp[a] for a in rest]
    X, T = (np.reshape(np.transpose(a, rest + list(ax)), lead + [n]) for a in (xv, tx))
    if n == 0:
        return Dual(v, _reshape_like(np.zeros(lead, _dtype(tx)), v), tag)
    others = np.stack([np.prod(np.concatenate([X[..., :i], X[..., i + 1:]], axis=-1), axis=-1)
                       for i in range(n)], axis=-1)
    return Dual(v, _reshape_like(np.sum(T * others, axis=-1), v), tag)


def _var(tag, x, axis=None, dtype=None, out=None, ddof=0, keepdims=False, **k):
    """d var = 2 / (N - ddof) * sum((x - mean) * t)."""
    if k or dtype is not None or out is not None:
        _fail(f"var with {sorted(k) or 'dtype'}")
    xv, tx = _split(x, tag)
    v = np.var(xv, axis=axis, ddof=ddof, keepdims=keepdims)
    n = math.prod(_shape(xv)[a] for a in _axes(axis, len(_shape(xv))))
    centred = xv - np.mean(xv, axis=axis, keepdims=True)
    scale = 2.0 / (n - ddof) if n > ddof else math.nan
    return Dual(v, np.sum(centred * tx, axis=axis, keepdims=keepdims) * scale, tag)


def _std(tag, x, *a, **k): return np.sqrt(np.var(x, *a, **k))        # composite


def _norm(tag, x, ord=None, axis=None, keepdims=False):
    """Composite: 2-norm/Frobenius = sqrt(sum(x*x)); vector 1- and inf-norms."""
    vector = isinstance(axis, (int, np.integer)) or (axis is None and len(_shape(x)) == 1)
    if ord is None or (ord == "fro" and not vector) or (ord == 2 and vector):
        return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))
    if vector and ord == 1:
        return np.sum(np.abs(x), axis=axis, keepdims=keepdims)
    if vector and ord == np.inf:
        return np.max(np.abs(x), axis=axis, keepdims=keepdims)
    _fail(f"norm with ord={ord!r}")


# ---- selection
def _where(tag, cond, *xy):
    if not xy:
        return np.nonzero(_p(cond))
    (xv, tx), (yv, ty) = (_split(a, tag) for a in xy)
    c = _p(cond)
    v = np.where(c, xv, yv)
    if tx is None and ty is None:
        return v
    return Dual(v, np.where(c, 0 if tx is None else tx, 0 if ty is None else ty), tag)


def _clip(tag, a, a_min=None, a_max=None, out=None, *, min=None, max=None, **k):
    if k or out is not None:
        _fail(f"clip with {sorted(k)}")
    lo, hi = (a_min if a_min is not None else min), (a_max if a_max is not None else max)
    r = a if lo is None else np.maximum(a, lo)
    return r if hi is None else np.minimum(r, hi)


def _sort(tag, a, axis=-1, kind=None, **k):
    av, ta = _split(a, tag)
    if axis is None:
        av, ta, axis = np.ravel(av), np.ravel(ta), -1
    i = np.argsort(_p(av), axis=axis, kind="stable")
    return Dual(np.take_along_axis(av, i, axis), np.take_along_axis(ta, i, axis), tag)


# ---- linear algebra (A dZ = ... formulas; batched like NumPy)
def _inv(tag, a):
    av, ta = _split(a, tag)
    z = np.linalg.inv(av)
    return Dual(z, -(z @ ta @ z), tag)                       # dZ = -Z dA Z


def _solve(tag, a, b):
    (av, ta), (bv, tb) = _split(a, tag), _split(b, tag)
    z = np.linalg.solve(av, bv)
    return Dual(z, np.linalg.solve(av, _add(tb, None if ta is None else -(ta @ z))), tag)   # A dz = db - dA z


def _det(tag, a):
    av, ta = _split(a, tag)
    z, dlog = np.linalg.det(av), np.trace(np.linalg.solve(av, ta), axis1=-2, axis2=-1)
    return Dual(z, z * dlog, tag)                            # d det = det tr(A^-1 dA)


def _slogdet(tag, a):
    av, ta = _split(a, tag)
    r = np.linalg.slogdet(av)
    return type(r)(_p(r[0]), Dual(r[1], np.trace(np.linalg.solve(av, ta), axis1=-2, axis2=-1), tag))


_FUNCS = {
    **{f: _linear(f) for f in (
        np.reshape, np.transpose, np.swapaxes, np.moveaxis, np.expand_dims, np.squeeze, np.ravel,
        np.flip, np.fliplr, np.flipud, np.roll, np.rot90, np.broadcast_to, np.tile, np.repeat,
        np.cumsum, np.take, np.take_along_axis, np.trace, np.diagonal, np.diag, np.triu, np.tril,
        np.mean, np.copy, np.split, np.array_split, np.hsplit, np.vsplit, np.atleast_1d, np.atleast_2d)},
    np.sum: _linear(np.sum, drop=("initial",)),
    np.diff: _linear(np.diff, forbid=("prepend", "append")),
    **{f: _seq_linear(f) for f in (np.concatenate, np.stack, np.hstack, np.vstack, np.column_stack)},
    **{f: _multilinear(f) for f in (np.dot, np.vdot, np.inner, np.outer, np.tensordot, np.kron, np.cross)},
    np.einsum: _einsum,
    **{f: _extremum(f) for f in (np.max, np.min, np.amax, np.amin)},
    np.prod: _prod, np.var: _var, np.std: _std, np.linalg.norm: _norm,
    np.where: _where, np.clip: _clip, np.sort: _sort,
    np.linalg.inv: _inv, np.linalg.solve: _solve, np.linalg.det: _det, np.linalg.slogdet: _slogdet,
    **{f: _const_like(f) for f in (np.zeros_like, np.ones_like, np.empty_like, np.full_like)},
    **{f: _plain(f) for f in (
        np.shape, np.ndim, np.size, np.argmax, np.argmin, np.argsort, np.nonzero, np.argwhere,
        np.flatnonzero, np.count_nonzero, np.any, np.all, np.isclose, np.allclose, np.array_equal,
        np.searchsorted)},
}
_REDUCE = {np.add: np.sum, np.multiply: np.prod, np.maximum: np.max, np.minimum: np.min}


# ============================================================ public helpers
_TAGS = itertools.count(1 << 20)      # above the small default tags of hand-built Duals


def _tree(f, *trees):
    t = trees[0]
    if isinstance(t, dict):
        return {k: _tree(f, *(u[k] for u in trees)) for k in t}
    if isinstance(t, (list, tuple)):
        if any(len(u) != len(t) for u in trees):
            raise ValueError("reference: tangent structure does not match the argument")
        items = [_tree(f, *z) for z in zip(*trees)]
        return type(t)(*items) if hasattr(t, "_fields") else type(t)(items)
    return f(*trees)


def _leaves(tree):
    out = []
    _tree(out.append, tree)
    return out


def _rebuild(tree, leaves):
    it = iter(leaves)
    return _tree(lambda _: next(it), tree)


def _is_float(x):
    return isinstance(x, (float, Dual)) or (isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind == "f")


def _seed(x, t, tag):
    if not _is_float(x):
        return x                                   # ints, bools, strings...: not differentiated
    if _shape(t) != _shape(x):
        raise ValueError(f"reference: tangent shape {_shape(t)} != argument shape {_shape(x)}")
    if not isinstance(t, Dual):
        t = np.array(t, dtype=_dtype(x))[()]       # tangent in the argument's dtype
    return Dual(x.copy() if isinstance(x, np.ndarray) else x, t, tag)


def _unseed(o, tag):
    if isinstance(o, Dual) and o.tag == tag:
        return o.value, o.tangent
    if o is None or isinstance(o, str):
        return o, None
    if isinstance(o, Dual) and o.tag > tag:
        raise ValueError("reference: a perturbation escaped its jvp")
    dt = _dtype(o) if np.issubdtype(_dtype(o), np.inexact) else np.float64
    return o, np.zeros(_shape(o), dt)[()]


def jvp(f, args, wrt, tangents):
    """(f(*args), directional derivative of f along tangents) for the arguments at wrt.

    wrt: an int (tangents: one tangent tree) or a tuple of ints (tangents: a tuple of trees).
    Arguments may be floats, float arrays, or nested dict/list/tuple of those."""
    args = list(args)
    idx, tans = ((wrt,), (tangents,)) if isinstance(wrt, (int, np.integer)) else (tuple(wrt), tuple(tangents))
    tag = max(next(_TAGS), 1 + max((_tag(l) for a in args for l in _leaves(a)), default=0))
    for i, t in zip(idx, tans):
        args[i] = _tree(lambda x, u: _seed(x, u, tag), args[i], t)
    out = f(*args)
    return _tree(lambda o: _unseed(o, tag)[0], out), _tree(lambda o: _unseed(o, tag)[1], out)


def second_directional(f, args, wrt, u, v):
    """d^2 f [u, v] by nested duals: the derivative along v of (the derivative along u)."""
    return jvp(lambda *a: jvp(f, a, wrt, u)[1], args, wrt, v)[1]


def _per_basis(x, fn):
    """Assemble fn(e) over every basis tangent e of the tree x, in x's structure and dtypes."""
    leaves = _leaves(x)
    zeros = [np.zeros(_shape(l), _dtype(l)) if _is_float(l) else None for l in leaves]
    out = []
    for k, z in enumerate(zeros):
        if z is None:
            out.append(None)
            continue
        g = np.zeros_like(z)
        for j in range(g.size):
            e = [None if w is None else w.copy() for w in zeros]
            e[k].flat[j] = 1
            d = fn(_rebuild(x, e))
            if np.ndim(_p(d)) != 0:
                raise ValueError("reference: grad/hvp need a scalar-valued f")
            g.flat[j] = d
        out.append(g[()])
    return _rebuild(x, out)


def grad(f, args, wrt):
    """Gradient of scalar f wrt args[wrt] (one jvp per basis direction: small inputs only)."""
    if not isinstance(wrt, (int, np.integer)):
        return tuple(grad(f, args, w) for w in wrt)
    return _per_basis(args[wrt], lambda e: jvp(f, args, wrt, e)[1])


def hvp(f, args, wrt, v):
    """Hessian-vector product H v of scalar f wrt args[wrt]: (H v)_i = d^2 f [e_i, v]."""
    return _per_basis(args[wrt], lambda e: second_directional(f, args, wrt, e, v))
