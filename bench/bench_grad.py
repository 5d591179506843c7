"""Alias of `python -m bench.run` (the whole benchmark), kept for the old command line.

    python -m bench.bench_grad [--quick] [--workloads mlp,chain] [--traceback] ...

takes the same options as `python -m bench.run` and writes the same bench/RESULTS.md.
"""
import sys

from bench.run import main

if __name__ == "__main__":
    sys.exit(main())
