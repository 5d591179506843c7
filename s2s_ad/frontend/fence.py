"""Reject, before any transformation, every construct the compiler does not support.

Each refusal names the construct, points at it, and says what to write instead, so that
nothing unsupported can reach the transformations and come out as a wrong number.
"""
import gast

from ..primitives import BINOPS, COMPARES

_LOOP = ("`async for` is not supported", "use a plain for loop")
ADVICE = {
    gast.AsyncFor: _LOOP,
    gast.GeneratorExp: ("generator expressions are not supported", "write the elements out"),
    gast.SetComp: ("set comprehensions are not supported", "use arrays"),
    gast.DictComp: ("dict comprehensions are not supported yet", "write the entries out"),
    gast.Try: ("try/except is not supported",
               "move error handling outside the differentiated function"),
    gast.With: ("`with` blocks are not supported",
                "move the context manager outside the differentiated function"),
    gast.AsyncWith: ("`async with` is not supported", "use a plain function"),
    gast.Yield: ("generators (`yield`) are not supported", "return a value"),
    gast.YieldFrom: ("generators (`yield from`) are not supported", "return a value"),
    gast.Await: ("`await` is not supported", "use a plain function"),
    gast.Global: ("`global` writes are not supported",
                  "pass the value in as an argument and return the new one"),
    gast.Nonlocal: ("`nonlocal` writes are not supported",
                    "pass the value in as an argument and return the new one"),
    gast.AsyncFunctionDef: ("async functions are not supported", "use a plain def"),
    gast.ClassDef: ("class definitions inside the function are not supported",
                    "define the class at module level"),
    gast.Import: ("imports inside the function are not supported", "import at module level"),
    gast.ImportFrom: ("imports inside the function are not supported", "import at module level"),
    gast.Assert: ("`assert` is not supported inside a differentiated function",
                  "check the inputs before calling it"),
    gast.Raise: ("`raise` is not supported inside a differentiated function",
                 "check the inputs before calling it"),
    gast.Set: ("set literals are not supported", "use arrays"),
    gast.JoinedStr: ("f-strings are not supported", "use constant strings as keys"),
    gast.Starred: ("`*` unpacking is not supported", "pass the arguments one by one"),
    gast.NamedExpr: ("`:=` is not supported", "assign on a separate line"),
    gast.Match: ("`match` is not supported", "use np.where"),
}

_ALLOWED = (
    gast.Assign, gast.AugAssign, gast.AnnAssign, gast.Return, gast.Expr, gast.Pass, gast.For,
    gast.If, gast.Lambda, gast.FunctionDef, gast.arguments, gast.While, gast.Break, gast.Continue, gast.IfExp, gast.BoolOp, gast.boolop, gast.ListComp, gast.comprehension,
    gast.Name, gast.Constant, gast.BinOp, gast.UnaryOp, gast.Compare, gast.Call,
    gast.keyword, gast.Attribute, gast.Subscript, gast.Slice, gast.Tuple, gast.List,
    gast.expr_context, gast.operator, gast.unaryop, gast.cmpop, gast.Dict,
)


def ends_with_return(body):
    """Does every path through `body` end with a return, once early returns move the rest
    of the function into the other branch?"""
    for i, stmt in enumerate(body):
        if isinstance(stmt, gast.Return):
            return True
        if isinstance(stmt, gast.If) and (ends_with_return(stmt.body)
                                          or ends_with_return(stmt.orelse)):
            rest = body[i + 1:]
            return ends_with_return(stmt.body + rest) and ends_with_return(stmt.orelse + rest)
    return False


def _in_place_call(node):
    """np.add.at(x, i, v) and stack.append(x): calls made for their effect on a local."""
    if isinstance(node, gast.Call) and isinstance(node.func, gast.Name):
        return node.func.id == "unrecorded"  # a guard in generated code
    return isinstance(node, gast.Call) and isinstance(node.func, gast.Attribute) \
        and node.func.attr in ("at", "append")


class Fence(gast.NodeVisitor):
    def __init__(self, source):
        self.source = source

    def reject(self, node, what, advice):
        raise self.source.error(node, what, advice)

    def check(self):
        fn = self.source.node
        args = fn.args
        if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
            self.reject(fn, "*args, **kwargs, keyword-only and positional-only parameters "
                            "are not supported", "list every parameter by name")
        body = fn.body
        if body and isinstance(body[0], gast.Expr) and isinstance(body[0].value, gast.Constant):
            body = body[1:]  # docstring
        self.returns(body, fn, top=True)
        self.statements(body)

    def returns(self, body, node, top=False):
        """A `return` ends a block: the function's body or a branch of an `if`."""
        for stmt in body:
            if isinstance(stmt, gast.Return) and stmt is not body[-1]:
                self.reject(stmt, "code after `return` never runs", "remove it")
            if isinstance(stmt, gast.Return) and stmt.value is None:
                self.reject(stmt, "`return` without a value", "return the value to differentiate")
            if isinstance(stmt, gast.If):
                self.returns(stmt.body, stmt)
                self.returns(stmt.orelse, stmt)
        if top and not ends_with_return(body):
            self.reject(body[-1] if body else node, "the function must end with `return value` "
                                                     "on every path",
                        "return the value to differentiate on the last line")

    def statements(self, body):
        for stmt in body:
            if isinstance(stmt, gast.Delete):  # `del name` (generated code frees arrays)
                for target in stmt.targets:
                    if not isinstance(target, gast.Name):
                        self.reject(target, "`del` of an item or attribute is not supported",
                                    "build the new array functionally, e.g. with np.delete")
                continue
            if isinstance(stmt, gast.Expr) and _in_place_call(stmt.value):
                self.visit(stmt.value)
                continue
            if isinstance(stmt, gast.Expr):
                self.reject(stmt, "an expression whose value is unused (a call for its "
                                  "side effect?) is not supported",
                            "assign its result, or move it outside the function")
            self.visit(stmt)

    def visit_FunctionDef(self, node):
        """A function defined inside the differentiated one (a closure): same rules."""
        if node.decorator_list:
            self.reject(node, "decorators on nested functions are not supported",
                        "define the decorated function at module level")
        args = node.args
        if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
            self.reject(node, "*args, **kwargs, keyword-only and positional-only parameters "
                              "are not supported", "list every parameter by name")
        self.returns(node.body, node, top=True)
        self.statements(node.body)

    def visit_Lambda(self, node):
        args = node.args
        if args.vararg or args.kwarg or args.kwonlyargs or args.posonlyargs:
            self.reject(node, "*args and **kwargs in a lambda are not supported",
                        "list every parameter by name")
        self.visit(node.body)

    def visit_While(self, node):
        if node.orelse:
            self.reject(node, "`while ... else` is not supported", "drop the else branch")
        self.visit(node.test)
        self.statements(node.body)

    def visit_For(self, node):
        if node.orelse:
            self.reject(node, "`for ... else` is not supported", "drop the else branch")
        plain_range = isinstance(node.iter, gast.Call) and isinstance(node.iter.func, gast.Name) \
            and node.iter.func.id in ("range", "reversed")
        if plain_range and not isinstance(node.target, gast.Name):
            self.reject(node.target, "only a plain name can be the loop variable of a range",
                        "for i in range(n): a, b = pairs[i]")
        self.visit(node.iter)
        self.statements(node.body)

    def generic_visit(self, node):
        if not isinstance(node, _ALLOWED):
            what, advice = ADVICE.get(type(node), (
                f"`{type(node).__name__}` is not supported", "rewrite it with NumPy calls"))
            self.reject(node, what, advice)
        super().generic_visit(node)

    def visit_Assign(self, node):
        for target in node.targets:
            self._target(target)
        self.visit(node.value)

    def visit_AnnAssign(self, node):
        if node.value is None:
            self.reject(node, "an annotation without a value is not supported", "assign a value")
        self._target(node.target)
        self.visit(node.value)

    def visit_AugAssign(self, node):
        if isinstance(node.target, gast.Subscript) and isinstance(node.target.value, gast.Name) \
                and isinstance(node.op, (gast.Add, gast.Sub)):
            self.visit(node.target.slice)   # x[i] += v on a local array
            self.visit(node.value)
            return
        if not isinstance(node.target, gast.Name):
            self._inplace(node.target)
        self._binop(node, node.op)
        self.visit(node.value)

    def _target(self, target):
        if isinstance(target, (gast.Tuple, gast.List)):
            for elt in target.elts:
                self._target(elt)
        elif not isinstance(target, gast.Name):
            self._inplace(target)

    def _inplace(self, target):
        if isinstance(target, gast.Subscript) and isinstance(target.value, gast.Name):
            self.visit(target.slice)   # x[i] = v: written functionally by the compiler
            return
        if isinstance(target, gast.Subscript):
            self.reject(target, "assigning into `a.b[i]` or `a[i][j]` is not supported",
                        "assign to an array held by a plain name: x[i, j] = v")
        self.reject(target, f"assigning to `{type(target).__name__}` is not supported",
                    "assign to a plain name")

    def visit_BinOp(self, node):
        self._binop(node, node.op)
        self.generic_visit(node)

    def _binop(self, node, op):
        if type(op) not in BINOPS:
            self.reject(node, f"the operator `{type(op).__name__}` is not supported",
                        "use + - * / ** @ or the NumPy function")

    def visit_Compare(self, node):
        if len(node.ops) != 1 or type(node.ops[0]) not in COMPARES:
            self.reject(node, "chained comparisons and `in` / `is` are not supported",
                        "compare two values at a time, e.g. np.logical_and(a < b, b < c)")
        self.generic_visit(node)

    def visit_Dict(self, node):
        for key in node.keys:
            if not isinstance(key, gast.Constant):
                self.reject(node, "dict literals need constant keys", "use constant keys")
        self.generic_visit(node)

    def visit_Call(self, node):
        if isinstance(node.func, gast.Name) and node.func.id in ("eval", "exec"):
            self.reject(node, f"`{node.func.id}` is not supported", "write the code out")
        for kw in node.keywords:
            if kw.arg is None:
                self.reject(node, "`**kwargs` in a call is not supported",
                            "pass the keyword arguments by name")
        self.generic_visit(node)


def check(source):
    Fence(source).check()
