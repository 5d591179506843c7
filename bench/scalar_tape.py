"""A scalar tape: reverse-mode AD with one graph node per number, like a first AD exercise
(micrograd's shape). Used by bench/REPORT.md for contrast with s2s_ad's array-level code.

Every arithmetic operation on `Value`s makes a node that remembers its inputs and the
local derivative with respect to each; `backward()` walks the nodes in reverse
topological order and accumulates `grad += local * out.grad`. An MLP over it costs one
Python object and a few interpreter steps per multiply-add, which is what vectorisation
removes.
"""
import math

import numpy as np


class Value:
    __slots__ = ("data", "grad", "_parents", "_partials")

    def __init__(self, data, parents=(), partials=()):
        self.data = float(data)
        self.grad = 0.0
        self._parents = parents    # the Values this one was computed from
        self._partials = partials  # d self / d parent, one per parent

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data + other.data, (self, other), (1.0, 1.0))

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return Value(self.data * other.data, (self, other), (other.data, self.data))

    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + (-other)

    def __truediv__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        return self * other.reciprocal()

    __radd__ = __add__
    __rmul__ = __mul__

    def __rsub__(self, other):
        return (-self) + other

    def reciprocal(self):
        return Value(1.0 / self.data, (self,), (-1.0 / (self.data * self.data),))

    def tanh(self):
        t = math.tanh(self.data)
        return Value(t, (self,), (1.0 - t * t,))

    def exp(self):
        e = math.exp(self.data)
        return Value(e, (self,), (e,))

    def log(self):
        return Value(math.log(self.data), (self,), (1.0 / self.data,))

    def backward(self):
        """Seed d self / d self = 1 and accumulate every node's gradient (reverse topological
        order, found without recursion so deep graphs do not hit the recursion limit)."""
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p in node._parents)
        self.grad = 1.0
        for node in reversed(order):
            for parent, local in zip(node._parents, node._partials):
                parent.grad += local * node.grad


# -- the MLP of models/mlp.py, one Value per number ---------------------------------------------

def _lift(a):
    """A nested list of Values with a's shape (a 1-D or 2-D array)."""
    return [_lift(row) for row in a] if np.ndim(a) > 1 else [Value(v) for v in a]


def _layer(rows, W, b, act):
    """act(rows @ W + b) for rows a list of lists of Values, W a list of lists, b a list."""
    out = []
    for r in rows:
        z = [sum((r[i] * W[i][j] for i in range(len(W))), b[j]) for j in range(len(b))]
        out.append([act(v) for v in z] if act else z)
    return out


def mlp_loss(params, x, y):
    """Mean softmax cross-entropy of the tanh MLP of `models.mlp.mlp_loss`; params are nested
    lists of Values, x a list of rows of numbers, y a list of int labels."""
    h = _layer(x, params["W1"], params["b1"], Value.tanh)
    h = _layer(h, params["W2"], params["b2"], Value.tanh)
    z = _layer(h, params["W3"], params["b3"], None)
    total = Value(0.0)
    for row, label in zip(z, y):
        shift = max(v.data for v in row)  # a constant shift: log-softmax does not depend on it
        lse = sum((v - shift).exp() for v in row).log()
        total = total + (lse - (row[label] - shift))
    return total * (1.0 / len(z))


def value_and_grad(params, x, y):
    """(loss, gradient) of `mlp_loss` for NumPy params, as `ad.value_and_grad` returns them:
    the tape is built (forward), walked back (backward), and the gradients read out."""
    vparams = {k: _lift(v) for k, v in params.items()}
    loss = mlp_loss(vparams, x.tolist(), y.tolist())
    loss.backward()

    def grads(v):
        return [grads(r) for r in v] if isinstance(v[0], list) else [u.grad for u in v]
    return loss.data, {k: np.array(grads(v)) for k, v in vparams.items()}


def count_nodes(params, x, y):
    """Number of graph nodes the tape makes for one loss (parameters and inputs included)."""
    vparams = {k: _lift(v) for k, v in params.items()}
    loss = mlp_loss(vparams, x.tolist(), y.tolist())
    seen, stack = set(), [loss]
    while stack:
        node = stack.pop()
        if id(node) not in seen:
            seen.add(id(node))
            stack.extend(node._parents)
    return len(seen)
