"""Forward mode: tangent statements interleaved with the primal, from the same rule table.

Each active value `v` gets a tangent `v_dot` right after it is computed. A rule gives the
tangent of its result from its arguments' tangents: `x_dot * partial` for elementwise
functions, the function itself applied to the tangent for linear ones, or a template.
Loops stay loops: a carried value's tangent is carried with it.
"""
import os

import gast
import numpy as np

from . import astb
from .analysis import active_values, prune
from .emit import LoopBlock, fast_stmt, function_source, loop_block, loop_header, op_stmt
from .errors import TransformError
from .fresh import fresh_array
from .optimize import optimize
from .contract import contract_sums
from .inplace import update_in_place
from .release import release
from .ir import Const, Loop, Op, Seq, Var, atom_vars, render, walk_ops
from .primitives import APPEND, EFFECTS, POP, UNRECORDED
from .reverse import broadcast
from .rules import lookup
from .rules.context import RuleContext
from .rules.registry import instantiate, plus, template_names, times


class ForwardMode:
    def __init__(self, program, infos, wrt):
        self.p = program
        self.infos = infos
        self.wrt = wrt
        self.active = active_values(program, infos, wrt, self.error)
        self.taken = set(infos) | set(program.params) | set(program.env) | {"np"}
        self.dots = {}
        self.primal_of = {}          # tangent name -> its primal
        self.owned = set()        # tangent names holding arrays made here (safe to update)
        self.has_dot = {self.dot(w) for w in wrt}
        self.plain_defs = set(program.params)   # defined outside any branch
        self.in_branch = False

    def dot(self, name):
        if name not in self.dots:
            base, i = f"{name}_dot", 1
            candidate = base
            while candidate in self.taken:
                candidate, i = f"{base}{i}", i + 1
            self.taken.add(candidate)
            self.dots[name] = candidate
            self.primal_of[candidate] = name
        return self.dots[name]

    def array_info(self, name):
        """(shape, dtype) of the array a generated name (a value or a tangent) holds, or
        None. (A tangent whose terms are smaller than its value is broadcast to it.)"""
        info = self.infos.get(self.primal_of.get(name, name))
        if info is None or info.kind != "array" or info.shape is None or info.dynamic:
            return None
        return tuple(info.shape), info.dtype

    def nbytes(self, name):
        """The size of the array a generated name (a value or a tangent) holds, or None."""
        primal = self.primal_of.get(name, name)
        info = self.infos.get(primal)
        if info is None or info.kind != "array" or info.shape is None or info.dynamic:
            return None
        return int(np.prod(info.shape)) * info.dtype.itemsize

    def error(self, op, what, advice=None):
        return TransformError(what, advice=advice, filename=op.file, lineno=op.line,
                              col=op.col, line_text=self.p.source_lines.get((op.file, op.line)))

    # -- the sweep ----------------------------------------------------------------------
    def blocks(self, body):
        out = []
        for stmt in body:
            if isinstance(stmt, Loop):
                # A carried value that starts constant and varies inside needs a zero tangent.
                # (Not one first assigned in another branch: it has no value on this path.)
                starts = [self.assign_dot(c, self.zeros(c, self.infos[c])) for c in stmt.carried
                          if c in self.active and self.dot(c) not in self.has_dot
                          and c in self.plain_defs]
                if starts:
                    out.append((None, starts))
                outer, self.in_branch = self.in_branch, self.in_branch or stmt.condition is not None
                out.append(loop_block(stmt, self.blocks(stmt.body),
                                      f"{self.p.where(stmt)}  {self.p.line_text(stmt)}",
                                      self.blocks(stmt.test_body)))
                self.in_branch = outer
                continue
            stmts = [fast_stmt(stmt, self.infos)]
            if not self.in_branch:
                self.plain_defs.add(stmt.target)
            if stmt.prim is POP and stmt.args[0].name in self.active:
                stmts += self.effect_tangent(stmt)  # even if unused: the stacks stay aligned
            elif stmt.target in self.active:
                stmts += self.tangent(stmt)
            comment = f"{self.p.where(stmt)}  {self.p.line_text(stmt)}"
            if out and isinstance(out[-1], tuple) and out[-1][0] == comment:
                out[-1][1].extend(stmts)
            else:
                out.append((comment, stmts))
        return out

    def tangent(self, op):
        """`target_dot = ...` for one op."""
        if op.prim in EFFECTS:
            return self.effect_tangent(op)
        if op.prim is UNRECORDED:
            return []
        rule = lookup(op.prim)
        info = self.infos[op.target]
        if rule.nondiff:  # a carried sum's start value: its tangent is zero
            return [self.assign_dot(op.target, self.zeros(op.target, info))]
        bound = rule.bind(op.args, op.kwargs)
        ctx = RuleContext(op, rule, bound, self.infos, self.p.env,
                          lambda o, w, a=None: self.error(o, w, a), active_names=self.active)
        mapping, shapes = ctx.placeholders()
        for name in list(mapping):
            atom = _atom_of(bound, name)
            if isinstance(atom, Var) and atom.name in self.active:
                mapping[f"{name}_dot"] = self.dot_in(op, atom.name)
                shapes[f"{name}_dot"] = shapes[name]
        varying = [param for param, atom in bound.items() if param not in rule.shape_only
                   and any(isinstance(a, Var) and a.name in self.active
                           for a in (atom.items if isinstance(atom, Seq) else (atom,)))]
        joint = rule.tangent.get(tuple(varying)) if len(varying) > 1 else None
        if joint is not None:   # one expression for these arguments' tangents together
            return [self.assign_dot(op.target, instantiate(joint, mapping))]
        terms = []
        for param, atom in bound.items():
            if param not in varying:
                continue
            if param not in rule.differentiable_params and param not in rule.tangent:
                raise self.error(op, f"s2s_ad does not differentiate {rule_name(op)} with "
                                     f"respect to its argument `{param}`",
                                 "make that argument a constant")
            terms += self.terms(op, rule, ctx, param, atom, mapping, shapes)
        if not terms:
            return [self.assign_dot(op.target, self.zeros(op.target, info))]
        expr = plus([t for t, _ in terms])
        shape = broadcast(*[s for _, s in terms])
        if info.kind == "array" and shape is not None and info.shape is not None \
                and shape != info.shape:
            expr = self.broadcast_dot(expr, info.shape, shape, info.dtype)
        return [self.assign_dot(op.target, expr)]

    # Hooks for the batched variant (batched.py), whose tangents carry a leading axis.
    def dot_in(self, op, name):
        """The tangent of `name` as it enters the rule template of `op`."""
        return astb.name(self.dot(name))

    def broadcast_dot(self, expr, shape, from_shape=None, dtype=None):
        """A tangent expression broadcast to the full `shape` of its value."""
        if from_shape == () and dtype is not None and np.issubdtype(dtype, np.inexact):
            # A 0-d tangent may be a Python number (a loop's reset adjoint, 0.0): broadcast
            # alone it would become float64; the tangent has its value's dtype.
            return astb.call("np.full", [render(Const(shape)), expr],
                             {"dtype": astb.dotted(f"np.{np.dtype(dtype).name}")})
        return astb.call("np.broadcast_to", [expr, render(Const(shape))])

    def assign_dot(self, name, expr):
        dot = self.dot(name)
        self.has_dot.add(dot)
        if fresh_array(expr):
            self.owned.add(dot)
        else:
            self.owned.discard(dot)
        return astb.assign(dot, expr)

    def effect_tangent(self, op):
        """In-place updates and stack operations act the same way on the tangents."""
        if op.prim is POP:
            return [self.assign_dot(op.target, astb.call(
                astb.attr(astb.name(self.dot(op.args[0].name)), "pop"), []))]
        target = Var(self.dot(op.target))
        if op.prim is APPEND:
            item = op.args[1]
            value = Var(self.dot(item.name)) if isinstance(item, Var) and item.name in self.active \
                else None
            if value is None:
                return [op_stmt(Op(target.name, APPEND, (target, _ZerosLike(item))))]
            return [op_stmt(Op(target.name, APPEND, (target, value)))]
        update = op.args[2]  # np.add.at(x, index, v)
        if not (isinstance(update, Var) and update.name in self.active):
            return []
        stmts = []
        if target.name not in self.owned:  # the tangent may be another value's: copy first
            stmts.append(astb.assign(target.name, astb.call("np.copy", [astb.name(target.name)])))
            self.owned.add(target.name)
        return stmts + [op_stmt(Op(target.name, op.prim, (target, op.args[1],
                                                           Var(self.dot(update.name)))))]

    def terms(self, op, rule, ctx, param, atom, mapping, shapes):
        """[(expression, shape)]: the tangent contributions of one argument."""
        if param in rule.partials:
            partial = rule.partials[param]
            text = partial(ctx) if callable(partial) else partial
            expr = times(mapping[f"{param}_dot"], instantiate(text, mapping))
            names = [n for n in template_names(text) if n in shapes] + [f"{param}_dot"]
            return [(expr, broadcast(*[shapes[n] for n in names]))]
        if param in rule.tangent:
            template = rule.tangent[param]
            text = template(ctx) if callable(template) else template
            if not rule.elementwise:
                return [(instantiate(text, mapping), self.infos[op.target].shape)]
            names = [n for n in template_names(text) if n in shapes]
            return [(instantiate(text, mapping), broadcast(*[shapes[n] for n in names]))]
        if param in rule.linear:
            ans_shape = self.infos[op.target].shape
            if isinstance(atom, Seq) and param in rule.multilinear:
                return [(self.substituted(op, rule, {(param, i): self.dot(a.name)}), ans_shape)
                        for i, a in enumerate(atom.items)
                        if isinstance(a, Var) and a.name in self.active]
            if isinstance(atom, Seq):  # jointly linear: inactive items contribute zeros
                swap = {(param, i): self.dot(a.name) if isinstance(a, Var) and a.name in self.active
                        else ("zeros", a) for i, a in enumerate(atom.items)}
                return [(self.substituted(op, rule, swap), ans_shape)]
            return [(self.substituted(op, rule, {(param, None): self.dot(atom.name)}), ans_shape)]
        raise self.error(op, f"the rule for {rule_name(op)} has no tangent for `{param}`")

    def substituted(self, op, rule, swap):
        """The op's own expression with some arguments replaced by their tangents."""
        from .emit import op_expr
        names = rule.param_names()
        args = list(op.args)
        kwargs = dict(op.kwargs)

        def replace(atom, key):
            new = swap[key]
            if isinstance(new, tuple):  # ("zeros", atom)
                return astb.call("np.zeros_like", [render(new[1])])
            return astb.name(new)

        sequence = names[-1] if rule.params and rule.params[-1][0].startswith("*") else None
        for (param, item), _ in swap.items():
            if param == sequence:
                first = len(names) - 1
                args[first + item] = replace(args[first + item], (param, item))
                continue
            position = names.index(param)
            if param in kwargs:
                slot = kwargs[param]
                kwargs[param] = _swap_item(slot, item, replace, (param, item))
            else:
                args[position] = _swap_item(args[position], item, replace, (param, item))
        return op_expr(Op(op.target, op.prim, tuple(args), kwargs, op.line, op.col, op.callee,
                          op.file))

    def zeros(self, name, info, result=False):
        if info.kind == "stack":
            return astb.list_([])
        # A 0-d value may be a Python number (a seed 1.0 the loop carries): a zero array
        # like it would be float64 and make float32 tangents float64. 0.0 is weak.
        if info.kind == "array" and (result or info.shape != ()):
            return astb.call("np.zeros_like", [astb.name(name)])
        return astb.const(0.0)

    def output_tangent(self, atom, info):
        """The result's tangent, shaped like the result (zeros where it does not vary)."""
        if isinstance(atom, Var):
            if atom.name in self.active:
                return astb.name(self.dot(atom.name))
            if info.kind in ("list", "tuple", "dict"):
                raise TransformError("jvp of a function returning a container that does not "
                                     "depend on the input is not supported")
            return self.zeros(atom.name, info, result=True)
        if isinstance(atom, Seq):
            if atom.kind == "dict":
                return astb.dict_([astb.const(k) for k in atom.keys],
                                  [self.output_tangent(a, info.value[k])
                                   for k, a in zip(atom.keys, atom.items)])
            elts = [self.output_tangent(a, i) for a, i in zip(atom.items, info.value)]
            return astb.tuple_(elts) if atom.kind == "tuple" else astb.list_(elts)
        return astb.const(0.0)


class _ZerosLike:
    """An atom that renders as np.zeros_like(atom)."""

    def __init__(self, atom):
        self.atom = atom


def _swap_item(slot, item, replace, key):
    if item is None:
        return replace(slot, key)
    items = list(slot.items)
    items[item] = replace(items[item], key)
    return Seq(tuple(items), slot.kind)


def _atom_of(bound, name):
    if name in bound:
        return bound[name]
    base = name.rstrip("0123456789")
    if base in bound and isinstance(bound[base], Seq):
        return bound[base].items[int(name[len(base):])]
    return None


def rule_name(op):
    from .primitives import name_of
    return name_of(op.prim)


def tangent_source(program, infos, wrt, only_tangent=False, title=None):
    """(function name, source) of the forward-mode derivative of `program`."""
    from .specialize import atom_info
    mode = ForwardMode(program, infos, wrt)
    out_info = atom_info(program.result, infos, program.env)
    needed = set(atom_vars(program.result))
    body = prune(program.body, needed)
    blocks = mode.blocks(body)
    out_dot = mode.output_tangent(program.result, out_info)
    returned = out_dot if only_tangent else astb.tuple_([render(program.result), out_dot])
    blocks.append((None, [astb.ret(returned)]))
    params = program.params + [mode.dot(w) for w in wrt]
    # hvp returns the tangents only: the adjoint's own results are dead unless read
    blocks = release(optimize(blocks), mode.nbytes, keep=params)
    if not only_tangent:   # (hvp: measured no faster in place, and slower to compile)
        blocks, _ = update_in_place(blocks, mode.array_info, keep=params)
    blocks = contract_sums(blocks, mode.array_info)
    short = os.path.basename(program.filename)
    inputs = ", ".join(f"{p} ({infos[p].describe()})" for p in program.params)
    title = title or f"Jacobian-vector product of {program.name}"
    doc = (f"{title} ({short}:{program.def_line}) with respect to {', '.join(wrt)}; "
           f"forward mode{' over the generated adjoint ' + program.name if only_tangent else ''}.\n\n"
           f"Specialised for {inputs}.\n"
           f"Returns {'the' if only_tangent else 'the value and its'} derivative along "
           f"{', '.join(mode.dot(w) for w in wrt)}.\n")
    name = f"{'hvp' if only_tangent else 'jvp'}_{program.name}"
    return name, function_source(name, params, blocks, doc)
