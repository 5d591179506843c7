"""Specialisation: run the normalized primal once on the first call's arguments and
record the type, shape and dtype of every value.

Generated code is specialised on these (literal shapes in reductions, the exact
`unbroadcast` axes, matmul's transposes for the operands' ranks), so the cache keys a
transformation by the call's signature (`signature`). Values whose shape depends on data
(boolean-mask indexing and what is computed from it) are marked dynamic, and rules emit
shape-generic code for them.
"""
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import astb
from .derive import derive
from .emit import compile_function, function_source
from .errors import TransformError
from .ir import Const, Global, Seq, Slice, Var
from .primitives import APPEND, ATTRIBUTE, INDEX, INPLACE, LEN, NEWLIST, POP, UNRECORDED


@dataclass
class Info:
    kind: str                 # array | float | int | bool | str | none | list | tuple | dict | other
    shape: tuple = None       # None when dynamic or not an array
    dtype: Any = None
    value: Any = None         # ints, bools, strings, slices: the value; containers: their Infos
    dynamic: bool = False
    ndim: int = None

    @property
    def differentiable(self):
        if self.kind == "float":
            return True
        if self.kind == "array":
            return np.issubdtype(self.dtype, np.inexact)
        if self.kind in ("list", "tuple", "stack"):
            return any(i.differentiable for i in self.value)
        if self.kind == "dict":
            return any(i.differentiable for i in self.value.values())
        return False

    @property
    def is_scalar(self):
        return self.kind in ("float", "int", "bool") or (self.kind == "array" and self.shape == ())

    def describe(self):
        if self.kind == "array":
            shape = "x".join(map(str, self.shape)) if self.shape else "scalar"
            return f"{'dynamic' if self.dynamic else shape} {self.dtype}"
        if self.kind in ("list", "tuple", "dict"):
            return f"{self.kind} of {len(self.value)}"
        if self.kind == "stack":
            return f"stack of {self.value[0].describe()}" if self.value else "stack"
        return self.kind


def info_of(value, dynamic=False):
    t = type(value)
    if t is bool or isinstance(value, np.bool_):
        return Info("bool", value=bool(value))
    if t is int:
        return Info("int", value=value)
    if t is float:
        return Info("float", shape=(), dtype=np.dtype(np.float64), ndim=0)
    if t is str:
        return Info("str", value=value)
    if value is None:
        return Info("none", value=None)
    if t in (list, tuple):
        return Info(t.__name__, value=[info_of(v) for v in value])
    if t is dict:
        return Info("dict", value={k: info_of(v) for k, v in value.items()})
    if isinstance(value, np.integer) and np.ndim(value) == 0:
        return Info("array", shape=(), dtype=value.dtype, value=int(value), ndim=0)
    if hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, type):
        return Info("array", shape=None if dynamic else tuple(value.shape),
                    dtype=np.dtype(value.dtype), dynamic=dynamic, ndim=len(value.shape))
    if isinstance(value, (slice, type(Ellipsis))):
        return Info("other", value=value)
    return Info("other", value=value)


def atom_info(atom, infos, env):
    if isinstance(atom, Var):
        return infos[atom.name]
    if isinstance(atom, Global):
        return info_of(env[atom.name])
    if isinstance(atom, Const):
        return info_of(atom.value)
    if isinstance(atom, Seq):
        items = [atom_info(i, infos, env) for i in atom.items]
        if atom.kind == "dict":
            return Info("dict", value=dict(zip(atom.keys, items)))
        return Info(atom.kind, value=items)
    if isinstance(atom, Slice):
        return Info("other")
    raise TypeError(atom)


def record(program, args, previous=None, only=None):
    """Infos of every value of `program` when called with `args` (and the output).

    Inside loops a value is recorded at every iteration: one whose shape changes is
    marked dynamic, and an int that changes (a loop index) has no known value.
    With `only` (a set of names), just the part of the program that computes those runs
    (see `hint_inputs`); the output is then None."""
    from .emit import ops_to_blocks
    from .ir import Loop, render, walk_loops, walk_ops, with_body
    from .release import RELEASE_BYTES, release
    seen, varying = {}, set()

    def rec(name, value):
        # Infos, not values, so that arrays are freed as the run goes; containers stay
        # objects: they grow after they are recorded (append).
        seen_as = value if type(value) in (list, dict) else info_of(value)
        if name in seen and _differs(seen[name], seen_as):
            varying.add(name)
        seen[name] = seen_as
        return value

    def stmt_of(op):
        if op.prim is UNRECORDED:
            from .emit import op_stmt
            return op_stmt(op)
        if op.prim in INPLACE:
            from .emit import op_stmt
            return [op_stmt(op), astb.assign("_", astb.call("_rec", [astb.const(op.target),
                                                                      astb.name(op.target)]))]
        return astb.assign(op.target, astb.call("_rec", [astb.const(op.target), emit_op(op)]))

    def with_index(body):
        for stmt in body:
            if isinstance(stmt, Loop):
                head = [_IndexRecord(stmt.index, branch=stmt.condition is not None
                                     or stmt.test is not None)]
                stmt = with_body(stmt, head + list(with_index(stmt.body)))
            yield stmt
    derived = derive(program, args) if only is None else None
    result = None
    if derived is not None:
        # Shapes and dtypes that follow from the arguments' without running the program
        # (derive.py); the output is not computed.
        for name in set(derived) - set(program.params):
            rec(name, derived[name])
    else:
        if only is not None:
            from .analysis import prune
            body = list(with_index(prune(program.body, set(only))))
        else:
            body = list(with_index(program.body))
        if only is None or body:   # (nothing the hints read is computed: nothing to run)
            blocks = ops_to_blocks(body, lambda s: None, lambda op: _index_stmt(op)
                                   if isinstance(op, _IndexRecord) else stmt_of(op))
            blocks.append((None, [astb.ret(render(program.result) if only is None
                                           else astb.const(None))]))
            # Drop every local after its last use, as generated code does: a recording
            # run that kept them all would page-fault its way through several times the
            # memory.
            blocks = release(blocks, lambda name: RELEASE_BYTES)
            src = function_source("_record", program.params, blocks)
            fn = compile_function(src, "_record", {**program.env, "_rec": rec})
            result = fn(*args)
    infos = {p: info_of(a) for p, a in zip(program.params, args)}
    for loop in walk_loops(program.body):
        if loop.index not in seen:  # not entered on this call
            if previous is not None and loop.index in previous:
                infos[loop.index] = previous[loop.index]
        elif loop.condition is not None or loop.test is not None:
            infos[loop.index] = Info("bool", value=True)   # the branch (or loop) was entered
        else:
            infos[loop.index] = Info("int", value=None if loop.index in varying
                                     else seen[loop.index].value)
    for op in walk_ops(program.body):
        if op.target not in seen:
            # A branch not taken (or a loop run zero times) on this call: known from an
            # earlier call, or guarded (see `guard_unrecorded`).
            if previous is not None and op.target in previous:
                infos[op.target] = previous[op.target]
            continue
        is_dynamic = any(infos[n].dynamic for n in _vars(op) if n in infos) \
            or _mask_index(op, infos, program.env) or op.target in varying
        info = _final_info(seen[op.target], is_dynamic)
        if op.target in varying and info.kind in ("int", "bool", "str"):
            info.value = None
        elif _from_values(op, info, infos):
            # An int read off the arguments' values (a count, an argmax, int(t * 10) of a
            # float): the cache keys arrays by shape and floats by type, so the next call
            # may give another one. Unknown here; what it shapes is dynamic.
            info = Info(info.kind, shape=info.shape, dtype=info.dtype, value=None,
                        dynamic=True, ndim=info.ndim)
        if op.prim is APPEND:  # a stack of saved values: described by what it holds
            item = op.args[1]
            if isinstance(item, Var) and item.name not in infos:
                continue  # appended in a branch no call has taken yet
            info = Info("stack", value=[atom_info(item, infos, program.env)])
        elif op.prim is NEWLIST or (op.prim in INPLACE and op.target in infos):
            info = infos.get(op.target, info) if op.prim is not NEWLIST else Info("stack", value=[])
        infos[op.target] = info
    return infos, result


class _IndexRecord:
    """Records a loop's index, or that a branch was entered."""

    def __init__(self, name, branch=False):
        self.name = name
        self.branch = branch


def _index_stmt(marker):
    value = astb.const(True) if marker.branch else astb.name(marker.name)
    return astb.assign("_", astb.call("_rec", [astb.const(marker.name), value]))


def emit_op(op):
    from .emit import op_expr
    return op_expr(op)


def _differs(old, new):
    """Did a value change in a way that matters to specialisation (another int, tuple
    or string; another shape or dtype)? Infos of values, or containers themselves."""
    if not (isinstance(old, Info) and isinstance(new, Info)):
        return True  # containers built in a loop: never taken as fixed
    if old.kind != new.kind:
        return True
    if old.kind == "array":
        return old.shape != new.shape or old.dtype != new.dtype
    if old.kind == "tuple":
        return len(old.value) != len(new.value) or any(
            _differs(a, b) for a, b in zip(old.value, new.value))
    if old.kind in ("float", "none"):
        return False
    try:
        return bool(old.value != new.value)
    except (TypeError, ValueError):
        return True


def _from_values(op, info, infos):
    """Is `op` an integer scalar computed from values the signature does not key on: an
    array's elements or a float's value (or from another such integer)?"""
    if not (info.kind == "int" or info.kind == "array" and info.shape == ()
            and info.dtype.kind in "iu"):
        return False
    if op.prim in (ATTRIBUTE, LEN, np.shape, np.ndim, np.size):   # shapes, not values
        return False
    for name in _vars(op):
        i = infos.get(name)
        if isinstance(i, Info) and (i.kind in ("array", "float") or i.kind == "int"
                                    and i.dynamic):
            return True
    return False


def _final_info(seen, dynamic):
    """The Info of a recorded value, with a shape that depends on data dropped."""
    if not isinstance(seen, Info):
        return info_of(seen, dynamic=dynamic)
    if dynamic and seen.kind == "array" and seen.ndim:
        return Info("array", shape=None, dtype=seen.dtype, dynamic=True, ndim=seen.ndim)
    return seen


def _vars(op):
    from .ir import op_vars
    return op_vars(op)


def _mask_index(op, infos, env):
    """x[mask] has a shape that depends on the data."""
    if op.prim is not INDEX:
        return False
    idx = op.args[1]
    parts = idx.items if isinstance(idx, Seq) else (idx,)
    for part in parts:
        if isinstance(part, (Var, Global)):
            info = atom_info(part, infos, env)
            if info.kind == "array" and info.dtype == np.bool_:
                return True
    return False


def signature(value):
    """A hashable key of everything a specialisation depends on."""
    t = type(value)
    if t is np.ndarray:
        return (value.shape, value.dtype)
    if t is float:
        return float
    if t in (int, bool, str) or value is None:
        return (t, value)
    # (arrays inline, keys apart, dtypes as they are: this runs on every call, over every
    # leaf of a parameter tree; the form that builds and hashes fastest)
    if t is dict:
        return (dict, tuple(value), tuple([(v.shape, v.dtype) if type(v) is np.ndarray
                                           else signature(v) for v in value.values()]))
    if t in (list, tuple):
        return (t, tuple([(v.shape, v.dtype) if type(v) is np.ndarray else signature(v)
                          for v in value]))
    shape = getattr(value, "shape", None)
    if shape is not None:
        return (t, tuple(shape), str(getattr(value, "dtype", "")))
    return t


def hint_inputs(program):
    """The names `hints` reads the recorded infos of: loop bounds and conditions, and the
    containers a loop body indexes by its loop index. A first recording that computes only
    these (and what they are computed from) is enough to unroll and decide; for a model
    whose loop over layers reads `len(params["blocks"])`, that is nothing of its arrays."""
    from .ir import atom_vars, walk_loops, walk_ops
    needed = set()
    for loop in walk_loops(program.body):
        for atom in list(loop.range_args or ()) + [loop.condition, loop.test]:
            if atom is not None:
                needed.update(atom_vars(atom))
        following = _following(loop)
        for op in walk_ops(loop.body):
            if op.prim is INDEX and isinstance(op.args[0], Var) \
                    and any(n in following for n in _atom_names(op.args[1])):
                needed.add(op.args[0].name)
    return needed


def _following(loop):
    """The loop index and the values of the loop body computed from it."""
    from .ir import walk_ops
    following = {loop.index}
    for op in walk_ops(loop.body):
        if any(n in following for n in _vars(op)):
            following.add(op.target)
    return following


def hints(program, infos):
    """What the next normalization can fix from this one's recording: loops to unroll
    and branches whose condition the specialisation decides."""
    found = loops_to_unroll(program, infos)
    found.update(decided_branches(program, infos))
    return found


# Primitives whose result is fixed by fixed inputs; shapes are fixed by the signature.
_FIXED_FROM_SHAPES = {"shape", "ndim", "size", "dtype"}


def fixed_values(program, infos):
    """Names whose value is the same for every call with this signature: int, bool and
    str arguments, shapes, and what is computed from them alone."""
    from .ir import walk_ops, op_vars, Loop, walk_loops
    from .primitives import ATTRIBUTE, BINOPS, COMPARES, LEN, UNARY
    import numpy as _np
    pure = set(BINOPS.values()) | set(COMPARES.values()) | set(UNARY.values()) | {
        INDEX, LEN, _np.logical_and, _np.logical_or, _np.ndim, _np.shape}
    fixed = {p for p in program.params if infos[p].kind in ("int", "bool", "str", "none")}
    varying_loops = {l.index for l in walk_loops(program.body) if l.condition is None}
    for op in walk_ops(program.body):
        if op.target in infos and infos[op.target].kind in ("int", "bool", "str", "none",
                                                             "tuple", "array") \
                and not infos[op.target].dynamic:
            if op.prim is ATTRIBUTE and op.args[1].value in _FIXED_FROM_SHAPES:
                fixed.add(op.target)
            elif op.prim is LEN and isinstance(op.args[0], Var) and not infos[op.args[0].name].dynamic:
                fixed.add(op.target)
            elif op.prim in pure and all(n in fixed for n in op_vars(op)) \
                    and not any(n in varying_loops for n in op_vars(op)):
                if op.prim is not INDEX or infos[op.args[0].name].kind in ("tuple", "list") \
                        if isinstance(op.args[0], Var) else True:
                    fixed.add(op.target)
    return fixed


def decided_branches(program, infos):
    """{branch site: taken?} for branches whose condition is a fixed value."""
    from .ir import walk_loops
    fixed = fixed_values(program, infos)
    decided = {}
    for loop in walk_loops(program.body):
        cond = loop.condition
        if cond is None or loop.site in decided:
            continue
        if isinstance(cond, Const):
            decided[loop.site] = bool(cond.value)
        elif isinstance(cond, Var) and cond.name in fixed and infos[cond.name].value is not None \
                and infos[cond.name].kind in ("bool", "int", "array", "str", "none"):
            decided[loop.site] = bool(infos[cond.name].value)
    return decided


def loops_to_unroll(program, infos):
    """{loop site: index values} for loops whose body picks items of a list, tuple or
    dict by the loop index (`params["blocks"][i]`): those are unrolled."""
    from .ir import walk_loops, walk_ops
    unroll = {}
    # Lists that are more than stacks: read by something other than append and pop.
    read_lists = {n for op in walk_ops(program.body) if op.prim not in (APPEND, POP)
                  for n in _vars(op)}
    for loop in walk_loops(program.body):
        if loop.condition is not None or loop.test is not None:
            continue
        inside = {op.target for op in walk_ops(loop.body) if op.prim is not APPEND}
        following = _following(loop)  # (index checked first: see hint_inputs)
        picks = any(op.prim is INDEX and any(n in following for n in _atom_names(op.args[1]))
                    and (isinstance(op.args[0], Seq) or (
                        isinstance(op.args[0], Var)
                        and infos[op.args[0].name].kind in ("list", "tuple", "dict")))
                    for op in walk_ops(loop.body))
        builds = any(op.prim is APPEND and op.target not in inside and op.target in read_lists
                     for op in walk_ops(loop.body))
        if not (picks or builds):
            continue
        bounds = [atom_info(a, infos, program.env) for a in loop.range_args]
        if any(b.kind != "int" or b.value is None for b in bounds):
            continue
        unroll[loop.site] = list(range(*(b.value for b in bounds)))
    return unroll


def _atom_names(atom):
    from .ir import atom_vars
    return atom_vars(atom)


def guard_unrecorded(program, infos):
    """The program with every branch or loop body whose values were never recorded
    replaced by a call that raises `runtime.Unrecorded`: the first call that reaches one
    specialises again, recording that branch too."""
    from .ir import Loop, Op, walk_ops, with_body
    from .primitives import UNRECORDED

    def guarded(body):
        out = []
        for stmt in body:
            if isinstance(stmt, Loop):
                if stmt.index not in infos:  # never entered
                    stmt = with_body(stmt, [Op("_", UNRECORDED, (), {}, stmt.line, stmt.col,
                                               file=stmt.file)])
                else:
                    stmt = with_body(stmt, guarded(stmt.body))
            out.append(stmt)
        return out
    import dataclasses
    return dataclasses.replace(program, body=guarded(program.body))
