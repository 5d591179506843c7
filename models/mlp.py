"""A three-layer MLP classifier written as plain NumPy, and the scikit-learn digits data.

The loss functions are what s2s_ad differentiates, so they are written with explicit layers
(W1 b1 W2 b2 W3 b3) and straight-line code only: no helper calls, no `if`, no list of layers.
"""
import numpy as np

import s2s_ad as ad

LAYER_KEYS = ("W1", "b1", "W2", "b2", "W3", "b3")


def init_params(n_in, hidden, n_out, seed=0, dtype="float32"):
    """Seeded parameters for n_in -> hidden -> hidden -> n_out.

    `hidden` is an int (both hidden layers) or a pair. Weights are drawn with variance
    1/fan_in (LeCun normal), which keeps tanh units out of saturation at the start.
    """
    h1, h2 = (hidden, hidden) if np.isscalar(hidden) else tuple(hidden)
    rng = np.random.default_rng(seed)
    sizes = [(n_in, h1), (h1, h2), (h2, n_out)]
    params = {}
    for i, (fan_in, fan_out) in enumerate(sizes, start=1):
        params[f"W{i}"] = (rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)).astype(dtype)
        params[f"b{i}"] = np.zeros(fan_out, dtype=dtype)
    return params


def mlp_loss(params, x, y):
    """Mean softmax cross-entropy (nats) of the tanh MLP on inputs x and int labels y."""
    h = np.tanh(x @ params["W1"] + params["b1"])
    h = np.tanh(h @ params["W2"] + params["b2"])
    z = h @ params["W3"] + params["b3"]
    # Stable log-softmax: shift by the row max before exponentiating.
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(x.shape[0]), y])


def mlp_loss_relu(params, x, y):
    """As mlp_loss, with ReLU hidden units."""
    h = np.maximum(x @ params["W1"] + params["b1"], 0.0)
    h = np.maximum(h @ params["W2"] + params["b2"], 0.0)
    z = h @ params["W3"] + params["b3"]
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(x.shape[0]), y])


# The way a user would get gradients: one compiled (loss, grad) function per loss.
mlp_value_and_grad = ad.value_and_grad(mlp_loss)
mlp_relu_value_and_grad = ad.value_and_grad(mlp_loss_relu)

LOSSES = {"tanh": (mlp_loss, mlp_value_and_grad), "relu": (mlp_loss_relu, mlp_relu_value_and_grad)}


def logits(params, x, activation="tanh"):
    """Forward pass to class scores (not differentiated; used for accuracy)."""
    act = np.tanh if activation == "tanh" else (lambda a: np.maximum(a, 0.0))
    h = act(x @ params["W1"] + params["b1"])
    h = act(h @ params["W2"] + params["b2"])
    return h @ params["W3"] + params["b3"]


def accuracy(params, x, y, activation="tanh"):
    """Fraction of rows of x whose highest-scoring class is y."""
    return float(np.mean(np.argmax(logits(params, x, activation), axis=1) == y))


def load_digits_split(seed=0, test_fraction=0.2, dtype="float32"):
    """scikit-learn's 8x8 digits (bundled with the package, no download), split and standardised.

    Returns (x_train, y_train, x_test, y_test). The split is stratified and seeded; mean and
    standard deviation come from the training part only so no test statistics leak in.
    """
    from sklearn.datasets import load_digits  # imported here: only the digits need scikit-learn
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=test_fraction, random_state=seed,
        stratify=digits.target)
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0)
    std[std == 0] = 1.0  # some corner pixels are always 0
    x_train = ((x_train - mean) / std).astype(dtype)
    x_test = ((x_test - mean) / std).astype(dtype)
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)
