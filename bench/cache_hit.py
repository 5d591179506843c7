"""What a cache hit adds to a call: `ad.value_and_grad(f)(*args)` against the generated
function called directly, for a function that does almost nothing, so that the figure is
the dispatch (signature of the arguments, cache look-up, validity of the names the code
was generated from) and not noise from the work.

    python -m bench.cache_hit

Arguments: the gpt benchmark's parameter tree (a dict with a list of 4 block dicts, 70
arrays) and the mlp's (a dict of 6 arrays).
"""
import timeit

import numpy as np

import s2s_ad as ad
from bench.workloads import gpt_args, mlp_batch, mlp_init


def tiny_gpt(params, idx, targets, n_head):
    return np.sum(params["wte"]) * 1.0


def tiny_mlp(params, x, y):
    return np.sum(params["b3"]) * 1.0


def overhead(f, args, number=2000, repeat=15):
    """(cache hit, direct call) in seconds: the minimum over repeats of the mean per call."""
    vag = ad.value_and_grad(f)
    vag(*args)
    fn = next(iter(vag._entries.values())).fn
    hit = min(timeit.repeat(lambda: vag(*args), number=number, repeat=repeat)) / number
    direct = min(timeit.repeat(lambda: fn(*args), number=number, repeat=repeat)) / number
    return hit, direct


def main():
    cases = {"gpt parameter tree (70 arrays)": (tiny_gpt, gpt_args(0, block=4, batch=1)),
             "mlp parameter dict (6 arrays)": (tiny_mlp, (mlp_init(0), *mlp_batch(0, n=4)))}
    for label, (f, args) in cases.items():
        hit, direct = overhead(f, args)
        print(f"{label}: cache hit {hit * 1e6:.1f} us, direct {direct * 1e6:.1f} us, "
              f"added {(hit - direct) * 1e6:.1f} us (target <= 20 us)")


if __name__ == "__main__":
    main()
