"""Which expressions of generated code make a new array that nothing else refers to.

Reverse mode hands such an array out as an adjoint it owns (and scatters into it), forward
mode the same for tangents, and the in-place pass updates it: all three must never take a
view or an argument for one. So the test is an allow-list: arithmetic, and calls known to
return an array of their own. Any other call (a helper such as `unbroadcast`, which returns
its argument when there is nothing to sum) counts as maybe shared; the cost of a wrong
"maybe" is one copy, of a wrong "fresh" a changed argument and a wrong derivative.
"""
import gast

# Calls that return a new array of their own (never one of their arguments).
FRESH_CALLS = {
    "sum", "mean", "max", "min", "prod", "where", "matmul", "dot", "einsum", "tensordot",
    "outer", "exp", "log", "tanh", "sqrt", "sin", "cos", "tan", "arctan", "arcsin", "arccos",
    "sinh", "cosh", "arctanh", "arcsinh", "arccosh", "log1p", "expm1", "abs", "absolute",
    "sign", "square", "reciprocal", "negative", "maximum", "minimum", "clip", "power",
    "exp2", "log2", "log10", "cbrt", "hypot", "arctan2", "logaddexp", "copy", "zeros_like",
    "ones_like", "full_like", "zeros", "ones", "full", "concatenate", "stack", "cumsum",
    "cumprod", "tril", "triu", "repeat", "tile", "softmax", "log_softmax", "scatter_rows",
    "index_set", "index_add", "zero_at", "prod_others", "prod_others_tangent",
}
# Views that are the only reference to their base when the base is a fresh temporary.
OWNING_VIEWS = {"reshape", "transpose", "swapaxes", "moveaxis", "expand_dims", "squeeze"}


def call_name(call):
    func = call.func
    return func.attr if isinstance(func, gast.Attribute) else getattr(func, "id", "")


def fresh_array(expr, through_views=False):
    """Does evaluating `expr` make an array that nothing else refers to? With
    `through_views`, a view of such an array counts too (`np.reshape(a @ b, s)`): the
    in-place pass may update it; reverse and forward mode copy it before they scatter into
    it, since hvp reads their code again and takes every view for someone else's array."""
    if isinstance(expr, (gast.BinOp, gast.UnaryOp)):
        return True
    if isinstance(expr, gast.Call):
        name = call_name(expr)
        if name in FRESH_CALLS:
            return True
        return through_views and name in OWNING_VIEWS and bool(expr.args) \
            and fresh_array(expr.args[0], True)
    if isinstance(expr, gast.Attribute) and expr.attr == "T":
        return through_views and fresh_array(expr.value, True)
    return False
