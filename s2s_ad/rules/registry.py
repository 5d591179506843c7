"""The rule table: one entry per primitive, its adjoint and its tangent side by side.

A rule is a few lines of NumPy code, written as template strings that the compiler
inlines into the generated source. In a template, the primitive's parameter names stand
for its arguments, `ans` for its result, `g` for the adjoint of the result (reverse mode)
and `<param>_dot` for the tangent of an argument (forward mode).

Three ways to declare one, from most to least automatic:

    defrule(np.tanh, "x", partials={"x": "1.0 - ans * ans"})
        an elementwise function: one partial derivative per argument gives both the
        adjoint (`g * partial`, reduced back to the argument's shape where it was
        broadcast) and the tangent (`x_dot * partial`);
    defrule(np.sum, "a, axis=None, keepdims=False", linear=("a",), adjoint={"a": ...})
        linear in `a`: the tangent is the primitive applied to `a_dot`, the adjoint is given;
    defrule(prim, sig, adjoint={...}, tangent={...})
        both written out; a template may be a function of a `RuleContext` (shapes, dtypes,
        static argument values of this call site) that returns the template string, or a
        (template, shape) pair when the result is not the argument's shape.

`nondiff(prim, ...)` declares primitives whose derivative is zero (comparisons, sign,
floor, argmax, constructors): their results are constants to the compiler.
"""
import functools
import inspect

import gast

from .. import astb
from ..errors import TransformError
from ..primitives import name_of

_TABLE = {}
REQUIRED = inspect.Parameter.empty


class Rule:
    def __init__(self, prim, params, adjoint, tangent, partials, linear, elementwise,
                 nondiff=False, lazy_g=False, sequence=()):
        self.prim = prim
        # Parameters that take a sequence of arrays (np.stack's `arrays`, einsum's operands).
        self.sequence = set(sequence) | {p[1:] for p, _ in params if p.startswith("*")}
        self.params = params              # [(name, default)]
        self.adjoint = adjoint or {}      # param -> template or callable(ctx) (None: adds nothing)
        self.tangent = tangent or {}
        self.partials = partials or {}
        self.linear = tuple(linear)
        self.elementwise = elementwise
        self.nondiff = nondiff
        # True: the rule's templates accept a scalar `g` that stands for a broadcast one;
        # "through": such a `g` passes through unchanged (reshape, transpose, ...).
        self.lazy_g = lazy_g or elementwise
        self.constant_args = False
        self.multilinear = ()
        self.shape_only = ()

    @property
    def differentiable_params(self):
        return set(self.adjoint) | set(self.partials)

    def param_names(self):
        return [p.lstrip("*") for p, _ in self.params]

    def bind(self, args, kwargs):
        """Map a call's atoms to the rule's parameter names (defaults filled in)."""
        from ..ir import Const, Seq
        names = [p for p, _ in self.params]
        if names and names[-1].startswith("*"):  # np.einsum(subscripts, *operands)
            fixed = len(names) - 1
            return {**dict(zip(names[:fixed], args)),
                    names[-1][1:]: Seq(tuple(args[fixed:]), "tuple")}
        if len(args) > len(names):
            raise TypeError(f"{name_of(self.prim)} takes at most {len(names)} arguments")
        bound = dict(zip(names, args))
        for key, value in kwargs.items():
            if key not in names:
                error = TypeError(f"s2s_ad's rule for {name_of(self.prim)} has no argument `{key}`")
                error.advice = _ARGUMENT_ADVICE.get(key, f"leave `{key}` out and write what it "
                                                         "does as a separate step")
                raise error
            bound[key] = value
        for name, default in self.params:
            if name not in bound:
                if default is REQUIRED:
                    raise TypeError(f"{name_of(self.prim)} needs the argument `{name}`")
                bound[name] = Const(default)
        return bound


_ARGUMENT_ADVICE = {
    "where": "select first: np.sum(np.where(mask, x, 0.0)) rather than np.sum(x, where=mask)",
    "initial": "combine afterwards: np.maximum(np.max(x), initial), or np.sum(x) + initial",
    "out": "assign the result to a name: y = np.exp(x) rather than np.exp(x, out=y)",
}


def _parse_signature(sig):
    params = []
    for part in [p.strip() for p in sig.split(",") if p.strip()]:
        if "=" in part:
            key, default = part.split("=", 1)
            params.append((key.strip(), eval(default, {})))  # literal defaults only
        else:
            params.append((part, REQUIRED))
    return params


def defrule(prim, signature, *, partials=None, adjoint=None, tangent=None, linear=(),
            lazy_g=False, sequence=(), multilinear=(), shape_only=()):
    """Register the derivative rule of `prim` (see the module docstring).

    `linear` names arguments the function is linear in (its tangent is the function of
    their tangents); a sequence argument is jointly linear (np.concatenate: one call with
    zeros for constant items) unless listed in `multilinear` (np.einsum: one term per
    varying operand)."""
    rule = Rule(prim, _parse_signature(signature), adjoint, tangent, partials, linear,
                elementwise=bool(partials), lazy_g=lazy_g, sequence=sequence)
    rule.multilinear = tuple(multilinear)
    rule.shape_only = tuple(shape_only)  # arguments read only for their shape: no derivative
    _TABLE[_key(prim)] = rule
    return rule


def defrule_elementwise(prim, signature, *, adjoint, tangent):
    """An elementwise primitive whose adjoint is not `g * partial` (division, where)."""
    rule = Rule(prim, _parse_signature(signature), adjoint, tangent, None, (),
                elementwise=True, lazy_g=True)
    _TABLE[_key(prim)] = rule
    return rule


class Scatter:
    """An indexing adjoint: add `g` into a zero array at `index` (np.add.at where indices
    may repeat)."""

    def __init__(self, index, repeats):
        self.index = index
        self.repeats = repeats


class Project:
    """The adjoint of reading `container[key]`: goes to that slot of the container's adjoint."""

    def __init__(self, key):
        self.key = key


def nondiff(*prims, constant_args=False):
    """Primitives with a zero derivative. With constant_args, ones that copy values
    (np.array): calling them on a value that carries a derivative is an error instead."""
    for prim in prims:
        rule = Rule(prim, [], None, None, None, (), False, nondiff=True)
        rule.constant_args = constant_args
        _TABLE[_key(prim)] = rule


def lookup(prim):
    try:
        return _TABLE.get(_key(prim))
    except TypeError:
        return None


def all_rules():
    return list(_TABLE.values())


def _key(prim):
    return prim


# -- templates --------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _parsed(template):
    return astb.parse_expr(template)


def instantiate(template, mapping):
    """The template's tree with each placeholder name replaced by the given expression."""
    tree = astb.clone(_parsed(template))

    class Substitute(gast.NodeTransformer):
        def visit_Name(self, node):
            if node.id in mapping:
                return astb.clone(mapping[node.id])
            return node

        def visit_Call(self, node):
            # An index handed to a function (zero_at(g, index)) is a value: slice(...).
            self.generic_visit(node)
            node.args = [_slices_as_values(a) for a in node.args]
            return node

    return _FoldOnes().visit(Substitute().visit(tree))


class _FoldOnes(gast.NodeTransformer):
    """`1.0 * e`, `e * 1.0` and `e / 1.0` as `e`: a seed or a unit partial substituted
    into a template."""

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, gast.Mult) and astb.is_const(node.left, 1):
            return node.right
        if isinstance(node.op, (gast.Mult, gast.Div)) and astb.is_const(node.right, 1):
            return node.left
        return node


def _slices_as_values(node):
    if isinstance(node, gast.Slice):
        return astb.call("slice", [p if p is not None else astb.const(None)
                                   for p in (node.lower, node.upper, node.step)])
    if isinstance(node, gast.Tuple) and any(isinstance(e, gast.Slice) for e in node.elts):
        return astb.tuple_([_slices_as_values(e) for e in node.elts])
    return node


def template_names(template):
    return astb.load_names(_parsed(template))


# -- algebra on trees: keep generated code free of `1.0 * g` and `g * -1` ---------------

def coefficient(node):
    """(numerator, denominator) when `node` is a number such as 2.0 or 1.0 / 12."""
    if isinstance(node, gast.Constant) and type(node.value) in (int, float):
        return node.value, None
    if isinstance(node, gast.BinOp) and isinstance(node.op, gast.Div):
        num, den = coefficient(node.left), coefficient(node.right)
        if num and den and num[1] is None and den[1] is None:
            return num[0], den[0]
    if isinstance(node, gast.UnaryOp) and isinstance(node.op, gast.USub):
        inner = coefficient(node.operand)
        if inner:
            return -inner[0], inner[1]
    return None


def _number(num, den):
    node = astb.const(abs(num))
    if den is not None:
        node = astb.binop(node, gast.Div(), astb.const(den))
    return astb.neg(node) if num < 0 else node


def times(g, d):
    """g * d, folded: g is an expression, d a partial derivative expression."""
    cg = coefficient(g)
    if cg and isinstance(d, gast.BinOp) and isinstance(d.op, gast.Mult):
        cd = coefficient(d.left)
        if cd and cd[1] is None:  # (1.0 / 12) * (2.0 * r) -> 2.0 / 12 * r
            return astb.binop(_number(cg[0] * cd[0], cg[1]), gast.Mult(), d.right)
    if astb.is_const(d, 1):
        return g
    if astb.is_const(g, 1):
        return d
    if astb.is_const(d, -1):
        return astb.neg(g)
    if isinstance(d, gast.UnaryOp) and isinstance(d.op, gast.USub):
        return astb.neg(times(g, d.operand))
    if isinstance(d, gast.BinOp) and isinstance(d.op, gast.Div) and isinstance(d.left, gast.Constant):
        if astb.is_const(d.left, 1):
            return astb.binop(g, gast.Div(), d.right)
        if astb.is_const(d.left, -1):
            return astb.neg(astb.binop(g, gast.Div(), d.right))
    if astb.is_const(g, -1):
        return astb.neg(d)
    return astb.binop(g, gast.Mult(), d)


def plus(terms):
    """t1 + t2 + ..., writing `a + -b` as `a - b` and `t + t` as `2.0 * t` (x * x gives
    its adjoint twice)."""
    numbers = [coefficient(t) for t in terms]
    if terms and all(numbers):   # only numbers (seeds of a scalar result): one number
        return astb.const(sum(n / (d or 1.0) for n, d in numbers))
    counts, order = {}, []
    for term in terms:
        key = astb.unparse_key(term)
        if key not in counts:
            order.append(term)
        counts[key] = counts.get(key, 0) + 1
    terms = [t if counts[astb.unparse_key(t)] == 1 else
             _scaled(float(counts[astb.unparse_key(t)]), t) for t in order]
    total = terms[0]
    for term in terms[1:]:
        if isinstance(term, gast.UnaryOp) and isinstance(term.op, gast.USub):
            total = astb.binop(total, gast.Sub(), term.operand)
        else:
            total = astb.binop(total, gast.Add(), term)
    return total




def _scaled(k, term):
    """k * term; for term = g * y, (k * g) * y: never more work (g is at most the result's
    size) and one pass less when g is smaller (a broadcast)."""
    if isinstance(term, gast.BinOp) and isinstance(term.op, gast.Mult) \
            and not isinstance(term.left, gast.Constant):
        return astb.binop(astb.binop(astb.const(k), gast.Mult(), term.left), gast.Mult(),
                          term.right)
    return astb.binop(astb.const(k), gast.Mult(), term)
