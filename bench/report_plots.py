"""PNG plots of bench/REPORT.md (matplotlib, Agg backend). Each function returns the path
it wrote."""
import os

import numpy as np


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def profile_plot(summaries, outdir, top=10):
    """Per model: the primitives' shares of the gradient's time, forward and backward stacked."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(summaries), figsize=(6.2 * len(summaries), 4.2), squeeze=False)
    for ax, (name, s) in zip(axes[0], summaries.items()):
        prims = s["primitives"][:top][::-1]
        labels = [d["primitive"] for d in prims]
        fwd = [100 * d["forward"] / s["total"] for d in prims]
        bwd = [100 * d["backward"] / s["total"] for d in prims]
        y = np.arange(len(prims))
        ax.barh(y, fwd, color="#1f77b4", label="forward sweep")
        ax.barh(y, bwd, left=fwd, color="#d62728", label="backward sweep")
        ax.set_yticks(y)
        ax.set_yticklabels(labels, fontsize=8)
        ax.set_xlabel("share of the gradient's time (%)")
        ax.set_title(f"{name}: {s['total'] * 1e3:.3g} ms (sum of per-line medians)",
                     fontsize=10)
        for i, (a, b) in enumerate(zip(fwd, bwd)):
            ax.text(a + b, i, f" {a + b:.1f}%", va="center", fontsize=7)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path = os.path.join(outdir, "profile.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def scaling_plot(model, families, results, outdir):
    """Log-log: time (measured and the FLOP model, matched at the middle point) and memory
    (peak, kept for the backward sweep, the gradient itself) against each size."""
    plt = _plt()
    fams = [f for f in families if families[f][0] == model and results.get(f)]
    fig, axes = plt.subplots(2, len(fams), figsize=(4.3 * len(fams), 7.0), squeeze=False)
    for col, fam in enumerate(fams):
        pts = [p for p in results[fam] if "error" not in p]
        if len(pts) < 2:
            continue
        xs = np.array([p["value"] for p in pts], float)
        t = np.array([p["median"] for p in pts])
        fl = np.array([p["flops"] for p in pts], float)
        mid = len(xs) // 2
        ax = axes[0][col]
        ax.loglog(xs, t * 1e3, "o-", color="#d62728", label="measured (median)")
        ax.loglog(xs, fl * t[mid] / fl[mid] * 1e3, "--", color="#555555",
                  label="matmul FLOPs (scaled)")
        ax.set_xlabel(families[fam][3])
        ax.set_ylabel("ms per value_and_grad")
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{int(v)}" for v in xs], fontsize=8)
        ax.minorticks_off()
        ax.legend(fontsize=7)
        ax = axes[1][col]
        for key, label, color in (("peak", "peak (tracemalloc)", "#d62728"),
                                  ("kept_bytes", "kept for the backward sweep", "#1f77b4"),
                                  ("grad_bytes", "the gradient", "#2ca02c")):
            ax.loglog(xs, np.array([p[key] for p in pts], float) / 2 ** 20, "o-", color=color,
                      label=label)
        ax.set_xlabel(families[fam][3])
        ax.set_ylabel("MiB")
        ax.set_xticks(xs)
        ax.set_xticklabels([f"{int(v)}" for v in xs], fontsize=8)
        ax.minorticks_off()
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(outdir, f"scaling_{model}.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def tape_plot(rows, outdir):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    nodes = [r["nodes"] for r in rows]
    ax.loglog(nodes, [r["tape"] * 1e3 for r in rows], "o-", color="#d62728", label="scalar tape")
    ax.loglog(nodes, [r["s2s"] * 1e3 for r in rows], "o-", color="#1f77b4",
              label="s2s_ad value_and_grad")
    for r in rows:
        ax.annotate(f"{r['label']}\n×{r['ratio']:.0f}", (r["nodes"], r["tape"] * 1e3),
                    fontsize=7, textcoords="offset points", xytext=(4, -18))
    ax.set_xlabel("scalar graph nodes per loss")
    ax.set_ylabel("ms per value and gradient")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(outdir, "scalar_tape.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
