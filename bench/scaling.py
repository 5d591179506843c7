"""Time and peak memory of one value_and_grad as the models grow (bench/REPORT.md, section 2).

Each point runs in a fresh process (`python -m bench.scaling '{"family": ..., "value": ...}'`),
so its first call (transformation + compilation) and its peak are its own: the process
builds the arguments, calls the gradient once (timed: the first call), then `repeats`
more times (median), then measures tracemalloc's peak of one more call with
`bench.worker._peak` (the approach of `bench.run`'s peak-memory figures).
"""
import json
import os
import re
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MLP_BASE = dict(width=512, depth=2, batch=256, n_in=784, n_out=10)
GPT_BASE = dict(vocab=65, block=64, n_embd=128, n_head=4, n_layer=4, batch=8)

# family -> (model, parameter varied, values, label)
FAMILIES = {
    "mlp_width": ("mlp", "width", (128, 256, 512, 1024, 2048), "MLP hidden width W"),
    "mlp_depth": ("mlp", "depth", (1, 2, 4, 8, 16), "MLP hidden layers L"),
    "gpt_block": ("gpt", "block", (16, 32, 64, 128, 256), "GPT sequence length T"),
    "gpt_embd": ("gpt", "n_embd", (32, 64, 128, 256, 512), "GPT width C (n_embd)"),
    "gpt_layer": ("gpt", "n_layer", (1, 2, 4, 8, 16), "GPT layers L"),
}


def deep_mlp_loss(params, x, y):
    """models/mlp.py's tanh MLP with any number of hidden layers (a list), same loss."""
    h = x
    for i in range(len(params["Ws"])):
        h = np.tanh(h @ params["Ws"][i] + params["bs"][i])
    z = h @ params["W_out"] + params["b_out"]
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(x.shape[0]), y])


def deep_mlp_args(width=512, depth=2, batch=256, n_in=784, n_out=10, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    sizes = [n_in] + [width] * depth
    params = {"Ws": [(rng.standard_normal((m, k)) / np.sqrt(m)).astype(dtype)
                     for m, k in zip(sizes[:-1], sizes[1:])],
              "bs": [np.zeros(width, dtype=dtype) for _ in range(depth)],
              "W_out": (rng.standard_normal((width, n_out)) / np.sqrt(width)).astype(dtype),
              "b_out": np.zeros(n_out, dtype=dtype)}
    x = rng.random((batch, n_in)).astype(dtype)
    y = rng.integers(0, n_out, size=batch)
    return params, x, y


def model_flops(model, cfg):
    """Multiply-add FLOPs (2 per multiply-add) of the matrix products of one forward pass;
    the gradient does about 3x this (the backward sweep has two products per forward one)."""
    if model == "mlp":
        sizes = [cfg["n_in"]] + [cfg["width"]] * cfg["depth"] + [cfg["n_out"]]
        return 2 * cfg["batch"] * sum(m * k for m, k in zip(sizes[:-1], sizes[1:]))
    B, T, C, L, V = cfg["batch"], cfg["block"], cfg["n_embd"], cfg["n_layer"], cfg["vocab"]
    per_token = L * (24 * C * C + 4 * T * C) + 2 * C * V  # qkv, proj, 2 MLP; q·k, att·v; head
    return B * T * per_token


def attention_share(cfg):
    """Fraction of the GPT's matmul FLOPs in the T² terms (q·kᵀ and att·v)."""
    T, C = cfg["block"], cfg["n_embd"]
    return 4 * T * C / (24 * C * C + 4 * T * C)


def config(family, value):
    model, key, _, _ = FAMILIES[family]
    cfg = dict(MLP_BASE if model == "mlp" else GPT_BASE)
    cfg[key] = value
    return model, cfg


def build(model, cfg, dtype=np.float32):
    """(user function, argument tuple) of one point."""
    if model == "mlp":
        c = {k: cfg[k] for k in ("width", "depth", "batch", "n_in", "n_out")}
        return deep_mlp_loss, deep_mlp_args(**c, dtype=dtype)
    from bench.workloads import gpt_args
    from models.transformer import gpt_loss
    return gpt_loss, gpt_args(0, dtype, **cfg)


_KEPT = re.compile(r"(\w+) \(([^()]*)\)")
_ITEMSIZE = {"float16": 2, "float32": 4, "float64": 8, "int64": 8, "int32": 4, "bool": 1,
             "float": 8, "int": 8}


def kept(source):
    """[(name, shape string, dtype, bytes)] from the generated code's header line
    'Kept for the backward sweep: ...'."""
    doc = " ".join(source.split())
    if "Kept for the backward sweep:" not in doc:
        return []
    text = doc.split("Kept for the backward sweep:", 1)[1].split('"""', 1)[0]
    out = []
    for name, desc in _KEPT.findall(text):
        parts = desc.split()
        dtype = parts[-1]
        shape = parts[0] if len(parts) > 1 else ""
        n = int(np.prod([int(d) for d in shape.split("x")])) if shape else 1
        out.append((name, shape, dtype, n * _ITEMSIZE.get(dtype, 8)))
    return out


def input_aliases(source):
    """Names the generated code binds to a piece of its arguments (`W2 = params['W2']`,
    `t6 = blocks[0]`, ...): keeping them costs no memory."""
    import ast
    tree = ast.parse(source)
    fdef = next(n for n in tree.body if isinstance(n, ast.FunctionDef))
    aliases = {a.arg for a in fdef.args.args}
    for stmt in ast.walk(fdef):
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name) and isinstance(stmt.value, ast.Subscript)
                and isinstance(stmt.value.value, ast.Name) and stmt.value.value.id in aliases
                and isinstance(stmt.value.slice, ast.Constant)):
            aliases.add(stmt.targets[0].id)
    return aliases


def kept_bytes(source):
    """Bytes of the values the backward sweep keeps, not counting pieces of the arguments."""
    alias = input_aliases(source)
    return int(sum(b for name, _, _, b in kept(source) if name not in alias))


def measure(task):
    """One point, in this (fresh) process."""
    import s2s_ad as ad
    from bench.worker import _nbytes, _peak
    model, cfg = config(task["family"], task["value"])
    f, args = build(model, cfg)
    df = ad.value_and_grad(f, wrt=0)
    t0 = time.perf_counter()
    df(*args)
    first = time.perf_counter() - t0
    times = []
    for _ in range(task.get("repeats", 5)):
        t0 = time.perf_counter()
        df(*args)
        times.append(time.perf_counter() - t0)
    peak, result = _peak(lambda: df(*args))
    src = ad.source(df, *args)
    return {"family": task["family"], "value": task["value"], "model": model, "config": cfg,
            "median": statistics.median(times), "min": min(times), "times": times,
            "first_call": first, "peak": peak, "grad_bytes": _nbytes(result[1]),
            "param_bytes": _nbytes(args[0]), "kept_bytes": kept_bytes(src),
            "flops": model_flops(model, cfg), "lines": src.count("\n")}


def run_point(task, timeout=600):
    """`measure(task)` in a fresh `python -m bench.scaling` (thread settings inherited)."""
    try:
        out = subprocess.run([sys.executable, "-m", "bench.scaling", json.dumps(task)],
                             capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**task, "error": f"timed out after {timeout} s"}
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {**task, "error": f"exit {out.returncode}: {tail}"}
    return json.loads(lines[-1])


def fit_exponent(xs, ys):
    """Least-squares slope of log y against log x (all points), and the slope between the
    last two points (the exponent at the largest sizes)."""
    lx, ly = np.log(np.asarray(xs, float)), np.log(np.asarray(ys, float))
    slope = float(np.polyfit(lx, ly, 1)[0]) if len(xs) > 1 else float("nan")
    last = float((ly[-1] - ly[-2]) / (lx[-1] - lx[-2])) if len(xs) > 1 else float("nan")
    return slope, last


def run_all(log=print, repeats=5, families=None, passes=2):
    """Every point of every family, `passes` times (a fresh process each time, the sizes
    of a family in increasing then decreasing order), so that a burst of load from other
    processes on a shared machine lands on one pass of a point, not on all of its samples.
    A point's time is the median of all its passes' samples, its first call the median of
    the passes', its memory figures those of the first pass (they do not depend on load)."""
    results = {}
    for fam in families or FAMILIES:
        _, _, values, _ = FAMILIES[fam]
        runs = {v: [] for v in values}
        for k in range(passes):
            for v in (values if k % 2 == 0 else values[::-1]):
                t0 = time.perf_counter()
                r = run_point({"family": fam, "value": v, "repeats": repeats})
                log(f"  {fam} {v} (pass {k + 1}): " + (r["error"] if "error" in r else
                    f"{r['median'] * 1e3:.3g} ms, peak {r['peak'] / 2**20:.3g} MiB "
                    f"(first call {r['first_call']:.2f} s; point took {time.perf_counter() - t0:.1f} s)"))
                runs[v].append(r)
        pts = []
        for v in values:
            good = [r for r in runs[v] if "error" not in r]
            if not good:
                pts.append(runs[v][0])
                continue
            r = dict(good[0])
            r["times"] = [t for g in good for t in g["times"]]
            r["median"] = statistics.median(r["times"])
            r["min"] = min(r["times"])
            r["first_call"] = statistics.median(g["first_call"] for g in good)
            r["passes"] = len(good)
            pts.append(r)
        results[fam] = pts
    return results


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    from bench.machine import pin_threads
    pin_threads()
    print(json.dumps(measure(json.loads(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
