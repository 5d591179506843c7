"""Train the digits MLP or the char-level GPT with gradients from s2s_ad.

    python -m models.train --model mlp --steps 300         # digits MLP, ~seconds
    python -m models.train --preset default                # char GPT on Shakespeare, <= 10 min
    python -m models.train --preset long --out runs/long   # about an hour
    python -m models.train --preset default --resume       # continue from runs/default/checkpoint.npz

A preset fills in defaults; any flag given on the command line wins. Outputs in --out:
checkpoint.npz, loss.png, metrics.json and (gpt) sample.txt.
"""
import argparse
import itertools
import contextlib
import importlib
import json
import sys
import time
from pathlib import Path

import numpy as np

import s2s_ad as ad
from models import checkpoint, data, mlp
from models.optim import Adam, leaves, lr_schedule

# Values every run starts from; a preset overrides some, explicit flags override both.
# threads=1: one BLAS thread. These matrices are small, so a second thread gains little, and
# when anything else runs on the 2 cores, spinning OpenBLAS threads made a GPT step 7x slower
# (2.75 s against 0.38 s) and an MLP step 60x slower.
BASE = dict(model="gpt", n_layer=4, n_embd=128, n_head=4, block_size=64, hidden=128,
            activation="tanh", steps=1000, batch_size=32, lr=1e-3, weight_decay=0.0, clip=1.0,
            warmup=50, seed=0, dtype="float32", data=None, out=None, eval_every=100,
            eval_batches=10, checkpoint_every=100, sample_chars=500, threads=1, time_budget=0)

PRESETS = {
    # Digits MLP: ~1 ms a step, so a thousand steps take seconds.
    "mlp": dict(model="mlp", hidden=128, steps=1000, batch_size=64, lr=3e-3, warmup=50,
                weight_decay=1e-4, eval_every=100, checkpoint_every=250),
    # Must finish within 10 minutes on 2 cores. Measured: 1,000 steps in 5 min 4 s all told on
    # a quiet machine (0.28 s a step of 2,048 tokens, 2 s for the first: the compile; val loss
    # 1.76); steps took 0.53 s while other jobs shared the cores, which still fits in ~9.5 min.
    # The step count is fitted to a time budget (measured over the first steps): at most
    # `steps`, as many as fit in `time_budget` seconds of training, so that the whole run
    # stays within 10 minutes on a 2-core machine whatever else shares it.
    "default": dict(model="gpt", n_layer=4, n_embd=128, n_head=4, block_size=64, batch_size=32,
                    steps=3000, time_budget=550, lr=2e-3, warmup=50, weight_decay=0.1, clip=1.0,
                    eval_every=100, eval_batches=10, checkpoint_every=100),
    # Up to an hour: the same width with twice the context (2x the cost a step) rather than
    # a wider model that would see too little text in the time; as many steps as fit in a
    # 3,300 s training budget (fitted like the default's), at most 8,000.
    "long": dict(model="gpt", n_layer=4, n_embd=128, n_head=4, block_size=128, batch_size=32,
                 steps=8000, time_budget=3300, lr=1.5e-3, warmup=100, weight_decay=0.1,
                 clip=1.0, eval_every=250, eval_batches=20, checkpoint_every=250),
}

# Settings that fix the shapes of the parameters: a resumed run must agree on them.
SHAPE_KEYS = ("model", "n_layer", "n_embd", "n_head", "block_size", "hidden", "activation", "dtype")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=sorted(PRESETS),
                   help="defaults to use (mlp for --model mlp, else default)")
    p.add_argument("--model", choices=["mlp", "gpt"])
    g = p.add_argument_group("sizes")
    g.add_argument("--n-layer", type=int)
    g.add_argument("--n-embd", type=int)
    g.add_argument("--n-head", type=int)
    g.add_argument("--block-size", type=int)
    g.add_argument("--hidden", type=int, help="MLP hidden width (both hidden layers)")
    g.add_argument("--activation", choices=["tanh", "relu"], help="MLP hidden units")
    g = p.add_argument_group("optimisation")
    g.add_argument("--steps", type=int)
    g.add_argument("--time-budget", type=float, help="seconds of training to fit the step count "
                   "to (measured over the first 20 steps; 0: run --steps)")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float, help="peak learning rate")
    g.add_argument("--weight-decay", type=float, help="decoupled (AdamW) weight decay")
    g.add_argument("--clip", type=float, help="global gradient-norm clip (0: off)")
    g.add_argument("--warmup", type=int, help="linear warm-up steps before the cosine decay")
    g.add_argument("--seed", type=int)
    g.add_argument("--dtype", choices=["float32", "float64"])
    g = p.add_argument_group("data and output")
    g.add_argument("--data", help="gpt: a UTF-8 text file (default: Shakespeare, fetched once); "
                                  "mlp: an .npz with x_train y_train x_test y_test (default: digits)")
    g.add_argument("--out", help="output folder (default runs/<preset>)")
    g.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.npz")
    g.add_argument("--eval-every", type=int)
    g.add_argument("--eval-batches", type=int, help="gpt: batches per validation estimate")
    g.add_argument("--checkpoint-every", type=int)
    g.add_argument("--sample-chars", type=int, help="gpt: length of the final text sample")
    g.add_argument("--threads", type=int, help="BLAS threads (0: the library's default)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    preset = args.preset or ("mlp" if args.model == "mlp" else "default")
    if args.model and args.model != PRESETS[preset]["model"]:
        p.error(f"--preset {preset} is for --model {PRESETS[preset]['model']}")
    explicit = {k: v for k, v in vars(args).items()
                if v is not None and k not in ("preset", "resume", "no_progress")}
    config = {**BASE, **PRESETS[preset], **explicit, "preset": preset}
    config["out"] = config["out"] or str(Path("runs") / preset)
    return config, args.resume, not args.no_progress


class MLPTask:
    """The MLP on the digits (or on arrays from an .npz): batches of rows, full-set evaluation."""
    unit = "samples"

    def __init__(self, cfg):
        if cfg["data"]:
            with np.load(cfg["data"]) as f:
                xs = [f[k] for k in ("x_train", "y_train", "x_test", "y_test")]
            self.x_train, self.y_train, self.x_test, self.y_test = xs
            self.x_train = self.x_train.astype(cfg["dtype"])
            self.x_test = self.x_test.astype(cfg["dtype"])
        else:
            self.x_train, self.y_train, self.x_test, self.y_test = mlp.load_digits_split(
                seed=cfg["seed"], test_fraction=0.2, dtype=cfg["dtype"])
        n_classes = int(max(self.y_train.max(), self.y_test.max())) + 1
        self.params = mlp.init_params(self.x_train.shape[1], cfg["hidden"], n_classes,
                                      seed=cfg["seed"], dtype=cfg["dtype"])
        self.loss, self.value_and_grad = mlp.LOSSES[cfg["activation"]]
        self.activation = cfg["activation"]
        self.batch_size = cfg["batch_size"]
        self.items_per_step = self.batch_size

    def batch(self, rng):
        idx = rng.integers(0, len(self.x_train), size=self.batch_size)
        return self.x_train[idx], self.y_train[idx]

    def step_grad(self, params, batch):
        return self.value_and_grad(params, *batch)

    def evaluate(self, params):
        return {"train_loss": float(self.loss(params, self.x_train, self.y_train)),
                "val_loss": float(self.loss(params, self.x_test, self.y_test)),
                "val_acc": mlp.accuracy(params, self.x_test, self.y_test, self.activation)}

    def finish(self, params, cfg, out):
        return {}


class GPTTask:
    """The char-level transformer of models.transformer on a text corpus."""
    unit = "tokens"

    def __init__(self, cfg):
        self.tf = importlib.import_module("models.transformer")
        text = data.load_text(cfg["data"])
        self.vocab = data.Vocab.from_text(text)
        ids = self.vocab.encode(text)
        self.train_ids, self.val_ids = data.train_val_split(ids, 0.1)
        print(f"corpus: {len(text):,} characters, vocabulary {len(self.vocab)}, "
              f"train {len(self.train_ids):,} / validation {len(self.val_ids):,}", file=sys.stderr)
        self.cfg = cfg
        self.params = self.tf.init_params(len(self.vocab), cfg["n_layer"], cfg["n_embd"],
                                          cfg["n_head"], cfg["block_size"], cfg["seed"],
                                          cfg["dtype"])
        self.value_and_grad = ad.value_and_grad(self.tf.gpt_loss)
        self.items_per_step = cfg["batch_size"] * cfg["block_size"]

    def batch(self, rng):
        return data.get_batch(self.train_ids, self.cfg["batch_size"], self.cfg["block_size"], rng)

    def step_grad(self, params, batch):
        return self.value_and_grad(params, batch[0], batch[1], self.cfg["n_head"])

    def _estimate(self, params, ids):
        # A fresh RNG each time: every evaluation sees the same windows (comparable numbers),
        # and the training RNG is untouched (so resuming is exact).
        rng = np.random.default_rng(self.cfg["seed"] + 1)
        losses = [self.tf.gpt_loss(params, *data.get_batch(ids, self.cfg["batch_size"],
                                                           self.cfg["block_size"], rng),
                                   self.cfg["n_head"])
                  for _ in range(self.cfg["eval_batches"])]
        return float(np.mean(losses))

    def evaluate(self, params):
        return {"train_loss": self._estimate(params, self.train_ids),
                "val_loss": self._estimate(params, self.val_ids)}

    def finish(self, params, cfg, out):
        if cfg["sample_chars"] <= 0:
            return {}
        prompt = self.vocab.encode("\n" if "\n" in self.vocab.index else self.vocab.chars[0])
        rng = np.random.default_rng(cfg["seed"] + 2)
        ids = self.tf.generate(params, prompt, cfg["sample_chars"], cfg["n_head"],
                               cfg["block_size"], rng)
        text = self.vocab.decode(np.asarray(ids).reshape(-1))
        (out / "sample.txt").write_text(text, encoding="utf-8")
        print(f"--- sample ({len(text)} characters, {out / 'sample.txt'}) ---\n{text[:400]}\n---")
        return {"sample_chars": len(text)}


def _progress(total, initial, enabled):
    """A tqdm bar (loss, rate and ETA); a bare stand-in when tqdm is not installed."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        return tqdm(total=total, initial=initial, disable=not enabled, unit="step",
                    dynamic_ncols=True, mininterval=0.5)

    class Plain:  # prints the latest postfix every 10 % of the run
        def __init__(self):
            self.n, self.postfix = initial, ""

        def update(self, k=1):
            self.n += k
            if enabled and (self.n % max(total // 10, 1) == 0 or self.n == total):
                print(f"step {self.n}/{total} {self.postfix}", file=sys.stderr)

        def set_postfix_str(self, s, refresh=False):
            self.postfix = s

        write = staticmethod(lambda s: print(s, file=sys.stderr))
        close = staticmethod(lambda: None)
    return Plain()


def plot_losses(history, path, title):
    """Loss curve PNG: batch losses (faint), their running mean, and validation points."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no loss plot", file=sys.stderr)
        return False
    steps, losses = np.array(history["train"], dtype=float).reshape(-1, 2).T
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    ax.plot(steps, losses, color="tab:blue", alpha=0.25, lw=0.8, label="batch loss")
    if len(losses) >= 10:
        w = max(len(losses) // 50, 5)
        ax.plot(steps[w - 1:], np.convolve(losses, np.ones(w) / w, "valid"), color="tab:blue",
                label=f"batch loss, mean of {w}")
    if history["eval"]:
        ev = np.array([[e["step"], e["val_loss"]] for e in history["eval"]])
        ax.plot(ev[:, 0], ev[:, 1], "o-", color="tab:orange", label="validation loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def _blas_threads(n):
    """Limit BLAS threads with threadpoolctl (installed with scikit-learn) when asked and present."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(n) if n else contextlib.nullcontext()


def train(cfg, resume=False, progress=True, on_step=None):
    """Run training as configured; returns the metrics dict (also written to metrics.json).
    `on_step(step)` is called after every completed step (tests use it to simulate a crash)."""
    with _blas_threads(cfg.get("threads", 0)):
        return _train(cfg, resume, progress, on_step)


def _fit_steps(cfg, step, t_start, clock, wall_before):
    """How many steps fit the time budget, from the speed of the steps so far (with a
    margin for evaluations, checkpoints and the final sample)."""
    per_step = clock["train"] / max(clock["timed_steps"], 1)
    left = cfg["time_budget"] - (time.perf_counter() - t_start) - wall_before
    evals = per_step * 0.4 * cfg["eval_batches"] / max(cfg["eval_every"], 1)
    fit = step + 1 + int(left * 0.9 / (per_step + evals))
    return max(step + 2, min(cfg["steps"], fit))


def _due(done, every, total):
    return done == total or (every > 0 and done % every == 0)


def _restore(state, cfg, params, opt, rng, ckpt_path):
    """Load a checkpoint into the live params, optimizer and RNG, refusing a different model."""
    bad = [k for k in SHAPE_KEYS if state["config"].get(k) != cfg[k]]
    shapes = [p.shape for p in leaves(params)] != [p.shape for p in leaves(state["params"])]
    if bad or shapes:
        diff = ", ".join(f"{k} {state['config'].get(k)} != {cfg[k]}" for k in bad) or \
            "parameter shapes (another --data vocabulary?)"
        raise SystemExit(f"--resume: {ckpt_path} belongs to a different model: {diff}")
    for dst, src in zip(leaves(params), leaves(state["params"])):
        dst[...] = src
    opt.load_state_dict(state["opt_state"])
    rng.bit_generator.state = state["rng_state"]


def _train(cfg, resume, progress, on_step):
    t_start = time.perf_counter()
    out = Path(cfg["out"])
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.npz"
    task = (MLPTask if cfg["model"] == "mlp" else GPTTask)(cfg)
    params = task.params
    opt = Adam(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"], clip=cfg["clip"])
    rng = np.random.default_rng(cfg["seed"])  # the batch sampler's, saved in checkpoints
    start, history = 0, {"train": [], "eval": []}
    # Timing carried across resumes. The first step of each process is timed apart: it
    # includes s2s_ad's one-off transformation and compile.
    clock = {"wall": 0.0, "train": 0.0, "timed_steps": 0, "first_steps": 0.0}

    if resume and ckpt_path.exists():
        state = checkpoint.load(ckpt_path)
        _restore(state, cfg, params, opt, rng, ckpt_path)
        start, history, clock = state["step"], state["extra"]["history"], state["extra"]["clock"]
        cfg["steps"] = clock.get("fitted_steps", cfg["steps"])  # a budget already decided
        print(f"resumed from {ckpt_path} at step {start}", file=sys.stderr)
    elif resume:
        print(f"--resume: no {ckpt_path} yet, starting from scratch", file=sys.stderr)
    wall_before = clock["wall"]

    def save(step):
        clock["wall"] = wall_before + time.perf_counter() - t_start
        checkpoint.save(ckpt_path, params, opt.state_dict(), step, rng.bit_generator.state, cfg,
                        extra={"history": history, "clock": clock})

    n_params = sum(p.size for p in leaves(params))
    print(f"{cfg['model']} ({cfg['preset']}): {n_params:,} parameters, {cfg['dtype']}, "
          f"{cfg['steps']} steps, out {out}", file=sys.stderr)
    bar = _progress(cfg["steps"], start, progress)
    rate = None
    try:
        for step in itertools.count(start):
            if step >= cfg["steps"]:  # (read every step: a time budget may shorten the run)
                break
            t0 = time.perf_counter()
            batch = task.batch(rng)
            lr = lr_schedule(step, cfg["lr"], cfg["warmup"], cfg["steps"])
            loss, grads = task.step_grad(params, batch)
            opt.step(params, grads, lr)
            dt = time.perf_counter() - t0
            loss = float(loss)
            if not np.isfinite(loss):
                raise FloatingPointError(f"loss is {loss} at step {step}: lower --lr or set --clip")
            history["train"].append([step, loss])
            # Fit the step count to the time budget after 20 steps, and again every 100
            # steps until half-way (the machine may be busier or quieter than at first).
            refit = step == start + 20 or (step > start + 20 and step % 100 == 0
                                           and step < cfg["steps"] // 2)
            if cfg.get("time_budget") and not clock.get("fit_done") and refit:
                cfg["steps"] = clock["fitted_steps"] = _fit_steps(cfg, step, t_start, clock,
                                                                   wall_before)
                if bar is not None and hasattr(bar, "total"):
                    bar.total = cfg["steps"]
            if step == start:
                clock["first_steps"] += dt
            else:
                clock["train"] += dt
                clock["timed_steps"] += 1
                rate = task.items_per_step / dt if rate is None else \
                    0.9 * rate + 0.1 * task.items_per_step / dt
            speed = f" {rate:,.0f} {task.unit}/s" if rate else ""
            bar.set_postfix_str(f"loss {loss:.3f} lr {lr:.1e}{speed}", refresh=False)
            bar.update(1)
            done = step + 1
            if _due(done, cfg["eval_every"], cfg["steps"]):
                ev = {"step": done, **task.evaluate(params)}
                history["eval"].append(ev)
                bar.write(f"step {done:>6}  "
                          + "  ".join(f"{k} {v:.4f}" for k, v in ev.items() if k != "step"))
            if _due(done, cfg["checkpoint_every"], cfg["steps"]):
                save(done)
            if on_step is not None:
                on_step(done)
    except KeyboardInterrupt:
        bar.close()
        raise SystemExit(f"interrupted; continue from the last checkpoint with --resume "
                         f"(--out {out})")
    bar.close()

    if not history["eval"] or history["eval"][-1]["step"] != cfg["steps"]:
        history["eval"].append({"step": cfg["steps"], **task.evaluate(params)})
    final = history["eval"][-1]
    metrics = {
        "model": cfg["model"], "preset": cfg["preset"], "steps": cfg["steps"],
        "n_params": int(n_params),
        **{f"final_{k}": v for k, v in final.items() if k != "step"},
        "wall_time_s": round(wall_before + time.perf_counter() - t_start, 3),
        "train_time_s": round(clock["train"] + clock["first_steps"], 3),
        "first_step_s": round(clock["first_steps"], 3),  # includes the gradient's compile
        # Steady-state throughput: steps after the first of each process.
        f"{task.unit}_per_s": round(clock["timed_steps"] * task.items_per_step
                                    / max(clock["train"], 1e-9), 1),
        "config": cfg,
    }
    metrics.update(task.finish(params, cfg, out))
    title = f"{cfg['model']} ({cfg['preset']}): final val loss {final['val_loss']:.3f}"
    if plot_losses(history, out / "loss.png", title):
        metrics["loss_plot"] = str(out / "loss.png")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps({k: v for k, v in metrics.items() if k != "config"}))
    return metrics


def main(argv=None):
    cfg, resume, progress = parse_args(argv)
    train(cfg, resume=resume, progress=progress)


if __name__ == "__main__":
    main()
