"""Small models written as a user would, read by the compiler in the tests."""
import numpy as np

EPS = 1e-5


def mlp_loss(params, x, y):
    h = np.tanh(x @ params["W1"] + params["b1"])
    z = h @ params["W2"] + params["b2"]
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    n = x.shape[0]
    return -np.mean(logp[np.arange(n), y])


def attention_loss(p, x, target):
    # layer norm
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    xn = (x - mu) / np.sqrt(var + EPS) * p["gamma"] + p["beta"]
    # single-head causal self-attention
    q = xn @ p["Wq"]
    k = xn @ p["Wk"]
    v = xn @ p["Wv"]
    T = x.shape[1]
    att = q @ k.swapaxes(-1, -2) / np.sqrt(q.shape[-1])
    mask = np.tril(np.ones((T, T))) == 0
    att = np.where(mask, -1e9, att)
    att = att - att.max(axis=-1, keepdims=True)
    e = np.exp(att)
    w = e / e.sum(axis=-1, keepdims=True)
    out = x + (w @ v) @ p["Wo"]
    return np.mean((out - target) ** 2)
