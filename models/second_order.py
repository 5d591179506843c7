"""Second-order optimisation with s2s_ad's derivatives: does curvature help?

    python -m models.second_order                     # MLP + transformer, ~3 minutes on one core
    python -m models.second_order --quick --out /tmp/so   # everything small, well under a minute
    python -m models.second_order --skip-gpt          # the MLP part only

1. The digits MLP of models/mlp.py (float64, full batch): Adam from models/optim.py (a few
   learning rates), L-BFGS (`scipy.optimize.minimize(method="L-BFGS-B", jac=True)` with
   `fun` = flattened `ad.value_and_grad`), and Newton-CG, trust-ncg and trust-krylov (the
   same `fun`, and `hessp` from `ad.hvp` on flat vectors). Every method gets the same budget
   of gradient-equivalent evaluations: one f+grad call counts 1, one hvp counts its cost
   relative to one f+grad, measured at the start of the same run.
2. The char-level transformer of models/transformer.py (a tiny configuration, a tiny text):
   Adam at fixed learning rates against Adam whose learning rate is chosen from the
   curvature along its own direction d (lr = g.d / d.H.d from one `ad.hvp` on the batch,
   clipped and smoothed), every step or every few steps.

Writes into --out (default results/second_order/): mlp.png, gpt.png, RESULTS.md (tables and
interpretation) and metrics.json; prints the tables.
"""
import argparse
import contextlib
import copy
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

import s2s_ad as ad
from models import mlp, transformer
from models.optim import Adam, leaves

HESSP_METHODS = ("Newton-CG", "trust-ncg", "trust-krylov")

FULL = dict(hidden=32, budget=2000, adam_lrs=(1e-3, 3e-3, 1e-2), cost_repeats=30,
            gpt=dict(n_layer=2, n_embd=32, n_head=2, block_size=32, batch_size=16, steps=800,
                     adam_lrs=(1e-3, 3e-3, 1e-2), curv_every=(1, 10), eval_every=50, eval_batches=8,
                     text_chars=60000))
QUICK = dict(hidden=16, budget=150, adam_lrs=(1e-2,), cost_repeats=5,
             gpt=dict(n_layer=1, n_embd=16, n_head=2, block_size=16, batch_size=8, steps=30,
                      adam_lrs=(3e-3,), curv_every=(1,), eval_every=10, eval_batches=2,
                      text_chars=6000))

# Curvature-chosen learning rate: clipped to [LR_MIN, LR_MAX], smoothed in log space.
LR_MIN, LR_MAX, LR_SMOOTH = 1e-4, 3e-2, 0.8


def _blas_threads(n=1):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(n)


def tree_dot(a, b):
    return float(sum(np.vdot(x, y) for x, y in zip(leaves(a), leaves(b))))


def measure_cost(calls, repeats):
    """Median wall time of each zero-argument callable in `calls` (a dict), interleaved so
    that whatever else runs on the machine affects them alike."""
    for fn in calls.values():
        fn()  # warm: compile and caches
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: float(np.median(ts)) for name, ts in times.items()}


# ----------------------------------------------------------------------------------- MLP

def mlp_objective(params, x, y, l2):
    """models/mlp.py's cross-entropy plus 0.5 * l2 * (sum of squared weights): with l2 > 0
    the minimum is finite (the digits are separable, so unregularised weights grow without
    bound), and every method converges towards the same kind of point."""
    penalty = (np.sum(params["W1"] * params["W1"]) + np.sum(params["W2"] * params["W2"])
               + np.sum(params["W3"] * params["W3"]))
    return mlp.mlp_loss(params, x, y) + 0.5 * l2 * penalty



class _OutOfBudget(Exception):
    pass


class FlatProblem:
    """The MLP's loss on flat float64 vectors, counting calls, with a trace of accepted
    iterates: (seconds since start, gradient-equivalents, loss)."""

    def __init__(self, params0, x, y, l2, ratio, budget):
        self.x0, self.unflatten = ad.flatten(params0)
        self.x, self.y, self.l2, self.ratio, self.budget = x, y, l2, ratio, budget
        self.vg = ad.value_and_grad(mlp_objective)
        self.h = ad.hvp(mlp_objective)
        self.loss0 = self.objective(self.x0)

    def objective(self, v):
        return float(mlp_objective(self.unflatten(v), self.x, self.y, self.l2))
        self.reset()

    def reset(self):
        self.n_fg = self.n_hvp = 0
        self.t0 = time.perf_counter()
        self.trace = [(0.0, 0.0, self.loss0)]
        self.best = (self.loss0, self.x0.copy())

    @property
    def geq(self):
        return self.n_fg + self.ratio * self.n_hvp

    def _check(self):
        if self.geq > self.budget * 1.02:  # hard cap inside an iteration (a long CG run)
            raise _OutOfBudget

    def fun(self, v):
        self._check()
        value, g = self.vg(self.unflatten(v), self.x, self.y, self.l2)
        self.n_fg += 1
        value = float(value)
        if value < self.best[0]:
            self.best = (value, np.array(v))
        return value, ad.flatten(g)[0]

    def hessp(self, v, p):
        self._check()
        self.n_hvp += 1
        return ad.flatten(self.h(self.unflatten(v), self.x, self.y, self.l2,
                                 self.unflatten(p)))[0]

    def callback(self, intermediate_result):
        self.trace.append((time.perf_counter() - self.t0, self.geq, float(intermediate_result.fun)))
        if self.geq >= self.budget:
            raise StopIteration


def run_scipy(prob, method):
    from scipy.optimize import minimize
    prob.reset()
    kwargs = dict(jac=True, method=method, callback=prob.callback)
    if method in HESSP_METHODS:
        kwargs["hessp"] = prob.hessp
    if method == "L-BFGS-B":
        kwargs["options"] = dict(maxiter=10 ** 6, maxfun=10 ** 6, gtol=1e-10, ftol=1e-15)
    elif method == "Newton-CG":
        kwargs["options"] = dict(maxiter=10 ** 6, xtol=1e-12)
    else:
        kwargs["options"] = dict(maxiter=10 ** 6, gtol=1e-10)
    try:
        res = minimize(prob.fun, prob.x0, **kwargs)
        x, reason, nit = res.x, str(res.message), int(res.nit)
        if prob.objective(x) > prob.best[0]:
            x = prob.best[1]
    except _OutOfBudget:
        x, reason, nit = prob.best[1], "budget (inside an iteration)", len(prob.trace) - 1
    elapsed = time.perf_counter() - prob.t0
    if reason.startswith("`callback` raised"):
        reason = "budget"
    loss = prob.objective(x)
    if prob.trace[-1][2] > loss:  # the last evaluated point (budget stop) was the best one
        prob.trace.append((elapsed, prob.geq, loss))
    return dict(method=method, params=prob.unflatten(x), loss=loss, time=elapsed, n_fg=prob.n_fg,
                n_hvp=prob.n_hvp, geq=prob.geq, iterations=nit, stop=reason, trace=prob.trace)


def run_adam_mlp(params0, x, y, l2, lr, steps):
    params = copy.deepcopy(params0)
    vg = ad.value_and_grad(mlp_objective)
    opt = Adam(params, lr=lr)
    trace = [(0.0, 0.0, float(mlp_objective(params, x, y, l2)))]
    t0 = time.perf_counter()
    for step in range(steps):
        value, g = vg(params, x, y, l2)
        if step:  # value is the loss at the previous update's result
            trace.append((time.perf_counter() - t0, float(step), float(value)))
        opt.step(params, g)
    elapsed = time.perf_counter() - t0
    loss = float(mlp_objective(params, x, y, l2))
    trace.append((elapsed, float(steps), loss))
    return dict(method=f"Adam lr={lr:g}", params=params, loss=loss, time=elapsed, n_fg=steps,
                n_hvp=0, geq=float(steps), iterations=steps, stop="budget", trace=trace)


def mlp_experiment(cfg, seed=0, l2=1e-3):
    x_tr, y_tr, x_te, y_te = mlp.load_digits_split(seed=seed, dtype="float64")
    params0 = mlp.init_params(x_tr.shape[1], cfg["hidden"], 10, seed=seed, dtype="float64")
    x0, unflatten = ad.flatten(params0)
    vg, h = ad.value_and_grad(mlp_objective), ad.hvp(mlp_objective)
    v = unflatten(np.random.default_rng(seed).standard_normal(x0.size))
    cost = measure_cost({"value_and_grad": lambda: vg(params0, x_tr, y_tr, l2),
                         "hvp": lambda: h(params0, x_tr, y_tr, l2, v)}, cfg["cost_repeats"])
    ratio = cost["hvp"] / cost["value_and_grad"]
    budget = cfg["budget"]
    runs = [run_adam_mlp(params0, x_tr, y_tr, l2, lr, budget) for lr in cfg["adam_lrs"]]
    prob = FlatProblem(params0, x_tr, y_tr, l2, ratio, budget)
    for method in ("L-BFGS-B",) + HESSP_METHODS:
        runs.append(run_scipy(prob, method))
    for r in runs:
        params = r.pop("params")
        r["cross_entropy"] = float(mlp.mlp_loss(params, x_tr, y_tr))
        r["test_loss"] = float(mlp.mlp_loss(params, x_te, y_te))
        r["test_acc"] = mlp.accuracy(params, x_te, y_te)
    return dict(n_params=int(x0.size), n_train=int(x_tr.shape[0]), n_test=int(x_te.shape[0]),
                hidden=cfg["hidden"], budget=budget, l2=l2, loss0=prob.loss0,
                best_objective=min(min(t[2] for t in r["trace"]) for r in runs),
                t_vg=cost["value_and_grad"],
                t_hvp=cost["hvp"], ratio=ratio, runs=runs)


# ------------------------------------------------------------------------------ transformer

_WORDS = dict(
    det=["the", "a", "my", "your", "this"],
    adj=["old", "young", "quiet", "bold", "gentle", "proud", "fair", "dark"],
    noun=["king", "queen", "lord", "maid", "knight", "fool", "horse", "sword", "crown", "heart"],
    verb=["loves", "fears", "serves", "seeks", "keeps", "hears", "calls", "finds"],
    prep=["in", "by", "with", "for", "upon"],
    place=["the hall", "the field", "the night", "the storm", "the court", "the sea"],
)


def tiny_text(n_chars, seed=0):
    """A seeded text from a small grammar ("the old king seeks a fair maid by the sea."):
    regular enough for a tiny model to learn a lot in a few hundred steps, with a loss
    floor well above zero (the word choices are random)."""
    rng = np.random.default_rng(seed)
    pick = lambda key: _WORDS[key][rng.integers(len(_WORDS[key]))]  # noqa: E731
    out, n = [], 0
    while n < n_chars:
        subj = f"{pick('det')} {pick('adj') + ' ' if rng.random() < 0.5 else ''}{pick('noun')}"
        obj = f"{pick('det')} {pick('adj') + ' ' if rng.random() < 0.5 else ''}{pick('noun')}"
        tail = f" {pick('prep')} {pick('place')}" if rng.random() < 0.6 else ""
        s = f"{subj} {pick('verb')} {obj}{tail}.\n" if rng.random() < 0.8 else f"{subj} {pick('verb')}.\n"
        out.append(s)
        n += len(s)
    return "".join(out)[:n_chars]


def _adam_direction(opt, g):
    """The direction Adam's next step moves along, d (the step is -lr * d), computed from
    the optimizer's state without changing it: m_hat / (sqrt(v_hat) + eps)."""
    b1, b2 = opt.betas
    t = opt.t + 1
    c1, c2 = 1.0 - b1 ** t, 1.0 - b2 ** t
    out = []
    for gi, m, v in zip(leaves(g), leaves(opt.m), leaves(opt.v)):
        m_new = b1 * m + (1.0 - b1) * gi
        v_new = b2 * v + (1.0 - b2) * np.square(gi)
        out.append((m_new / c1) / (np.sqrt(v_new / c2) + opt.eps))
    return out


def _rebuild_like(tree, flat_leaves):
    it = iter(flat_leaves)

    def build(t):
        if isinstance(t, dict):
            return {k: build(t[k]) for k in t}
        if isinstance(t, (list, tuple)):
            return type(t)(build(x) for x in t)
        return next(it)
    return build(tree)


def gpt_run(name, params0, batches, val_batches, n_head, vg, h, lr, curv_every, ratio,
            eval_every):
    """One training run; curv_every=0: plain Adam at lr; else the learning rate is chosen
    from the curvature along Adam's direction every curv_every steps (lr is the start)."""
    params = copy.deepcopy(params0)
    opt = Adam(params, lr=lr)
    cur_lr = lr
    steps = len(batches)
    train_trace, val_trace, lr_trace, raw_lrs = [], [], [], []
    n_hvp, clock, nonpos = 0, 0.0, 0

    def val_loss():
        return float(np.mean([transformer.gpt_loss(params, x, y, n_head) for x, y in val_batches]))

    val_trace.append((0, 0.0, 0.0, val_loss()))
    for step, (x, y) in enumerate(batches):
        t = time.perf_counter()
        value, g = vg(params, x, y, n_head)
        if curv_every and step % curv_every == 0:
            d = _rebuild_like(params, _adam_direction(opt, g))
            Hd = h(params, x, y, n_head, d)
            n_hvp += 1
            gd, dHd = tree_dot(g, d), tree_dot(d, Hd)
            alpha = gd / dHd if dHd > 0 else LR_MAX
            nonpos += dHd <= 0
            raw_lrs.append(alpha)
            alpha = min(max(alpha, LR_MIN), LR_MAX)
            # smoothed in log space: one batch's curvature is noisy
            cur_lr = alpha if step == 0 else math.exp(
                LR_SMOOTH * math.log(cur_lr) + (1 - LR_SMOOTH) * math.log(alpha))
        opt.step(params, g, lr=cur_lr)
        clock += time.perf_counter() - t
        geq = step + 1 + ratio * n_hvp
        train_trace.append((step + 1, clock, geq, float(value)))
        lr_trace.append(cur_lr)
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            val_trace.append((step + 1, clock, geq, val_loss()))
    raw = np.array(raw_lrs) if raw_lrs else np.zeros(1)
    return dict(name=name, lr=lr, curv_every=curv_every, final_val=val_trace[-1][3],
                best_val=min(v[3] for v in val_trace), time=clock, geq=steps + ratio * n_hvp,
                n_hvp=n_hvp, train_trace=train_trace, val_trace=val_trace, lr_trace=lr_trace,
                raw_lr_median=float(np.nanmedian(raw)), raw_lr_q10=float(np.nanquantile(raw, 0.1)),
                raw_lr_q90=float(np.nanquantile(raw, 0.9)), nonpositive_curvature=int(nonpos),
                final_lr=cur_lr)


def gpt_experiment(cfg, seed=0, data_path=None):
    from models import data
    text = data.load_text(data_path) if data_path else tiny_text(cfg["text_chars"], seed)
    vocab = data.Vocab.from_text(text)
    ids = vocab.encode(text)
    train_ids, val_ids = data.train_val_split(ids)
    n_head, B, T = cfg["n_head"], cfg["batch_size"], cfg["block_size"]
    rng = np.random.default_rng(seed)
    batches = [data.get_batch(train_ids, B, T, rng) for _ in range(cfg["steps"])]
    val_batches = [data.get_batch(val_ids, B, T, rng) for _ in range(cfg["eval_batches"])]
    params0 = transformer.init_params(len(vocab), cfg["n_layer"], cfg["n_embd"], n_head, T,
                                      seed=seed, dtype=np.float64)
    vg, h = ad.value_and_grad(transformer.gpt_loss), ad.hvp(transformer.gpt_loss)
    x, y = batches[0]
    cost = measure_cost({"value_and_grad": lambda: vg(params0, x, y, n_head),
                         "hvp": lambda: h(params0, x, y, n_head, params0)},
                        max(5, cfg.get("cost_repeats", 10)))
    ratio = cost["hvp"] / cost["value_and_grad"]
    runs = []
    for lr in cfg["adam_lrs"]:
        runs.append(gpt_run(f"Adam lr={lr:g}", params0, batches, val_batches, n_head, vg, h, lr,
                            0, ratio, cfg["eval_every"]))
    for every in cfg["curv_every"]:
        start = cfg["adam_lrs"][0]
        runs.append(gpt_run(f"Adam + hvp lr (every {every})", params0, batches, val_batches,
                            n_head, vg, h, start, every, ratio, cfg["eval_every"]))
    n_params = int(ad.flatten(params0)[0].size)
    return dict(config={k: cfg[k] for k in ("n_layer", "n_embd", "n_head", "block_size",
                                            "batch_size", "steps")},
                text=(str(data_path) if data_path else f"generated ({len(text)} chars)"),
                vocab=len(vocab), n_params=n_params, t_vg=cost["value_and_grad"],
                t_hvp=cost["hvp"], ratio=ratio, runs=runs)


# ---------------------------------------------------------------------------------- output

def _fmt_time(s):
    return f"{s:.2f}" if s < 10 else f"{s:.1f}"


def mlp_table(res):
    target = 1.1 * res["best_objective"]
    lines = ["| method | final train objective | train cross-entropy | test cross-entropy | "
             "test accuracy | to within 10% of the best: grad-equivalents, s | f+g calls | "
             "hvp calls | gradient-equivalents | wall time (s) | iterations | stopped by |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["runs"]:
        hit = next(((t, g) for t, g, f in r["trace"] if f <= target), None)
        reach = "not reached" if hit is None else f"{hit[1]:.0f}, {_fmt_time(hit[0])}"
        lines.append(f"| {r['method']} | {r['loss']:.6f} | {r['cross_entropy']:.4f} | "
                     f"{r['test_loss']:.4f} | {100 * r['test_acc']:.1f}% | {reach} | {r['n_fg']} | "
                     f"{r['n_hvp']} | {r['geq']:.0f} | {_fmt_time(r['time'])} | {r['iterations']} | "
                     f"{r['stop']} |")
    return "\n".join(lines)


def gpt_table(res):
    lines = ["| run | final val loss | best val loss | hvp calls | gradient-equivalents | "
             "train time (s) | final lr | curvature lr: median [10%, 90%] before clipping |",
             "|---|---|---|---|---|---|---|---|"]
    for r in res["runs"]:
        lr_col = "-" if not r["curv_every"] else (
            f"{r['raw_lr_median']:.2g} [{r['raw_lr_q10']:.2g}, {r['raw_lr_q90']:.2g}]"
            + (f", {r['nonpositive_curvature']} with d.H.d <= 0" if r["nonpositive_curvature"] else ""))
        lines.append(f"| {r['name']} | {r['final_val']:.4f} | {r['best_val']:.4f} | {r['n_hvp']} | "
                     f"{r['geq']:.0f} | {_fmt_time(r['time'])} | {r['final_lr']:.3g} | {lr_col} |")
    return "\n".join(lines)


def mlp_interpretation(res):
    runs = {r["method"]: r for r in res["runs"]}
    adam = min((r for r in res["runs"] if r["method"].startswith("Adam")), key=lambda r: r["loss"])
    best = min(res["runs"], key=lambda r: r["loss"])
    acc = max(res["runs"], key=lambda r: r["test_acc"])
    lb = runs["L-BFGS-B"]
    ncg = runs["Newton-CG"]
    parts = [
        f"With the same budget of {res['budget']} gradient-equivalents, the lowest training "
        f"objective was reached by {best['method']} ({best['loss']:.6f}); the best Adam "
        f"({adam['method']}) ended at {adam['loss']:.6f}, L-BFGS at {lb['loss']:.6f} and "
        f"Newton-CG at {ncg['loss']:.6f}.",
        f"One hvp cost {res['ratio']:.2f}x one value_and_grad here, so a Newton-CG iteration "
        f"with k CG steps costs about 1 + {res['ratio']:.1f}k gradients.",
        f"The objective is not convex, so the methods can stop at different local minima; the "
        f"'within 10%' column (of the best objective any method found, "
        f"{res['best_objective']:.6f}) measures speed.",
        f"Test accuracies ranged from {100 * min(r['test_acc'] for r in res['runs']):.1f}% to "
        f"{100 * acc['test_acc']:.1f}% ({len(res['runs'])} methods, {res['n_test']} test "
        f"images: one image is {100 / res['n_test']:.2f} points); a lower training objective "
        f"does not by itself mean better generalisation.",
    ]
    return " ".join(parts)


def gpt_interpretation(res):
    base = [r for r in res["runs"] if not r["curv_every"]]
    curv = [r for r in res["runs"] if r["curv_every"]]
    best_base = min(base, key=lambda r: r["final_val"])
    parts = [f"One hvp of the transformer cost {res['ratio']:.2f}x one value_and_grad."]
    paid = []
    for r in curv:
        diff = r["final_val"] - best_base["final_val"]
        verdict = ("better than" if diff < -0.01 else "worse than" if diff > 0.01 else
                   "about the same as")
        paid.append(diff < -0.01)
        early = (f" After {int(r['val_trace'][1][0])} steps its validation loss was "
                 f"{r['val_trace'][1][3]:.3f} against {best_base['val_trace'][1][3]:.3f}."
                 if len(r["val_trace"]) > 2 else "")
        parts.append(
            f"{r['name']} ended at validation loss {r['final_val']:.3f}, {verdict} the best fixed "
            f"learning rate ({best_base['name']}: {best_base['final_val']:.3f}), at "
            f"{r['geq'] / best_base['geq']:.2f}x its gradient-equivalents and "
            f"{r['time'] / best_base['time']:.2f}x its time.{early} The curvature-chosen learning "
            f"rate had median {r['raw_lr_median']:.2g} before clipping (10%-90%: "
            f"{r['raw_lr_q10']:.2g}-{r['raw_lr_q90']:.2g}; {r['nonpositive_curvature']} batches "
            f"with d.H.d <= 0) and ended at {r['final_lr']:.2g}, "
            f"{r['final_lr'] / best_base['lr']:.1f}x the best fixed rate.")
    parts.append(
        "The step size g.d / d.H.d minimises one batch's quadratic model along Adam's "
        "direction: a greedy choice (the best step for this batch, not for the run; Wu et al., "
        "2018, call this short-horizon bias), noisy from batch to batch and undefined where the "
        "curvature along d is not positive, so it has to be clipped and smoothed, and an hvp "
        "per step costs several gradients.")
    if any(paid):
        parts.append("In this run curvature information lowered the final validation loss.")
    else:
        early_better = all(len(r["val_trace"]) > 2 and
                           r["val_trace"][1][3] < best_base["val_trace"][1][3] for r in curv)
        parts.append(
            "In this run it did not pay off: a constant learning rate picked from a small sweep "
            "did as well or better at the end, at a fraction of the cost."
            + (" The curvature did pick a useful step size without tuning (lower validation "
               "loss than the best fixed rate at the first evaluation), but the greedy step "
               "stays large instead of annealing, and the end of training suffers."
               if early_better else ""))
    return " ".join(parts)


def plot_mlp(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in res["runs"]:
        t = np.array(r["trace"])
        # running minimum: line searches can evaluate worse points; show the best so far
        best = np.minimum.accumulate(t[:, 2])
        axes[0].plot(np.maximum(t[:, 0], 1e-3), best, label=r["method"])
        axes[1].plot(t[:, 1], best, label=r["method"])
    axes[0].set_xscale("log")
    axes[0].set_xlabel("wall time (s)")
    axes[1].set_xlabel(f"gradient-equivalents (hvp = {res['ratio']:.2f} gradients)")
    for ax in axes:
        ax.set_yscale("log")
        ax.set_ylabel("training objective (full batch; best so far)")
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Digits MLP ({res['n_params']} parameters, float64, full batch of "
                 f"{res['n_train']}; cross-entropy + {res['l2']:g}/2 |W|^2, best "
                 f"{res['best_objective']:.6f})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_gpt(res, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    for r in res["runs"]:
        tr = np.array(r["train_trace"])
        va = np.array(r["val_trace"])
        k = max(1, len(tr) // 40)
        smooth = np.convolve(tr[:, 3], np.ones(k) / k, mode="valid")
        line, = axes[0].plot(tr[k - 1:, 0], smooth, alpha=0.5, lw=1)
        axes[0].plot(va[:, 0], va[:, 3], "o-", ms=3, color=line.get_color(), label=r["name"])
        axes[1].plot(va[:, 2], va[:, 3], "o-", ms=3, color=line.get_color(), label=r["name"])
        axes[2].plot(np.arange(1, len(r["lr_trace"]) + 1), r["lr_trace"], color=line.get_color(),
                     label=r["name"])
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("loss (nats/char): train (thin, smoothed), validation (dots)")
    axes[1].set_xlabel(f"gradient-equivalents (hvp = {res['ratio']:.2f} gradients)")
    axes[1].set_ylabel("validation loss")
    axes[2].set_xlabel("step")
    axes[2].set_ylabel("learning rate")
    axes[2].set_yscale("log")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    axes[1].legend(fontsize=8)
    c = res["config"]
    fig.suptitle(f"Char transformer ({res['n_params']} parameters: {c['n_layer']} layers, width "
                 f"{c['n_embd']}, context {c['block_size']}, batch {c['batch_size']}, float64)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(out, mlp_res, gpt_res, quick, wall):
    import platform
    md = ["# Second-order optimisation with s2s_ad", "",
          f"`python -m models.second_order{' --quick' if quick else ''}`: one run, "
          f"{wall:.0f} s all told, Python {platform.python_version()}, NumPy {np.__version__}, "
          f"one BLAS thread, on {platform.machine()} ({platform.system()}).", ""]
    if mlp_res:
        md += ["## Digits MLP, full batch", "",
               f"{mlp_res['n_params']} parameters (64-{mlp_res['hidden']}-{mlp_res['hidden']}-10, "
               f"tanh, float64), {mlp_res['n_train']} training and {mlp_res['n_test']} test "
               f"images. Objective: models/mlp.py's mean cross-entropy + {mlp_res['l2']:g}/2 "
               f"times the sum of squared weights (the digits are separable: without it the "
               f"weights grow without bound); starting objective {mlp_res['loss0']:.4f}. One `value_and_grad` took "
               f"{1e3 * mlp_res['t_vg']:.2f} ms and one `hvp` {1e3 * mlp_res['t_hvp']:.2f} ms "
               f"(median of interleaved calls): **hvp = {mlp_res['ratio']:.2f} gradients**. "
               f"Budget: {mlp_res['budget']} gradient-equivalents per method.", "",
               mlp_table(mlp_res), "", "![MLP](mlp.png)", "", mlp_interpretation(mlp_res), ""]
    if gpt_res:
        c = gpt_res["config"]
        md += ["## Char transformer, Adam with and without curvature", "",
               f"{gpt_res['n_params']} parameters ({c['n_layer']} layers, width {c['n_embd']}, "
               f"{c['n_head']} heads, context {c['block_size']}, float64), text: "
               f"{gpt_res['text']}, vocabulary {gpt_res['vocab']}; {c['steps']} steps of batch "
               f"{c['batch_size']}, the same batches for every run. One `value_and_grad` took "
               f"{1e3 * gpt_res['t_vg']:.2f} ms and one `hvp` {1e3 * gpt_res['t_hvp']:.2f} ms: "
               f"**hvp = {gpt_res['ratio']:.2f} gradients**. The curvature runs take Adam's "
               f"direction d and set the learning rate to g.d / d.H.d (one `ad.hvp` on the "
               f"step's batch), clipped to [{LR_MIN:g}, {LR_MAX:g}] and smoothed in log space "
               f"(weight {LR_SMOOTH} on the previous value), starting from "
               f"{gpt_res['runs'][0]['lr']:g}.", "",
               gpt_table(gpt_res), "", "![GPT](gpt.png)", "", gpt_interpretation(gpt_res), ""]
    (out / "RESULTS.md").write_text("\n".join(md), encoding="utf-8")
    return "\n".join(md)


def _jsonable(res):
    if res is None:
        return None
    res = copy.deepcopy(res)
    for r in res["runs"]:
        for key in ("trace", "train_trace", "val_trace", "lr_trace"):
            if key in r:
                r[key] = [list(map(float, p)) if isinstance(p, (tuple, list)) else float(p)
                          for p in r[key]]
    return res


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m models.second_order",
                                description=__doc__.split("\n")[0])
    p.add_argument("--out", default="results/second_order", help="output directory")
    p.add_argument("--quick", action="store_true", help="tiny sizes: well under a minute")
    p.add_argument("--skip-gpt", action="store_true", help="the MLP part only")
    p.add_argument("--skip-mlp", action="store_true", help="the transformer part only")
    p.add_argument("--data", help="a text file for the transformer (default: a generated text)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--l2", type=float, default=1e-3, help="MLP weight penalty (0: none)")
    args = p.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    mlp_res = gpt_res = None
    with _blas_threads(1):
        if not args.skip_mlp:
            mlp_res = mlp_experiment(cfg, args.seed, args.l2)
            plot_mlp(mlp_res, out / "mlp.png")
        if not args.skip_gpt:
            gcfg = dict(cfg["gpt"], cost_repeats=cfg["cost_repeats"])
            gpt_res = gpt_experiment(gcfg, args.seed, args.data)
            plot_gpt(gpt_res, out / "gpt.png")
    wall = time.perf_counter() - t0
    text = write_report(out, mlp_res, gpt_res, args.quick, wall)
    (out / "metrics.json").write_text(json.dumps(
        {"mlp": _jsonable(mlp_res), "gpt": _jsonable(gpt_res), "quick": args.quick,
         "wall_time_s": wall}, indent=1), encoding="utf-8")
    print(text)
    return {"mlp": mlp_res, "gpt": gpt_res}


if __name__ == "__main__":
    main(sys.argv[1:])
