"""PNG plots of a `bench.run` result (matplotlib, Agg backend). Every function returns
the file it wrote; `plot_all` returns [] if matplotlib is not installed."""
import os
import statistics


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_all(results, outdir, log=print):
    try:
        _plt()
    except ImportError:
        log("matplotlib not installed: no plots")
        return []
    os.makedirs(outdir, exist_ok=True)
    written = []
    for fn in (workloads_plot, memory_plot, rosen_plot, loop_plot):
        try:
            path = fn(results, outdir)
        except Exception as e:  # a plot must never cost the results
            log(f"plot {fn.__name__} failed: {type(e).__name__}: {e}")
            continue
        if path:
            written.append(path)
    return written


def workloads_plot(results, outdir):
    work = results.get("workloads") or []
    if not work:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(work), figsize=(4.2 * len(work), 4.2), squeeze=False)
    for ax, r in zip(axes[0], work):
        med = {k: statistics.median(v) for k, v in r["times"].items()}
        base = med["hand-written"]
        names = list(med)
        vals = [med[k] / base for k in names]
        colors = ["#888888" if k == "f" else "#1f77b4" if k == "hand-written" else
                  "#d62728" if k.startswith("s2s_ad") else "#2ca02c" for k in names]
        ax.bar(range(len(names)), vals, color=colors)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
        ax.axhline(1.0, color="k", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_title(f"{r['name']} (hand-written = {base * 1e3:.3g} ms)", fontsize=10)
        ax.set_ylabel("median time ÷ hand-written value_and_grad")
        for i, v in enumerate(vals):
            ax.text(i, v, f"{v:.2f}", ha="center", va="bottom", fontsize=7)
    fig.tight_layout()
    path = os.path.join(outdir, "workloads.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def memory_plot(results, outdir):
    mem = results.get("memory") or {}
    names = [w for w, m in mem.items() if all("peak" in m.get(k, {}) for k in ("hand-written", "s2s_ad"))]
    if not names:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.8))
    width = 0.38
    for i, impl in enumerate(("hand-written", "s2s_ad")):
        vals = [mem[w][impl]["peak"] / 2 ** 20 for w in names]
        xs = [k + (i - 0.5) * width for k in range(len(names))]
        ax.bar(xs, vals, width, label=impl)
        for x, v in zip(xs, vals):
            ax.text(x, v, f"{v:.3g}", ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_ylabel("peak MiB during one value_and_grad (tracemalloc)")
    ax.legend()
    fig.tight_layout()
    path = os.path.join(outdir, "memory.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def rosen_plot(results, outdir):
    rosen = results.get("rosen")
    if not rosen or not rosen["rows"]:
        return None
    plt = _plt()
    rows = rosen["rows"]
    fig, ax = plt.subplots(figsize=(7, 4.8))
    styles = {"jacobian forward": ("C3", "o-"), "jacobian reverse": ("C0", "s-"),
              "jacobian auto": ("k", "x--"), "hand-written": ("C2", ":"), "f": ("0.5", ":")}
    for key, (color, style) in styles.items():
        pts = [(r["n"], r["median"][key]) for r in rows if key in r["median"]]
        if pts:
            ax.plot(*zip(*pts), style, color=color, label=key, ms=4)
    # Cost model from measured single sweeps: forward (n + 1) jvp, reverse jvp + value_and_grad.
    ax.plot([r["n"] for r in rows], [(r["n"] + 1) * r["median"]["jvp"] for r in rows],
            color="C3", lw=0.8, alpha=0.5, label="model: (n + 1) × jvp")
    ax.plot([r["n"] for r in rows], [r["median"]["jvp"] + r["median"]["value_and_grad"] for r in rows],
            color="C0", lw=0.8, alpha=0.5, label="model: jvp + value_and_grad")
    cross = results.get("rosen_analysis", {}).get("crossover")
    if cross and cross[0] == "at":
        ax.axvline(cross[1], color="0.3", lw=0.8, ls="-.")
        ax.text(cross[1], ax.get_ylim()[1], f" crossover n ≈ {cross[1]:.3g}", va="top", fontsize=8)
    if rosen.get("capped_at"):
        ax.axvline(rosen["capped_at"], color="C3", lw=0.8, ls=":")
        ax.text(rosen["capped_at"], ax.get_ylim()[0], " forward capped", color="C3", fontsize=8,
                va="bottom")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("n (inputs)")
    ax.set_ylabel("median seconds per full gradient")
    ax.set_title("Rosenbrock: ad.jacobian forward vs reverse vs auto")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(outdir, "rosen.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def loop_plot(results, outdir):
    loop = results.get("loop_memory")
    if not loop:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    ns = sorted(loop)
    mib = 2 ** 20
    ax.plot(ns, [n * loop[n]["array_bytes"] / mib for n in ns], "k--", label="minimum: one array per iteration")
    for impl, style in (("lean", "C2o-"), ("hand-written", "C0s-"), ("s2s_ad", "C3^-")):
        pts = [(n, loop[n][impl]["peak"] / mib) for n in ns if "peak" in loop[n].get(impl, {})]
        if pts:
            label = {"lean": "hand-written, lean", "hand-written": "hand-written (bench.handwritten)",
                     "s2s_ad": "s2s_ad"}[impl]
            ax.plot(*zip(*pts), style, label=label, ms=4)
    ax.set_xlabel("N (loop iterations)")
    ax.set_ylabel("peak MiB during one gradient (tracemalloc)")
    ax.set_title("chain_n: x of shape (1000,), float64")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(outdir, "loop_memory.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
