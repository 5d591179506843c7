"""Elementwise loops walked back in one step.

When a loop carries one array `x` and each iteration maps it elementwise to its next value
(`x = np.sin(x) * 0.9 + 0.1 * np.cos(x) * x`), the Jacobian of an iteration is diagonal:
`dx_new / dx_old` is an array `d` of x's shape, and the backward loop only multiplies the
adjoint by each iteration's `d`. So the forward loop pushes x alone, and after it the
backward sweep recomputes the body on all iterations at once (a stack of x's, one row per
iteration: elementwise code broadcasts over it), takes the local derivatives from the rule
table's partials, and multiplies their product into the adjoint:

    xs = np.stack(x_stack)      # one row per iteration
    ...                         # the body and its partials, on all rows at once
    x_bar = x_bar * np.prod(d, axis=0)

instead of a Python-level loop with one pop per kept value and a few small operations per
iteration. Anything else (another array the loop reads that carries a derivative, the loop
index, a rule without elementwise partials, broadcasting between the values that carry
derivatives, masks) keeps the general loop.
"""

from . import astb
from .emit import op_expr
from .ir import Const, Global, Op, Var
from .primitives import COPY
from .rules import lookup
from .rules.context import RuleContext
from .rules.registry import coefficient, instantiate, plus, times


def carried_elementwise(mode, loop):
    """The carried name when `loop` qualifies (see the module docstring), else None."""
    if loop.condition is not None or loop.test is not None or loop.reverse:
        return None
    start, stop, step = loop.range_args
    if not all(isinstance(a, Const) for a in (start, stop, step)) \
            or len(range(start.value, stop.value, step.value)) < 1:
        return None   # (np.stack needs one iteration at least)
    carried = [c for c in loop.carried if c in mode.active]
    if len(carried) != 1 or any(e in mode.active for e in loop.exported):
        return None
    name = carried[0]
    info = mode.infos[name]
    body = loop.body
    if not body or info.kind != "array" or info.shape is None or info.dtype.kind != "f":
        return None
    last = body[-1]
    if not (isinstance(last, Op) and last.prim is COPY and last.target == name):
        return None
    defined = {name}
    for op in body[:-1]:
        if not isinstance(op, Op) or op.target not in mode.active or op.kwargs:
            return None
        rule = lookup(op.prim)
        if rule is None or not rule.partials:
            return None
        for atom in op.args:
            if isinstance(atom, Var):
                if atom.name == loop.index:
                    return None
                if atom.name in mode.active and atom.name not in defined:
                    return None   # an outer value with a derivative: its adjoint accumulates
                if atom.name not in defined and mode.infos[atom.name].kind == "array" \
                        and len(mode.infos[atom.name].shape or ()) > len(info.shape):
                    return None
            elif not isinstance(atom, (Const, Global)):
                return None
        if mode.infos[op.target].shape != info.shape or mode.infos[op.target].dtype != info.dtype:
            return None
        for param, atom in rule.bind(op.args, op.kwargs).items():
            if isinstance(atom, Var) and atom.name in defined:
                text = _partial_text(mode, op, rule, param)
                if text is None or any(c in text for c in "<>=&|"):   # masks: bool partials
                    return None
        defined.add(op.target)
    if not isinstance(last.args[0], Var) or last.args[0].name not in defined - {name}:
        return None
    return name


def backward(mode, loop, name):
    """Statements that take the carried value's exit adjoint to its entry adjoint."""
    stack = astb.name(name + "_stack")
    rows = mode.fresh_name(name + "_rows")
    stmts = [astb.assign(rows, astb.call("np.stack", [stack]))]
    rename = {name: rows}
    dots = {name: None}   # None: the seed, a derivative of 1
    made = {}             # source text -> the name already holding it (cos(x) twice: once)

    def assign(base, expr):
        key = astb.unparse_key(expr)
        if key not in made:
            made[key] = mode.fresh_name(base)
            stmts.append(astb.assign(made[key], expr))
        return made[key]

    for op in loop.body[:-1]:
        rule = lookup(op.prim)
        rename[op.target] = assign(op.target + "_rows", _renamed(op_expr(op), rename))
        terms = []
        for param, atom in rule.bind(op.args, op.kwargs).items():
            if not (isinstance(atom, Var) and atom.name in dots):
                continue
            ctx = RuleContext(op, rule, rule.bind(op.args, op.kwargs), mode.infos, mode.p.env,
                              lambda o, w, a=None: mode.error(o, w, a), active_names=mode.active)
            mapping, _ = ctx.placeholders()
            partial = _renamed(instantiate(_partial_text(mode, op, rule, param), mapping), rename)
            seed = dots[atom.name]
            terms.append(partial if seed is None else times(seed, partial))
        total = plus(terms)
        if coefficient(total):      # a number (x + 1.0): no array for it
            dots[op.target] = total
            continue
        dots[op.target] = astb.name(assign(op.target + "_d", total))
    last = dots[loop.body[-1].args[0].name]
    if coefficient(last):          # every iteration multiplies by the same number
        last = astb.call("np.full_like", [astb.name(rows), last])
    product = astb.call("np.prod", [last], {"axis": astb.const(0)})
    return stmts, product


def _partial_text(mode, op, rule, param):
    partial = rule.partials.get(param)
    if partial is None:
        return None
    if callable(partial):
        ctx = RuleContext(op, rule, rule.bind(op.args, op.kwargs), mode.infos, mode.p.env,
                          lambda o, w, a=None: mode.error(o, w, a), active_names=mode.active)
        return partial(ctx)
    return partial


def _renamed(expr, names):
    return astb.replace_names(expr, {k: astb.name(v) for k, v in names.items()})
