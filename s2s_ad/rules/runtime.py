"""Rules of the runtime helpers generated code calls, so that it stays differentiable."""
from .. import runtime
from .registry import defrule

# unbroadcast(a, x) sums `a` down to x's shape: linear in `a`; its adjoint broadcasts back.
defrule(runtime.unbroadcast, "a, x", linear=("a",), shape_only=("x",),
        adjoint={"a": lambda ctx: (f"np.broadcast_to(g, a.shape)", ctx.shape("a"))})

# prod_others(a, axis): its tangent sums, for each element, the other elements' tangents
# times the product of the rest (exact with zeros, like prod_others itself).
defrule(runtime.prod_others, "a, axis", tangent={"a": "prod_others_tangent(a, a_dot, axis)"})
