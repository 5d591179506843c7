"""The values a specialisation records, derived instead of computed.

`specialize.record` runs a program once to learn the shape and dtype of every value. For
a program without loops, branches or data-dependent shapes these follow from the
arguments' by NumPy's own rules, and following them costs almost nothing: products and
elementwise operations are given their result's shape and dtype by rule (the dtype from
the same operation on one-element arrays), and every other operation runs on stand-ins,
arrays of the right shape and dtype that hold one element (`np.broadcast_to`), so that
views, reductions and indexing cost what reading one element costs. hvp reads the
generated adjoint this way: recording it by running it cost a gradient's time plus the
first run's page faults, about a third of the transformer's first hvp call.

Whatever this module cannot follow exactly (a loop, a branch still to record, a boolean
mask, an integer computed from data, an operation that fails on stand-ins) makes `derive`
return None, and the caller records by running.
"""
import operator
import warnings

import numpy as np

from . import runtime
from .ir import Const, Global, Loop, Seq, Slice, Var, op_vars
from .primitives import (ADD_AT, APPEND, ASTYPE, ATTRIBUTE, COPY, INDEX, LEN, NEWLIST, POP,
                         TRANSPOSE_T, UNRECORDED)

# Inputs this small are computed with, not ruled on: as cheap as a rule, and the result
# has the very type of the real one (a Python float, a NumPy scalar, a 0-d array).
SMALL = 64
# Results whose shape depends on the data, not the shapes.
DATA_SHAPED = {np.nonzero, np.flatnonzero, np.argwhere, np.unique, np.extract, np.compress,
               np.trim_zeros}
# How generated code spells these: as Python's operators (types differ for Python numbers).
OPERATORS = {np.add: operator.add, np.subtract: operator.sub, np.multiply: operator.mul,
             np.true_divide: operator.truediv, np.power: operator.pow,
             np.matmul: operator.matmul, np.floor_divide: operator.floordiv,
             np.remainder: operator.mod, np.bitwise_and: operator.and_,
             np.bitwise_or: operator.or_, np.less: operator.lt, np.less_equal: operator.le,
             np.greater: operator.gt, np.greater_equal: operator.ge, np.equal: operator.eq,
             np.not_equal: operator.ne, np.negative: operator.neg}
# Results that are exact (shapes) though their argument is a stand-in.
SHAPE_READERS = {ATTRIBUTE, LEN, np.shape, np.ndim, np.size}


class _Unknown(Exception):
    """This value cannot be derived exactly: record by running."""


def derive(program, args):
    """{name: value or stand-in} for every value of `program` called with `args`, as
    `record` sees them, or None where a value cannot be derived exactly."""
    if any(isinstance(stmt, Loop) for stmt in program.body):
        return None
    values = dict(zip(program.params, args))
    exact = set(program.params)   # names holding the value itself, not a stand-in
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for op in program.body:
                value, is_exact = _evaluate(op, values, exact, program.env)
                if not is_exact and _is_number(value):
                    raise _Unknown(op.target)  # an integer or flag computed from data
                values[op.target] = value
                (exact.add if is_exact else exact.discard)(op.target)
    except _Unknown:
        return None
    except Exception:   # an operation a stand-in cannot take (a helper that refuses zeros)
        return None
    return values


def _is_number(value):
    """Values whose content, not only shape, specialisation reads."""
    if isinstance(value, (bool, int, str, np.bool_, np.integer)):
        return True
    if isinstance(value, (list, tuple)):
        return any(_is_number(v) for v in value)
    if isinstance(value, dict):
        return any(_is_number(v) for v in value.values())
    return isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "biu"


def _evaluate(op, values, exact, env):
    """(value, exact) of one op."""
    prim = op.prim
    if prim in (NEWLIST, APPEND, POP, UNRECORDED):
        raise _Unknown(op.target)
    if prim is ADD_AT:     # updates its first argument in place: shape and dtype unchanged
        name = op.args[0].name
        return values[name], name in exact
    names = op_vars(op)
    inputs_exact = all(n in exact for n in names)
    args = [_value(a, values, env) for a in op.args]
    kwargs = {k: _value(a, values, env) for k, a in op.kwargs.items()}
    if prim is INDEX:
        _check_index(args[1])
        return args[0][args[1]], inputs_exact
    if prim in DATA_SHAPED:
        raise _Unknown(op.target)
    if any(_size(a) > SMALL for a in args):
        ruled = _rule(prim, args, kwargs)
        if ruled is not None:
            return _stand_in(*ruled), False
    value = _call(prim, args, kwargs)
    is_exact = inputs_exact or prim in SHAPE_READERS
    if isinstance(value, np.ndarray) and value.size > SMALL and (
            not is_exact or value.dtype.kind in "fc"):
        # one element from here on (no float's content is read; an exact integer array's
        # may be, as an index)
        return _stand_in(value.shape, value.dtype), False
    return value, is_exact


def _call(prim, args, kwargs):
    if prim in OPERATORS and not kwargs:   # 0.7 ** 3 is a float, np.power(0.7, 3) is not
        return OPERATORS[prim](*args)
    if prim is TRANSPOSE_T:
        return args[0].T
    if prim is ATTRIBUTE:
        return getattr(args[0], args[1])
    if prim is ASTYPE:
        return args[0].astype(*args[1:], **kwargs)
    if prim is LEN:
        return len(args[0])
    if prim is COPY:
        return args[0]
    return prim(*args, **kwargs)


def _rule(prim, args, kwargs):
    """(shape, dtype) of what NumPy computes at cost: products, elementwise operations,
    the runtime's row-wise helpers. None: compute it on stand-ins instead."""
    if kwargs and prim not in (np.einsum, runtime.softmax, runtime.log_softmax):
        return None
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    if isinstance(prim, np.ufunc) and prim.signature is None and prim.nout == 1 \
            and len(args) == prim.nin or prim is np.where and len(args) == 3:
        shape = np.broadcast_shapes(*[np.shape(a) for a in args])
        return shape, _tiny(prim, args).dtype
    if prim is np.matmul and len(args) == 2 and len(arrays) == 2:
        return _matmul_shape(args[0].shape, args[1].shape), _tiny(prim, args).dtype
    if prim is np.einsum and isinstance(args[0], str) and len(arrays) == len(args) - 1:
        return _einsum_shape(args[0], [a.shape for a in arrays]), _tiny(prim, args).dtype
    if prim in (runtime.softmax, runtime.log_softmax) and isinstance(args[0], np.ndarray) \
            and args[0].dtype.kind == "f":
        return args[0].shape, args[0].dtype
    if prim is runtime.scatter_rows and isinstance(args[1], np.ndarray):
        return tuple(args[2]), args[1].dtype
    return None


def _tiny(prim, args):
    """The operation on one-element arrays of the same ranks and dtypes (NumPy 2 promotes
    by dtype alone), for its result's dtype."""
    small = [np.ones((1,) * a.ndim, a.dtype) if isinstance(a, np.ndarray) else a
             for a in args]
    return np.asarray(prim(*small))


def _matmul_shape(a, b):
    if not a or not b:
        raise _Unknown("matmul of a 0-d array")
    left, right = a if len(a) > 1 else (1,) + a, b if len(b) > 1 else b + (1,)
    if left[-1] != right[-2]:
        raise _Unknown("matmul of mismatched shapes")
    shape = np.broadcast_shapes(left[:-2], right[:-2]) + (left[-2], right[-1])
    if len(a) == 1:
        shape = shape[:-2] + shape[-1:]
    if len(b) == 1:
        shape = shape[:-1]
    return shape


def _einsum_shape(subscripts, shapes):
    if "->" not in subscripts or "." in subscripts:
        raise _Unknown("einsum without an explicit output")
    inputs, output = subscripts.replace(" ", "").split("->")
    sizes = {}
    for letters, shape in zip(inputs.split(","), shapes):
        if len(letters) != len(shape):
            raise _Unknown("einsum subscripts")
        for letter, n in zip(letters, shape):
            if sizes.setdefault(letter, n) != n:
                raise _Unknown("einsum sizes")
    return tuple(sizes[letter] for letter in output)


def _stand_in(shape, dtype):
    return np.broadcast_to(np.zeros((), dtype), shape)


def _size(value):
    return value.size if isinstance(value, np.ndarray) else 0


def _check_index(index):
    parts = index if isinstance(index, tuple) else (index,)
    for part in parts:
        if isinstance(part, np.ndarray) and part.dtype == np.bool_ or \
                isinstance(part, list):
            raise _Unknown("a boolean mask")


def _value(atom, values, env):
    if isinstance(atom, Var):
        return values[atom.name]
    if isinstance(atom, Global):
        return env[atom.name]
    if isinstance(atom, Const):
        return atom.value
    if isinstance(atom, Seq):
        items = [_value(i, values, env) for i in atom.items]
        if atom.kind == "dict":
            return dict(zip(atom.keys, items))
        return items if atom.kind == "list" else tuple(items)
    if isinstance(atom, Slice):
        return slice(*(None if p is None else _value(p, values, env)
                       for p in (atom.lower, atom.upper, atom.step)))
    raise _Unknown(f"atom {atom!r}")
