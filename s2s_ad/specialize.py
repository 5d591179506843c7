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
from .emit import compile_function, function_source, op_stmt
from .ir import Const, Global, Seq, Slice, Var
from .primitives import INDEX


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
        if self.kind in ("list", "tuple"):
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
        return Info(atom.kind, value=[atom_info(i, infos, env) for i in atom.items])
    if isinstance(atom, Slice):
        return Info("other")
    raise TypeError(atom)


def record(program, args):
    """Infos of every value of `program` when called with `args` (and the output)."""
    seen = {}
    dynamic = set()

    def rec(name, value):
        seen[name] = value

    body = []
    for op in program.ops:
        body.append(op_stmt(op))
        body.append(astb.assign("_", astb.call("_rec", [astb.const(op.target), astb.name(op.target)])))
    from .ir import render
    body.append(astb.ret(render(program.result)))
    src = function_source("_record", program.params, [(None, body)])
    fn = compile_function(src, "_record", {**program.env, "_rec": rec})
    result = fn(*args)
    infos = {p: info_of(a) for p, a in zip(program.params, args)}
    for op in program.ops:
        is_dynamic = any(infos[n].dynamic for n in _vars(op)) or _mask_index(op, infos, program.env)
        value = seen[op.target]
        info = info_of(value, dynamic=is_dynamic and np.ndim(value) > 0)
        infos[op.target] = info
    return infos, result


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
        return (value.shape, value.dtype.char)
    if t is float:
        return float
    if t in (int, bool, str) or value is None:
        return (t, value)
    if t is dict:
        return (dict, tuple((k, signature(v)) for k, v in value.items()))
    if t in (list, tuple):
        return (t, tuple(signature(v) for v in value))
    shape = getattr(value, "shape", None)
    if shape is not None:
        return (t, tuple(shape), str(getattr(value, "dtype", "")))
    return t
