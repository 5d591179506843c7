"""Passes over generated code: drop statements whose results nobody reads.

Most simplification happens while code is generated (ones folded by `times`, single
contributions used by name instead of copied, dead forward code never emitted); this
pass is the safety net that guarantees no dead assignment reaches the user.
"""
import gast

from . import astb
from .emit import LoopBlock, statements as _flat


def optimize(blocks):
    return _drop_dead(blocks)


def _drop_dead(blocks):
    live = set()
    out = []
    for block in reversed(blocks):
        if isinstance(block, LoopBlock):  # kept whole; everything it reads is live
            live.update(astb.load_names(block.iter))
            live.update(n for stmt in _flat(block.blocks) for n in astb.load_names(stmt))
            live.update(n for stmt in _flat(block.blocks)
                        for n in astb.stored_names(stmt))
            out.append(block)
            continue
        comment, stmts = block
        kept = []
        for stmt in reversed(stmts):
            target = _updated(stmt)
            if target is not None and target not in live:  # an update nobody reads
                continue
            if isinstance(stmt, gast.Assign) and all(isinstance(t, gast.Name) for t in stmt.targets):
                if not any(t.id in live for t in stmt.targets):
                    continue
                live.difference_update(t.id for t in stmt.targets)
            live.update(astb.load_names(stmt))
            if isinstance(stmt, gast.AugAssign):
                live.update(astb.load_names(stmt.target))
                live.update(n.id for n in gast.walk(stmt.target) if isinstance(n, gast.Name))
            kept.append(stmt)
        if kept or comment and comment.startswith("--"):
            out.append((comment, kept[::-1]))
    return out[::-1]


def _updated(stmt):
    """The name `np.add.at(name, ...)` or `name.append(...)` updates in place, or None."""
    if not (isinstance(stmt, gast.Expr) and isinstance(stmt.value, gast.Call)):
        return None
    call = stmt.value
    func = call.func
    if isinstance(func, gast.Attribute) and func.attr == "append" \
            and isinstance(func.value, gast.Name):
        return func.value.id
    if isinstance(func, gast.Attribute) and func.attr == "at" and call.args \
            and isinstance(call.args[0], gast.Name) and _dotted(func) == "np.add.at":
        return call.args[0].id
    return None


def _dotted(node):
    """'np.add.at' for an attribute chain of names."""
    parts = []
    while isinstance(node, gast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id] + parts[::-1]) if isinstance(node, gast.Name) else None
