"""Where the remaining time goes: the RESULTS.md section on the targets a run missed.

For each workload whose value_and_grad or hvp target the run missed, the generated code is
line-profiled in the benchmark's own process (bench/profile_gen.py, same arguments): how
much of it is matrix products, and which other statements take the most time. For hvp,
forward mode over the adjoint evaluates a product and its two tangent products
(`a_dot @ b + a @ b_dot`) for each product it needs (8 for every 3 of value_and_grad), so the
products' time alone, divided by value_and_grad's, is a floor that no hvp written as
forward-over-reverse gets under; what the generated code spends beyond that floor is what
could still be closed.
"""
import resource
import statistics

import numpy as np

import s2s_ad as ad
from bench import profile_gen
from bench.suite import random_direction

PRODUCTS = ("@", "np.matmul(", "np.dot(", "np.einsum(", "np.tensordot(")


class _Tangents:
    """profile_gen.Profile takes a transformed function and its arguments; hvp's direction
    is a tangent, handed over separately (`_tangents`)."""

    def __init__(self, transformed):
        self.transformed = transformed

    def specialization(self, *args):
        fn, primal = self.transformed.specialization(*args[:-1], _tangents=(args[-1],))
        return fn, tuple(primal) + (args[-1],)


def profile(w, kind, repeats=8, top=6):
    """{total, products, top: [(seconds, sweep, text)]} of one specialisation's statements."""
    args = w.make_args()
    if kind == "hvp":
        target = _Tangents(ad.hvp(w.f, wrt=0))
        args = tuple(args) + (random_direction(args[0]),)
    else:
        target = ad.value_and_grad(w.f, wrt=0)
    prof = profile_gen.Profile(target, args)
    t = prof.run(repeats)["stmt_median"]
    faults = {"s2s_ad": _faults(lambda: prof.fn(*prof.args))}
    if kind == "value_and_grad":
        faults["hand-written"] = _faults(lambda: w.handwritten(*w.make_args()))
    is_product = [any(p in text for p in PRODUCTS) for text in prof.texts]
    order = [k for k in np.argsort(-t) if not is_product[k]][:top]
    other = {}
    if kind == "hvp":   # what value_and_grad spends outside products: the hvp's floor needs it
        own = profile(w, "value_and_grad", repeats, top)
        other["vag_rest"] = own["total"] - own["products"]
        other["vag_total"] = own["total"]
    return {**other, "total": float(t.sum()), "products": float(sum(t[k] for k in range(len(t))
                                                                      if is_product[k])),
            # (hvp code has no backward marker: forward mode over the whole adjoint)
            "top": [(float(t[k]), prof.sweeps[k] if kind != "hvp" else "tangent",
                     " ".join(prof.texts[k].split())) for k in order],
            "faults": faults}


def _faults(call, n=5):
    """(minor page faults, system seconds) per call, from getrusage around n calls."""
    call()
    before = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(n):
        call()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (after.ru_minflt - before.ru_minflt) / n, (after.ru_stime - before.ru_stime) / n


def missed(results):
    """[(workload result, kind)] for the value_and_grad and hvp targets this run missed."""
    out = []
    for r in results.get("workloads", []):
        med = {k: statistics.median(v) for k, v in r["times"].items()}
        if "s2s_ad" in med and med["s2s_ad"] / med["hand-written"] > r["w"].target:
            out.append((r, "value_and_grad"))
        tgt = r["w"].hvp_target
        if tgt and "s2s_ad hvp" in med and "s2s_ad" in med and med["s2s_ad hvp"] / med["s2s_ad"] > tgt:
            out.append((r, "hvp"))
    return out


def section(results, profiles):
    """Markdown lines: for each missed target, the figure, the profile, what would close it."""
    if not profiles:
        return []
    out = ["## 6. Targets missed in this run: the profile, and what would close it\n",
           "Line profiles of the generated code taken in this process after the timings "
           "(`bench/gaps.py`; per-statement medians, so their sum is a little above the plain "
           "call's time). Statements outside matrix products, most expensive first.\n"]
    for r, kind in missed(results):
        p = profiles.get((r["name"], kind))
        if p is None:
            continue
        med = {k: statistics.median(v) for k, v in r["times"].items()}
        share = p["products"] / p["total"]
        if kind == "value_and_grad":
            ratio = med["s2s_ad"] / med["hand-written"]
            out.append(f"**{r['name']} value_and_grad: {ratio:.2f}x the hand-written pass** "
                       f"(target {r['w'].target:.2f}). Matrix products are {share:.0%} of the "
                       f"generated code's time ({p['products'] * 1e3:.0f} of "
                       f"{p['total'] * 1e3:.0f} ms), the same products the hand-written pass "
                       "does; the rest is elementwise and reduction work:\n")
        else:
            ratio = med["s2s_ad hvp"] / med["s2s_ad"]
            floor = p["products"] / med["s2s_ad"]
            out.append(f"**{r['name']} hvp: {ratio:.2f}x value_and_grad** (target "
                       f"{r['w'].hvp_target}). Its matrix products alone take "
                       f"{p['products'] * 1e3:.0f} ms, **{floor:.2f}x** value_and_grad's "
                       f"median ({share:.0%} of the hvp). The rest:\n")
        out += ["| time | part | statement |", "|---|---|---|"]
        for seconds, sweep, text in p["top"]:
            text = text if len(text) <= 150 else text[:147] + "..."
            out.append(f"| {seconds * 1e3:.2f} ms | {sweep} | `{text}` |")
        out.append("")
        f = p["faults"]
        faults = "; ".join(f"{impl} {n:,.0f} minor page faults and {sys_s * 1e3:.0f} ms of "
                           f"system time per call" for impl, (n, sys_s) in f.items())
        out.append(f"Page faults of freshly allocated arrays (getrusage over 5 calls): {faults}.")
        out.append("")
        mlp = [statistics.median(x["times"]["s2s_ad hvp"]) / statistics.median(x["times"]["s2s_ad"])
               for x in results.get("workloads", []) if x["name"] == "mlp"
               and "s2s_ad hvp" in x["times"] and "s2s_ad" in x["times"]]
        faulting = f["s2s_ad"][0] > 1000
        budget = rest = cut = floor = vag_rest = estimate = 0.0
        if kind == "hvp":
            floor = p["products"] / med["s2s_ad"]
            budget = (r["w"].hvp_target * med["s2s_ad"] - p["products"]) * 1e3
            rest = (p["total"] - p["products"]) * 1e3
            cut = max(0.0, 1 - budget / rest) if rest else 0.0
            vag_rest = p["vag_rest"] * 1e3
            # (profiles' sums run a little above plain calls: both sides in profile time)
            estimate = (p["products"] + 2 * p["vag_rest"]) / p["vag_total"]
        out.append(CLOSE[kind].format(
            mlp=f"{mlp[0]:.2f}x in this run" if mlp else "lower",
            faults=(FAULTS if faulting else NO_FAULTS) if kind == "value_and_grad" else
            ("page faults of new arrays among them, above" if faulting else NO_FAULTS_SHORT),
            floor=floor, budget=budget, rest=rest,
            cut=cut, vag_rest=vag_rest, estimate=estimate))
        out.append("")
    return out


CLOSE = {
    "value_and_grad": (
        "What would close it: dead arrays are already updated in place (`s2s_ad/inplace.py`: "
        "bias adds, residual adds, accumulated adjoints), elementwise regions walked back in "
        "one in-place step (`s2s_ad/pointwise.py`) and sums of products written as one "
        "`np.einsum` pass (`s2s_ad/contract.py`); {faults} What the hand-written pass still "
        "does better is algebra the user's code does not say: it folds the attention scale "
        "into q (an array a quarter the size of the scores), adds the causal mask as an array "
        "instead of `np.where`, and takes LayerNorm's backward in two passes over its saved "
        "normalised input."),
    "hvp": (
        "What would close it: the products are fixed by the method (forward mode over the "
        "adjoint evaluates each product of the forward sweep and its two tangent products, the "
        "same three for the input's adjoint, and two tangent products for the weight's adjoint, "
        "whose value is not returned: 8 products where value_and_grad has 3), and by themselves "
        "take {floor:.2f}x value_and_grad. The target leaves {budget:.0f} ms for everything "
        "else, which takes {rest:.0f} ms in the profile: it has to shrink by {cut:.0%}. That "
        "work is passes over memory ({faults}): every elementwise statement of the adjoint "
        "gets a tangent of two or three more passes (`h_dot * t + t_dot * h`), about as "
        "few as NumPy allows (written as one region, a tangent needs as many passes: "
        "one partial per input). Shrinking it that far takes fusing the passes, the value and its "
        "tangent computed in one loop over the array, which NumPy cannot say: a compiled "
        "kernel (numba, numexpr) could, and s2s_ad generates plain NumPy by design. "
        "A floor for unfused code: value_and_grad's own work outside products takes "
        "{vag_rest:.0f} ms in its profile; the hvp does that work too (the values of the "
        "forward and adjoint sweeps it differentiates) and at least one more pass per "
        "statement for their tangents, so its products plus twice that, **{estimate:.2f}x** "
        "value_and_grad (both in profile time), is about the least an hvp of NumPy "
        "statements can take on this model. "
        "(The MLP, whose largest product reads the data, which has no tangent, "
        "is {mlp}.)"),
}

FAULTS = ("in this process that costs page faults of freshly allocated arrays (above: glibc "
          "hands freed large blocks back to the system), which in-place updates, or an "
          "allocator that keeps freed blocks, avoid.")
NO_FAULTS = ("this process pays no page faults for new arrays (above; the benchmark fixes the "
             "allocator's thresholds, see Machine and software), so what is left is passes "
             "over memory.")
NO_FAULTS_SHORT = "no page faults for new arrays in this process, above"