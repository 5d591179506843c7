"""Free large arrays as soon as generated code no longer reads them.

A Python function keeps every local alive until it returns, so a backward sweep written
as straight-line code would hold each forward value and each adjoint to the end: for a
transformer that is several times the memory of a hand-written pass, which drops its
temporaries as it goes. This pass writes `del a, b_bar` right after the last statement
that reads them (a loop or branch counts as one statement), for names bound outside any
loop (so they surely exist) whose arrays are large enough to matter.
"""
import gast

from . import astb
from .emit import LoopBlock, statements

RELEASE_BYTES = 1 << 16   # smaller arrays are not worth a line of generated code


def release(blocks, nbytes, keep=()):
    """`blocks` with `del` statements added at the top level; `nbytes(name)` is the size of
    the array a name holds (None: unknown, never deleted); `keep`: names never deleted."""
    units = []                      # (block index, statement index or None for a loop)
    touched, bound = [], []
    for b, block in enumerate(blocks):
        if isinstance(block, LoopBlock):
            stmts = statements(block.blocks)
            names = astb.load_names(block.iter).union(*[astb.all_names(s) for s in stmts])
            units.append((b, None))
            touched.append(names)
            bound.append(set())
            continue
        for s, stmt in enumerate(block[1]):
            units.append((b, s))
            touched.append(astb.all_names(stmt))
            owner = isinstance(stmt, gast.Assign) and not _view(stmt.value)
            bound.append(astb.stored_names(stmt) if owner else set())
    last, first_bound = {}, {}
    for u, names in enumerate(touched):
        for name in names:
            last[name] = u
        for name in bound[u]:
            first_bound.setdefault(name, u)
    dels = {}
    for name, u in last.items():
        b, s = units[u]
        if name in keep or first_bound.get(name, u + 1) > u or (
                s is not None and isinstance(blocks[b][1][s], gast.Return)):
            continue
        size = nbytes(name)
        if size is not None and size >= RELEASE_BYTES:
            dels.setdefault(u, []).append(name)
    if not dels:
        return blocks
    after = {}                       # block index -> {statement index: names}
    for u, names in dels.items():
        b, s = units[u]
        after.setdefault(b, {})[s] = sorted(names)
    out = []
    for b, block in enumerate(blocks):
        marks = after.get(b, {})
        if isinstance(block, LoopBlock):
            out.append(block)
            if None in marks:
                out.append((None, [_delete(marks[None])]))
            continue
        comment, stmts = block
        new = []
        for s, stmt in enumerate(stmts):
            new.append(stmt)
            if s in marks:
                new.append(_delete(marks[s]))
        out.append((comment, new))
    return out


def _delete(names):
    return gast.Delete(targets=[gast.Name(id=n, ctx=gast.Del(), annotation=None, type_comment=None)
                                 for n in names])


VIEWS = {"reshape", "transpose", "expand_dims", "squeeze", "swapaxes", "moveaxis",
         "broadcast_to", "T"}


def _view(expr):
    """Does `expr` (maybe) share memory with a value that has a name of its own?"""
    if isinstance(expr, (gast.Name, gast.Subscript, gast.Attribute, gast.Constant)):
        return True
    if isinstance(expr, gast.Call):
        func = expr.func
        name = func.attr if isinstance(func, gast.Attribute) else getattr(func, "id", "")
        # a view of what it reshapes: of a name, or of an array made just here (then an owner)
        return name in VIEWS and bool(expr.args) and _view(expr.args[0])
    return False
