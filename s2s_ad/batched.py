"""Batched forward mode: push k tangent directions through one sweep (for `jacobian`).

Every tangent carries a leading batch axis: the tangent of a value of shape S is an array
of shape (k,) + S, whose i-th slice is the tangent along the i-th direction. The code is
generated from the same normalized program and rule table as `forward.py` (this is a
subclass of its ForwardMode), with the changes the leading axis needs:

- elementwise rules (one partial per argument, or an elementwise tangent template) are
  used as they are; a tangent of lower rank than the result is first given size-1 axes
  after the batch axis (`x_dot[:, None]`), so that NumPy's broadcasting, which aligns
  shapes from the right, keeps the batch axis first;
- reductions, indexing, reshapes, transposes, joins, products and the other ops in
  `BATCHED` below have tangents written here, with axes shifted by one (`axis=0` becomes
  `axis=1`; negative axes count from the end and stay), a leading `:` in indices, a
  leading `k` in shapes;
- loops, branches and while loops stay as they are (ForwardMode's): a carried value's
  tangent is carried with the batch axis, and one that starts constant starts as zeros
  of shape (k,) + its shape;
- anything else (an op without an entry here, item assignment, values that are
  containers or of data-dependent shape, more than one differentiated argument) raises
  NotBatchable when the code is generated, and `jacobian` then loops over the directions
  with the ordinary forward-mode code.

Which op is batch-safe is decided by the op and the ranks of its operands at this call
site, never by trying: an entry either writes a tangent that is right for every k or
refuses.
"""
import os

import gast
import numpy as np

from . import astb
from .analysis import prune
from .emit import function_source
from .forward import ForwardMode, rule_name
from .optimize import optimize
from .release import release
from .ir import Const, Seq, Slice, Var, atom_vars, render
from .primitives import ASTYPE, COPY, EFFECTS, INDEX, TRANSPOSE_T, UNRECORDED
from .rules import lookup
from .rules.context import RuleContext
from .rules.linalg import parse_subscripts
from .rules.reductions import reduced_axes, undefined_variance


class NotBatchable(Exception):
    """The program has something the batched sweep does not handle (jacobian loops)."""


class BatchedForwardMode(ForwardMode):
    def __init__(self, program, infos, wrt):
        super().__init__(program, infos, wrt)
        self.k = None             # the name of the batch size, once some tangent needs it

    # -- names and shapes ---------------------------------------------------------------
    def batch(self):
        """`k`, the number of directions (read from the seed's leading axis)."""
        if self.k is None:
            base, i, candidate = "k", 1, "k"
            while candidate in self.taken:
                candidate, i = f"{base}{i}", i + 1
            self.taken.add(candidate)
            self.k = candidate
        return astb.name(self.k)

    def batched_shape(self, shape):
        """(k, *shape) as a tuple expression."""
        return astb.tuple_([self.batch()] + [render(Const(int(d))) for d in shape])

    def batched_nbytes(self, name, k):
        """The size of the array a generated name holds (a value, or k of its tangents)."""
        count = 1
        if name not in self.infos:
            names = [v for v, dot in self.dots.items() if dot == name]
            if not names or k is None:
                return None
            name, count = names[0], k
        info = self.infos.get(name)
        if info is None or info.kind != "array" or info.shape is None or info.dynamic:
            return None
        return count * int(np.prod(info.shape)) * info.dtype.itemsize

    def rank(self, atom):
        if isinstance(atom, Var):
            info = self.infos[atom.name]
        else:
            from .specialize import atom_info
            info = atom_info(atom, self.infos, self.p.env)
        if info.kind in ("float", "int", "bool"):
            return 0
        if info.kind == "array" and info.shape is not None:
            return len(info.shape)
        raise NotBatchable(f"a {info.kind} value of unknown rank")

    def padded(self, name, rank):
        """The tangent of `name`, with size-1 axes after the batch axis up to `rank`."""
        have = self.rank(Var(name))
        node = astb.name(self.dot(name))
        if rank <= have:
            return node
        index = [gast.Slice(lower=None, upper=None, step=None)] + \
            [astb.const(None)] * (rank - have)
        return astb.subscript(node, astb.tuple_(index))

    # -- hooks of ForwardMode -----------------------------------------------------------
    def dot_in(self, op, name):
        out_rank = self.rank(Var(op.target))
        if self.rank(Var(name)) > out_rank:
            raise NotBatchable(f"{rule_name(op)}: an argument of higher rank than its result")
        return self.padded(name, out_rank)

    def broadcast_dot(self, expr, shape, from_shape=None, dtype=None):
        return astb.call("np.broadcast_to", [expr, self.batched_shape(shape)])

    def zeros(self, name, info, result=False):
        if info.kind not in ("array", "float") or info.shape is None:
            raise NotBatchable(f"a zero tangent for a {info.kind}")
        return astb.call("np.zeros_like", [astb.name(name)],
                         {"shape": self.batched_shape(info.shape)})

    def output_tangent(self, atom, info):
        if info.kind not in ("array", "float") or info.shape is None:
            raise NotBatchable(f"the function returns a {info.kind}")
        if isinstance(atom, Var) and atom.name in self.active:
            return astb.name(self.dot(atom.name))
        if isinstance(atom, Var):   # does not vary: zeros of its dtype
            return self.zeros(atom.name, info)
        return astb.call("np.zeros", [self.batched_shape(info.shape)])

    # -- tangents -----------------------------------------------------------------------
    def tangent(self, op):
        if op.prim in EFFECTS or op.prim is UNRECORDED:
            raise NotBatchable(f"{rule_name(op)} (generated code)")
        info = self.infos[op.target]
        if info.kind not in ("array", "float") or info.shape is None:
            raise NotBatchable(f"{rule_name(op)} gives "
                               f"{'an array of data-dependent shape' if info.kind == 'array' else 'a ' + info.kind}")
        rule = lookup(op.prim)
        if rule is None:
            raise NotBatchable(f"{rule_name(op)} has no rule")
        for name in (n for n in _op_reads(op) if n in self.active):
            i = self.infos[name]
            if i.kind not in ("array", "float") or i.shape is None:
                raise NotBatchable(f"{rule_name(op)} of a {i.kind}")
        if not any(n in self.active for n in _op_reads(op)):
            # (a carried value's entry from outside the loop, before it starts to vary)
            return [self.assign_dot(op.target, self.zeros(op.target, info))]
        if rule.elementwise and not rule.nondiff:
            return super().tangent(op)   # the rule as it is, with padded tangents
        handler = BATCHED.get(_key(op.prim))
        if handler is None:
            raise NotBatchable(f"{rule_name(op)} has no batched tangent")
        bound = rule.bind(op.args, op.kwargs)
        ctx = RuleContext(op, rule, bound, self.infos, self.p.env,
                          lambda o, w, a=None: self.error(o, w, a), active_names=self.active)
        expr = handler(self, op, ctx, bound)
        return [self.assign_dot(op.target, expr)]

    def active_atom(self, atom):
        return isinstance(atom, Var) and atom.name in self.active

    def only_first_active(self, op, bound, first):
        """Refuse an op whose arguments other than `first` carry a derivative."""
        for param, atom in bound.items():
            if param != first and any(n in self.active for n in atom_vars(atom)):
                raise NotBatchable(f"{rule_name(op)} with respect to `{param}`")
        atom = bound[first]
        if not self.active_atom(atom):
            raise NotBatchable(f"{rule_name(op)} of a container or expression")
        return atom.name


# -- the batched tangents, one function per primitive ----------------------------------
# Each takes (mode, op, ctx, bound) and returns the tangent expression of op.target with
# the leading batch axis. `template(text, **names)` parses text with names substituted.

def template(text, **names):
    from .rules.registry import instantiate
    return instantiate(text, names)


def _axes_text(axes):
    """Non-negative axes, shifted past the batch axis, as `1` or `(1, 3)`."""
    axes = tuple(a + 1 for a in axes)
    return str(axes[0]) if len(axes) == 1 else str(axes)


def _norm_axes(value, ndim):
    axes = value if isinstance(value, (tuple, list)) else (value,)
    return tuple(int(a) % ndim for a in axes) if ndim else tuple(axes)


def _kd(ctx):
    """`, keepdims=True` where the op keeps the reduced axes."""
    return ", keepdims=True" if ctx.value("keepdims") else ""


def _same(mode, op, ctx, bound):
    """Ops that act on each element on its own (copies, dtype casts): the op on the tangent."""
    first = ctx.rule.param_names()[0]
    name = mode.only_first_active(op, bound, first)
    return mode.substituted(op, ctx.rule, {(first, None): mode.dot(name)})


def _sum(mode, op, ctx, bound, fn="np.sum"):
    a = mode.only_first_active(op, bound, "a")
    if ctx.given("out"):
        raise NotBatchable(f"{fn} with out=")
    axes = reduced_axes(ctx)
    if not axes:
        return astb.name(mode.dot(a))
    extra = ", dtype=dtype" if ctx.given("dtype") else ""
    return template(f"{fn}(a_dot, axis={_axes_text(axes)}{_kd(ctx)}{extra})",
                    a_dot=astb.name(mode.dot(a)), dtype=render(bound["dtype"]))


def _mean(mode, op, ctx, bound):
    return _sum(mode, op, ctx, bound, "np.mean")


def _extremum(mode, op, ctx, bound):
    """max / min: the tangent at the extremum, averaged over ties (as the rule)."""
    from .rules.reductions import kept
    a = mode.only_first_active(op, bound, "a")
    axes = reduced_axes(ctx)
    if not axes:
        return astb.name(mode.dot(a))
    ax, kd = (str(axes[0]) if len(axes) == 1 else str(axes)), _kd(ctx)
    where = f"a == {kept(ctx, 'ans', axes)}"
    text = (f"np.sum(({where}) * a_dot, axis={_axes_text(axes)}{kd}) / "
            f"np.sum({where}, axis={ax}{kd}, dtype=a.dtype)")
    return template(text, a=render(bound["a"]), ans=astb.name(op.target),
                    a_dot=astb.name(mode.dot(a)))


def _prod(mode, op, ctx, bound):
    a = mode.only_first_active(op, bound, "a")
    axes = reduced_axes(ctx)
    if not axes:
        return astb.name(mode.dot(a))
    if ctx.given("dtype"):
        raise NotBatchable("np.prod with dtype=")
    ax = str(axes[0]) if len(axes) == 1 else str(axes)
    text = f"np.sum(prod_others(a, {ax}) * a_dot, axis={_axes_text(axes)}{_kd(ctx)})"
    return template(text, a=render(bound["a"]), a_dot=astb.name(mode.dot(a)))


def _var(mode, op, ctx, bound, std=False):
    a = mode.only_first_active(op, bound, "a")
    axes = reduced_axes(ctx)
    if not axes:
        raise NotBatchable("np.var / np.std over no axis")
    if undefined_variance(ctx, axes):   # NaN: pushed one direction at a time, by the rule
        raise NotBatchable("np.var / np.std over an empty axis or with ddof at least the count")
    n = int(np.prod([ctx.shape("a")[i] for i in axes]))
    ddof = ctx.value("ddof")
    denom = f"({n} - {ddof})" if ddof else f"{n}"
    ax = str(axes[0]) if len(axes) == 1 else str(axes)
    inner = (f"np.sum((a - np.mean(a, axis={ax}, keepdims=True)) * a_dot, "
             f"axis={_axes_text(axes)}{_kd(ctx)})")
    text = f"{inner} / ({denom} * ans)" if std else f"{inner} * (2.0 / {denom})"
    return template(text, a=render(bound["a"]), ans=astb.name(op.target),
                    a_dot=astb.name(mode.dot(a)))


def _std(mode, op, ctx, bound):
    return _var(mode, op, ctx, bound, std=True)


def _index(mode, op, ctx, bound):
    """x_dot[:, index]: a leading `:` keeps the batch axis, when NumPy puts the indexed
    axes where they were (basic indices, and integer arrays next to each other)."""
    x = mode.only_first_active(op, bound, "x")
    if mode.infos[x].kind != "array":
        raise NotBatchable("indexing a container")
    index = bound["index"]
    parts = index.items if isinstance(index, Seq) and index.kind == "tuple" else (index,)
    kinds = [_index_kind(ctx, part) for part in parts]
    if "array" in kinds:
        advanced = [i for i, kind in enumerate(kinds) if kind in ("array", "int")]
        if advanced != list(range(advanced[0], advanced[-1] + 1)):
            # separated integer arrays: NumPy puts their axes first, before the batch axis
            raise NotBatchable("integer-array indices separated by a slice")
    full = Seq((Slice(),) + tuple(parts), "tuple")
    return astb.subscript(astb.name(mode.dot(x)), render(full))


def _item_assignment(mode, op, ctx, bound, add=False):
    """x[index] = v (or += v): the same assignment on the tangents with their batch axis
    moved last. An index applies to the leading axes whatever its kind, so v_dot's batch
    axis lines up with the batch axis of x_dot[index] (only `...` and None would reach it)."""
    x, index, v = bound["x"], bound["index"], bound["v"]
    if not isinstance(x, Var):
        raise NotBatchable("item assignment into an expression")
    parts = index.items if isinstance(index, Seq) and index.kind == "tuple" else (index,)
    used = 0                     # axes of x the index consumes, `...` aside
    for part in parts:
        info = ctx.info_of_atom(part) if isinstance(part, Var) else None
        if isinstance(part, Const) and part.value in (None, Ellipsis):
            continue             # (None adds an axis among the leading ones: harmless)
        if info is None or info.kind == "int" or isinstance(info.value, slice):
            used += 1
        elif info.kind == "array" and info.shape is not None:
            used += info.ndim if info.dtype == np.bool_ else 1
        else:
            raise NotBatchable(f"item assignment with an index held in a {info.kind}")
    if any(isinstance(p, Const) and p.value is Ellipsis for p in parts):
        # `...` would reach the batch axis: the axes it stands for, spelled out
        fill = (Slice(),) * (mode.rank(x) - used)
        index = Seq(tuple(q for p in parts for q in (fill if isinstance(p, Const)
                                                     and p.value is Ellipsis else (p,))), "tuple")
    if not mode.active_atom(v):
        if add:                 # x[index] += constant: x's tangent passes through
            return astb.name(mode.dot(x.name))
        v_last = astb.const(0.0)
    else:
        v_last = template("np.moveaxis(v_dot, 0, -1)", v_dot=astb.name(mode.dot(v.name)))
    x_dot = astb.name(mode.dot(x.name)) if mode.active_atom(x) else \
        mode.zeros(x.name, mode.infos[x.name])
    fn = "index_add" if add else "index_set"
    return template(f"np.moveaxis({fn}(np.moveaxis(x_dot, 0, -1), index, v_last), -1, 0)",
                    x_dot=x_dot, index=render(index), v_last=v_last)


def _index_add(mode, op, ctx, bound):
    return _item_assignment(mode, op, ctx, bound, add=True)


def _index_kind(ctx, part):
    if isinstance(part, Slice) or (isinstance(part, Const) and part.value in (None, Ellipsis)):
        return "basic"
    if isinstance(part, Seq):
        if part.kind == "list" and all(_index_kind(ctx, p) == "int" for p in part.items):
            return "array"
        raise NotBatchable("an index of nested sequences")
    info = ctx.info_of_atom(part)
    if info.kind == "int" or (info.kind == "array" and info.shape == ()
                              and np.issubdtype(info.dtype, np.integer)):
        return "int"
    if info.kind == "array" and info.shape is not None and np.issubdtype(info.dtype, np.integer):
        return "array"
    if info.kind == "other" and isinstance(info.value, slice):
        return "basic"
    raise NotBatchable(f"indexing with a {info.kind}"
                       f"{' of ' + str(info.dtype) if info.kind == 'array' else ''}")


def _reshape(mode, op, ctx, bound):
    a = mode.only_first_active(op, bound, "a")
    if "order" in bound and ctx.value("order") != "C":
        raise NotBatchable("np.ravel with order=")
    shape = mode.infos[op.target].shape
    return astb.call("np.reshape", [astb.name(mode.dot(a)), mode.batched_shape(shape)])


def _transpose_t(mode, op, ctx, bound):
    a = mode.only_first_active(op, bound, ctx.rule.param_names()[0])
    r = mode.rank(Var(a))
    if r <= 1:
        return astb.name(mode.dot(a))
    perm = (0,) + tuple(range(r, 0, -1))
    return astb.call("np.transpose", [astb.name(mode.dot(a)), render(Const(perm))])


def _transpose(mode, op, ctx, bound):
    a = mode.only_first_active(op, bound, "a")
    r = mode.rank(Var(a))
    if not ctx.given("axes"):
        return _transpose_t(mode, op, ctx, bound)
    axes = _norm_axes(ctx.value("axes"), r)
    perm = (0,) + tuple(i + 1 for i in axes)
    return astb.call("np.transpose", [astb.name(mode.dot(a)), render(Const(perm))])


def _swapaxes(mode, op, ctx, bound):
    a = mode.only_first_active(op, bound, "a")
    r = mode.rank(Var(a))
    i, j = (int(ctx.value(p)) % r + 1 for p in ("axis1", "axis2"))
    return astb.call("np.swapaxes", [astb.name(mode.dot(a)), astb.const(i), astb.const(j)])


def _moveaxis(mode, op, ctx, bound):
    a = mode.only_first_active(op, bound, "a")
    r = mode.rank(Var(a))
    src, dst = (ctx.value(p) for p in ("source", "destination"))
    src = tuple(i + 1 for i in _norm_axes(src, r))
    dst = tuple(i + 1 for i in _norm_axes(dst, r))
    return astb.call("np.moveaxis", [astb.name(mode.dot(a)), render(Const(src)),
                                     render(Const(dst))])


def _expand_dims(mode, op, ctx, bound):
    a = mode.only_first_active(op, bound, "a")
    out = mode.rank(Var(op.target))
    axes = tuple(i + 1 for i in _norm_axes(ctx.value("axis"), out))
    return astb.call("np.expand_dims", [astb.name(mode.dot(a)),
                                        render(Const(axes[0] if len(axes) == 1 else axes))])


def _squeeze(mode, op, ctx, bound):
    a = mode.only_first_active(op, bound, "a")
    shape = ctx.shape("a")
    if ctx.given("axis"):
        axes = _norm_axes(ctx.value("axis"), len(shape))
    else:  # (never the batch axis, even when k is 1)
        axes = tuple(i for i, d in enumerate(shape) if d == 1)
    return _shifted_axes("np.squeeze", mode.dot(a), axes)


def _flip(mode, op, ctx, bound):
    m = mode.only_first_active(op, bound, "m")
    r = mode.rank(Var(m))
    axes = tuple(range(r)) if not ctx.given("axis") else _norm_axes(ctx.value("axis"), r)
    return _shifted_axes("np.flip", mode.dot(m), axes)


def _shifted_axes(func, dot, axes):
    """`func(dot, axis=...)` on the value's `axes`, past the batch axis (none: `dot`)."""
    if not axes:
        return astb.name(dot)
    axes = tuple(i + 1 for i in axes)
    return astb.call(func, [astb.name(dot)],
                     {"axis": render(Const(axes[0] if len(axes) == 1 else axes))})


def _cumsum(mode, op, ctx, bound):
    a = mode.only_first_active(op, bound, "a")
    if ctx.given("out") or ctx.given("dtype"):
        raise NotBatchable("np.cumsum with out= or dtype=")
    dot = astb.name(mode.dot(a))
    if not ctx.given("axis"):   # over the flattened array
        size = int(np.prod(ctx.shape("a")))
        dot = astb.call("np.reshape", [dot, mode.batched_shape((size,))])
        return astb.call("np.cumsum", [dot], {"axis": astb.const(1)})
    axis = int(ctx.value("axis")) % mode.rank(Var(a)) + 1
    return astb.call("np.cumsum", [dot], {"axis": astb.const(axis)})


def _broadcast_to(mode, op, ctx, bound):
    a = mode.only_first_active(op, bound, "array")
    shape = mode.infos[op.target].shape
    return astb.call("np.broadcast_to", [mode.padded(a, len(shape)), mode.batched_shape(shape)])


def _items(mode, op, bound, param):
    atom = bound[param]
    if not isinstance(atom, Seq):
        raise NotBatchable(f"{rule_name(op)} of a sequence held in a variable")
    for other, value in bound.items():
        if other != param and any(n in mode.active for n in atom_vars(value)):
            raise NotBatchable(f"{rule_name(op)} with respect to `{other}`")
    items = []
    for item in atom.items:
        if mode.active_atom(item):
            items.append(astb.name(mode.dot(item.name)))
        else:
            shape = np.shape(_value_shape(mode, item))
            items.append(astb.call("np.zeros_like", [render(item)],
                                   {"shape": mode.batched_shape(shape)}))
    return items


def _value_shape(mode, atom):
    from .specialize import atom_info
    info = atom_info(atom, mode.infos, mode.p.env)
    if info.kind in ("float", "int") or (info.kind == "array" and info.shape is not None):
        return np.empty(info.shape or ())
    raise NotBatchable(f"an item that is a {info.kind}")


def _concatenate(mode, op, ctx, bound):
    if not ctx.given("axis"):
        raise NotBatchable("np.concatenate with axis=None")
    items = _items(mode, op, bound, "arrays")
    axis = int(ctx.value("axis")) % mode.rank(Var(op.target)) + 1
    return astb.call("np.concatenate", [astb.list_(items)], {"axis": astb.const(axis)})


def _stack(mode, op, ctx, bound):
    items = _items(mode, op, bound, "arrays")
    axis = int(ctx.value("axis")) % mode.rank(Var(op.target)) + 1
    return astb.call("np.stack", [astb.list_(items)], {"axis": astb.const(axis)})


def _matmul(mode, op, ctx, bound):
    """a @ b: the terms a_dot @ b and a @ b_dot, written so that matmul's own batch
    broadcasting keeps the directions on the leading axis."""
    from .rules.registry import plus
    a, b = bound["a"], bound["b"]
    for atom in (a, b):
        if not isinstance(atom, Var) and any(n in mode.active for n in atom_vars(atom)):
            raise NotBatchable(f"{rule_name(op)} of an expression")
    na, nb = mode.rank(a), mode.rank(b)
    if na == 0 or nb == 0 or (op.prim is np.dot and max(na, nb) > 2):
        raise NotBatchable(f"{rule_name(op)} of operands of rank {na} and {nb}")
    terms = []
    if mode.active_atom(a):
        if na == 1 and nb > 2:
            raise NotBatchable("matmul of a 1-D array with a stack of matrices")
        left = mode.padded(a.name, max(na, nb)) if na >= 2 else astb.name(mode.dot(a.name))
        terms.append(astb.binop(left, gast.MatMult(), render(b)))
    if mode.active_atom(b):
        b_dot = astb.name(mode.dot(b.name))
        if nb == 1:
            if na == 1:      # (k, n) @ (n,)
                terms.append(template("b_dot @ a", b_dot=b_dot, a=render(a)))
            elif na == 2:    # (k, n) @ (n, m).T
                terms.append(template("b_dot @ a.T", b_dot=b_dot, a=render(a)))
            else:            # (..., m, n) @ (n, k), then the directions first
                terms.append(template("np.moveaxis(a @ b_dot.T, -1, 0)", b_dot=b_dot,
                                      a=render(a)))
        else:
            terms.append(astb.binop(render(a), gast.MatMult(),
                                    mode.padded(b.name, max(na, nb))))
    return plus(terms)


_LETTERS = "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA"


def _einsum(mode, op, ctx, bound):
    """One einsum per varying operand, with a letter of its own for the directions."""
    from .rules.registry import plus
    spec = ctx.value("subscripts")
    operands = bound["operands"].items
    parsed = parse_subscripts(spec, len(operands))
    if parsed is None:
        raise NotBatchable("np.einsum with '...'")
    ins, out = parsed
    used = set("".join(ins) + out)
    letter = next(c for c in _LETTERS if c not in used)
    terms = []
    for i, atom in enumerate(operands):
        if not mode.active_atom(atom):
            if any(n in mode.active for n in atom_vars(atom)):
                raise NotBatchable("np.einsum of an expression")
            continue
        subs = [letter + s if j == i else s for j, s in enumerate(ins)]
        args = [astb.const(",".join(subs) + "->" + letter + out)]
        args += [astb.name(mode.dot(a.name)) if j == i else render(a)
                 for j, a in enumerate(operands)]
        terms.append(astb.call("np.einsum", args))
    return plus(terms)


def _softmax(mode, op, ctx, bound, log=False):
    a = mode.only_first_active(op, bound, "a")
    axis = ctx.value("axis")
    if axis is None:
        raise NotBatchable("softmax over all axes")
    ax = _axes_text(_norm_axes(axis, mode.rank(Var(a))))
    text = (f"a_dot - np.sum(np.exp(ans) * a_dot, axis={ax}, keepdims=True)" if log else
            f"ans * (a_dot - np.sum(ans * a_dot, axis={ax}, keepdims=True))")
    return template(text, ans=astb.name(op.target), a_dot=astb.name(mode.dot(a)))


def _log_softmax(mode, op, ctx, bound):
    return _softmax(mode, op, ctx, bound, log=True)


def _key(prim):
    try:
        hash(prim)
        return prim
    except TypeError:
        return id(prim)


def _op_reads(op):
    from .ir import op_vars
    return op_vars(op)


def _batched_table():
    from . import runtime
    table = {
        np.sum: _sum, np.mean: _mean, np.max: _extremum, np.min: _extremum, np.prod: _prod,
        np.var: _var, np.std: _std,
        INDEX: _index, runtime.index_set: _item_assignment, runtime.index_add: _index_add,
        np.reshape: _reshape, np.ravel: _reshape,
        TRANSPOSE_T: _transpose_t, np.transpose: _transpose, np.swapaxes: _swapaxes,
        np.moveaxis: _moveaxis, np.expand_dims: _expand_dims, np.squeeze: _squeeze,
        np.flip: _flip, np.cumsum: _cumsum, np.broadcast_to: _broadcast_to,
        np.concatenate: _concatenate, np.stack: _stack,
        np.matmul: _matmul, np.dot: _matmul, np.einsum: _einsum,
        COPY: _same, np.copy: _same, ASTYPE: _same, np.float32: _same, np.float64: _same,
    }
    for name, fn in (("softmax", _softmax), ("log_softmax", _log_softmax)):
        if hasattr(runtime, name):
            table[getattr(runtime, name)] = fn
    return {_key(k): v for k, v in table.items()}


BATCHED = _batched_table()


def batch_safe_ops():
    """Names of the primitives with a batched tangent (elementwise ones come on top)."""
    from .primitives import name_of
    return sorted(name_of(p) for p in BATCHED)


def batched_source(program, infos, wrt, k=None):
    """(function name, source) of the batched forward-mode derivative of `program`:
    called as (*args, x_dot) with x_dot of shape (k,) + x.shape, it returns the tangents of
    the result along all k directions, shape (k,) + result.shape (`k`, when given, sizes
    the tangents for freeing the large ones early). Raises NotBatchable."""
    from .specialize import atom_info
    if len(wrt) != 1:
        raise NotBatchable("more than one differentiated argument")
    mode = BatchedForwardMode(program, infos, wrt)
    out_info = atom_info(program.result, infos, program.env)
    needed = set(atom_vars(program.result))
    body = prune(program.body, needed)
    x_info = infos[wrt[0]]
    if x_info.kind not in ("array", "float") or x_info.shape is None:
        raise NotBatchable(f"the argument is a {x_info.kind}")
    blocks = mode.blocks(body)
    out_dot = mode.output_tangent(program.result, out_info)
    blocks.append((None, [astb.ret(out_dot)]))
    blocks = optimize(blocks)   # the primal result itself is not returned
    blocks = release(blocks, lambda name: mode.batched_nbytes(name, k), keep=program.params)
    x_dot = mode.dot(wrt[0])
    if mode.k is not None:
        size = astb.assign(mode.k, astb.subscript(astb.attr(astb.name(x_dot), "shape"),
                                                  astb.const(0)))
        blocks.insert(0, ("the number of directions", [size]))
    short = os.path.basename(program.filename)
    inputs = ", ".join(f"{p} ({infos[p].describe()})" for p in program.params)
    doc = (f"Jacobian of {program.name} ({short}:{program.def_line}) with respect to "
           f"{wrt[0]}; batched forward mode.\n\n"
           f"Specialised for {inputs}.\n"
           f"All directions in one sweep: {x_dot} holds k of them along its leading axis, and "
           f"so does\nevery tangent below. Returns the result's tangents, shape (k,) + its "
           f"shape.\n")
    name = f"jacfwd_{program.name}"
    params = program.params + [x_dot]
    return name, function_source(name, params, blocks, doc)
