"""Adam(W) on nested dicts/lists of arrays, updated in place, and a warm-up + cosine schedule."""
import math

import numpy as np


def leaves(tree):
    """The arrays of a nested dict/list/tuple, in a fixed order (dict keys as stored)."""
    if isinstance(tree, dict):
        return [leaf for key in tree for leaf in leaves(tree[key])]
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in leaves(item)]
    return [tree]


def tree_map(fn, tree):
    """A tree of the same structure holding fn(leaf)."""
    if isinstance(tree, dict):
        return {key: tree_map(fn, value) for key, value in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(tree_map(fn, item) for item in tree)
    return fn(tree)


def global_norm(grads):
    """sqrt of the sum of squares of every gradient entry (accumulated in float64)."""
    return math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in leaves(grads)))


class Adam:
    """Adam with optional decoupled weight decay (AdamW) and global-norm gradient clipping.

    `step` updates the float arrays of `params` in place, so the caller's dict stays valid and
    float32 parameters stay float32 (moments are kept in the parameter's dtype; scalars are
    Python floats, which NumPy 2 does not let promote an array). Weight decay applies to
    arrays with ndim >= 2 only (weight matrices, embeddings), not to biases or gains.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 clip=None):
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay, self.clip = weight_decay, clip
        self.t = 0
        self.m = tree_map(np.zeros_like, params)
        self.v = tree_map(np.zeros_like, params)

    def step(self, params, grads, lr=None):
        """One update; returns the gradient's global norm before clipping."""
        lr = self.lr if lr is None else float(lr)
        b1, b2 = self.betas
        norm = global_norm(grads)
        scale = 1.0
        if self.clip is not None and self.clip > 0 and norm > self.clip:
            scale = self.clip / (norm + 1e-6)
        self.t += 1
        # Bias corrections folded into the step size and epsilon (as in the Adam paper, sec. 2).
        c1, c2 = 1.0 - b1 ** self.t, 1.0 - b2 ** self.t
        step_size = lr * math.sqrt(c2) / c1
        eps = self.eps * math.sqrt(c2)
        for p, g, m, v in zip(leaves(params), leaves(grads), leaves(self.m), leaves(self.v)):
            if scale != 1.0:
                g = g * scale
            m *= b1
            m += (1.0 - b1) * g
            v *= b2
            v += (1.0 - b2) * np.square(g)
            if self.weight_decay and p.ndim >= 2:
                p *= 1.0 - lr * self.weight_decay  # decoupled: not scaled by 1/sqrt(v)
            p -= step_size * m / (np.sqrt(v) + eps)
        return norm

    def state_dict(self):
        return {"t": self.t, "m": self.m, "v": self.v}

    def load_state_dict(self, state):
        self.t = int(state["t"])
        # Copy into the existing arrays so their dtype and structure are kept.
        for dst, src in zip(leaves(self.m) + leaves(self.v), leaves(state["m"]) + leaves(state["v"])):
            dst[...] = src


def lr_schedule(step, base_lr, warmup, total, min_ratio=0.1):
    """Learning rate for 0-based `step`: linear warm-up over `warmup` steps to base_lr, then a
    cosine decay to min_ratio * base_lr at step `total`."""
    if warmup > 0 and step < warmup:
        return base_lr * (step + 1) / warmup
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    return base_lr * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))
