"""The few helpers generated code calls. Each is plain NumPy, small, and has its own
derivative rule, so generated code stays differentiable (hvp, higher orders)."""
import numpy as np

__all__ = ["unbroadcast", "prod_others", "prod_others_tangent", "unrecorded", "index_set",
           "index_add", "zero_at", "softmax", "log_softmax", "scatter_rows"]


def index_set(x, index, v):
    """`x[index] = v` without changing x: a copy with those items replaced."""
    y = x.copy()
    y[index] = v
    return y


def index_add(x, index, v):
    """`x[index] += v` without changing x (repeated indices add once, as in NumPy)."""
    y = x.copy()
    y[index] += v
    return y


def zero_at(g, index):
    """A copy of g with the items at `index` set to zero (what overwritten items pass back)."""
    y = g.copy()
    y[index] = 0
    return y


def softmax(a, axis):
    """exp(a - max) / sum(exp(a - max)) along `axis`, as the user's code wrote it (the
    compiler fuses that chain so that its adjoint reads the result only)."""
    e = a - np.max(a, axis=axis, keepdims=True)
    if e.dtype.kind != "f":           # integers: exp makes a new (float) array
        e = np.exp(e)
        return e / np.sum(e, axis=axis, keepdims=True)
    np.exp(e, out=e)                  # in place: e is this function's own array
    e /= np.sum(e, axis=axis, keepdims=True)
    return e


def log_softmax(a, axis):
    """(a - max) - log(sum(exp(a - max))) along `axis`, as the user's code wrote it."""
    s = a - np.max(a, axis=axis, keepdims=True)
    if s.dtype.kind != "f":
        return s - np.log(np.sum(np.exp(s), axis=axis, keepdims=True))
    s -= np.log(np.sum(np.exp(s), axis=axis, keepdims=True))
    return s


def scatter_rows(index, v, shape):
    """The adjoint of `table[index]` (index an integer array): an array of `shape` whose row
    i is the sum of the rows of v picked where index == i, as np.add.at into zeros gives.
    Rows are summed after a stable sort by index (np.add.reduceat): an embedding's
    gradient this way costs a tenth of np.add.at's."""
    flat = np.asarray(index).reshape(-1)
    out = np.zeros(shape, dtype=v.dtype)
    if flat.size == 0:
        return out
    flat = np.where(flat < 0, flat + shape[0], flat)
    rows = np.reshape(v, (flat.size,) + tuple(shape[1:]))
    order = np.argsort(flat, kind="stable")
    picked = flat[order]
    starts = np.flatnonzero(np.concatenate(([True], picked[1:] != picked[:-1])))
    out[picked[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return out


class Unrecorded(Exception):
    """Raised by generated code that reaches a branch its specialisation has not seen."""


def unrecorded():
    """Generated code in place of a branch no call has taken yet: s2s_ad catches this,
    records the branch, and generates the code again."""
    raise Unrecorded()


def unbroadcast(g, x):
    """Sum `g` down to the shape of `x`, undoing NumPy broadcasting.

    Generated code calls this only where shapes are not known when it is generated
    (after boolean-mask indexing); elsewhere the reduction is written out.
    """
    shape = np.shape(x)
    if np.shape(g) == shape:
        return g
    lead = np.ndim(g) - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, d in enumerate(shape)
                                      if d == 1 and np.shape(g)[lead + i] != 1)
    return np.reshape(np.sum(g, axis=axes), shape)


def _flatten_last(a, k):
    """`a` with its last k axes made one (their size written out: -1 is ambiguous when
    another axis is empty)."""
    return np.reshape(a, a.shape[:a.ndim - k] + (int(np.prod(a.shape[a.ndim - k:])),))


def prod_others(a, axis):
    """For each element, the product of the other elements along `axis` (the partial
    derivative of np.prod), from exclusive cumulative products: exact when `a` has zeros."""
    axes = axis if isinstance(axis, tuple) else (axis,)
    axes = tuple(ax % a.ndim for ax in axes)
    moved = np.moveaxis(a, axes, tuple(range(a.ndim - len(axes), a.ndim)))
    flat = _flatten_last(moved, len(axes))
    ones = np.ones_like(flat[..., :1])
    left = np.cumprod(np.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = np.flip(np.cumprod(np.concatenate([ones, np.flip(flat[..., 1:], -1)], axis=-1),
                               axis=-1), -1)
    others = np.reshape(left * right, moved.shape)
    return np.moveaxis(others, tuple(range(a.ndim - len(axes), a.ndim)), axes)


def prod_others_tangent(a, a_dot, axis):
    """The tangent of prod_others(a, axis) along a_dot: for element i, the sum over the
    other elements j of a_dot[j] times the product of all elements but i and j."""
    axes = axis if isinstance(axis, tuple) else (axis,)
    axes = tuple(ax % a.ndim for ax in axes)
    last = tuple(range(a.ndim - len(axes), a.ndim))
    moved = np.moveaxis(a, axes, last)
    flat = _flatten_last(moved, len(axes))
    flat_dot = np.reshape(np.moveaxis(a_dot, axes, last), flat.shape)
    out = np.zeros_like(flat)
    for i in range(flat.shape[-1]):
        without = np.copy(flat)
        without[..., i] = 1.0
        others = prod_others(without, -1)
        others[..., i] = 0.0
        out[..., i] = np.sum(others * flat_dot, axis=-1)
    return np.moveaxis(np.reshape(out, moved.shape), last, axes)
