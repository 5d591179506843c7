"""The benchmark workloads: user function, hand-written baseline, arguments, settings.

Shared by `bench.run` (timing, in one process) and `bench.worker` (first calls and
memory, each in a fresh process), so both see exactly the same functions and inputs.
"""
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from bench import handwritten, workloads
from bench.checks import tree_map


@dataclass
class Workload:
    name: str
    f: Callable                       # the user function; gradient w.r.t. its first argument
    handwritten: Callable             # (value, gradient), as ad.value_and_grad(f, wrt=0)
    make_args: Callable[[], tuple]
    rounds: int
    quick_rounds: int
    rtol: float                       # vs hand-written: float32 sums reordered differ by ~1e-6
    fd_args: Callable[[], tuple]      # float64 arguments for the finite-difference check
    fd_note: str = ""
    hvp_target: Optional[float] = None  # hvp time / value_and_grad time should be at most this
    target: float = 1.05              # s2s_ad value_and_grad / hand-written (issue 5)
    hvp_eps: float = 5e-4             # step of the gradient differences that check hvp
    hvp_tol: float = 1e-3             # their relative error (2-norm) allowed
    peer_rtol: float = 1e-3           # peers vs hand-written (dtypes not compared)
    warmup: int = 5                   # calls per implementation before the timed rounds
    description: str = ""
    peers: tuple = field(default_factory=tuple)


def as_float64(x):
    """float64 copy of floating arrays (inside dicts, lists, tuples too); ints stay as they are."""
    def cast(a):
        if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.floating):
            return a.astype(np.float64)
        return a
    return tree_map(cast, x)


def _mlp_args():
    return (workloads.mlp_init(0), *workloads.mlp_batch(1))


WORKLOADS = {
    "mlp": Workload(
        "mlp", workloads.mlp_loss, handwritten.mlp_value_and_grad, _mlp_args,
        rounds=100, quick_rounds=5, rtol=1e-4,
        fd_args=lambda: as_float64(_mlp_args()), hvp_target=2.5,
        description="784-512-512-10 tanh MLP, softmax cross-entropy, batch 256, float32",
        peers=("autograd", "torch", "jax-jit", "jax-eager")),
    "gpt": Workload(
        "gpt", None, None, lambda: workloads.gpt_args(0), rounds=30, quick_rounds=3, rtol=1e-4, warmup=2,
        fd_args=lambda: workloads.gpt_args(0, np.float64, n_embd=16, n_layer=1, block=8, batch=2),
        fd_note=" (on a 1-layer, 16-wide float64 copy)", hvp_target=2.5,
        description="`models.transformer.gpt_loss`: vocab 65, block 64, n_embd 128, 4 heads, "
                    "4 layers, batch 32, float32",
        peers=("torch",)),
    "chain": Workload(
        "chain", workloads.chain, handwritten.chain_value_and_grad,
        lambda: (workloads.chain_input(0),), rounds=150, quick_rounds=10, rtol=1e-8,
        fd_args=lambda: (workloads.chain_input(0),), hvp_eps=1e-5, hvp_tol=1e-6, peer_rtol=1e-8,
        target=1.2,
        description="200 steps of x = sin(x)·0.9 + 0.1·cos(x)·x on x of shape (16,), float64",
        peers=("autograd", "torch", "jax-jit", "jax-eager")),
}


def resolve(w):
    """The workload with its functions imported (gpt's live in models.*)."""
    if w.f is None:
        from bench.handwritten_gpt import gpt_value_and_grad
        from models.transformer import gpt_loss as f
        w.f, w.handwritten = f, gpt_value_and_grad
    return w


def random_direction(x, seed=0):
    """A random direction with x's structure, shapes and dtypes (for hvp)."""
    rng = np.random.default_rng(seed)
    return tree_map(lambda a: rng.standard_normal(np.shape(a)).astype(np.asarray(a).dtype), x)
