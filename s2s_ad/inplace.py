"""Update arrays in place where a hand-written pass would: `c = a + b` becomes `a += b`.

NumPy already reuses an expression's nameless temporaries (`a * b + c` makes one array),
but not an array held by a name: `t41 = t40 + b_fc` followed by `del t40` makes a new
array while t40's memory is dropped. For a large array that is a fresh allocation (page
faults, cache misses) per statement. This pass rewrites such a statement as augmented
assignments into the dead operand and gives the two names one name, when it is sure that

- the operand was made by this function as a new array (an arithmetic result, not an
  argument, a view, or something a helper may hand back) and nothing else refers to its
  memory (no view of it is read later, no loop saw it);
- it is read for the last time here, and the result has its shape and dtype (so every
  step of `a op= x` stays in a's array);
- both names are bound once, outside any loop (so one name can stand for both).

The two names become one (the operand's, or the result's when the operand is a bare
temporary such as t12); when both are the user's (`xc = x - mu`), the result takes the
operand's array over: `xc = x; xc -= mu`.

Only top-level statements of arrays of at least `release.RELEASE_BYTES` are rewritten.
"""
import re

import gast

from . import astb
from .emit import LoopBlock, statements
from .fresh import FRESH_CALLS, call_name, fresh_array
from .release import RELEASE_BYTES

_OPS = (gast.Add, gast.Sub, gast.Mult, gast.Div)
_COMMUTATIVE = (gast.Add, gast.Mult)


def update_in_place(blocks, array_info, keep=()):
    """(blocks, renamed): `blocks` with dead operands updated in place, and the names that
    now stand for others ({old: new}). `array_info(name)` is (shape, dtype) of the array a
    name holds, or None when not known for sure."""
    units = []                                 # (block index, statement index or None)
    for b, block in enumerate(blocks):
        if isinstance(block, LoopBlock):
            units.append((b, None))
        else:
            units += [(b, s) for s in range(len(block[1]))]
    stmts = [None if s is None else blocks[b][1][s] for b, s in units]
    loads, binds, in_loops = [], {}, set()
    for u, (b, s) in enumerate(units):
        if s is None:
            loop = blocks[b]
            names = astb.load_names(loop.iter).union(
                *[astb.all_names(x) for x in statements(loop.blocks)])
            in_loops |= names
            loads.append(names)
            continue
        stmt = stmts[u]
        loads.append(astb.load_names(stmt))
        if isinstance(stmt, gast.Assign):
            for name in astb.stored_names(stmt):
                binds[name] = binds.get(name, 0) + 1
    last = {}
    for u, names in enumerate(loads):
        for name in names:
            last[name] = u
    parent = {}                                # union-find: names that are one array now

    def find(name):
        while name in parent:
            name = parent[name]
        return name

    owned = set()                              # (canonical) names no other name shares
    aliases = {}                               # canonical name -> names that may share it
    renames = {}                               # code name -> the name that replaces it

    def chase(name):
        while name in renames:
            name = renames[name]
        return name

    keep = set(keep)
    rewritten = {}
    for u, stmt in enumerate(stmts):
        if isinstance(stmt, gast.Expr) and isinstance(stmt.value, gast.Call) \
                and call_name(stmt.value) in ("append", "extend", "insert"):
            owned.difference_update(find(n) for n in astb.load_names(stmt.value))
        if not isinstance(stmt, gast.Assign):
            continue
        value = stmt.value
        for name in _shared(value):
            aliases.setdefault(find(name), set()).update(astb.stored_names(stmt))
        if not all(isinstance(t, gast.Name) for t in stmt.targets):
            # `box[i] = a`: a may now be held where no name shows it
            owned.difference_update(find(n) for n in _shared(value))
        if len(stmt.targets) != 1 or not isinstance(stmt.targets[0], gast.Name):
            continue
        target = stmt.targets[0].id
        if binds.get(target) != 1 or target in in_loops or target in keep:
            continue
        choice = _dead_operand(value, u, target, find, last, owned, aliases, in_loops,
                               array_info)
        if choice is None:
            if fresh_array(value, through_views=True):
                owned.add(target)
            continue
        a, steps = choice
        ca = find(a)
        code_a = chase(a)
        # One name for both: the operand's, which the statements before know it by,
        # unless that is a bare temporary (then the result's name reads better).
        if _is_temp(code_a, bare=True):
            renames[code_a] = target         # `x_bar = a / b; x_bar += c` (was t294)
        elif _is_temp(target) or _base(target) == _base(code_a):
            renames[target] = code_a         # `x += t33`: x_1 is called x from here on
        else:
            # Two names of the user's (x_bar = xc_bar + ...): the result takes the
            # operand's array over, both names kept (`x_bar = xc_bar; x_bar += ...`).
            rewritten[u] = [astb.assign(target, astb.name(a))] + [
                gast.AugAssign(target=astb.name(target, store=True), op=op, value=x)
                for op, x in steps]
        if u not in rewritten:
            rewritten[u] = [gast.AugAssign(target=astb.name(a, store=True), op=op, value=x)
                            for op, x in steps]
            # the operand's `del` right after this statement: its memory lives on
            rewritten[("del", u + 1)] = a
        parent[ca] = target
        owned.discard(ca)
        owned.add(target)
        aliases[target] = aliases.pop(ca, set()) | aliases.pop(target, set())
        last[target] = max(last.get(ca, u), last.get(target, u))
    if not rewritten:
        return blocks, {}
    final = {old: chase(old) for old in renames}
    out = [list(block[1]) if not isinstance(block, LoopBlock) else block for block in blocks]
    for u, (b, s) in enumerate(units):
        if s is None:
            continue
        stmt = stmts[u]
        if u in rewritten:
            new_stmts = rewritten[u]
        elif isinstance(stmt, gast.Delete) and rewritten.get(("del", u)) is not None:
            gone = rewritten[("del", u)]
            kept = [t for t in stmt.targets if t.id != gone]
            new_stmts = [gast.Delete(targets=kept)] if kept else []
        else:
            new_stmts = [stmt]
        out[b][s] = [_rename(x, final) for x in new_stmts]
    result = []
    for b, block in enumerate(blocks):
        if isinstance(block, LoopBlock):
            result.append(_rename_loop(block, final))
        else:
            result.append((block[0], [x for group in out[b] for x in group]))
    return result, final


def _dead_operand(value, u, target, find, last, owned, aliases, in_loops, array_info):
    """(a, [(op, x)...]) when `target = value` can be `a op= x; ...`, else None."""
    if not isinstance(value, gast.BinOp) or not isinstance(value.op, _OPS):
        return None
    steps, node = [], value
    while isinstance(node, gast.BinOp) and isinstance(node.op, _OPS):
        steps.append((node.op, node.right))
        node = node.left
    candidates = []
    if isinstance(node, gast.Name):
        candidates.append((node.id, steps[::-1]))
    if isinstance(value.op, _COMMUTATIVE) and isinstance(value.right, gast.Name):
        candidates.append((value.right.id, [(value.op, value.left)]))
    want = array_info(target)
    if want is None or _nbytes(want) < RELEASE_BYTES or want[1].kind not in "fc":
        return None
    for a, a_steps in candidates:
        ca = find(a)
        if ca not in owned or last.get(ca) != u or array_info(a) != want:
            continue
        seen, named, todo = set(), set(), [ca]
        while todo:                 # views of views
            for n in aliases.get(todo.pop(), ()):
                named.add(n)
                if find(n) not in seen and find(n) != ca:
                    seen.add(find(n))
                    todo.append(find(n))
        if any(last.get(n, -1) > u for n in seen) or named & in_loops:
            continue   # a view still read, or one a loop read (and may have kept)
        if any(a in astb.load_names(x) for _, x in a_steps):
            continue   # `a * a`: left as NumPy writes it
        return a, a_steps
    return None


def _nbytes(info):
    shape, dtype = info
    n = 1
    for d in shape:
        n *= d
    return n * dtype.itemsize


def _shared(expr):
    """Names whose memory the value of `expr` may share (a view, the name itself, a
    container holding it, whatever a helper not known to copy returns)."""
    if isinstance(expr, gast.Name):
        return {expr.id}
    if isinstance(expr, (gast.BinOp, gast.UnaryOp, gast.Compare, gast.Constant)):
        return set()
    if isinstance(expr, gast.Call) and call_name(expr) in FRESH_CALLS:
        return set()
    return astb.load_names(expr)


def _base(name):
    """x for x_3, x_bar for x_3_bar: a name without its SSA numbers."""
    return re.sub(r"_[0-9]+", "", name)


def _is_temp(name, bare=False):
    """A name the compiler made up (t12, tmp3_1; t12_bar, the adjoint of one, unless
    `bare`), not one of the user's."""
    if bare:
        return re.fullmatch(r"(t|tmp)[0-9]*(_[0-9]+)*", name) is not None
    return re.match(r"(t[0-9]|tmp)", name) is not None


def _rename(stmt, mapping):
    if not mapping or not any(n.id in mapping for n in astb.name_nodes(stmt)):
        return stmt   # (dels included)

    class Rename(gast.NodeTransformer):
        def visit_Name(self, n):
            if n.id in mapping:
                return gast.Name(id=mapping[n.id], ctx=n.ctx, annotation=None,
                                 type_comment=None)
            return n

    return Rename().visit(astb.clone(stmt))


def _rename_loop(block, mapping):
    names = astb.load_names(block.iter).union(*[astb.all_names(x)
                                               for x in statements(block.blocks)])
    if not (names & mapping.keys()):
        return block
    blocks = [_rename_loop(b, mapping) if isinstance(b, LoopBlock)
              else (b[0], [_rename(x, mapping) for x in b[1]]) for b in block.blocks]
    return LoopBlock(_rename(block.target, mapping), _rename(block.iter, mapping), blocks,
                     block.comment)
