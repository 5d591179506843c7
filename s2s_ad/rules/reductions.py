"""Reductions: sum mean max min prod var std, with axis (negative, tuples) and keepdims.

The adjoint spreads `g` back over the reduced axes. When everything is reduced, the
adjoint stays the scalar `g` (or `g / n`): elementwise code downstream broadcasts it for
free, and it is expanded to a full array only where something needs one.

Ties: `max`/`min` split the derivative evenly between all positions that attain the
extremum (so the result does not depend on the order of elements).
"""
import numpy as np

from .registry import defrule


def reduced_axes(ctx, param="axis", of="a"):
    """The reduced axes as a sorted tuple of non-negative ints (all axes for None)."""
    ndim = ctx.ndim(of)
    axis = ctx.value(param) if ctx.given(param) else None
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    return tuple(sorted(a % ndim for a in axes))


def _axis_text(axes):
    return str(axes[0]) if len(axes) == 1 else str(tuple(axes))


def _count(ctx, axes):
    shape = ctx.shape("a")
    return int(np.prod([shape[a] for a in axes])) if axes else 1


# The count a mean or variance divides by, where shapes are known only at run time; an
# empty `a` (0 // 0, or a division by 0) would raise, though its adjoint is empty anyway.
RUNTIME_COUNT = "(max(a.size, 1) // max(ans.size, 1))"


def _over_nothing(ctx, axes):
    """A reduction over an empty axis (a mean or variance of NaN): `a` is empty, so its
    adjoint contributes nothing (the rule returns None); a literal count of 0 in the
    generated code would divide by zero."""
    return ctx.static("a") and bool(axes) and _count(ctx, axes) == 0


def _no_degrees_of_freedom(ctx, axes):
    """A variance with ddof at least the count (NumPy divides by max(count - ddof, 0): an
    infinite or NaN value): its derivative is undefined, NaN; `count - ddof` in the
    generated code would divide by zero or flip the sign."""
    return ctx.static("a") and (ctx.value("ddof") or 0) >= _count(ctx, axes) > 0


def undefined_variance(ctx, axes):
    """A variance (or std) whose every derivative is NaN, like its value: over an empty
    axis, or with ddof at least the count. (Batched forward mode leaves it to this rule.)"""
    return _over_nothing(ctx, axes) or _no_degrees_of_freedom(ctx, axes)


def kept(ctx, name, axes):
    """`name` (a reduction's g or ans) with the reduced axes put back as size 1."""
    if ctx.value("keepdims") or len(axes) == ctx.ndim("a") or not axes:
        return name
    if name == "g" and ctx.g_scalar:
        return name
    return f"np.expand_dims({name}, {_axis_text(axes)})"


def _whole(ctx, axes):
    return len(axes) == ctx.ndim("a")


def _spread(ctx, template):
    """Broadcast `template` (shaped like a keepdims result) back to the input's shape."""
    if ctx.static("a"):
        return f"np.broadcast_to({template}, {ctx.shape('a')})"
    return f"np.broadcast_to({template}, a.shape)"


def _sum_adjoint(ctx):
    axes = reduced_axes(ctx)
    if ctx.g_scalar or _whole(ctx, axes) and not ctx.value("keepdims"):
        return "g", ()
    return _spread(ctx, kept(ctx, "g", axes))


def _mean_adjoint(ctx):
    axes = reduced_axes(ctx)
    if not ctx.static("a"):
        n = RUNTIME_COUNT
    else:
        n = str(_count(ctx, axes))
        if _over_nothing(ctx, axes):
            return None
    if ctx.g_scalar or _whole(ctx, axes) and not ctx.value("keepdims"):
        return f"g / {n}", ()
    return _spread(ctx, f"{kept(ctx, 'g', axes)} / {n}")


def _extremum_adjoint(ctx):
    axes = reduced_axes(ctx)
    ans, g = kept(ctx, "ans", axes), kept(ctx, "g", axes)
    where = f"a == {ans}"
    count = f"np.sum({where}, axis={_axis_text(axes)}, keepdims=True, dtype=a.dtype)"
    if _whole(ctx, axes):
        count = f"np.sum({where}, dtype=a.dtype)"
    return f"({where}) * ({g} / {count})"


def _prod_adjoint(ctx):
    # Product of all the other elements, without dividing by a (exact when a has zeros).
    axes = reduced_axes(ctx)
    return f"{kept(ctx, 'g', axes)} * prod_others(a, {_axis_text(axes)})"


def _var_adjoint(ctx, std=False):
    axes = reduced_axes(ctx)
    if _over_nothing(ctx, axes):
        return None
    if _no_degrees_of_freedom(ctx, axes):
        return "a * np.nan"   # (read from a: its own derivative, in hvp, is NaN too)
    n = _count(ctx, axes) if ctx.static("a") else RUNTIME_COUNT
    ddof = ctx.value("ddof")
    denom = f"({n} - {ddof})" if ddof else f"{n}"
    centred = f"(a - np.mean(a, axis={_axis_text(axes)}, keepdims=True))"
    if std:
        return f"{kept(ctx, 'g', axes)} * {centred} / ({denom} * {kept(ctx, 'ans', axes)})"
    return f"{kept(ctx, 'g', axes)} * (2.0 / {denom}) * {centred}"


def _extremum_tangent(ctx):
    axes = reduced_axes(ctx)
    where, ax, kd = f"a == {kept(ctx, 'ans', axes)}", _axis_text(axes), ctx.value("keepdims")
    return (f"np.sum(({where}) * a_dot, axis={ax}, keepdims={kd}) / "
            f"np.sum({where}, axis={ax}, keepdims={kd}, dtype=a.dtype)")


def _prod_tangent(ctx):
    ax = _axis_text(reduced_axes(ctx))
    return f"np.sum(prod_others(a, {ax}) * a_dot, axis={ax}, keepdims={ctx.value('keepdims')})"


def _var_tangent(ctx, std=False):
    axes = reduced_axes(ctx)
    if undefined_variance(ctx, axes):
        return "np.full_like(ans, np.nan)"   # as undefined as the value
    n = _count(ctx, axes) if ctx.static("a") else RUNTIME_COUNT
    ddof = ctx.value("ddof")
    denom = f"({n} - {ddof})" if ddof else f"{n}"
    ax = _axis_text(axes)
    inner = (f"np.sum((a - np.mean(a, axis={ax}, keepdims=True)) * a_dot, axis={ax}, "
             f"keepdims={ctx.value('keepdims')})")
    return f"{inner} / ({denom} * ans)" if std else f"{inner} * (2.0 / {denom})"


REDUCE = "a, axis=None, dtype=None, out=None, keepdims=False"
VAR = "a, axis=None, dtype=None, out=None, ddof=0, keepdims=False"
defrule(np.sum, REDUCE, linear=("a",), adjoint={"a": _sum_adjoint}, lazy_g=True)
defrule(np.mean, REDUCE, linear=("a",), adjoint={"a": _mean_adjoint}, lazy_g=True)
for _f in (np.max, np.min):
    defrule(_f, "a, axis=None, out=None, keepdims=False",
            adjoint={"a": _extremum_adjoint}, tangent={"a": _extremum_tangent}, lazy_g=True)
# (lazy_g: their adjoints take a scalar g as it is; kept() leaves it unexpanded)
defrule(np.prod, REDUCE, adjoint={"a": _prod_adjoint}, tangent={"a": _prod_tangent},
        lazy_g=True)
defrule(np.var, VAR, adjoint={"a": _var_adjoint}, tangent={"a": _var_tangent}, lazy_g=True)
defrule(np.std, VAR, adjoint={"a": lambda ctx: _var_adjoint(ctx, std=True)},
        tangent={"a": lambda ctx: _var_tangent(ctx, std=True)}, lazy_g=True)
