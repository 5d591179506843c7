"""Hypothesis strategies for the property suite (tests/test_properties.py).

- shapes, broadcast-compatible shape pairs and dtypes (float64 and float32);
- values inside a primitive's domain (`values(domain, shape, dtype)`, see DOMAINS);
- call sites with random static arguments: reductions (axis, keepdims, ddof), products
  (matmul/dot shapes, einsum subscripts, tensordot axes), shape functions and indices;
- whole straight-line NumPy programs (`programs()`), optionally with one `for` loop and a
  helper function, rendered as source text.

Values that sit on a kink or a tie would make finite differences (and the one-sided
conventions of the rules) disagree for reasons that are not bugs, so the domains keep away
from them by construction rather than by filtering:

- "odd" values are odd multiples of 1/16 and "even" values multiples of 1/8: an "odd" value
  is never equal to an "even" one, nor to 0, an integer, a half-integer or +-0.5, so
  np.maximum(odd, even), np.clip(odd, -0.5, 0.5), np.floor(odd), np.round(odd) and
  np.where(odd > even, ...) are all at least 1/16 away from their kinks;
- "distinct" values are distinct multiples of 1/8: no ties for np.max / np.min reductions,
  and a positive variance along any axis longer than 1.
"""
import math
import re
import string

import numpy as np
from hypothesis import assume, strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = (np.float64, np.float32)

MAX_SIDE = 4


# ------------------------------------------------------------------ shapes and dtypes
def dtypes():
    return st.sampled_from(DTYPES)


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=MAX_SIDE):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)


def broadcast_pairs(min_dims=0, max_dims=3, max_side=MAX_SIDE):
    """(shape_x, shape_y, shape of the broadcast result)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=2, min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side
    ).map(lambda b: (b.input_shapes[0], b.input_shapes[1], b.result_shape))


# ------------------------------------------------------------------ values in a domain
def _either_sign(lo, hi):
    return st.floats(lo, hi) | st.floats(-hi, -lo)


def _nonzero_or_zero():
    # np.prod: magnitudes near 1 (products of up to 64 of them stay moderate), sometimes 0
    # (the rule is exact with zeros in the input).
    return st.one_of(_either_sign(0.6, 1.4), st.just(0.0))


DOMAINS = {
    "real": st.floats(-2.0, 2.0),            # sin, exp, tanh, ...
    "small": st.floats(-1.0, 1.0),           # inputs of whole programs
    "pos": st.floats(0.5, 2.0),              # log, sqrt, x ** 1.5, base of x ** y
    "unit": st.floats(-0.75, 0.75),          # arcsin, arccos, arctanh, tan
    "nonzero": _either_sign(0.3, 1.5),       # abs, reciprocal, division, hypot, norm
    "odd": st.integers(-16, 15).map(lambda k: (2 * k + 1) / 16),     # kinks: see above
    "even": st.integers(-16, 16).map(lambda k: k / 8),
    "distinct": st.integers(-40, 40).map(lambda k: k / 8),          # unique=True below
    # divisors of x % y with x "odd": x / y is never within 0.018 of an integer (a jump)
    "modulus": st.sampled_from([0.7, 0.9, 1.3, -0.9]),
    "prod": _nonzero_or_zero(),
}


def values(domain, shape, dtype=np.float64):
    """An array of `shape` (a Python float when shape is None) with elements in `domain`.
    Drawn in float64 and cast, so that float32 arrays hold the same kind of values."""
    if shape is None:
        return DOMAINS[domain]
    unique = domain == "distinct"
    return hnp.arrays(np.float64, shape, elements=DOMAINS[domain], unique=unique,
                      fill=st.nothing()).map(lambda a: a.astype(dtype))


# ------------------------------------------------------------------ reductions
def axes_for(ndim):
    """An `axis=` argument valid for ndim: None, an int (maybe negative) or a tuple."""
    if ndim == 0:
        return st.just(None)
    single = st.integers(-ndim, ndim - 1)
    several = st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).flatmap(
        lambda axes: st.tuples(*[st.sampled_from([a, a - ndim]) for a in axes]))
    return st.one_of(st.just(None), single, several)


def reduced_count(shape, axis):
    if axis is None:
        return math.prod(shape)
    axes = axis if isinstance(axis, tuple) else (axis,)
    return math.prod(shape[a % len(shape)] for a in axes)


# ------------------------------------------------------------------ products
@st.composite
def matmul_shapes(draw, max_batch_dims=2, allow_1d=True, batched=True):
    """Operand shapes for a @ b: 1-D, 2-D, or batched with broadcasting batch dimensions
    (a 1-D operand with a batched one is a documented TransformError: not drawn)."""
    side = st.integers(1, MAX_SIDE)
    n, k, m = draw(side), draw(side), draw(side)
    kinds = ["2d"] + (["1d"] if allow_1d else []) + (["batched"] if batched else [])
    ka = draw(st.sampled_from(kinds))
    kb = draw(st.sampled_from([x for x in kinds if not {ka, x} == {"1d", "batched"}]))
    ba, bb = (), ()
    if "batched" in (ka, kb):
        ba, bb, _ = draw(broadcast_pairs(max_dims=max_batch_dims, max_side=3))
    a = (k,) if ka == "1d" else ba + (n, k) if ka == "batched" else (n, k)
    b = (k,) if kb == "1d" else bb + (k, m) if kb == "batched" else (k, m)
    return a, b


@st.composite
def einsum_specs(draw, max_operands=3):
    """(subscripts, operand shapes): explicit or implicit output, no repeated index within
    one operand (a documented TransformError), every output index in some operand."""
    nletters = draw(st.integers(1, 4))
    letters = string.ascii_lowercase[8:8 + nletters]          # i j k l
    sizes = {c: draw(st.integers(1, 3)) for c in letters}
    count = draw(st.integers(1, max_operands))
    ins = []
    for _ in range(count):
        chosen = draw(st.lists(st.sampled_from(letters), min_size=1, max_size=nletters,
                               unique=True))
        ins.append("".join(chosen))
    used = sorted(set("".join(ins)))
    explicit = draw(st.booleans())
    if explicit:
        out = "".join(draw(st.lists(st.sampled_from(used), max_size=len(used), unique=True)))
        spec = ",".join(ins) + "->" + out
    else:
        spec = ",".join(ins)
    return spec, [tuple(sizes[c] for c in term) for term in ins]


@st.composite
def tensordot_args(draw):
    """(shape_a, shape_b, axes) with axes an int or a pair of axis lists."""
    na, nb = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    a = list(draw(shapes(min_dims=na, max_dims=na, max_side=3)))
    b = list(draw(shapes(min_dims=nb, max_dims=nb, max_side=3)))
    if draw(st.booleans()):
        k = draw(st.integers(0, min(na, nb)))
        for j in range(k):
            b[j] = a[na - k + j]
        return tuple(a), tuple(b), k
    k = draw(st.integers(1, min(na, nb)))
    axes_a = draw(st.permutations(range(na)))[:k]
    axes_b = draw(st.permutations(range(nb)))[:k]
    for x, y in zip(axes_a, axes_b):
        b[y] = a[x]
    axes_a = [draw(st.sampled_from([x, x - na])) for x in axes_a]
    return tuple(a), tuple(b), (list(axes_a), list(axes_b))


# ------------------------------------------------------------------ shape functions
def _factorizations(n):
    out = [(n,)]
    for d in range(2, n + 1):
        if n % d == 0:
            out += [(d,) + rest for rest in _factorizations(n // d)]
    return out


@st.composite
def shape_calls(draw):
    """(expression in x (and y), {name: shape}): one call of a shape function of any
    kind, with random static arguments; the shapes drawn make the call valid."""
    kind = draw(st.sampled_from(SHAPE_KINDS))
    return draw(_SHAPE_BUILDERS[kind]())


def _reshape():
    @st.composite
    def build(draw):
        shape = draw(shapes(min_dims=1))
        size = math.prod(shape)
        target = list(draw(st.permutations(draw(st.sampled_from(_factorizations(size))))))
        if draw(st.booleans()):
            target = [1] * draw(st.integers(0, 1)) + target
        if draw(st.booleans()):
            target[draw(st.integers(0, len(target) - 1))] = -1
        form = draw(st.sampled_from(["np.reshape(x, {t})", "x.reshape({t})", "x.reshape({a})"]))
        expr = form.format(t=tuple(target), a=", ".join(map(str, target)))
        return expr, {"x": shape}
    return build()


def _simple(forms, min_dims=0, max_dims=3):
    @st.composite
    def build(draw):
        shape = draw(shapes(min_dims=min_dims, max_dims=max_dims))
        return draw(st.sampled_from(forms)), {"x": shape}
    return build()


def _expand_dims():
    @st.composite
    def build(draw):
        shape = draw(shapes(max_dims=3))
        axis = draw(st.integers(-len(shape) - 1, len(shape)))
        form = draw(st.sampled_from(["np.expand_dims(x, {a})", "x[{idx}]"]))
        nd = len(shape) + 1
        idx = ", ".join("None" if j == axis % nd else ":" for j in range(nd)) or "None"
        return form.format(a=axis, idx=idx), {"x": shape}
    return build()


def _squeeze():
    @st.composite
    def build(draw):
        shape = list(draw(shapes(min_dims=1, max_dims=4, max_side=3)))
        ones = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True))
        for j in ones:
            shape[j] = 1
        j = draw(st.sampled_from(ones))
        form = draw(st.sampled_from(["np.squeeze(x)", "x.squeeze()", "np.squeeze(x, axis={a})",
                                     "np.squeeze(x, {a})"]))
        return form.format(a=draw(st.sampled_from([j, j - len(shape)]))), {"x": tuple(shape)}
    return build()


def _transpose():
    @st.composite
    def build(draw):
        shape = draw(shapes(min_dims=1, max_dims=4, max_side=3))
        perm = tuple(draw(st.permutations(range(len(shape)))))
        forms = ["np.transpose(x)", "np.transpose(x, {p})", "x.transpose({a})", "x.T"]
        form = draw(st.sampled_from(forms))
        return form.format(p=perm, a=", ".join(map(str, perm))), {"x": shape}
    return build()


def _swap_or_move():
    @st.composite
    def build(draw):
        shape = draw(shapes(min_dims=1, max_dims=4, max_side=3))
        nd = len(shape)
        a, b = draw(st.integers(-nd, nd - 1)), draw(st.integers(-nd, nd - 1))
        form = draw(st.sampled_from(["np.swapaxes(x, {a}, {b})", "x.swapaxes({a}, {b})",
                                     "np.moveaxis(x, {a}, {b})"]))
        return form.format(a=a, b=b), {"x": shape}
    return build()


def _flip():
    @st.composite
    def build(draw):
        shape = draw(shapes(min_dims=1))
        axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1)))
        form = "np.flip(x)" if axis is None else draw(st.sampled_from(
            ["np.flip(x, {a})", "np.flip(x, axis={a})"]))
        return form.format(a=axis), {"x": shape}
    return build()


def _concatenate():
    @st.composite
    def build(draw):
        shape = list(draw(shapes(min_dims=1)))
        nd = len(shape)
        axis = draw(st.one_of(st.none(), st.integers(-nd, nd - 1)))
        other = list(shape)
        if axis is not None:
            other[axis] = draw(st.integers(1, MAX_SIDE))
        else:
            other = list(draw(shapes()))
        order = draw(st.sampled_from(["[x, y]", "(y, x)", "[x, y, x]"]))
        form = "np.concatenate({o})" if axis == 0 and draw(st.booleans()) else \
            "np.concatenate({o}, axis={a})"
        return form.format(o=order, a=axis), {"x": tuple(shape), "y": tuple(other)}
    return build()


def _stack():
    @st.composite
    def build(draw):
        shape = draw(shapes())
        axis = draw(st.integers(-len(shape) - 1, len(shape)))
        order = draw(st.sampled_from(["[x, y]", "(y, x)", "[x, y, x]"]))
        return f"np.stack({order}, axis={axis})", {"x": shape, "y": shape}
    return build()


def _split():
    @st.composite
    def build(draw):
        shape = list(draw(shapes(min_dims=1)))
        nd = len(shape)
        axis = draw(st.integers(-nd, nd - 1))
        n = shape[axis]
        if draw(st.booleans()):
            sections = draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
            count = sections
        else:
            cuts = sorted(draw(st.lists(st.integers(0, n), min_size=1, max_size=3)))
            sections, count = cuts, len(cuts) + 1
        j, k = draw(st.integers(0, count - 1)), draw(st.integers(-count, count - 1))
        expr = f"np.split(x, {sections}, axis={axis})[{j}] * np.sum(np.split(x, {sections}, axis={axis})[{k}])"
        if draw(st.booleans()):
            expr = f"np.split(x, {sections}, {axis})[{j}]"
        return expr, {"x": tuple(shape)}
    return build()


def _tile():
    @st.composite
    def build(draw):
        shape = draw(shapes(max_dims=2, max_side=3))
        reps = draw(st.one_of(st.integers(1, 3), st.lists(st.integers(1, 3), min_size=1,
                                                            max_size=3).map(tuple)))
        return f"np.tile(x, {reps})", {"x": shape}
    return build()


def _repeat():
    @st.composite
    def build(draw):
        shape = draw(shapes(min_dims=0, max_side=3))
        r = draw(st.integers(1, 3))
        if not shape or draw(st.booleans()):
            return draw(st.sampled_from([f"np.repeat(x, {r})", f"x.repeat({r})"])), {"x": shape}
        axis = draw(st.integers(-len(shape), len(shape) - 1))
        form = draw(st.sampled_from(["np.repeat(x, {r}, axis={a})", "x.repeat({r}, {a})"]))
        return form.format(r=r, a=axis), {"x": shape}
    return build()


def _broadcast_to():
    @st.composite
    def build(draw):
        target = draw(shapes(min_dims=0))
        keep = draw(st.integers(0, len(target)))
        shape = tuple(draw(st.sampled_from([1, d])) for d in target[len(target) - keep:])
        return f"np.broadcast_to(x, {tuple(target)})", {"x": shape}
    return build()


def _cumsum():
    @st.composite
    def build(draw):
        shape = draw(shapes(min_dims=1))
        axis = draw(st.integers(-len(shape), len(shape) - 1))
        form = draw(st.sampled_from(["np.cumsum(x)", "np.cumsum(x, axis={a})", "x.cumsum({a})",
                                     "x.cumsum()"]))
        return form.format(a=axis), {"x": shape}
    return build()


def _diff():
    @st.composite
    def build(draw):
        shape = draw(shapes(min_dims=1))   # (a side of 1: an empty difference)
        axis = draw(st.integers(-len(shape), len(shape) - 1))
        form = draw(st.sampled_from(["np.diff(x)", "np.diff(x, axis={a})"]))
        return form.format(a=axis), {"x": shape}
    return build()


def _triangle():
    @st.composite
    def build(draw):
        shape = draw(shapes(min_dims=2, max_dims=3))
        k = draw(st.integers(-2, 2))
        fn = draw(st.sampled_from(["np.tril", "np.triu"]))
        form = draw(st.sampled_from([f"{fn}(x)", f"{fn}(x, {k})", f"{fn}(x, k={k})"]))
        return form, {"x": shape}
    return build()


def _fill():
    @st.composite
    def build(draw):
        shape = draw(shapes())
        target = draw(shapes())
        form = draw(st.sampled_from([
            "np.full_like(x, np.sum(x))", f"np.full({target}, np.mean(x))",
            "np.full_like(x, np.sum(x * x)) * x", "float(np.sum(x)) * x",
            "np.full_like(x, 2.0) * x", "np.zeros_like(x) + np.ones_like(x) * x"]))
        return form, {"x": shape}
    return build()


_SHAPE_BUILDERS = {
    "reshape": _reshape,
    "ravel": lambda: _simple(["np.ravel(x)", "x.ravel()", "x.flatten()", "x.reshape(-1)"]),
    "expand_dims": _expand_dims,
    "squeeze": _squeeze,
    "transpose": _transpose,
    "swapaxes/moveaxis": _swap_or_move,
    "flip": _flip,
    "concatenate": _concatenate,
    "stack": _stack,
    "split": _split,
    "tile": _tile,
    "repeat": _repeat,
    "broadcast_to": _broadcast_to,
    "cumsum": _cumsum,
    "diff": _diff,
    "tril/triu": _triangle,
    "copy/astype": lambda: _simple(["np.copy(x)", "x.copy()", "x.astype(np.float64)",
                                    "x.astype(np.float32)", "x.astype(x.dtype)"]),
    "full/float": _fill,
}
SHAPE_KINDS = tuple(_SHAPE_BUILDERS)


def shape_call(kind):
    return _SHAPE_BUILDERS[kind]()


# ------------------------------------------------------------------ indexing
@st.composite
def indices(draw, shape):
    """Source text of an index for an array of `shape`: ints (negative too), slices with
    steps (negative too, possibly empty), None, Ellipsis, integer arrays (with repeats) and
    constant boolean masks. Returns None if numpy rejects the combination."""
    dims = list(range(len(shape)))
    used = draw(st.integers(0, len(shape)))
    parts = []
    arrays = 0
    length = draw(st.integers(1, 4))
    for d in dims[:used]:
        n = shape[d]
        choices = ["int", "slice", "slice", "array" if arrays < 2 else "slice", "mask" if not arrays else "int"]
        kind = draw(st.sampled_from(choices))
        if kind == "int":
            parts.append(str(draw(st.integers(-n, n - 1))))
        elif kind == "slice":
            start = draw(st.one_of(st.none(), st.integers(-n - 1, n + 1)))
            stop = draw(st.one_of(st.none(), st.integers(-n - 1, n + 1)))
            step = draw(st.sampled_from([None, 1, 2, -1, -2]))
            text = ("" if start is None else str(start)) + ":" + ("" if stop is None else str(stop))
            if step is not None:
                text += f":{step}"
            parts.append(text)
        elif kind == "array":
            arrays += 1
            items = draw(st.lists(st.integers(-n, n - 1), min_size=length, max_size=length))
            parts.append(f"np.array({items})")
        else:
            arrays += 1
            mask = draw(st.lists(st.booleans(), min_size=n, max_size=n))
            parts.append(f"np.array({mask})")
    if used < len(shape) and draw(st.booleans()):
        parts.insert(draw(st.integers(0, len(parts))), "...")
    for _ in range(draw(st.integers(0, 2))):
        parts.insert(draw(st.integers(0, len(parts))), "None")
    if not parts:
        parts = [":"] if shape else ["..."]
    text = ", ".join(parts)
    try:
        eval(f"_z[{text}]", {"np": np, "_z": np.zeros(shape)})
    except IndexError:
        assume(False)
    return text


# ------------------------------------------------------------------ whole programs
class _Var:
    __slots__ = ("name", "shape", "bound")

    def __init__(self, name, shape, bound):
        self.name, self.shape, self.bound = name, tuple(shape), bound


def _broadcast(*shapes_):
    try:
        return np.broadcast_shapes(*shapes_)
    except ValueError:
        return None


# Elementwise unary ops: (template, bound of the result given the bound b of the input).
# Smooth everywhere, and well-conditioned on the bounded values they receive.
_UNARY_OPS = [
    ("np.tanh({a})", lambda b: min(b, 1.0)),
    ("np.sin({a})", lambda b: min(b, 1.0)),
    ("np.cos({a})", lambda b: 1.0),
    ("np.arctan({a})", lambda b: min(b, 1.6)),
    ("np.exp(0.5 * np.tanh({a}))", lambda b: 1.7),
    ("np.exp(-{a} * {a})", lambda b: 1.0),
    ("{a} / (1.0 + {a} ** 2)", lambda b: 0.5),
    ("np.log(1.0 + {a} ** 2)", lambda b: math.log1p(b * b)),
    ("np.log1p({a} * {a})", lambda b: math.log1p(b * b)),
    ("np.sqrt(1.0 + {a} * {a})", lambda b: math.sqrt(1 + b * b)),
    ("np.square({a})", lambda b: b * b),
    ("{a} ** 3", lambda b: b ** 3),
    ("-{a}", lambda b: b),
    ("0.5 * {a}", lambda b: 0.5 * b),
    ("1.0 / (1.0 + np.exp(-{a}))", lambda b: 1.0),
    ("np.logaddexp({a}, 0.0)", lambda b: b + 0.7),
    ("np.sinh(0.5 * {a})", lambda b: math.sinh(0.5 * b)),
    ("np.cosh(0.5 * {a})", lambda b: math.cosh(0.5 * b)),
    ("np.arcsinh({a})", lambda b: math.asinh(b)),
    ("np.expm1(0.3 * {a})", lambda b: math.expm1(0.3 * b)),
]

# Elementwise binary ops with broadcasting: (template, bound of the result).
_BINARY_OPS = [
    ("{a} + {b}", lambda p, q: p + q),
    ("{a} - {b}", lambda p, q: p + q),
    ("{a} * {b}", lambda p, q: p * q),
    ("{a} / (1.0 + {b} ** 2)", lambda p, q: p),
    ("np.multiply({a}, np.tanh({b}))", lambda p, q: p),
    ("np.logaddexp({a}, {b})", lambda p, q: max(p, q) + 0.7),
    ("np.hypot(1.5 + np.tanh({a}), {b})", lambda p, q: 2.5 + q),
]

BOUND = 6.0


@st.composite
def programs(draw, max_statements=20, allow_loop=True, allow_helper=True):
    """A random straight-line NumPy program as (source, argument shapes).

    The function takes 1 to 3 array arguments with values in [-1, 1], computes up to
    `max_statements` assignments (each a few primitive calls: elementwise functions,
    broadcasting arithmetic, reductions with axis/keepdims, matmul and einsum, reshapes,
    transposes, indexing, concatenation, item assignment into a copy), optionally runs one `for i in range(k)` loop
    carrying a value, optionally calls a helper function defined in the same module, and
    returns a scalar (np.sum / np.mean of a combination of what it computed).
    Every value keeps a known bound on its magnitude (wrapped in np.tanh when it grows),
    so the program stays well-conditioned."""
    dims = draw(st.lists(st.integers(1, 3), min_size=2, max_size=3))   # a small shared pool
    nargs = draw(st.integers(1, 3))
    arg_shapes = []
    for _ in range(nargs):
        nd = draw(st.integers(0, 3))
        arg_shapes.append(tuple(draw(st.sampled_from(dims + [1])) for _ in range(nd)))
    variables = [_Var(f"x{j}", s, 1.0) for j, s in enumerate(arg_shapes)]
    lines = []
    helpers = []
    counter = [0]
    used = set()

    def fresh():
        counter[0] += 1
        return f"v{counter[0]}"

    def pick(pred=lambda v: True):
        pool = [v for v in variables if pred(v)]
        if pool and draw(st.booleans()):
            pool = pool[-3:]                  # favour recent values: deeper data flow
        return draw(st.sampled_from(pool)) if pool else None

    def emit(expr, shape, bound, target=None, into=None):
        if bound > BOUND:
            expr, bound = f"np.tanh({expr})", 1.0
        used.update(re.findall(r"\b[xv]\d+\b", expr))
        name = target or fresh()
        (into if into is not None else lines).append(f"{name} = {expr}")
        var = _Var(name, shape, bound)
        if target is None:
            variables.append(var)
        return var

    def statement(into=None, avoid=()):
        ok = lambda v: v.name not in avoid
        kind = draw(st.sampled_from(STATEMENT_KINDS))
        a = pick(ok)
        if kind == "unary":
            tpl, bound = draw(st.sampled_from(_UNARY_OPS))
            return emit(tpl.format(a=a.name), a.shape, bound(a.bound), into=into)
        if kind == "binary":
            b = pick(lambda v: ok(v) and _broadcast(a.shape, v.shape) is not None)
            tpl, bound = draw(st.sampled_from(_BINARY_OPS))
            shape = _broadcast(a.shape, b.shape)
            return emit(tpl.format(a=a.name, b=b.name), shape, bound(a.bound, b.bound),
                        into=into)
        if kind == "reduce":
            if not a.shape:
                return None
            fn = draw(st.sampled_from(["np.sum", "np.mean", "np.var", "np.prod", "method"]))
            axis = draw(axes_for(len(a.shape)))
            keep = draw(st.booleans())
            count = reduced_count(a.shape, axis)
            arg = a.name
            if fn == "method":
                m = draw(st.sampled_from(["sum", "mean"]))
                expr = f"{arg}.{m}(axis={axis!r}, keepdims={keep})"
                bound = a.bound * (count if m == "sum" else 1)
            elif fn == "np.prod":
                if a.bound ** count > BOUND:
                    return None
                expr, bound = f"np.prod({a.name}, axis={axis!r}, keepdims={keep})", a.bound ** count
            else:
                expr = f"{fn}({arg}, axis={axis!r}, keepdims={keep})"
                bound = {"np.sum": a.bound * count, "np.mean": a.bound,
                         "np.var": a.bound ** 2}[fn]
            return emit(expr, _shape_of(expr, variables), bound, into=into)
        if kind == "matmul":
            if not a.shape:
                return None
            k = a.shape[-1]
            b = pick(lambda v: ok(v) and (len(v.shape) == 1 and v.shape[0] == k or
                                          len(v.shape) == 2 and v.shape[0] == k))
            if b is None or (len(a.shape) > 2 and len(b.shape) == 1):
                return None
            out = np.ones(a.shape) @ np.ones(b.shape)
            forms = ["{a} @ {b}", "np.matmul({a}, {b})"]
            if len(a.shape) <= 3:
                forms.append("np.einsum")
            form = draw(st.sampled_from(forms))
            if form == "np.einsum":
                la = "ijk"[3 - len(a.shape):]
                lb = "k" if len(b.shape) == 1 else "kl"
                lo = la[:-1] + lb[1:]
                expr = f"np.einsum('{la},{lb}->{lo}', {a.name}, {b.name})"
            else:
                expr = form.format(a=a.name, b=b.name)
            return emit(expr, out.shape, a.bound * b.bound * k, into=into)
        if kind == "shape":
            return _shape_statement(draw, a, emit, into)
        if kind == "index":
            if not a.shape:
                return None
            n = a.shape[0]
            forms = ["{a}[{i}]", "{a}[::-1]", "{a}[..., {j}]", "{a}[{i}:]",
                     "{a}[np.array([{i}, 0, {i}])]"]
            form = draw(st.sampled_from(forms))
            expr = form.format(a=a.name, i=draw(st.integers(-n, n - 1)),
                               j=draw(st.integers(-a.shape[-1], a.shape[-1] - 1)))
            shape = _shape_of(expr, variables)
            return emit(expr, shape, a.bound, into=into)
        if kind == "join":
            b = pick(lambda v: ok(v) and v.shape == a.shape)
            if not a.shape:
                expr = f"np.stack([{a.name}, {b.name}])"
                return emit(expr, (2,), max(a.bound, b.bound), into=into)
            axis = draw(st.integers(-len(a.shape), len(a.shape) - 1))
            fn = draw(st.sampled_from(["np.concatenate", "np.stack"]))
            expr = f"{fn}([{a.name}, {b.name}], axis={axis})"
            shape = _shape_of(expr, variables)
            return emit(expr, shape, max(a.bound, b.bound), into=into)
        if kind == "update":   # item assignment into a new array: x[i] = v, x[i] += v, ...
            if not a.shape:
                return None
            n = a.shape[0]
            index = draw(st.sampled_from(["{i}", "{i}:", "..., {j}", "::-1"])).format(
                i=draw(st.integers(-n, n - 1)),
                j=draw(st.integers(-a.shape[-1], a.shape[-1] - 1)))
            region = np.shape(np.ones(a.shape)[eval(f"np.s_[{index}]")])
            b = pick(lambda v: ok(v) and v is not a and _broadcast(v.shape, region) == region)
            # The new array reads what its new items are computed from (the dual-number
            # reference cannot store a perturbed value into an array that is not one).
            if b is None:
                c = emit(f"np.copy({a.name})", a.shape, a.bound, into=into)
                value = f"np.tanh(2.0 * {a.name}[{index}])"
            else:
                c = emit(f"{a.name} * np.tanh(np.sum({b.name}))", a.shape, a.bound, into=into)
                value = f"np.tanh({b.name})"
            op = draw(st.sampled_from(["=", "+=", "-=", "*="]))
            (into if into is not None else lines).append(f"{c.name}[{index}] {op} {value}")
            used.update(re.findall(r"\b[xv]\d+\b", value))
            c.bound = {"=": max(c.bound, 1.0), "*=": c.bound}.get(op, c.bound + 1.0)
            return c
        if kind == "helper" and allow_helper:
            b = pick(lambda v: ok(v) and _broadcast(a.shape, v.shape) is not None)
            if not helpers:
                helpers.append(draw(st.sampled_from(_HELPERS)))
            shape = _broadcast(a.shape, b.shape)
            return emit(f"helper({a.name}, {b.name})", shape, 2.0, into=into)
        return None

    n = draw(st.integers(1, max_statements))
    loop_at = draw(st.integers(0, n)) if allow_loop and draw(st.booleans()) else None
    for s in range(n + 1):
        if s == loop_at:
            _loop(draw, variables, lines, statement, fresh, used)
        if s < n:
            statement()
    # The result: a scalar made of every value nothing else read (so that every statement
    # counts), or of the last value when all were read.
    sinks = [v for v in variables if v.name not in used and v.name.startswith("v")]
    terms = []
    for v in sinks or variables[-1:]:
        forms = ["np.sum({v})", "np.mean({v})", "np.sum({v} * {v})", "np.mean(np.sin({v}))",
                 "np.sum(np.tanh({v}))"]
        form = draw(st.sampled_from(forms))
        terms.append(form.format(v=v.name))
    result = " + ".join(terms)
    params = ", ".join(f"x{j}" for j in range(nargs))
    body = "\n".join("    " + line for line in lines + [f"return {result}"])
    source = "".join(helpers) + f"def f({params}):\n{body}\n"
    return source, arg_shapes


STATEMENT_KINDS = ("unary", "unary", "binary", "binary", "reduce", "matmul", "shape", "index",
                   "join", "helper", "update")

_HELPERS = [
    "def helper(u, w):\n    return np.tanh(u) * w / (1.0 + w * w)\n\n\n",
    "def helper(u, w):\n    s = np.sin(u + w)\n    return s * np.cos(u) + 0.5 * w\n\n\n",
    "def helper(u, w, scale=0.5):\n    return np.tanh(scale * u) + np.tanh(scale * w)\n\n\n",
]


def _shape_of(expr, variables):
    """The shape of `expr` evaluated on arrays of ones of the variables' shapes."""
    env = {"np": np, **{v.name: np.ones(v.shape) for v in variables}}
    return np.shape(eval(expr, env))


def _shape_statement(draw, a, emit, into):
    if not a.shape:
        return emit(f"np.reshape({a.name}, (1, 1))", (1, 1), a.bound, into=into)
    nd = len(a.shape)
    form = draw(st.sampled_from(["T", "reshape", "expand", "swap", "flip", "cumsum", "bcast"]))
    if form == "T":
        expr = f"{a.name}.T" if nd == 2 else f"np.transpose({a.name})"
        return emit(expr, a.shape[::-1], a.bound, into=into)
    if form == "reshape":
        size = math.prod(a.shape)
        target = draw(st.sampled_from([(size,), (1, size), (size, 1), (-1,)]))
        return emit(f"{a.name}.reshape({target})", tuple(size if t == -1 else t for t in target),
                    a.bound, into=into)
    if form == "expand":
        axis = draw(st.integers(0, nd))
        shape = a.shape[:axis] + (1,) + a.shape[axis:]
        return emit(f"np.expand_dims({a.name}, {axis})", shape, a.bound, into=into)
    if form == "swap":
        i, j = draw(st.integers(0, nd - 1)), draw(st.integers(0, nd - 1))
        shape = list(a.shape)
        shape[i], shape[j] = shape[j], shape[i]
        return emit(f"np.swapaxes({a.name}, {i}, {j})", shape, a.bound, into=into)
    if form == "flip":
        return emit(f"np.flip({a.name}, {draw(st.integers(0, nd - 1))})", a.shape, a.bound,
                    into=into)
    if form == "cumsum":
        axis = draw(st.integers(0, nd - 1))
        return emit(f"np.cumsum({a.name}, axis={axis})", a.shape, a.bound * a.shape[axis],
                    into=into)
    target = (draw(st.integers(1, 3)),) + a.shape
    return emit(f"np.broadcast_to({a.name}, {target})", target, a.bound, into=into)


def _loop(draw, variables, lines, statement, fresh, used):
    """`h = <some value>; for i in range(k): <a few statements>; h = ...` with h carried."""
    h0 = draw(st.sampled_from(variables))
    h = fresh()
    init = h0.name if h0.bound <= 1.0 else f"np.tanh({h0.name})"
    shape = h0.shape
    lines.append(f"{h} = {init}")
    used.add(h0.name)
    carried = _Var(h, shape, min(h0.bound, 1.0))
    k = draw(st.integers(1, 4))
    lines.append(f"for i in range({k}):")
    body = []
    variables.append(carried)
    for _ in range(draw(st.integers(0, 3))):
        statement(into=body)
    # The update: elementwise in h and values that broadcast into h's shape, bounded by 1.
    fits = [v for v in variables if _broadcast(v.shape, carried.shape) == carried.shape]
    other = draw(st.sampled_from(fits))
    update = draw(st.sampled_from([
        "np.tanh({h} * {o} + 0.1 * i)", "0.5 * {h} + 0.4 * np.sin({o} + {h})",
        "np.tanh({h} + {o}) * 0.9", "{h} / (1.0 + {o} * {o}) * np.cos({h})"]))
    body.append(f"{h} = " + update.format(h=h, o=other.name))
    used.add(other.name)
    lines.extend("    " + line for line in body)
    # Values defined in the loop body stay usable after it (k >= 1, so they are defined);
    # h is last, so that the result reads the loop's output.
    variables.remove(carried)
    variables.append(carried)
