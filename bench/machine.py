"""Machine details recorded next to benchmark results."""
import os
import platform
import subprocess
import sys

import numpy as np

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
               "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _blas():
    try:  # threadpoolctl sees the BLAS actually loaded, with its thread count
        from threadpoolctl import threadpool_info
        return "; ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('num_threads')} threads)"
                         for i in threadpool_info()) or "none loaded"
    except ImportError:
        pass
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')} (build config; threadpoolctl not installed)"
    except Exception as e:  # show_config's layout is not a stable API
        return f"unknown ({e})"


def _git_commit():
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=os.path.dirname(os.path.abspath(__file__)), timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info():
    """[(label, value)] describing the machine and software the numbers come from."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    threads = ", ".join(f"{v}={os.environ[v]}" for v in THREAD_VARS if v in os.environ)
    return [
        ("platform", platform.platform()),
        ("CPU", _cpu_model()),
        ("cores", f"{os.cpu_count()} logical, {usable} usable by this process"),
        ("python", sys.version.split()[0]),
        ("numpy", np.__version__),
        ("BLAS", _blas()),
        ("thread env vars", threads or "none set"),
        ("memory allocator", ALLOCATOR or "the C library's defaults"),
        ("git commit", _git_commit()),
    ]


# -- memory allocator ---------------------------------------------------------------------------

ALLOCATOR = None   # what keep_freed_memory set, for the report


def keep_freed_memory():
    """Have glibc keep freed memory for the next allocation instead of handing it back to
    the system between calls (M_TRIM_THRESHOLD 1 GiB, M_MMAP_THRESHOLD 32 MiB), for every
    implementation timed in this process alike.

    By default glibc adapts both thresholds to the process's history: whether a call's
    arrays are page-faulted in afresh on every call depends on what ran before it in the
    same process (in one run, the hvp paid ~58,000 minor page faults, 133 ms, per call while
    value_and_grad paid none). Fixed thresholds take that accident out of the comparison.
    Returns a one-line description (None where mallopt is not available)."""
    global ALLOCATOR
    import ctypes
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(-1, 1 << 30) == 1 and libc.mallopt(-3, 32 << 20) == 1
    except (OSError, AttributeError):
        ok = False
    ALLOCATOR = ("glibc mallopt: trim threshold 1 GiB, mmap threshold 32 MiB (freed memory is "
                 "reused, not returned to the system between calls)") if ok else None
    return ALLOCATOR


# -- threads ------------------------------------------------------------------------------------

PIN_ENV = {v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                            "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")}
# JAX's CPU backend ignores the variables above: its own flags, read when jax is imported.
PIN_ENV["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"

_limits = None  # the threadpoolctl limiter, kept alive for the whole run


def pin_threads():
    """One thread everywhere: environment variables (for libraries not loaded yet and for
    child processes), threadpoolctl on the BLAS/OpenMP libraries loaded now, torch's own
    setting if torch is loaded. Call again after importing a library that brings its own
    thread pool. Returns a one-line description."""
    global _limits
    for var, value in PIN_ENV.items():
        os.environ.setdefault(var, value)
    try:
        from threadpoolctl import threadpool_limits
        _limits = threadpool_limits(limits=1)
        how = "threadpoolctl limits=1 on every loaded BLAS/OpenMP library"
    except ImportError:
        how = "threadpoolctl not installed: only the environment variables pin BLAS"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # only allowed before torch's first parallel work
            pass
        how += f"; torch.set_num_threads(1) (now {torch.get_num_threads()})"
    return how


def thread_report():
    """[(label, value)] of the thread settings in force now."""
    out = [("thread env vars", ", ".join(f"{v}={os.environ[v]}" for v in (*THREAD_VARS, "XLA_FLAGS")
                                         if v in os.environ) or "none set")]
    try:
        from threadpoolctl import threadpool_info
        pools = "; ".join(f"{i.get('internal_api')} {i.get('version') or ''} "
                          f"({os.path.basename(i.get('filepath', ''))}): {i.get('num_threads')} thread(s)"
                          for i in threadpool_info())
        out.append(("thread pools (threadpoolctl)", pools or "none loaded"))
    except ImportError:
        out.append(("thread pools", "threadpoolctl not installed: unknown"))
    torch = sys.modules.get("torch")
    if torch is not None:
        out.append(("torch threads", f"intra-op {torch.get_num_threads()}, "
                                     f"inter-op {torch.get_num_interop_threads()}"))
    return out


def git_state(path="s2s_ad"):
    """'commit' or 'commit + uncommitted changes in N file(s) under path'."""
    commit = _git_commit()
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--", path], capture_output=True,
                             text=True, timeout=10,
                             cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        dirty = [line for line in out.stdout.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError):
        return commit
    return commit + (f" + uncommitted changes in {len(dirty)} file(s) under {path}/" if dirty else "")


def library_versions(peers=None):
    """[(label, version)]: numpy, s2s_ad (with its git state), threadpoolctl, matplotlib
    and the peer libraries given as {name: version or None}."""
    import s2s_ad
    out = [("numpy", np.__version__),
           ("s2s_ad", f"{s2s_ad.__version__}, git {git_state()}")]
    for mod in ("gast", "threadpoolctl", "matplotlib"):
        try:
            out.append((mod, __import__(mod).__version__))
        except ImportError:
            out.append((mod, "not installed"))
    for name, version in (peers or {}).items():
        out.append((name, version or "not installed"))
    return out
