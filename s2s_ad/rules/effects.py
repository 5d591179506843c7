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
