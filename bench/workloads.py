"""Benchmark workloads: plain NumPy functions written the way a user would write them.

The compiler reads these functions' source, so they stick to the subset it targets:
assignments, arithmetic operators, a few np reductions/ufuncs, integer-array indexing,
dict subscripts with constant keys, ``.T`` and ``.shape``.
"""
import numpy as np

MLP_SIZES = (784, 512, 512, 10)


def mlp_loss(params, x, y):
    h1 = np.tanh(x @ params["W1"] + params["b1"])
    h2 = np.tanh(h1 @ params["W2"] + params["b2"])
    z = h2 @ params["W3"] + params["b3"]
    # Stable log-softmax: shifting by the row max does not change the result.
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    n = x.shape[0]
    return -np.mean(logp[np.arange(n), y])


def mlp_init(seed, dtype=np.float32):
    """Scaled-normal weights (variance 1/fan_in, suited to tanh) and zero biases."""
    rng = np.random.default_rng(seed)
    params = {}
    for i, (m, k) in enumerate(zip(MLP_SIZES[:-1], MLP_SIZES[1:]), start=1):
        params[f"W{i}"] = (rng.standard_normal((m, k)) / np.sqrt(m)).astype(dtype)
        params[f"b{i}"] = np.zeros(k, dtype=dtype)
    return params


def mlp_batch(seed, n=256, dtype=np.float32):
    """Random inputs in [0, 1) (pixel-like) and int64 class labels 0..9."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, MLP_SIZES[0])).astype(dtype)
    y = rng.integers(0, MLP_SIZES[-1], size=n)
    return x, y


def chain(x):
    for _ in range(200):
        x = np.sin(x) * 0.9 + 0.1 * np.cos(x) * x
    return np.sum(x * x)


def chain_input(seed, n=16):
    return np.random.default_rng(seed).standard_normal(n)


def chain_n(x, n):
    """`chain` with the number of steps as an argument: the loop-memory workload."""
    for _ in range(n):
        x = np.sin(x) * 0.9 + 0.1 * np.cos(x) * x
    return np.sum(x * x)


def rosen(x):
    """The n-dimensional Rosenbrock function, vectorised."""
    return np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


def rosen_input(seed, n):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, n)


GPT_CONFIG = dict(vocab=65, block=64, n_embd=128, n_head=4, n_layer=4, batch=32)


def gpt_args(seed=0, dtype=np.float32, vocab=65, block=64, n_embd=128, n_head=4, n_layer=4,
             batch=32):
    """(params, idx, targets, n_head) for `models.transformer.gpt_loss`: GPT-2 init and
    random token windows (uniform ids; the timing does not depend on the text)."""
    from models.transformer import init_params
    params = init_params(vocab, n_layer, n_embd, n_head, block, seed, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    idx = rng.integers(0, vocab, size=(batch, block))
    targets = rng.integers(0, vocab, size=(batch, block))
    return params, idx, targets, n_head
