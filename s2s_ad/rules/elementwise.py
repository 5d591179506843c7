"""Elementwise functions and operators: one partial derivative per argument.

From `partials`, the adjoint is `g * partial` (reduced back to the argument's shape where
NumPy broadcast it) and the tangent is `x_dot * partial`; `ans` is the function's result,
so tanh and exp reuse their output instead of recomputing it.

Ties: `np.maximum(x, y)` sends the whole derivative to `x` where x == y, and
`np.minimum(x, y)` likewise (the first argument wins a tie).
`abs` at 0 and `clip` at its bounds take the derivative of the inside (1 at the bound).
"""
import builtins
import math

import numpy as np

from .registry import defrule, defrule_elementwise, nondiff

# -- unary ------------------------------------------------------------------------------
defrule(np.negative, "x", partials={"x": "-1"})
defrule(np.positive, "x", partials={"x": "1"})
defrule(np.sin, "x", partials={"x": "np.cos(x)"})
defrule(np.cos, "x", partials={"x": "-np.sin(x)"})
defrule(np.tan, "x", partials={"x": "1.0 + ans * ans"})
defrule(np.arcsin, "x", partials={"x": "1.0 / np.sqrt(1.0 - x * x)"})
defrule(np.arccos, "x", partials={"x": "-1.0 / np.sqrt(1.0 - x * x)"})
defrule(np.arctan, "x", partials={"x": "1.0 / (1.0 + x * x)"})
defrule(np.sinh, "x", partials={"x": "np.cosh(x)"})
defrule(np.cosh, "x", partials={"x": "np.sinh(x)"})
defrule(np.tanh, "x", partials={"x": "1.0 - ans * ans"})
defrule(np.arcsinh, "x", partials={"x": "1.0 / np.sqrt(x * x + 1.0)"})
defrule(np.arctanh, "x", partials={"x": "1.0 / (1.0 - x * x)"})
defrule(np.exp, "x", partials={"x": "ans"})
# ln 2 and ln 10 as Python floats: a NumPy float64 scalar would turn float32 into float64.
defrule(np.exp2, "x", partials={"x": "ans * 0.6931471805599453"})
defrule(np.expm1, "x", partials={"x": "ans + 1.0"})
defrule(np.log, "x", partials={"x": "1.0 / x"})
defrule(np.log2, "x", partials={"x": "1.0 / (x * 0.6931471805599453)"})
defrule(np.log10, "x", partials={"x": "1.0 / (x * 2.302585092994046)"})
defrule(np.log1p, "x", partials={"x": "1.0 / (1.0 + x)"})
defrule(np.sqrt, "x", partials={"x": "0.5 / ans"})
defrule(np.cbrt, "x", partials={"x": "1.0 / (3.0 * ans * ans)"})
defrule(np.square, "x", partials={"x": "2.0 * x"})
defrule(np.reciprocal, "x", partials={"x": "-ans * ans"})
defrule(np.abs, "x", partials={"x": "np.sign(x)"})
for _f, _c in ((np.degrees, "57.29577951308232"), (np.rad2deg, "57.29577951308232"),
               (np.radians, "0.017453292519943295"), (np.deg2rad, "0.017453292519943295")):
    defrule(_f, "x", partials={"x": _c})   # (180 / pi and its inverse, as Python floats)

# -- binary -----------------------------------------------------------------------------
defrule(np.add, "x, y", partials={"x": "1", "y": "1"})
defrule(np.subtract, "x, y", partials={"x": "1", "y": "-1"})
defrule(np.multiply, "x, y", partials={"x": "y", "y": "x"})
defrule_elementwise(np.true_divide, "x, y",
                    adjoint={"x": "g / y", "y": "-g * ans / y"},
                    tangent={"x": "x_dot / y", "y": "-y_dot * ans / y"})
defrule(np.maximum, "x, y", partials={"x": "x >= y", "y": "x < y"})
defrule(np.minimum, "x, y", partials={"x": "x <= y", "y": "x > y"})
defrule(np.fmax, "x, y", partials={"x": "x >= y", "y": "x < y"})
defrule(np.fmin, "x, y", partials={"x": "x <= y", "y": "x > y"})
defrule(np.logaddexp, "x, y", partials={"x": "np.exp(x - ans)", "y": "np.exp(y - ans)"})
defrule(np.arctan2, "x, y", partials={"x": "y / (x * x + y * y)", "y": "-x / (x * x + y * y)"})
defrule(np.hypot, "x, y", partials={"x": "x / ans", "y": "y / ans"})
# x % y == x - floor(x / y) * y (NumPy's remainder, the sign of y); np.fmod truncates instead
defrule(np.remainder, "x, y", partials={"x": "1", "y": "-(x // y)"})
defrule(np.fmod, "x, y", partials={"x": "1", "y": "-np.trunc(x / y)"})


def _power_base(ctx):
    """d(x ** y)/dx, written out for the exponents people use."""
    if not ctx.active("y") and ctx.given_number("y"):
        e = ctx.value("y")
        if e == 0:
            return "0.0 * x"
        if e == 1:
            return "1"
        if e == 2:
            return "2.0 * x"
        if e == 0.5:
            return "0.5 / ans"
        if e == -1:
            return "-ans * ans"
        if float(e).is_integer():
            return f"{float(e)!r} * x ** {int(e) - 1}"
        return f"{e!r} * x ** {e - 1!r}"
    return "y * x ** (y - 1.0)"


def _power_exponent(ctx):
    if ctx.given_number("x"):  # 2.0 ** y: ln 2 as a Python float keeps float32 float32
        base = ctx.value("x")
        if base == 0:   # 0 ** y is 0 for y > 0: flat (as JAX has it), not 0 * log(0)
            return "0.0 * ans"
        if base < 0:    # (-2.0) ** y has no real derivative in y
            return "ans * np.nan"
        return f"ans * {math.log(base)!r}"
    return "ans * np.log(x)"


defrule(np.power, "x, y", partials={"x": _power_base, "y": _power_exponent})


# np.clip(a, lo, hi) is np.minimum(np.maximum(a, lo), hi), also when lo > hi.
def _clip_a(ctx):
    lo, hi = ctx.given("a_min"), ctx.given("a_max")
    if lo and hi:
        return "(a >= a_min) & (a <= a_max)"
    return "a >= a_min" if lo else "a <= a_max"


def _clip_min(ctx):
    return "(a < a_min) & (a_min <= a_max)" if ctx.given("a_max") else "a < a_min"


def _clip_max(ctx):
    return "np.maximum(a, a_min) > a_max" if ctx.given("a_min") else "a > a_max"


defrule(np.clip, "a, a_min=None, a_max=None",
        partials={"a": _clip_a, "a_min": _clip_min, "a_max": _clip_max})

defrule_elementwise(np.where, "condition, x, y",
                    adjoint={"x": "np.where(condition, g, 0.0)", "y": "np.where(condition, 0.0, g)"},
                    tangent={"x": "np.where(condition, x_dot, 0.0)",
                             "y": "np.where(condition, 0.0, y_dot)"})

# -- zero derivative: results are constants to the compiler ------------------------------
nondiff(np.sign, np.floor, np.ceil, np.trunc, np.rint, np.round,
        np.less, np.less_equal, np.greater, np.greater_equal, np.equal, np.not_equal,
        np.logical_and, np.logical_or, np.logical_not, np.logical_xor,
        np.isnan, np.isfinite, np.isinf, np.floor_divide,
        np.bitwise_and, np.bitwise_or, np.bitwise_xor, np.invert, builtins.slice,
        np.argmax, np.argmin, np.argsort, np.any, np.all, np.nonzero, np.shape, np.ndim,
        np.zeros, np.ones, np.eye, np.empty, np.identity,
        np.zeros_like, np.ones_like, np.empty_like, np.tri, np.tril_indices,
        np.triu_indices)

# Constructors that copy values: fine on constants; on a computed value they would lose its
# derivative, so the compiler refuses that (see analysis.active_values).
nondiff(np.array, np.asarray, np.ascontiguousarray, builtins.min, builtins.max, builtins.int,
        builtins.round, np.arange, constant_args=True)
