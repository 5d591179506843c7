"""Helpers in another module, imported by helpers_src."""
import numpy as np

SCALE = 0.5


def layer_norm(x, g, b, eps=1e-5):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * g + b


def scaled(x):
    return x * SCALE
