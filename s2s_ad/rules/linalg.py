"""Products: matmul (1-D, 2-D, batched), dot, outer, einsum, tensordot, trace, norm.

All products are linear in each operand, so their tangents are the product with one
operand replaced by its tangent (`linear=`); only adjoints are written out. Adjoints are
specialised on the operands' ranks, so 2-D code reads `g @ b.T` as a person would write it.
"""
import numpy as np

from ..emit import row_count
from .registry import defrule


def _swap(name, ndim):
    return f"{name}.T" if ndim == 2 else f"np.swapaxes({name}, -1, -2)"


def _batched_shape(ctx, left, right):
    """Shape of `left @ right` for the adjoint's operands (to reduce batch broadcasting)."""
    out = ctx.shape("ans")
    return out[:-2] + (left, right)


def _matmul_a(ctx):
    na, nb = ctx.ndim("a"), ctx.ndim("b")
    if na == 1 and nb == 1:
        return "g * b"
    if na == 1 and nb == 2:
        return "b @ g"
    if na == 2 and nb == 1:
        return "np.outer(g, b)"
    if na == 2 and nb == 2:
        return "g @ b.T"
    if na > 2 and nb == 2 and ctx.static("a"):
        # A batch of rows times a matrix: as one 2-D product (faster in NumPy).
        m = ctx.shape("b")[1]
        return f"np.reshape(np.reshape(g, ({_rows(ctx, m)}, {m})) @ b.T, {ctx.shape('a')})"
    if na >= 2 and nb >= 2:
        n, k = ctx.shape("a")[-2:]
        return f"g @ {_swap('b', nb)}", _batched_shape(ctx, n, k)
    raise ctx.error("matmul of a 1-D array with a batched (3-D or more) array is not supported",
                    "add the missing axis with x[..., None] or x[None, :] first")


def _rows(ctx, width):
    return row_count(ctx.shape("a")[:-1], width)


def _matmul_b(ctx):
    na, nb = ctx.ndim("a"), ctx.ndim("b")
    if na == 1 and nb == 1:
        return "g * a"
    if na == 1 and nb == 2:
        return "np.outer(a, g)"
    if na == 2 and nb == 1:
        return "g @ a"
    if na == 2 and nb == 2:
        return "a.T @ g"
    if na > 2 and nb == 2 and ctx.static("a"):
        # A weight applied to a batch: one matrix product over all rows, as by hand.
        k, m = ctx.shape("b")
        return (f"np.reshape(a, ({_rows(ctx, k)}, {k})).T @ "
                f"np.reshape(g, ({_rows(ctx, m)}, {m}))")
    if na >= 2 and nb >= 2:
        k, m = ctx.shape("b")[-2:]
        return f"{_swap('a', na)} @ g", _batched_shape(ctx, k, m)
    raise ctx.error("matmul of a 1-D array with a batched (3-D or more) array is not supported",
                    "add the missing axis with x[..., None] or x[None, :] first")


defrule(np.matmul, "a, b", linear=("a", "b"), adjoint={"a": _matmul_a, "b": _matmul_b})


def _dot_check(ctx):
    if ctx.ndim("a") > 2 or ctx.ndim("b") > 2:
        raise ctx.error("np.dot of arrays with more than 2 dimensions is not supported",
                        "use np.matmul (@), np.tensordot or np.einsum, whose meaning is explicit")
    if ctx.ndim("a") == 0 or ctx.ndim("b") == 0:
        raise ctx.error("np.dot with a scalar operand is not supported", "use *")


def _dot_a(ctx):
    _dot_check(ctx)
    return _matmul_a(ctx)


def _dot_b(ctx):
    _dot_check(ctx)
    return _matmul_b(ctx)


defrule(np.dot, "a, b", linear=("a", "b"), adjoint={"a": _dot_a, "b": _dot_b})


def _outer(ctx, this, other):
    g = "g" if this == "a" else "g.T"
    other_flat = other if ctx.ndim(other) == 1 else f"np.ravel({other})"
    expr = f"{g} @ {other_flat}"
    return expr if ctx.ndim(this) == 1 else f"np.reshape({expr}, {ctx.shape(this)})"


defrule(np.outer, "a, b", linear=("a", "b"),
        adjoint={"a": lambda c: _outer(c, "a", "b"), "b": lambda c: _outer(c, "b", "a")})


# -- einsum and tensordot ---------------------------------------------------------------

def parse_subscripts(spec, count):
    spec = spec.replace(" ", "")
    if "." in spec:
        return None
    if "->" in spec:
        ins, out = spec.split("->")
    else:
        ins = spec
        letters = ins.replace(",", "")
        out = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
    ins = ins.split(",")
    return (ins, out) if len(ins) == count else None


def einsum_adjoint(ctx, ins, out, i, names):
    """np.einsum that takes g back to operand i; letters only operand i has are broadcast."""
    target = ins[i]
    if len(set(target)) != len(target):
        raise ctx.error("einsum with a repeated index inside one operand (a diagonal or "
                        "trace) is not supported", "use np.diagonal or np.trace first")
    others = [j for j in range(len(ins)) if j != i]
    present = set(out).union(*[set(ins[j]) for j in others])
    reduced = "".join(c for c in target if c in present)
    if not out and not others:       # a full sum: g is a number
        return f"np.full_like({names[i]}, g)"
    if not out:
        # A scalar result: g multiplies (as an einsum operand a Python float would become
        # a float64 array and turn float32 gradients into float64).
        if len(others) == 1 and ins[others[0]] == reduced:
            rest = names[others[0]]
        else:
            spec = ",".join(ins[j] for j in others) + "->" + reduced
            rest = f"np.einsum('{spec}'{''.join(', ' + names[j] for j in others)})"
        expr = f"g * {rest}"
    else:
        spec = ",".join([out] + [ins[j] for j in others]) + "->" + reduced
        expr = f"np.einsum('{spec}', g{''.join(', ' + names[j] for j in others)})"
    if reduced != target:
        axes = tuple(k for k, c in enumerate(target) if c not in present)
        shape = ctx.shape(names[i])
        expr = f"np.broadcast_to(np.expand_dims({expr}, {axes}), {shape})"
    return expr


def _einsum_operand(ctx):
    spec = ctx.value("subscripts")
    count = len(ctx.bound["operands"].items)
    parsed = parse_subscripts(spec, count)
    if parsed is None:
        raise ctx.error("einsum with '...' or a malformed subscript string is not supported",
                        "write every index out, e.g. 'bij,bjk->bik'")
    ins, out = parsed
    names = [f"operands{j}" for j in range(count)]
    return einsum_adjoint(ctx, ins, out, ctx.item, names)


defrule(np.einsum, "subscripts, *operands", linear=("operands",), multilinear=("operands",),
        adjoint={"operands": _einsum_operand})


def tensordot_subscripts(na, nb, axes):
    """The einsum spelling of np.tensordot(a, b, axes) for operands of rank na, nb."""
    if isinstance(axes, int):
        axes_a, axes_b = list(range(na - axes, na)), list(range(axes))
    else:
        axes_a, axes_b = axes
        axes_a = [axes_a] if isinstance(axes_a, int) else list(axes_a)
        axes_b = [axes_b] if isinstance(axes_b, int) else list(axes_b)
    axes_a = [x % na for x in axes_a]
    axes_b = [x % nb for x in axes_b]
    letters = iter("abcdefghijklmnopqrstuvwxyz")
    sa = [next(letters) for _ in range(na)]
    sb = [None] * nb
    for x, y in zip(axes_a, axes_b):
        sb[y] = sa[x]
    sb = [c or next(letters) for c in sb]
    out = [c for k, c in enumerate(sa) if k not in axes_a] + \
          [c for k, c in enumerate(sb) if k not in axes_b]
    return ["".join(sa), "".join(sb)], "".join(out)


def _tensordot(ctx, i):
    ins, out = tensordot_subscripts(ctx.ndim("a"), ctx.ndim("b"), ctx.value("axes"))
    return einsum_adjoint(ctx, ins, out, i, ["a", "b"])


defrule(np.tensordot, "a, b, axes=2", linear=("a", "b"),
        adjoint={"a": lambda c: _tensordot(c, 0), "b": lambda c: _tensordot(c, 1)})


def _trace(ctx):
    if ctx.value("offset") != 0 or ctx.value("axis1") != 0 or ctx.value("axis2") != 1 \
            or ctx.ndim("a") != 2:
        raise ctx.error("np.trace is supported for 2-D arrays with the default offset and axes",
                        "use np.diagonal(...) and np.sum")
    n, m = ctx.shape("a")
    return f"g * np.eye({n}, {m}, dtype=np.{ctx.dtype('a').name})"


defrule(np.trace, "a, offset=0, axis1=0, axis2=1, dtype=None, out=None", linear=("a",),
        adjoint={"a": _trace}, lazy_g=True)


def _norm(ctx):
    if ctx.given("ord"):
        raise ctx.error("np.linalg.norm is supported with the default ord (2-norm of a "
                        "vector, Frobenius norm of a matrix)",
                        "write the norm out, e.g. np.sum(np.abs(x)) for ord=1")
    from .reductions import kept, reduced_axes
    axes = reduced_axes(ctx, "axis", of="x")
    if ctx.given("axis") and not ctx.value("keepdims") and len(axes) < ctx.ndim("x"):
        # (a scalar g stands for a broadcast one: only ans needs its axes back)
        g = "g" if ctx.g_scalar else f"np.expand_dims(g, {axes})"
        return f"{g} * x / np.expand_dims(ans, {axes})"
    return "g * x / ans"


def _norm_tangent(ctx):
    from .reductions import reduced_axes
    axes = reduced_axes(ctx, "axis", of="x")
    return f"np.sum(x * x_dot, axis={axes}, keepdims={ctx.value('keepdims')}) / ans"


defrule(np.linalg.norm, "x, ord=None, axis=None, keepdims=False",
        adjoint={"x": _norm}, tangent={"x": _norm_tangent}, lazy_g=True)
