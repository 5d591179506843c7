"""Rules of the runtime helpers generated code calls, so that it stays differentiable."""
from .. import runtime
from .registry import defrule

# unbroadcast(a, x) sums `a` down to x's shape: linear in `a`; its adjoint broadcasts back.
defrule(runtime.unbroadcast, "a, x", linear=("a",), shape_only=("x",),
        adjoint={"a": lambda ctx: (f"np.broadcast_to(g, a.shape)", ctx.shape("a"))})

# prod_others(a, axis): its tangent sums, for each element, the other elements' tangents
# times the product of the rest (exact with zeros, like prod_others itself).
defrule(runtime.prod_others, "a, axis", tangent={"a": "prod_others_tangent(a, a_dot, axis)"})

# Item assignment, written functionally by the compiler: x[i] = v is x = index_set(x, i, v).
defrule(runtime.index_set, "x, index, v",
        adjoint={"x": "zero_at(g, index)", "v": lambda ctx: ("unbroadcast(g[index], v)",
                                                             ctx.shape("v"))},
        tangent={"x": "index_set(x_dot, index, 0.0)",
                 "v": "index_set(np.zeros_like(x), index, v_dot)"})
defrule(runtime.index_add, "x, index, v",
        adjoint={"x": "g", "v": lambda ctx: ("unbroadcast(g[index], v)", ctx.shape("v"))},
        tangent={"x": "x_dot", "v": "index_add(np.zeros_like(x), index, v_dot)"})
defrule(runtime.zero_at, "a, index", linear=("a",), adjoint={"a": "zero_at(g, index)"})
