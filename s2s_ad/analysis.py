"""Which values carry derivatives: active = depends on a `wrt` argument (varied) and
reaches the output (useful), and is of a floating type. Code for the adjoint is made for
active values only."""
from .ir import atom_vars, op_vars
from .primitives import name_of
from .rules import lookup


def active_values(program, infos, wrt, error):
    varied = set(wrt)
    for op in program.ops:
        rule = lookup(op.prim)
        touched = any(n in varied for n in op_vars(op))
        if touched and rule.constant_args and infos[op.target].differentiable:
            raise error(op, f"{name_of(op.prim)} of a value that depends on the differentiated "
                            "argument would drop its derivative",
                        "build arrays from computed values with np.stack or np.concatenate")
        if rule is None or rule.nondiff or not infos[op.target].differentiable:
            continue
        if touched:
            varied.add(op.target)
    useful = set(atom_vars(program.result))
    for op in reversed(program.ops):
        if op.target in useful:
            useful.update(op_vars(op))
    return varied & useful


def live_ops(ops, needed):
    """The ops needed to compute the names in `needed`, in program order."""
    needed = set(needed)
    keep = []
    for op in reversed(ops):
        if op.target in needed:
            keep.append(op)
            needed.update(op_vars(op))
    return keep[::-1]
