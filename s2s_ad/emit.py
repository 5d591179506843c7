"""Trees to text to a compiled function: the only module that writes source.

Generated source is registered with `linecache` under a stable name, so tracebacks show
its lines and `inspect.getsource` can read it back (which is how transformations compose).
"""
import ast
import linecache

import gast
import numpy as np

from . import astb, runtime
from .ir import Op, render, render_value
from .primitives import (ADD_AT, APPEND, ASTYPE, ATTRIBUTE, COPY, INDEX, LEN, NEWLIST,
                         OPERATOR_OF, POP, TRANSPOSE_T, UNRECORDED, spell)


def op_expr(op: Op):
    """The right-hand side of `op.target = ...` as the user would write it."""
    prim, args = op.prim, [render(a) for a in op.args]
    kwargs = {k: render(v) for k, v in op.kwargs.items()}
    if prim in OPERATOR_OF and not kwargs:
        kind = OPERATOR_OF[prim]
        if kind is gast.USub:
            return astb.neg(args[0])
        if issubclass(kind, gast.cmpop):
            return gast.Compare(left=args[0], ops=[kind()], comparators=[args[1]])
        return astb.binop(args[0], kind(), args[1])
    if prim is INDEX:
        return astb.subscript(args[0], args[1])
    if prim is TRANSPOSE_T:
        return astb.attr(args[0], "T")
    if prim is ATTRIBUTE:
        return astb.attr(args[0], op.args[1].value)
    if prim is ASTYPE:
        return astb.call(astb.attr(args[0], "astype"), args[1:], kwargs)
    if prim is LEN:
        return astb.call("len", args)
    if prim is COPY:
        return args[0]
    if prim is NEWLIST:
        return astb.list_([])
    if prim is POP:
        return astb.call(astb.attr(args[0], "pop"), [])
    args = [render_value(a) for a in op.args]  # (an index given to a function: slice(...))
    return astb.call(op.callee or spell(prim), args, kwargs)


def row_count(lead_shape, width):
    """Rows of a batch of rows of `width` reshaped to 2-D: -1, or written out where the
    width is 0 (-1 is ambiguous for an empty array)."""
    return -1 if width else int(np.prod(lead_shape))


def fast_stmt(op: Op, infos):
    """op_stmt, with what NumPy computes faster written out: a batch of rows times a
    matrix as one 2-D product ((B, T, C) @ (C, D) is slower than (B*T, C) @ (C, D))."""
    if op.prim is np.matmul and not op.kwargs and len(op.args) == 2:
        a, b = (infos.get(x.name) if hasattr(x, "name") else None for x in op.args)
        out = infos.get(op.target)
        if a is not None and b is not None and a.kind == b.kind == "array" and a.shape \
                and b.shape and len(a.shape) > 2 and len(b.shape) == 2 and out.shape:
            k = a.shape[-1]
            rows = astb.call("np.reshape", [render(op.args[0]),
                                            render_shape((row_count(a.shape[:-1], k), k))])
            product = astb.binop(rows, gast.MatMult(), render(op.args[1]))
            return astb.assign(op.target, astb.call("np.reshape", [product,
                                                                   render_shape(out.shape)]))
    return op_stmt(op)


def render_shape(shape):
    from .ir import Const
    return render(Const(tuple(shape)))


def op_stmt(op: Op):
    args = [render(a) for a in op.args]
    if op.prim is ADD_AT:
        return gast.Expr(value=astb.call("np.add.at", args))
    if op.prim is APPEND:
        return gast.Expr(value=astb.call(astb.attr(args[0], "append"), args[1:]))
    if op.prim is UNRECORDED:
        return gast.Expr(value=astb.call("unrecorded", []))
    return astb.assign(op.target, op_expr(op))


def unparse(node):
    # (ast.unparse reads no source locations: no fix_missing_locations needed)
    return ast.unparse(to_ast(node) if isinstance(node, gast.AST) else node)


# gast nodes that differ from ast's in more than extra fields: converted by gast itself.
_GAST_CONVERTS = {"Lambda", "arguments", "FunctionDef", "AsyncFunctionDef", "ExceptHandler",
                  "comprehension", "ListComp", "SetComp", "DictComp", "GeneratorExp", "ClassDef",
                  "Import", "ImportFrom", "alias", "Try", "With", "withitem", "JoinedStr",
                  "FormattedValue", "Interactive", "Module", "Expression", "arg", "MatchAs",
                  "Match", "match_case", "TryStar", "TypeIgnore", "Starred"}


def to_ast(node):
    """The `ast` tree of a gast tree. gast.gast_to_ast is general but was a third of the
    compile time of a large model's derivatives; the nodes generated code is made of map
    field by field, and anything else goes through gast."""
    name = type(node).__name__
    if name in _GAST_CONVERTS:
        return gast.gast_to_ast(node)
    cls = getattr(ast, name, None)
    if cls is None or (name == "Name" and type(node.ctx).__name__ not in _CTX):
        return gast.gast_to_ast(node)
    if name == "Name":
        return ast.Name(id=node.id, ctx=_CTX[type(node.ctx).__name__]())
    fields = {}
    for field in cls._fields:
        value = getattr(node, field, None)
        if type(value) is list:
            value = [to_ast(v) if isinstance(v, gast.AST) else v for v in value]
        elif isinstance(value, gast.AST):
            value = to_ast(value)
        fields[field] = value
    out = cls(**fields)
    if isinstance(out, ast.stmt):
        out.lineno = 1  # read (for type comments) by ast.unparse
    return out


_CTX = {"Load": ast.Load, "Store": ast.Store, "Del": ast.Del}


class LoopBlock:
    """`for target in iter:` over blocks of its own, in a list of blocks."""

    def __init__(self, target, iter_, blocks, comment=None):
        self.target = target
        self.iter = iter_
        self.blocks = blocks
        self.comment = comment


def statements(blocks):
    """Every statement of a list of blocks, those of loops and branches included."""
    out = []
    for block in blocks:
        out += statements(block.blocks) if isinstance(block, LoopBlock) else block[1]
    return out


def loop_header(loop, reverse=False):
    """(target, iterable) of an ir.Loop's `for`, or of the loop that walks it backwards."""
    from .ir import Const
    if loop.test is not None and reverse:  # a while loop walked back: its counted iterations
        return "_", astb.call("reversed", [astb.call("range", [astb.name(loop.counter)])])
    if loop.condition is not None:  # a branch: `if c:` / `if not c:`, in either direction
        test = render(loop.condition)
        return None, gast.UnaryOp(op=gast.Not(), operand=test) if loop.negate else test
    start, stop, step = loop.range_args
    if start == Const(0) and step == Const(1):
        args = [render(stop)]
    elif step == Const(1):
        args = [render(start), render(stop)]
    else:
        args = [render(start), render(stop), render(step)]
    it = astb.call("range", args)
    return loop.index, astb.call("reversed", [it]) if reverse != loop.reverse else it


WHILE = "while"


def loop_block(loop, body_blocks, comment=None, test_blocks=()):
    """The LoopBlock of an ir.Loop: `for`, `if`, or `while True:` that computes its test,
    breaks when it fails, then runs the body."""
    if loop.test is not None:
        stop = gast.If(test=gast.UnaryOp(op=gast.Not(), operand=render(loop.test)),
                       body=[gast.Break()], orelse=[])
        return LoopBlock(WHILE, astb.const(True),
                         list(test_blocks) + [(None, [stop])] + list(body_blocks), comment)
    target, it = loop_header(loop)
    return LoopBlock(target, it, body_blocks, comment)


def ops_to_blocks(body, comment_of, stmt_of=None):
    """Blocks of a structured body (ops and loops), one comment per source line."""
    stmt_of = stmt_of or op_stmt
    from .ir import Loop
    blocks = []
    for stmt in body:
        if isinstance(stmt, Loop):
            blocks.append(loop_block(stmt, ops_to_blocks(stmt.body, comment_of, stmt_of),
                                     comment_of(stmt),
                                     ops_to_blocks(stmt.test_body, comment_of, stmt_of)))
            continue
        comment = comment_of(stmt)
        made = stmt_of(stmt)
        made = made if isinstance(made, list) else [made]
        if blocks and not isinstance(blocks[-1], LoopBlock) and blocks[-1][0] == comment:
            blocks[-1][1].extend(made)
        else:
            blocks.append((comment, made))
    return blocks


def _lines(blocks, indent):
    out = []
    for block in blocks:
        if isinstance(block, LoopBlock):
            if block.comment:
                out.append(indent + "# " + block.comment)
            if block.target is None:
                out.append(f"{indent}if {unparse(block.iter)}:")
            elif block.target == WHILE:
                out.append(f"{indent}while True:")
            else:
                out.append(f"{indent}for {block.target} in {unparse(block.iter)}:")
            inner = _lines(block.blocks, indent + "    ")
            out += inner if any(l.strip() and not l.strip().startswith("#") for l in inner) \
                else inner + [indent + "    pass"]
            continue
        comment, stmts = block
        if comment:
            out.append(indent + "# " + comment)
        for stmt in stmts:
            for line in unparse(stmt).split("\n"):
                out.append(indent + line)
    return out


def function_source(name, params, blocks, docstring=None):
    """Source of `def name(params):` whose body is blocks of (comment, statements), with
    the imports it needs to run on its own (numpy, and the s2s_ad.runtime helpers it calls)."""
    used = set().union(*[astb.load_names(s) for s in statements(blocks)])
    imports = [n for n in runtime.__all__ if n in used]
    out = [f"import numpy as np"]
    if imports:
        out.append(f"from s2s_ad.runtime import {', '.join(sorted(imports))}")
    out += ["", "", f"def {name}({', '.join(params)}):"]
    if docstring:
        body = docstring.strip("\n").split("\n")
        out.append('    """' + body[0])
        out += [("    " + line) if line else "" for line in body[1:]]
        if len(body) > 1:
            out.append('    """')
        else:
            out[-1] += '"""'
    out += _lines(blocks, "    ")
    return "\n".join(out) + "\n"


_COUNTS = {}


GENERATED = "<s2s_ad: "   # how the file name of generated code starts


def compile_function(source, name, env):
    """Compile generated source; its lines are kept in linecache for tracebacks."""
    _COUNTS[name] = _COUNTS.get(name, 0) + 1
    filename = f"{GENERATED}{name}#{_COUNTS[name]}>"
    lines = source.splitlines(keepends=True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    namespace = {"np": np, "__name__": "s2s_ad.generated"}
    namespace.update({k: getattr(runtime, k) for k in runtime.__all__})
    namespace.update(env)
    exec(compile(source, filename, "exec"), namespace)
    fn = namespace[name]
    fn.__s2s_source__ = source
    return fn
