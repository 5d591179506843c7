"""Elementwise regions differentiated as one.

A run of elementwise operations that maps one array to another of the same shape through
numbers only, such as GELU's `0.5 * x * (1.0 + np.tanh(c * (x + 0.044715 * (x * x * x))))`,
has a diagonal Jacobian: `x_bar = y_bar * dy/dx`. Walked back op by op, the backward sweep
makes one array per intermediate adjoint (eight for GELU, and `x * x * x` hands back its
derivative as `t * (x * x) + 2.0 * (t * x * x)`). Here dy/dx is built once instead, in
forward mode over the region with the rule table's partials, as an expression kept simple
while it is built: numbers folded, like terms collected (`x * x * x` gives `3.0 * x ** 2`),
equal factors merged into powers, sums kept factored rather than expanded. The backward
sweep writes `x_bar = y_bar * (<that expression>)`: for GELU ten array operations instead of
eighteen, about what a careful hand-written pass does.

Arithmetic inside the region is written out where the derivative needs it (`1.0 + t` rather
than keeping that array); a transcendental result stays the forward sweep's name, since its
partial reads `ans` (np.tanh's is `1.0 - ans * ans`). Only straight-line code, and only the
primitives in `FUNCTIONS`: their partials are arithmetic and NumPy functions of floats (no
masks, whose products with Python numbers would be float64).
"""

import gast
import numpy as np

from . import astb
from .ir import Const, Global, Loop, Op, Var, walk_ops
from .rules import lookup
from .rules.registry import instantiate

ARITHMETIC = (np.add, np.subtract, np.multiply, np.true_divide, np.negative, np.positive)
FUNCTIONS = ARITHMETIC + (np.tanh, np.exp, np.log, np.sin, np.cos, np.sinh, np.cosh, np.square,
                          np.sqrt, np.arctan, np.log1p, np.expm1, np.reciprocal, np.tan)
_DIVIDE_PARTIALS = {"x": "1.0 / y", "y": "-ans / y"}   # np.divide's adjoint with g = 1


def regions(program, infos, active):
    """{output name: (input name, dy/dx as a Poly, the region's op names)} for the regions
    of `program`'s top-level straight-line code (see the module docstring)."""
    users = {}
    for op in walk_ops(program.body):
        for name in _arg_names(op):
            users.setdefault(name, []).append(op.target)
    outside = _names_read_outside(program)
    defs = {op.target: op for op in program.body if isinstance(op, Op)}
    order = {name: k for k, name in enumerate(defs)}
    found, taken = {}, set()
    for op in reversed(program.body):
        if not isinstance(op, Op) or op.target in taken or not _member(op, infos, program.env):
            continue
        region = _grow(op, defs, order, users, outside, infos, program.env)
        leaves = {n for o in region.values() for n in _arg_names(o)} - set(region)
        if len(region) < 2 or len(leaves) != 1:
            continue
        (x,) = leaves
        if x not in active or not _same(infos.get(x), infos[op.target]):
            continue
        derivative = _derivative(region, x, program.env)
        if derivative is None or derivative.is_zero() or _size(derivative, {}) > MAX_SIZE:
            continue   # (a derivative that would be written out larger than the region)
        found[op.target] = (x, derivative, frozenset(region))
        taken |= set(region)
    return found


# Factors written out per derivative at most: a power of a sum is written out as often as
# its exponent says, so a long chain of squares (t = t * t + x, again and again) would
# double the derivative's text at each step; such regions are walked back op by op.
MAX_SIZE = 400


def _size(poly, memo):
    """How many factors the written-out expression of `poly` has."""
    if poly.key in memo:
        return memo[poly.key]
    total = 0
    for _, factors in poly.terms.values():
        total += 1 + sum(abs(e) * (_size(f, memo) if isinstance(f, Poly) else 1)
                         for f, e in factors)
        if total > MAX_SIZE:
            break
    memo[poly.key] = total
    return total


def _arg_names(op):
    return [a.name for a in list(op.args) + list(op.kwargs.values()) if isinstance(a, Var)]


def _names_read_outside(program):
    """Names read by loops, or by the program's result: never inside a region."""
    from .ir import atom_vars
    out = set(atom_vars(program.result))
    for stmt in program.body:
        if isinstance(stmt, Loop):
            out |= {n for op in walk_ops(stmt.body) for n in _arg_names(op)}
            out |= {n for a in stmt.range_args for n in atom_vars(a)}
            out |= set(atom_vars(stmt.condition)) | set(atom_vars(stmt.test))
    return out


def _member(op, infos, env):
    """Can `op` be part of a region: an allowed primitive on same-shaped float arrays and
    numbers?"""
    if op.prim not in FUNCTIONS or op.kwargs:
        return False
    out = infos.get(op.target)
    if out is None or out.kind != "array" or out.dynamic or out.dtype.kind != "f":
        return False
    for a in op.args:
        if isinstance(a, Var):
            if not _same(infos.get(a.name), out):
                return False
        elif _number(a, env) is None:
            return False
    return True


def _same(info, other):
    return info is not None and info.kind == "array" and not info.dynamic \
        and info.shape == other.shape and info.dtype == other.dtype


def _number(atom, env):
    value = env.get(atom.name) if isinstance(atom, Global) else \
        atom.value if isinstance(atom, Const) else None
    return float(value) if type(value) in (int, float) else None


def _grow(out, defs, order, users, outside, infos, env):
    """{name: op} of the region ending at `out`: operands whose every use is inside it."""
    region = {out.target: out}
    changed = True
    while changed:
        changed = False
        for op in list(region.values()):
            for name in _arg_names(op):
                d = defs.get(name)
                if name in region or d is None or name in outside \
                        or not _member(d, infos, env) \
                        or not all(u in region for u in users.get(name, ())):
                    continue
                region[name] = d
                changed = True
    return dict(sorted(region.items(), key=lambda kv: order[kv[0]]))


def _derivative(region, x, env):
    """dy/dx over the region (ops in program order), as a Poly; None if a partial is not
    one this module can read."""
    value = {x: Poly.atom(astb.name(x))}     # each name's value, as far as it is written out
    slope = {x: Poly.number(1.0)}            # d(name)/dx
    for name, op in region.items():
        rule = lookup(op.prim)
        params = rule.param_names()
        bound = dict(zip(params, op.args))
        mapping = {"ans": astb.name(name)}
        for p, a in bound.items():
            mapping[p] = astb.name(a.name) if isinstance(a, Var) else astb.const(_number(a, env))
        total = Poly.number(0.0)
        for p, a in bound.items():
            if not isinstance(a, Var) or a.name not in slope:
                continue
            text = _DIVIDE_PARTIALS[p] if op.prim is np.true_divide else rule.partials[p]
            partial = to_poly(instantiate(text, mapping), value, env)
            if partial is None:
                return None
            total = total + partial * slope[a.name]
        slope[name] = total
        if op.prim in ARITHMETIC:  # written out: d(x * x * x) sees x three times
            args = {p: value.get(a.name, Poly.atom(astb.name(a.name))) if isinstance(a, Var)
                    else Poly.number(_number(a, env)) for p, a in bound.items()}
            value[name] = _apply(op.prim, [args[p] for p in params if p in args])
    return slope[list(region)[-1]]


def _apply(prim, args):
    if prim is np.add:
        return args[0] + args[1]
    if prim is np.subtract:
        return args[0] + args[1] * Poly.number(-1.0)
    if prim is np.multiply:
        return args[0] * args[1]
    if prim is np.true_divide:
        return args[0] * args[1].reciprocal()
    if prim is np.negative:
        return args[0] * Poly.number(-1.0)
    return args[0]


def to_poly(node, value, env):
    """A partial derivative's tree as a Poly: arithmetic is read, names written out where
    the region's arithmetic defined them, anything else (a call) is an opaque factor."""
    if isinstance(node, gast.Constant) and type(node.value) in (int, float):
        return Poly.number(float(node.value))
    if isinstance(node, gast.Name):
        if node.id in value:
            return value[node.id]
        if type(env.get(node.id)) in (int, float):
            return Poly.number(float(env[node.id]))
        return Poly.atom(node)
    if isinstance(node, gast.UnaryOp) and isinstance(node.op, (gast.USub, gast.UAdd)):
        inner = to_poly(node.operand, value, env)
        if inner is None:
            return None
        return inner * Poly.number(-1.0) if isinstance(node.op, gast.USub) else inner
    if isinstance(node, gast.BinOp) and isinstance(node.op, (gast.Add, gast.Sub, gast.Mult,
                                                             gast.Div)):
        left, right = to_poly(node.left, value, env), to_poly(node.right, value, env)
        if left is None or right is None:
            return None
        if isinstance(node.op, gast.Add):
            return left + right
        if isinstance(node.op, gast.Sub):
            return left + right * Poly.number(-1.0)
        if isinstance(node.op, gast.Mult):
            return left * right
        return left * right.reciprocal()
    if isinstance(node, gast.Call):
        return Poly.atom(node)
    return None   # a comparison, a mask, a subscript: not for this module


# -- a small algebra: sums of products of powers -----------------------------------------

class Atom:
    """An opaque factor (a name, or a call such as np.cos(x)), compared by its tree."""

    def __init__(self, expr):
        self.expr = expr
        self.key = "a" + repr(astb.unparse_key(expr))


class Poly:
    """c1 * f11 ** e11 * f12 ** e12 ... + c2 * ...: each factor an Atom or a Poly of two or
    more terms (a sum kept factored); terms keyed by their factors, so like terms add."""

    def __init__(self, terms):
        self.terms = terms     # {term key: (coefficient, ((factor, exponent), ...))}
        self._key = None

    @staticmethod
    def number(c):
        return Poly({"": (c, ())} if c != 0 else {})

    @staticmethod
    def atom(expr):
        a = Atom(expr)
        return Poly({_term_key(((a, 1),)): (1.0, ((a, 1),))})

    @property
    def key(self):
        if self._key is None:   # (terms never change once made)
            self._key = "(" + " + ".join(f"{c!r}*{k}" for k, (c, _) in
                                         sorted(self.terms.items())) + ")"
        return self._key

    def is_zero(self):
        return not self.terms

    def number_value(self):
        if not self.terms:
            return 0.0
        if list(self.terms) == [""]:
            return self.terms[""][0]
        return None

    def single(self):
        return next(iter(self.terms.values())) if len(self.terms) == 1 else None

    def __add__(self, other):
        terms = dict(self.terms)
        for k, (c, f) in other.terms.items():
            c = terms[k][0] + c if k in terms else c
            if c == 0:
                terms.pop(k, None)
            else:
                terms[k] = (c, f)
        return Poly(terms)

    def scaled(self, c):
        return Poly({k: (c * ci, f) for k, (ci, f) in self.terms.items()} if c != 0 else {})

    def __mul__(self, other):
        a, b = self.number_value(), other.number_value()
        if a is not None:
            return other.scaled(a)
        if b is not None:
            return self.scaled(b)
        ca, fa = self.single() or (1.0, ((self, 1),))
        cb, fb = other.single() or (1.0, ((other, 1),))
        return _monomial(ca * cb, fa + fb)

    def reciprocal(self):
        c = self.number_value()
        if c is not None:
            return Poly.number(1.0 / c)
        ca, fa = self.single() or (1.0, ((self, 1),))
        return _monomial(1.0 / ca, tuple((f, -e) for f, e in fa))


def _term_key(factors):
    return "*".join(f"{f.key}^{e}" for f, e in factors)


def _monomial(c, factors):
    merged = {}
    for f, e in factors:
        base, exp = merged.get(f.key, (f, 0))
        merged[f.key] = (base, exp + e)
    factors = tuple(sorted(((f, e) for f, e in merged.values() if e != 0), key=lambda fe: fe[0].key))
    if c == 0:
        return Poly({})
    if len(factors) == 1 and factors[0][1] == 1 and isinstance(factors[0][0], Poly):
        return factors[0][0].scaled(c)   # c * (a + b): the number goes into the sum
    return Poly({_term_key(factors): (c, factors)})


# -- writing it out -----------------------------------------------------------------------

def emit(poly):
    """The gast expression of a Poly, written to cost few array operations: numbers folded
    into a sum where every term already has one (`0.5 * x * (c + k * x * x)` becomes
    `x * (0.5 * c + 0.5 * k * x * x)`)."""
    expr, c = _sum(poly)
    return _scale(expr, c)


def _sum(poly, into=1.0):
    """(expression, leftover number) for `into * poly`."""
    value = poly.number_value()
    if value is not None:
        return astb.const(into * value), 1.0
    terms = list(poly.terms.values())
    common = _common_factors(terms)
    if common:   # a / b - c / b as (a - c) / b
        divided = Poly({})
        for c, factors in terms:
            divided = divided + _monomial(c, factors + tuple((f, -e) for f, e in common))
        inner, into = _sum(divided, into)
        return _term(1.0, common, inner), into
    if into != 1.0 and all(c not in (1.0, -1.0) for c, f in terms if f):
        terms = [(into * c, f) for c, f in terms]   # each term multiplies anyway
        into = 1.0
    # A positive number first (`1.0 - t * t`), then terms added, then those subtracted.
    terms.sort(key=lambda t: 0 if not t[1] and t[0] > 0 else 1 if t[0] > 0 else 2)
    total = None
    for c, factors in terms:
        if total is not None and c < 0:
            total = astb.binop(total, gast.Sub(), _term(-c, factors))
        else:
            term = _term(c, factors)
            total = term if total is None else astb.binop(total, gast.Add(), term)
    return total, into


def _common_factors(terms):
    """Factors every term has, to the power they all share (same sign), when every term
    has factors."""
    if len(terms) < 2 or not all(f for _, f in terms):
        return ()
    shared = {f.key: (f, e) for f, e in terms[0][1]}
    for _, factors in terms[1:]:
        here = {f.key: e for f, e in factors}
        shared = {k: (f, (min(e, here[k]) if e > 0 else max(e, here[k])))
                  for k, (f, e) in shared.items() if k in here and (e > 0) == (here[k] > 0)}
    return tuple(shared[k] for k in sorted(shared))


def _term(c, factors, inner=None):
    """c * (the factors' product), times `inner` (an expression) when given."""
    if inner is not None:
        factors = tuple(factors)
    if not factors:
        return astb.const(c)
    # A sum factor whose terms all carry numbers takes this term's number for free.
    num, den = [], []
    for f, e in factors:
        if isinstance(f, Poly) and e == 1 and c not in (1.0, -1.0) and _absorbs(f):
            expr, c = _sum(f, into=c)
        else:
            expr = _scale(*_sum(f)) if isinstance(f, Poly) else f.expr
        (num if e > 0 else den).extend(astb.clone(expr) for _ in range(abs(e)))
    if inner is not None:
        num.insert(0, inner)
    if not num:
        out = astb.const(c)
        c = 1.0
    else:
        out = num[0]
        for e in num[1:]:
            out = astb.binop(out, gast.Mult(), e)
    for e in den:
        out = astb.binop(out, gast.Div(), e)
    return _scale(out, c)


def _absorbs(poly):
    return all(c not in (1.0, -1.0) for c, f in poly.terms.values() if f)


def _scale(expr, c):
    if c == 1.0:
        return expr
    if c == -1.0:
        return astb.neg(expr)
    return astb.binop(astb.const(c), gast.Mult(), expr)


# -- writing it out in place ----------------------------------------------------------------

def emit_inplace(poly, g, buf, fresh):
    """Statements that leave `g * poly` in a new array named `buf`, built in place with
    `*=` and `+=` the way a careful hand-written backward pass is: one array for the result
    and one for each inner sum, instead of one per operation of the expression (for GELU,
    in a transformer, that is the difference between 5 ms and 2.5 ms per layer). None when
    the expression is too small to gain from it (a number, or one factor)."""
    terms = list(poly.terms.values())
    if poly.number_value() is not None or (
            len(terms) == 1 and sum(abs(e) for _, e in terms[0][1]) < 2):
        return None
    # A sum left negative (1 - t * t is cheapest as t * t - 1) flips the sign; a dry run
    # finds that out, and the real one folds the flip into a number it multiplies by anyway.
    sign = _into(poly, buf, [], lambda: "_")
    out = []
    sign = _into(poly, buf, out, fresh, negate=sign < 0)
    g_value = g.value if isinstance(g, gast.Constant) else None
    if g_value is not None:
        if g_value * sign != 1.0:
            out.append(_aug(buf, gast.Mult(), astb.const(float(g_value * sign))))
    else:
        out.append(_aug(buf, gast.Mult(), g))
        if sign < 0:
            out.append(_aug(buf, gast.Mult(), astb.const(-1.0)))
    return out


def _aug(name, op, value):
    return gast.AugAssign(target=astb.name(name, store=True), op=op, value=value)


def _factor_expr(f):
    return astb.clone(f.expr) if isinstance(f, Atom) else emit(f)


def _add(buf, k, value, out):
    """buf += k * value (k a number, value an expression)."""
    if k == 1.0:
        out.append(_aug(buf, gast.Add(), value))
    elif k == -1.0:
        out.append(_aug(buf, gast.Sub(), value))
    else:
        op = gast.Add() if k > 0 else gast.Sub()
        out.append(_aug(buf, op, astb.binop(astb.const(abs(k)), gast.Mult(), value)))


def _into(poly, buf, out, fresh, negate=False):
    """Statements that make `buf` a new array holding sign * poly; returns the sign.
    `negate`: flip the sign where that costs nothing (see `_into_term`)."""
    terms = list(poly.terms.values())
    if len(terms) == 1:
        return _into_term(*terms[0], buf, out, fresh, negate)
    common = _common_factors(terms)
    if common:
        divided = Poly({})
        for c, factors in terms:
            divided = divided + _monomial(c, factors + tuple((f, -e) for f, e in common))
        sign = _into(divided, buf, out, fresh, negate)
        return sign * _times_factors(buf, common, out, fresh)
    numbers = [c for c, f in terms if not f]
    rest = [(c, f) for c, f in terms if f]
    # The term that needs most work makes the array; simple ones are added into it.
    rest.sort(key=lambda t: (-sum(abs(e) for _, e in t[1]), t[0] < 0))
    sign = _into_term(*rest[0], buf, out, fresh, negate)
    for c, factors in rest[1:]:
        if len(factors) == 1 and factors[0][1] == 1 and isinstance(factors[0][0], Atom):
            _add(buf, c * sign, _factor_expr(factors[0][0]), out)
            continue
        tmp = fresh()
        k = _into_term(c, factors, tmp, out, fresh) * sign
        out.append(_aug(buf, gast.Add() if k > 0 else gast.Sub(), astb.name(tmp)))
        out.append(_delete(tmp))
    for c in numbers:
        if c * sign > 0:
            out.append(_aug(buf, gast.Add(), astb.const(c * sign)))
        else:
            out.append(_aug(buf, gast.Sub(), astb.const(-c * sign)))
    return sign


def _into_term(c, factors, buf, out, fresh, negate=False):
    """Statements that make `buf` a new array holding sign * c * (the factors' product).
    With `negate`, the first number multiplied in is negated (when there is one)."""
    sums = [f for f, e in factors if isinstance(f, Poly) and e == 1]
    if sums:
        first = sums[0]
        if abs(c) != 1.0 and _absorbs(first):
            first, c = first.scaled(abs(c)), (1.0 if c > 0 else -1.0)
        sign = _into(first, buf, out, fresh, negate)
        negate = False     # (done, if it could be, inside the sum)
        skip = False
        others = []
        for f, e in factors:
            if f is sums[0] and not skip:
                skip = True
                continue
            others.append((f, e))
        sign *= _times_factors(buf, tuple(others), out, fresh)
    else:
        pos = [f for f, e in factors if e > 0 for _ in range(e)]
        neg = [f for f, e in factors if e < 0 for _ in range(-e)]
        if len(pos) >= 2:
            out.append(astb.assign(buf, astb.binop(_factor_expr(pos[0]), gast.Mult(),
                                                   _factor_expr(pos[1]))))
            pos = pos[2:]
        elif pos:
            out.append(astb.assign(buf, astb.binop(_factor_expr(pos[0]), gast.Mult(),
                                                   astb.const(abs(c)))))
            pos, c = [], (1.0 if c > 0 else -1.0)
        else:
            out.append(astb.assign(buf, astb.binop(astb.const(abs(c)), gast.Div(),
                                                   _factor_expr(neg[0]))))
            neg, c = neg[1:], (1.0 if c > 0 else -1.0)
        for f in pos:
            out.append(_aug(buf, gast.Mult(), _factor_expr(f)))
        for f in neg:
            out.append(_aug(buf, gast.Div(), _factor_expr(f)))
        sign = 1.0
    if abs(c) != 1.0:
        out.append(_aug(buf, gast.Mult(), astb.const(-abs(c) if negate else abs(c))))
        sign = -sign if negate else sign
    return sign * (1.0 if c > 0 else -1.0)


def _times_factors(buf, factors, out, fresh):
    """buf *= each factor (buf /= for negative powers), sums through a temporary; returns
    the sign those temporaries were left with."""
    sign = 1.0
    for f, e in factors:
        if isinstance(f, Poly):
            tmp = fresh()
            k = _into(f, tmp, out, fresh)
            value = astb.name(tmp)
        else:
            k, tmp, value = 1.0, None, None
        for _ in range(abs(e)):
            out.append(_aug(buf, gast.Mult() if e > 0 else gast.Div(),
                            astb.clone(value) if value is not None else _factor_expr(f)))
        if tmp is not None:
            sign *= k ** abs(e)
            out.append(_delete(tmp))
    return sign


def _delete(name):
    return gast.Delete(targets=[gast.Name(id=name, ctx=gast.Del(), annotation=None,
                                          type_comment=None)])
