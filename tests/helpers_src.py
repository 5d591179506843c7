"""User functions calling their own helpers (inlined by the compiler)."""
import numpy as np

import helpers_other as other
from helpers_other import layer_norm

SCALE = 3.0


def dense(x, W, b):
    z = x @ W + b
    return act_fn(z)


def act_fn(z):
    return np.tanh(z)


def two_layers(p, x):
    h = dense(x, p["W1"], p["b1"])
    h = dense(h, p["W2"], p["b2"])
    return np.sum(h ** 2)


def stats(x):
    m = np.mean(x)
    return m, np.sum((x - m) ** 2)


def uses_tuple_return(x):
    m, v = stats(x)
    return v / m ** 2


def uses_other_module(x, g, b):
    y = layer_norm(x, g, b)
    z = other.scaled(y) * SCALE
    return np.sum(z * z)


def keywords_and_defaults(x, W):
    y = affine(x, W=W)
    y2 = affine(x, W, shift=2.0)
    return np.sum(y * y2)


def affine(x, W, shift=1.0):
    return x @ W + shift


def make_model(scale):
    def model(x):
        return np.sum(np.sin(x) * scale)
    return model


def helper_in_loop(x, W):
    for i in range(3):
        x = act_fn(x @ W) + x
    return np.sum(x)
