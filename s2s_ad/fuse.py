"""Recognise the numerically stable softmax and log-softmax a user writes out,

    m = np.max(a, axis=k, keepdims=True); e = np.exp(a - m)
    p = e / np.sum(e, axis=k, keepdims=True)               # softmax
    s = a - m; q = s - np.log(np.sum(np.exp(s), axis=k, keepdims=True))   # log-softmax

and compute the result with one fused primitive (runtime.softmax / log_softmax) whose
adjoint reads only that result: `p * (g - sum(g * p))`, `g - exp(q) * sum(g)`. Unfused,
the backward sweep keeps a, exp(a - m) and p, and spends a comparison over `a` on the
adjoint of the max, which is zero (the result does not depend on the shift). The other
ops of the chain stay for any other reader; unread, they are dropped as dead code.
"""
import numpy as np

from . import runtime
from .ir import Const, Loop, Op, Var
from .primitives import EFFECTS


def fuse(program):
    """The program with its softmax and log-softmax chains fused, in every loop body."""
    _fuse_body(program.body)
    return program


def _fuse_body(body):
    defs = {op.target: op for op in body if isinstance(op, Op)}
    updated = {op.args[0] for op in body if isinstance(op, Op) and op.prim in EFFECTS}
    for k, stmt in enumerate(body):
        if isinstance(stmt, Loop):
            _fuse_body(stmt.body)
            continue
        fused = _softmax(stmt, defs) or _log_softmax(stmt, defs)
        if fused is not None and fused[1] not in updated:  # (read where the result is)
            prim, a, axis = fused
            body[k] = Op(stmt.target, prim, (a,), {"axis": axis}, stmt.line, stmt.col, stmt.callee,
                         stmt.file)


def _def(atom, defs, prim):
    op = defs.get(atom.name) if isinstance(atom, Var) else None
    return op if op is not None and op.prim is prim else None


def _reduction(op, defs, prims):
    """(argument, axis) of `prim(x, axis=k, keepdims=True)` for a prim in `prims`, or None."""
    if op is None or op.prim not in prims or len(op.args) != 1:
        return None
    if set(op.kwargs) != {"axis", "keepdims"} or op.kwargs["keepdims"] != Const(True):
        return None
    axis = op.kwargs["axis"]
    return (op.args[0], axis) if isinstance(axis, Const) and isinstance(axis.value, int) else None


def _shifted(s, defs):
    """(a, axis) when s = a - np.max(a, axis=k, keepdims=True)."""
    sub = _def(s, defs, np.subtract)
    if sub is None:
        return None
    a, m = sub.args
    found = _reduction(defs.get(m.name) if isinstance(m, Var) else None, defs, (np.max, np.amax))
    return (a, found[1]) if found and found[0] == a else None


def _softmax(op, defs):
    if op.prim is not np.divide or op.kwargs:
        return None
    e, d = op.args
    summed = _reduction(defs.get(d.name) if isinstance(d, Var) else None, defs, (np.sum,))
    exp = _def(e, defs, np.exp)
    if not summed or summed[0] != e or exp is None:
        return None
    shifted = _shifted(exp.args[0], defs)
    if shifted is None or shifted[1] != summed[1]:
        return None
    return runtime.softmax, shifted[0], shifted[1]


def _log_softmax(op, defs):
    if op.prim is not np.subtract or op.kwargs:
        return None
    s, l = op.args
    log = _def(l, defs, np.log)
    shifted = _shifted(s, defs)
    if log is None or shifted is None:
        return None
    summed = _reduction(defs.get(log.args[0].name) if isinstance(log.args[0], Var) else None,
                        defs, (np.sum,))
    exp = _def(summed[0], defs, np.exp) if summed else None
    if exp is None or exp.args[0] != s or summed[1] != shifted[1]:
        return None
    return runtime.log_softmax, shifted[0], shifted[1]
