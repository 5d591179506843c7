"""jacobian(mode="forward") pushes all basis directions in one batched sweep (s2s_ad/batched.py).

For each function below, in float64 and float32: the batched Jacobian is the one the
batched path computed (`jac.path == "batched"`), and it equals the looped Jacobian (one jvp
per direction) and the dual-number reference (one reference jvp per direction) to tight
tolerance. Functions with an op the batched sweep does not handle fall back to the loop,
say why, and are still right. A Hypothesis property runs random programs through both.
"""
import re

import numpy as np
import pytest
from hypothesis import given, note, strategies as st

import s2s_ad as ad
from s2s_ad import reference
from helpers import function_from_source
import strategies as S
from test_properties import _program_args, compiled, examples

R = np.random.default_rng(3)


def reference_jacobian(f, args, wrt):
    """Column by column, from the dual-number reference."""
    x = args[wrt]
    shape = np.shape(x)
    cols = []
    for i in range(int(np.prod(shape))):
        e = np.zeros(int(np.prod(shape)))
        e[i] = 1.0
        e = float(e[0]) if isinstance(x, float) else e.reshape(shape).astype(x.dtype)
        cols.append(np.asarray(reference.jvp(f, args, wrt, e)[1], dtype=np.float64))
    out_shape = cols[0].shape
    return np.stack(cols, axis=-1).reshape(out_shape + shape)


def close(what, actual, expected, rtol):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, f"{what}: {actual.shape} != {expected.shape}"
    scale = max(float(np.max(np.abs(expected), initial=0.0)), 1.0)
    err = float(np.max(np.abs(actual - expected), initial=0.0))
    assert err <= rtol * scale, f"{what}: max error {err:.3g} (scale {scale:.3g})\n" \
                                f"{actual}\n{expected}"


def args_for(shapes, dtype):
    out = []
    for s in shapes:
        if s == "float":
            out.append(float(R.uniform(-1, 1)))
        else:
            out.append(R.uniform(-1.0, 1.0, size=s).astype(dtype))
    return out


def check(source, shapes, dtype, wrt=0, batched=True):
    """The forward Jacobian against the loop and the reference; returns the jacobian fn."""
    f = function_from_source(source)
    args = args_for(shapes, dtype)
    jac = ad.jacobian(f, wrt=wrt, mode="forward")
    J = jac(*args)
    if batched:
        assert jac.path == "batched", f"loop used: {jac.reason}"
    else:
        assert jac.path == "loop" and jac.reason, jac.path
    looped = ad.jacobian(f, wrt=wrt, mode="forward", batch=False)
    L = looped(*args)
    assert looped.path == "loop"
    x = args[wrt]
    out = np.asarray(f(*args))
    assert J.shape == out.shape + np.shape(x)
    assert J.dtype == L.dtype == np.result_type(np.asarray(x).dtype, out.dtype)
    low = dtype == np.float32
    close("batched vs looped", J, L, 1e-5 if low else 1e-12)
    close("batched vs reference", J, reference_jacobian(f, args, wrt), 1e-4 if low else 1e-10)
    J2 = jac(*args)    # the cached code gives the same again
    np.testing.assert_array_equal(J, J2)
    return jac


ROSEN = "np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)"

# (name, body of f, argument shapes: x first, then constants)
BATCHED = [
    # elementwise, with broadcasting between ranks
    ("broadcast", "np.tanh(x * c) + np.exp(-x) / (1.0 + x ** 2)", [(3,), (2, 3)]),
    ("broadcast_up", "x * c + np.sin(x) * x", [(3, 1), (4,)]),
    ("scalar_x", "np.sin(x) * c + x ** 3", [(), (3,)]),
    ("python_float", "np.sin(x) * c + x * x", ["float", (2, 2)]),
    ("nonsmooth", "np.where(x > 0, x, 0.5 * x) + np.maximum(x, c) + np.clip(x, -0.3, 0.4)",
     [(2, 3), (3,)]),
    ("binary", "np.arctan2(x, c + 2.0) + np.hypot(x, 1.0) - np.logaddexp(x, c) / x",
     [(2, 2), (2,)]),
    ("power", "(x + 2.0) ** c + 2.0 ** x + np.sqrt(x + 2.0) + abs(x)", [(3,), (3,)]),
    # reductions
    ("sum_axis", "np.sum(x * c, axis=0)", [(2, 3), (2, 3)]),
    ("mean_keepdims", "np.mean(x, axis=-1, keepdims=True) * x", [(2, 3)]),
    ("sum_tuple", "x.sum(axis=(0, 2)) + np.sum(x) * x.mean(axis=(-1, 0))", [(2, 3, 2)]),
    ("max_min", "np.max(x, axis=1) + np.min(x, axis=0) * np.max(x)", [(3, 3)]),
    ("max_keepdims", "np.max(x, axis=0, keepdims=True) - x", [(3, 2)]),
    ("prod", "np.prod(x, axis=0) + np.prod(x[0])", [(3, 2)]),
    ("var_std", "np.var(x, axis=1) + np.std(x, axis=0, keepdims=True).T[:, 0]",
     [(3, 3)]),
    ("full_sum_0d", "np.sum(x) * np.mean(x) + x", [()]),
    # indexing
    ("slices", "x[1:, ::2] * x[0, :2]", [(3, 4)]),
    ("int_array", "x[np.array([0, 2, 2])] * 2.0 + x[-1]", [(3,)]),
    ("int_array_2d", "x[:, np.array([1, 0])] + x[np.array([0, 1]), np.array([2, 2])]",
     [(2, 3)]),
    ("newaxis", "x[..., None] * x[:, None, :] + x[None, 0, :, None]", [(2, 3)]),
    ("negative_steps", "x[::-1] * x[-2::-2, ...].sum()", [(4,)]),
    ("index_then_reduce", "np.sum(x[1:, :] ** 2, axis=0) * x[0]", [(3, 2)]),
    # reshape and transpose
    ("reshape", "np.reshape(x, (6,)) * np.arange(6.0) + x.reshape(3, 2)[1, 0]", [(2, 3)]),
    ("ravel", "np.ravel(x)[::2] + x.flatten()[1]", [(2, 2)]),
    ("transpose", "np.transpose(x, (2, 0, 1)) * 2.0 + np.swapaxes(x, 0, -1).sum()",
     [(2, 3, 2)]),
    ("T", "x.T * c + np.transpose(x).sum(axis=0)", [(2, 3), (3, 1)]),
    ("moveaxis", "np.moveaxis(x, 0, -1) + np.expand_dims(x, 1).sum(axis=2)[0]",
     [(2, 2, 2)]),
    ("squeeze", "np.squeeze(x) + np.squeeze(x, axis=-1)[0]", [(3, 1)]),
    ("flip_cumsum", "np.flip(x, 0) + np.cumsum(x, axis=1) + np.cumsum(x).reshape(2, 3)",
     [(2, 3)]),
    ("flip_all", "np.flip(x) * x", [(2, 2)]),
    ("broadcast_to", "np.broadcast_to(x, (2, 3)) * c", [(3,), (2, 3)]),
    ("concatenate", "np.concatenate([x, np.sin(x), c], axis=-1)", [(2, 2), (2, 1)]),
    ("stack", "np.stack([x, c, x * x], axis=1)", [(3,), (3,)]),
    ("stack_0d", "np.stack([x, np.sin(x)])", [()]),
    ("astype", "x.astype(np.float64) * 2.0 + np.copy(x)", [(3,)]),
    # products
    ("matvec", "np.tanh(W @ x) * x[0]", [(3,), (4, 3)]),
    ("vecmat", "x @ W", [(4,), (4, 3)]),
    ("gram", "x @ x.T + np.dot(x, c)", [(2, 3), (3, 2)]),
    ("dot_vec", "np.dot(x, x) + np.dot(c, x)", [(3,), (2, 3)]),
    ("batched_left", "A @ x", [(3, 2), (2, 4, 3)]),
    ("batched_right", "x @ B + np.sum(B @ x[0, :2])", [(2, 3), (4, 3, 2)]),
    ("matrix_times_vector_x", "np.moveaxis(A, 0, 0) @ x", [(3,), (2, 4, 3)]),
    ("einsum", "np.einsum('ij,jk->ik', x, W) + np.einsum('ij,j', x, x[0])[:, None]", [(2, 2), (2, 3)]),
    # a whole function
    ("rosen", ROSEN, [(6,)]),
    ("rosen_2d_out", "100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2", [(5,)]),
]


def source_of(body, shapes):
    """`def f(x, <the other names the body reads>)`."""
    params = ["x"] + [n for n in ("c", "W", "A", "B") if re.search(rf"\b{n}\b", body)]
    assert len(params) == len(shapes), (body, shapes)
    return f"def f({', '.join(params)}):\n    return {body}\n"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,body,shapes", BATCHED, ids=[c[0] for c in BATCHED])
def test_batched_jacobian(name, body, shapes, dtype):
    check(source_of(body, shapes), shapes, dtype)


@pytest.mark.parametrize("n", [1, 2, 10])
def test_rosen_gradient_by_batched_forward_mode(n):
    f = function_from_source(f"def f(x):\n    return {ROSEN}\n")
    x = R.uniform(-1, 1, size=n)
    jac = ad.jacobian(f, mode="forward")
    np.testing.assert_allclose(jac(x), ad.grad(f)(x), rtol=1e-12, atol=1e-12)
    assert jac.path == "batched"


# Ops the batched sweep does not handle: the loop runs, and says why.
FALLBACK = [
    ("norm", "np.linalg.norm(x) * x", [(3,)], "norm"),
    ("outer", "np.outer(x, x)", [(2,)], "outer"),
    ("tile", "np.tile(x, 2)", [(2,)], "tile"),
    ("separated_arrays", "x[np.array([0, 1]), :, np.array([1, 0])]", [(2, 2, 2)],
     "separated"),
    ("vector_times_stack", "x @ B", [(3,), (2, 3, 2)], "1-D"),
    ("mask", "x[x > 0.0] * 2.0", [(4,)], "data-dependent"),
]


@pytest.mark.parametrize("name,body,shapes,why", FALLBACK, ids=[c[0] for c in FALLBACK])
def test_fallback_is_right_and_says_why(name, body, shapes, why):
    f = function_from_source(source_of(body, shapes))
    args = args_for(shapes, np.float64)
    if name == "mask":
        args[0] = np.array([0.5, -0.5, 0.25, -0.25])
    jac = ad.jacobian(f, mode="forward")
    J = jac(*args)
    assert jac.path == "loop" and why in jac.reason, jac.reason
    close("fallback vs reference", J, reference_jacobian(f, args, 0), 1e-10)
    assert "def jvp_f(" in ad.source(jac)


CONTROL_FLOW = [
    ("for", "def f(x, n):\n    for i in range(n):\n        x = np.sin(x) * x[0] + x[i]\n"
            "    return x\n", [R.uniform(-1, 1, size=3), 3]),
    ("carried_from_zero", "def f(x):\n    s = np.zeros(3)\n    for i in range(2):\n"
                          "        s = s + x[i] * x\n    return s\n", [R.uniform(-1, 1, size=3)]),
    ("branch", "def f(x):\n    if np.sum(x) > 0:\n        y = np.tanh(x) @ x.T\n    else:\n"
               "        y = x @ x.T\n    return y\n", [R.uniform(0.1, 1, size=(2, 3))]),
    ("while", "def f(x):\n    while np.sum(x * x) > 1.0:\n        x = 0.5 * x + 0.1 * x ** 2\n"
              "    return x\n", [R.uniform(1, 2, size=3)]),
]


@pytest.mark.parametrize("name,source,args", CONTROL_FLOW, ids=[c[0] for c in CONTROL_FLOW])
def test_loops_and_branches_are_batched(name, source, args):
    f = function_from_source(source)
    jac = ad.jacobian(f, mode="forward")
    J = jac(*args)
    assert jac.path == "batched", jac.reason
    close("batched vs looped", J, ad.jacobian(f, mode="forward", batch=False)(*args), 1e-12)
    close("batched vs reference", J, reference_jacobian(f, list(args), 0), 1e-10)


def test_a_branch_taken_later_regenerates_the_batched_code():
    f = function_from_source(CONTROL_FLOW[2][1])
    jac = ad.jacobian(f, mode="forward")
    pos = R.uniform(0.1, 1, size=(2, 3))
    for x in (pos, -pos, pos):
        J = jac(x)
        assert jac.path == "batched"
        close("branch", J, reference_jacobian(f, [x], 0), 1e-10)


def difference_jacobian(f, x, h=1e-6):
    """Column by column, from central differences."""
    cols = [(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(x.size)]
    return np.stack(cols, axis=-1)


@pytest.mark.parametrize("body", [
    "y = x * 1.0\n    y[0] = x[1] ** 2",                       # one item from the argument
    "y = x * 1.0\n    y[1:] += x[:2] * 3.0",                   # a slice, added to
    "y = np.zeros((2, 3))\n    y[:, [0, 2]] = x[:2, None] * x[2]",  # into a constant array
    "y = x * x\n    y[np.array([0, 0, 2])] += 1.0",            # a constant added: x's tangent
    "y = x[:, None] * x\n    y[0, :] = x\n    y[[1, 2], 1:] *= 2.0",  # rows, then a product
])
def test_item_assignment_is_batched(body):
    """x[i] = v and x[i] += v push all directions at once (the batch axis moved last, where
    no index reaches it), and equal central differences and the reference Jacobian (which
    cannot assign into a constant array)."""
    f = function_from_source(f"def f(x):\n    {body}\n    return y\n")
    x = R.uniform(-1, 1, size=3)
    jac = ad.jacobian(f, mode="forward")
    J = jac(x)
    assert jac.path == "batched", jac.reason
    close("item assignment", J, difference_jacobian(f, x), 1e-8)
    if "np.zeros" not in body:
        close("item assignment", J, reference_jacobian(f, [x], 0), 1e-12)


def test_item_assignment_with_an_ellipsis():
    """`...` would reach the batch axis once it is moved last: the axes it stands for are
    spelled out."""
    f = function_from_source("def f(x):\n    y = x[:, None] * x\n    y[..., 0] = x\n"
                             "    y[None, ..., 1] += x\n    return y\n")
    x = R.uniform(-1, 1, size=3)
    jac = ad.jacobian(f, mode="forward")
    J = jac(x)
    assert jac.path == "batched", jac.reason
    code = "\n".join(line for line in ad.source(jac, x).splitlines()
                     if not line.strip().startswith("#"))   # (comments quote the user's line)
    assert "..." not in code and "Ellipsis" not in code
    close("item assignment", J, reference_jacobian(f, [x], 0), 1e-12)


def test_source_shows_the_batched_code():
    f = function_from_source(f"def f(x):\n    return {ROSEN}\n")
    jac = ad.jacobian(f, mode="forward")
    x = R.uniform(-1, 1, size=5)
    src = ad.source(jac, x)
    assert "def jacfwd_f(x, x_dot):" in src
    assert "x_dot[:, 1:]" in src and "axis=1" in src
    assert ad.source(jac) == src
    rev = ad.jacobian(f, mode="reverse")
    assert "out_bar" in ad.source(rev, x)


def test_source_before_a_call_asks_for_one():
    jac = ad.jacobian(function_from_source("def f(x):\n    return x * 2.0\n"))
    with pytest.raises(ValueError, match="not been called"):
        ad.source(jac)


def test_auto_mode_uses_the_batched_sweep_for_wide_outputs():
    f = function_from_source("def f(x, W):\n    return np.tanh(W @ x)\n")
    x, W = R.normal(size=3), R.normal(size=(5, 3))
    jac = ad.jacobian(f)
    J = jac(x, W)
    assert jac.path == "batched"
    close("auto vs reverse", J, ad.jacobian(f, mode="reverse")(x, W), 1e-12)


def test_a_new_signature_decides_again():
    f = function_from_source("def f(x):\n    return np.cumsum(x * x)\n")
    jac = ad.jacobian(f, mode="forward")
    for n in (2, 3, 2):
        x = R.normal(size=n)
        close("per signature", jac(x), np.tril(np.broadcast_to(2 * x, (n, n))), 1e-12)
        assert jac.path == "batched"


# ====================================================================== random programs
@examples(20)
@given(program=S.programs(max_statements=12), data=st.data())
def test_random_programs_batched_equals_looped(program, data):
    source, arg_shapes = program
    dtype = data.draw(S.dtypes(), label="dtype")
    args = _program_args(data, arg_shapes, dtype)
    f = compiled(source)
    wrt = data.draw(st.integers(0, len(args) - 1), label="wrt")
    jac = ad.jacobian(f, wrt=wrt, mode="forward")
    J = jac(*args)
    note(f"path {jac.path}: {jac.reason}")
    # every op these programs use has a batched tangent
    if np.size(args[wrt]):
        assert jac.path == "batched", jac.reason
    L = ad.jacobian(f, wrt=wrt, mode="forward", batch=False)(*args)
    close("batched vs looped", J, L, 1e-5 if dtype == np.float32 else 1e-12)
