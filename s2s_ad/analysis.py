"""Which values carry derivatives: active = depends on a `wrt` argument (varied) and
reaches the output (useful), and is of a floating type. Code for the adjoint is made for
active values only. Loops make both a fixed point."""
import dataclasses

import numpy as np

from .ir import Loop, atom_vars, op_vars, walk_ops, with_body
from .primitives import POP, UNRECORDED, name_of
from .rules import lookup


def active_values(program, infos, wrt, error):
    varied = set(wrt)
    ops = list(walk_ops(program.body))
    changed = True
    while changed:
        changed = False
        for op in ops:
            if op.target in varied:
                continue
            rule = lookup(op.prim)
            touched = any(n in varied for n in op_vars(op))
            if touched and rule.constant_args and infos[op.target].differentiable:
                raise error(op, f"{name_of(op.prim)} of a value that depends on the "
                                "differentiated argument would drop its derivative",
                            "write start + step * np.arange(n), with n a constant"
                            if op.prim is np.arange else
                            "build arrays from computed values with np.stack or np.concatenate")
            if rule.nondiff or not infos[op.target].differentiable:
                continue
            if touched:
                varied.add(op.target)
                changed = True
    useful = set(atom_vars(program.result))
    changed = True
    while changed:
        changed = False
        for op in reversed(ops):
            if op.target in useful:
                new = set(op_vars(op)) - useful
                if new:
                    useful |= new
                    changed = True
    return varied & useful


def prune(body, needed):
    """The part of a structured body that computes the names in `needed` (updated in
    place with everything that part reads)."""
    kept = []
    for stmt in reversed(body):
        if isinstance(stmt, Loop):
            if stmt.test is not None:  # a while loop always runs: its test is needed
                needed.update(atom_vars(stmt.test))
            while True:  # a loop feeds itself: repeat until what it needs settles
                before = set(needed)
                inner = prune(stmt.body, needed)
                test_body = prune(stmt.test_body, needed)
                if needed == before:
                    break
            if inner or stmt.test is not None:
                needed.update(n for a in stmt.range_args for n in atom_vars(a))
                needed.update(atom_vars(stmt.condition))
                kept.append(dataclasses.replace(stmt, body=inner, test_body=test_body))
        elif stmt.target in needed or stmt.prim in (POP, UNRECORDED):
            kept.append(stmt)   # a pop is kept whatever it gives: the stack must stay aligned
            needed.update(op_vars(stmt))
    return kept[::-1]
