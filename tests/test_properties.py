"""Property tests: every rule of the table, and whole random programs, through the compiler.

For each drawn case the test writes the function's source text, turns it into a function
with `function_from_source` (cached by source text), and checks, for float64 and float32:

- grad (all differentiated arguments at once): shape and dtype of each gradient, and its
  values against the dual-number reference (`s2s_ad.reference`) at a tight tolerance;
- jvp along a random direction: the value is f(args), the tangent has the output's dtype
  and agrees with the reference (tight) and with central differences in float64 (loose);
- hvp (per argument): dtype, and H v against nested duals (tight) and against central
  differences of the gradient (loose).

Example counts scale with the Hypothesis profile (tests/conftest.py): `HYPOTHESIS_PROFILE=
nightly python -m pytest tests/test_properties.py` runs 30x more than the default `ci`.
"""
import contextlib

import numpy as np
import pytest
from hypothesis import assume, given, note, settings, strategies as st
from hypothesis.control import currently_in_test_context

import s2s_ad as ad
import s2s_ad.derive
from s2s_ad import reference
from helpers import derived_infos_checked, function_from_source
import strategies as S


def examples(factor):
    """Settings with `factor` x (the profile's max_examples / 10) examples."""
    return settings(max_examples=max(1, round(factor * settings.default.max_examples / 10)))


# ====================================================================== the harness
_FUNCTIONS = {}


def compiled(source):
    """The function `f` defined by `source` (one module per distinct source text)."""
    f = _FUNCTIONS.get(source)
    if f is None:
        f = _FUNCTIONS[source] = function_from_source(source)
    return f


def _to64(x):
    if isinstance(x, np.ndarray) and x.dtype == np.float32:
        return x.astype(np.float64)
    return x


def _direction(x, rng):
    if isinstance(x, float):
        return float(rng.normal())
    return rng.normal(size=x.shape).astype(x.dtype)


def _flat(x):
    return np.ravel(np.asarray(x, dtype=np.float64))


def _close(what, actual, expected, rtol, scale=0.0, atol=0.0):
    a, e = _flat(actual), _flat(expected)
    assert a.shape == e.shape, f"{what}: shape {np.shape(actual)}, expected {np.shape(expected)}"
    assert np.all(np.isfinite(a)), f"{what}: not finite: {actual!r}"
    s = max(float(np.max(np.abs(e), initial=0.0)), scale)
    err = float(np.max(np.abs(a - e), initial=0.0))
    if not err <= rtol * s + atol + 1e-300:
        k = int(np.argmax(np.abs(a - e)))
        raise AssertionError(
            f"{what}: s2s_ad gives {a[k]!r}, the check gives {e[k]!r} at flat index {k} "
            f"(max error {err:.3g} > {rtol:g} x {s:.3g} + {atol:.3g})\n"
            f"  s2s_ad: {np.asarray(actual)!r}\n  check:  {np.asarray(expected)!r}")


def _dtype_of(x):
    return np.asarray(x).dtype


FULL_LIMIT = 16   # compare whole gradients / Hessian-vector products up to this many elements


def _maxabs(*xs):
    return max((float(np.max(np.abs(_flat(x)), initial=0.0)) for x in xs), default=0.0)


def _central(f, args64, wrt, vs, eps):
    hi, lo = list(args64), list(args64)
    for i, v in zip(wrt, vs):
        hi[i] = args64[i] + eps * _to64(v)
        lo[i] = args64[i] - eps * _to64(v)
    return f(*hi), f(*lo)


def check_derivatives(source, args, wrt, seed=0, oracle="reference", low=None):
    """grad, jvp and hvp of `f` (defined by `source`) at `args` with respect to `args[i]`
    for i in `wrt`, against the dual-number reference and finite differences.

    Tolerances are relative to the size of what is compared, with absolute floors for
    values that vanish by cancellation: for a gradient entry, the largest gradient entry of
    all differentiated arguments; for a jvp, sum |g_i v_i|; for hvp, the largest entry of
    every H v and 1e-3 x the largest |g| |v|.

    oracle="fd": only finite differences (for the few primitives the reference lacks).
    low: float32 tolerances (default: when an argument is float32 or f casts to float32)."""
    if currently_in_test_context():
        note(source)
    f = compiled(source)
    args, wrt = list(args), tuple(wrt)
    before = [np.copy(a) for a in args]
    rng = np.random.default_rng(seed)
    if low is None:
        low = any(_dtype_of(a) == np.float32 for a in args) or "float32" in source
    tight, loose = (2e-3, 3e-2) if low else (1e-8, 1e-4)
    use_ref = oracle == "reference"
    with np.errstate(all="ignore"):
        out = f(*args)
    assert np.ndim(out) == 0
    if currently_in_test_context():
        # a mean over an empty piece is NaN: no derivative to compare (the gradient code
        # still runs; see test_regression_mean_over_nothing)
        assume(np.isfinite(out))
    args64 = [_to64(a) for a in args]
    out64 = f(*args64)
    # rounding unit of the float64 run (float32 where f casts to it: then wider steps)
    unit = float(np.finfo(np.float32 if "float32" in source else _dtype_of(out64)).eps)
    eps, heps = (1e-3, 1e-3) if unit > 1e-10 else (1e-6, 1e-5)
    floor = tight * 1e-6 * (1.0 + abs(float(out64)))

    # -- gradient, all differentiated arguments at once
    grads = ad.grad(f, wrt=wrt)(*args)
    assert isinstance(grads, tuple) and len(grads) == len(wrt)
    for i, g in zip(wrt, grads):
        x = args[i]
        if isinstance(x, float):
            assert isinstance(g, float), f"gradient of a Python float is a {type(g)}"
        else:
            assert np.shape(g) == x.shape, f"gradient shape {np.shape(g)} != {x.shape}"
            assert _dtype_of(g) == x.dtype, f"gradient dtype {_dtype_of(g)} != {x.dtype}"
    gscale = _maxabs(*grads)
    if use_ref:
        for i, g in zip(wrt, grads):
            if np.size(args[i]) <= FULL_LIMIT:
                _close(f"grad wrt argument {i} vs reference", g, reference.grad(f, args, i),
                       tight, atol=tight * gscale + floor)
            else:       # large arguments: one random inner product instead (cheaper)
                u = _direction(args[i], rng)
                _, expected = reference.jvp(f, args, i, u)
                _close(f"<grad, u> wrt argument {i} vs reference", np.sum(_flat(g) * _flat(u)),
                       expected, tight, scale=float(np.sum(np.abs(_flat(g) * _flat(u)))),
                       atol=floor)

    # -- jvp along a random direction of all differentiated arguments
    vs = tuple(_direction(args[i], rng) for i in wrt)
    terms = float(sum(np.sum(np.abs(_flat(g) * _flat(v))) for g, v in zip(grads, vs)))
    value, tangent = ad.jvp(f, wrt=wrt)(*args, vs)
    _close("jvp value vs f(args)", value, out, 1e-5 if low else 1e-12, scale=1.0)
    assert np.ndim(tangent) == 0
    assert _dtype_of(tangent) == _dtype_of(out), \
        f"jvp tangent dtype {_dtype_of(tangent)} != output dtype {_dtype_of(out)}"
    dot = float(sum(np.sum(_flat(g) * _flat(v)) for g, v in zip(grads, vs)))
    _close("jvp vs <grad, v>", tangent, dot, tight, scale=terms, atol=floor)
    if use_ref:
        _, expected = reference.jvp(f, args, wrt, vs)
        _close("jvp vs reference", tangent, expected, tight, scale=terms, atol=floor)
    hi, lo = _central(f, args64, wrt, vs, eps)
    noise = 100 * unit / eps * (1.0 + abs(float(out64)))
    _close("jvp vs central differences", tangent, (hi - lo) / (2 * eps), loose, scale=terms,
           atol=noise)

    # -- hvp, one argument at a time (forward mode over the generated adjoint)
    hvs, checks = [], []
    for i, v in zip(wrt, vs):
        hv = ad.hvp(f, wrt=i)(*args, v)
        x = args[i]
        assert np.shape(hv) == np.shape(x), f"hvp shape {np.shape(hv)} != {np.shape(x)}"
        if not isinstance(x, float):
            assert _dtype_of(hv) == x.dtype, f"hvp dtype {_dtype_of(hv)} != {x.dtype}"
        hvs.append(hv)
    for k, (a, b) in enumerate(zip(args, before)):
        assert np.array_equal(a, b, equal_nan=True), f"argument {k} was changed"
    vscale = _maxabs(*vs)
    hscale = _maxabs(*hvs)
    size = 1.0 + abs(float(out64))
    hfloor = 1e-3 * gscale * vscale + floor
    grad64 = ad.grad(f, wrt=wrt)
    for k, (i, v, hv) in enumerate(zip(wrt, vs, hvs)):
        x = args[i]
        if use_ref and np.size(x) <= FULL_LIMIT:
            _close(f"hvp wrt argument {i} vs nested duals", hv, reference.hvp(f, args, i, v),
                   tight, scale=hscale, atol=tight * hfloor)
        elif use_ref:
            u = _direction(x, rng)
            expected = reference.second_directional(f, args, i, u, v)
            _close(f"<u, hvp> wrt argument {i} vs nested duals", np.sum(_flat(hv) * _flat(u)),
                   expected, tight, scale=float(np.sum(np.abs(_flat(hv) * _flat(u)))),
                   atol=tight * hfloor * vscale)
        hi, lo = _central(grad64, args64, (i,), (v,), heps)
        diff = (_flat(hi[k]) - _flat(lo[k])) / (2 * heps)
        _close(f"hvp wrt argument {i} vs differences of the gradient", hv, diff, 10 * loose,
               scale=hscale, atol=100 * unit / heps * (gscale + 10 * size * vscale) +
               1e-3 * hfloor + 10 * heps ** 2 * size * vscale ** 3)


def draw_values(data, domain, shape, dtype, label):
    return data.draw(S.values(domain, shape, dtype), label=label)


def draw_result(data, expr, weighted="np.sum(({e}) * c)"):
    """The returned scalar: usually `weighted` (the weights c make every output element
    count differently), sometimes a plain np.sum / np.mean of `expr`, whose adjoint is the
    scalar the compiler passes around unexpanded (the path most bugs were found on)."""
    form = data.draw(st.sampled_from([weighted, weighted, "np.sum({e})", "np.mean({e})"]),
                     label="result")
    return form.format(e=expr)


def draw_weights(data, shape, dtype):
    """`c`, the non-differentiated weights of the output: of the arguments' dtype, or
    sometimes of the other one (a float32 argument keeps a float32 derivative when f
    computes in float64, and a float64 one keeps float64 under float32 weights)."""
    other = np.float32 if dtype == np.float64 else np.float64
    dtype = data.draw(st.sampled_from([dtype, dtype, other]), label="dtype of c")
    return draw_values(data, "real", shape, dtype, "c")


SIN = "np.sum(np.sin({e}) * c)"     # linear functions: a nonlinearity for a nonzero hvp


# ====================================================================== elementwise
UNARY = [
    ("np.sin(x)", "real"), ("np.cos(x)", "real"), ("np.tan(x)", "unit"),
    ("np.arcsin(x)", "unit"), ("np.arccos(x)", "unit"), ("np.arctan(x)", "real"),
    ("np.sinh(x)", "real"), ("np.cosh(x)", "real"), ("np.tanh(x)", "real"),
    ("np.arcsinh(x)", "real"), ("np.arctanh(x)", "unit"), ("np.exp(x)", "real"),
    ("np.exp2(x)", "real"), ("np.expm1(x)", "real"), ("np.log(x)", "pos"),
    ("np.log2(x)", "pos"), ("np.log10(x)", "pos"), ("np.log1p(x)", "pos"),
    ("np.sqrt(x)", "pos"), ("np.cbrt(x)", "pos"), ("np.square(x)", "real"),
    ("np.abs(x)", "nonzero"), ("abs(x)", "nonzero"), ("np.negative(x)", "real"), ("-x", "real"),
    ("np.positive(x)", "real"), ("np.reciprocal(x)", "nonzero"), ("1.0 / x", "nonzero"),
    ("x ** 2", "real"), ("x ** 3", "real"), ("x ** 0.5", "pos"), ("x ** -1", "nonzero"),
    ("x ** 1.5", "pos"), ("x ** 1", "real"), ("x ** 0", "real"), ("x ** -2.5", "pos"),
    ("2.0 ** x", "real"), ("np.power(x, 4)", "real"), ("np.power(3.0, x)", "real"),
    ("np.clip(x, -0.5, 0.5)", "odd"), ("np.clip(x, -0.5, None)", "odd"),
    ("np.clip(x, None, 0.5)", "odd"), ("x.clip(-1.0, 0.25)", "odd"),
    ("np.maximum(x, 0.0)", "odd"), ("np.minimum(x, 0.5)", "odd"), ("np.fmax(x, -0.25)", "odd"),
    ("np.fmin(0.25, x)", "odd"), ("np.where(x > 0, x, 0.5 * x)", "odd"),
    ("np.sign(x) * x", "nonzero"), ("np.floor(x) + x * np.ceil(x)", "odd"),
    ("np.rint(x) * x + np.trunc(x)", "odd"), ("np.round(x) * x", "odd"),
    ("x * 2.0 - 3.0 / (x * x + 1.0)", "real"),
    ("np.degrees(x) + np.radians(x)", "real"), ("np.rad2deg(x) * np.deg2rad(x)", "real"),
]


@pytest.mark.parametrize("expr,domain", UNARY, ids=[u[0] for u in UNARY])
@examples(10)
@given(data=st.data())
def test_unary(expr, domain, data):
    dtype = data.draw(S.dtypes(), label="dtype")
    python_float = dtype == np.float64 and not expr.startswith("x.") and \
        data.draw(st.integers(0, 9), label="kind") == 0
    shape = None if python_float else data.draw(S.shapes(), label="shape")
    if python_float and domain == "real":
        # The reference fails at a Python float 0.0 for x ** 1 at second order
        # (ZeroDivisionError from 0.0 ** -1 in its power rule): keep Python floats nonzero.
        domain = "nonzero"
    x = draw_values(data, domain, shape, dtype, "x")
    c = draw_weights(data, shape, dtype)
    # the reference has no rule for np.round: finite differences only
    oracle = "fd" if "np.round" in expr else "reference"
    check_derivatives(f"def f(x, c):\n    return {draw_result(data, expr)}\n", [x, c], wrt=(0,),
                      oracle=oracle)


BINARY = [
    ("x + y", "real", "real"), ("x - y", "real", "real"), ("x * y", "real", "real"),
    ("x / y", "real", "nonzero"), ("x ** y", "pos", "real"), ("np.add(x, y)", "real", "real"),
    ("np.subtract(x, y)", "real", "real"), ("np.multiply(x, y)", "real", "real"),
    ("np.divide(x, y)", "real", "nonzero"), ("np.true_divide(x, y)", "real", "nonzero"),
    ("np.power(x, y)", "pos", "real"), ("np.maximum(x, y)", "odd", "even"),
    ("np.minimum(x, y)", "odd", "even"), ("np.fmax(x, y)", "odd", "even"),
    ("np.fmin(y, x)", "odd", "even"), ("np.logaddexp(x, y)", "real", "real"),
    ("np.arctan2(x, y)", "nonzero", "nonzero"), ("np.hypot(x, y)", "nonzero", "nonzero"),
    ("np.where(x > y, x * y, y - x)", "odd", "even"), ("np.where(y < 0.5, np.sin(x), y)", "real", "odd"),
    ("np.clip(x, y, y + 1.0)", "odd", "even"), ("np.clip(x, -0.97, y)", "odd", "even"),
    ("np.clip(x, y, None)", "odd", "even"),
    ("x % y", "odd", "modulus"), ("np.fmod(x, y)", "odd", "modulus"),
    ("x * y - x / (1.0 + y * y) + np.sin(x - y)", "real", "real"),
]


@pytest.mark.parametrize("expr,dx,dy", BINARY, ids=[b[0] for b in BINARY])
@examples(10)
@given(data=st.data())
def test_binary_broadcasting(expr, dx, dy, data):
    dtype = data.draw(S.dtypes(), label="dtype")
    sx, sy, sout = data.draw(S.broadcast_pairs(), label="shapes")
    x = draw_values(data, dx, sx, dtype, "x")
    y = draw_values(data, dy, sy, dtype, "y")
    c = draw_weights(data, sout, dtype)
    # The reference's np.where gives a tangent of the wrong shape when the branch carrying
    # the perturbation is smaller than the result (it does not broadcast it): finite
    # differences only for those.
    oracle = "fd" if "np.sin(x), y)" in expr and (sx != sout or sy != sout) else "reference"
    check_derivatives(f"def f(x, y, c):\n    return {draw_result(data, expr)}\n", [x, y, c],
                      wrt=(0, 1), oracle=oracle)


# ====================================================================== reductions
REDUCTIONS = {"sum": "real", "mean": "real", "max": "distinct", "min": "distinct",
              "prod": "prod", "var": "real", "std": "distinct"}


@pytest.mark.parametrize("fn", list(REDUCTIONS))
@examples(20)
@given(data=st.data())
def test_reductions(fn, data):
    dtype = data.draw(S.dtypes(), label="dtype")
    shape = data.draw(S.shapes(min_dims=1), label="shape")
    axis = data.draw(S.axes_for(len(shape)), label="axis")
    keepdims = data.draw(st.booleans(), label="keepdims")
    count = S.reduced_count(shape, axis)
    extra = ""
    if fn in ("var", "std"):
        ddof = data.draw(st.integers(0, 1 if count >= 3 else 0), label="ddof")
        extra = f", ddof={ddof}" if ddof else ""
        if fn == "std":
            assume(count >= 2)          # std of one element is 0: sqrt's derivative is inf
    method = data.draw(st.booleans(), label="method form")
    if method:
        expr = f"x.{fn}(axis={axis!r}{extra}, keepdims={keepdims})"
    else:
        expr = f"np.{fn}(x, axis={axis!r}{extra}, keepdims={keepdims})"
    if axis is None and not keepdims and data.draw(st.booleans(), label="no arguments"):
        expr = f"x.{fn}()" if method else f"np.{fn}(x)"
    x = draw_values(data, REDUCTIONS[fn], shape, dtype, "x")
    out_shape = np.shape(eval(expr, {"np": np, "x": np.ones(shape)}))
    c = draw_weights(data, out_shape, dtype)
    check_derivatives(f"def f(x, c):\n    return {draw_result(data, expr, SIN)}\n", [x, c], wrt=(0,))


@examples(20)
@given(data=st.data())
def test_norm(data):
    dtype = data.draw(S.dtypes(), label="dtype")
    shape = data.draw(S.shapes(min_dims=1, max_dims=2), label="shape")
    form = data.draw(st.sampled_from(["np.linalg.norm(x)", "np.linalg.norm(x, axis={a})",
                                      "np.linalg.norm(x, axis={a}, keepdims=True)"]))
    expr = form.format(a=data.draw(st.integers(-len(shape), len(shape) - 1), label="axis"))
    x = draw_values(data, "nonzero", shape, dtype, "x")
    c = draw_weights(data, np.shape(eval(expr, {"np": np, "x": np.ones(shape)})), dtype)
    check_derivatives(f"def f(x, c):\n    return {draw_result(data, expr, SIN)}\n", [x, c], wrt=(0,))


# ====================================================================== products
def _product_case(data, expr, shapes_, wrt=None):
    dtype = data.draw(S.dtypes(), label="dtype")
    names = "xyz"[:len(shapes_)]
    args = [draw_values(data, "small", s, dtype, n) for n, s in zip(names, shapes_)]
    env = {"np": np, **{n: np.ones(s) for n, s in zip(names, shapes_)}}
    c = draw_weights(data, np.shape(eval(expr, env)), dtype)
    params = ", ".join(list(names) + ["c"])
    source = f"def f({params}):\n    return {draw_result(data, expr, SIN)}\n"
    check_derivatives(source, args + [c], wrt=tuple(range(len(names))) if wrt is None else wrt)


@pytest.mark.parametrize("form", ["x @ y", "np.matmul(x, y)"])
@examples(20)
@given(data=st.data())
def test_matmul(form, data):
    sa, sb = data.draw(S.matmul_shapes(), label="shapes")
    _product_case(data, form, [sa, sb])


@pytest.mark.parametrize("form", ["np.dot(x, y)", "x.dot(y)"])
@examples(10)
@given(data=st.data())
def test_dot(form, data):
    sa, sb = data.draw(S.matmul_shapes(batched=False), label="shapes")
    # the reference cannot run plain_array.dot(dual): x.dot(y) only with respect to x
    _product_case(data, form, [sa, sb], wrt=(0,) if form == "x.dot(y)" else None)


@examples(10)
@given(data=st.data())
def test_outer(data):
    sa, sb = data.draw(S.shapes(min_dims=1, max_dims=2)), data.draw(S.shapes(min_dims=1, max_dims=2))
    _product_case(data, "np.outer(x, y)", [sa, sb])


@examples(30)
@given(data=st.data())
def test_einsum(data):
    spec, shapes_ = data.draw(S.einsum_specs(), label="einsum")
    names = "xyz"[:len(shapes_)]
    _product_case(data, f"np.einsum('{spec}', {', '.join(names)})", shapes_)


@examples(20)
@given(data=st.data())
def test_tensordot(data):
    sa, sb, axes = data.draw(S.tensordot_args(), label="tensordot")
    form = data.draw(st.sampled_from(["np.tensordot(x, y, {a})", "np.tensordot(x, y, axes={a})"]))
    _product_case(data, form.format(a=axes), [sa, sb])


@examples(10)
@given(data=st.data())
def test_trace(data):
    shape = data.draw(S.shapes(min_dims=2, max_dims=2))
    form = data.draw(st.sampled_from(["np.trace(x)", "x.trace()"]))
    _product_case(data, form, [shape])


# ====================================================================== shape functions
@pytest.mark.parametrize("kind", S.SHAPE_KINDS)
@examples(10)
@given(data=st.data())
def test_shape_functions(kind, data):
    expr, shapes_ = data.draw(S.shape_call(kind), label="call")
    dtype = data.draw(S.dtypes(), label="dtype")
    names = list(shapes_)
    args = [draw_values(data, "real", shapes_[n], dtype, n) for n in names]
    env = {"np": np, **{n: np.ones(shapes_[n], dtype) for n in names}}
    c = draw_weights(data, np.shape(eval(expr, env)), dtype)
    params = ", ".join(names + ["c"])
    source = f"def f({params}):\n    return {draw_result(data, expr, SIN)}\n"
    # the reference has no tangent for the fill value of np.full / np.full_like, nor float()
    oracle = "fd" if "full" in expr or "float(" in expr else "reference"
    check_derivatives(source, args + [c], wrt=tuple(range(len(names))), oracle=oracle)


# ====================================================================== indexing
@examples(50)
@given(data=st.data())
def test_indexing(data):
    dtype = data.draw(S.dtypes(), label="dtype")
    shape = data.draw(S.shapes(max_dims=3, max_side=5), label="shape")
    index = data.draw(S.indices(shape), label="index")
    x = draw_values(data, "odd", shape, dtype, "x")
    expr = f"x[{index}]"
    if shape and data.draw(st.integers(0, 3), label="data mask") == 0:
        expr = data.draw(st.sampled_from(["x[x > 0.25]", "x[x[..., 0] < 0]", "x[x > 0][::-1]"]))
    out_shape = np.shape(eval(expr, {"np": np, "x": x}))
    c = draw_weights(data, out_shape, dtype)
    # read twice, so that the adjoint accumulates into the same array
    source = f"def f(x, c):\n    return np.sum(np.sin({expr}) * c) + np.sum({expr} ** 2)\n"
    check_derivatives(source, [x, c], wrt=(0,))


# ====================================================================== whole programs
def _program_args(data, arg_shapes, dtype):
    return [draw_values(data, "small", s, dtype, f"x{j}") for j, s in enumerate(arg_shapes)]


@examples(250)
@given(program=S.programs(), data=st.data())
def test_random_programs(program, data):
    source, arg_shapes = program
    dtype = data.draw(S.dtypes(), label="dtype")
    args = _program_args(data, arg_shapes, dtype)
    check_derivatives(source, args, wrt=tuple(range(len(args))))


@contextlib.contextmanager
def _every_array_counts():
    """The in-place pass (and `del`) for arrays of any size: they skip arrays under
    64 KiB, and generated programs' arrays are small."""
    import s2s_ad.inplace
    import s2s_ad.release
    saved = s2s_ad.inplace.RELEASE_BYTES, s2s_ad.release.RELEASE_BYTES
    s2s_ad.inplace.RELEASE_BYTES = s2s_ad.release.RELEASE_BYTES = 1
    try:
        yield
    finally:
        s2s_ad.inplace.RELEASE_BYTES, s2s_ad.release.RELEASE_BYTES = saved


@examples(150)
@given(program=S.programs(), data=st.data())
def test_random_programs_updated_in_place(program, data):
    """As test_random_programs, with every dead array updated in place where the pass
    would for a large one (a source of its own: other tests' compiled code is not reused)."""
    source, arg_shapes = program
    dtype = data.draw(S.dtypes(), label="dtype")
    args = _program_args(data, arg_shapes, dtype)
    with _every_array_counts():
        check_derivatives("# every array in place\n" + source, args,
                          wrt=tuple(range(len(args))))


@examples(60)
@given(program=S.programs(), data=st.data())
def test_random_programs_derived_shapes(program, data):
    """As test_random_programs, with every recording the transformations make (the
    program's, and the adjoint's that hvp reads) also derived without running it
    (s2s_ad/derive.py, every array through its rules): the two must agree."""
    source, arg_shapes = program
    dtype = data.draw(S.dtypes(), label="dtype")
    args = _program_args(data, arg_shapes, dtype)
    saved, s2s_ad.derive.SMALL = s2s_ad.derive.SMALL, 0
    try:
        with derived_infos_checked():
            check_derivatives("# derived shapes\n" + source, args, wrt=tuple(range(len(args))))
    finally:
        s2s_ad.derive.SMALL = saved


@examples(30)
@given(program=S.programs(max_statements=10), data=st.data())
def test_random_programs_check_grads(program, data):
    """The public checker on the same kind of programs (float64)."""
    source, arg_shapes = program
    note(source)
    args = _program_args(data, arg_shapes, np.float64)
    ad.check_grads(compiled(source), args, order=2, modes=("fwd", "rev"))


# ====================================================================== regressions
# Minimal examples of the bugs this suite found (fixed in 7e179a7 and 691a602); the properties above
# cover them too, these pin them down by name.
def _regression_grad(source, args, wrt):
    f = compiled(source)
    got = ad.grad(f, wrt=wrt)(*args)
    expected = reference.grad(f, args, wrt)
    assert np.asarray(got).dtype == np.asarray(args[wrt]).dtype, \
        f"gradient dtype {np.asarray(got).dtype}, argument dtype {np.asarray(args[wrt]).dtype}"
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("body,shapes", [
    ("np.sum(x + y)", [(1,), (3,)]), ("np.sum(y - x)", [(), (3,)]),
    ("np.mean(x + y)", [(3, 1), (3, 2)]), ("np.sum(np.broadcast_to(x, (3,)))", [(1,), (3,)]),
    ("np.sum((x + y).T)", [(1, 2), (3, 2)]), ("np.sum(np.sum(x + y, keepdims=True))", [(1,), (3,)]),
])
def test_regression_full_sum_of_a_broadcast_result(body, shapes):
    """The scalar adjoint of a full sum reaching a broadcast operand counts every copy
    (np.sum(x + y) with x (1,) and y (3,) gave [1.] instead of [3.])."""
    args = [np.full(s, 0.5) for s in shapes]
    _regression_grad(f"def f(x, y):\n    return {body}\n", args, 0)


@pytest.mark.parametrize("body", ["np.sum(np.maximum(x, 0.0))", "np.sum(np.minimum(x, y))",
                                  "np.sum(np.clip(x, 0.0, 0.5))"])
def test_regression_mask_partial_under_a_full_sum(body):
    """np.sum(np.maximum(x, 0.0)) had the boolean mask itself as its gradient."""
    _regression_grad(f"def f(x, y):\n    return {body}\n", [np.full(3, 0.25), np.ones(1)], 0)


def test_regression_split_negative_piece_index():
    """np.split(x, 2)[-1]: the piece picked with a negative index got no gradient."""
    _regression_grad("def f(x):\n    return np.sum(np.split(x, 2)[-1])\n", [np.ones(2)], 0)


@pytest.mark.parametrize("dtypes", [(np.float64, np.float32), (np.float32, np.float64)])
def test_regression_gradient_keeps_the_argument_dtype_under_other_weights(dtypes):
    """np.sum(x * c), x float64, c float32: the gradient was c itself, float32."""
    _regression_grad("def f(x, c):\n    return np.sum(x * c)\n",
                     [np.ones(3, dtypes[0]), np.ones(3, dtypes[1])], 0)


def test_regression_transpose_method_with_one_axis():
    """x.transpose(0) on a 1-D x: TypeError in the adjoint rule."""
    _regression_grad("def f(x):\n    return np.sum(np.sin(x.transpose(0)))\n", [np.ones(3)], 0)


def test_regression_check_grads_at_a_vanishing_hessian():
    """check_grads failed a correct hvp of 0 against finite differences of O(eps**2)."""
    f = compiled("def f(x):\n    return np.sum(x * x) ** 2\n")
    np.testing.assert_array_equal(ad.hvp(f)(np.zeros(2), np.ones(2)), 0.0)
    ad.check_grads(f, [np.zeros(2)])


@pytest.mark.parametrize("shape_a", [(2, 1), (1, 2), (1, 1)])
def test_regression_full_sum_of_a_product_with_a_smaller_operand(shape_a):
    """np.sum(a * b), a (2, 1), b (2,): AxisError in the gradient wrt a."""
    _regression_grad("def f(a, b):\n    return np.sum(a * b)\n",
                     [np.ones(shape_a), np.array([2.0, 3.0])], 0)


@pytest.mark.parametrize("second", ["np.sin(x)", "a"])
def test_regression_loop_body_with_two_names_for_one_value(second):
    """a = np.sin(x); b = np.sin(x) (or b = a) in a loop: the gradient was 0."""
    _regression_grad("def f(x):\n    for i in range(2):\n        a = np.sin(x)\n"
                     f"        b = {second}\n    return np.sum(a)\n", [np.array([0.5])], 0)


# ====================================================================== fixed bugs
# Minimal reproducers of compiler bugs the property suite found (now fixed).
def test_regression_hvp_of_a_0d_float32_loop_value_is_float64():
    """A 0-d float32 value carried by a loop: the hvp was float64 (a zero tangent like a Python-float seed)."""
    f = compiled("def f(x):\n    v = x\n    for i in range(2):\n        v = np.sin(v)\n"
                 "    return v\n")
    x, v = np.array(0.5, np.float32), np.array(1.0, np.float32)
    hv = ad.hvp(f)(x, v)
    np.testing.assert_allclose(hv, reference.hvp(f, [x], 0, v), rtol=1e-5)
    assert np.asarray(hv).dtype == np.float32, np.asarray(hv).dtype


def test_regression_hvp_of_a_loop_reading_an_argument_through_an_integer_array():
    """hvp raised TransformError on the adjoint's np.add.at into an accumulator a loop carries."""
    f = compiled("def f(x):\n    for i in range(1):\n        a = np.sin(x)\n"
                 "        b = x[np.array([0, 0])]\n    return np.sum(a) + np.sum(b * b)\n")
    x, v = np.array([0.3]), np.array([1.0])
    np.testing.assert_allclose(ad.hvp(f)(x, v), reference.hvp(f, [x], 0, v), rtol=1e-12)


def test_regression_hvp_merges_equal_sums_across_an_in_place_scatter():
    """hvp was wrong: two equal np.sum(t4_bar) around an np.add.at into the first were merged."""
    f = compiled("def f(x):\n    s = x * 1.0\n    return np.sum(np.sin(x + s[np.array([0, 0])] + s))\n")
    x, v = np.array([[-0.27, -0.5]]), np.array([[0.5, 1.0]])
    np.testing.assert_allclose(ad.hvp(f)(x, v), reference.hvp(f, [x], 0, v), rtol=1e-10)


@pytest.mark.parametrize("body,x,y", [
    ("np.sum(x)", np.array(0.5, np.float32), np.ones(3, np.float32)),
    ("x + x", np.array(0.5, np.float32), np.ones(3, np.float32)),
    ("np.sum(x)", np.array(0.5), np.ones(3, np.float32)),
])
def test_regression_gradient_of_a_0d_array_under_a_linear_sum(body, x, y):
    """A 0-d argument under a linear sum: the gradient was float64, a Python float, or an error."""
    f = compiled(f"def f(x, y):\n    return {body}\n")
    g = ad.grad(f)(x, y)
    assert isinstance(g, (np.ndarray, np.generic)) and g.dtype == x.dtype, repr(g)
    np.testing.assert_allclose(g, reference.grad(f, [x, y], 0))


@pytest.mark.parametrize("body", ["np.einsum('k,k->', x, x)", "np.tensordot(x, x, 1)"])
def test_regression_scalar_einsum_of_float32_gives_float64_gradient(body):
    """A scalar einsum of float32: the seed 1.0 became a float64 einsum operand."""
    _regression_grad(f"def f(x):\n    return {body}\n", [np.array([0.5, 0.25], np.float32)], 0)


@pytest.mark.parametrize("body", ["np.sum(x * x)", "x @ x"])
def test_regression_0d_float32_result_of_a_loop_gives_float64_gradient(body):
    """A 0-d float32 result of a loop: its seed was np.copy(1.0), a float64 array."""
    _regression_grad(f"def f(x):\n    for i in range(1):\n        v = {body}\n    return v\n",
                     [np.array([0.5, 0.25], np.float32)], 0)


@pytest.mark.parametrize("body", [
    "np.sum(np.tanh(np.sum(np.sin(x + y) * np.cos(x) + 0.5 * y, keepdims=True)))",
    "np.sum(np.sum(x * 2.0 + y, keepdims=True) ** 2)",
    "np.sum(np.mean(x + y * y, axis=-1, keepdims=True) * x)",
])
@pytest.mark.parametrize("wrt", [0, 1])
def test_regression_narrow_adjoint_into_a_broadcast_argument(body, wrt):
    """A sum's adjoint kept narrow (size 1 on the summed axes) reached an add that broadcast
    y (2, 1) to (1, 2, 2): reduced back to y it missed the broadcast's copies (2.5, not 3)."""
    args = [np.full((1, 1, 2), 0.25), np.full((2, 1), 0.5)]
    _regression_grad(f"def f(x, y):\n    return {body}\n", args, wrt)
    f = compiled(f"def f(x, y):\n    return {body}\n")
    v = np.ones_like(args[wrt])
    np.testing.assert_allclose(ad.hvp(f, wrt=wrt)(*args, v), reference.hvp(f, args, wrt, v),
                               rtol=1e-10)


@pytest.mark.parametrize("body", ["np.mean(np.linalg.norm(x, axis=-1))",
                                  "np.sum(np.linalg.norm(x, axis=0))"])
def test_regression_norm_along_an_axis_under_a_full_reduction(body):
    """The norm's adjoint with a scalar g (from a mean or sum of everything) divided by the
    norm without putting its reduced axis back: a broadcast error at run time."""
    _regression_grad(f"def f(x):\n    return {body}\n", [np.arange(1.0, 7.0).reshape(3, 2)], 0)


@pytest.mark.parametrize("body", ["np.sum(np.squeeze(x))", "np.sum(np.reshape(x, ()))",
                                  "np.sum(x.T)"])
def test_regression_number_through_a_shape_function_keeps_float32(body):
    """The seed 1.0 reshaped back to a (1,) float32 argument made a float64 gradient."""
    _regression_grad(f"def f(x):\n    return {body}\n", [np.array([0.5], np.float32)], 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_regression_astype_of_a_0d_array(dtype):
    """x.astype(x's own dtype) of a 0-d x: its adjoint, the number 1.0, was given
    `1.0.astype(...)` (an AttributeError at run time)."""
    name = np.dtype(dtype).name
    _regression_grad(f"def f(x):\n    return np.sum(x.astype(np.{name}) * 2.0)\n",
                     [np.array(0.5, dtype)], 0)


def test_regression_adjoint_that_is_a_view_of_an_argument_is_not_scattered_into():
    """x[0:2] += v hands v the adjoint unbroadcast(c[0:2], v): when nothing is summed that is
    a view of the argument c, which reverse mode took for an array of its own and scattered
    v[0]'s adjoint into: c changed under the user, and v's gradient was wrong."""
    f = compiled("def f(x, v, c):\n    x[0:2] += v\n"
                 "    return np.sum(x * c) + np.sum(v[0] * 3.0)\n")
    x, v, c = np.array([1.0, 2.0, 3.0]), np.array([0.5, -0.5]), np.array([2.0, 5.0, 7.0])
    gx, gv = ad.grad(f, wrt=(0, 1))(x, v, c)
    np.testing.assert_array_equal(c, [2.0, 5.0, 7.0])
    np.testing.assert_allclose(gx, c, rtol=1e-12)
    np.testing.assert_allclose(gv, [5.0, 5.0], rtol=1e-12)
    hv = ad.hvp(f, wrt=1)(x, v, c, np.ones(2))
    np.testing.assert_allclose(hv, [0.0, 0.0], atol=1e-12)
    np.testing.assert_array_equal(c, [2.0, 5.0, 7.0])


@pytest.mark.parametrize("fn", ["np.mean", "np.var", "np.std"])
def test_regression_mean_over_nothing(fn):
    """np.mean / np.var over an empty axis (NaN, with NumPy's warning): the adjoint divided
    by a literal 0, a ZeroDivisionError in the generated code; the adjoint of an empty array
    is an empty array, the tangent NaN like the value."""
    f = compiled(f"def f(x):\n    return np.sum({fn}(x, axis=1)) + np.sum(x * x)\n")
    x = np.zeros((3, 0), np.float32)
    assert ad.grad(f)(x).shape == (3, 0) and ad.grad(f)(x).dtype == np.float32
    assert ad.hvp(f)(x, x).shape == (3, 0)
    with np.errstate(all="ignore"):
        value, tangent = ad.jvp(f)(np.zeros((3, 0)), np.zeros((3, 0)))
    assert np.isnan(value) and np.isnan(tangent)
    g = compiled("def f(x):\n    return np.sum(x * x) + np.mean(np.split(x, [0])[0])\n")
    y = np.array([0.5, 1.0])
    with np.errstate(all="ignore"):
        value, grad = ad.value_and_grad(g)(y)
    assert np.isnan(value)
    np.testing.assert_allclose(grad, 2 * y, rtol=1e-12)


@pytest.mark.parametrize("fn", ["np.var", "np.std"])
@pytest.mark.parametrize("ddof", [2, 3])
def test_regression_variance_without_degrees_of_freedom(fn, ddof):
    """ddof at least the count: NumPy divides by max(count - ddof, 0), an infinite or NaN
    value. The adjoint divided by a literal (2 - 2), a ZeroDivisionError, and for ddof = 3
    by -1, a finite derivative of the wrong sign; every derivative is NaN now, like the
    value, in both modes and at second order, and float32 stays float32."""
    f = compiled(f"def f(x):\n    return np.sum({fn}(x, axis=1, ddof={ddof})) + np.sum(x * x)\n")
    x = np.array([[0.5, 2.0], [1.0, -1.0]], np.float32)
    with np.errstate(all="ignore"):
        value, grad = ad.value_and_grad(f)(x)
        np.testing.assert_equal(value, f(x))      # inf, as NumPy's
        assert grad.dtype == np.float32 and np.isnan(grad).all()
        value, tangent = ad.jvp(f)(x, np.ones_like(x))
        assert np.isnan(tangent)
        assert np.isnan(ad.hvp(f)(x, np.ones_like(x))).all()
        assert np.isnan(ad.jacobian(f, mode="forward")(x)).all()   # (batched tangents)


@pytest.mark.parametrize("op", ["*=", "/=", "**=", "-="])
def test_regression_augmented_item_assignment(op):
    """x[i] *= v was compiled as x[i] += v (every augmented item assignment but -= went to
    index_add): a wrong value and a wrong derivative, silently. Value, gradient, jvp, hvp
    and the batched Jacobian against the function itself and the reference."""
    source = (f"def f(x, v):\n    y = x * v\n    y[[1, 2]] {op} v\n    y[0, 1:] {op} v[0]\n"
              "    return np.sum(y * y)\n")
    f = compiled(source)
    x = np.array([[0.5, 1.5, 2.0], [1.2, 0.7, 1.1], [0.9, 1.3, 0.6]])
    v = np.array([1.1, 0.8, 1.4])
    value, gx = ad.value_and_grad(f)(x, v)
    assert value == f(x, v)
    check_derivatives(source, (x, v), (0, 1))
    g = compiled(f"def f(x):\n    y = x * 1.0\n    y[1] {op} x[0]\n    return y\n")
    xs = np.array([0.5, 1.5, 2.0])
    J = ad.jacobian(g, mode="forward")(xs)
    np.testing.assert_allclose(J, ad.jacobian(g, mode="reverse")(xs), rtol=1e-12)
    np.testing.assert_allclose(J[1], [reference.jvp(g, [xs], 0, e)[1][1] for e in np.eye(3)],
                               rtol=1e-12)


@pytest.mark.parametrize("expr,n", [("np.linspace(x[0], 2.0, 5)", 5),
                                    ("np.linspace(0.5, x[1] * x[0], 4, endpoint=False)", 4),
                                    ("np.linspace(x[0], x[1], 6)", 6)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_regression_linspace_end_points(expr, n, dtype):
    """np.linspace was registered with a zero derivative: a silent wrong gradient for
    end points that depend on the argument (linspace(a, b) == a (1 - t) + b t)."""
    source = f"def f(x, c):\n    return np.sum(np.sin({expr}) * c)\n"
    x = np.array([0.3, 1.2], dtype)
    c = np.linspace(0.5, 1.5, n).astype(dtype)
    check_derivatives(source, [x, c], wrt=(0,), oracle="fd")


def test_regression_loop_whose_result_gets_no_adjoint():
    """An elementwise loop whose result reaches the output only through a mean over an
    empty array (no contribution): its backward step returned nothing, dropping the
    contributions written out just before it, and the gradient named undefined adjoints
    (a NameError). Found by random programs with an empty leading axis."""
    f = compiled("def f(x, y):\n    v = x\n    for i in range(2):\n"
                 "        v = 0.5 * v + 0.4 * np.sin(v)\n"
                 "    w = np.reshape(np.sum(x ** 3), (1, 1)) * y\n"
                 "    return np.mean(v - x) + np.sum(np.tanh(w))\n")
    x = np.zeros((0, 1, 1))
    with np.errstate(all="ignore"):
        gx, gy = ad.grad(f, wrt=(0, 1))(x, 0.5)
    assert gx.shape == (0, 1, 1) and gy == 0.0


def test_regression_carried_value_broadcast_bigger_in_a_loop():
    """v / (1 + w * w) with v (2, 1, 3) and w (2, 1) makes v (2, 2, 3) from the first
    iteration on: the carried value's shape is unknown (dynamic), and an adjoint of
    unknown shape was taken to fit an argument of unknown shape, with no reduction: the
    gradient came out (2, 2, 3) for x of shape (2, 1, 3), its values wrong."""
    source = ("def f(x):\n    w = x[..., -1]\n    v = np.log(1.0 + x ** 2)\n"
              "    for i in range(2):\n        v = v / (1.0 + w * w) * np.cos(v)\n"
              "    return np.mean(v)\n")
    x = np.random.default_rng(0).normal(size=(2, 1, 3))
    assert ad.grad(compiled(source))(x).shape == x.shape
    check_derivatives(source, [x], wrt=(0,))


def test_regression_mean_of_an_empty_carried_value():
    """A mean whose count is known only at run time (of a loop-carried value of changing
    shape) divided by a.size // ans.size: 1.0 / 0 for an empty array (ZeroDivisionError)."""
    f = compiled("def f(x):\n    w = x[..., -1]\n    v = x * 1.0\n    for i in range(2):\n"
                 "        v = v / (1.0 + w * w) * np.cos(v)\n    return np.mean(v) + np.sum(x)\n")
    x = np.zeros((0, 1, 3))
    with np.errstate(all="ignore"):
        value, grad = ad.value_and_grad(f)(x)
    assert np.isnan(value) and grad.shape == x.shape
