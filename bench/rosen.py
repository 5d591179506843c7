"""Forward vs reverse mode on the vectorised Rosenbrock function: full gradients by
`ad.jacobian(rosen, mode=...)` for n = 1, 2, 4, 8, ... inputs (one output; at n = 1 the
sum is empty, f is 0, and every call is pure per-call overhead).

Forward mode pushes all n basis tangents in one batched sweep (one call of the generated
code whose tangents carry a leading axis of n directions, s2s_ad/batched.py; before that
it made n jvp calls), reverse mode pulls one cotangent per output (one vjp call); both
also make one jvp call, once per signature, to learn the output's shape. (The cost model
in analyse() below still counts n jvp sweeps for forward mode.) For context, each n also times f, one jvp call, one `ad.value_and_grad` call (a
reverse sweep) and the hand-written gradient, all interleaved with the Jacobians.
"""
import math
import statistics
import time

import numpy as np

from bench.handwritten import rosen_value_and_grad
from bench.timing import time_round_robin
from bench.workloads import rosen, rosen_input

MODES = ("forward", "reverse", "auto")


def _rounds(estimate, budget, lo=3, hi=200):
    return int(max(lo, min(hi, budget / max(estimate, 1e-9))))


def sweep(sizes, budget=2.0, forward_cap=1.5, log=print):
    """Time every n in sizes; forward mode stops (for this n and all larger) once one
    forward Jacobian is predicted to take more than forward_cap seconds. Returns
    {"rows": [...], "capped_at": n or None}; each row has n, the medians and minima of
    every timed function, and any check failure."""
    import s2s_ad as ad
    jac = {m: ad.jacobian(rosen, mode=m) for m in MODES}
    jvp, vg = ad.jvp(rosen), ad.value_and_grad(rosen)
    rows, capped_at, last_forward, last_forward_n = [], None, None, None
    for n in sizes:
        x = rosen_input(0, n)
        e0 = np.zeros(n)
        e0[0] = 1.0
        want = rosen_value_and_grad(x)[1]
        fns = {"f": lambda: rosen(x), "jvp": lambda: jvp(x, e0), "value_and_grad": lambda: vg(x),
               "hand-written": lambda: rosen_value_and_grad(x)}
        modes = list(MODES)
        if capped_at is None and last_forward is not None:
            # a doubling of n at least doubles the forward Jacobian's cost (n sweeps, each no cheaper)
            if last_forward * (n / last_forward_n) > forward_cap:
                capped_at = n
        if capped_at is not None:
            modes.remove("forward")
        row = {"n": n, "errors": {}}
        estimate = 0.0
        for name in list(fns):  # compile (first call), check, estimate one call's time
            fns[name]()
            t0 = time.perf_counter()
            fns[name]()
            estimate += time.perf_counter() - t0
        for mode in modes:
            j = jac[mode]
            try:
                got = j(x)  # the first call generates the code for this n
                t0 = time.perf_counter()
                got = j(x)
                elapsed = time.perf_counter() - t0
            except Exception as e:
                row["errors"][mode] = f"{type(e).__name__}: {e}"
                continue
            err = float(np.max(np.abs(got - want)) / (np.max(np.abs(want)) or 1.0))
            if not err <= 1e-10:
                row["errors"][mode] = f"wrong gradient: max rel. error {err:.2e}"
                continue
            fns[f"jacobian {mode}"] = (lambda j=j: j(x))
            if mode == "forward":
                last_forward, last_forward_n = elapsed, n
            else:
                estimate += elapsed
        # A slow forward Jacobian (n sweeps) gets its own few rounds: in the same round robin
        # it would leave the microsecond-scale calls three samples each, and their medians noise.
        slow = {}
        if "jacobian forward" in fns and last_forward_n == n and last_forward > 20 * estimate:
            slow = {"jacobian forward": fns.pop("jacobian forward")}
            times = time_round_robin(slow, _rounds(last_forward, budget / 2), warmup=1)
        elif "jacobian forward" in fns and last_forward_n == n:
            estimate += last_forward
        rounds = _rounds(estimate, budget / 2 if slow else budget)
        times = {**(times if slow else {}),
                 **time_round_robin(fns, rounds, warmup=1 if estimate > 0.5 else 3)}
        row["rounds"] = rounds
        row["median"] = {k: statistics.median(v) for k, v in times.items()}
        row["min"] = {k: min(v) for k, v in times.items()}
        rows.append(row)
        med = row["median"]
        log(f"  rosen n={n}: " + ", ".join(f"{k} {v * 1e3:.3g} ms" for k, v in med.items())
            + (f"; errors {row['errors']}" if row["errors"] else ""))
    return {"rows": rows, "capped_at": capped_at, "forward_cap": forward_cap}


def _log_interp(n0, r0, n1, r1):
    """n where log(ratio) crosses 0 between (n0, r0) and (n1, r1), linear in log n."""
    a, b = math.log(r0), math.log(r1)
    t = a / (a - b)
    return math.exp(math.log(n0) + t * (math.log(n1) - math.log(n0)))


def analyse(result):
    """Crossovers (measured and from the cost model), the auto-mode overhead, and the
    cost-model constants, from sweep()'s result."""
    rows = [r for r in result["rows"]]
    both = [r for r in rows if "jacobian forward" in r["median"] and "jacobian reverse" in r["median"]]
    out = {}
    # Measured crossover: forward / reverse goes from < 1 to > 1.
    ratio = [(r["n"], r["median"]["jacobian forward"] / r["median"]["jacobian reverse"]) for r in both]
    out["fwd_over_rev"] = ratio
    out["crossover"] = None
    if ratio and ratio[0][1] >= 1:
        out["crossover"] = ("below", ratio[0][0])
    for (n0, r0), (n1, r1) in zip(ratio, ratio[1:]):
        if r0 < 1 <= r1:
            out["crossover"] = ("at", _log_interp(n0, r0, n1, r1))
            break
    if out["crossover"] is None and ratio:
        out["crossover"] = ("above", ratio[-1][0])
    # Cost model with measured sweeps: forward Jacobian ~ (n + 1) jvp, reverse ~ jvp + one
    # reverse sweep (value_and_grad); equal where n = k(n) = value_and_grad(n) / jvp(n).
    model = [(r["n"], r["median"]["value_and_grad"] / r["median"]["jvp"]) for r in rows]
    out["model_sweeps"] = model
    out["model_crossover"] = None
    pts = [(n, n / k) for n, k in model]  # < 1: forward is the cheaper
    if pts and pts[0][1] >= 1:  # k < smallest n: the crossover is k itself, read off there
        out["model_crossover"] = ("ratio", model[0][1])
    for (n0, r0), (n1, r1) in zip(pts, pts[1:]):
        if r0 < 1 <= r1:
            out["model_crossover"] = ("at", _log_interp(n0, r0, n1, r1))
            break
    # What ad.jacobian adds around the sweeps (basis vectors, stacking, the shape probe's
    # bookkeeping): reverse Jacobian minus (jvp + value_and_grad), at the smallest n.
    r0 = rows[0]["median"] if rows else {}
    if "jacobian reverse" in r0:
        out["reverse_wrapper"] = r0["jacobian reverse"] - r0["jvp"] - r0["value_and_grad"]
    # auto / min(forward, reverse), over the n where both were measured.
    for stat in ("median", "min"):
        autos = [(r["n"], r[stat]["jacobian auto"] / min(r[stat]["jacobian forward"],
                                                         r[stat]["jacobian reverse"]))
                 for r in both if "jacobian auto" in r[stat]]
        out[f"auto_{stat}"] = autos
        out[f"auto_max_{stat}"] = max(autos, key=lambda p: p[1]) if autos else None
    out["auto_max"] = out["auto_max_median"]
    small = [r["median"] for r in rows if 2 <= r["n"] <= 64
             and "jacobian auto" in r["median"] and "jacobian reverse" in r["median"]]
    if small:
        out["auto_excess"] = statistics.median(m["jacobian auto"] - m["jacobian reverse"] for m in small)
        out["reverse_small"] = statistics.median(m["jacobian reverse"] for m in small)
    autos_rev = [(r["n"], r["median"]["jacobian auto"] / r["median"]["jacobian reverse"])
                 for r in rows if r not in both and "jacobian auto" in r["median"]
                 and "jacobian reverse" in r["median"]]
    out["auto_rev_only"] = autos_rev
    # Constants of the textbook model: a forward sweep costs c * f, a reverse sweep r * f.
    out["c"] = [(r["n"], r["median"]["jvp"] / r["median"]["f"]) for r in rows]
    out["r"] = [(r["n"], r["median"]["value_and_grad"] / r["median"]["f"]) for r in rows]
    return out
