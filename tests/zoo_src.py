"""More combinations of constructs (the zoo): each is checked in grad, jvp and hvp."""
import numpy as np


def _step(h, w):
    if np.sum(h) > 0:
        return np.tanh(h * w)
    return h * 0.5


def helper_with_branch_in_loop(x, w):
    for _ in range(3):
        x = _step(x, w)
    return np.sum(x ** 2)


def _count_down(x):
    k = 3
    while k > 0:
        x = np.sin(x) * 1.1
        k = k - 1
    return x


def while_in_helper(x):
    return np.sum(_count_down(x) * x)


def nested_loops_with_branch(X):
    acc = 0.0
    for i in range(X.shape[0]):
        for j in range(X.shape[1]):
            if X[i, j] > 0:
                acc = acc + X[i, j] ** 2
            else:
                acc = acc - np.sin(X[i, j])
    return acc


def early_return_after_loop(x):
    for i in range(3):
        x = x * 0.9 + 0.1
    if np.max(x) > 10.0:
        return np.sum(x)
    return np.sum(x * x)


def enumerate_with_break(xs, w):
    total = 0.0
    for i, x in enumerate(xs):
        total = total + np.sum(x * w) * (i + 1)
        if i >= 1:
            break
    return total


def item_assignment_in_branch(x):
    y = np.copy(x)
    if np.sum(x) > 0:
        y[0] = np.exp(x[1])
    else:
        y[1] = x[0] ** 2
    return np.sum(y * x)


def closure_in_loop(x, w):
    f = lambda v: np.tanh(v @ w)
    for _ in range(2):
        x = f(x) + x
    return np.sum(x)


def _stats(x):
    m = np.mean(x)
    return m, np.mean((x - m) ** 2)


def tuple_returns_in_loop(xs):
    s = 0.0
    for x in xs:
        m, v = _stats(x)
        s = s + m * v
    return s


def comprehension_with_condition(xs, w):
    kept = [np.sum(x * w) for x in xs if x.shape[0] == 3]
    return np.sum(np.stack(kept) ** 2)


def dict_params_loop(p, x):
    for name in ("a", "b"):
        x = np.tanh(x * p[name])
    return np.sum(x)


def while_with_continue(x):
    i = 0
    acc = x * 0.0
    while i < 4:
        i = i + 1
        if i == 2:
            continue
        acc = acc + np.sin(x * i)
    return np.sum(acc ** 2)


def augmented_everything(x):
    y = x * 1.0
    y += 1.0
    y *= x
    y -= np.sin(x)
    y /= 2.0
    y **= 2
    return np.sum(y)


def float_argument_loop(a, x):
    for _ in range(3):
        x = x * a + np.cos(x)
    return np.sum(x)


def return_inside_loop(x, w):
    for i in range(5):
        x = np.tanh(x * w) + 0.1
        if np.sum(x) > 1.5:
            return np.sum(x ** 2) * (i + 1)
    return np.sum(x)


def return_inside_nested_loop(x):
    for i in range(3):
        for j in range(3):
            x = x * 1.2
            if np.max(x) > 2.0:
                return np.sum(np.sin(x))
    return np.sum(x)


def mask_assignment(x, w):
    y = x * w
    y[y < 0] = 0.0
    y[1:3] += x[:2] ** 2
    return np.sum(np.tanh(y))
