"""The GPT of `models.transformer` in PyTorch, as an independent reference for the NumPy
gradients (needs `pip install torch==2.13.0`).

It is built from torch's own library ops (layer_norm, scaled_dot_product_attention, tanh
GELU, cross_entropy), so agreeing with it checks the NumPy model and its gradients against
code they share nothing with.

    python -m bench.torch_gpt

trains both from the same init on the same batches with the same Adam, in float64, and
checks that the two losses agree to 1e-6 relative over the first 50 steps. The NumPy side
uses s2s_ad's generated gradients (`--grads s2s_ad`), `bench.handwritten_gpt`'s
(`--grads handwritten`), or both in turn (the default).
"""
import argparse
import sys

import numpy as np
import torch
import torch.nn.functional as F

from bench.handwritten_gpt import gpt_value_and_grad
from models.transformer import LN_EPS, init_params


def tree_map(fn, *trees):
    """fn over the arrays of nested dicts/lists of the same structure."""
    if isinstance(trees[0], dict):
        return {k: tree_map(fn, *(t[k] for t in trees)) for k in trees[0]}
    if isinstance(trees[0], list):
        return [tree_map(fn, *parts) for parts in zip(*trees)]
    return fn(*trees)


def tree_leaves(tree):
    if isinstance(tree, dict):
        return [leaf for v in tree.values() for leaf in tree_leaves(v)]
    if isinstance(tree, list):
        return [leaf for v in tree for leaf in tree_leaves(v)]
    return [tree]


def torch_loss(tp, idx, targets, n_head):
    """The model on torch tensors: tp has the params' structure, idx/targets are (B, T)."""
    B, T = idx.shape
    C = tp["wte"].shape[1]
    x = tp["wte"][idx] + tp["wpe"][:T]
    for blk in tp["blocks"]:
        h = F.layer_norm(x, (C,), blk["ln1_g"], blk["ln1_b"], eps=LN_EPS)
        q, k, v = ((h @ blk["W_" + n] + blk["b_" + n]).view(B, T, n_head, C // n_head).transpose(1, 2)
                   for n in "qkv")
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + y.transpose(1, 2).reshape(B, T, C) @ blk["W_proj"] + blk["b_proj"]
        h = F.layer_norm(x, (C,), blk["ln2_g"], blk["ln2_b"], eps=LN_EPS)
        x = x + F.gelu(h @ blk["W_fc"] + blk["b_fc"], approximate="tanh") @ blk["W_fc2"] + blk["b_fc2"]
    x = F.layer_norm(x, (C,), tp["lnf_g"], tp["lnf_b"], eps=LN_EPS)
    z = x @ tp["W_out"] + tp["b_out"]
    return F.cross_entropy(z.reshape(B * T, -1), targets.reshape(B * T))


def torch_value_and_grad(params, idx, targets, n_head):
    """(loss, grads) of gpt_loss computed by torch, as NumPy, in the params' dtype and structure."""
    tp = tree_map(lambda a: torch.tensor(a, requires_grad=True), params)
    loss = torch_loss(tp, torch.as_tensor(idx), torch.as_tensor(targets), n_head)
    loss.backward()
    grads = tree_map(lambda t: t.grad.numpy(), tp)
    return loss.detach().numpy()[()], grads


def adam(params, grads, state, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8):
    """One Adam step (bias-corrected), written once and applied to both sides alike."""
    state["t"] += 1
    t = state["t"]
    state["m"] = tree_map(lambda m, g: b1 * m + (1 - b1) * g, state["m"], grads)
    state["v"] = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, state["v"], grads)
    step = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    return tree_map(lambda p, m, v: p - step * m / (np.sqrt(v) + eps), params, state["m"], state["v"])


def adam_state(params):
    return {"t": 0, "m": tree_map(np.zeros_like, params), "v": tree_map(np.zeros_like, params)}


def char_data():
    """This package's own model source as character data: real text, no download.
    Returns (token ids, vocab size)."""
    import models.transformer as m
    with open(m.__file__) as f:
        text = f.read()
    chars = sorted(set(text))
    return np.array([chars.index(c) for c in text]), len(chars)


def batches(data, block_size, batch_size, seed):
    """Endless random (idx, targets) windows of data; targets are idx shifted by one."""
    rng = np.random.default_rng(seed)
    while True:
        start = rng.integers(0, len(data) - block_size - 1, size=batch_size)
        offsets = start[:, None] + np.arange(block_size)
        yield data[offsets], data[offsets + 1]


def compare_training(numpy_value_and_grad, steps=50, n_layer=4, n_embd=128, n_head=4,
                     block_size=64, batch_size=32, seed=0, lr=1e-3):
    """Train a NumPy copy (numpy_value_and_grad) and a torch copy (torch_value_and_grad) from
    one float64 init on the same batches with the same Adam. Returns the per-step losses of
    both and the max relative loss difference."""
    data, vocab = char_data()
    params = init_params(vocab, n_layer, n_embd, n_head, block_size, seed, dtype=np.float64)
    p_np, p_pt = params, tree_map(np.copy, params)
    s_np, s_pt = adam_state(p_np), adam_state(p_pt)
    stream = batches(data, block_size, batch_size, seed)
    losses_np, losses_pt = [], []
    for _ in range(steps):
        idx, targets = next(stream)
        l_np, g_np = numpy_value_and_grad(p_np, idx, targets, n_head)
        l_pt, g_pt = torch_value_and_grad(p_pt, idx, targets, n_head)
        losses_np.append(float(l_np))
        losses_pt.append(float(l_pt))
        p_np = adam(p_np, g_np, s_np, lr=lr)
        p_pt = adam(p_pt, g_pt, s_pt, lr=lr)
    a, b = np.array(losses_np), np.array(losses_pt)
    return a, b, float(np.max(np.abs(a - b) / np.abs(b)))


def grad_difference(numpy_value_and_grad, seed=0):
    """Max over parameters of max|g_numpy - g_torch| / max|g_torch| at a float64 init. The
    floor on the denominator is for b_k, whose exact gradient is 0 (the softmax ignores a
    constant added to one query's scores), so both sides give only rounding noise."""
    data, vocab = char_data()
    params = init_params(vocab, 2, 32, 4, 16, seed, dtype=np.float64)
    idx, targets = next(batches(data, 16, 4, seed))
    _, g_np = numpy_value_and_grad(params, idx, targets, 4)
    _, g_pt = torch_value_and_grad(params, idx, targets, 4)
    return max(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-8) for a, b in
               zip(tree_leaves(g_np), tree_leaves(g_pt)))


def compiler_value_and_grad():
    """s2s_ad's generated value_and_grad of `models.transformer.gpt_loss` (wrt params)."""
    import s2s_ad as ad
    from models.transformer import gpt_loss
    return ad.value_and_grad(gpt_loss)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--grads", choices=["s2s_ad", "handwritten", "both"], default="both",
                    help="whose NumPy gradients train against PyTorch's")
    args = ap.parse_args(argv)
    sides = {"s2s_ad": compiler_value_and_grad, "handwritten": lambda: gpt_value_and_grad}
    names = list(sides) if args.grads == "both" else [args.grads]
    status = 0
    for name in names:
        vag = sides[name]()
        print(f"[{name}] max relative gradient difference vs torch at init: "
              f"{grad_difference(vag):.3e}")
        a, b, rel = compare_training(vag, steps=args.steps)
        print(f"[{name}] {len(a)} Adam steps, float64: loss {a[0]:.6f} -> {a[-1]:.6f} "
              f"(numpy), {b[0]:.6f} -> {b[-1]:.6f} (torch)")
        print(f"[{name}] max relative loss difference vs torch: {rel:.3e} "
              f"(tolerance {args.tol:g})")
        if not rel <= args.tol:
            print(f"[{name}] FAIL: the NumPy and PyTorch losses disagree")
            status = 1
    print("OK" if status == 0 else "FAIL")
    return status


if __name__ == "__main__":
    sys.exit(main())
