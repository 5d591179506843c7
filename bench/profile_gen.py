"""A line profile of s2s_ad's generated code, grouped by primitive and by sweep.

The generated function's source is parsed with `ast`; every statement of its body (and of
the bodies of loops and branches, whose headers are then not timed) is wrapped in
`time.perf_counter()` readings that add its elapsed time to an array slot keyed by the
statement. The instrumented copy is compiled in the generated function's own namespace
and called like it. Each statement is attributed to a primitive, the outermost operation on
its right-hand side once views are seen through (`np.reshape(a @ W, ...)` is a matmul,
`np.broadcast_to(g, ...)` is a view), and to the forward or the backward sweep (the
generated source marks the backward sweep with a `# -- backward sweep --` comment).
"""
import ast
import gc
import statistics
import time

import numpy as np

BACKWARD_MARKER = "# -- backward sweep --"

# Calls that only make a view (no arithmetic): look through them to what they wrap.
VIEWS = {"reshape", "transpose", "swapaxes", "moveaxis", "expand_dims", "squeeze", "ravel",
         "broadcast_to"}
BINOPS = {ast.MatMult: "@ (matmul)", ast.Add: "+", ast.Sub: "-", ast.Mult: "*",
          ast.Div: "/", ast.Pow: "**", ast.FloorDiv: "//", ast.Mod: "%"}
# Grouping of primitives into the kinds of work the report talks about.
FAMILIES = {
    "@ (matmul)": "matrix products", "np.matmul": "matrix products", "np.dot": "matrix products",
    "np.einsum": "matrix products",
    "+": "elementwise arithmetic", "-": "elementwise arithmetic", "*": "elementwise arithmetic",
    "/": "elementwise arithmetic", "**": "elementwise arithmetic", "negative": "elementwise arithmetic",
    "np.tanh": "transcendental", "np.exp": "transcendental", "np.log": "transcendental",
    "np.sqrt": "transcendental",
    "np.sum": "reductions", "np.mean": "reductions", "np.max": "reductions",
    "indexing (gather)": "indexing and scatter", "np.add.at": "indexing and scatter",
    "np.zeros_like": "indexing and scatter",
    "np.where": "select / compare", "==": "select / compare",
}


def _dotted(node):
    """'np.add.at' for an attribute chain of names, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def primitive(node):
    """The primitive a statement's expression is attributed to."""
    if isinstance(node, ast.Return):
        return "return (astype, packing)" if node.value is not None else "return"
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Expr)):
        return primitive(node.value)
    if isinstance(node, ast.Delete):
        return "del (freeing)"
    if isinstance(node, (ast.For, ast.While, ast.If)):
        return type(node).__name__.lower()
    if isinstance(node, ast.Call):
        name = _dotted(node.func)
        short = name.rsplit(".", 1)[-1] if name else None
        if short in VIEWS and node.args:
            inner = primitive(node.args[0])
            return inner if inner not in ("name", "attribute", "lookup") else "views (reshape, transpose)"
        if name and name.startswith("np."):
            return name
        if isinstance(node.func, ast.Attribute):  # a method: x.astype(...), stack.append(...)
            return "." + node.func.attr
        return name or "call"
    if isinstance(node, ast.BinOp):
        return BINOPS.get(type(node.op), type(node.op).__name__)
    if isinstance(node, ast.UnaryOp):
        return "negative" if isinstance(node.op, ast.USub) else type(node.op).__name__.lower()
    if isinstance(node, ast.Compare):
        return "==" if isinstance(node.ops[0], ast.Eq) else "compare"
    if isinstance(node, ast.Subscript):
        key = node.slice
        if isinstance(key, ast.Constant):  # params['W1'], shape[0]: a look-up
            return "lookup"
        return "indexing (gather)"
    if isinstance(node, ast.Attribute):
        return "attribute"
    if isinstance(node, (ast.Name, ast.Constant)):
        return "name"
    if isinstance(node, (ast.Tuple, ast.List, ast.Dict)):
        return "packing"
    return type(node).__name__


class _Instrument(ast.NodeTransformer):
    """Wraps statements in timer readings; records (slot -> statement) in self.stmts."""

    def __init__(self):
        self.stmts = []

    def _timed(self, stmt):
        slot = len(self.stmts)
        self.stmts.append(stmt)
        start = ast.parse("__t0 = __pc()").body[0]
        stop = ast.parse(f"__acc[{slot}] += __pc() - __t0").body[0]
        if isinstance(stmt, ast.Return) and stmt.value is not None:
            assign = ast.Assign(targets=[ast.Name("__ret", ast.Store())], value=stmt.value)
            return [start, assign, stop, ast.Return(ast.Name("__ret", ast.Load()))]
        return [start, stmt, stop]

    def block(self, body):
        out = []
        for stmt in body:
            if isinstance(stmt, (ast.For, ast.While, ast.If)):
                stmt.body = self.block(stmt.body)
                stmt.orelse = self.block(stmt.orelse)
                out.append(stmt)
            elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                out.append(stmt)  # the docstring
            else:
                out.extend(self._timed(stmt))
        return out


class Profile:
    """Per-statement times of one specialisation of a transformed function."""

    def __init__(self, transformed, args):
        fn, self.args = transformed.specialization(*args)
        self.fn = fn
        self.source = fn.__s2s_source__
        lines = self.source.splitlines()
        marker = [i + 1 for i, line in enumerate(lines) if line.strip() == BACKWARD_MARKER]
        self.backward_from = marker[0] if marker else len(lines) + 1
        tree = ast.parse(self.source)
        fdef = next(n for n in tree.body if isinstance(n, ast.FunctionDef))
        inst = _Instrument()
        fdef.body = inst.block(fdef.body)
        self.stmts = inst.stmts
        self.texts = [ast.get_source_segment(self.source, s) or ast.unparse(s) for s in self.stmts]
        self.kinds = [primitive(s) for s in self.stmts]
        self.sweeps = ["backward" if s.lineno > self.backward_from else "forward" for s in self.stmts]
        ast.fix_missing_locations(tree)
        namespace = dict(fn.__globals__)
        self.acc = np.zeros(len(self.stmts))
        namespace.update(__pc=time.perf_counter, __acc=self.acc)
        exec(compile(tree, f"<profiled {fdef.name}>", "exec"), namespace)
        self.instrumented = namespace[fdef.name]

    def run(self, repeats, warmup=2):
        """Times `repeats` calls each of the instrumented and the plain function, alternating
        (garbage collector off, as timeit). Returns a dict of per-statement medians and totals."""
        plain, inst = self.fn, self.instrumented
        for _ in range(warmup):
            plain(*self.args)
            inst(*self.args)
        per_call, inst_wall, plain_wall = [], [], []
        gc.collect()
        was = gc.isenabled()
        gc.disable()
        try:
            for _ in range(repeats):
                t0 = time.perf_counter()
                plain(*self.args)
                plain_wall.append(time.perf_counter() - t0)
                self.acc[:] = 0.0
                t0 = time.perf_counter()
                inst(*self.args)
                inst_wall.append(time.perf_counter() - t0)
                per_call.append(self.acc.copy())
        finally:
            if was:
                gc.enable()
        per_call = np.array(per_call)
        return {"stmt_median": np.median(per_call, axis=0),
                "stmt_sum_median": float(np.median(per_call.sum(axis=1))),
                "instrumented_wall": float(statistics.median(inst_wall)),
                "plain_wall": float(statistics.median(plain_wall)),
                "repeats": repeats}


def summarize(prof, res, top=10):
    """Tables as lists of dicts: by primitive, by family, by sweep, and the top lines."""
    t = res["stmt_median"]
    total = float(t.sum())
    by_prim = {}
    for k, kind in enumerate(prof.kinds):
        d = by_prim.setdefault(kind, {"primitive": kind, "time": 0.0, "lines": 0,
                                      "forward": 0.0, "backward": 0.0})
        d["time"] += t[k]
        d["lines"] += 1
        d[prof.sweeps[k]] += t[k]
    prims = sorted(by_prim.values(), key=lambda d: -d["time"])
    for d in prims:
        d["share"] = d["time"] / total
        d["family"] = FAMILIES.get(d["primitive"], "other (views, look-ups, packing)")
    fams = {}
    for d in prims:
        f = fams.setdefault(d["family"], {"family": d["family"], "time": 0.0, "lines": 0})
        f["time"] += d["time"]
        f["lines"] += d["lines"]
    fams = sorted(fams.values(), key=lambda d: -d["time"])
    for f in fams:
        f["share"] = f["time"] / total
    sweeps = {s: float(sum(t[k] for k in range(len(t)) if prof.sweeps[k] == s))
              for s in ("forward", "backward")}
    order = np.argsort(-t)[:top]
    top_lines = [{"line": prof.stmts[k].lineno, "time": float(t[k]), "share": float(t[k] / total),
                  "primitive": prof.kinds[k], "sweep": prof.sweeps[k], "text": prof.texts[k]}
                 for k in order]
    return {"primitives": prims, "families": fams, "sweeps": sweeps, "top": top_lines,
            "total": total, "statements": len(prof.stmts)}
