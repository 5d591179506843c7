"""Benchmark: s2s_ad.value_and_grad against hand-written NumPy gradients.

    python -m bench.bench_grad [--quick] [--workloads mlp,chain] [--traceback]

For each workload: check the hand-written gradient against finite differences and
s2s_ad against the hand-written code, then time f, hand-written and s2s_ad
interleaved. Prints a Markdown table and writes it, with machine details, to
bench/RESULTS.md. Exits with status 1 if s2s_ad computes a wrong result.
"""
import argparse
import datetime
import os
import statistics
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Callable

import numpy as np

from bench import handwritten, workloads
from bench.checks import check_finite_differences, compare
from bench.machine import machine_info
from bench.timing import time_round_robin

TARGET = 1.10  # s2s_ad's median time should be within this factor of hand-written
WARMUP = 5
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "RESULTS.md")


@dataclass
class Workload:
    f: Callable  # the user function; gradient taken w.r.t. its first argument
    handwritten: Callable
    make_args: Callable[[], tuple]
    rounds: int
    quick_rounds: int
    rtol: float  # s2s_ad vs hand-written: float32 sums reordered differ by ~1e-6


WORKLOADS = {
    "mlp": Workload(workloads.mlp_loss, handwritten.mlp_value_and_grad,
                    lambda: (workloads.mlp_init(0), *workloads.mlp_batch(1)), 30, 5, 1e-4),
    "chain": Workload(workloads.chain, handwritten.chain_value_and_grad,
                      lambda: (workloads.chain_input(0),), 300, 30, 1e-8),
}


def as_float64(x):
    """float64 copy of floating arrays (also inside tuples, dicts); integer labels stay as they are."""
    if isinstance(x, tuple):
        return tuple(as_float64(v) for v in x)
    if isinstance(x, dict):
        return {k: as_float64(v) for k, v in x.items()}
    if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float64)
    return x


def build_s2s(f, args):
    """(df, first result, first-call seconds). The clock starts before value_and_grad(),
    so the first call includes the transformation whether it is done eagerly or lazily."""
    import s2s_ad as ad
    t0 = time.perf_counter()
    df = ad.value_and_grad(f, wrt=0)
    first = df(*args)
    return df, first, time.perf_counter() - t0


def run_workload(name, w, rounds, show_traceback):
    args = w.make_args()
    res = {"name": name, "rounds": rounds}

    # 1. The baseline must be right, or every ratio below is meaningless: stop if not.
    res["fd_err"] = check_finite_differences(w.f, w.handwritten, as_float64(args))
    want = w.handwritten(*args)
    if (bad := compare((w.f(*args), want[1]), want, w.rtol)) is not None:
        raise AssertionError(f"{name}: hand-written value differs from f: {bad}")

    # 2. s2s_ad: any failure to transform is reported, not fatal; a wrong result is not timed.
    fns = {"f": lambda: w.f(*args), "hand-written": lambda: w.handwritten(*args)}
    try:
        df, first, res["first_call"] = build_s2s(w.f, args)
        bad = compare(first, want, w.rtol) or compare(df(*args), want, w.rtol)
        if bad is None:
            fns["s2s_ad"] = lambda: df(*args)
        else:
            res["s2s_status"] = f"WRONG result: {bad}"
    except Exception as e:
        if show_traceback:
            traceback.print_exc()
        res["s2s_status"] = f"not supported yet: {type(e).__name__}: {e}"

    # 3. Timing.
    res["times"] = time_round_robin(fns, rounds, WARMUP)
    return res


def fmt_time(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def table(results):
    lines = ["| workload | implementation | median | min | ÷ f | ÷ hand-written | notes |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        med = {k: statistics.median(v) for k, v in r["times"].items()}
        low = {k: min(v) for k, v in r["times"].items()}
        base = f"| {r['name']} ({r['rounds']} rounds) "
        lines.append(base + f"| f | {fmt_time(med['f'])} | {fmt_time(low['f'])} | 1.00 | | |")
        lines.append(base + f"| hand-written value_and_grad | {fmt_time(med['hand-written'])} "
                     f"| {fmt_time(low['hand-written'])} | {med['hand-written'] / med['f']:.2f} | 1.00 "
                     f"| finite differences: max rel. error {r['fd_err']:.1e} |")
        if "s2s_ad" in med:
            ratio = med["s2s_ad"] / med["hand-written"]
            verdict = "met" if ratio <= TARGET else "missed"
            lines.append(base + f"| s2s_ad value_and_grad | {fmt_time(med['s2s_ad'])} "
                         f"| {fmt_time(low['s2s_ad'])} | {med['s2s_ad'] / med['f']:.2f} "
                         f"| **{ratio:.2f}** (target ≤ {TARGET:.2f}: {verdict}) "
                         f"| first call (transform + compile): {fmt_time(r['first_call'])} |")
        else:
            status = " ".join(r["s2s_status"].split()).replace("|", "\\|")
            status = status if len(status) <= 200 else status[:197] + "..."
            lines.append(base + f"| s2s_ad value_and_grad | – | – | – | – | {status} |")
    return "\n".join(lines)


def write_results(text, argv, results):
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = "\n".join(f"- {label}: {value}" for label, value in machine_info())
    rounds = ", ".join(f"{r['name']} {r['rounds']}" for r in results)
    with open(RESULTS, "w") as f:
        f.write(f"# bench_grad results\n\n"
                f"`python -m bench.bench_grad {' '.join(argv)}`, run {now}.\n\n"
                f"## Machine\n\n{machine}\n\n## Results\n\n{text}\n\n"
                f"Per-call wall time (time.perf_counter). {WARMUP} warm-up calls per implementation, "
                f"then rounds ({rounds}) that time every implementation once, in rotating order; "
                f"ratios use medians. Target: s2s_ad within {TARGET:.2f}x of hand-written. "
                f"Before timing, the hand-written gradient is checked against central finite "
                f"differences (float64) and s2s_ad's value and gradient against the hand-written ones.\n")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="few rounds, for a smoke test")
    p.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated, from: "
                   + ", ".join(WORKLOADS))
    p.add_argument("--traceback", action="store_true", help="print s2s_ad failures' tracebacks")
    opts = p.parse_args(argv)
    names = [n for n in opts.workloads.split(",") if n]
    if unknown := set(names) - set(WORKLOADS):
        p.error(f"unknown workload(s): {', '.join(sorted(unknown))}")

    results = []
    for name in names:
        w = WORKLOADS[name]
        print(f"running {name} ...", file=sys.stderr, flush=True)
        results.append(run_workload(name, w, w.quick_rounds if opts.quick else w.rounds, opts.traceback))
    text = table(results)
    print(text)
    write_results(text, argv, results)
    print(f"\nwritten to {os.path.relpath(RESULTS)}", file=sys.stderr)
    return 1 if any(r.get("s2s_status", "").startswith("WRONG") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
