import numpy as np


def chain(x):
    for _ in range(200):
        x = np.sin(x) * 0.9 + 0.1 * np.cos(x) * x
    return np.sum(x * x)
