import numpy as np


def layer_norm(x, g, b):
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    return xc / np.sqrt(var + 1e-5) * g + b


def loss(p, x):
    h = np.tanh(layer_norm(x @ p["W"], p["g"], p["b"]))
    return np.mean(h ** 2)
