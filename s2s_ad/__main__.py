"""`python -m s2s_ad show FILE.py:FUNCTION --args EXPR [--wrt NAME ...] [--mode ...]`

Prints the code s2s_ad generates for a function in a file. Generated code is specialised
on the shapes and dtypes of the arguments, so example arguments are given as a Python
expression, evaluated with `np` and the file's own globals, e.g.

    python -m s2s_ad show examples.py:loss --wrt W b \\
        --args "np.ones((3, 3)), np.ones(3), np.ones((4, 3)), np.ones((4, 3))"
"""
import argparse
import importlib.util
import pathlib
import sys

import numpy as np

from . import api


def _load(path):
    path = pathlib.Path(path).resolve()
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m s2s_ad", description=__doc__.split("\n")[2])
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print the generated derivative of FILE.py:FUNCTION")
    show.add_argument("target", help="FILE.py:FUNCTION")
    show.add_argument("--args", required=True,
                      help="example arguments, a Python expression (np and the file's globals are in scope)")
    show.add_argument("--wrt", nargs="+", default=["0"], help="argument names or indices")
    show.add_argument("--mode", choices=["grad", "value_and_grad"], default="grad")
    opts = parser.parse_args(argv)

    path, _, name = opts.target.rpartition(":")
    if not path or not name:
        parser.error("the target is FILE.py:FUNCTION")
    module = _load(path)
    func = getattr(module, name, None)
    if func is None:
        parser.error(f"{path} has no function {name!r}")
    args = eval(opts.args, {"np": np, **vars(module)})
    args = args if isinstance(args, tuple) else (args,)
    wrt = tuple(int(w) if w.lstrip("-").isdigit() else w for w in opts.wrt)
    transform = getattr(api, opts.mode)
    print(api.source(transform(func, wrt=wrt if len(wrt) > 1 else wrt[0]), *args), end="")


if __name__ == "__main__":
    main()
