"""What reduces the memory of one gradient (bench/REPORT.md, section 3), measured.

Each variant runs in a fresh process (`python -m bench.memory_report '{...}'`) and reports
tracemalloc's peak of one full gradient (after a warm-up, as `bench.worker._peak`), its
median time, and its largest difference from the float32 one-batch gradient:

- dtype: float64 instead of float32 (every array twice as large);
- micro: the batch split into k micro-batches, one value_and_grad each, gradients averaged
  (the loss is a mean over the batch, so the average is the same gradient): what a user
  can do without touching the compiler, paying k calls' per-call overhead;
- liveness: the generated code with a `del name` added after each local's last use where
  the compiler has not freed it already: a local the generated function does not free
  stays alive until it returns, so this measures what freeing every dead value at once
  would still buy over the code as generated.
"""
import ast
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _names_loaded(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _names_stored(node):
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def with_liveness(fn):
    """A copy of generated function fn with `del` statements after each local's last use.
    Only for straight-line code (the models' loops are unrolled); returns None otherwise."""
    source = fn.__s2s_source__
    tree = ast.parse(source)
    fdef = next(n for n in tree.body if isinstance(n, ast.FunctionDef))
    if any(isinstance(n, (ast.For, ast.While, ast.If, ast.Try, ast.With)) for n in ast.walk(fdef)):
        return None
    body = fdef.body
    local = {a.arg for a in fdef.args.args} | _names_stored(fdef)  # never globals
    last = {}
    for i, stmt in enumerate(body):
        deleted = {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Del)}
        for name in (_names_loaded(stmt) | _names_stored(stmt) | deleted) & local:
            last[name] = i
    dels = {}
    for name, i in last.items():
        if not isinstance(body[i], (ast.Return, ast.Delete)):  # the compiler's own del: kept
            dels.setdefault(i, []).append(name)
    new_body = []
    for i, stmt in enumerate(body):
        new_body.append(stmt)
        names = sorted(dels.get(i, ()))
        if names:
            new_body.append(ast.Delete(targets=[ast.Name(n, ast.Del()) for n in names]))
    fdef.body = new_body
    ast.fix_missing_locations(tree)
    namespace = dict(fn.__globals__)
    exec(compile(tree, f"<liveness {fdef.name}>", "exec"), namespace)
    return namespace[fdef.name]


def _args(model, dtype):
    from bench import workloads
    if model == "mlp":
        from models.mlp import mlp_loss
        return mlp_loss, (workloads.mlp_init(0, dtype), *workloads.mlp_batch(1, dtype=dtype))
    from models.transformer import gpt_loss
    return gpt_loss, workloads.gpt_args(0, dtype)


def _split(model, args, k, i):
    """The i-th of k micro-batches of args (rows of x and y, or of idx and targets)."""
    if model == "mlp":
        params, x, y = args
        n = x.shape[0] // k
        return params, x[i * n:(i + 1) * n], y[i * n:(i + 1) * n]
    params, idx, targets, n_head = args
    n = idx.shape[0] // k
    return params, idx[i * n:(i + 1) * n], targets[i * n:(i + 1) * n], n_head


def _add_into(acc, g, scale):
    if isinstance(acc, dict):
        for key in acc:
            _add_into(acc[key], g[key], scale)
    elif isinstance(acc, list):
        for a, b in zip(acc, g):
            _add_into(a, b, scale)
    else:
        acc += g * scale


def measure(task):
    import s2s_ad as ad
    from bench.checks import leaves, tree_map
    from bench.worker import _peak
    model, k = task["model"], task.get("micro", 1)
    dtype = np.dtype(task.get("dtype", "float32"))
    f, args = _args(model, dtype)
    df = ad.value_and_grad(f, wrt=0)
    if k > 1:
        parts = [_split(model, args, k, i) for i in range(k)]

        def call():
            value, grad = df(*parts[0])
            grad = tree_map(lambda a: a / k, grad)  # a fresh accumulator
            for p in parts[1:]:
                v, g = df(*p)
                value = value + v
                _add_into(grad, g, 1.0 / k)
            return value / k, grad
    elif task.get("liveness"):
        df(*args)
        fn, fargs = df.specialization(*args)
        lean = with_liveness(fn)
        if lean is None:
            return {**task, "error": "generated code is not straight-line"}

        def call():
            return lean(*fargs)
    else:
        def call():
            return df(*args)
    call()
    times = []
    for _ in range(task.get("repeats", 3)):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    peak, result = _peak(call)
    f32, ref_args = _args(model, np.float32)
    ref = ad.value_and_grad(f32, wrt=0)(*ref_args)
    # relative to the largest entry of the whole gradient: some leaves are zero but for
    # rounding (the bias of the keys: softmax ignores a shift), so per leaf would mislead
    scale = max(float(np.max(np.abs(b))) for _, b in leaves(ref[1]))
    err = max(float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))
              for (_, a), (_, b) in zip(leaves(result[1]), leaves(ref[1]))) / scale
    return {**task, "peak": peak, "median": statistics.median(times), "rel_err_vs_f32": err}


def run_variant(task, timeout=600):
    try:
        out = subprocess.run([sys.executable, "-m", "bench.memory_report", json.dumps(task)],
                             capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**task, "error": f"timed out after {timeout} s"}
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {**task, "error": f"exit {out.returncode}: {tail}"}
    return json.loads(lines[-1])


VARIANTS = [
    {"label": "float32, one call (bench setting)"},
    {"label": "float64", "dtype": "float64"},
    {"label": "float32, 2 micro-batches", "micro": 2},
    {"label": "float32, 4 micro-batches", "micro": 4},
    {"label": "float32, generated code + `del` after last use", "liveness": True},
]


def run_all(log=print):
    out = {}
    for model in ("mlp", "gpt"):
        rows = []
        for v in VARIANTS:
            r = run_variant({**v, "model": model})
            log(f"  {model} {v['label']}: " + (r["error"] if "error" in r else
                f"peak {r['peak'] / 2**20:.3g} MiB, {r['median'] * 1e3:.3g} ms"))
            rows.append(r)
        out[model] = rows
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    from bench.machine import pin_threads
    pin_threads()
    print(json.dumps(measure(json.loads(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
