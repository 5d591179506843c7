"""Functions that move elements around: reshape, transpose, concatenate, stack, split,
tile, repeat, broadcast_to, flip, cumsum, astype. All linear: the tangent applies the same
function to the tangent; the adjoint puts `g`'s elements back where they came from."""
import numpy as np

from ..primitives import ASTYPE, COPY, TRANSPOSE_T
from .registry import defrule


def _back(ctx, of="a"):
    return f"np.reshape(g, {ctx.shape(of)})" if ctx.static(of) else f"np.reshape(g, {of}.shape)"


# A scalar `g` (standing for a broadcast one) passes through these unchanged.
defrule(np.reshape, "a, shape", linear=("a",), adjoint={"a": _back}, lazy_g="through")
defrule(np.ravel, "a, order='C'", linear=("a",), adjoint={"a": _back}, lazy_g="through")
defrule(np.expand_dims, "a, axis", linear=("a",), adjoint={"a": _back}, lazy_g="through")
defrule(np.squeeze, "a, axis=None", linear=("a",), adjoint={"a": _back}, lazy_g="through")
defrule(np.copy, "a", linear=("a",), adjoint={"a": "g"}, lazy_g="through")
defrule(COPY, "x", linear=("x",), adjoint={"x": "g"}, lazy_g="through")
defrule(TRANSPOSE_T, "a", linear=("a",), adjoint={"a": "g.T"}, lazy_g="through")


def _transpose(ctx):
    if not ctx.given("axes"):
        return "np.transpose(g)"
    axes = ctx.value("axes")
    axes = [x % ctx.ndim("a") for x in ((axes,) if isinstance(axes, int) else axes)]
    return f"np.transpose(g, {tuple(int(i) for i in np.argsort(axes))})"


defrule(np.transpose, "a, axes=None", linear=("a",), adjoint={"a": _transpose}, lazy_g="through")
defrule(np.swapaxes, "a, axis1, axis2", linear=("a",),
        adjoint={"a": "np.swapaxes(g, axis1, axis2)"}, lazy_g="through")
defrule(np.moveaxis, "a, source, destination", linear=("a",),
        adjoint={"a": "np.moveaxis(g, destination, source)"}, lazy_g="through")
defrule(np.flip, "m, axis=None", linear=("m",), adjoint={"m": "np.flip(g, axis)"},
        lazy_g="through")


def _astype(ctx):
    if ctx.info("x").shape == ():   # a 0-d adjoint may be a Python number (1.0)
        return f"np.{ctx.dtype('x').name}(g)"
    return f"g.astype(np.{ctx.dtype('x').name})"


defrule(ASTYPE, "x, dtype, copy=True", linear=("x",), adjoint={"x": _astype}, lazy_g="through")


def _scalar_type(ctx):
    info = ctx.info("x")
    return f"np.{info.dtype.name}(g)" if info.kind == "array" else "float(g)"


# np.float32(x) / np.float64(x): astype for arrays, and what hands out a 0-d gradient in
# its argument's type (its adjoint may be a Python number).
for _type in (np.float32, np.float64):
    defrule(_type, "x", linear=("x",), adjoint={"x": _scalar_type}, lazy_g="through")

# broadcast_to's adjoint is the reduction every broadcasting rule uses: the compiler fits
# `g` (of the result's shape) back to the argument's shape.
defrule(np.broadcast_to, "array, shape", linear=("array",),
        adjoint={"array": lambda ctx: ("g", ctx.shape("ans"))}, lazy_g="through")


def _cumsum(ctx):
    if not ctx.given("axis"):
        return f"np.reshape(np.flip(np.cumsum(np.flip(np.ravel(g)))), {ctx.shape('a')})"
    return "np.flip(np.cumsum(np.flip(g, axis), axis), axis)"


defrule(np.cumsum, "a, axis=None, dtype=None, out=None", linear=("a",), adjoint={"a": _cumsum})


def _diff(ctx):
    # diff(a)[i] = a[i + 1] - a[i], so a_bar[i] = g[i - 1] - g[i], g padded with a zero at
    # both ends: minus the differences of the padded g (zeros of g's dtype: 0.0 is float64)
    if ctx.value("n") != 1 or ctx.given("prepend") or ctx.given("append"):
        raise ctx.error("np.diff with n other than 1, prepend or append is not supported",
                        "apply np.diff n times, or concatenate the values first")
    if ctx.static("a") and ctx.shape("a")[ctx.value("axis")] == 0:
        return None   # an empty axis stays empty (no len - 1): a is empty, no contribution
    return ("-np.diff(g, axis=axis, prepend=np.zeros((), g.dtype), "
            "append=np.zeros((), g.dtype))")


defrule(np.diff, "a, n=1, axis=-1, prepend=None, append=None", linear=("a",),
        adjoint={"a": _diff})


def _piece(ctx, start, stop, axis):
    return "g[" + ":, " * axis + f"{start}:{stop}]"


def _concatenate(ctx):
    axis = ctx.value("axis")
    items = ctx.bound["arrays"].items
    sizes = [ctx.shape(f"arrays{j}") for j in range(len(items))]
    if axis is None:
        start = sum(int(np.prod(s)) for s in sizes[:ctx.item])
        stop = start + int(np.prod(sizes[ctx.item]))
        return f"np.reshape(g[{start}:{stop}], {sizes[ctx.item]})"
    axis %= len(sizes[0])
    start = sum(s[axis] for s in sizes[:ctx.item])
    return _piece(ctx, start, start + sizes[ctx.item][axis], axis)


defrule(np.concatenate, "arrays, axis=0", linear=("arrays",), adjoint={"arrays": _concatenate},
        sequence=("arrays",))


def _stack(ctx):
    axis = ctx.value("axis") % ctx.ndim("ans")
    return "g[" + ":, " * axis + f"{ctx.item}]"


defrule(np.stack, "arrays, axis=0", linear=("arrays",), adjoint={"arrays": _stack},
        sequence=("arrays",))


def _split(ctx):
    """The pieces' adjoints (`g0`, `g1`, ...) joined back; zeros for unused pieces."""
    axis = ctx.value("axis")
    parts = [f"g{j}" if present else f"np.zeros_like(ans[{j}])"
             for j, present in enumerate(ctx.g_parts)]
    return f"np.concatenate([{', '.join(parts)}], axis={axis})"


defrule(np.split, "ary, indices_or_sections, axis=0", linear=("ary",), adjoint={"ary": _split})


def _tile(ctx):
    shape, reps = ctx.shape("A"), ctx.value("reps")
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    n = max(len(shape), len(reps))
    shape_n = (1,) * (n - len(shape)) + tuple(shape)
    reps_n = (1,) * (n - len(reps)) + reps
    interleaved = tuple(x for pair in zip(reps_n, shape_n) for x in pair)
    axes = tuple(range(0, 2 * n, 2))
    return f"np.reshape(np.sum(np.reshape(g, {interleaved}), axis={axes}), {tuple(shape)})"


defrule(np.tile, "A, reps", linear=("A",), adjoint={"A": _tile})


def _repeat(ctx):
    if ctx.info("repeats").kind != "int":
        raise ctx.error("np.repeat with an array of repeat counts is not supported",
                        "use one repeat count, or index with np.arange(...).repeat(...)")
    repeats = ctx.value("repeats")
    shape = ctx.shape("a")
    if not ctx.given("axis"):
        return f"np.reshape(np.sum(np.reshape(g, ({int(np.prod(shape))}, {repeats})), axis=1), {shape})"
    axis = ctx.value("axis") % len(shape)
    split = shape[:axis] + (shape[axis], repeats) + shape[axis + 1:]
    return f"np.sum(np.reshape(g, {split}), axis={axis + 1})"


defrule(np.repeat, "a, repeats, axis=None", linear=("a",), adjoint={"a": _repeat})

# Triangles keep some elements and zero the rest: the adjoint keeps the same ones.
defrule(np.tril, "m, k=0", linear=("m",), adjoint={"m": "np.tril(g, k)"})
defrule(np.triu, "m, k=0", linear=("m",), adjoint={"m": "np.triu(g, k)"})
