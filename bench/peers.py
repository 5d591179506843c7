"""Other AD systems on the benchmark workloads, each kept small and optional.

    available()                      -> {peer: version or None (not installed)}
    build(peer, workload, args)      -> (call, to_numpy), or raises NotAvailable

`call()` is what gets timed: one value-and-gradient evaluation on inputs already converted
to the peer's own types (the conversion is not timed), returning the peer's own results
(forced: JAX's are blocked on). `to_numpy(result)` turns them into (value, gradient) in the
structure of the hand-written baseline, for the check that runs before timing.

Peers: autograd (mlp, chain), PyTorch eager (mlp, chain, gpt via bench.torch_gpt), JAX
jit and eager (mlp, chain). Import this module only after the thread settings of
`bench.run.pin_threads` (JAX reads XLA_FLAGS when it is first imported).
"""
import importlib
import importlib.metadata

import numpy as np

PEERS = ("autograd", "torch", "jax-jit", "jax-eager")
WORKLOADS = {"autograd": ("mlp", "chain"), "torch": ("mlp", "chain", "gpt"),
             "jax-jit": ("mlp", "chain"), "jax-eager": ("mlp", "chain")}
_MODULE = {"autograd": "autograd", "torch": "torch", "jax-jit": "jax", "jax-eager": "jax"}


class NotAvailable(Exception):
    pass


def version(peer):
    try:
        importlib.import_module(_MODULE[peer])
    except ImportError:
        return None
    try:
        return importlib.metadata.version(_MODULE[peer])
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def available():
    return {peer: version(peer) for peer in PEERS}


# -- the workloads, written once for NumPy-like modules (autograd.numpy, jax.numpy) -----------

def mlp_loss(xp):
    def loss(params, x, y):
        h1 = xp.tanh(x @ params["W1"] + params["b1"])
        h2 = xp.tanh(h1 @ params["W2"] + params["b2"])
        z = h2 @ params["W3"] + params["b3"]
        z = z - xp.max(z, axis=1, keepdims=True)
        logp = z - xp.log(xp.sum(xp.exp(z), axis=1, keepdims=True))
        return -xp.mean(logp[xp.arange(x.shape[0]), y])
    return loss


def chain(xp):
    def f(x):
        for _ in range(200):
            x = xp.sin(x) * 0.9 + 0.1 * xp.cos(x) * x
        return xp.sum(x * x)
    return f


def _torch_mlp_loss(params, x, y):
    import torch
    h1 = torch.tanh(x @ params["W1"] + params["b1"])
    h2 = torch.tanh(h1 @ params["W2"] + params["b2"])
    z = h2 @ params["W3"] + params["b3"]
    z = z - z.max(dim=1, keepdim=True).values
    logp = z - torch.log(torch.exp(z).sum(dim=1, keepdim=True))
    return -logp[torch.arange(x.shape[0]), y].mean()


# -- builders ---------------------------------------------------------------------------------

def build(peer, workload, args):
    if workload not in WORKLOADS.get(peer, ()):
        raise NotAvailable(f"{peer} is not wired for {workload}")
    if version(peer) is None:
        raise NotAvailable(f"{_MODULE[peer]} not installed")
    return {"autograd": _autograd, "torch": _torch, "jax-jit": _jax_jit,
            "jax-eager": _jax_eager}[peer](workload, args)


def _autograd(workload, args):
    import autograd
    import autograd.numpy as anp
    f = mlp_loss(anp) if workload == "mlp" else chain(anp)
    vg = autograd.value_and_grad(f, 0)
    return (lambda: vg(*args)), (lambda out: (float(out[0]), out[1]))


def _torch(workload, args):
    import torch
    from bench.checks import leaves, tree_map

    def leaf(a):
        return torch.tensor(a, requires_grad=True)

    if workload == "mlp":
        params, x, y = args
        tp = tree_map(leaf, params)
        targs = (tp, torch.from_numpy(x), torch.from_numpy(y))
        f = _torch_mlp_loss
    elif workload == "chain":
        tp = leaf(args[0])
        targs = (tp,)
        f = chain(torch)
    else:  # gpt, from torch's library ops (layer_norm, scaled_dot_product_attention, ...)
        from bench.torch_gpt import torch_loss
        params, idx, targets, n_head = args
        tp = tree_map(leaf, params)
        targs = (tp, torch.from_numpy(idx), torch.from_numpy(targets), n_head)
        f = torch_loss
    flat = [t for _, t in leaves(tp)]

    def call():
        loss = f(*targs)
        return loss, torch.autograd.grad(loss, flat)

    def to_numpy(out):
        loss, grads = out
        it = iter(g.numpy() for g in grads)
        return loss.detach().item(), tree_map(lambda _: next(it), tp)
    return call, to_numpy


def _jax_args(workload, args):
    import jax
    import jax.numpy as jnp
    from bench.checks import tree_map
    f = mlp_loss(jnp) if workload == "mlp" else chain(jnp)

    def to_numpy(out):  # JAX returns dicts with sorted keys: back to the arguments' order
        value, grad = out
        return float(value), tree_map(lambda _, g: np.asarray(g), args[0], _in_order(args[0], grad))
    return f, jax.device_put(args), to_numpy


def _in_order(template, tree):
    if isinstance(template, dict):
        return {k: _in_order(template[k], tree[k]) for k in template}
    return tree


def _jax_jit(workload, args):
    import jax
    f, jargs, to_numpy = _jax_args(workload, args)
    vg = jax.jit(jax.value_and_grad(f))
    return (lambda: jax.block_until_ready(vg(*jargs))), to_numpy


def _jax_eager(workload, args):
    import jax
    f, jargs, to_numpy = _jax_args(workload, args)
    vg = jax.value_and_grad(f)  # no jit: every primitive is dispatched one by one
    return (lambda: jax.block_until_ready(vg(*jargs))), to_numpy
