"""Small builders for gast trees, so that transformations read as the code they make."""
import gast


def name(id_, store=False):
    return gast.Name(id=id_, ctx=gast.Store() if store else gast.Load(),
                     annotation=None, type_comment=None)


def const(value):
    return gast.Constant(value=value, kind=None)


def attr(value, attr_name):
    if isinstance(value, str):
        value = dotted(value)
    return gast.Attribute(value=value, attr=attr_name, ctx=gast.Load())


def dotted(path):
    """`np.linalg.norm` -> Attribute(Attribute(Name(np), linalg), norm)."""
    head, *rest = path.split(".")
    node = name(head)
    for part in rest:
        node = gast.Attribute(value=node, attr=part, ctx=gast.Load())
    return node


def call(func, args=(), keywords=None):
    if isinstance(func, str):
        func = dotted(func)
    kws = [gast.keyword(arg=k, value=v) for k, v in (keywords or {}).items()]
    return gast.Call(func=func, args=list(args), keywords=kws)


def assign(target, value):
    if isinstance(target, str):
        target = name(target, store=True)
    return gast.Assign(targets=[target], value=value, type_comment=None)


def aug_add(target, value):
    return gast.AugAssign(target=target, op=gast.Add(), value=value)


def subscript(value, index, store=False):
    return gast.Subscript(value=value, slice=index,
                          ctx=gast.Store() if store else gast.Load())


def tuple_(elts):
    return gast.Tuple(elts=list(elts), ctx=gast.Load())


def list_(elts):
    return gast.List(elts=list(elts), ctx=gast.Load())


def dict_(keys, values):
    return gast.Dict(keys=list(keys), values=list(values))


def binop(left, op, right):
    return gast.BinOp(left=left, op=op, right=right)


def neg(operand):
    return gast.UnaryOp(op=gast.USub(), operand=operand)


def ret(value):
    return gast.Return(value=value)


def is_const(node, value=None):
    if not isinstance(node, gast.Constant):
        return False
    return value is None or (type(node.value) in (int, float) and node.value == value)


def parse_expr(src):
    return gast.parse(src, mode="eval").body


def load_names(node):
    """Every name read anywhere inside `node`."""
    return _names(node, gast.Load)


def count_loads(node, counts):
    """Add to `counts` how many times each name is read inside `node`."""
    for n in name_nodes(node):
        if type(n.ctx) is gast.Load:
            counts[n.id] = counts.get(n.id, 0) + 1
    return counts


def all_names(node):
    """Every name read or written anywhere inside `node` (not those deleted)."""
    return _names(node, (gast.Load, gast.Store))


def _names(node, ctx):
    ctxs = ctx if type(ctx) is tuple else (ctx,)
    return {n.id for n in name_nodes(node) if type(n.ctx) in ctxs}


def nodes_of(node, kind):
    """Every node of type `kind` inside `node`. A walk of our own: ast.walk's generators
    were a tenth of a first call's compile time. (A Name holds no expression: not entered.)"""
    stack = [node]
    while stack:
        n = stack.pop()
        if type(n) is kind:
            yield n
        if type(n) is gast.Name:
            continue
        for field in n._fields:
            value = getattr(n, field, None)
            if type(value) is list:
                stack.extend(v for v in value if isinstance(v, gast.AST))
            elif isinstance(value, gast.AST):
                stack.append(value)


def name_nodes(node):
    """Every Name node inside `node`."""
    return nodes_of(node, gast.Name)


def clone(node):
    """A deep copy of a gast tree (copy.deepcopy's generic machinery, memo and all, was a
    tenth of a large model's compile time)."""
    if isinstance(node, gast.AST):
        new = type(node).__new__(type(node))
        for field in node._fields:
            value = getattr(node, field, None)
            setattr(new, field, [clone(v) for v in value] if type(value) is list else clone(value))
        for attr in node._attributes:
            if hasattr(node, attr):
                setattr(new, attr, getattr(node, attr))
        return new
    return node


def replace_names(node, exprs):
    """A copy of `node` with each name read that is in `exprs` replaced by (a copy of)
    its expression."""

    class Replace(gast.NodeTransformer):
        def visit_Name(self, n):
            if isinstance(n.ctx, gast.Load) and n.id in exprs:
                return clone(exprs[n.id])
            return n

    return Replace().visit(clone(node))


def stored_names(node):
    return _names(node, gast.Store)


def unparse_key(node):
    """A key equal for equal trees: their structure as nested tuples (cheaper to make
    than their text)."""
    if isinstance(node, gast.AST):
        return (type(node).__name__,) + tuple(unparse_key(getattr(node, f, None))
                                              for f in node._fields
                                              if f not in ("ctx", "type_comment", "annotation"))
    if type(node) is list:
        return tuple(unparse_key(v) for v in node)
    return (type(node).__name__, node) if isinstance(node, (int, float, complex)) else node
