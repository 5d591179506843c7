"""`np.sum(a * b, axis=...)` written as one `np.einsum` pass.

Adjoints are full of sums of products: LayerNorm's and softmax's row sums
(`np.sum(g * p, axis=-1, keepdims=True)`), a scale's gradient (`np.sum(g * x, axis=(0, 1))`).
NumPy makes the product as an array and then sums it; `np.einsum` multiplies and adds in
one pass without the temporary (two to three times faster on the transformer's arrays),
which is how a hand-written backward pass writes them. Only products of two arrays of the
same known shape and type are rewritten: einsum does not broadcast the way `*` does.
"""
import string

import gast

from . import astb


def contract_sums(blocks, array_info, updated=None):
    """`blocks` with sums of products of two same-shaped arrays as np.einsum calls."""
    from .emit import LoopBlock, statements
    if updated is None:
        updated = _updated_in_place(statements(blocks))

    def fix(stmt):
        if not any(_is_sum_call(n) for n in astb.nodes_of(stmt, gast.Call)):
            return stmt
        if isinstance(stmt, gast.Assign) and astb.stored_names(stmt) & updated:
            return stmt   # a keepdims einsum is a view, and this array is scattered into
        return _Contract(array_info).visit(astb.clone(stmt))

    out = []
    for block in blocks:
        if isinstance(block, LoopBlock):
            out.append(LoopBlock(block.target, block.iter,
                                 contract_sums(block.blocks, array_info, updated),
                                 block.comment))
        else:
            out.append((block[0], [fix(s) for s in block[1]]))
    return out


def _updated_in_place(stmts):
    """Names whose arrays statements update in place (np.add.at, x[i] = ..., x[i] += ...)."""
    names = set()
    for stmt in stmts:
        if isinstance(stmt, gast.Expr) and isinstance(stmt.value, gast.Call) \
                and stmt.value.args and isinstance(stmt.value.args[0], gast.Name):
            names.add(stmt.value.args[0].id)
        targets = stmt.targets if isinstance(stmt, gast.Assign) else \
            [stmt.target] if isinstance(stmt, gast.AugAssign) else []
        for t in targets:
            if isinstance(t, gast.Subscript) and isinstance(t.value, gast.Name):
                names.add(t.value.id)
    return names


def _is_sum_call(node):
    return isinstance(node, gast.Call) and isinstance(node.func, gast.Attribute) \
        and node.func.attr == "sum" and isinstance(node.func.value, gast.Name) \
        and node.func.value.id == "np"


class _Contract(gast.NodeTransformer):
    def __init__(self, array_info):
        self.array_info = array_info

    def visit_Call(self, node):
        self.generic_visit(node)
        return _einsum(node, self.array_info) or node


def _einsum(call, array_info):
    if not _is_sum_call(call) or len(call.args) != 1:
        return None
    product = call.args[0]
    if not (isinstance(product, gast.BinOp) and isinstance(product.op, gast.Mult)
            and isinstance(product.left, gast.Name) and isinstance(product.right, gast.Name)):
        return None
    left, right = array_info(product.left.id), array_info(product.right.id)
    if left is None or left != right or left[1].kind != "f" or not left[0] \
            or len(left[0]) > len(string.ascii_lowercase):
        return None
    ndim = len(left[0])
    kwargs = {k.arg: k.value for k in call.keywords}
    if set(kwargs) - {"axis", "keepdims"}:
        return None
    axes = _axes(kwargs.get("axis"), ndim)
    keep = kwargs.get("keepdims")
    if axes is None or (keep is not None and not (isinstance(keep, gast.Constant)
                                                   and isinstance(keep.value, bool))):
        return None
    keepdims = keep is not None and keep.value
    if len(axes) == ndim:
        return None   # a full sum: np.sum's pairwise sum is the more accurate one
    letters = string.ascii_lowercase[:ndim]
    kept = "".join(c for i, c in enumerate(letters) if i not in axes)
    out = astb.call("np.einsum", [astb.const(f"{letters},{letters}->{kept}"),
                                  product.left, product.right])
    if keepdims:
        out = astb.call("np.expand_dims", [out, astb.const(tuple(sorted(axes)))])
    return out


def _axes(node, ndim):
    """The summed axes as a set of non-negative ints, or None when not constant."""
    if node is None:
        return set(range(ndim))
    if isinstance(node, gast.Constant) and type(node.value) is int:
        values = [node.value]
    elif isinstance(node, gast.UnaryOp) and isinstance(node.op, gast.USub) \
            and isinstance(node.operand, gast.Constant) and type(node.operand.value) is int:
        values = [-node.operand.value]
    elif isinstance(node, gast.Tuple):
        values = []
        for e in node.elts:
            one = _axes(e, ndim)
            if one is None or len(one) != 1:
                return None
            values += list(one)
    else:
        return None
    if not all(-ndim <= v < ndim for v in values):
        return None
    return {v % ndim for v in values}
