"""In-place updates and stacks: what reverse mode writes into the code it generates
(scatters into adjoint arrays, stacks of values saved in loops). They are linear, so their
tangents are the same updates on tangents (forward.py writes them); reverse mode refuses
them for now, so they reach only forward mode (hvp = forward mode of an adjoint)."""
import builtins

import numpy as np

from ..primitives import ADD_AT, APPEND, NEWLIST, POP, UNRECORDED
from .registry import defrule, nondiff

defrule(ADD_AT, "x, index, v", linear=("x", "v"))
defrule(APPEND, "stack, x", linear=("stack", "x"))
defrule(POP, "stack", linear=("stack",))
nondiff(NEWLIST, UNRECORDED)

# float(x) of a one-element array or a NumPy scalar: the gradient is handed back as a float.
defrule(builtins.float, "x", linear=("x",), adjoint={"x": "g"}, lazy_g="through")

# The fill value of np.full_like / np.full is spread over the whole array.
defrule(np.full_like, "a, fill_value, dtype=None", linear=("fill_value",), shape_only=("a",),
        adjoint={"fill_value": lambda ctx: ("g", ctx.shape("ans"))}, lazy_g="through")
defrule(np.full, "shape, fill_value, dtype=None", linear=("fill_value",),
        adjoint={"fill_value": lambda ctx: ("g", ctx.shape("ans"))}, lazy_g="through")


def _linspace(at_start, form):
    """linspace(a, b, n) == a * linspace(1, 0, n) + b * linspace(0, 1, n): `form` (the
    adjoint's or the tangent's) of those weights, in the result's dtype."""
    def rule(ctx):
        if ctx.value("retstep"):
            raise ctx.error("np.linspace(..., retstep=True) is not supported",
                            "compute the step yourself: (stop - start) / (num - 1)")
        if ctx.ndim("start") or ctx.ndim("stop"):
            raise ctx.error("np.linspace with array end points is not supported",
                            "use scalar end points, or start + (stop - start) * t with "
                            "t = np.linspace(0.0, 1.0, num)")
        ends = "1.0, 0.0" if at_start else "0.0, 1.0"
        endpoint = "" if ctx.value("endpoint") else ", endpoint=False"
        return form.format(f"np.linspace({ends}, num{endpoint}, dtype=ans.dtype)")
    return rule


defrule(np.linspace, "start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0",
        adjoint={"start": _linspace(True, "np.sum(g * {})"),
                 "stop": _linspace(False, "np.sum(g * {})")},
        tangent={"start": _linspace(True, "start_dot * {}"),
                 "stop": _linspace(False, "stop_dot * {}")})
