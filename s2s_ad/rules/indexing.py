"""Indexing: basic (ints, slices with steps, None, Ellipsis), integer arrays and boolean
masks on arrays; constant keys on lists, tuples and dicts.

The adjoint of `y = x[idx]` adds `g` into an array of zeros at `idx`. With integer-array
indices the same element can be picked twice, so the adjoint accumulates with
`np.add.at`; with slices and masks no element repeats and `x_bar[idx] += g` is exact.
"""
import numpy as np

from ..ir import Const, Global, Seq, Slice, Var
from ..primitives import INDEX
from .registry import Project, Scatter, defrule


def _index(ctx):
    container = ctx.info("x")
    if container.kind in ("list", "tuple", "dict"):
        return Project(ctx.value("index"))
    parts = ctx.bound["index"]
    parts = parts.items if isinstance(parts, Seq) else (parts,)
    repeats = False
    for part in parts:
        if isinstance(part, (Slice,)) or (isinstance(part, Const) and part.value in (None, Ellipsis)):
            continue
        info = ctx.info_of_atom(part)
        if info.kind in ("int", "bool"):
            continue
        if info.kind == "array" and info.dtype == np.bool_:
            continue
        if info.kind in ("array", "list", "tuple"):
            repeats = True
            continue
        raise ctx.error(f"indexing with a {info.kind} is not supported",
                        "index with ints, slices, None, integer arrays or boolean masks")
    return Scatter(ctx.bound["index"], repeats)


def _index_tangent(ctx):
    return "x_dot[index]"


defrule(INDEX, "x, index", linear=("x",), adjoint={"x": _index},
        tangent={"x": _index_tangent}, lazy_g=True)
