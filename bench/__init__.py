"""Benchmarks for s2s_ad. Run from the repo root, e.g. ``python -m bench.bench_grad``."""
