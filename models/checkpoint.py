"""Atomic .npz checkpoints: parameters, optimizer state, step, RNG state and config.

Everything needed to continue a run bit for bit is stored: arrays exactly as they are (no
dtype change), the Adam moments and step count, the batch sampler's RNG state (JSON, since
PCG64's 128-bit state does not fit an int64 array) and the loss history. The file is written
to a temporary name in the same folder and moved over the old one with os.replace, so a run
killed while saving leaves the previous checkpoint intact.
"""
import json
import os
import tempfile
from pathlib import Path

import numpy as np


def flatten(tree, prefix):
    """({'prefix/a/0/b': array, ...}, spec): nested dict/list keys joined with '/'. The spec
    (JSON-able) records the containers so `unflatten` rebuilds the same structure."""
    if isinstance(tree, dict):
        flat, spec = {}, {"dict": []}
        for key, value in tree.items():
            sub, subspec = flatten(value, f"{prefix}/{key}")
            flat.update(sub)
            spec["dict"].append([key, subspec])
        return flat, spec
    if isinstance(tree, (list, tuple)):
        flat, spec = {}, {type(tree).__name__: []}
        for i, value in enumerate(tree):
            sub, subspec = flatten(value, f"{prefix}/{i}")
            flat.update(sub)
            spec[type(tree).__name__].append(subspec)
        return flat, spec
    return {prefix: np.asarray(tree)}, prefix


def unflatten(arrays, spec):
    if isinstance(spec, str):
        return arrays[spec]
    if "dict" in spec:
        return {key: unflatten(arrays, sub) for key, sub in spec["dict"]}
    if "list" in spec:
        return [unflatten(arrays, sub) for sub in spec["list"]]
    return tuple(unflatten(arrays, sub) for sub in spec["tuple"])


def save(path, params, opt_state, step, rng_state, config, extra=None):
    """Write a checkpoint atomically. `opt_state` is Adam.state_dict(); `rng_state` is
    Generator.bit_generator.state; `config` and `extra` are JSON-able dicts."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays, params_spec = flatten(params, "params")
    m, m_spec = flatten(opt_state["m"], "opt_m")
    v, v_spec = flatten(opt_state["v"], "opt_v")
    meta = {"step": int(step), "opt_t": int(opt_state["t"]), "rng_state": rng_state,
            "config": config, "extra": extra or {},
            "spec": {"params": params_spec, "m": m_spec, "v": v_spec}}
    arrays.update(m)
    arrays.update(v)
    arrays["meta"] = np.array(json.dumps(meta))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:  # a file object: np.savez would append .npz to a name
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load(path):
    """dict with params, opt_state ({'t', 'm', 'v'}), step, rng_state, config, extra."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    spec = meta["spec"]
    return {
        "params": unflatten(arrays, spec["params"]),
        "opt_state": {"t": meta["opt_t"], "m": unflatten(arrays, spec["m"]),
                      "v": unflatten(arrays, spec["v"])},
        "step": meta["step"],
        "rng_state": meta["rng_state"],
        "config": meta["config"],
        "extra": meta["extra"],
    }
