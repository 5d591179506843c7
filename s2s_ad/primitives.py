"""What the compiler calls a primitive, and how each one is spelled in generated code.

A primitive is identified by the Python object it resolves to (`numpy.tanh`), so every
spelling in user code (`np.tanh`, `from numpy import tanh`, `import numpy as xp`) and every
method form (`x.sum(axis=0)` is `np.sum(x, axis=0)`) reaches the same rule. Python syntax
that has no NumPy function of its own (indexing, `.T`, `.astype`) gets a `Special` key.
"""
import builtins
import math

import gast
import numpy as np


class Special:
    """A primitive that is Python syntax rather than a NumPy function."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


INDEX = Special("x[index]")          # x[i], x[a:b, None], x[int_array], x[mask], container[key]
TRANSPOSE_T = Special("x.T")
ASTYPE = Special("x.astype(dtype)")
ATTRIBUTE = Special("x.attribute")   # x.shape, x.ndim, x.size, x.dtype: never differentiable
LEN = Special("len(x)")
COPY = Special("y = x")               # a value given a name of its own (loop-carried values)

# Statements that update a local array or list in place. Reverse mode emits them (adjoint
# scatters, stacks of saved values), so forward mode must read them (hvp). (The user's
# x[i] = v and x[i] += v are written functionally instead: runtime.index_set / index_add.)
ADD_AT = Special("np.add.at(x, index, v)")
NEWLIST = Special("[]")
APPEND = Special("stack.append(x)")
POP = Special("stack.pop()")
INPLACE = (ADD_AT, APPEND)
# Results that may share memory with an argument: never updated in place.
VIEWS = {INDEX, TRANSPOSE_T, COPY, ASTYPE, np.reshape, np.ravel, np.transpose, np.swapaxes,
         np.moveaxis, np.broadcast_to, np.expand_dims, np.squeeze, np.flip, np.diagonal}      # the op's target is the updated value itself
EFFECTS = INPLACE + (POP,)                 # never merged or dropped
UNRECORDED = Special("unrecorded()")       # a branch not yet specialised: asks for it

BINOPS = {
    gast.Add: np.add, gast.Sub: np.subtract, gast.Mult: np.multiply,
    gast.Div: np.true_divide, gast.Pow: np.power, gast.MatMult: np.matmul,
    gast.FloorDiv: np.floor_divide, gast.Mod: np.remainder,
    gast.BitAnd: np.bitwise_and, gast.BitOr: np.bitwise_or,
}
COMPARES = {
    gast.Lt: np.less, gast.LtE: np.less_equal, gast.Gt: np.greater,
    gast.GtE: np.greater_equal, gast.Eq: np.equal, gast.NotEq: np.not_equal,
}
UNARY = {gast.USub: np.negative, gast.Not: np.logical_not}

# How a primitive is written back: as an operator where the user would write one.
OPERATOR_OF = {prim: op for op, prim in {**BINOPS, **COMPARES}.items()}
OPERATOR_OF[np.negative] = gast.USub

# Array methods that are NumPy functions taking the array first.
METHODS = {
    "sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min, "prod": np.prod,
    "var": np.var, "std": np.std, "dot": np.dot, "cumsum": np.cumsum, "clip": np.clip,
    "squeeze": np.squeeze, "swapaxes": np.swapaxes, "ravel": np.ravel, "flatten": np.ravel,
    "copy": np.copy, "argmax": np.argmax, "argmin": np.argmin, "any": np.any, "all": np.all,
    "reshape": np.reshape, "transpose": np.transpose, "trace": np.trace, "repeat": np.repeat,
    "astype": ASTYPE,
}
# Methods whose extra positional arguments form one tuple argument: x.reshape(2, 3).
VARARG_METHODS = {"reshape", "transpose"}

ATTRIBUTES = {"shape", "ndim", "size", "dtype"}

# Python builtins and math functions with a NumPy equivalent of the same meaning.
EQUIVALENTS = {
    builtins.abs: np.abs, builtins.len: LEN,
    math.sin: np.sin, math.cos: np.cos, math.tan: np.tan, math.exp: np.exp,
    math.log: np.log, math.sqrt: np.sqrt, math.tanh: np.tanh, math.sinh: np.sinh,
    math.cosh: np.cosh, math.atan: np.arctan, math.asin: np.arcsin, math.acos: np.arccos,
    math.log1p: np.log1p, math.expm1: np.expm1,
}


def canonical(obj):
    """The primitive key of a resolved callable (np.divide and np.true_divide are one)."""
    if _hashable(obj) and obj == np.add.at:
        return ADD_AT
    return EQUIVALENTS.get(obj, obj) if _hashable(obj) else obj


def _hashable(obj):
    try:
        hash(obj)
        return True
    except TypeError:
        return False


_SPELLING = {}


def spell(obj):
    """`np.tanh` for numpy.tanh; None for objects that are not NumPy's."""
    if not _SPELLING:
        for mod, prefix in ((np, "np"), (np.linalg, "np.linalg")):
            # vars(), not dir() + getattr(): NumPy imports its lazy submodules (f2py, ma,
            # fft, ...) on attribute access, a tenth of a second spent on nothing here.
            for key, value in sorted(vars(mod).items()):
                if key.startswith("_"):
                    continue
                if _hashable(value):
                    _SPELLING.setdefault(_key(value), f"{prefix}.{key}")
        # Prefer the common names where NumPy has aliases.
        for value, text in ((np.true_divide, "np.divide"), (np.abs, "np.abs"),
                            (np.max, "np.max"), (np.min, "np.min"), (np.power, "np.power"),
                            (np.transpose, "np.transpose"), (np.concatenate, "np.concatenate"),
                            (np.arccos, "np.arccos"), (np.arcsin, "np.arcsin"),
                            (np.arctan, "np.arctan"), (np.arctan2, "np.arctan2"),
                            (np.arcsinh, "np.arcsinh"), (np.arctanh, "np.arctanh")):
            _SPELLING[_key(value)] = text
    if not _hashable(obj):
        return None
    if getattr(obj, "__module__", None) == "s2s_ad.runtime":  # imported by name
        return obj.__name__
    return _SPELLING.get(_key(obj))


def _key(value):
    return (type(value), value) if not isinstance(value, (int, float, bool)) else ("num", type(value), value)


def name_of(prim):
    if isinstance(prim, Special):
        return prim.name
    return spell(prim) or getattr(prim, "__name__", repr(prim))
