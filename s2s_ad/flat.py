"""Flat parameter vectors: `flatten(tree) -> (vector, unflatten)`.

For optimisers that want one 1-D array (scipy.optimize.minimize, a hand-written CG, a line
search) and models whose parameters are nested dicts / lists / tuples of float arrays, like
`jax.flatten_util.ravel_pytree`:

    x0, unflatten = ad.flatten(params)
    vg = ad.value_and_grad(loss)

    def fun(x):
        value, g = vg(unflatten(x), data)
        return value, ad.flatten(g)[0]

The order is deterministic: dict entries by sorted key (whatever order the dict was built
in), lists and tuples by position, depth first. The vector has one dtype, NumPy's common
result type of the leaves (so float32 parameters give a float32 vector; Python floats are
"weak" under NumPy 2's promotion rules and do not widen it; a tree of Python floats only
gives float64). `unflatten(v)` rebuilds the same structure (dicts keep their own key
order), the same shapes and the same dtypes: arrays as new arrays (never views of `v`),
NumPy float scalars as NumPy scalars of their dtype, Python floats as Python floats.
"""
import numpy as np

__all__ = ["flatten"]

# Kinds of leaves, remembered so that unflatten gives back what it was given.
_ARRAY, _NP_SCALAR, _PY_FLOAT = "array", "numpy scalar", "float"


def _sorted_keys(d):
    try:
        return sorted(d)
    except TypeError:  # keys of mixed, unorderable types: a fixed order all the same
        return sorted(d, key=lambda k: (type(k).__name__, repr(k)))


def _leaf_spec(leaf, path):
    """(kind, shape, dtype) of a float leaf; TypeError naming the path for anything else."""
    where = "".join(f"[{p!r}]" for p in path) or "the tree itself"
    if isinstance(leaf, (bool, np.bool_)) or isinstance(leaf, (int, np.integer)):
        raise TypeError(f"flatten: leaf at {where} is {type(leaf).__name__} {leaf!r}, not a float; "
                        f"use float({leaf!r}) or an array of a float dtype")
    if isinstance(leaf, float) and not isinstance(leaf, np.floating):
        return _PY_FLOAT, (), np.dtype(np.float64)
    if isinstance(leaf, np.floating):
        return _NP_SCALAR, (), leaf.dtype
    if isinstance(leaf, np.ndarray):
        if not np.issubdtype(leaf.dtype, np.floating):
            raise TypeError(f"flatten: leaf at {where} is an array of dtype {leaf.dtype}, not a "
                            f"float dtype; convert it with .astype(np.float64) (or float32), or "
                            f"keep it out of the tree you flatten")
        return _ARRAY, leaf.shape, leaf.dtype
    raise TypeError(f"flatten: leaf at {where} is a {type(leaf).__name__}; the tree may hold "
                    f"dicts, lists, tuples, float arrays and floats only")


def _walk(tree, path, leaves, specs):
    """Collect leaves and return a structure template: ('dict', keys, children),
    ('seq', type, children) or ('leaf', index)."""
    if isinstance(tree, dict):
        keys = list(tree)
        children = {k: _walk(tree[k], path + (k,), leaves, specs) for k in _sorted_keys(tree)}
        return ("dict", type(tree), keys, children)
    if isinstance(tree, (list, tuple)):
        children = [_walk(item, path + (i,), leaves, specs) for i, item in enumerate(tree)]
        return ("seq", type(tree), None, children)
    specs.append(_leaf_spec(tree, path))
    leaves.append(tree)
    return ("leaf", len(leaves) - 1)


def _build(node, pieces):
    tag = node[0]
    if tag == "leaf":
        return pieces[node[1]]
    _, kind, keys, children = node
    if tag == "dict":
        out = {k: _build(children[k], pieces) for k in keys}
        return out if kind is dict else kind(out)
    items = [_build(child, pieces) for child in children]
    if kind is list:
        return items
    if hasattr(kind, "_make"):  # a namedtuple
        return kind._make(items)
    return kind(items)


def flatten(tree):
    """(vector, unflatten): the float leaves of `tree` as one 1-D array, and the inverse.

    `tree` is a float array, a float, or a nested dict / list / tuple of those. The vector is
    a new array (changing it does not change `tree`); `unflatten(v)` takes any 1-D float
    array of the same length and returns a new tree with the structure, shapes and dtypes of
    `tree`. Integer, bool, complex and object leaves raise a TypeError naming where they are.
    """
    leaves, specs = [], []
    template = _walk(tree, (), leaves, specs)
    sizes = [int(np.prod(shape, dtype=np.int64)) for _, shape, _ in specs]
    offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).tolist()
    array_dtypes = [dt for kind, _, dt in specs if kind != _PY_FLOAT]
    if array_dtypes:
        dtype = np.result_type(*array_dtypes)
    else:
        dtype = np.dtype(np.float64)
    if leaves:
        vector = np.concatenate([np.asarray(leaf, dtype=dtype).reshape(-1) for leaf in leaves])
    else:
        vector = np.zeros(0, dtype=dtype)

    def unflatten(v):
        v = np.asarray(v)
        if v.ndim != 1 or v.shape[0] != offsets[-1]:
            raise ValueError(f"unflatten: expected a 1-D array of {offsets[-1]} values, got "
                             f"shape {v.shape}")
        if not (np.issubdtype(v.dtype, np.floating) or np.issubdtype(v.dtype, np.integer)):
            raise TypeError(f"unflatten: expected a float array, got dtype {v.dtype}")
        pieces = []
        for (kind, shape, dt), a, b in zip(specs, offsets[:-1], offsets[1:]):
            if kind == _PY_FLOAT:
                pieces.append(float(v[a]))
            elif kind == _NP_SCALAR:
                pieces.append(dt.type(v[a]))
            else:
                pieces.append(np.array(v[a:b], dtype=dt).reshape(shape))
        return _build(template, pieces)

    unflatten.size = offsets[-1]
    unflatten.dtype = dtype
    return vector, unflatten
