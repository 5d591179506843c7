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
# Both are linear in (x, v) together: with both varying, one call on both tangents (the
# ("x", "v") tangent) instead of two calls, one into zeros, added.
defrule(runtime.index_set, "x, index, v",
        adjoint={"x": "zero_at(g, index)", "v": lambda ctx: ("unbroadcast(g[index], v)",
                                                             ctx.shape("v"))},
        tangent={"x": "index_set(x_dot, index, 0.0)",
                 "v": "index_set(np.zeros_like(x), index, v_dot)",
                 ("x", "v"): "index_set(x_dot, index, v_dot)"})
defrule(runtime.index_add, "x, index, v",
        adjoint={"x": "g", "v": lambda ctx: ("unbroadcast(g[index], v)", ctx.shape("v"))},
        tangent={"x": "x_dot", "v": "index_add(np.zeros_like(x), index, v_dot)",
                 ("x", "v"): "index_add(x_dot, index, v_dot)"})
defrule(runtime.zero_at, "a, index", linear=("a",), adjoint={"a": "zero_at(g, index)"})

# softmax / log-softmax chains the compiler fused (s2s_ad/fuse.py): one adjoint that reads
# the result only. The max the user subtracts for stability has no effect on the result,
# so it has no adjoint here (unfused, its adjoint would be zero up to rounding).
defrule(runtime.softmax, "a, axis",
        adjoint={"a": "ans * (g - np.sum(g * ans, axis=axis, keepdims=True))"},
        tangent={"a": "ans * (a_dot - np.sum(ans * a_dot, axis=axis, keepdims=True))"})
defrule(runtime.log_softmax, "a, axis",
        adjoint={"a": "g - np.exp(ans) * np.sum(g, axis=axis, keepdims=True)"},
        tangent={"a": "a_dot - np.sum(np.exp(ans) * a_dot, axis=axis, keepdims=True)"})

# The adjoint of an embedding look-up, table[index] (see reverse.py's finalize): linear in v.
defrule(runtime.scatter_rows, "index, v, shape", linear=("v",),
        adjoint={"v": lambda ctx: ("g[index]", ctx.shape("v"))})
