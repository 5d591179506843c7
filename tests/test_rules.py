"""Every derivative rule, through the compiler, against central finite differences:
float64 over shapes with broadcasting, and float32 keeping its dtype."""
import numpy as np
import pytest

import s2s_ad as ad
from s2s_ad import reference
from helpers import assert_tree_close, function_from_source, numeric_grad

RNG = np.random.default_rng(0)


def sample(shape, kind="any", rng=RNG):
    if kind == "pos":
        return rng.uniform(0.5, 2.0, size=shape)
    if kind == "unit":
        return rng.uniform(-0.8, 0.8, size=shape)
    if kind == "nonzero":
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.3, 1.5, size=shape)
    return rng.normal(size=shape)


def check_expression(expr, inputs, extra="", f32=True, hvp=True):
    """`inputs`: {name: array}; differentiates sum(expr * c) with respect to every input."""
    names = list(inputs)
    env = {"np": np, **inputs}
    exec(extra, env)
    value = eval(expr, env)
    c = sample(np.shape(value))
    params = ", ".join(names + ["c"])
    body = (extra + "\n" if extra else "") + f"return np.sum(({expr}) * c)"
    body = "\n".join("    " + line for line in body.split("\n"))
    f = function_from_source(f"def f({params}):\n{body}\n")
    args = [inputs[n] for n in names] + [c]
    wrt = tuple(range(len(names)))
    got = ad.grad(f, wrt=wrt)(*args)
    for i, g in enumerate(got):
        expected = numeric_grad(f, args, i)
        if isinstance(inputs[names[i]], float):
            assert isinstance(g, float)
        assert_tree_close(g, expected, rtol=1e-5, atol=1e-6)
    # Forward mode: the jvp along a random direction agrees with <grad, v> and with the
    # dual-number reference.
    direction = tuple(sample(np.shape(inputs[n])) if isinstance(inputs[n], np.ndarray)
                      else float(sample(())) for n in names)
    value, derivative = ad.jvp(f, wrt=wrt)(*args, direction)
    np.testing.assert_allclose(value, f(*args), rtol=1e-12)
    expected = sum(np.sum(g * v) for g, v in zip(got, direction))
    np.testing.assert_allclose(derivative, expected, rtol=1e-7, atol=1e-9)
    _, oracle = reference.jvp(f, args, wrt, direction)
    np.testing.assert_allclose(derivative, oracle, rtol=1e-9, atol=1e-11)
    # Second order: forward mode over the generated adjoint, against nested duals.
    if hvp:
        for i in wrt:
            if isinstance(inputs[names[i]], np.ndarray):
                v = sample(np.shape(inputs[names[i]]))
                np.testing.assert_allclose(ad.hvp(f, wrt=i)(*args, v),
                                           reference.hvp(f, args, i, v), rtol=1e-7, atol=1e-9)
    if f32:
        args32 = [a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in args]
        got32 = ad.grad(f, wrt=wrt)(*args32)
        for g32, g64, a in zip(got32, got, args32):
            if isinstance(a, np.ndarray):
                assert g32.dtype == np.float32, f"float32 input gave a {g32.dtype} gradient"
                np.testing.assert_allclose(g32, g64, rtol=2e-3, atol=2e-3)
    return got


UNARY = [
    ("np.sin(x)", "any"), ("np.cos(x)", "any"), ("np.tan(x)", "unit"), ("np.tanh(x)", "any"),
    ("np.exp(x)", "any"), ("np.log(x)", "pos"), ("np.log1p(x)", "pos"), ("np.expm1(x)", "any"),
    ("np.sqrt(x)", "pos"), ("np.abs(x)", "nonzero"), ("np.square(x)", "any"),
    ("np.negative(x)", "any"), ("-x", "any"), ("np.reciprocal(x)", "nonzero"),
    ("np.arctan(x)", "any"), ("np.sinh(x)", "any"), ("np.cosh(x)", "any"),
    ("np.arcsin(x)", "unit"), ("np.arccos(x)", "unit"), ("np.arctanh(x)", "unit"),
    ("np.arcsinh(x)", "any"), ("np.log2(x)", "pos"), ("np.log10(x)", "pos"),
    ("np.exp2(x)", "any"), ("np.cbrt(x)", "pos"), ("x ** 2", "any"), ("x ** 3", "any"),
    ("x ** 0.5", "pos"), ("x ** -1", "nonzero"), ("x ** 1.5", "pos"), ("x ** 1", "any"),
    ("2.0 ** x", "any"), ("np.clip(x, -0.5, 0.5)", "any"), ("np.clip(x, -0.5, None)", "any"),
    ("np.sign(x) * x", "nonzero"), ("np.floor(x) + x", "any"), ("1.0 / x", "nonzero"),
    ("np.maximum(x, 0.0)", "nonzero"), ("np.minimum(x, 0.1)", "nonzero"),
    ("np.where(x > 0, x, 2.0 * x)", "nonzero"), ("np.where(x > 0, np.exp(x), 0.0)", "nonzero"),
]


@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
@pytest.mark.parametrize("expr,kind", UNARY)
def test_unary(expr, kind, shape):
    x = sample(shape, kind)
    if "clip" in expr:  # keep away from the kinks
        x = np.where(np.abs(np.abs(x) - 0.5) < 0.05, x + 0.2, x)
    check_expression(expr, {"x": np.array(x)})


def test_python_float_argument_gets_python_float_gradient():
    got = check_expression("np.sin(x) * x", {"x": 0.7}, f32=False)
    assert isinstance(got[0], float)


PAIRS = [((), (3,)), ((3,), ()), ((3, 1), (1, 4)), ((5, 4), (4,)), ((2, 3), (2, 3)),
         ((4,), (2, 3, 4))]
BINARY = [
    ("x + y", "any", "any"), ("x - y", "any", "any"), ("x * y", "any", "any"),
    ("x / y", "any", "nonzero"), ("x ** y", "pos", "any"), ("np.power(x, y)", "pos", "any"),
    ("np.maximum(x, y)", "any", "any"), ("np.minimum(x, y)", "any", "any"),
    ("np.arctan2(x, y)", "nonzero", "nonzero"), ("np.hypot(x, y)", "nonzero", "nonzero"),
    ("np.logaddexp(x, y)", "any", "any"), ("np.where(x > y, x * y, y - x)", "any", "any"),
    ("np.divide(x, y) - np.multiply(x, y)", "any", "nonzero"),
    ("np.clip(x, y, 1.5)", "any", "any"),
]


@pytest.mark.parametrize("shapes", PAIRS, ids=str)
@pytest.mark.parametrize("expr,kx,ky", BINARY)
def test_binary_broadcasting(expr, kx, ky, shapes):
    x, y = sample(shapes[0], kx), sample(shapes[1], ky)
    if "clip" in expr:
        x = np.where(np.abs(x - 1.5) < 0.05, x - 0.2, x)
    check_expression(expr, {"x": np.array(x), "y": np.array(y)})


REDUCTIONS = ["np.sum", "np.mean", "np.max", "np.min", "np.prod", "np.var", "np.std"]
AXES = [None, 0, -1, 1, (0, 2), (-1, 0)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("fn", REDUCTIONS)
def test_reductions(fn, axis, keepdims):
    x = sample((3, 4, 2))
    check_expression(f"{fn}(x, axis={axis!r}, keepdims={keepdims})", {"x": x})


@pytest.mark.parametrize("expr", [
    "x.sum()", "x.sum(axis=0)", "x.mean(1)", "x.max(axis=-1, keepdims=True)", "x.min()",
    "x.prod(axis=1)", "x.var()", "x.std(axis=0)", "np.var(x, axis=1, ddof=1)",
    "np.std(x, ddof=1)", "np.sum(x, 1) / np.sum(x)",
])
def test_reduction_methods_and_ddof(expr):
    check_expression(expr, {"x": sample((3, 4))})


def test_prod_with_a_zero_is_exact():
    x = sample((3, 4))
    x[1, 2] = 0.0
    check_expression("np.prod(x, axis=1)", {"x": x})
    check_expression("np.prod(x)", {"x": x})


def test_max_ties_split_evenly():
    f = function_from_source("def f(x):\n    return np.max(x)\n")
    g = ad.grad(f)(np.array([1.0, 3.0, 3.0, 2.0]))
    np.testing.assert_allclose(g, [0.0, 0.5, 0.5, 0.0])


def test_maximum_tie_goes_to_first_argument():
    f = function_from_source("def f(x, y):\n    return np.sum(np.maximum(x, y))\n")
    gx, gy = ad.grad(f, wrt=(0, 1))(np.array([1.0, 2.0]), np.array([1.0, 3.0]))
    np.testing.assert_allclose(gx, [1.0, 0.0])
    np.testing.assert_allclose(gy, [0.0, 1.0])


MATMUL = [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((5, 2, 3), (3, 4)),
          ((5, 2, 3), (5, 3, 4)), ((1, 2, 3), (5, 3, 4)), ((2, 3), (5, 3, 4))]


@pytest.mark.parametrize("shapes", MATMUL, ids=str)
def test_matmul(shapes):
    inputs = {"x": sample(shapes[0]), "y": sample(shapes[1])}
    check_expression("x @ y", inputs)
    check_expression("np.matmul(x, y)", inputs)


@pytest.mark.parametrize("shapes", MATMUL[:4], ids=str)
def test_dot(shapes):
    inputs = {"x": sample(shapes[0]), "y": sample(shapes[1])}
    check_expression("np.dot(x, y)", inputs)
    # (the reference cannot run plain_array.dot(dual), so no second-order check here)
    check_expression("x.dot(y)", inputs, hvp=False)


@pytest.mark.parametrize("spec,shapes", [
    ("ij,jk->ik", [(2, 3), (3, 4)]), ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
    ("ij->", [(2, 3)]), ("ij,ij->i", [(2, 3), (2, 3)]), ("i,j->ij", [(3,), (4,)]),
    ("ijk->ik", [(2, 3, 4)]), ("ij,jk", [(2, 3), (3, 4)]), ("ij,j->ij", [(2, 3), (3,)]),
    ("bhtd,bhsd->bhts", [(2, 2, 3, 4), (2, 2, 3, 4)]),
])
def test_einsum(spec, shapes):
    names = "xyz"[:len(shapes)]
    inputs = {n: sample(s) for n, s in zip(names, shapes)}
    check_expression(f"np.einsum('{spec}', {', '.join(names)})", inputs)


@pytest.mark.parametrize("axes,shapes", [
    (1, [(2, 3), (3, 4)]), (2, [(2, 3, 4), (3, 4, 5)]), (([1], [0]), [(2, 3), (3, 4)]),
    (([0, 2], [2, 0]), [(2, 3, 4), (4, 5, 2)]), (0, [(2,), (3,)]),
])
def test_tensordot(axes, shapes):
    check_expression(f"np.tensordot(x, y, axes={axes!r})", {"x": sample(shapes[0]), "y": sample(shapes[1])})


@pytest.mark.parametrize("expr,shapes", [
    ("np.outer(x, y)", [(3,), (4,)]), ("np.outer(x, y)", [(2, 2), (3,)]),
    ("np.trace(x)", [(3, 3)]), ("np.trace(x)", [(2, 4)]),
    ("np.linalg.norm(x)", [(5,)]), ("np.linalg.norm(x)", [(3, 4)]),
    ("np.linalg.norm(x, axis=1)", [(3, 4)]), ("np.linalg.norm(x, axis=0, keepdims=True)", [(3, 4)]),
])
def test_products_and_norms(expr, shapes):
    check_expression(expr, {n: sample(s) for n, s in zip("xy", shapes)})


SHAPE_OPS = [
    ("x.reshape(4, 6)", (2, 3, 4)), ("np.reshape(x, (3, -1))", (2, 3, 4)),
    ("x.reshape(-1)", (2, 3, 4)), ("np.expand_dims(x, 1)", (2, 3)), ("x[:, None, :]", (2, 3)),
    ("np.squeeze(x)", (2, 1, 3)), ("np.squeeze(x, axis=1)", (2, 1, 3)), ("np.ravel(x)", (2, 3)),
    ("x.T", (2, 3)), ("np.transpose(x)", (2, 3, 4)), ("np.transpose(x, (1, 2, 0))", (2, 3, 4)),
    ("x.transpose(2, 0, 1)", (2, 3, 4)), ("np.swapaxes(x, 0, 2)", (2, 3, 4)),
    ("x.swapaxes(-1, -2)", (2, 3, 4)), ("np.moveaxis(x, 0, -1)", (2, 3, 4)),
    ("np.flip(x, 0)", (2, 3)), ("np.flip(x)", (2, 3)), ("np.tile(x, 2)", (3,)),
    ("np.tile(x, (2, 1, 3))", (2, 3)), ("np.repeat(x, 2)", (2, 3)),
    ("np.repeat(x, 3, axis=1)", (2, 3)), ("np.broadcast_to(x, (4, 2, 3))", (2, 3)),
    ("np.broadcast_to(x, (2, 3))", (2, 1)), ("np.cumsum(x)", (2, 3)),
    ("np.cumsum(x, axis=1)", (2, 3)), ("x.cumsum(0)", (2, 3)), ("x.astype(np.float64)", (2, 3)),
    ("np.copy(x)", (2, 3)), ("x.copy()", (2, 3)),
]


@pytest.mark.parametrize("expr,shape", SHAPE_OPS)
def test_shape_functions(expr, shape):
    check_expression(expr, {"x": sample(shape)})


@pytest.mark.parametrize("expr", [
    "np.concatenate([x, y])", "np.concatenate([x, y, x], axis=1)",
    "np.concatenate((x, y), axis=-1)", "np.concatenate([x, y], axis=None)",
    "np.stack([x, y])", "np.stack([x, y, x], axis=1)", "np.stack((x, y), axis=-1)",
])
def test_joining(expr):
    check_expression(expr, {"x": sample((2, 3)), "y": sample((2, 3))})


@pytest.mark.parametrize("extra,expr", [
    ("a, b, d = np.split(x, 3)", "a * b + d"),
    ("a, b = np.split(x, [2], axis=1)", "np.sum(a) * b"),
    ("p = np.split(x, 3, axis=0)", "p[1] * 2.0"),
])
def test_split(extra, expr):
    check_expression(expr, {"x": sample((3, 6))}, extra=extra)


@pytest.mark.parametrize("expr", [
    "x[1]", "x[-1]", "x[1:3]", "x[::2]", "x[::-1]", "x[1, 2]", "x[..., 1]", "x[:, 1:]",
    "x[None]", "x[np.array([0, 2, 0, 0])]", "x[np.array([0, 2, 0]), 1:]",
    "x[np.array([1, 1]), np.array([0, 0])]", "x[x > 0]", "x[x[:, 0] > 0]",
    "x[1] + x[2] * x[1:3, 0:1]", "x[np.arange(3), np.array([0, 3, 0])]",
])
def test_indexing(expr):
    check_expression(expr, {"x": sample((4, 5))})


def test_astype_float32_to_float64_keeps_the_input_dtype():
    f = function_from_source("def f(x):\n    return np.sum(x.astype(np.float64) ** 2)\n")
    x = sample((3,)).astype(np.float32)
    g = ad.grad(f)(x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 2 * x, rtol=1e-6)


def test_comparisons_and_constructors_are_constants():
    check_expression("x * (x > 0) + np.ones(3) * np.sum(x) + np.arange(3) * x",
                     {"x": sample((3,), "nonzero")})
    check_expression("x @ np.eye(3) + np.zeros((2, 3)) + np.zeros_like(x) * x", {"x": sample((2, 3))})


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_scalar_type_casts(dtype):
    """np.float64(x) / np.float32(x): linear, the adjoint cast back to x's dtype (the
    dual-number reference cannot follow these constructors: finite differences only, on
    a function whose casts lose nothing in float64)."""
    f = function_from_source(
        "def f(x):\n    return np.sum(np.sin(np.float64(x)) * x * np.float64(x[0]))\n")
    x = np.array([0.3, -0.6, 0.9], dtype)
    x64 = x.astype(np.float64)
    num = numeric_grad(f, [x64], 0)
    g64 = ad.grad(f)(x64)
    np.testing.assert_allclose(g64, num, rtol=1e-6, atol=1e-8)
    g = ad.grad(f)(x)
    assert g.dtype == dtype
    np.testing.assert_allclose(g, g64, rtol=1e-5)
    v = np.array([1.0, -0.5, 0.25])
    np.testing.assert_allclose(ad.jvp(f)(x64, v)[1], num @ v, rtol=1e-6)
    eps = 1e-5
    hv_num = (ad.grad(f)(x64 + eps * v) - ad.grad(f)(x64 - eps * v)) / (2 * eps)
    np.testing.assert_allclose(ad.hvp(f)(x64, v), hv_num, rtol=1e-5, atol=1e-7)
    # float32(x) in a float64 function: its derivative is 1, given back as float64
    f32 = function_from_source("def f(x):\n    return np.sum(np.float32(x) * 2.0)\n")
    g = ad.grad(f32)(x64)
    assert g.dtype == np.float64
    np.testing.assert_array_equal(g, 2.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_power_with_a_zero_or_negative_constant_base(dtype):
    """0.0 ** x crashed the transformation (math.log(0): a ValueError, not a
    TransformError); 0 ** x is flat for x > 0, so its derivative is 0. A negative base has
    no real derivative in the exponent: NaN."""
    x = np.array([0.5, 1.7, 2.0], dtype)
    f = function_from_source("def f(x):\n    return np.sum(0.0 ** x) + np.sum(x * x)\n")
    g = ad.grad(f)(x)
    assert g.dtype == dtype
    np.testing.assert_allclose(g, 2 * x, rtol=1e-6)
    np.testing.assert_allclose(ad.hvp(f)(x, np.ones_like(x)), 2 * np.ones(3), rtol=1e-6)
    h = function_from_source("def f(x):\n    return np.sum((-2.0) ** x)\n")
    with np.errstate(invalid="ignore"):
        assert np.isnan(ad.grad(h)(np.array([2.0, 3.0]))).all()


@pytest.mark.parametrize("shape,axis", [((0,), -1), ((0, 3), 0), ((2, 0), 1), ((1,), -1)])
def test_diff_over_an_empty_or_single_axis(shape, axis):
    """np.diff keeps an empty axis empty (not len - 1): its adjoint padded g to length 2
    and gave a gradient of the wrong shape. A single element has an empty difference."""
    f = function_from_source(f"def f(x):\n    return np.sum(np.diff(x, axis={axis}) ** 2) + np.sum(x)\n")
    x = np.ones(shape)
    assert ad.grad(f)(x).shape == shape
    np.testing.assert_array_equal(ad.grad(f)(x), np.ones(shape))
    assert ad.hvp(f)(x, x).shape == shape


@pytest.mark.parametrize("k,m", [(0, 2), (3, 0)])
def test_batched_matmul_with_an_empty_axis(k, m):
    """A batch of rows times a matrix is written as one 2-D product, reshaped with -1
    rows; with an empty axis -1 is ambiguous (a ValueError in the generated code, and in
    prod_others' flattening for np.prod): the row count is written out there."""
    f = function_from_source("def f(x, w):\n    return np.sum(np.tanh(x @ w)) + "
                             "np.sum(np.prod(x, axis=-1)) + np.sum(x * x)\n")
    x, w = np.ones((2, 3, k)), np.ones((k, m))
    gx, gw = ad.grad(f, wrt=(0, 1))(x, w)
    assert gx.shape == x.shape and gw.shape == w.shape
    assert ad.hvp(f)(x, w, x).shape == x.shape
    np.testing.assert_allclose(ad.jvp(f)(x, w, x)[0], f(x, w))
