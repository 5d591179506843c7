"""Functions with branches, written as a user would; read by the compiler in test_branches."""
import numpy as np


def relu_or_tanh(x, use_relu):
    if use_relu:
        h = np.maximum(x, 0.0)
    else:
        h = np.tanh(x)
    return np.sum(h ** 2)


def data_dependent(x):
    s = np.sum(x)
    if s > 0:
        y = x * s
    else:
        y = np.sin(x)
    return np.sum(y * x)


def elif_chain(x):
    m = np.max(x)
    if m > 2.0:
        y = x * 3.0
    elif m > 0.0:
        y = x ** 2
    else:
        y = -x
    return np.sum(y)


def early_return(x, w):
    h = x * w
    if np.sum(h) < 0:
        return np.sum(h ** 2)
    h = np.tanh(h)
    return np.sum(h * w)


def only_then(x):
    y = x * 2.0
    if np.mean(x) > 0:
        y = y * x
    return np.sum(y)


def branch_in_loop(x):
    for i in range(4):
        if np.sum(x) > 1.0:
            x = x * 0.5
        else:
            x = x + np.sin(x)
    return np.sum(x * x)


def nested_branches(x, flag):
    if flag > 0:
        if x[0] > 0:
            z = x * x[0]
        else:
            z = x * 2.0
    else:
        z = np.exp(x)
    return np.sum(z)
