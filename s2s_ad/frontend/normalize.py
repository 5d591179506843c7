"""Turn a parsed function into a `Program`: one primitive per assignment, each name
assigned once (a re-assigned name gets a version suffix: x, x_1, x_2).

Calls are resolved to the Python objects they name, method forms become the NumPy
function (`x.sum(0)` -> `np.sum(x, 0)`), operators become their ufuncs. A call with no
derivative rule is refused here, at transformation time, with the user's line.
"""
import builtins
import inspect
import types

import gast
import numpy as np

from .. import ir, runtime
from ..ir import Const, Global, Op, Seq, Slice, Var
from ..primitives import (ASTYPE, UNRECORDED, VIEWS, ADD_AT, APPEND, EFFECTS, NEWLIST, POP, COPY, Special, ATTRIBUTE, ATTRIBUTES, BINOPS, COMPARES, INDEX, METHODS, TRANSPOSE_T,
                          UNARY, VARARG_METHODS, canonical, spell)
from ..emit import GENERATED
from ..fuse import fuse
from ..rules import registry
from . import fence, parse
from .resolve import Scope, Scopes, is_module

RESULT_NAME = "out"
_AUG_TEXT = {gast.Add: "+", gast.Sub: "-", gast.Mult: "*", gast.Div: "/", gast.Pow: "**",
             gast.MatMult: "@", gast.FloorDiv: "//", gast.Mod: "%"}
ARRAY_PARAMS = ("a", "x", "m", "A", "array", "ary")
# Calls that return a new array or list of the function's own, which may be updated in place.
OWNERS = {NEWLIST, np.zeros_like, np.zeros, np.ones_like, np.ones, np.full_like, np.full,
          np.empty_like, np.empty, np.copy}


class LocalFunction:
    """A nested def or a lambda bound to a name: its tree and the enclosing scope."""

    def __init__(self, node, env, locals_):
        self.node = node
        self.env = env
        self.locals = locals_


def _hashable(value):
    try:
        hash(value)
        return True
    except TypeError:
        return False


def _returns_in_loop(stmt):
    return isinstance(stmt, (gast.For, gast.While)) and any(
        isinstance(n, gast.Return) for n in gast.walk(stmt))


def lift_returns(stmts, flag, value):
    """`return v` inside a loop: `value = v; flag = True; break`, and after the loop
    `if flag: return value` (after an inner loop: `if flag: break`)."""
    def name(id_, store=False):
        return gast.Name(id=id_, ctx=gast.Store() if store else gast.Load(), annotation=None,
                         type_comment=None)

    def in_loop(body, outer):
        out = []
        for stmt in body:
            if isinstance(stmt, gast.Return):
                out += [gast.Assign(targets=[name(value, True)], value=stmt.value, type_comment=None),
                        gast.Assign(targets=[name(flag, True)], value=gast.Constant(value=True, kind=None),
                                    type_comment=None), gast.Break()]
                for new in out[-3:]:
                    gast.copy_location(new, stmt)
                    for inner in gast.walk(new):
                        gast.copy_location(inner, stmt)
                return out
            if isinstance(stmt, gast.If):
                new = gast.If(test=stmt.test, body=in_loop(stmt.body, outer),
                              orelse=in_loop(stmt.orelse, outer))
                out.append(gast.copy_location(new, stmt))
            elif _returns_in_loop(stmt):
                out.append(loop_of(stmt))
                after = gast.If(test=name(flag), body=[gast.Break()], orelse=[])
                out.append(gast.copy_location(after, stmt))
            else:
                out.append(stmt)
        return out

    def loop_of(stmt):
        new = type(stmt)(**{f: getattr(stmt, f) for f in stmt._fields})
        new.body = in_loop(stmt.body, stmt)
        return gast.copy_location(new, stmt)

    out = []
    for stmt in stmts:
        if _returns_in_loop(stmt):
            start = gast.Assign(targets=[name(flag, True)], value=gast.Constant(value=False, kind=None),
                                type_comment=None)
            done = gast.If(test=name(flag), body=[gast.Return(value=name(value))], orelse=[])
            for new in (start, done):
                gast.copy_location(new, stmt)
                for inner in gast.walk(new):
                    gast.copy_location(inner, stmt)
            out += [start, loop_of(stmt), done]
        elif isinstance(stmt, gast.If):
            new = gast.If(test=stmt.test, body=lift_returns(stmt.body, flag, value),
                          orelse=lift_returns(stmt.orelse, flag, value))
            out.append(gast.copy_location(new, stmt))
        else:
            out.append(stmt)
    return out


def restructure(stmts):
    """Move what follows an `if` whose branch returns into the branch that does not."""
    from .fence import ends_with_return
    out = []
    for i, stmt in enumerate(stmts):
        if isinstance(stmt, gast.If) and (ends_with_return(stmt.body)
                                          or ends_with_return(stmt.orelse)):
            rest = stmts[i + 1:]
            body = stmt.body if ends_with_return(stmt.body) else stmt.body + rest
            orelse = stmt.orelse if ends_with_return(stmt.orelse) else stmt.orelse + rest
            new = gast.If(test=stmt.test, body=restructure(body), orelse=restructure(orelse))
            out.append(gast.copy_location(new, stmt))
            return out
        out.append(stmt)
    return out


def assign_returns(stmts, name):
    """`return v` -> `name = v`, through the branches of ifs."""
    out = []
    for stmt in stmts:
        if isinstance(stmt, gast.Return):
            target = gast.Name(id=name, ctx=gast.Store(), annotation=None, type_comment=None)
            out.append(gast.copy_location(gast.Assign(targets=[target], value=stmt.value,
                                                      type_comment=None), stmt))
        elif isinstance(stmt, gast.If):
            new = gast.If(test=stmt.test, body=assign_returns(stmt.body, name),
                          orelse=assign_returns(stmt.orelse, name))
            out.append(gast.copy_location(new, stmt))
        else:
            out.append(stmt)
    return out


def has_jump(stmts):
    """Does a loop body `break` or `continue` (not counting loops nested in it)?"""
    for stmt in stmts:
        if isinstance(stmt, (gast.Break, gast.Continue)):
            return True
        if isinstance(stmt, gast.If) and (has_jump(stmt.body) or has_jump(stmt.orelse)):
            return True
    return False


def _guarded(stmts, go, skip):
    """The body with `break` -> `go = False`, `continue` -> `skip = True`, and the
    statements after a jump run only `if go and not skip`."""
    def flag(id_, value):
        return gast.Assign(targets=[gast.Name(id=id_, ctx=gast.Store(), annotation=None,
                                              type_comment=None)],
                           value=gast.Constant(value=value, kind=None), type_comment=None)

    def load(id_):
        return gast.Name(id=id_, ctx=gast.Load(), annotation=None, type_comment=None)
    out = []
    for i, stmt in enumerate(stmts):
        if isinstance(stmt, gast.Break):
            return out + [flag(go, False)]
        if isinstance(stmt, gast.Continue):
            return out + [flag(skip, True)]
        if isinstance(stmt, gast.If) and (has_jump(stmt.body) or has_jump(stmt.orelse)):
            out.append(gast.If(test=stmt.test, body=_guarded(stmt.body, go, skip),
                               orelse=_guarded(stmt.orelse, go, skip)))
            rest = stmts[i + 1:]
            if rest:
                still = gast.BoolOp(op=gast.And(), values=[
                    load(go), gast.UnaryOp(op=gast.Not(), operand=load(skip))])
                out.append(gast.If(test=still, body=_guarded(rest, go, skip), orelse=[]))
            return out
        out.append(stmt)
    return out


def _is_range(node):
    return isinstance(node, gast.Call) and isinstance(node.func, gast.Name) \
        and node.func.id in ("range", "reversed")


def _number(atom):
    return isinstance(atom, Const) and type(atom.value) in (int, float)


def _mentions(key, atoms):
    """Does a memo key read any of `atoms`?"""
    if isinstance(key, (tuple, list)):
        return any(_mentions(k, atoms) for k in key)
    if isinstance(key, Seq):
        return any(_mentions(k, atoms) for k in key.items)
    if isinstance(key, Slice):
        return any(_mentions(k, atoms) for k in (key.lower, key.upper, key.step))
    return key in atoms if isinstance(key, (Var, Global, Const)) else False


def ast_text(node):
    return node.id if isinstance(node, gast.Name) else f"{ast_text(node.value)}.{node.attr}"


class Normalizer:
    def __init__(self, source, unroll=None):
        self.src = source
        self.unroll = unroll or {}             # loop site -> the index values to unroll with
        self.sites = {}
        fn = source.node
        self.scope = Scope(source.func)
        self.params = [a.id for a in fn.args.args]
        self.taken = {n.id for n in gast.walk(fn) if isinstance(n, gast.Name)} | set(self.params)
        self.locals = {n.id for n in gast.walk(fn)
                       if isinstance(n, gast.Name) and isinstance(n.ctx, (gast.Store, gast.Param))}
        self.env = {p: Var(p) for p in self.params}
        self.defined = set(self.params)
        self.ops = []
        self.globals = {}
        self.counter = 0
        self.node = fn
        self.reads = {}      # (container, constant key) -> the value read, reused
        self.owned = set()   # values made here (np.zeros_like, np.copy, []): may be updated
        self.view_of = {}    # a value that may be a view (or an alias) -> the value it views
        self.callers = []    # the environments of the calls being inlined, outermost first
        self.internal = set()  # names the normalizer made up (a conditional expression's)
        self.updated = set()  # values updated in place (in the loop being read)
        self.list_levels = {}  # name of a list literal -> the loop level it was made at
        self.maybe_unbound = set()  # first assigned in a branch: no value on other paths
        self.levels = [self.ops]               # op lists: the function's, then each loop's
        self.files = {source.filename: source}
        self.scopes = [self.scope]
        self.inlining = [source.func]          # the call chain of inlined helpers
        self.own_names = set(self.taken)       # names of the function being read
        self.defs = [set(self.params)]         # names defined at each level
        self.outer_reads = []                  # reads memo of the enclosing levels

    # -- names --------------------------------------------------------------------------
    def fresh(self, base):
        if base not in self.taken:
            self.taken.add(base)
            return base
        i = 1
        while f"{base}_{i}" in self.taken:
            i += 1
        self.taken.add(f"{base}_{i}")
        return f"{base}_{i}"

    def temp(self):
        while True:
            self.counter += 1
            name = f"t{self.counter}"
            if name not in self.taken:
                self.taken.add(name)
                return name

    def new_def(self, user_name):
        if user_name in self.defined or (user_name in self.taken and user_name not in self.own_names):
            return self.fresh(user_name)
        self.defined.add(user_name)
        self.taken.add(user_name)
        return user_name

    # -- statements ---------------------------------------------------------------------
    def run(self):
        body = self.src.node.body
        if body and isinstance(body[0], gast.Expr):
            body = body[1:]
        result, last = self.function_body(body, RESULT_NAME)
        return_line = self.src.line(last)
        lines = {(self.src.filename, return_line): self.src.text(return_line)}
        for stmt in list(ir.walk_ops(self.ops)) + list(ir.walk_loops(self.ops)):
            lines[(stmt.file, stmt.line)] = self.files[stmt.file].text(stmt.line)
        return ir.Program(
            name=self.src.func.__name__, params=self.params, body=self.ops, result=result,
            filename=self.src.filename, def_line=self.src.line(self.src.node),
            source_lines=lines, env=self.globals, return_line=return_line), Scopes(self.scopes)

    def function_body(self, body, target):
        """Normalize a function's statements; (the returned atom, the last statement).

        Early returns inside branches are moved to the end of the function: the rest of
        the function goes into the other branch, and every `return v` assigns v to one
        result value."""
        if any(_returns_in_loop(s) for s in body):
            flag, value = self.fresh("returned"), self.fresh("returned_value")
            self.locals.update((flag, value))
            body = lift_returns(body, flag, value)
        body = restructure(body)
        if isinstance(body[-1], gast.Return):
            for stmt in body[:-1]:
                self.statement(stmt)
            self.node = body[-1]
            return self.expr(body[-1].value, target), body[-1]
        result = self.fresh(target or "result")
        self.locals.add(result)
        for stmt in assign_returns(body, result):
            self.statement(stmt)
        return self.env[result], body[-1]

    def statement(self, stmt):
        self.node = stmt
        if isinstance(stmt, gast.Delete):  # the name has no value any more (reads fail)
            for target in stmt.targets:
                self.env.pop(target.id, None)
            return
        if isinstance(stmt, gast.Assign):
            for target in stmt.targets:
                self.assign(target, stmt.value)
        elif isinstance(stmt, gast.AnnAssign):
            self.assign(stmt.target, stmt.value)
        elif isinstance(stmt, gast.AugAssign) and isinstance(stmt.target, gast.Subscript) \
                and isinstance(stmt.op, (gast.Add, gast.Sub)):
            value = self.expr(stmt.value)
            if isinstance(stmt.op, gast.Sub):
                value = self.emit(np.negative, (value,), node=stmt)
            self.item_update(runtime.index_add, stmt.target, value)
        elif isinstance(stmt, gast.AugAssign) and isinstance(stmt.target, gast.Subscript):
            # x[i] *= v (or /=, **=, ...) is x[i] = x[i] * v: the items read, then replaced
            load = gast.Subscript(value=stmt.target.value, slice=stmt.target.slice,
                                  ctx=gast.Load())
            value = gast.BinOp(left=gast.copy_location(load, stmt.target), op=stmt.op,
                               right=stmt.value)
            self.item_update(runtime.index_set, stmt.target,
                             self.expr(gast.copy_location(value, stmt)))
        elif isinstance(stmt, gast.Expr):  # np.add.at(x, i, v) or stack.append(v)
            call = stmt.value
            args = [self.expr(a) for a in call.args]
            if isinstance(call.func, gast.Name):  # unrecorded(): a guard in generated code
                self.ops.append(Op("_", UNRECORDED, (), {}, self.src.line(stmt), 0,
                                   file=self.src.filename))
            elif call.func.attr == "append":
                self.append(call.func.value, args)
            elif canonical(self.resolve(call.func)) is ADD_AT:
                self.update(ADD_AT, call.args[0], args[1:])
            else:
                raise self.error(call, "only np.add.at and list.append calls may stand alone")
        elif isinstance(stmt, gast.AugAssign):
            if stmt.target.id in self.env:
                op = _AUG_TEXT.get(type(stmt.op), "op")
                self.check_unshared(stmt.target.id, stmt, f"`{stmt.target.id} {op}= ...`",
                                    f"`{{name}} = {{name}} {op} ...` makes a new array and "
                                    "leaves `{other}` as it is; if `{other}` should change, "
                                    "update it instead")
            load = gast.Name(id=stmt.target.id, ctx=gast.Load(), annotation=None,
                             type_comment=None)
            value = gast.BinOp(left=load, op=stmt.op, right=stmt.value)
            gast.copy_location(value, stmt)
            self.assign(stmt.target, value)
        elif isinstance(stmt, (gast.For, gast.While)) and has_jump(stmt.body):
            for new in self.without_jumps(stmt):
                self.statement(new)
        elif isinstance(stmt, gast.For):
            self.loop(stmt)
        elif isinstance(stmt, gast.While):
            self.block(stmt.body, stmt, self.fresh("_while"), (), test=stmt.test)
        elif isinstance(stmt, gast.If):
            self.branch(stmt)
        elif isinstance(stmt, gast.FunctionDef):  # a closure: inlined where it is called
            self.locals.add(stmt.name)
            self.env[stmt.name] = LocalFunction(stmt, self.env, self.locals)

    def loop(self, node):
        """`for i in range(...)`: the body in single assignment, carried values renamed."""
        if not _is_range(node.iter):
            node = self.over_items(node)
        call, backwards = node.iter, False
        if isinstance(call, gast.Call) and isinstance(call.func, gast.Name) \
                and call.func.id == "reversed" and len(call.args) == 1 \
                and self.resolve(call.func) is builtins.reversed:
            call, backwards = call.args[0], True
        func = self.resolve(call.func) if isinstance(call, gast.Call) else None
        if func is not builtins.range or call.keywords or not 1 <= len(call.args) <= 3:
            raise self.error(node.iter, "only `for i in range(...)` loops are supported yet",
                             "loop over indices: for i in range(len(xs)): x = xs[i]")
        args = [self.expr(a) for a in call.args]
        if len(args) == 1:
            args = [Const(0)] + args
        if len(args) == 2:
            args = args + [Const(1)]
        place = (self.src.filename, self.src.line(node), node.col_offset)
        self.sites[place] = self.sites.get(place, -1) + 1
        site = place + (self.sites[place],)
        if site in self.unroll and not backwards:
            # The body picks items of a list or dict by the index: unrolled, each copy
            # reads its own item (the containers' structure is part of the specialisation).
            for value in self.unroll[site]:
                self.env[node.target.id] = Const(value)
                for stmt in node.body:
                    self.statement(stmt)
            return
        index = self.new_def(node.target.id)
        self.block(node.body, node, index, args, site=site, backwards=backwards)

    def over_items(self, node):
        """`for x in xs`, `for a, b in zip(xs, ys)`, `for i, x in enumerate(xs)`: a loop
        over `range(len(...))` whose body first picks the items (xs is evaluated once)."""
        def name(id_, store=False):
            return gast.Name(id=id_, ctx=gast.Store() if store else gast.Load(),
                             annotation=None, type_comment=None)

        def held(expr):  # evaluate an iterable once, before the loop
            key = self.fresh("items")
            self.locals.add(key)
            self.env[key] = self.expr(expr)
            return key

        index = self.fresh("i")
        self.locals.add(index)

        def element(it):
            """(the item at `index`, the number of items) of an iterable."""
            func = self.resolve(it.func) if isinstance(it, gast.Call) and \
                isinstance(it.func, gast.Name) and it.func.id in ("zip", "enumerate") else None
            if func is builtins.zip:
                parts = [element(a) for a in it.args]
                counts = [c for _, c in parts]
                count = counts[0] if len(counts) == 1 else gast.Call(func=name("min"),
                                                                     args=counts, keywords=[])
                return gast.Tuple(elts=[e for e, _ in parts], ctx=gast.Load()), count
            if func is builtins.enumerate:
                item, count = element(it.args[0])
                return gast.Tuple(elts=[name(index), item], ctx=gast.Load()), count
            seq = held(it)
            return (gast.Subscript(value=name(seq), slice=name(index), ctx=gast.Load()),
                    gast.Call(func=name("len"), args=[name(seq)], keywords=[]))

        item, count = element(node.iter)
        pick = gast.Assign(targets=[node.target], value=item, type_comment=None)
        loop = gast.For(target=name(index, store=True),
                        iter=gast.Call(func=name("range"), args=[count], keywords=[]),
                        body=[pick] + node.body, orelse=[], type_comment=None)
        for new in gast.walk(loop):
            gast.copy_location(new, node)
        return loop

    def branch(self, node):
        """`if test: ... else: ...` as two blocks that run at most once: `if test:` and
        `if not test:`, with the loop's machinery for values they reassign."""
        test = self.expr(node.test)
        place = (self.src.filename, self.src.line(node), node.col_offset, "if")
        self.sites[place] = self.sites.get(place, -1) + 1
        site = place + (self.sites[place],)
        if site in self.unroll:
            # A condition fixed by the specialisation (shapes, int and str arguments):
            # only the branch taken is read.
            for stmt in node.body if self.unroll[site] else node.orelse:
                self.statement(stmt)
            return
        self.block(node.body, node, self.fresh("_then"), (), condition=test, site=site)
        if node.orelse:
            # A value first assigned in the `if` branch has no value when the else branch
            # runs: the else branch assigns the same name, it does not copy it first.
            self.block(node.orelse, node, self.fresh("_else"), (), condition=test, negate=True,
                       site=site)

    def without_jumps(self, node):
        """A loop with `break` / `continue` on flags: `break` clears `go`, `continue` sets
        `skip`, and what follows them in the body is guarded by both."""
        def name(id_, store=False):
            return gast.Name(id=id_, ctx=gast.Store() if store else gast.Load(),
                             annotation=None, type_comment=None)

        def let(id_, value):
            return gast.Assign(targets=[name(id_, store=True)], value=value, type_comment=None)
        if isinstance(node, gast.For) and not _is_range(node.iter):
            node = self.over_items(node)
        go, skip = self.fresh("go"), self.fresh("skip")
        self.locals.update((go, skip))
        body = [let(skip, gast.Constant(value=False, kind=None))] + \
            _guarded(node.body, go, skip)
        before = [let(go, gast.Constant(value=True, kind=None))]
        if isinstance(node, gast.For):
            # A for loop keeps its range (so it can still be unrolled); after a break its
            # remaining iterations do nothing.
            loop = gast.For(target=node.target, iter=node.iter,
                            body=[gast.If(test=name(go), body=body, orelse=[])], orelse=[],
                            type_comment=None)
        else:
            loop = gast.While(test=name(go), body=[gast.If(test=node.test, body=body, orelse=[
                let(go, gast.Constant(value=False, kind=None))])], orelse=[])
        out = before + [loop]
        for stmt in out:
            for new in gast.walk(stmt):
                gast.copy_location(new, node)
        return out

    def block(self, stmts, node, index, args, site=None, backwards=False, condition=None,
              negate=False, test=None):
        """A loop body (or a branch): single assignment inside, carried values renamed."""
        target = getattr(node, "target", None)
        loop_var = target.id if isinstance(target, gast.Name) else None
        assigned = {n.id for stmt in stmts for n in gast.walk(stmt)
                    if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store)}
        assigned |= {n.value.id for stmt in stmts for n in gast.walk(stmt)  # x[i] = v
                     if isinstance(n, gast.Subscript) and isinstance(n.ctx, gast.Store)
                     and isinstance(n.value, gast.Name)}
        entry = {}
        for name in sorted(assigned):
            if name in self.env and name != loop_var:
                atom = self.env[name]
                entry[name] = atom.name if isinstance(atom, Var) and atom.name in self.maybe_unbound \
                    else self.carried_name(name, node)
        if loop_var is not None:
            self.env[loop_var] = Var(index)
        outer, self.ops = self.ops, []
        outer_reads, self.reads = self.reads, {}
        # A carried array the function made itself stays its own in the body (the generated
        # adjoint scatters into accumulators it carries), if every iteration leaves one too.
        owned_entry = {n for n in entry.values() if Var(n) in self.owned}
        updated, self.updated = self.updated, set()
        # carried values change inside the loop (and arrays updated in place, under their
        # names before the loop too)
        changing = {Var(n) for n in entry.values()} | {
            op.args[0] for op in self.ops[-len(entry):] if op.prim is COPY
            and op.target in owned_entry} if entry else set()
        for reads in [outer_reads] + self.outer_reads:
            for key in [k for k in reads if _mentions(k, changing)]:
                del reads[key]
        self.outer_reads.append(outer_reads)
        self.levels.append(self.ops)
        self.defs.append({index} | set(entry.values()))
        test_ops, test_atom = [], None
        if test is not None:  # a while loop: its test runs at the start of every iteration
            self.ops = self.levels[-1] = test_ops
            test_atom = self.expr(test)
            self.ops = self.levels[-1] = []
        for stmt in stmts:
            self.statement(stmt)
        self.levels.pop()
        self.defs.pop()
        self.outer_reads.pop()
        # Each carried value gets its iteration's last value back under its own name.
        for name, loop_name in entry.items():
            last = self.env[name]
            if last != Var(loop_name) and last not in self.owned and loop_name in owned_entry:
                if Var(loop_name) in self.updated:
                    raise self.error(node, f"`{name}` is updated in place in this loop but an "
                                           "iteration leaves it a view or another value",
                                     f"end the iteration with {name} = np.copy(...)")
                self.owned.discard(Var(loop_name))
            if self.env[name] != Var(loop_name):
                self.ops.append(Op(loop_name, COPY, (self.env[name],), {}, self.src.line(node),
                                   node.col_offset + self.src.col_offset, file=self.src.filename))
            self.env[name] = Var(loop_name)
        # Names first assigned in the body keep the last iteration's value after it.
        carried = list(entry.values())
        exported = sorted({self.env[n].name for n in assigned  # (two names, one value: once)
                           if n not in entry and n != loop_var and isinstance(self.env.get(n), Var)})
        self.updated |= updated
        body, self.ops = self.ops, outer
        self.reads = outer_reads
        changing = {Var(n) for n in carried + exported}
        for key in [k for k in self.reads if _mentions(k, changing)]:
            del self.reads[key]
        if condition is not None:
            # Assigned only when the branch runs: another branch assigns the same name
            # rather than copying it first (it may have no value).
            self.maybe_unbound.update(exported)
        self.ops.append(ir.Loop(index, tuple(args), body, carried, self.src.line(node),
                                node.col_offset + self.src.col_offset, exported,
                                file=self.src.filename, site=site, reverse=backwards,
                                condition=condition, negate=negate, test=test_atom,
                                test_body=test_ops,
                                counter=self.fresh("iterations") if test is not None else None))

    def append(self, target, args):
        """xs.append(v): a known list grows by an item; one appended to inside a loop
        becomes a stack (a real list in the generated code)."""
        if isinstance(target, gast.Name) and isinstance(self.env.get(target.id), Seq) \
                and self.env[target.id].kind == "list":
            level = self.list_levels.get(target.id, 0)
            items = self.env[target.id].items
            if level == len(self.levels) - 1:
                self.env[target.id] = Seq(items + tuple(args), "list")
                return
            current, self.ops = self.ops, self.levels[level]
            stack = self.emit(NEWLIST, (), target=target.id, node=target)
            self.defs[level].add(stack.name)
            for item in items:
                self.ops.append(Op(stack.name, APPEND, (stack, item), {}, self.src.line(target),
                                   0, file=self.src.filename))
            self.ops = current
            self.env[target.id] = stack
        self.update(APPEND, target, args)

    def update(self, prim, target, args):
        """An in-place update of a local array or list: the op's target is that value."""
        if not isinstance(target, gast.Name) or target.id not in self.locals \
                or self.env.get(target.id) not in self.owned:
            raise self.error(target, "in-place updates are supported only on arrays and lists "
                                     "the function computed itself (not on arguments or views)",
                             "copy the array first (y = np.copy(x)), or build the new array "
                             "functionally with np.where or np.concatenate")
        var = self.env[target.id]
        self.updated.add(var)
        self.ops.append(Op(var.name, prim, (var, *args), {}, self.src.line(self.node),
                           self.node.col_offset + self.src.col_offset, file=self.src.filename))
        # its value changed: nothing computed from it, nor the computation that made it,
        # can be reused
        for key in [k for k, v in self.reads.items() if v == var or _mentions(k, {var})]:
            del self.reads[key]

    def carried_name(self, name, node):
        """A name of its own for a value carried by a loop or a branch: always a new one, so
        that the loop's updates never overwrite a value that code outside it reads (the
        backward sweep of that code reads it after the loop has run backwards)."""
        atom = self.env[name]
        target = self.new_def(name)
        self.ops.append(Op(target, COPY, (atom,), {}, self.src.line(node),
                           node.col_offset + self.src.col_offset, file=self.src.filename))
        if atom in self.owned:   # the copy is an alias: the same array
            self.owned.add(Var(target))
        self.env[name] = Var(target)
        return target

    def item_update(self, func, target, value):
        """x[i] = v and x[i] += v as x = index_set(x, i, v) / index_add(x, i, v): a new
        value, so the overwritten items stay available to the backward sweep (and the
        caller's array is never changed)."""
        name = target.value.id
        atom = self.env.get(name)
        if name not in self.locals or not isinstance(atom, Var):
            raise self.error(target, f"`{name}` is not a local array", "copy it first: y = np.copy(x)")
        self.check_unshared(name, target, f"assigning into `{name}`",
                            "if `{other}` should change, assign into it; if not, copy "
                            "first: {name} = np.copy({name})")
        index = self.index_atom(target.slice)
        self.env[name] = self.emit(func, (atom, index, value), target=name, node=target)

    def _base(self, atom):
        while atom in self.view_of:
            atom = self.view_of[atom]
        return atom

    def check_unshared(self, name, node, what, instead):
        """In NumPy, updating an array in place changes every name that refers to it and
        every view of it (and the array a view looks into). s2s_ad writes the update as a
        new value bound to `name` only, so another name sharing that memory would keep the
        old values: refused. (Code s2s_ad generated, which hvp reads, updates an array in
        place only where no other name reads it later: inplace.py proves it.)"""
        if self.src.filename.startswith(GENERATED):
            return
        base = self._base(self.env[name])
        names = [(n, a) for env in self.callers for n, a in env.items()]   # a helper's caller's
        for other, atom in names + [(n, a) for n, a in self.env.items() if n != name]:
            if isinstance(atom, Var) and self._base(atom) == base and other not in self.internal:
                shared = ("refers to the same array" if atom == self.env[name] else
                          "may share its memory (slicing, reshape and transposes make views)")
                raise self.error(node, f"{what} would change `{other}` too in NumPy: it "
                                       f"{shared}, and s2s_ad does not follow updates through "
                                       "shared memory", instead.format(name=name, other=other))

    def assign(self, target, value):
        if isinstance(target, gast.Subscript):
            self.item_update(runtime.index_set, target, self.expr(value))
            return
        if isinstance(target, gast.Name):
            self.env[target.id] = self.expr(value, target.id)
            return
        # Tuple unpacking: a literal on the right pairs up; anything else is indexed.
        names = target.elts
        if isinstance(value, (gast.Tuple, gast.List)) and len(value.elts) == len(names):
            atoms = [self.expr(v, t.id if isinstance(t, gast.Name) else None)
                     for t, v in zip(names, value.elts)]
            for t, atom in zip(names, atoms):
                self.bind_target(t, atom)
            return
        whole = self.expr(value)
        for i, t in enumerate(names):
            self.bind_target(t, self.index(whole, Const(i), t.id if isinstance(t, gast.Name) else None))

    def bind_target(self, target, atom):
        if isinstance(target, gast.Name):
            self.env[target.id] = atom
        else:
            for i, t in enumerate(target.elts):
                self.bind_target(t, self.index(atom, Const(i), t.id if isinstance(t, gast.Name) else None))

    # -- expressions --------------------------------------------------------------------
    def level_of(self, name):
        for level in range(len(self.defs) - 1, -1, -1):
            if name in self.defs[level]:
                return level
        return 0

    def emit(self, prim, args, kwargs=None, target=None, node=None):
        key = ("op", prim, tuple(args), tuple(sorted((kwargs or {}).items())))
        try:
            if prim in EFFECTS or prim in OWNERS:  # each call is a new value, or an update
                key = None
            elif key in self.reads:  # the same computation on the same values: reuse it
                return self.reads[key]
        except TypeError:
            key = None
        name = self.new_def(target) if target else self.temp()
        self.taken.add(name)
        if prim not in VIEWS:  # a new array, not a view of an argument: may be updated
            self.owned.add(Var(name))
        elif args and isinstance(args[0], Var) and not (
                prim is ASTYPE and (kwargs or {}).get("copy", Const(True)) != Const(False)):
            self.view_of[Var(name)] = args[0]   # (astype copies unless told not to)
        if self.ops is self.levels[-1]:
            self.defs[-1].add(name)
        if key is not None and self.ops is self.levels[-1]:
            self.reads[key] = Var(name)
        node = node or self.node
        self.ops.append(Op(name, prim, tuple(args), dict(kwargs or {}), self.src.line(node),
                           getattr(node, "col_offset", 0) + self.src.col_offset,
                           file=self.src.filename))
        return Var(name)

    def error(self, node, what, advice=None):
        return self.src.error(node, what, advice)

    def expr(self, node, target=None):
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            raise self.error(node, f"`{type(node).__name__}` is not supported here",
                             "rewrite it with NumPy calls")
        return method(node, target)

    def expr_Name(self, node, target):
        if node.id in self.locals:
            if node.id not in self.env:
                raise self.error(node, f"`{node.id}` is used before it is assigned")
            return self.env[node.id]
        return self.value_of(node, self.resolve(node))

    def expr_Constant(self, node, target):
        return Const(node.value)

    def expr_Tuple(self, node, target):
        return Seq(tuple(self.expr(e) for e in node.elts), "tuple")

    def expr_List(self, node, target):
        if not node.elts and target is not None:
            # A list to append to: known item by item while appends are in straight-line
            # code (or unrolled loops); a stack if a loop appends to it (see `append`).
            self.list_levels[target] = len(self.levels) - 1
        return Seq(tuple(self.expr(e) for e in node.elts), "list")

    def expr_Dict(self, node, target):
        return Seq(tuple(self.expr(v) for v in node.values), "dict",
                   tuple(k.value for k in node.keys))

    def expr_BinOp(self, node, target):
        left, right = self.expr(node.left), self.expr(node.right)
        if _number(left) and _number(right) and not isinstance(node.op, gast.Div):
            try:  # 2 * 3 is 6; but 2.0 / 12 stays as written, it reads better
                return Const(BINOPS[type(node.op)](left.value, right.value).item())
            except (ArithmeticError, ValueError, AttributeError):
                pass
        return self.emit(BINOPS[type(node.op)], (left, right), target=target, node=node)

    def expr_ListComp(self, node, target):
        """[e for x in xs if c]: a loop appending to a new list (unrolled when its items
        are used); the comprehension's variables do not leak out."""
        result = self.fresh(target or "items")
        self.locals.add(result)
        targets = {n.id for gen in node.generators for n in gast.walk(gen.target)
                   if isinstance(n, gast.Name)}
        saved = {n: self.env[n] for n in targets if n in self.env}
        self.locals.update(targets)

        def name(id_, store=False):
            return gast.Name(id=id_, ctx=gast.Store() if store else gast.Load(),
                             annotation=None, type_comment=None)
        body = [gast.Expr(value=gast.Call(func=gast.Attribute(value=name(result), attr="append",
                                                             ctx=gast.Load()),
                                          args=[node.elt], keywords=[]))]
        for gen in reversed(node.generators):
            for cond in reversed(gen.ifs):
                body = [gast.If(test=cond, body=body, orelse=[])]
            body = [gast.For(target=gen.target, iter=gen.iter, body=body, orelse=[],
                             type_comment=None)]
        start = gast.Assign(targets=[name(result, store=True)], value=gast.List(elts=[], ctx=gast.Load()),
                            type_comment=None)
        for stmt in [start] + body:
            for new in gast.walk(stmt):
                gast.copy_location(new, node)
            self.statement(stmt)
        for n in targets:
            if n in saved:
                self.env[n] = saved[n]
            else:
                self.env.pop(n, None)
        return self.env[result]

    def expr_Lambda(self, node, target):
        return LocalFunction(node, self.env, self.locals)

    def expr_IfExp(self, node, target):
        """`a if c else b`: an if statement assigning one value (only one side runs)."""
        result = self.fresh(target or "t")
        self.locals.add(result)
        self.internal.add(result)   # (the caller binds the value to the user's name, if any)
        store = lambda: gast.Name(id=result, ctx=gast.Store(), annotation=None, type_comment=None)
        branch = gast.If(test=node.test,
                         body=[gast.Assign(targets=[store()], value=node.body, type_comment=None)],
                         orelse=[gast.Assign(targets=[store()], value=node.orelse,
                                             type_comment=None)])
        for new in gast.walk(branch):
            gast.copy_location(new, node)
        self.branch(branch)
        return self.env[result]

    def expr_BoolOp(self, node, target):
        """`a and b`, `a or b` on conditions: np.logical_and / np.logical_or (both sides
        are evaluated: conditions here have no side effects)."""
        prim = np.logical_and if isinstance(node.op, gast.And) else np.logical_or
        atom = self.expr(node.values[0])
        for value in node.values[1:]:
            atom = self.emit(prim, (atom, self.expr(value)), node=node)
        return atom

    def expr_Compare(self, node, target):
        left, right = self.expr(node.left), self.expr(node.comparators[0])
        return self.emit(COMPARES[type(node.ops[0])], (left, right), target=target, node=node)

    def expr_UnaryOp(self, node, target):
        operand = self.expr(node.operand)
        if isinstance(node.op, gast.UAdd):
            return operand
        if isinstance(node.op, gast.USub) and isinstance(operand, Const) \
                and isinstance(operand.value, (int, float)):
            return Const(-operand.value)
        if type(node.op) not in UNARY:
            raise self.error(node, "`~` is not supported", "use np.logical_not")
        return self.emit(UNARY[type(node.op)], (operand,), target=target, node=node)

    def expr_Subscript(self, node, target):
        value = self.expr(node.value)
        return self.index(value, self.index_atom(node.slice), target, node)

    def index(self, value, idx, target=None, node=None):
        if isinstance(value, Seq) and isinstance(idx, Const):
            if value.kind == "dict" and idx.value in value.keys:
                return value.items[value.keys.index(idx.value)]
            if value.kind != "dict" and isinstance(idx.value, int):
                return value.items[idx.value]
        if isinstance(idx, Const) and _hashable(idx.value):
            for reads in [self.reads] + self.outer_reads[::-1]:
                if (value, idx.value) in reads:
                    return reads[(value, idx.value)]  # p["layers"] read again: the same value
        if isinstance(idx, Const) and isinstance(value, Var) and _hashable(idx.value):
            # Values are never mutated (item assignment is refused), so reads can be shared,
            # and a read of a value from outside a loop is made once, before the loop.
            level = self.level_of(value.name)
            current, self.ops = self.ops, self.levels[level]
            var = self.emit(INDEX, (value, idx), target=target or (
                self.fresh_key_name(idx.value) if isinstance(idx.value, str)
                and idx.value.isidentifier() else None), node=node)
            self.ops = current
            self.defs[level].add(var.name)
            if level == len(self.levels) - 1:
                self.reads[(value, idx.value)] = var
            else:
                self.outer_reads[level][(value, idx.value)] = var
            return var
        if target is None and isinstance(idx, Const) and isinstance(idx.value, str) \
                and idx.value.isidentifier():
            # params["W1"] is called W1 in generated code (its adjoint W1_bar).
            return self.emit(INDEX, (value, idx), target=self.fresh_key_name(idx.value), node=node)
        return self.emit(INDEX, (value, idx), target=target, node=node)

    def fresh_key_name(self, key):
        return key if key not in self.taken else None

    def index_atom(self, node):
        if isinstance(node, gast.Slice):
            return Slice(*(None if p is None else self.expr(p)
                           for p in (node.lower, node.upper, node.step)))
        if isinstance(node, gast.Tuple):
            return Seq(tuple(self.index_atom(e) for e in node.elts), "tuple")
        return self.expr(node)

    def expr_Attribute(self, node, target):
        root = node
        while isinstance(root, gast.Attribute):
            root = root.value
        if isinstance(root, gast.Name) and root.id not in self.locals:
            return self.value_of(node, self.resolve(node))
        value = self.expr(node.value)
        if node.attr == "T":
            return self.emit(TRANSPOSE_T, (value,), target=target, node=node)
        if node.attr in ATTRIBUTES:
            return self.emit(ATTRIBUTE, (value, Const(node.attr)), target=target, node=node)
        raise self.error(node, f"the attribute `.{node.attr}` is not supported",
                         "use .T, .shape, .ndim, .size, .dtype or a NumPy function")

    def expr_Call(self, node, target):
        func = node.func
        args = [self.expr(a) for a in node.args]
        kwargs = {kw.arg: self.expr(kw.value) for kw in node.keywords}
        if isinstance(func, gast.Name) and func.id in self.locals \
                and isinstance(self.env.get(func.id), LocalFunction):
            return self.inline_local(self.env[func.id], args, kwargs, target, node)
        if isinstance(func, gast.Attribute) and not self.is_global_chain(func):
            receiver = self.expr(func.value)
            if func.attr == "pop" and not args:
                if isinstance(receiver, Seq) and isinstance(func.value, gast.Name):
                    self.env[func.value.id] = Seq(receiver.items[:-1], receiver.kind)
                    return receiver.items[-1]
                return self.emit(POP, [receiver], target=target, node=node)
            prim = METHODS.get(func.attr)
            if prim is None:
                raise self.error(func, f"the method `.{func.attr}()` is not supported",
                                 f"call the NumPy function instead, e.g. np.{func.attr}(x, ...)")
            if func.attr in VARARG_METHODS and len(args) > 1:
                args = [Seq(tuple(args), "tuple")]
            self.check_arguments(prim, [receiver] + args, kwargs, node)
            return self.emit(prim, [receiver] + args, kwargs, target, node)
        obj = self.resolve(func)
        prim = canonical(obj)
        rule = registry.lookup(prim)
        if rule is None and isinstance(obj, types.FunctionType):
            return self.inline(obj, args, kwargs, target, node)
        if rule is None:
            raise self.no_rule(func, obj)
        self.check_arguments(prim, args, kwargs, node)
        if args and isinstance(args[0], Seq) and args[0].kind == "list" and not rule.nondiff \
                and rule.params and rule.params[0][0] in ARRAY_PARAMS \
                and any(isinstance(a, Var) for a in args[0].items):
            # np.sum([a, b]): NumPy makes one array of the list first.
            args = [self.emit(np.stack, (args[0],), node=node)] + list(args[1:])
        var = self.emit(prim, args, kwargs, target, node)
        made = isinstance(var, Var) and bool(self.ops) and isinstance(self.ops[-1], Op) \
            and self.ops[-1].target == var.name
        if spell(prim) is None and not isinstance(prim, Special) and made:
            # A user's primitive: generated code calls it by the user's own spelling. (Not
            # when `emit` reused an earlier call's value: the last op is another's.)
            self.ops[-1].callee = ast_text(func)
            root = func
            while isinstance(root, gast.Attribute):
                root = root.value
            self.globals[root.id] = self.scope.used[root.id]
        return var

    def check_arguments(self, prim, args, kwargs, node):
        """A call its rule cannot take (np.sum(x, where=m)): refused here, once, for every
        transformation (forward mode would otherwise meet it without a location)."""
        rule = registry.lookup(prim)
        if rule is None or rule.nondiff:
            return
        try:
            rule.bind(list(args), dict(kwargs or {}))
        except TypeError as exc:
            raise self.error(node, str(exc), getattr(exc, "advice", None)) from None

    def inline(self, func, args, kwargs, target, node):
        """A call to the user's own function: its body, normalized here, in place.

        Inlining (rather than a separate adjoint per callee) keeps every value in one
        function, so the adjoint reuses what the callee computed, shapes are specialised
        per call site, and the generated code reads top to bottom; its comments point at
        the callee's lines."""
        if func in self.inlining:
            raise self.error(node, f"`{func.__name__}` calls itself (recursion), which is not "
                                   "supported", "write the recursion as a loop")
        src = parse.read(func)
        fence.check(src)
        try:
            bound = inspect.signature(func).bind(*args, **kwargs)
        except TypeError as exc:
            raise self.error(node, f"this call to `{func.__name__}` does not match its "
                                   f"parameters: {exc}") from None
        bound.apply_defaults()
        saved = (self.src, self.scope, self.locals, self.env, self.node, self.own_names, self.reads)
        self.src, self.scope = src, Scope(func)
        self.files[src.filename] = src
        self.scopes.append(self.scope)
        self.inlining.append(func)
        fn = src.node
        self.locals = {n.id for n in gast.walk(fn)
                       if isinstance(n, gast.Name) and isinstance(n.ctx, (gast.Store, gast.Param))}
        self.own_names = set()
        self.env = {name: value if isinstance(value, (Var, Const, Global, Seq)) else
                    self.constant(name, value) for name, value in bound.arguments.items()}
        self.reads = {}
        self.callers.append(saved[3])
        try:
            result = self.callee_body(fn, target)
        finally:
            self.inlining.pop()
            self.callers.pop()
            (self.src, self.scope, self.locals, self.env, self.node, self.own_names,
             self.reads) = saved
        return result

    def callee_body(self, fn, target):
        """The value a def (its docstring skipped) or a lambda returns, normalized here."""
        if isinstance(fn, gast.Lambda):
            return self.expr(fn.body, target)
        body = fn.body
        if body and isinstance(body[0], gast.Expr) and isinstance(body[0].value, gast.Constant):
            body = body[1:]
        return self.function_body(body, target)[0]

    def inline_local(self, local, args, kwargs, target, node):
        """A call to a nested def or a lambda: inlined like a helper; its free names are
        the enclosing function's values at the time of the call (Python's late binding)."""
        fn = local.node
        if id(fn) in self.inlining:
            raise self.error(node, "a nested function calls itself (recursion), which is not "
                                   "supported", "write the recursion as a loop")
        params = [a.id for a in fn.args.args]
        if len(args) > len(params) or any(k not in params for k in kwargs):
            raise self.error(node, "this call does not match the nested function's parameters")
        bound = dict(zip(params, args))
        bound.update(kwargs)
        defaults = fn.args.defaults
        for name, default in zip(params[len(params) - len(defaults):], defaults):
            if name not in bound:
                bound[name] = self.expr(default)
        missing = [p for p in params if p not in bound]
        if missing:
            raise self.error(node, f"missing argument(s) {', '.join(missing)} in this call")
        saved = (self.locals, self.env, self.own_names, self.reads)
        self.env = {**local.env, **bound}
        self.locals = set(local.locals) | set(params) | {
            n.id for n in gast.walk(fn) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store)}
        self.own_names = set()
        self.reads = {}
        self.inlining.append(id(fn))
        self.callers.append(saved[1])
        try:
            result = self.callee_body(fn, target)
        finally:
            self.inlining.pop()
            self.callers.pop()
            self.locals, self.env, self.own_names, self.reads = saved
        return result

    def constant(self, name, value):
        """A default argument value as an atom."""
        if isinstance(value, (bool, int, float, complex, str)) or value is None:
            return Const(value)
        key = self.fresh(f"{name}_default")
        self.globals[key] = value
        return Global(key)

    def no_rule(self, node, obj):
        label = spell(obj) or getattr(obj, "__qualname__", repr(obj))
        if callable(obj) and getattr(obj, "__module__", "").split(".")[0] not in ("numpy", "builtins", "math"):
            return self.error(node, f"calls to your own function `{label}` are not supported yet",
                              "inline its body here, or register a derivative rule for it "
                              "with s2s_ad.defrule")
        return self.error(node, f"s2s_ad has no derivative rule for `{label}`",
                          "express it with supported NumPy functions, or register a rule "
                          "with s2s_ad.defrule")

    # -- resolution ---------------------------------------------------------------------
    def is_global_chain(self, node):
        while isinstance(node, gast.Attribute):
            node = node.value
        return isinstance(node, gast.Name) and node.id not in self.locals

    def resolve(self, node):
        if isinstance(node, gast.Name):
            try:
                return self.scope.lookup(node.id)
            except KeyError:
                raise self.error(node, f"the name `{node.id}` is not defined",
                                 "define it at module level or pass it in as an argument") from None
        if isinstance(node, gast.Attribute):
            base = self.resolve(node.value)
            try:
                return getattr(base, node.attr)
            except AttributeError:
                raise self.error(node, f"`{node.attr}` is not an attribute of {base!r}") from None
        raise self.error(node, "only names and module attributes can be called",
                         "call a NumPy function or a method of an array")

    def value_of(self, node, obj):
        """A global used as a value: literals inline, NumPy names spelled, arrays by name."""
        if isinstance(obj, (bool, int, float, complex, str)) or obj is None:
            if isinstance(node, gast.Name):
                return self.global_name(node.id, obj)
            base = self.resolve(node.value)
            if not is_module(base):   # (cfg.scale may change; np.pi will not)
                self.scope.attribute(base, node.attr, obj)
            return Const(obj)
        if spell(obj) is not None and not isinstance(obj, np.ndarray):
            return Const(obj)
        if is_module(obj) or callable(obj):
            raise self.error(node, f"`{gast.dump(node) if not isinstance(node, gast.Name) else node.id}` "
                                   "is a function or module used as a value",
                             "call it, or pass values instead")
        if isinstance(node, gast.Name):
            return self.global_name(node.id, obj)
        raise self.error(node, "attributes of global objects are not supported as values",
                         "pass the value in as an argument")


    def global_name(self, name, obj):
        """A module-level value by its name (renamed if a helper's module has another)."""
        key = name
        while key in self.globals and self.globals[key] is not obj:
            key = self.fresh(f"{name}_")
        self.globals[key] = obj
        self.taken.add(key)
        return Global(key)


def normalize(source, unroll=None):
    """(Program, Scope) for a fenced Source. `unroll` maps loop sites to the index values to
    unroll them with, and branch sites to the branch a fixed condition takes."""
    program, scopes = Normalizer(source, unroll).run()
    return fuse(program), scopes
