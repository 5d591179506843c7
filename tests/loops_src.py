"""Functions with loops, written as a user would; read by the compiler in test_loops."""
import numpy as np


def chain(x):
    for _ in range(20):
        x = np.sin(x) * 0.9 + 0.1 * np.cos(x) * x
    return np.sum(x * x)


def rnn(params, xs, h):
    for t in range(xs.shape[0]):
        h = np.tanh(xs[t] @ params["Wx"] + h @ params["Wh"] + params["b"])
    return np.sum(h ** 2)


def accumulate_from_zero(x):
    s = 0.0
    for i in range(4):
        s = s + np.sum(x[i] * x[i + 1])
    return s


def augmented(x, w):
    total = x * 0.0
    for i in range(3):
        total += w * np.exp(-x * i)
    return np.sum(total)


def nested(x, W):
    for i in range(2):
        for j in range(3):
            x = np.tanh(x @ W) + x * 0.5
        x = x * 1.5
    return np.sum(x)


def defined_in_loop_used_after(x):
    for i in range(3):
        y = x * (i + 1.0)
        x = np.sin(y)
    return np.sum(y * x)


def overwritten_every_iteration(x, y):
    z = y
    for i in range(3):
        z = x * i
    return np.sum(z * y)


def range_with_start_and_step(x, n):
    acc = x
    for k in range(1, n, 2):
        acc = acc * x + k
    return np.sum(acc)


def alias_before_loop(x):
    y = x
    for i in range(2):
        y = y * y
    return np.sum(y + x)


def counter(x):
    k = 0
    out = x
    for i in range(3):
        k = k + 2
        out = out * k + x[k - 2]
    return np.sum(out)


def loop_reads_rows(W, x):
    s = np.zeros(W.shape[1])
    for i in range(W.shape[0]):
        s = s + W[i] * x[i] ** 2
    return np.sum(np.tanh(s))


def layers(params, x):
    for i in range(len(params["layers"])):
        layer = params["layers"][i]
        x = np.tanh(x @ layer["W"] + layer["b"])
    return np.sum(x ** 2)


def layers_with_count(params, x, n):
    for i in range(n):
        x = np.tanh(x @ params[i]) * params[i + 1][0]
    return np.sum(x)


def over_list(xs, w):
    total = 0.0
    for x in xs:
        total = total + np.sum(np.tanh(x * w))
    return total


def over_zip_enumerate(xs, ys):
    s = 0.0
    for i, (x, y) in enumerate(zip(xs, ys)):
        s = s + (i + 1.0) * np.sum(x * y)
    return s


def over_rows(X, v):
    acc = v * 0.0
    for row in X:
        acc = acc + np.sin(row * v)
    return np.sum(acc ** 2)


def build_list_then_stack(x, W):
    hs = []
    h = x
    for t in range(3):
        h = np.tanh(h @ W)
        hs.append(h)
    H = np.stack(hs)
    return np.sum(H ** 2) + np.sum(np.concatenate(hs, axis=0))


def comprehension(xs, w):
    ys = [np.tanh(x * w) for x in xs if x.ndim == 1]
    return np.sum(np.stack(ys)) + np.sum(np.stack([np.sum(y) for y in ys]))


def sum_of_a_list(x):
    return np.sum([np.sum(x * x), np.sum(np.sin(x))])


def ifexp_and_boolop(x, k):
    y = x * 2.0 if np.sum(x) > 0 and k > 0 else np.sin(x)
    z = y if not (np.max(x) > 5.0 or k > 10) else -y
    return np.sum(z * x)


def while_halving(x):
    n = 0
    while np.sum(x * x) > 1.0:
        x = x * 0.5
        n = n + 1
    return np.sum(np.sin(x)) * (n + 1.0)


def break_when_small(x, W):
    for i in range(10):
        x = np.tanh(x @ W)
        if np.max(np.abs(x)) < 0.3:
            break
        x = x * 1.1
    return np.sum(x)


def continue_on_negative(xs, w):
    total = 0.0
    for x in xs:
        if np.sum(x) < 0:
            continue
        total = total + np.sum(x * w)
    return total


def while_with_break(x):
    k = 0
    while True:
        x = np.sin(x) + 0.1
        k = k + 1
        if k >= 4 or np.sum(x) > 10.0:
            break
    return np.sum(x ** 2)


def item_assignment(x, v):
    y = np.zeros((3, 4)) + 0.0 * np.sum(x)  # (a dual array in the reference, which cannot
    # store duals into a plain array)
    y[0] = x * 2.0
    y[1:, 1:] = v
    y[2, 0] += np.sum(x)
    z = x.copy()
    z[::2] = np.tanh(z[::2])
    return np.sum(y ** 2) + np.sum(z * x)


def item_assignment_in_loop(x):
    out = np.zeros((4, 3)) + 0.0 * np.sum(x)
    h = x
    for t in range(4):
        h = np.sin(h) + 0.5
        out[t] = h * t
    return np.sum(out ** 2)


def assign_into_argument(x):
    x[1] = 0.0
    x[0] -= 1.0
    return np.sum(x ** 2)


def closures(x, w):
    scale = 2.0
    act = lambda v: np.tanh(v * scale)

    def layer(h, k=1.0):
        return act(h * w) * k + h

    y = layer(x)
    scale = 0.5          # late binding: the lambda sees the new value
    return np.sum(layer(y, k=3.0) ** 2)


def make_loss(a):
    def loss(x):
        return np.sum(np.sin(x) * a)
    return loss
