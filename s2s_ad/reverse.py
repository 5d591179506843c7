"""Reverse mode: a forward sweep (the user's code, kept to what is needed) and a backward
sweep that propagates adjoints through the rule table, in one generated function.

Adjoints are accumulated symbolically: the contributions to `x_bar` are collected while
the sweep walks back over x's uses, and written as one statement (`x_bar = c1 + c2`) where
x was defined; a single contribution that is already a name is used as is (no copy), so
there are no zero arrays made only to be added to. A scalar adjoint of a non-scalar value
stands for a broadcast one (the adjoint of `np.mean` is `g / n`) and is expanded only where
an array is needed. Indexing adjoints scatter into one array per indexed value.
"""
from dataclasses import dataclass

import gast
import numpy as np

from . import astb
import os

from .analysis import active_values, prune
from .release import release
from .remat import rematerialize
from .pointwise import emit, emit_inplace, regions as pointwise_regions
from .release import RELEASE_BYTES
from .loopjac import backward as loopjac_backward, carried_elementwise
from .emit import LoopBlock, fast_stmt, loop_block, loop_header, statements as _flat
from .ir import Loop, loop_vars, own_defs, walk_loops, walk_ops
from .errors import TransformError
from .fresh import fresh_array
from .ir import Const, Global, Op, Seq, Var, atom_vars, render, render_value
from .primitives import COPY, EFFECTS, NEWLIST, UNRECORDED
from .rules import lookup
from .rules.context import RuleContext
from .rules.registry import (Project, Scatter, coefficient, instantiate, plus, template_names,
                             times)


@dataclass
class Contribution:
    expr: object                  # gast expression
    shape: tuple                  # its shape; () may stand for a broadcast scalar; None: unknown
    index: object = None          # Scatter: add into zeros at this index
    repeats: bool = False


def broadcast(*shapes):
    if any(s is None for s in shapes):
        return None
    return tuple(np.broadcast_shapes(*shapes))


class ReverseMode:
    def __init__(self, program, infos, wrt, with_value):
        self.p = program
        self.infos = infos
        self.wrt = wrt
        self.with_value = with_value
        self.active = active_values(program, infos, wrt, self.error)
        self.contribs = {}
        self.blocks = []             # [(line, [stmts])] of the backward sweep
        self.stmts = None
        self.taken = set(infos) | set(program.params) | set(program.env) | {"np"}
        self.bars = {}
        self.key_of_bar = {}         # adjoint name -> the value (key) it is the adjoint of
        self.owned = set()           # adjoint names holding arrays the sweep made itself
        self.bar_shapes = {}         # adjoint name -> the shape its statement gives it
        self.accumulators = {}       # inside loops: value -> the adjoint name that sums
        self.pushes = {}             # loop index -> names its forward sweep pushes
        self.available = {}          # forward values that adjoint code may reuse by name
        self.segments = {}
        self.runs = {}
        self.masks = False           # a partial derivative was a boolean mask
        self.numbers = False         # a number met masks only: an array may be float64
        self.handed_out = set()
        self.pending = {}            # accumulator -> one op's contributions, not yet added
        # elementwise regions walked back in one step: output -> (input, d output / d input)
        self.regions = pointwise_regions(program, infos, self.active)
        # who reads each value: a region that is its input's only reader names the array
        # it builds after that input's adjoint
        self.readers = {}
        for op in walk_ops(program.body):
            for a in list(op.args) + list(op.kwargs.values()):
                if isinstance(a, Var):
                    self.readers.setdefault(a.name, set()).add(op.target)
        # Values whose adjoint may stay smaller than they are (a broadcast along some axes,
        # as a mean's adjoint is): only their own elementwise rule reads that adjoint.
        # (Not when an argument that carries a derivative is broadcast by the op: reducing
        # a narrow adjoint back to it would miss the copies the broadcast made.)
        self.narrow = {op.target for op in program.body
                       if isinstance(op, Op) and lookup(op.prim) is not None
                       and lookup(op.prim).partials and op.target not in self.regions
                       and self.same_shaped_args(op)}

    # -- names ----------------------------------------------------------------------------
    def bar(self, key):
        if key in self.bars:
            return self.bars[key]
        var, path = key if isinstance(key, tuple) else (key, ())
        base = "_".join([var] + [_ident(k) for k in path]) + "_bar"
        name, i = base, 1
        while name in self.taken:
            name, i = f"{base}{i}", i + 1
        self.taken.add(name)
        self.bars[key] = name
        self.key_of_bar[name] = key
        return name

    def error(self, op, what, advice=None):
        return TransformError(what, advice=advice, filename=op.file, lineno=op.line,
                              col=op.col, line_text=self.p.source_lines.get((op.file, op.line)))

    # -- the sweep ------------------------------------------------------------------------
    def run(self, seed=None):
        result = self.p.result
        if isinstance(result, Var) and result.name in self.active:
            start = astb.const(1.0) if seed is None else astb.name(seed)
            shape = () if seed is None else self.infos[result.name].shape
            self.add(result.name, Contribution(start, shape))
        self.blocks = self.backward_body(self.p.body)
        self.stmts = []
        grads = [self.gradient(w) for w in self.wrt]
        final = self.stmts
        return grads, final

    def backward_body(self, body):
        """Blocks of backward code for a structured body, walked in reverse."""
        blocks = []
        for k in range(len(body) - 1, -1, -1):
            stmt = body[k]
            if isinstance(stmt, Loop):
                if any(op.target in self.active for op in walk_ops(stmt.body)):
                    blocks.extend(self.backward_loop(stmt))
                continue
            if stmt.target not in self.active:
                continue
            self.stmts = []
            self.available = self.segment_values(body, k)
            try:
                self.backward(stmt)
            except TransformError as e:
                if e.lineno is not None:
                    raise
                raise self.error(stmt, e.what, e.advice) from None   # where it happened
            self.add_pending()
            if self.stmts:
                comment = self.p.where(stmt)
                if blocks and isinstance(blocks[-1], tuple) and blocks[-1][0] == comment:
                    blocks[-1][1].extend(self.stmts)
                else:
                    blocks.append((comment, self.stmts))
        return blocks

    def backward_loop(self, loop):
        """The loop walked backwards: values the backward body reads are popped from the
        stacks the forward sweep pushed them on; adjoints of carried values travel from one
        iteration to the one before; adjoints of values from outside the loop accumulate."""
        carried = carried_elementwise(self, loop)
        if carried is not None:
            return self.elementwise_loop(loop, carried)
        pre = self.stmts = []
        for op in walk_ops(loop.test_body):
            if op.target in self.active:
                raise self.error(op, "a while loop's condition computes a value the result "
                                     "depends on", "compute it in the loop's body")
        # Pending contributions may read names the loop below reassigns (popped values,
        # carried adjoints): write them out now.
        for key in list(self.contribs):
            self.flush(key)
        carried = [c for c in loop.carried + loop.exported
                   if c in self.active and c not in self.accumulators]
        defined = {op.target for op in walk_ops(loop.body)} | {l.index for l in walk_loops(loop.body)} \
            | {op.target for op in walk_ops(loop.test_body)}
        outer = sorted({n for n in loop_vars(loop) if n in self.active and n not in defined
                        and n not in self.accumulators and n not in carried})
        for name in carried + outer:
            self.start_accumulator(name)
        for name in outer:
            self.accumulators[name] = self.bar(name)
        for name in carried:
            self.contribs[name] = [Contribution(astb.name(self.bar(name)), self.infos[name].shape)]
        body_blocks = self.backward_body(loop.body)
        # The entry value's adjoint becomes the previous iteration's exit adjoint.
        self.stmts = tail = []
        for name in carried:
            done = self.finalize(name)
            self.store(name, done, like=self.bar(name))
        for name in outer:
            del self.accumulators[name]
        for name in carried + outer:
            self.contribs[name] = [Contribution(astb.name(self.bar(name)), self.infos[name].shape)]
        if tail:
            body_blocks.append((None, tail))
        reads = _reads(body_blocks)
        pops = sorted(n for n in reads if n in own_defs(loop) or n in loop.carried)
        self.pushes[loop.index] = pops
        pop_stmts = [astb.assign(n, astb.call(astb.attr(astb.name(n + "_stack"), "pop"), []))
                     for n in pops]
        target, it = loop_header(loop, reverse=True)
        body = ([(None, pop_stmts)] if pop_stmts else []) + body_blocks
        blocks = [(self.p.where(loop), pre)] if pre else []
        return blocks + [LoopBlock(target, it, body, self.p.where(loop) + " (backwards)")]

    def elementwise_loop(self, loop, name):
        """An elementwise loop's backward sweep in one step (s2s_ad/loopjac.py)."""
        self.stmts = []
        for key in list(self.contribs):
            self.flush(key)
        done = self.finalize(name)
        if done is None:   # (no adjoint reaches the loop: keep what was flushed above)
            return [(self.p.where(loop), self.stmts)] if self.stmts else []
        stmts, product = loopjac_backward(self, loop, name)
        self.pushes[loop.index] = [name]
        bar = self.bar(name)
        stmts.append(astb.assign(bar, astb.binop(done[0], gast.Mult(), product)))
        self.owned.add(bar)
        self.contribs[name] = [Contribution(astb.name(bar), self.infos[name].shape)]
        return [(self.p.where(loop) + " (backwards: all iterations at once)", self.stmts + stmts)]

    def fresh_name(self, base):
        name, i = base, 1
        while name in self.taken:
            name, i = f"{base}{i}", i + 1
        self.taken.add(name)
        return name

    def flush(self, key):
        """Write out the pending contributions of `key` as its adjoint variable."""
        var, path = key if isinstance(key, tuple) else (key, ())
        done = self.finalize(key, primal=_path_expr(var, path))
        if done is None:
            return
        expr, shape = done
        bar = self.bar(key)
        if isinstance(expr, gast.Name) and expr.id != bar:
            self.emit(astb.assign(bar, expr))
            expr = astb.name(bar)
        self.contribs[key] = [Contribution(expr, shape)]

    def start_accumulator(self, name):
        """`name_bar` holds a full array before a loop adds into it."""
        done = self.finalize(name)
        self.store(name, done)

    def store(self, name, done, like=None):
        """`name_bar = ...` from its contributions (zeros when there are none); `like` is
        an array of the right shape to take zeros from (the exit adjoint: the entry value
        itself may not exist on this path)."""
        bar, info = self.bar(name), self.infos[name]
        primal = astb.name(like or name)
        # A 0-d adjoint may stay a number: nothing scatters into it, and a Python number
        # (unlike a 0-d float64 array) keeps float32 arithmetic float32.
        array = info.kind == "array" and info.shape != ()
        if done is None:
            value = astb.call("np.zeros_like", [primal]) if array else astb.const(0.0)
        else:
            expr, shape = done
            if shape == () and array:
                value = astb.call("np.full_like", [primal, expr])
            elif isinstance(expr, gast.Name) and expr.id == bar and (bar in self.owned or not array):
                return
            elif array and not fresh_array(expr):
                # A loop adds into it (scatters in place): it must not share memory with
                # another value.
                value = astb.call("np.copy", [expr])
            else:
                value = expr
        self.emit(astb.assign(bar, value))
        if fresh_array(value):
            self.owned.add(bar)

    def add(self, key, contribution):
        if key in self.accumulators:  # inside a loop: add into the running sum
            if contribution.index is None:   # after the op's other contributions
                self.pending.setdefault(key, []).append(contribution.expr)
            else:
                self.emit(self.scatter(self.accumulators[key], contribution))
            return
        self.contribs.setdefault(key, []).append(contribution)

    def add_pending(self):
        """`x_bar = x_bar + (sum of one op's contributions)`: x * x adds 2.0 * ... once."""
        for key, exprs in self.pending.items():
            bar = astb.name(self.accumulators[key])
            self.emit(astb.assign(bar.id, astb.binop(bar, gast.Add(), plus(exprs))))
        self.pending = {}

    def scatter(self, name, c):
        if c.repeats:
            return gast.Expr(value=astb.call("np.add.at", [astb.name(name), c.index, c.expr]))
        return astb.aug_add(astb.subscript(astb.name(name), c.index, store=True), c.expr)

    def emit(self, stmt):
        self.stmts.append(stmt)

    def backward(self, op):
        info = self.infos[op.target]
        if info.kind in ("list", "tuple", "dict"):
            parts = self.finalize_container(op.target, info)
            if not parts:
                return
            for path, (expr, shape) in list(parts.items()):
                slot = self.info_of_key((op.target, path))
                if shape == () and slot.shape != ():  # a scalar standing for a broadcast
                    parts[path] = (astb.call("np.full_like", [_path_expr(op.target, path), expr]),
                                   slot.shape)
            g, g_shape, g_parts = None, None, parts
        else:
            done = self.finalize(op.target)
            if done is None:
                return
            (g, g_shape), g_parts = done, None
        if op.prim is UNRECORDED:
            return
        if op.target in self.regions:
            self.region_adjoint(op, g, g_shape)
            return
        if op.prim in EFFECTS or op.prim is NEWLIST:
            raise self.error(op, "in-place updates (`x[i] += v`, np.add.at) and list stacks "
                                 "are not supported by reverse mode yet",
                             "build the new array functionally, e.g. with np.where or "
                             "np.concatenate")
        rule = lookup(op.prim)
        if rule.nondiff:  # a constant (the start value of a carried sum: np.zeros(...))
            return
        bound = rule.bind(op.args, op.kwargs)   # (the normalizer checked the call)
        for param, atom in bound.items():
            if isinstance(atom, Seq) or (isinstance(atom, Var) and param in rule.sequence
                                         and self.infos[atom.name].kind in ("list", "tuple")):
                items = atom.items if isinstance(atom, Seq) else [
                    astb.subscript(astb.name(atom.name), astb.const(i))
                    for i in range(len(self.infos[atom.name].value))]
                for i, item in enumerate(items):
                    key = self.key_of(item) if isinstance(atom, Seq) else (atom.name, (i,))
                    if key is None:
                        continue
                    self.contribute(op, rule, bound, param, key, g, g_shape, g_parts, item=i)
            else:
                key = self.key_of(atom)
                if key is not None:
                    self.contribute(op, rule, bound, param, key, g, g_shape, g_parts)

    def same_shaped_args(self, op):
        """Do the op's arguments that carry derivatives all have its result's shape?"""
        out = self.infos.get(op.target)
        if out is None or out.kind != "array" or out.shape is None:
            return False
        for a in list(op.args) + list(op.kwargs.values()):
            if isinstance(a, Var) and a.name in self.active:
                info = self.infos.get(a.name)
                if info is None or info.kind != "array" or info.shape != out.shape:
                    return False
        return True

    def region_adjoint(self, op, g, g_shape):
        """x_bar += y_bar * dy/dx for the elementwise region that ends at `op` (see
        pointwise.py); the ops inside it get no adjoint of their own."""
        x, poly, members = self.regions[op.target]
        ans_info, x_info = self.infos[op.target], self.infos[x]
        g_scalar = g_shape == () and ans_info.shape != ()
        size = self.nbytes(x)
        if size is not None and size >= RELEASE_BYTES and (
                isinstance(g, gast.Name) or coefficient(g) is not None):
            # A large array: built in place (one array, not one per operation).
            number = coefficient(g)
            g_in = astb.const(number[0] / (number[1] or 1.0)) if number else g
            only_user = self.readers.get(x, set()) <= members \
                and x not in atom_vars(self.p.result)
            buf = self.bar(x) if only_user else _fresh(self.bar(x), self.taken)
            stmts = emit_inplace(poly, g_in, buf, lambda: _fresh("tmp", self.taken))
            if stmts is not None:
                for stmt in stmts:
                    self.emit(stmt)
                self.owned.add(buf)
                self.add(x, Contribution(astb.name(buf), x_info.shape))
                return
        derivative = emit(poly)
        expr = times(g, self.reuse(derivative))
        constant = coefficient(derivative) is not None
        shape = broadcast(g_shape, () if constant else x_info.shape)
        expr, shape = self.nominal(expr, shape, g_scalar, ans_info, x_info)
        self.add(x, self.fit(Contribution(expr, shape), x_info, x))

    def key_of(self, atom):
        if isinstance(atom, Var) and atom.name in self.active:
            return atom.name
        return None

    def contribute(self, op, rule, bound, param, key, g, g_shape, g_parts, item=None):
        if param in rule.shape_only:
            return
        if param not in rule.differentiable_params:
            raise self.error(op, f"s2s_ad does not differentiate {_name(op)} with respect to "
                                 f"its argument `{param}`",
                             "make that argument a constant, or register a rule that covers it")
        ans_info = self.infos[op.target]
        g_scalar = g_shape == () and ans_info.shape != () and ans_info.kind == "array"
        ctx = RuleContext(op, rule, bound, self.infos, self.p.env,
                          lambda o, w, a=None: self.error(o, w, a), g_scalar=g_scalar,
                          active_names=self.active)
        ctx.item = item
        ctx.g_parts = None if g_parts is None else [
            (i,) in g_parts for i in range(len(ans_info.value))]
        arg_info = ctx.info(f"{param}{item}" if item is not None else param)
        if g_scalar and rule.lazy_g == "through":
            self.add(key, self.fit(Contribution(self.spread(g, ans_info, arg_info), ()),
                                   arg_info, key))
            return
        if g_scalar and not rule.lazy_g:
            g = astb.call("np.full_like", [astb.name(op.target), g])
            g_shape = ans_info.shape
            ctx.g_scalar = g_scalar = False
        mapping, shapes = ctx.placeholders()
        mapping["g"], shapes["g"] = g, g_shape
        if g_parts is not None:
            for path, (expr, _shape) in g_parts.items():
                if len(path) == 1:
                    mapping[f"g{path[0]}"] = expr

        if param in rule.partials:
            partial = rule.partials[param]
            text = partial(ctx) if callable(partial) else partial
            expr = times(g, self.reuse(instantiate(text, mapping)))
            shape = broadcast(shapes["g"], *[shapes[n] for n in template_names(text) if n in shapes])
            if _is_mask(text):
                self.masks = True
            expr, shape = self.nominal(expr, shape, g_scalar, ans_info, arg_info)
            self.add(key, self.fit(Contribution(expr, shape), arg_info, key))
            return
        template = rule.adjoint[param]
        out = template(ctx) if callable(template) else template
        if out is None:   # the rule knows the contribution is nothing (an empty array's)
            return
        if isinstance(out, Project):
            slot = _slot(self.infos[key] if isinstance(key, str) else None, out.key)
            if slot is None:
                raise self.error(op, "this item of a list, tuple or dict is not one s2s_ad can "
                                     "follow (a slice, or a key it does not hold)",
                                 "pick items one by one with constant indices or keys")
            out = Project(slot)
            if g_parts is None:
                self.add((key, (out.key,)), Contribution(g, g_shape))
            else:  # a container inside a container: pass every slot up
                for sub, (expr, shape) in g_parts.items():
                    self.add((key, (out.key,) + sub), Contribution(expr, shape))
            return
        if isinstance(out, Scatter):
            index = render_value(out.index) if out.repeats else render(out.index)
            self.add(key, Contribution(g, g_shape, index=index, repeats=out.repeats))
            return
        text, shape = out if isinstance(out, tuple) else (out, None)
        operands = template_names(text) - {"g", "np"}
        if coefficient(g) and operands and not self.float_operand(op, bound, operands):
            self.numbers = True  # np.where(condition, 1.0, 0.0): a float64 array
        if coefficient(g) and not operands and arg_info.kind == "array" \
                and arg_info.dtype.kind == "f" and arg_info.dtype != np.float64:
            # np.reshape(1.0, (1,)) would be float64: the number takes the argument's type
            mapping["g"] = astb.call(f"np.{arg_info.dtype.name}", [g])
        expr = self.reuse(instantiate(text, mapping))
        if key in self.narrow and op.prim in (np.sum, np.mean) and _broadcast_call(expr):
            # A sum's or mean's adjoint spread back over the reduced axes: left narrow
            # (size 1 there) for the elementwise rule that reads it, which broadcasts.
            from .rules.reductions import reduced_axes
            axes = reduced_axes(ctx)
            self.add(key, Contribution(expr.args[0], tuple(
                1 if i in axes else d for i, d in enumerate(arg_info.shape))))
            return
        if shape is None:
            if rule.elementwise:
                shape = broadcast(*[shapes[n] for n in template_names(text) if n in shapes])
                expr, shape = self.nominal(expr, shape, g_scalar, ans_info, arg_info)
            else:
                shape = arg_info.shape
        self.add(key, self.fit(Contribution(expr, shape), arg_info, key))

    def float_operand(self, op, bound, names):
        """Does an adjoint template read a float array (which fixes its result's type)?"""
        for name in names:
            atom = Var(op.target) if name == "ans" else bound.get(name)
            if not isinstance(atom, Var):
                if name not in bound:
                    return True        # a name of the template's own: may be a float array
                continue
            info = self.infos[atom.name]
            if info.kind == "array" and info.dtype.kind == "f":
                return True
        return False

    def segment_values(self, body, k):
        """{source text: name} of the ops around body[k] that see the same values of every
        name (no loop and no copy of a carried value in between); the op itself included,
        as its result is `ans`."""
        from .emit import op_expr
        runs = self.runs.get(id(body))
        if runs is None:  # each op's run of plain ops, found once per body (not per op)
            runs = self.runs[id(body)] = _plain_runs(body)
        start = runs[k - 1][0] if k > 0 and _plain(body[k - 1]) else k
        stop = runs[k + 1][1] if k + 1 < len(body) and _plain(body[k + 1]) else k + 1
        key = (id(body), start, stop)
        if key not in self.segments:
            values = {}
            for op in body[start:stop]:
                expr = op_expr(op) if _plain(op) else None
                if expr is not None and not isinstance(
                        expr, (gast.Name, gast.Constant, gast.Attribute, gast.Subscript)):
                    values.setdefault(_text(expr), op.target)
            self.segments[key] = values
        return self.segments[key]

    def reuse(self, expr):
        """Use a forward value for a subexpression the forward sweep already computed
        (sin's derivative np.cos(x) is the t3 = np.cos(x) of the user's code)."""
        available = self.available

        class Reuse(gast.NodeTransformer):
            def visit(self, node):
                if isinstance(node, (gast.Call, gast.BinOp, gast.UnaryOp)):
                    name = available.get(_text(node))
                    if name is not None:
                        return astb.name(name)
                return super().visit(node)

        return Reuse().visit(expr) if available else expr

    def nominal(self, expr, shape, g_scalar, ans_info, arg_info):
        """An elementwise contribution made from a scalar `g` that stands for one of the
        result's shape: scaled by the copies (all scalar), or seen at the result's shape
        (so that the reduction back to the argument counts every element)."""
        if not g_scalar:
            return expr, shape
        if shape == ():
            return self.spread(expr, ans_info, arg_info), ()
        if shape is not None and ans_info.shape is not None and shape != ans_info.shape:
            return (astb.call("np.broadcast_to", [expr, render(Const(ans_info.shape))]),
                    ans_info.shape)
        return expr, shape

    def spread(self, expr, ans_info, arg_info):
        """A scalar adjoint stands for the same value at every element of the result: an
        argument NumPy broadcast to the result's shape receives it once per copy."""
        ans_shape = ans_info.shape
        arg_shape = arg_info.shape if arg_info.kind == "array" else ()
        if ans_shape is None or arg_shape is None:
            raise TransformError("a broadcast whose shape depends on the data is not supported "
                                 "here", advice="reduce the data-dependent array first")
        copies = int(np.prod(ans_shape, dtype=int)) // max(int(np.prod(arg_shape, dtype=int)), 1)
        return expr if copies <= 1 else times(astb.const(float(copies)), expr)

    def fit(self, c, arg_info, key):
        """Reduce a contribution back to its argument's shape (undo broadcasting)."""
        xs = arg_info.shape if arg_info.kind == "array" else ()
        cs = c.shape
        if cs == xs and cs is not None or cs == ():
            return c
        if cs is None or xs is None:   # (two unknown shapes may differ: a carried value
            # broadcast bigger in the loop, x / y with y of shape (2, 1))
            var = key if isinstance(key, str) else None
            return Contribution(astb.call("unbroadcast", [c.expr, astb.name(var)]), xs)
        padded = (1,) * (len(xs) - len(cs)) + tuple(cs)
        lead = max(0, len(cs) - len(xs))
        lead_axes = tuple(range(lead))
        keep_axes = tuple(lead + i for i, d in enumerate(xs) if d == 1 and padded[lead + i] != 1)
        expr = c.expr
        if lead_axes and keep_axes:
            expr = astb.call("np.reshape", [
                astb.call("np.sum", [expr], {"axis": _axes(lead_axes + keep_axes)}),
                render(Const(xs))])
        elif lead_axes and not xs:
            expr = astb.call("np.sum", [expr])
        elif lead_axes:
            expr = astb.call("np.sum", [expr], {"axis": _axes(lead_axes)})
        elif keep_axes:
            expr = self.sum_kept(expr, keep_axes, len(cs))
        reduced = tuple(1 if lead + i in keep_axes else padded[lead + i] for i in range(len(xs)))
        if reduced != tuple(xs):
            if all(d == 1 for d in reduced) and len(reduced) == 0:
                return Contribution(expr, ())
            if key in self.narrow and len(reduced) == len(xs):
                return Contribution(expr, reduced)   # broadcast where it is read
            expr = astb.call("np.broadcast_to", [expr, render(Const(tuple(xs)))])
        return Contribution(expr, tuple(xs))

    def sum_kept(self, expr, axes, ndim):
        """np.sum(expr, axis=axes, keepdims=True), with the sign and the factors of a
        product that are constant along `axes` taken out of the sum: a divide's adjoint
        `-g * ans / y` for a y broadcast along the last axis (LayerNorm's std) sums
        `g * ans` and divides the sum, two passes over the big array fewer."""
        sign, factors = _product_factors(expr)
        inner, outer = [], []
        for node, divides in factors:
            shape = self.expr_shape(node)
            padded = None if shape is None else (1,) * (ndim - len(shape)) + tuple(shape)
            constant = padded is not None and len(padded) == ndim and all(
                padded[a] == 1 for a in axes)
            (outer if constant else inner).append((node, divides))
        summed = _product(inner) if inner and not any(d for _, d in inner[:1]) else None
        if summed is None or (not outer and sign > 0):
            return astb.call("np.sum", [expr], {"axis": _axes(axes), "keepdims": astb.const(True)})
        out = astb.call("np.sum", [summed], {"axis": _axes(axes), "keepdims": astb.const(True)})
        for node, divides in outer:
            out = astb.binop(out, gast.Div() if divides else gast.Mult(), node)
        return astb.neg(out) if sign < 0 else out

    def expr_shape(self, node):
        """The shape of a name's array (a forward value or an adjoint) or of a number;
        None when not known here."""
        if isinstance(node, gast.Constant):
            return ()
        if not isinstance(node, gast.Name):
            return None
        if node.id in self.infos:
            info = self.infos[node.id]
        else:
            if node.id not in self.key_of_bar:
                return None
            info = self.info_of_key(self.key_of_bar[node.id])
        return info.shape if info.kind == "array" and not info.dynamic else \
            () if info.kind in ("float", "int") else None

    # -- accumulation -----------------------------------------------------------------------
    def finalize(self, key, primal=None):
        """Write x's adjoint from its contributions; its (expression, shape), or None."""
        cs = self.contribs.pop(key, [])
        if not cs:
            return None
        dense = [c for c in cs if c.index is None]
        scatters = [c for c in cs if c.index is not None]
        name = self.bar(key)
        if not scatters:
            if len(dense) == 1 and (isinstance(dense[0].expr, (gast.Name, gast.Constant))
                                    or coefficient(dense[0].expr)):
                return dense[0].expr, dense[0].shape  # a name or a number: use it as is
            total = plus([c.expr for c in dense])
            shape = broadcast(*[c.shape for c in dense])
            if coefficient(total):
                return total, shape
            self.emit(astb.assign(name, total))
            self.bar_shapes[name] = shape
            if fresh_array(total):
                self.owned.add(name)
            return astb.name(name), shape
        self.owned.add(name)
        primal = primal if primal is not None else astb.name(key)
        info = self.info_of_key(key)
        rows = self.row_scatter(scatters[0], info) if not dense and len(scatters) == 1 else None
        if rows is not None:
            self.emit(astb.assign(name, rows))
            return astb.name(name), info.shape
        self.bar_shapes[name] = info.shape
        if dense:
            total = plus([c.expr for c in dense])
            shape = broadcast(*[c.shape for c in dense])
            if shape == info.shape and fresh_array(total):
                self.emit(astb.assign(name, total))
            elif shape == ():
                self.emit(astb.assign(name, astb.call("np.full_like", [primal, total])))
            else:
                self.emit(astb.assign(name, astb.call("np.copy", [
                    astb.call("np.broadcast_to", [total, astb.attr(primal, "shape")])])))
        else:
            self.emit(astb.assign(name, astb.call("np.zeros_like", [primal])))
        for c in scatters:
            self.emit(self.scatter(name, c))
        return astb.name(name), info.shape

    def row_scatter(self, c, info):
        """`scatter_rows(index, g, shape)` for the adjoint of table[index] with one integer
        array as index (an embedding), else None (np.add.at into zeros)."""
        index = c.index
        if not (c.repeats and isinstance(index, gast.Name) and index.id in self.infos):
            return None
        index_info = self.infos[index.id]
        if index_info.kind != "array" or index_info.dtype.kind not in "iu" \
                or index_info.shape is None or info.shape is None or not info.shape \
                or c.shape != tuple(index_info.shape) + tuple(info.shape[1:]):
            return None
        return astb.call("scatter_rows", [index, c.expr, render(Const(tuple(info.shape)))])

    def nbytes(self, name):
        """The size of the array a generated name holds (a value or an adjoint), or None."""
        if name in self.infos:
            info = self.infos[name]
        else:
            if name not in self.key_of_bar:
                return None
            info = self.info_of_key(self.key_of_bar[name])
        if info.kind != "array" or info.shape is None or info.dynamic:
            return None
        return int(np.prod(info.shape)) * info.dtype.itemsize

    def array_info(self, name):
        """(shape, dtype) of the array a generated name surely holds, or None: forward
        values as recorded, adjoints as their contributions made them (a narrow adjoint
        is smaller than its value)."""
        if name in self.infos:
            info, shape = self.infos[name], None
        elif name in self.bar_shapes and name in self.key_of_bar:
            info, shape = self.info_of_key(self.key_of_bar[name]), self.bar_shapes[name]
            if shape is None:
                return None
        else:
            return None
        if info.kind != "array" or info.shape is None or info.dynamic:
            return None
        return tuple(info.shape if shape is None else shape), info.dtype

    def info_of_key(self, key):
        var, path = key if isinstance(key, tuple) else (key, ())
        info = self.infos[var]
        for k in path:
            info = info.value[k]
        return info

    def finalize_container(self, var, info, path=()):
        """{path: (expression, shape)} for the slots of a container that received adjoints."""
        parts = {}
        keys = range(len(info.value)) if info.kind in ("list", "tuple") else info.value.keys()
        for k in keys:
            sub = info.value[k]
            if sub.kind in ("list", "tuple", "dict"):
                for p, v in self.finalize_container(var, sub, path + (k,)).items():
                    parts[(k,) + p] = v
            else:
                key = (var, path + (k,))
                done = self.finalize(key, primal=_path_expr(var, path + (k,)))
                if done is not None:
                    parts[(k,)] = done
        # The container itself may be a slot of another: pass the slots up.
        return parts

    # -- the gradients handed back ----------------------------------------------------------
    def gradient(self, param):
        info = self.infos[param]
        if info.kind in ("list", "tuple", "dict"):
            return self._structure(param, info, ())
        return self._leaf(self.finalize(param), info, astb.name(param))

    def _structure(self, var, info, path):
        if info.kind in ("list", "tuple", "dict"):
            keys = list(range(len(info.value))) if info.kind != "dict" else list(info.value)
            elts = [self._structure(var, info.value[k], path + (k,)) for k in keys]
            if info.kind == "dict":
                return astb.dict_([astb.const(k) for k in keys], elts)
            return astb.list_(elts) if info.kind == "list" else astb.tuple_(elts)
        done = self.finalize((var, path), primal=_path_expr(var, path))
        return self._leaf(done, info, _path_expr(var, path))

    def _leaf(self, done, info, primal):
        if not info.differentiable:
            return astb.const(None)
        if info.kind == "float":
            number = coefficient(done[0]) if done else (0.0, None)
            if number:  # a constant derivative: write the float
                return astb.const(number[0] / (number[1] or 1.0))
            return astb.call("float", [done[0]])
        if done is None:
            return astb.call("np.zeros_like", [primal])
        expr, shape = done
        if shape == () and info.shape != ():
            return astb.call("np.full_like", [primal, expr])
        if info.shape == ():
            # A 0-d array: its adjoint may be a Python number or a 0-d array of another
            # type; hand out a scalar of the argument's type.
            number = coefficient(expr)
            value = astb.const(number[0] / (number[1] or 1.0)) if number else expr
            return astb.call(f"np.{info.dtype.name}", [value])
        # (a number among masks makes float64 at most)
        if self.masks or (self.numbers and info.dtype != np.float64) or any(
                i.kind == "array" and i.dtype.kind in "fc" and i.dtype != info.dtype
                             for i in self.infos.values()):
            # Other float types met on the way (float32 weights, float64 constants) or
            # boolean masks (np.maximum's): the gradient takes its argument's dtype.
            fresh = (isinstance(expr, gast.Name) and expr.id in self.owned
                     and expr.id not in self.handed_out) or fresh_array(expr)
            if isinstance(expr, gast.Name):
                self.handed_out.add(expr.id)
            return astb.call(astb.attr(expr, "astype"), [render(Const(info.dtype.type))],
                             {"copy": astb.const(False)} if fresh else {})
        # Hand out arrays the backward sweep made itself, once each; copy anything else
        # (an input, a view, an adjoint shared with another gradient).
        if isinstance(expr, gast.Name) and expr.id in self.owned and expr.id not in self.handed_out:
            self.handed_out.add(expr.id)
            return expr
        if fresh_array(expr):
            return expr
        return astb.call("np.copy", [expr])


def _slot(info, key):
    """The slot `key` names in a container (negative indices counted from the end)."""
    if info is None:
        return key
    if info.kind == "dict":
        return key if key in info.value else None
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool) \
            and -len(info.value) <= key < len(info.value):
        return int(key) % len(info.value)
    return None


def _is_mask(text):
    """Is a partial derivative a boolean mask (np.maximum's x >= y)?"""
    return any(op in text for op in (">", "<", "==", "&"))


def _path_expr(var, path):
    expr = astb.name(var)
    for k in path:
        expr = astb.subscript(expr, astb.const(k))
    return expr


def _axes(axes):
    return astb.const(axes[0]) if len(axes) == 1 else render(Const(tuple(axes)))


def _ident(key):
    text = "".join(ch if ch.isalnum() else "_" for ch in str(key))
    return text


def _name(op):
    from .primitives import name_of
    return name_of(op.prim)


# -- the generated function -----------------------------------------------------------------

def adjoint_source(program, infos, wrt, with_value, as_tuple, seed=None):
    """(function name, source) of the reverse-mode derivative of `program`; with `seed`,
    a vector-Jacobian product whose extra last parameter is the output's cotangent."""
    from .emit import function_source, op_stmt
    from .optimize import optimize
    from .contract import contract_sums
    from .inplace import update_in_place

    mode = ReverseMode(program, infos, wrt, with_value)
    if seed is not None:
        seed = _fresh(seed, mode.taken)
    grads, final = mode.run(seed)
    swept = rematerialize(mode.blocks + [(None, final)], program, infos)
    mode.blocks, final = swept[:-1], swept[-1][1]
    grad_expr = astb.tuple_(grads) if as_tuple else grads[0]
    returned = astb.tuple_([render(program.result), grad_expr]) if with_value else grad_expr
    final = final + [astb.ret(returned)]
    sweep_reads = _reads(mode.blocks) | set().union(*[astb.load_names(s) for s in final[:-1]])
    needed = sweep_reads | astb.load_names(final[-1])
    needed |= {n for names in mode.pushes.values() for n in names}
    forward = prune(program.body, needed)

    short = os.path.basename(program.filename)
    blocks = forward_blocks(forward, mode.pushes,
                            lambda stmt: f"{program.where(stmt)}  {program.line_text(stmt)}", infos)
    stacks = sorted({n for names in mode.pushes.values() for n in names})
    if stacks:
        blocks.insert(0, ("stacks for values the backward sweep reads from loops",
                          [astb.assign(f"{n}_stack", astb.list_([])) for n in stacks]))
    blocks.append(("-- backward sweep --", []))
    blocks += mode.blocks
    blocks.append((None, final))
    blocks = optimize(blocks)
    blocks = release(blocks, mode.nbytes, keep=program.params)
    blocks, renamed = update_in_place(blocks, mode.array_info, keep=program.params)
    blocks = contract_sums(blocks, mode.array_info)

    forward_names = {op.target for op in walk_ops(forward)}
    kept = sorted({renamed.get(n, n) for n in sweep_reads
                   if n in forward_names and n not in stacks})
    infos = {**infos, **{new: infos[old] for old, new in renamed.items() if old in infos}}
    kept_text = ", ".join(f"{n} ({infos[n].describe()})" for n in kept) or "nothing"
    if stacks:
        kept_text += "; on stacks, one per iteration: " + ", ".join(
            f"{n} ({infos[n].describe()})" for n in stacks)
    inputs = ", ".join(f"{p} ({infos[p].describe()})" for p in program.params)
    what = "Value and gradient" if with_value else "Gradient"
    doc = (f"{what} of {program.name} ({short}:{program.def_line}) with respect to "
           f"{', '.join(wrt)}; reverse mode.\n\n"
           f"Specialised for {inputs}.\n"
           f"Kept for the backward sweep: {kept_text}.\n")
    name = f"{'value_and_grad' if with_value else 'grad'}_{program.name}"
    if seed is not None:
        name = f"vjp_{program.name}"
        doc = doc.replace(f"{what} of", f"Vector-Jacobian product ({seed} times the Jacobian) of", 1)
    params = program.params + ([seed] if seed is not None else [])
    return name, function_source(name, params, blocks, doc)


def _fresh(name, taken):
    candidate, i = name, 1
    while candidate in taken:
        candidate, i = f"{name}{i}", i + 1
    taken.add(candidate)
    return candidate


def forward_blocks(body, pushes, comment_of, infos=None):
    """The forward sweep: the user's code, with loops pushing what the backward sweep reads."""
    from .emit import op_stmt
    blocks = []
    for stmt in body:
        if isinstance(stmt, Loop):
            # Push what the backward sweep reads at the end of each iteration, just before
            # the carried values are overwritten (so pops mirror pushes, nested loops too).
            names = pushes.get(stmt.index, [])
            body, copies = list(stmt.body), []
            while body and isinstance(body[-1], Op) and body[-1].prim is COPY \
                    and body[-1].target in stmt.carried:
                copies.insert(0, body.pop())
            push = [gast.Expr(value=astb.call(astb.attr(astb.name(n + "_stack"), "append"),
                                              [astb.name(n)])) for n in names]
            body_blocks = forward_blocks(body, pushes, comment_of, infos)
            if push:
                body_blocks.append((None, push))
            if stmt.test is not None:  # count the iterations, to walk them back
                body_blocks.append((None, [astb.assign(stmt.counter, astb.binop(
                    astb.name(stmt.counter), gast.Add(), astb.const(1)))]))
                blocks.append((None, [astb.assign(stmt.counter, astb.const(0))]))
            body_blocks += forward_blocks(copies, pushes, comment_of, infos)
            blocks.append(loop_block(stmt, body_blocks, comment_of(stmt),
                                     forward_blocks(stmt.test_body, pushes, comment_of, infos)))
            continue
        comment = comment_of(stmt)
        if blocks and isinstance(blocks[-1], tuple) and blocks[-1][0] == comment:
            blocks[-1][1].append(fast_stmt(stmt, infos or {}))
        else:
            blocks.append((comment, [fast_stmt(stmt, infos or {})]))
    return blocks


def _text(node):
    return astb.unparse_key(node)


def _broadcast_call(expr):
    return isinstance(expr, gast.Call) and isinstance(expr.func, gast.Attribute) \
        and expr.func.attr == "broadcast_to" and len(expr.args) == 2


def _product_factors(expr):
    """(sign, [(factor, divides?)]) of `-a * b / c` read as a left-to-right chain."""
    sign = 1
    if isinstance(expr, gast.UnaryOp) and isinstance(expr.op, gast.USub):
        sign, expr = -1, expr.operand
    factors = []
    while isinstance(expr, gast.BinOp) and isinstance(expr.op, (gast.Mult, gast.Div)):
        factors.append((expr.right, isinstance(expr.op, gast.Div)))
        expr = expr.left
    if isinstance(expr, gast.UnaryOp) and isinstance(expr.op, gast.USub):
        sign, expr = -sign, expr.operand
    factors.append((expr, False))
    return sign, factors[::-1]


def _product(factors):
    out = factors[0][0]
    for node, divides in factors[1:]:
        out = astb.binop(out, gast.Div() if divides else gast.Mult(), node)
    return out


def _plain_runs(body):
    """[(start, stop)] of the run of consecutive plain ops each index is in."""
    runs, k = [None] * len(body), 0
    while k < len(body):
        stop = k + 1
        if _plain(body[k]):
            while stop < len(body) and _plain(body[stop]):
                stop += 1
        for i in range(k, stop):
            runs[i] = (k, stop)
        k = stop
    return runs


def _plain(stmt):
    return isinstance(stmt, Op) and stmt.prim is not COPY and stmt.prim not in EFFECTS \
        and stmt.prim is not NEWLIST


def _reads(blocks):
    """Every name the blocks read, in statements and in loop and branch headers."""
    names = set().union(*[astb.load_names(s) for s in _flat(blocks)])
    return names.union(*[astb.load_names(b.iter) for b in _loop_blocks(blocks)])


def _loop_blocks(blocks):
    for block in blocks:
        if isinstance(block, LoopBlock):
            yield block
            yield from _loop_blocks(block.blocks)


