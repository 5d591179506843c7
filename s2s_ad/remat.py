"""Recompute cheap forward values in the backward sweep instead of keeping them.

`0.5 * x`, `1.0 + t`, `x * x`: when the backward sweep reads such a value once and keeps
its operand anyway, writing the expression there (`g * (0.5 * x)`) costs one elementwise
pass and saves holding a whole array from the forward sweep to the backward one (GELU's
intermediates are most of a transformer's memory). Only values computed outside loops,
read once, by a top-level statement of the sweep.
"""
import numpy as np

from . import astb
from .emit import LoopBlock, op_expr, statements
from .ir import Const, Global, Op, Var

CHEAP = (np.multiply, np.add, np.subtract, np.divide, np.negative)


def rematerialize(blocks, program, infos):
    """The backward `blocks` with cheap forward values written out where they are read."""
    defs = {op.target: op for op in program.body if isinstance(op, Op)}
    while True:
        counts, in_loops = _reads(blocks)
        todo = {name: defs[name] for name, n in counts.items()
                if n == 1 and name not in in_loops and name in defs
                and _cheap(defs[name], infos)
                and all(a.name in counts or a.name in program.params
                        for a in defs[name].args if isinstance(a, Var))}
        if not todo:
            return blocks
        exprs = {name: op_expr(op) for name, op in todo.items()}
        blocks = [block if isinstance(block, LoopBlock) else
                  (block[0], [astb.replace_names(s, exprs) if astb.load_names(s) & exprs.keys()
                              else s for s in block[1]]) for block in blocks]


def _cheap(op, infos):
    if op.prim not in CHEAP or op.kwargs:
        return False
    names = {a.name for a in op.args if isinstance(a, Var)}
    if len(names) != 1 or not all(isinstance(a, (Var, Const, Global)) for a in op.args):
        return False
    out, arg = infos.get(op.target), infos.get(next(iter(names)))
    return out is not None and arg is not None and out.kind == "array" == arg.kind \
        and out.shape == arg.shape and out.dtype == arg.dtype


def _reads(blocks):
    """({name: times read by top-level statements}, names read inside loops)."""
    counts, in_loops = {}, set()
    for block in blocks:
        if isinstance(block, LoopBlock):
            in_loops |= astb.load_names(block.iter)
            for stmt in statements(block.blocks):
                in_loops |= astb.load_names(stmt)
            continue
        for stmt in block[1]:
            astb.count_loads(stmt, counts)
    return counts, in_loops
