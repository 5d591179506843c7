"""Interleaved round-robin timing.

Every round times each implementation once, so slow drifts of the machine (clock
frequency, other processes) affect all implementations alike. The order within a round
is a fresh (seeded) random permutation: a mere rotation would keep every implementation
behind the same neighbour, whose leftovers (caches, freed memory) it would always inherit.
"""
import gc
import random
import time


def time_round_robin(fns, rounds, warmup=5, seed=0):
    """fns: {name: zero-argument callable}. Returns {name: [seconds per call]}."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    names = list(fns)
    times = {name: [] for name in names}
    order = random.Random(seed)
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()  # as timeit does: keep collector pauses out of the samples
    try:
        for _ in range(rounds):
            order.shuffle(names)
            for name in names:
                fn = fns[name]
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: times[name] for name in fns}
