"""Interleaved round-robin timing.

Every round times each implementation once, so slow drifts of the machine (clock
frequency, other processes) affect all implementations alike.
"""
import gc
import time


def time_round_robin(fns, rounds, warmup=5):
    """fns: {name: zero-argument callable}. Returns {name: [seconds per call]}."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    names = list(fns)
    times = {name: [] for name in names}
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()  # as timeit does: keep collector pauses out of the samples
    try:
        for r in range(rounds):
            k = r % len(names)
            for name in names[k:] + names[:k]:  # rotate so no implementation always goes first
                fn = fns[name]
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return times
