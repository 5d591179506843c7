"""The whole benchmark in one command: regenerates bench/RESULTS.md and bench/plots/*.png.

    python -m bench.run [--quick] [--workloads mlp,gpt,chain] [--skip SECTIONS] [--out PATH]

Sections (all by default; `--skip` takes a comma-separated list of them):

- timing:     per workload (mlp, gpt, chain): f, hand-written value_and_grad, s2s_ad
              value_and_grad, s2s_ad hvp and the installed peers (autograd, PyTorch, JAX jit
              and eager), each checked before it is timed, all timed interleaved in this one
              process;
- first-call: s2s_ad's first value_and_grad / hvp call (transformation + compilation), each
              in a fresh process;
- memory:     peak memory of one value_and_grad, s2s_ad vs hand-written, each in a fresh process;
- rosen:      full Rosenbrock gradients by ad.jacobian in forward, reverse and auto mode, for
              n = 1, 2, 4, ..., 2^16 and 10^5 (forward mode capped by time);
- loop:       peak memory of one gradient of a loop of N iterations vs one array per iteration;
- cache-hit:  what a cache hit of value_and_grad adds over calling the generated function
              (bench/cache_hit.py), in this process.

BLAS (and torch, JAX) run on one thread throughout. `--quick` is a smoke test (about two
minutes) that writes to bench/results-quick/ unless `--out` says otherwise. Exits with
status 1 if s2s_ad computes a wrong result anywhere.
"""
import argparse
import datetime
import os
import statistics
import sys
import time
import traceback

from bench import machine

BENCH = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(BENCH, "RESULTS.md")
QUICK_RESULTS = os.path.join(BENCH, "results-quick", "RESULTS.md")
SECTIONS = ("timing", "first-call", "memory", "rosen", "loop", "cache-hit")
# Targets of issue 5 (value_and_grad vs hand-written is per workload: suite.Workload.target)
MEMORY_TARGET = 1.10  # gpt peak memory, s2s_ad / hand-written
FIRST_CALL_TARGETS = {"value_and_grad": 0.5, "hvp": 1.5}  # gpt first call minus a later call, s
AUTO_TARGET = 1.10  # ad.jacobian(mode="auto") within this factor of the better mode
ROSEN_SIZES = [2 ** k for k in range(17)] + [100_000]
ROSEN_SIZES_QUICK = [2 ** k for k in range(12)]
FIRST_CALL_REPEATS = 3
LOOP_NS = (50, 100, 200, 400)
LOOP_NS_QUICK = (50, 100)


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def one_line(text, limit=200):
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[:limit - 3] + "..."


def fmt_time(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_bytes(n):
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"


# -- 1. timing --------------------------------------------------------------------------------

def hvp_error(w, args, v, hv):
    """Relative error (2-norm over all entries) of hv against central differences of the
    hand-written gradient along v, Richardson-extrapolated (steps eps and eps/2)."""
    import numpy as np
    from bench.checks import leaves, tree_map

    def flat(tree):
        return np.concatenate([np.ravel(a).astype(np.float64) for _, a in leaves(tree)])

    def grad_at(s):
        return flat(w.handwritten(tree_map(lambda a, b: a + s * b, args[0], v), *args[1:])[1])

    def diff(h):
        return (grad_at(h) - grad_at(-h)) / (2 * h)

    names_hv = [n for n, _ in leaves(hv)]
    names_x = [n for n, _ in leaves(args[0])]
    if names_hv != names_x:
        return float("inf")
    coarse, fine = diff(w.hvp_eps), diff(w.hvp_eps / 2)
    ref = (4 * fine - coarse) / 3
    return float(np.linalg.norm(flat(hv) - ref) / np.linalg.norm(ref))


def time_workload(w, rounds, show_traceback):
    import s2s_ad as ad
    from bench import peers
    from bench.checks import check_finite_differences, compare
    from bench.suite import random_direction, resolve
    from bench.timing import time_round_robin

    w = resolve(w)
    args = w.make_args()
    res = {"name": w.name, "rounds": rounds, "notes": {}, "wrong": []}

    # The baseline must be right, or every ratio below is meaningless: stop if not.
    res["fd_err"] = check_finite_differences(w.f, w.handwritten, w.fd_args())
    want = w.handwritten(*args)
    if (bad := compare((w.f(*args), want[1]), want, w.rtol)) is not None:
        raise AssertionError(f"{w.name}: hand-written value differs from f: {bad}")
    fns = {"f": lambda: w.f(*args), "hand-written": lambda: w.handwritten(*args)}

    def failed(key, e):
        if show_traceback:
            traceback.print_exc()
        res["notes"][key] = f"not supported: {type(e).__name__}: {e}"

    # s2s_ad value_and_grad: a wrong result is reported and not timed.
    try:
        t0 = time.perf_counter()
        df = ad.value_and_grad(w.f, wrt=0)
        first = df(*args)
        res["first_call_here"] = time.perf_counter() - t0
        bad = compare(first, want, w.rtol) or compare(df(*args), want, w.rtol)
        if bad is None:
            fns["s2s_ad"] = lambda: df(*args)
        else:
            res["notes"]["s2s_ad"] = f"WRONG result: {bad}"
            res["wrong"].append("s2s_ad value_and_grad")
    except Exception as e:
        failed("s2s_ad", e)

    # s2s_ad hvp along a random direction, checked against differences of the hand-written gradient.
    try:
        v = random_direction(args[0], seed=1)
        t0 = time.perf_counter()
        h = ad.hvp(w.f, wrt=0)
        h(*args, v)
        res["hvp_first_here"] = time.perf_counter() - t0
        err = hvp_error(w, args, v, h(*args, v))
        res["hvp_err"] = err
        if err <= w.hvp_tol:
            fns["s2s_ad hvp"] = lambda: h(*args, v)
        else:
            res["notes"]["s2s_ad hvp"] = (f"WRONG result: rel. error {err:.2e} against differences "
                                          f"of the hand-written gradient (tolerance {w.hvp_tol:g})")
            res["wrong"].append("s2s_ad hvp")
    except Exception as e:
        failed("s2s_ad hvp", e)

    # Peers: not installed or not wired -> a note; a wrong result -> a note, not timed.
    for peer in peers.PEERS:
        if peer not in w.peers:
            continue
        try:
            call, to_numpy = peers.build(peer, w.name, args)
            t0 = time.perf_counter()
            out = call()
            first = time.perf_counter() - t0
            bad = compare(to_numpy(out), want, w.peer_rtol, check_dtype=False)
            if bad is None:
                fns[peer] = call
                res["notes"][peer] = f"first call {fmt_time(first)}" + (
                    " (includes jit compilation)" if peer == "jax-jit" else "")
            else:
                res["notes"][peer] = f"WRONG result, not timed: {bad}"
        except peers.NotAvailable as e:
            res["notes"][peer] = f"skipped: {e}"
        except Exception as e:
            if show_traceback:
                traceback.print_exc()
            res["notes"][peer] = f"failed, not timed: {type(e).__name__}: {e}"

    log(f"  {w.name}: timing {', '.join(fns)} for {rounds} rounds")
    res["times"] = time_round_robin(fns, rounds, w.warmup)
    return res


# -- 2. fresh processes -----------------------------------------------------------------------

def first_calls(names, repeats):
    """Median of `repeats` fresh processes for each workload and kind."""
    from bench.worker import run_worker
    out = {}
    for name in names:
        for kind in ("value_and_grad", "hvp"):
            runs = [run_worker({"task": "first_call", "workload": name, "kind": kind})
                    for _ in range(repeats)]
            ok = [r["seconds"] for r in runs if "seconds" in r]
            # what the first call costs over the second, both in the same fresh process
            # (the same allocator state: the timing process's is fixed, the workers' not)
            extra = [r["seconds"] - r["second_call"] for r in runs if "second_call" in r]
            transform = [r["transform"] for r in runs if "transform" in r]
            out[(name, kind)] = {"seconds": statistics.median(ok), "all": ok,
                                 "extra": statistics.median(extra) if extra else None,
                                 "transform": statistics.median(transform) if transform else None} \
                if len(ok) == len(runs) else next(r for r in runs if "error" in r)
            log(f"  first call {name} {kind}: {out[(name, kind)]}")
    return out


def memory(names):
    from bench.worker import run_worker
    out = {}
    for name in names:
        if name not in ("mlp", "gpt"):
            continue
        out[name] = {}
        for impl in ("hand-written", "s2s_ad"):
            r = run_worker({"task": "peak_mem", "workload": name, "impl": impl})
            out[name][impl] = r
            log(f"  peak memory {name} {impl}: {r}")
    return out


def loop_memory(ns):
    from bench.worker import run_worker
    out = {}
    for n in ns:
        out[n] = {}
        for impl in ("lean", "hand-written", "s2s_ad"):
            r = run_worker({"task": "loop_mem", "n": n, "impl": impl})
            out[n][impl] = r
            out[n]["array_bytes"] = r.get("array_bytes", out[n].get("array_bytes", 8000))
            log(f"  loop memory N={n} {impl}: {r}")
    return out


# -- report -----------------------------------------------------------------------------------

def timing_section(results, first):
    lines = ["| workload | implementation | median | min | ÷ f | ÷ hand-written | notes |",
             "|---|---|---|---|---|---|---|"]
    summary = ["| workload | hand-written ÷ f | s2s_ad ÷ f | **s2s_ad ÷ hand-written** "
               f"(target ≤ 1.05; chain ≤ 1.2) | first call, fresh process | hvp | **hvp ÷ s2s_ad "
               "value_and_grad** (target) |", "|---|---|---|---|---|---|---|"]
    for r in results:
        med = {k: statistics.median(v) for k, v in r["times"].items()}
        low = {k: min(v) for k, v in r["times"].items()}
        base = f"| {r['name']} ({r['rounds']} rounds) "
        f, hw = med["f"], med["hand-written"]

        def row(label, key, note=""):
            if key in med:
                lines.append(base + f"| {label} | {fmt_time(med[key])} | {fmt_time(low[key])} "
                             f"| {med[key] / f:.2f} | {med[key] / hw:.2f} | {one_line(note, 260)} |")
            else:
                lines.append(base + f"| {label} | – | – | – | – | {one_line(note, 260)} |")

        row("f", "f")
        row("hand-written value_and_grad", "hand-written",
            f"finite differences{r['w'].fd_note}: max rel. error {r['fd_err']:.1e}")
        fc = first.get((r["name"], "value_and_grad"), {})
        fc_text = (f"first call (transform + compile + call), median of {len(fc['all'])} fresh "
                   f"process(es): {fmt_time(fc['seconds'])}{_over_second(fc)}"
                   if "seconds" in fc else f"first call: {fc.get('error', 'not measured')}")
        row("s2s_ad value_and_grad", "s2s_ad", r["notes"].get("s2s_ad", fc_text))
        hc = first.get((r["name"], "hvp"), {})
        hvp_note = r["notes"].get("s2s_ad hvp") or (
            f"checked against differences of the hand-written gradient: rel. error {r['hvp_err']:.1e}; "
            + (f"first call, median of {len(hc['all'])} fresh process(es): {fmt_time(hc['seconds'])}"
               f"{_over_second(hc)}" if "seconds" in hc
               else f"first call: {hc.get('error', 'not measured')}"))
        row("s2s_ad hvp (random direction)", "s2s_ad hvp", hvp_note)
        for peer in r["w"].peers:
            row(peer, peer, r["notes"].get(peer, ""))

        s2s = f"{med['s2s_ad'] / f:.2f}" if "s2s_ad" in med else "–"
        if "s2s_ad" in med:
            ratio = med["s2s_ad"] / hw
            vs = f"**{ratio:.2f}** ({'met' if ratio <= r['w'].target else 'missed'})"
        else:
            vs = one_line(r["notes"].get("s2s_ad", "–"), 80)
        fc_s = fmt_time(fc["seconds"]) if "seconds" in fc else "–"
        if "s2s_ad hvp" in med and "s2s_ad" in med:
            hr = med["s2s_ad hvp"] / med["s2s_ad"]
            tgt = r["w"].hvp_target
            hv = f"**{hr:.2f}**" + (f" (≤ {tgt}: {'met' if hr <= tgt else 'missed'})" if tgt else " (no target)")
            hv_t = fmt_time(med["s2s_ad hvp"])
        else:
            hv, hv_t = "–", one_line(r["notes"].get("s2s_ad hvp", "–"), 80)
        summary.append(f"| {r['name']} | {hw / f:.2f} | {s2s} | {vs} | {fc_s} | {hv_t} | {hv} |")
    return "\n".join(summary), "\n".join(lines)


def memory_section(mem):
    lines = ["| workload | hand-written peak | s2s_ad peak | **s2s_ad ÷ hand-written** | "
             "gradient itself | notes |", "|---|---|---|---|---|---|"]
    for name, m in mem.items():
        hw, s2s = m.get("hand-written", {}), m.get("s2s_ad", {})
        if "peak" in hw and "peak" in s2s:
            note = "s2s_ad's result checked against hand-written" if s2s.get("check") is None \
                else f"s2s_ad result WRONG: {s2s['check']}"
            lines.append(f"| {name} | {fmt_bytes(hw['peak'])} | {fmt_bytes(s2s['peak'])} | "
                         f"**{s2s['peak'] / hw['peak']:.2f}** | {fmt_bytes(hw['grad_bytes'])} | {one_line(note)} |")
        else:
            err = one_line(hw.get("error") or s2s.get("error") or "failed")
            lines.append(f"| {name} | {fmt_bytes(hw['peak']) if 'peak' in hw else '–'} | "
                         f"{fmt_bytes(s2s['peak']) if 'peak' in s2s else '–'} | – | – | {err} |")
    return "\n".join(lines)


def rosen_section(rosen, an):
    rows = rosen["rows"]
    lines = ["| n | rounds | f | one jvp | one value_and_grad | hand-written gradient | jacobian forward "
             "| jacobian reverse | jacobian auto | forward ÷ reverse | auto ÷ best | auto ÷ best (minima) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        m = r["median"]

        def t(k):
            if k in m:
                return fmt_time(m[k])
            if k in r["errors"]:
                return "failed: " + one_line(r["errors"][k], 80)
            return "capped" if k == "jacobian forward" else "–"
        fr = f"{m['jacobian forward'] / m['jacobian reverse']:.2f}" \
            if "jacobian forward" in m and "jacobian reverse" in m else "–"
        modes = [m[k] for k in ("jacobian forward", "jacobian reverse") if k in m]
        ab = f"{m['jacobian auto'] / min(modes):.2f}" if "jacobian auto" in m and modes else "–"
        lo = r["min"]
        lmodes = [lo[k] for k in ("jacobian forward", "jacobian reverse") if k in lo]
        ab_min = f"{lo['jacobian auto'] / min(lmodes):.2f}" if "jacobian auto" in lo and lmodes else "–"
        lines.append(f"| {r['n']} | {r['rounds']} | {t('f')} | {t('jvp')} | {t('value_and_grad')} | "
                     f"{t('hand-written')} | {t('jacobian forward')} | {t('jacobian reverse')} | "
                     f"{t('jacobian auto')} | {fr} | {ab} | {ab_min} |")
    return "\n".join(lines)


def crossover_text(c):
    if c is None:
        return "not measured"
    kind, n = c
    return {"at": f"n ≈ {n:.3g}", "below": f"below n = {n} (forward is already the slower at n = {n})",
            "ratio": f"n ≈ {n:.2f} (one reverse sweep ÷ one forward sweep at the smallest n)",
            "above": f"above n = {n} (forward still the faster at the largest n measured)"}[kind]


def rosen_paragraph(rosen, an):
    rows = rosen["rows"]
    small, large = rows[0], rows[-1]
    c_small, c_large = an["c"][0][1], an["c"][-1][1]
    r_small, r_large = an["r"][0][1], an["r"][-1][1]
    k_small = an["model_sweeps"][0][1]
    auto = an["auto_max"]
    cap = rosen.get("capped_at")
    cross_at = an["crossover"][1] if an["crossover"] and an["crossover"][0] == "at" else None
    model_at = an["model_crossover"][1] if an["model_crossover"] else None
    text = [
        "**Why.** `ad.jacobian(mode=\"forward\")` pushes one basis tangent per input through the "
        "generated tangent code: n sweeps, each costing about c·f plus a fixed per-call overhead. "
        "`mode=\"reverse\"` pulls one cotangent per output through the generated adjoint: Rosenbrock "
        "has one output, so one sweep costing about 3·f plus the overhead, whatever n is. (Both "
        "also make one jvp call first, to learn the output's shape.) Forward mode therefore wins "
        "only while n sweeps cost less than one reverse sweep, i.e. for n below the ratio "
        "(reverse sweep) ÷ (forward sweep); beyond that its cost grows like n·(overhead + c·f(n)) "
        "— quadratically once f's arithmetic dominates — while reverse mode grows like f(n).",
        "",
        f"**Measured.** At n = {small['n']} every call is per-call overhead: f takes "
        f"{fmt_time(small['median']['f'])}, one jvp {c_small:.1f}× that, one reverse sweep "
        f"(value_and_grad) {r_small:.1f}× that, so one reverse sweep costs {k_small:.2f} forward "
        f"sweeps and the cost model (forward Jacobian = (n + 1) jvp calls, reverse = one jvp + one "
        f"reverse sweep) puts the crossover at {crossover_text(an['model_crossover'])}; the "
        f"textbook form, 3·f ÷ c·f with the measured c = {c_small:.1f}, gives n ≈ {3 / c_small:.2f}. "
        f"The measured crossover of the two Jacobians is at {crossover_text(an['crossover'])}"
        + (f", a little later than the model because `ad.jacobian` itself adds about "
           f"{fmt_time(an['reverse_wrapper'])} per reverse call around the sweeps (shape probe, "
           f"basis vector, stacking) and a basis vector and a stack entry per forward column"
           if an.get("reverse_wrapper", 0) > 0 and cross_at is not None and model_at is not None
           and cross_at > model_at else "")
        + (f". So on this machine forward mode only pays for n = 1: from n = 2 on one reverse sweep "
           f"is cheaper than two forward sweeps. " if cross_at is not None and 1 < cross_at < 2 else
           f". Forward mode pays for n below the crossover only. ")
        + f"At n = {large['n']} the arithmetic dominates: one "
        f"jvp costs {c_large:.1f}·f and one reverse sweep {r_large:.1f}·f (the textbook ~3·f"
        f"{' holds' if r_large <= 4 else ' is exceeded'}), and "
        + (f"forward mode was stopped at n = {cap} because one forward Jacobian was predicted to "
           f"take more than {rosen['forward_cap']:g} s (n sweeps, each no cheaper than the last); "
           if cap else "forward mode ran at every n; ")
        + (f"at the last n with both modes (n = {an['fwd_over_rev'][-1][0]}) forward ÷ reverse = "
           f"{an['fwd_over_rev'][-1][1]:.3g}." if an["fwd_over_rev"] else "no n had both modes."),
        "",
        f"**auto.** `mode=\"auto\"` picks the mode with fewer sweeps (forward when inputs ≤ "
        f"outputs), so for a scalar function of n ≥ 2 inputs it picks reverse. Its worst ratio to "
        f"the better mode is " + (f"**{auto[1]:.2f}** at n = {auto[0]} on medians (target ≤ "
                                   f"{AUTO_TARGET:.2f}: {'met' if auto[1] <= AUTO_TARGET else 'missed'}); "
                                   f"on minima {an['auto_max_min'][1]:.2f} at n = {an['auto_max_min'][0]}. "
                                   if auto else "not measured. ")
        + "Where auto and the better mode are the same mode (reverse, n ≥ 2) they do identical "
        "sweeps, so their ratio shows the cost of auto's decision plus the timing noise of this "
        "shared machine"
        + (f" (median excess of auto over reverse for 2 ≤ n ≤ 64: {fmt_time(an['auto_excess'])} per "
           f"call, of {fmt_time(an['reverse_small'])}; the decision computes the output's size with "
           f"`np.prod`, a few µs)" if an.get("auto_excess") is not None else "")
        + "; where they differ (n = 1 picks forward) it also shows whether the choice was right.",
    ]
    return "\n".join(text)


def loop_section(loop):
    lines = ["| N | minimum: N arrays | hand-written, lean | hand-written (bench.handwritten) | "
             "s2s_ad | **s2s_ad ÷ minimum** | s2s_ad ÷ lean | notes |",
             "|---|---|---|---|---|---|---|---|"]
    for n in sorted(loop):
        d = loop[n]
        minimum = n * d["array_bytes"]

        def p(impl):
            return fmt_bytes(d[impl]["peak"]) if "peak" in d.get(impl, {}) else \
                "failed: " + one_line(d.get(impl, {}).get("error", "?"), 80)
        s = d.get("s2s_ad", {})
        ratio = f"**{s['peak'] / minimum:.2f}**" if "peak" in s else "–"
        ratio_lean = f"{s['peak'] / d['lean']['peak']:.2f}" if "peak" in s and "peak" in d.get("lean", {}) \
            else "–"
        bad = [f"{k}: WRONG {v['check']}" for k, v in d.items() if isinstance(v, dict) and v.get("check")]
        lines.append(f"| {n} | {fmt_bytes(minimum)} | {p('lean')} | {p('hand-written')} | {p('s2s_ad')} "
                     f"| {ratio} | {ratio_lean} | {one_line('; '.join(bad)) or 'checked against lean'} |")
    return "\n".join(lines)


def _over_second(fc):
    extra = fc.get("extra")
    return f" ({fmt_time(extra)} more than the second call there)" if extra is not None else ""


def first_call_misses(w):
    """Markdown lines for a first-call target this run missed: where its time goes."""
    out = []
    for kind, tgt in FIRST_CALL_TARGETS.items():
        fc = (w.get("first_calls") or {}).get(("gpt", kind), {})
        extra, transform = fc.get("extra"), fc.get("transform")
        if extra is None or transform is None or extra <= tgt:
            continue
        out += [f"**gpt: the first {kind} call costs {extra:.2f} s more than the second** "
                f"(target {tgt} s; median of {len(fc['all'])} fresh processes, whose times "
                f"spread over {min(fc['all']):.2f}-{max(fc['all']):.2f} s). Transformation and "
                f"compilation take {transform:.2f} s of it, the first run's extra the rest "
                "(arrays touched for the first time in a fresh process). For hvp the "
                "transformation generates and compiles the adjoint (about 1,000 lines for the "
                "transformer), derives the shapes of its values (s2s_ad/derive.py), then "
                "generates forward mode over it (about 3,000 lines): what would close it is "
                "fewer passes over the adjoint's statements, or a first run that touches less "
                "fresh memory.\n"]
    return out


def first_call_extra(w, name, kind):
    """Seconds the first call in a fresh process took over the second call there, or None."""
    fc = (w.get("first_calls") or {}).get((name, kind), {})
    return fc.get("extra")


def headline(w):
    """The ratios and targets of this run, in a few bullets."""
    out = []
    for r in w.get("workloads", []):
        med = {k: statistics.median(v) for k, v in r["times"].items()}
        parts = [f"hand-written ÷ f {med['hand-written'] / med['f']:.2f}"]
        if "s2s_ad" in med:
            ratio = med["s2s_ad"] / med["hand-written"]
            parts += [f"s2s_ad ÷ f {med['s2s_ad'] / med['f']:.2f}",
                      f"s2s_ad ÷ hand-written **{ratio:.2f}** (≤ {r['w'].target:.2f}: "
                      f"{'met' if ratio <= r['w'].target else 'missed'})"]
        else:
            parts.append("s2s_ad: " + one_line(r["notes"].get("s2s_ad", "not timed"), 100))
        if "s2s_ad hvp" in med and "s2s_ad" in med:
            hr = med["s2s_ad hvp"] / med["s2s_ad"]
            tgt = r["w"].hvp_target
            parts.append(f"hvp ÷ value_and_grad **{hr:.2f}**"
                         + (f" (≤ {tgt}: {'met' if hr <= tgt else 'missed'})" if tgt else " (no target)"))
        else:
            parts.append("hvp: " + one_line(r["notes"].get("s2s_ad hvp", "not timed"), 100))
        for kind, label in (("value_and_grad", "s2s_ad"), ("hvp", "s2s_ad hvp")):
            extra = first_call_extra(w, r["name"], kind)
            if extra is not None and r["name"] == "gpt":
                tgt = FIRST_CALL_TARGETS[kind]
                parts.append(f"first {kind} call − a later call **{extra:.2f} s** (≤ {tgt} s: "
                             f"{'met' if extra <= tgt else 'missed'})")
        out.append(f"- `{r['name']}`: " + ", ".join(parts))
    for name, m in w.get("memory", {}).items():
        if "peak" in m.get("s2s_ad", {}) and "peak" in m.get("hand-written", {}):
            q = m['s2s_ad']['peak'] / m['hand-written']['peak']
            out.append(f"- peak memory `{name}`: s2s_ad ÷ hand-written **{q:.2f}**"
                       + (f" (≤ {MEMORY_TARGET:.2f}: {'met' if q <= MEMORY_TARGET else 'missed'})"
                          if name == "gpt" else ""))
    if w.get("rosen_analysis"):
        an = w["rosen_analysis"]
        auto = an["auto_max"]
        out.append(f"- Rosenbrock: forward = reverse at {crossover_text(an['crossover'])}; max auto ÷ "
                   f"best mode " + (f"**{auto[1]:.2f}** at n = {auto[0]} (≤ {AUTO_TARGET:.2f}: "
                                    f"{'met' if auto[1] <= AUTO_TARGET else 'missed'})" if auto else "–"))
    loop = w.get("loop_memory") or {}
    ratios = [(n, d["s2s_ad"]["peak"] / (n * d["array_bytes"])) for n, d in sorted(loop.items())
              if "peak" in d.get("s2s_ad", {})]
    if ratios:
        out.append("- loop memory, s2s_ad ÷ one array per iteration: "
                   + ", ".join(f"N = {n}: **{q:.2f}**" for n, q in ratios))
    hits = w.get("cache_hit") or {}
    if hits:
        from bench.cache_hit import TARGET
        out.append("- cache hit of value_and_grad over calling the generated function: " + ", ".join(
            f"{label.split(',')[0]} **{(hit - direct) * 1e6:.1f} µs** (≤ {TARGET * 1e6:.0f} µs: "
            f"{'met' if hit - direct <= TARGET else 'missed'})" for label, (hit, direct) in hits.items()))
    if w.get("failures"):
        out.append(f"- {len(w['failures'])} failure(s): see the end")
    return out


def write_report(path, argv, results, plots, started, elapsed):
    w = results
    command = " ".join(["python -m bench.run", *argv])
    out = [f"# Benchmark results\n",
           f"`{command}`, started {started}, took {elapsed / 60:.1f} min. "
           "Regenerate with the same command; `--quick` is a smoke test that writes elsewhere.\n",
           "## Summary\n"] + headline(w) + ["", "## Machine and software\n"]
    info = [(k, v) for k, v in machine.machine_info() if k not in ("thread env vars", "git commit", "numpy")]
    info.append(("load average (1, 5, 15 min) at start / end",
                 f"{w['load_start']} / {w['load_end']} (a shared machine: other processes ran too)"))
    out += [f"- {k}: {v}" for k, v in info]
    out += ["", "Libraries:", ""] + [f"- {k}: {v}" for k, v in w["versions"]]
    out += ["", "Threads: " + w["pinned"] + ".", ""] + [f"- {k}: {v}" for k, v in w["threads"]]
    out += ["", "## Method\n",
            "All timings run in this one process, with BLAS pinned to one thread (above). Each "
            "implementation is called a few times to warm up, then every round calls each "
            "implementation once, in a fresh random order every round, so drifts of a shared machine "
            "(clock, other processes) hit all alike; tables give the median and the minimum "
            "per-call wall time (time.perf_counter, garbage collector off while timing), ratios "
            "use medians. Before anything is timed: the hand-written gradient is checked against "
            "central finite differences (float64), s2s_ad's value and gradient against the "
            "hand-written ones (every leaf within rtol of its largest entry), s2s_ad's hvp against "
            "Richardson-extrapolated central differences of the hand-written gradient along the "
            "same direction, and every peer's value and gradient against the hand-written ones; "
            "anything wrong is reported and not timed. First calls (transformation + compilation "
            "+ the call) and peak memory are measured in a fresh process each (`bench/worker.py`), "
            "since s2s_ad caches generated code per function; what a first call costs over a "
            "later one is its time minus the second call's in the same process. The timing "
            "process fixes glibc's trim and mmap thresholds for every implementation (see "
            "Machine and software; the fresh processes keep the defaults): left to adapt, they "
            "made whether a call's arrays are page-faulted in afresh on every call depend on "
            "what the process had run before.\n"]
    if w.get("workloads"):
        summary, detail = timing_section(w["workloads"], w.get("first_calls", {}))
        out += ["## 1. Gradient time: s2s_ad vs hand-written vs peers\n",
                "Workloads: " + "; ".join(f"`{r['name']}`: {r['w'].description}" for r in w["workloads"]) + ".\n",
                summary, "", detail, "",
                "hvp is `ad.hvp(f, wrt=0)(*args, v)` with a random direction v of the parameters' "
                "structure (forward mode over the generated adjoint). Peers compute the same loss "
                "in their own idiom on inputs converted before timing (PyTorch: leaf tensors and "
                "`torch.autograd.grad`; JAX: `jax.value_and_grad`, jitted or not; the gpt peer is "
                "`bench/torch_gpt.py` built from torch's fused library ops, so it is not the same "
                "arithmetic). A peer marked skipped is not installed or not wired for that workload.\n"]
        if "workloads.png" in plots:
            out += ["![gradient time relative to hand-written](plots/workloads.png)\n"]
    if w.get("memory"):
        out += ["## 2. Peak memory of one value_and_grad\n", memory_section(w["memory"]), "",
                "tracemalloc's peak during one call in a fresh process, after one warm-up call (so "
                "the transformation's own allocations are excluded). NumPy reports its data buffers "
                "to tracemalloc, so this counts arrays as well as Python objects; the arguments "
                "(made before) are not counted, the returned value and gradient are.\n"]
        if "memory.png" in plots:
            out += ["![peak memory](plots/memory.png)\n"]
    if w.get("rosen"):
        an = w["rosen_analysis"]
        auto = an["auto_max"]
        out += ["## 3. Forward vs reverse mode: Rosenbrock\n",
                "f(x) = sum(100·(x[1:] − x[:-1]²)² + (1 − x[:-1])²), float64, x uniform in [−2, 2] "
                "(at n = 1 the sum is empty: f = 0 and every call is pure per-call overhead); "
                "full gradient by `ad.jacobian(f, mode=...)`, each result checked against the "
                "hand-written gradient (max error ≤ 1e-10 of its largest entry) before timing. Rounds "
                "per n are chosen to spend about the same time on every n.\n",
                f"- measured crossover (forward = reverse): {crossover_text(an['crossover'])}",
                f"- cost-model crossover (n · one jvp = one value_and_grad): "
                f"{crossover_text(an['model_crossover'])}",
                "- max over n of auto ÷ min(forward, reverse): " + (
                    f"**{auto[1]:.2f}** at n = {auto[0]} on medians (target ≤ {AUTO_TARGET:.2f}: "
                    f"{'met' if auto[1] <= AUTO_TARGET else 'missed'}); on minima "
                    f"{an['auto_max_min'][1]:.2f} at n = {an['auto_max_min'][0]}" if auto else "not measured")
                + (f"; where forward was capped, auto ÷ reverse is at most "
                   f"{max(p[1] for p in an['auto_rev_only']):.2f}" if an["auto_rev_only"] else ""),
                "- forward mode " + (f"capped from n = {w['rosen']['capped_at']} on (predicted over "
                                     f"{w['rosen']['forward_cap']:g} s per Jacobian)"
                                     if w["rosen"]["capped_at"] else "ran at every n"),
                "", rosen_section(w["rosen"], an), "", rosen_paragraph(w["rosen"], an), ""]
        if "rosen.png" in plots:
            out += ["![Rosenbrock forward vs reverse](plots/rosen.png)\n"]
    if w.get("loop_memory"):
        out += ["## 4. Memory of a loop's gradient\n",
                "`bench.workloads.chain_n(x, N)`: N iterations of x = sin(x)·0.9 + 0.1·cos(x)·x on x "
                "of shape (1000,), float64 (8 KB). The minimum a reverse sweep must keep is one "
                "array per iteration (its input: the local derivative can be recomputed from it); "
                "`handwritten.chain_lean_value_and_grad` does exactly that, "
                "`handwritten.chain_value_and_grad` (the `chain` baseline) trades memory for "
                "vectorised derivative computation. Peaks as in section 2, each in a fresh process.\n",
                loop_section(w["loop_memory"]), ""]
        kept = [d["s2s_ad"].get("kept") for d in w["loop_memory"].values() if d.get("s2s_ad", {}).get("kept")]
        if kept:
            out += [f"s2s_ad's generated code says what it keeps: \"Kept for the backward sweep: "
                    f"{one_line(kept[-1], 400)}\"\n"]
        if "loop_memory.png" in plots:
            out += ["![loop memory](plots/loop_memory.png)\n"]
    if w.get("cache_hit"):
        from bench import cache_hit
        out += ["## 5. What a cache hit adds\n",
                " ".join(cache_hit.__doc__.split("\n\n")[2].split()) + "\n",
                "| function and arguments | cache hit | generated function called directly | added |",
                "|---|---|---|---|"]
        out += [f"| {label} | {hit * 1e6:.1f} µs | {direct * 1e6:.1f} µs | **{(hit - direct) * 1e6:.1f} µs** |"
                for label, (hit, direct) in w["cache_hit"].items()]
        out.append("")
    if w.get("gap_profiles"):
        from bench import gaps
        out += gaps.section(w, w["gap_profiles"])
    out += first_call_misses(w)
    if w.get("failures"):
        out += ["## Failures\n"] + [f"- {one_line(f, 400)}" for f in w["failures"]] + [""]
    with open(path, "w") as fh:
        fh.write("\n".join(out))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few rounds and sizes: a smoke test")
    p.add_argument("--workloads", default="mlp,gpt,chain", help="comma-separated, from: mlp, gpt, chain")
    p.add_argument("--skip", default="", help="comma-separated sections to skip, from: " + ", ".join(SECTIONS))
    p.add_argument("--out", default=None, help=f"report path (default {os.path.relpath(RESULTS)}, or "
                   f"{os.path.relpath(QUICK_RESULTS)} with --quick); plots go to plots/ beside it")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--traceback", action="store_true", help="print s2s_ad failures' tracebacks")
    opts = p.parse_args(argv)
    t_start = time.perf_counter()
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    # Threads first: the variables must be set before numpy's BLAS, torch or JAX start.
    pinned = machine.pin_threads()
    from bench import peers
    from bench.suite import WORKLOADS
    names = [n for n in opts.workloads.split(",") if n]
    skip = {s for s in opts.skip.split(",") if s}
    if unknown := set(names) - set(WORKLOADS):
        p.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    if unknown := skip - set(SECTIONS):
        p.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    out_path = opts.out or (QUICK_RESULTS if opts.quick else RESULTS)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)

    # Import the peers now, then pin again: they bring thread pools of their own.
    versions = peers.available()
    pinned = machine.pin_threads()
    peer_versions = {"autograd": versions["autograd"], "torch": versions["torch"],
                     "jax": versions["jax-jit"]}
    if versions["jax-jit"]:
        import jax
        jax.config.update("jax_enable_x64", True)  # chain is float64; mlp's float32 stays float32
        import jaxlib
        peer_versions["jaxlib"] = jaxlib.__version__

    machine.keep_freed_memory()   # timings of this process only; workers keep the defaults
    results = {"load_start": tuple(round(x, 2) for x in os.getloadavg()), "pinned": pinned,
               "versions": machine.library_versions(peer_versions), "failures": []}

    if "timing" not in skip:
        results["workloads"] = []
        for name in names:
            w = WORKLOADS[name]
            log(f"timing {name} ...")
            try:
                r = time_workload(w, w.quick_rounds if opts.quick else w.rounds, opts.traceback)
            except Exception as e:
                traceback.print_exc()
                results["failures"].append(f"timing {name}: {type(e).__name__}: {e}")
                continue
            r["w"] = w
            results["workloads"].append(r)
    results["threads"] = machine.thread_report()  # after every library has been loaded and pinned
    if results.get("workloads") and not opts.quick:
        # Missed targets get a line profile of the generated code (section 6).
        from bench import gaps
        results["gap_profiles"] = {}
        for r, kind in gaps.missed(results):
            log(f"profiling {r['name']} {kind} (a missed target) ...")
            try:
                results["gap_profiles"][(r["name"], kind)] = gaps.profile(r["w"], kind)
            except Exception as e:
                traceback.print_exc()
                results["failures"].append(f"profile {r['name']} {kind}: {type(e).__name__}: {e}")

    if "rosen" not in skip:
        from bench import rosen
        log("rosen ...")
        try:
            sizes = ROSEN_SIZES_QUICK if opts.quick else ROSEN_SIZES
            results["rosen"] = rosen.sweep(sizes, budget=0.3 if opts.quick else 4.0,
                                           forward_cap=0.3 if opts.quick else 2.0, log=log)
            results["rosen_analysis"] = rosen.analyse(results["rosen"])
            for row in results["rosen"]["rows"]:
                for mode, err in row["errors"].items():
                    results["failures"].append(f"rosen n={row['n']} jacobian {mode}: {err}")
        except Exception as e:
            traceback.print_exc()
            results["failures"].append(f"rosen: {type(e).__name__}: {e}")
            results.pop("rosen", None)

    if "first-call" not in skip:
        log("first calls, each in a fresh process ...")
        results["first_call_repeats"] = 1 if opts.quick else FIRST_CALL_REPEATS
        results["first_calls"] = first_calls(names, results["first_call_repeats"])
        for key, r in results["first_calls"].items():
            if "error" in r:
                results["failures"].append(f"first call {' '.join(key)}: {r['error']}")
    if "memory" not in skip:
        log("peak memory, each in a fresh process ...")
        results["memory"] = memory(names)
        for name, m in results["memory"].items():
            for impl, r in m.items():
                if "error" in r:
                    results["failures"].append(f"peak memory {name} {impl}: {r['error']}")
    if "loop" not in skip:
        log("loop memory, each in a fresh process ...")
        results["loop_memory"] = loop_memory(LOOP_NS_QUICK if opts.quick else LOOP_NS)
        for n, d in results["loop_memory"].items():
            for impl, r in d.items():
                if isinstance(r, dict) and "error" in r:
                    results["failures"].append(f"loop memory N={n} {impl}: {r['error']}")

    if "cache-hit" not in skip:
        from bench import cache_hit
        log("cache hit ...")
        try:
            results["cache_hit"] = cache_hit.measure(repeat=3 if opts.quick else 15)
        except Exception as e:
            traceback.print_exc()
            results["failures"].append(f"cache hit: {type(e).__name__}: {e}")

    results["load_end"] = tuple(round(x, 2) for x in os.getloadavg())
    for r in results.get("workloads", []):
        for note_key, note in r["notes"].items():
            if note.startswith(("not supported", "failed")):
                results["failures"].append(f"{r['name']} {note_key}: {note}")
    plots = []
    if not opts.no_plots:
        from bench.plots import plot_all
        plot_dir = os.path.join(os.path.dirname(os.path.abspath(out_path)), "plots")
        plots = [os.path.basename(p) for p in plot_all(results, plot_dir, log=log)]
    write_report(out_path, argv, results, plots, started, time.perf_counter() - t_start)
    log(f"written to {os.path.relpath(out_path)} ({len(plots)} plot(s)) in "
        f"{(time.perf_counter() - t_start) / 60:.1f} min")

    wrong = [f"{r['name']}: {x}" for r in results.get("workloads", []) for x in r["wrong"]]
    wrong += [f"peak memory {n} {i}: {r['check']}" for n, m in results.get("memory", {}).items()
              for i, r in m.items() if r.get("check")]
    wrong += [f"loop N={n} {i}: {r['check']}" for n, d in results.get("loop_memory", {}).items()
              for i, r in d.items() if isinstance(r, dict) and r.get("check")]
    wrong += [f"rosen n={row['n']} jacobian {m}: {e}" for row in results.get("rosen", {}).get("rows", [])
              for m, e in row["errors"].items() if e.startswith("wrong")]
    for line in wrong:
        log(f"WRONG: {line}")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
