"""Tests of the reference (dual-number) oracle against central finite differences, float64."""
import numpy as np
import pytest

from s2s_ad import reference as R

EPS, RTOL, ATOL = 1e-6, 1e-5, 1e-7


# ------------------------------------------------------------------ small tree utilities (own copy)
def tmap(f, *trees):
    t = trees[0]
    if isinstance(t, dict):
        return {k: tmap(f, *(u[k] for u in trees)) for k in t}
    if isinstance(t, (list, tuple)):
        return type(t)(tmap(f, *z) for z in zip(*trees))
    return f(*trees)


def leaves(tree):
    out = []
    tmap(out.append, tree)
    return out


def isfloat(x):
    return isinstance(x, float) or (isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind == "f")


def rand_like(tree, rng):
    return tmap(lambda x: rng.standard_normal(np.shape(x)) if isfloat(x) else None, tree)


def fd_jvp(f, args, wrt, tans, eps=EPS):
    wrt, tans = ((wrt,), (tans,)) if isinstance(wrt, int) else (wrt, tans)

    def shifted(s):
        a = list(args)
        for i, t in zip(wrt, tans):
            a[i] = tmap(lambda x, u: x + s * u if isfloat(x) else x, a[i], t)
        return f(*a)
    return tmap(lambda p, m: (np.asarray(p, float) - np.asarray(m, float)) / (2 * eps), shifted(eps), shifted(-eps))


def assert_close(a, b, rtol=RTOL, atol=ATOL):
    la, lb = leaves(a), leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        assert np.shape(x) == np.shape(y)
        np.testing.assert_allclose(np.asarray(x, float), np.asarray(y, float), rtol=rtol, atol=atol)


def check(f, args, wrt=0, rtol=RTOL, atol=ATOL, seed=0):
    """jvp value == f(*args) and jvp tangent == central finite differences."""
    rng = np.random.default_rng(seed)
    wrts = (wrt,) if isinstance(wrt, int) else wrt
    tans = [rand_like(args[i], rng) for i in wrts]
    tans = tans[0] if isinstance(wrt, int) else tuple(tans)
    v, t = R.jvp(f, args, wrt, tans)
    assert_close(v, f(*args), rtol=1e-10, atol=1e-12)
    assert_close(t, fd_jvp(f, args, wrt, tans), rtol, atol)
    return v, t


def check2(f, args, wrt=0, rtol=RTOL, atol=1e-6, seed=1):
    """second_directional (nested duals) == finite differences of the jvp."""
    rng = np.random.default_rng(seed)
    u, v = rand_like(args[wrt], rng), rand_like(args[wrt], rng)
    d2 = R.second_directional(f, args, wrt, u, v)
    ref = fd_jvp(lambda *a: R.jvp(f, a, wrt, u)[1], args, wrt, v)
    assert_close(d2, ref, rtol, atol)


def rnd(shape, lo=-1.0, hi=1.0, seed=0, kink=False):
    rng = np.random.default_rng(seed)
    x = rng.uniform(lo, hi, size=shape)
    if kink:                                   # |x| in [lo, hi], random sign: away from 0
        x = x * rng.choice([-1.0, 1.0], size=shape)
    return x if shape != () else float(x)


# ------------------------------------------------------------------ unary ufuncs
UNARY = [
    ("negative", np.negative, -2, 2), ("positive", np.positive, -2, 2), ("neg_op", lambda x: -x, -2, 2),
    ("reciprocal", np.reciprocal, 0.5, 2), ("square", np.square, -2, 2), ("sqrt", np.sqrt, 0.1, 3),
    ("cbrt", np.cbrt, 0.1, 3), ("exp", np.exp, -2, 2), ("exp2", np.exp2, -2, 2), ("expm1", np.expm1, -2, 2),
    ("log", np.log, 0.1, 3), ("log2", np.log2, 0.1, 3), ("log10", np.log10, 0.1, 3), ("log1p", np.log1p, -0.5, 2),
    ("sin", np.sin, -3, 3), ("cos", np.cos, -3, 3), ("tan", np.tan, -1, 1), ("arcsin", np.arcsin, -0.9, 0.9),
    ("arccos", np.arccos, -0.9, 0.9), ("arctan", np.arctan, -3, 3), ("sinh", np.sinh, -2, 2),
    ("cosh", np.cosh, -2, 2), ("tanh", np.tanh, -2, 2), ("arcsinh", np.arcsinh, -2, 2),
    ("arccosh", np.arccosh, 1.2, 3), ("arctanh", np.arctanh, -0.9, 0.9), ("deg2rad", np.deg2rad, -2, 2),
    ("rad2deg", np.rad2deg, -2, 2), ("abs", np.abs, 0.2, 2), ("fabs", np.fabs, 0.2, 2),
    ("abs_builtin", abs, 0.2, 2), ("sign", np.sign, 0.2, 2), ("floor", np.floor, -2, 2), ("ceil", np.ceil, -2, 2),
    ("rint", np.rint, -2, 2), ("pow2", lambda x: x ** 2, 0.2, 2), ("pow3", lambda x: x ** 3, 0.2, 2),
    ("pow_half", lambda x: x ** 0.5, 0.1, 2), ("pow_neg", lambda x: x ** -1.5, 0.5, 2),
    ("pow0", lambda x: x ** 0, 0.2, 2), ("const_base", lambda x: 2.0 ** x, -2, 2),
    ("rsub", lambda x: 1.0 - x, -2, 2), ("rdiv", lambda x: 3.0 / x, 0.5, 2),
]
KINKED = {"abs", "fabs", "abs_builtin", "sign", "pow2", "pow3"}   # sampled with random signs


@pytest.mark.parametrize("name,f,lo,hi", UNARY, ids=[u[0] for u in UNARY])
def test_unary(name, f, lo, hi):
    x = rnd((3, 4), lo, hi, kink=name in KINKED)
    check(f, (x,))
    check(f, (rnd((), lo, hi, seed=3, kink=name in KINKED),))


@pytest.mark.parametrize("name,f,lo,hi", UNARY, ids=[u[0] for u in UNARY])
def test_unary_second_order(name, f, lo, hi):
    check2(lambda x: f(x) * x, (rnd((5,), lo, hi, kink=name in KINKED),))


# ------------------------------------------------------------------ binary ufuncs with broadcasting
BINARY = [
    ("add", np.add, (-2, 2), (-2, 2)), ("subtract", np.subtract, (-2, 2), (-2, 2)),
    ("multiply", np.multiply, (-2, 2), (-2, 2)), ("divide", np.divide, (-2, 2), (0.5, 2)),
    ("true_divide", np.true_divide, (-2, 2), (-2, -0.5)), ("power", np.power, (0.5, 2), (-2, 2)),
    ("maximum", np.maximum, (-2, 2), (-2, 2)), ("minimum", np.minimum, (-2, 2), (-2, 2)),
    ("fmax", np.fmax, (-2, 2), (-2, 2)), ("fmin", np.fmin, (-2, 2), (-2, 2)),
    ("logaddexp", np.logaddexp, (-2, 2), (-2, 2)), ("logaddexp2", np.logaddexp2, (-2, 2), (-2, 2)),
    ("hypot", np.hypot, (-2, 2), (0.5, 2)), ("arctan2", np.arctan2, (-2, 2), (0.5, 2)),
    ("remainder", np.remainder, (0.1, 5), (1.1, 2)),
    ("op_mul", lambda x, y: x * y - x / y + x ** y, (0.5, 2), (0.5, 2)),
]
SHAPES = [((3, 1), (1, 4)), ((5, 4), (4,)), ((), (3,)), ((3,), ()), ((2, 3), (2, 3))]


@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("name,f,dx,dy", BINARY, ids=[b[0] for b in BINARY])
def test_binary(name, f, dx, dy, shapes):
    x, y = rnd(shapes[0], *dx, seed=1), rnd(shapes[1], *dy, seed=2)
    check(f, (x, y), wrt=(0, 1))
    check(f, (x, y), wrt=0)            # y constant
    check(f, (x, y), wrt=1)            # x constant


@pytest.mark.parametrize("name,f,dx,dy", BINARY, ids=[b[0] for b in BINARY])
def test_binary_second_order(name, f, dx, dy):
    x, y = rnd((4,), *dx, seed=1), rnd((4,), *dy, seed=2)
    check2(lambda x, y: f(x * x, y) * x, (x, y), wrt=0)
    check2(lambda x, y: f(x, y * y) * y, (x, y), wrt=1)


def test_power_special_cases():
    x = np.array([-2.0, -0.5, 0.0, 1.5])
    _, t = R.jvp(lambda x: x ** 2, (x,), 0, np.ones(4))
    np.testing.assert_allclose(t, 2 * x)
    _, t = R.jvp(lambda x: x ** 3, (x,), 0, np.ones(4))
    np.testing.assert_allclose(t, 3 * x ** 2)
    _, t = R.jvp(lambda x: x ** 0, (x,), 0, np.ones(4))          # 0 ** 0: tangent 0, no nan
    np.testing.assert_array_equal(t, 0)
    base = np.array([0.0, 2.0, -1.0])                            # dual exponent: 0, log, nan
    _, t = R.jvp(lambda y: base ** y, (np.array([2.0, 2.0, 2.0]),), 0, np.ones(3))
    np.testing.assert_allclose(t[:2], [0.0, 4 * np.log(2.0)])
    assert np.isnan(t[2])


def test_maximum_minimum_ties_take_first_argument():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 0.0])
    tx, ty = np.array([10.0, 20.0, 30.0]), np.array([1.0, 2.0, 3.0])
    assert_close(R.jvp(np.maximum, (x, y), (0, 1), (tx, ty))[1], np.array([10.0, 2.0, 30.0]))
    assert_close(R.jvp(np.minimum, (x, y), (0, 1), (tx, ty))[1], np.array([10.0, 20.0, 3.0]))
    assert_close(R.jvp(lambda x: np.clip(x, 1.0, 2.0), (x,), 0, tx)[1], np.array([10.0, 20.0, 0.0]))


def test_comparisons_return_plain_bool():
    d = R.Dual(np.array([1.0, -1.0]), np.ones(2))
    for r in (d > 0, d <= 0, d == d, np.isfinite(d), np.logical_not(d > 0)):
        assert isinstance(r, np.ndarray) and r.dtype == bool


# ------------------------------------------------------------------ reductions
REDUCTIONS = [
    ("sum", np.sum), ("mean", np.mean), ("prod", np.prod), ("var", np.var), ("std", np.std),
    ("var_ddof1", lambda x, **k: np.var(x, ddof=1, **k)), ("std_ddof1", lambda x, **k: np.std(x, ddof=1, **k)),
    ("max", np.max), ("min", np.min), ("amax", np.amax), ("amin", np.amin), ("norm", np.linalg.norm),
    ("sum_method", lambda x, **k: x.sum(**k)), ("max_method", lambda x, **k: x.max(**k)),
]
AXES = [None, 0, -1, (0, 2), (-1, 0)]


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name,f", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reduction(name, f, axis, keepdims):
    x = rnd((2, 3, 4), 0.5, 1.5)
    check(lambda x: f(x, axis=axis, keepdims=keepdims), (x,))


@pytest.mark.parametrize("name,f", REDUCTIONS, ids=[r[0] for r in REDUCTIONS])
def test_reduction_second_order(name, f):
    check2(lambda x: f(np.sin(x) + 2, axis=1) * f(x), (rnd((3, 4), 0.5, 1.5),))


UFUNC_METHODS = [
    ("add.reduce", lambda x: np.add.reduce(x, axis=1)), ("add.reduce0", lambda x: np.add.reduce(x)),
    ("multiply.reduce", lambda x: np.multiply.reduce(x, axis=-1, keepdims=True)),
    ("maximum.reduce", lambda x: np.maximum.reduce(x)), ("minimum.reduce", lambda x: np.minimum.reduce(x, axis=1)),
    ("add.accumulate", lambda x: np.add.accumulate(x, axis=1)),
    ("mean_method", lambda x: x.mean(axis=0)), ("prod_method", lambda x: x.prod()),
    ("var_method", lambda x: x.var(axis=1)), ("std_method", lambda x: x.std()), ("min_method", lambda x: x.min(1)),
    ("norm_ord1", lambda x: np.linalg.norm(x, ord=1, axis=1)), ("norm_inf", lambda x: np.linalg.norm(x[0], np.inf)),
    ("norm_fro", lambda x: np.linalg.norm(x, "fro")), ("norm_2_vec", lambda x: np.linalg.norm(x, 2, axis=0)),
]


@pytest.mark.parametrize("name,f", UFUNC_METHODS, ids=[u[0] for u in UFUNC_METHODS])
def test_reduction_forms(name, f):
    check(f, (rnd((3, 4), 0.5, 1.5, kink=True),))


def test_max_ties_average_tangent():
    x = np.array([1.0, 3.0, 3.0, 2.0])
    t = np.array([1.0, 2.0, 4.0, 8.0])
    assert R.jvp(np.max, (x,), 0, t)[1] == pytest.approx(3.0)
    x2 = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0]])
    t2 = np.array([[1.0, 3.0, 100.0], [5.0, 7.0, 9.0]])
    assert_close(R.jvp(lambda x: np.max(x, axis=1), (x2,), 0, t2)[1], np.array([2.0, 8.0]))
    x3 = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 0.0]])
    assert_close(R.jvp(lambda x: np.min(x, axis=0, keepdims=True), (x3,), 0, t2)[1], np.array([[5.0, 3.0, 54.5]]))


def test_prod_with_zeros():
    x = np.array([[0.0, 2.0, 3.0], [0.0, 0.0, 3.0]])
    g = R.grad(lambda x: np.sum(np.prod(x, axis=1)), (x,), 0)
    np.testing.assert_allclose(g, [[6.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    check(lambda x: np.prod(x, axis=1), (x,))


# ------------------------------------------------------------------ other NumPy functions
def lse(x):
    m = np.max(x, axis=-1, keepdims=True)
    return np.log(np.sum(np.exp(x - m), axis=-1)) + m[..., 0]


C34 = rnd((3, 4), seed=9)
FUNCS = [
    ("dot_vv", lambda a, b: np.dot(a, b), [(4,), (4,)]), ("dot_mv", np.dot, [(3, 4), (4,)]),
    ("dot_mm", np.dot, [(3, 4), (4, 2)]),
    ("dot_method", lambda a: a.dot(C34.T), [(3, 4)]), ("matmul_batched", np.matmul, [(2, 3, 4), (4, 5)]),
    ("matmul_op", lambda a, b: a @ b, [(3, 4), (4,)]), ("outer", np.outer, [(3,), (4,)]),
    ("inner", np.inner, [(2, 4), (3, 4)]), ("vdot", np.vdot, [(2, 3), (2, 3)]), ("kron", np.kron, [(2, 2), (2, 3)]),
    ("cross", np.cross, [(3,), (3,)]),
    ("einsum_ij_jk", lambda a, b: np.einsum("ij,jk->ik", a, b), [(3, 4), (4, 2)]),
    ("einsum_trace", lambda a: np.einsum("ii->", a), [(3, 3)]),
    ("einsum_batched", lambda a, b: np.einsum("bij,bjk->bik", a, b, optimize=True), [(2, 3, 4), (2, 4, 2)]),
    ("einsum_three", lambda a, b, c: np.einsum("i,ij,j->", a, b, c), [(3,), (3, 4), (4,)]),
    ("tensordot_1", lambda a, b: np.tensordot(a, b, axes=1), [(3, 4), (4, 2)]),
    ("tensordot_pairs", lambda a, b: np.tensordot(a, b, axes=([1, 0], [0, 1])), [(3, 4), (4, 3)]),
    ("trace", np.trace, [(3, 3)]), ("trace_offset", lambda a: np.trace(a, offset=1), [(3, 4)]),
    ("transpose", np.transpose, [(2, 3, 4)]), ("transpose_axes", lambda a: np.transpose(a, (1, 2, 0)), [(2, 3, 4)]),
    ("T", lambda a: a.T, [(3, 4)]), ("transpose_method", lambda a: a.transpose(1, 0, 2), [(2, 3, 4)]),
    ("swapaxes", lambda a: np.swapaxes(a, 0, 2), [(2, 3, 4)]), ("moveaxis", lambda a: np.moveaxis(a, 0, -1), [(2, 3, 4)]),
    ("reshape", lambda a: np.reshape(a, (-1,)), [(3, 4)]), ("reshape_method", lambda a: a.reshape(2, 6), [(3, 4)]),
    ("expand_dims", lambda a: np.expand_dims(a, 1), [(3, 4)]), ("squeeze", np.squeeze, [(3, 1, 4)]),
    ("ravel", np.ravel, [(3, 4)]), ("flatten", lambda a: a.flatten(), [(3, 4)]),
    ("concatenate", lambda a, b: np.concatenate([a, C34, b], axis=1), [(3, 2), (3, 1)]),
    ("stack", lambda a, b: np.stack((a, b, C34), axis=1), [(3, 4), (3, 4)]),
    ("hstack", lambda a, b: np.hstack([a, b]), [(3,), (2,)]), ("vstack", lambda a, b: np.vstack([a, b]), [(4,), (2, 4)]),
    ("split", lambda a: np.split(a, [1, 3], axis=1), [(3, 4)]), ("array_split", lambda a: np.array_split(a, 3), [(7,)]),
    ("tile", lambda a: np.tile(a, (2, 3)), [(3, 2)]), ("repeat_axis", lambda a: np.repeat(a, [1, 0, 2], axis=0), [(3, 2)]),
    ("repeat_flat", lambda a: np.repeat(a, 2), [(3, 2)]), ("broadcast_to", lambda a: np.broadcast_to(a, (4, 3)), [(3,)]),
    ("flip", lambda a: np.flip(a, 1), [(3, 4)]), ("fliplr", np.fliplr, [(3, 4)]), ("roll", lambda a: np.roll(a, 2, 1), [(3, 4)]),
    ("cumsum", lambda a: np.cumsum(a, axis=1), [(3, 4)]), ("cumsum_flat", lambda a: a.cumsum(), [(3, 4)]),
    ("diff", lambda a: np.diff(a, axis=0), [(3, 4)]),
    ("where", lambda a, b: np.where(a > 0, a, b ** 2), [(3, 4), (4,)]),
    ("where_const", lambda a: np.where(a > 0, a, -1.0), [(3, 4)]),
    ("clip", lambda a: np.clip(a, -0.5, 0.5), [(3, 4)]), ("clip_method", lambda a: a.clip(-0.5), [(3, 4)]),
    ("clip_dual_bounds", lambda a, lo: np.clip(a, lo, lo + 1.0), [(3, 4), (4,)]),
    ("clip_kw", lambda a: np.clip(a, min=-0.3, max=None), [(3, 4)]),
    ("take", lambda a: np.take(a, [2, 0, 2], axis=1), [(3, 4)]), ("take_flat", lambda a: a.take([5, 5, 1]), [(3, 4)]),
    ("take_along_axis", lambda a: np.take_along_axis(a, np.array([[0], [2], [1]]), 1), [(3, 4)]),
    ("sort", lambda a: np.sort(a, axis=0), [(3, 4)]), ("sort_none", lambda a: np.sort(a, axis=None), [(3, 4)]),
    ("diagonal", np.diagonal, [(3, 4)]), ("diag", np.diag, [(3,)]), ("triu", np.triu, [(3, 3)]),
    ("logsumexp", lse, [(3, 4)]), ("softmax", lambda a: np.exp(a - lse(a)[:, None]), [(3, 4)]),
    ("inv", np.linalg.inv, [(3, 3)]), ("solve", np.linalg.solve, [(3, 3), (3,)]),
    ("solve_mat", np.linalg.solve, [(3, 3), (3, 2)]), ("det", np.linalg.det, [(3, 3)]),
    ("slogdet", lambda a: np.linalg.slogdet(a)[1], [(3, 3)]),
    ("astype", lambda a: a.astype(np.float64) * 2, [(3,)]), ("copy", lambda a: np.copy(a) + a.copy(), [(3,)]),
    ("zeros_like", lambda a: np.zeros_like(a) + np.ones_like(a) * a + np.full_like(a, 2.0), [(3,)]),
    ("argmax_plain", lambda a: a[np.argmax(a)] * np.argsort(a).size, [(5,)]),
    ("iterate", lambda a: sum(row * i for i, row in enumerate(a)), [(3, 4)]),
    ("tuple_out", lambda a, b: (a * b, {"s": np.sum(a), "l": [b, 2.0]}), [(3,), (3,)]),
]


def _mat_arg(shape, seed):
    x = rnd(shape, seed=seed)
    if len(shape) == 2 and shape[0] == shape[1]:       # well-conditioned square matrices
        x = x + 3 * np.eye(shape[0])
    return x


@pytest.mark.parametrize("name,f,shapes", FUNCS, ids=[u[0] for u in FUNCS])
def test_function(name, f, shapes):
    args = tuple(_mat_arg(s, seed=i + 1) for i, s in enumerate(shapes))
    check(f, args, wrt=tuple(range(len(args))))
    if len(args) > 1:
        check(f, args, wrt=len(args) - 1)


SECOND = [u for u in FUNCS if u[0] in {
    "dot_mm", "matmul_batched", "outer", "einsum_three", "tensordot_pairs", "trace", "concatenate", "stack",
    "split", "tile", "repeat_axis", "where", "clip_dual_bounds", "take", "sort", "logsumexp", "softmax",
    "inv", "solve", "det", "slogdet", "cumsum", "kron", "cross"}]


@pytest.mark.parametrize("name,f,shapes", SECOND, ids=[u[0] for u in SECOND])
def test_function_second_order(name, f, shapes):
    args = tuple(_mat_arg(s, seed=i + 1) for i, s in enumerate(shapes))

    def scalar(*a):
        return sum(np.sum(np.sin(o)) for o in leaves(f(*a)))
    for i in range(len(args)):
        check2(scalar, args, wrt=i)



# ------------------------------------------------------------------ indexing and assignment
INDICES = [
    ("slice", np.s_[1:3]), ("step", np.s_[::2, 1::3]), ("reverse", np.s_[::-1]), ("neg_int", np.s_[-1]),
    ("int_pair", np.s_[2, -2]), ("none", np.s_[None, 1]), ("ellipsis", np.s_[..., 0]),
    ("ellipsis_none", np.s_[..., None, 1:]), ("int_list_repeated", np.s_[[0, 2, 0, 0]]),
    ("int_array_repeated", np.s_[:, np.array([1, 1, 4])]), ("fancy_2d", np.s_[[0, 0, 3], [1, 2, 1]]),
    ("bool_mask", np.s_[np.array([True, False, True, True])]), ("mixed", np.s_[1:, [0, 4, 0]]),
]


@pytest.mark.parametrize("name,idx", INDICES, ids=[i[0] for i in INDICES])
def test_getitem(name, idx):
    x = rnd((4, 5))
    check(lambda x: np.sin(x)[idx] * x[idx], (x,))
    check2(lambda x: np.sum(np.sin(x)[idx] * x[idx] ** 2), (x,))


def test_bool_mask_from_comparison():
    x = rnd((4, 5), kink=True, lo=0.2)
    check(lambda x: np.sum(x[x > 0] ** 2) + x[x < 0], (x,))


SETITEM = [
    ("zeros_like_fill", lambda x: _fill(x)),
    ("overwrite_slice", lambda x: _overwrite(x)),
    ("inplace_ops", lambda x: _inplace(x)),
    ("add_at_repeated", lambda x: _add_at(x)),
    ("loop_rows", lambda x: _loop(x)),
]


def _fill(x):
    y = np.zeros_like(x)
    y[1:3] = x[0:2] ** 2
    y[0] = 5.0
    y[-1, ::2] = np.sin(x[0, ::2])
    return y * x


def _overwrite(x):
    y = x * 1.0
    y[:, 1] = y[:, 0] * y[:, 2]
    y[x > 0.5] = 0.0
    return y


def _inplace(x):
    y = x.copy()
    y += x ** 2
    y *= 3.0
    y[0] -= y[1]
    return y


def _add_at(x):
    y = np.zeros_like(x)
    np.add.at(y, [0, 0, 2, 0], x[:4] ** 2)
    return y


def _loop(x):
    out = np.zeros_like(x[:, 0])
    for i in range(x.shape[0]):
        out[i] = np.sum(x[i] * x[i - 1])
    return out


@pytest.mark.parametrize("name,f", SETITEM, ids=[s[0] for s in SETITEM])
def test_setitem(name, f):
    x = rnd((4, 3), seed=5)
    check(f, (x,))
    check2(lambda x: np.sum(np.cos(f(x))), (x,))


def test_setitem_constant_then_dual_into_constant_slot():
    d = R.Dual(np.zeros(3), np.zeros(3))
    d[1] = R.Dual(2.0, 7.0)
    assert d.value[1] == 2.0 and d.tangent[1] == 7.0


# ------------------------------------------------------------------ dtypes
F32 = [
    ("elementwise", lambda x: np.tanh(x) ** 2 + np.exp(-x) * np.sqrt(x * x + 1.0) / 3 + np.log1p(x * x)),
    ("reductions", lambda x: np.sum(x) + np.mean(x ** 2) + np.max(x) + np.var(x) + np.std(x) + np.prod(x[:3])),
    ("norm", lambda x: np.linalg.norm(x) + np.linalg.norm(x, 1)),
    ("matmul", lambda x: np.reshape(x, (2, 3)) @ np.ones((3, 2), np.float32)),
    ("where_clip", lambda x: np.where(x > 0, x, 0.1 * x) + np.clip(x, -0.5, 0.5) + np.maximum(x, 0)),
    ("power", lambda x: np.abs(x) ** 1.5 + 2.0 ** x + x ** 3),
    ("setitem", lambda x: _fill(np.reshape(x, (3, 2)))),
    ("stack", lambda x: np.concatenate([x, np.zeros(2, np.float32)]) * np.float32(2)),
]


@pytest.mark.parametrize("name,f", F32, ids=[s[0] for s in F32])
def test_float32_stays_float32(name, f):
    x64 = rnd((6,), 0.2, 1.0, kink=True)
    t64 = rnd((6,), seed=4)
    x32, t32 = x64.astype(np.float32), t64.astype(np.float32)
    v, t = R.jvp(f, (x32,), 0, t32)
    assert np.asarray(v).dtype == np.float32 and np.asarray(t).dtype == np.float32
    v_ref, t_ref = R.jvp(f, (x64,), 0, t64)
    np.testing.assert_allclose(t, t_ref, rtol=1e-4, atol=1e-5)
    g = R.grad(lambda x: np.sum(f(x)), (x32,), 0)
    h = R.hvp(lambda x: np.sum(f(x)), (x32,), 0, t32)
    assert g.dtype == np.float32 and h.dtype == np.float32


# ------------------------------------------------------------------ grad, hvp, nested structures
def mlp_loss(W, x, b):
    return np.sum(np.tanh(W @ x + b) ** 2)


def test_grad_matches_finite_differences():
    W, x, b = rnd((3, 4), seed=1), rnd((4,), seed=2), rnd((3,), seed=3)
    gW, gb = R.grad(mlp_loss, (W, x, b), (0, 2))
    for (i, g) in ((0, gW), (2, gb)):
        args = [W, x, b]
        fd = np.zeros_like(args[i])
        for j in range(fd.size):
            e = np.zeros_like(fd)
            e.flat[j] = 1.0
            fd.flat[j] = fd_jvp(mlp_loss, args, i, e)
        np.testing.assert_allclose(g, fd, rtol=RTOL, atol=ATOL)
    assert gW.shape == W.shape and gb.shape == b.shape


def test_hvp_matches_finite_differences_of_gradient():
    W, x, b = rnd((3, 4), seed=1), rnd((4,), seed=2), rnd((3,), seed=3)
    V = rnd((3, 4), seed=4)
    hv = R.hvp(mlp_loss, (W, x, b), 0, V)
    g = lambda W: R.grad(mlp_loss, (W, x, b), 0)
    fd = (g(W + EPS * V) - g(W - EPS * V)) / (2 * EPS)
    np.testing.assert_allclose(hv, fd, rtol=RTOL, atol=1e-6)
    u = rnd((3, 4), seed=6)
    uHv = R.second_directional(mlp_loss, (W, x, b), 0, u, V)
    assert uHv == pytest.approx(np.sum(u * hv), rel=1e-10)
    assert uHv == pytest.approx(R.second_directional(mlp_loss, (W, x, b), 0, V, u), rel=1e-10)


def test_hvp_of_quadratic_is_exact():
    A, v, x = rnd((4, 4), seed=1), rnd((4,), seed=2), rnd((4,), seed=3)
    hv = R.hvp(lambda x: 0.5 * x @ A @ x, (x,), 0, v)
    np.testing.assert_allclose(hv, 0.5 * (A + A.T) @ v, rtol=1e-12)


def nested_loss(params, x, n):
    h = np.tanh(params["W"] @ x + params["b"])
    w, (c, tag) = params["extra"]
    return np.sum(h * w) * c ** 2 + n


def nested_params():
    return {"W": rnd((2, 3), seed=1), "b": rnd((2,), seed=2), "extra": [rnd((2,), seed=3), (1.5, 7)]}


def test_nested_dict_arguments():
    params, x = nested_params(), rnd((3,), seed=4)
    check(nested_loss, (params, x, 3), wrt=0)
    check(nested_loss, (params, x, 3), wrt=(0, 1))
    g = R.grad(nested_loss, (params, x, 3), 0)
    assert g["W"].shape == (2, 3) and g["b"].shape == (2,) and g["extra"][1][1] is None
    assert np.ndim(g["extra"][1][0]) == 0
    t = {"W": np.ones((2, 3)), "b": np.zeros(2), "extra": [np.zeros(2), (0.0, None)]}
    assert R.jvp(nested_loss, (params, x, 3), 0, t)[1] == pytest.approx(np.sum(g["W"]))
    hv = R.hvp(nested_loss, (params, x, 3), 0, t)
    assert hv["W"].shape == (2, 3) and isinstance(hv["extra"], list)
    check2(nested_loss, (params, x, 3), wrt=0)


def test_no_perturbation_confusion():
    # d/dx [x * d/dy (x + y)] = 1 (a confused implementation gives 2)
    inner = lambda x: x * R.jvp(lambda y: x + y, (1.0,), 0, 1.0)[1]
    assert R.jvp(inner, (1.0,), 0, 1.0)[1] == pytest.approx(1.0)


def test_python_float_and_int_arguments():
    v, t = R.jvp(lambda a, k: np.sin(a) * k, (0.5, 3), 0, 1.0)
    assert v == pytest.approx(np.sin(0.5) * 3) and t == pytest.approx(np.cos(0.5) * 3)
    _, t = R.jvp(lambda a: 2 * np.ones(3), (0.5,), 0, 1.0)      # output independent of input
    np.testing.assert_array_equal(t, np.zeros(3))


# ------------------------------------------------------------------ refusals
UNSUPPORTED = [
    ("cumprod", lambda x: np.cumprod(x)), ("nansum", lambda x: np.nansum(x)), ("spacing", lambda x: np.spacing(x)),
    ("eigh", lambda x: np.linalg.eigh(np.outer(x, x))), ("fft", lambda x: np.fft.fft(x)),
    ("norm_spectral", lambda x: np.linalg.norm(np.outer(x, x), 2)), ("maximum.accumulate", lambda x: np.maximum.accumulate(x)),
    ("ufunc_where_kw", lambda x: np.sin(x, where=np.ones(3, bool))), ("einsum_sublist", lambda x: np.einsum(x, [0], [])),
    ("diff_prepend", lambda x: np.diff(x, prepend=1.0)), ("full_like_dual", lambda x: np.full_like(x, x[0])),
    ("max_initial", lambda x: np.max(x, initial=0.0)), ("divmod", lambda x: divmod(x, 2.0)),
]


@pytest.mark.parametrize("name,f", UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED])
def test_unsupported_raises(name, f):
    with pytest.raises(NotImplementedError, match="reference: no rule for"):
        R.jvp(f, (rnd((3,)),), 0, np.ones(3))


def test_dual_cannot_become_plain_array():
    d = R.Dual(np.ones(3), np.ones(3))
    for bad in (lambda: np.asarray(d), lambda: np.array([d[0], d[1]]), lambda: float(d[0])):
        with pytest.raises(TypeError):
            bad()
    out = np.zeros(3)
    with pytest.raises((TypeError, ValueError)):
        out[0] = d[0]


def test_dual_attributes():
    d = R.Dual(np.ones((2, 3), np.float32), np.zeros((2, 3), np.float32))
    assert d.shape == (2, 3) and d.ndim == 2 and d.size == 6 and d.dtype == np.float32 and len(d) == 2
    assert d.T.shape == (3, 2) and d.astype(int).dtype.kind == "i"
    nested = R.Dual(d, R.Dual(np.ones((2, 3)), np.ones((2, 3))))
    assert nested.tag == 2 and nested.shape == (2, 3)
