"""Hand-written forward+backward passes of the workloads, written for speed.

These are the baseline s2s_ad is measured against. Each function returns
``(value, gradient)`` exactly as ``ad.value_and_grad(f, wrt=0)`` would.
They keep the input dtype throughout (no float64 constants sneak in: NEP 50).
"""
import numpy as np


def mlp_value_and_grad(params, x, y):
    W1, W2, W3 = params["W1"], params["W2"], params["W3"]
    n = x.shape[0]
    rows = np.arange(n)

    # Forward, in place where possible; keep h1, h2 (tanh outputs) and exp(z) for backward.
    h1 = x @ W1
    h1 += params["b1"]
    np.tanh(h1, out=h1)
    h2 = h1 @ W2
    h2 += params["b2"]
    np.tanh(h2, out=h2)
    z = h2 @ W3
    z += params["b3"]
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(s[:, 0]) - z[rows, y])  # = -mean(log_softmax(z)[rows, y])

    # Backward. dloss/dz = (softmax - onehot(y)) / n, with softmax = e / s from the forward.
    s *= n
    dz = np.divide(e, s, out=e)
    dz[rows, y] -= 1 / n  # one label per row, so no repeated indices: no need for subtract.at
    gW3 = h2.T @ dz
    d2 = dz @ W3.T
    # tanh'(a) = 1 - tanh(a)^2, from the stored output; h2 is no longer needed, so reuse it.
    h2 *= h2
    np.subtract(1, h2, out=h2)
    d2 *= h2
    gW2 = h1.T @ d2
    d1 = d2 @ W2.T
    h1 *= h1
    np.subtract(1, h1, out=h1)
    d1 *= h1
    gW1 = x.T @ d1
    grads = {"W1": gW1, "b1": d1.sum(axis=0), "W2": gW2, "b2": d2.sum(axis=0),
             "W3": gW3, "b3": dz.sum(axis=0)}
    return loss, grads


def chain_value_and_grad(x, steps=200):
    # Store every step's input; the forward loop is otherwise f's own loop.
    xs = np.empty((steps,) + x.shape, dtype=x.dtype)
    for k in range(steps):
        xs[k] = x
        x = np.sin(x) * 0.9 + 0.1 * np.cos(x) * x
    value = np.sum(x * x)

    # Each step is elementwise, so its backward is a multiplication by its local
    # derivative, cos x - 0.1 x sin x: computed for all steps at once (a few calls on a
    # (200, 16) array beat 200 small ones in the loop), then swept backwards.
    deriv = np.cos(xs)
    deriv -= 0.1 * xs * np.sin(xs)
    g = 2 * x
    for d in deriv[::-1]:
        g *= d
    return value, g


def chain_lean_value_and_grad(x, steps):
    """`chain_n`'s gradient keeping the minimum for the backward sweep: one array per
    step (its input), the local derivative recomputed from it on the way back."""
    xs = []
    for _ in range(steps):
        xs.append(x)
        x = np.sin(x) * 0.9 + 0.1 * np.cos(x) * x
    value = np.sum(x * x)
    g = 2 * x
    while xs:
        xk = xs.pop()
        d = np.sin(xk)
        d *= -0.1 * xk
        d += np.cos(xk)
        g *= d
    return value, g


def rosen_value_and_grad(x):
    """Rosenbrock value and gradient; r = x[1:] - x[:-1]^2 and 1 - x[:-1] are shared."""
    head = x[:-1]
    r = x[1:] - head * head
    s = 1.0 - head
    value = np.sum(100.0 * r * r + s * s)
    g = np.zeros_like(x)
    g[1:] = 200.0 * r
    g[:-1] -= 400.0 * head * r + 2.0 * s
    return value, g
