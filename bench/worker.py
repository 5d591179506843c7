"""One measurement in a fresh process, printed as one line of JSON.

    python -m bench.worker '{"task": "first_call", "workload": "gpt", "kind": "hvp"}'
    python -m bench.worker '{"task": "peak_mem", "workload": "mlp", "impl": "s2s_ad"}'
    python -m bench.worker '{"task": "loop_mem", "n": 200, "impl": "lean"}'

`bench.run` starts one per measurement (`run_worker`): s2s_ad caches generated code per
function, so a first call is only a first call in a process that has not seen the function,
and a peak is only that call's peak in a process whose allocator history is its own.

- first_call: seconds from `ad.value_and_grad(f, wrt=0)` (or `ad.hvp`) to the end of the
  first call, s2s_ad already imported and the arguments built; then a second call's time.
- peak_mem / loop_mem: tracemalloc's peak during one call, after a warm-up call (so the
  transformation's own allocations are not counted). NumPy reports its data buffers to
  tracemalloc, so the peak covers arrays as well as Python objects; the arguments, made
  before, are not counted; the returned value and gradient are.
"""
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOOP_SIZE = 1000  # x of the loop-memory workload has shape (LOOP_SIZE,), float64


def _peak(call):
    """(peak bytes during call(), result); one warm-up call first."""
    call()
    gc.collect()
    tracemalloc.start()
    try:
        result = call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak, result


def _nbytes(tree):
    from bench.checks import leaves
    return int(sum(getattr(a, "nbytes", 8) for _, a in leaves(tree)))


def first_call(task):
    import s2s_ad as ad
    from bench.suite import WORKLOADS, random_direction, resolve
    w = resolve(WORKLOADS[task["workload"]])
    args = w.make_args()
    tangents = (random_direction(args[0]),) if task["kind"] == "hvp" else ()
    t0 = time.perf_counter()
    df = (ad.hvp if task["kind"] == "hvp" else ad.value_and_grad)(w.f, wrt=0)
    df._entry(df._args(args, {}), tangents)    # transformation and compilation only
    tt = time.perf_counter()
    df(*args, *tangents)
    t1 = time.perf_counter()
    df(*args, *tangents)
    t2 = time.perf_counter()
    return {"seconds": t1 - t0, "transform": tt - t0, "second_call": t2 - t1}


def peak_mem(task):
    import s2s_ad as ad
    from bench.checks import compare
    from bench.suite import WORKLOADS, resolve
    w = resolve(WORKLOADS[task["workload"]])
    args = w.make_args()
    if task["impl"] == "s2s_ad":
        df = ad.value_and_grad(w.f, wrt=0)
        peak, result = _peak(lambda: df(*args))
        bad = compare(result, w.handwritten(*args), w.rtol)
    else:
        peak, result = _peak(lambda: w.handwritten(*args))
        bad = None
    return {"peak": peak, "args_bytes": _nbytes(args[0]), "grad_bytes": _nbytes(result[1]),
            "check": bad}


def loop_mem(task):
    import numpy as np
    import s2s_ad as ad
    from bench import handwritten, workloads
    from bench.checks import compare
    n = task["n"]
    x = np.random.default_rng(0).standard_normal(LOOP_SIZE)
    df = ad.value_and_grad(workloads.chain_n, wrt=0)
    impls = {"s2s_ad": lambda: df(x, n),
             "hand-written": lambda: handwritten.chain_value_and_grad(x, steps=n),
             "lean": lambda: handwritten.chain_lean_value_and_grad(x, n)}
    peak, result = _peak(impls[task["impl"]])
    bad = compare(result, handwritten.chain_lean_value_and_grad(x, n), 1e-8)
    out = {"peak": peak, "array_bytes": int(x.nbytes), "check": bad}
    if task["impl"] == "s2s_ad":  # what the generated code says it keeps for the backward sweep
        doc = " ".join(ad.source(df, x, n).split())
        if "Kept for the backward sweep:" in doc:
            out["kept"] = doc.split("Kept for the backward sweep:", 1)[1].split('"""', 1)[0].strip()
    return out


TASKS = {"first_call": first_call, "peak_mem": peak_mem, "loop_mem": loop_mem}


def run_worker(task, timeout=900):
    """Run `task` in a fresh `python -m bench.worker` (repository root as working directory,
    the pinned thread environment inherited). Returns its dict, or {"error": message}."""
    try:
        out = subprocess.run([sys.executable, "-m", "bench.worker", json.dumps(task)],
                             capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {out.returncode}: {tail}"}
    return json.loads(lines[-1])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    task = json.loads(argv[0])
    from bench.machine import pin_threads
    pin_threads()
    print(json.dumps(TASKS[task["task"]](task)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
