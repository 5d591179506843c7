"""The normal form: one primitive per assignment (A-normal form, single assignment).

`frontend.normalize` turns a user function into a `Program`; analyses and transformations
read it, and `render` turns its pieces back into gast trees for the generated code.
"""
from dataclasses import dataclass, field
from typing import Any

import gast

from . import astb
from .primitives import spell


# -- atoms: the operands of a primitive -------------------------------------------------

@dataclass(frozen=True)
class Var:
    """A local value of the program (a parameter or an op's result)."""
    name: str


@dataclass(frozen=True)
class Global:
    """A value read from the function's module or closure (constant arrays, configs)."""
    name: str


@dataclass(frozen=True)
class Const:
    value: Any


@dataclass(frozen=True)
class Seq:
    """A tuple or list literal of atoms, e.g. a shape or the arrays given to np.stack."""
    items: tuple
    kind: str = "tuple"          # tuple | list | dict
    keys: tuple = None           # a dict literal's constant keys


@dataclass(frozen=True)
class Slice:
    lower: Any = None
    upper: Any = None
    step: Any = None


@dataclass
class Op:
    """`target = prim(*args, **kwargs)`, written on `line` of the user's file."""
    target: str
    prim: Any
    args: tuple
    kwargs: dict = field(default_factory=dict)
    line: int = 0
    col: int = 0
    callee: str = None           # how user code named a primitive NumPy has no name for
    file: str = None             # the file of `line` (a helper's code inlined from elsewhere)


@dataclass
class Loop:
    """`for index in range(start, stop, step): body`.

    Single assignment holds inside the body except for `carried` names: values that live
    from one iteration to the next (or past the loop). Each keeps one name throughout: read
    in the body before its reassignment it is the iteration's entry value; after the loop,
    the last iteration's value.
    """
    index: str
    range_args: tuple            # (start, stop, step) atoms
    body: list                   # [Op | Loop]
    carried: list                # names with a value on entry, reassigned in the body
    line: int = 0
    col: int = 0
    exported: list = field(default_factory=list)   # first assigned in the body, read after it
    file: str = None
    site: tuple = None           # (file, line, col, n): the n-th loop read at that place
    reverse: bool = False        # for i in reversed(range(...))
    condition: Any = None        # a branch: `if condition:` (runs once or not at all)
    negate: bool = False         # `if not condition:` (an else branch)
    test: Any = None             # a while loop: runs while `test`, computed by `test_body`
    test_body: list = field(default_factory=list)
    counter: str = None          # a while loop's iteration count, kept for the backward sweep


def with_body(loop, body):
    """The same loop (or branch) with another body."""
    import dataclasses
    return dataclasses.replace(loop, body=body)


def walk_ops(body):
    """Every Op of a body, loops included, in program order."""
    for stmt in body:
        if isinstance(stmt, Loop):
            yield from walk_ops(stmt.test_body)
            yield from walk_ops(stmt.body)
        else:
            yield stmt


def loop_vars(loop):
    """Names a loop reads from outside: its range and the free reads of its body."""
    defined = {loop.index} | {op.target for op in walk_ops(loop.body)} | \
        {op.target for op in walk_ops(loop.test_body)} | \
        {l.index for l in walk_loops(loop.body)}
    reads = [n for a in loop.range_args for n in atom_vars(a)] + atom_vars(loop.condition) \
        + atom_vars(loop.test)
    reads += [n for op in walk_ops(loop.body) for n in op_vars(op)]
    reads += [n for op in walk_ops(loop.test_body) for n in op_vars(op)]
    for inner in walk_loops(loop.body):
        reads += [n for a in inner.range_args for n in atom_vars(a)] + atom_vars(inner.condition)
    return [n for n in reads if n not in defined or n in loop.carried]


def own_defs(loop):
    """Names the loop's body defines at its own level (nested loops' carried values and
    exports included, their bodies' other values not)."""
    names = {op.target for op in walk_ops(loop.test_body)}
    for stmt in loop.body:
        if isinstance(stmt, Loop):
            names.update(stmt.carried)
            names.update(stmt.exported)
        else:
            names.add(stmt.target)
    return names


def walk_loops(body):
    for stmt in body:
        if isinstance(stmt, Loop):
            yield stmt
            yield from walk_loops(stmt.body)


@dataclass
class Program:
    name: str                    # the user's function name
    params: list                 # parameter names, in order
    body: list                   # [Op | Loop]
    result: Any                  # the returned atom
    filename: str
    def_line: int                # line of `def` in filename
    source_lines: dict           # (file, line) -> source text, for comments and errors
    env: dict                    # Global name -> object, for the generated namespace
    return_line: int = 0

    @property
    def ops(self):
        return list(walk_ops(self.body))

    def line_text(self, stmt):
        return self.source_lines.get((stmt.file, stmt.line), "").strip()

    def where(self, stmt):
        """`file.py:12` for a statement's line."""
        import os
        return f"{os.path.basename(stmt.file or self.filename)}:{stmt.line}"


def atom_vars(atom):
    """Names of the local values an atom reads."""
    if atom is None:
        return []
    if isinstance(atom, Var):
        return [atom.name]
    if isinstance(atom, Seq):
        return [n for item in atom.items for n in atom_vars(item)]
    if isinstance(atom, Slice):
        return [n for part in (atom.lower, atom.upper, atom.step) for n in atom_vars(part)]
    return []


def op_vars(op):
    names = [n for a in op.args for n in atom_vars(a)]
    names += [n for a in op.kwargs.values() for n in atom_vars(a)]
    return names


def render(atom):
    """An atom as a gast expression."""
    if isinstance(atom, Var) or isinstance(atom, Global):
        return astb.name(atom.name)
    if isinstance(atom, Const):
        return render_const(atom.value)
    if isinstance(atom, Seq):
        elts = [render(i) for i in atom.items]
        if atom.kind == "dict":
            return astb.dict_([render_const(k) for k in atom.keys], elts)
        return astb.tuple_(elts) if atom.kind == "tuple" else astb.list_(elts)
    if isinstance(atom, Slice):
        return gast.Slice(lower=_opt(atom.lower), upper=_opt(atom.upper), step=_opt(atom.step))
    if isinstance(atom, gast.AST):
        return atom
    if type(atom).__name__ == "_ZerosLike":
        return astb.call("np.zeros_like", [render(atom.atom)])
    raise TypeError(f"not an atom: {atom!r}")


def render_value(atom):
    """An atom as a value outside a subscript: slices written as slice(...)."""
    if isinstance(atom, Slice):
        return astb.call("slice", [render(p) if p is not None else astb.const(None)
                                   for p in (atom.lower, atom.upper, atom.step)])
    if isinstance(atom, Seq) and atom.kind != "dict":
        elts = [render_value(a) for a in atom.items]
        return astb.tuple_(elts) if atom.kind == "tuple" else astb.list_(elts)
    return render(atom)


def _opt(atom):
    return None if atom is None or (isinstance(atom, Const) and atom.value is None) else render(atom)


def render_const(value):
    if value is Ellipsis:
        return gast.Constant(value=Ellipsis, kind=None)
    if isinstance(value, (bool, int, float, str, complex)) or value is None:
        if isinstance(value, float) and value < 0 or isinstance(value, int) and value < 0 and not isinstance(value, bool):
            return astb.neg(astb.const(-value))
        return astb.const(value)
    if isinstance(value, tuple):
        return astb.tuple_([render_const(v) for v in value])
    if isinstance(value, list):
        return astb.list_([render_const(v) for v in value])
    spelled = spell(value)
    if spelled is not None:
        return astb.dotted(spelled)
    raise TypeError(f"cannot write {value!r} into generated code")
