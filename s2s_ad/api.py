"""The public transformations and the cache of generated code."""
import functools
import inspect
import math
import weakref

import numpy as np

from . import specialize
from .emit import compile_function
from .errors import TransformError
from .frontend import fence, parse
from .frontend.normalize import normalize
from .frontend.resolve import Scopes
from .ir import Var
from .batched import NotBatchable, batched_source
from .forward import tangent_source
from .reverse import adjoint_source
from .runtime import Unrecorded

TANGENT_KINDS = ("jvp", "hvp", "vjp", "jacfwd")

# func -> {(transformation, wrt): {signature: Entry}}: shared by every grad(f) of one f.
_CACHE = weakref.WeakKeyDictionary()


class Entry:
    __slots__ = ("fn", "scope", "infos")

    def __init__(self, fn, scope, infos=None):
        self.fn = fn
        self.scope = scope
        self.infos = infos          # what was recorded: kept to add branches taken later


class Transformed:
    """A derivative of `func`, generated and compiled on first use for each call signature
    (shapes, dtypes, container structure) and cached."""

    def __init__(self, func, kind, wrt):
        if isinstance(func, Transformed) and func.kind not in ("grad", "value_and_grad"):
            raise TransformError(f"{kind} of {func.kind} is not supported yet",
                                 advice="differentiate the original function, or its grad")
        self.func = func
        self.kind = kind
        self.wrt = wrt
        self.__name__ = f"{kind}_{getattr(func, '__name__', 'f')}"
        self.__qualname__ = self.__name__
        self.__doc__ = f"{kind} of {getattr(func, '__qualname__', func)} (s2s_ad)"
        user = func
        while isinstance(user, Transformed):  # grad(grad(f)) takes f's arguments
            user = user.func
        try:
            params = list(inspect.signature(user).parameters.values())
        except (TypeError, ValueError):
            params = []
        self._nparams = len(params)
        self._signature = inspect.signature(user) if params else None
        self._wrt_names = _wrt_names(func, params, wrt)
        per_func = _CACHE.setdefault(func, {}) if _weakrefable(func) else {}
        self._entries = per_func.setdefault((kind, self._wrt_names, isinstance(wrt, tuple)), {})
        self._last = (None, None)   # (signature, entry) of the last call: the usual next one

    def _args(self, args, kwargs):
        if not kwargs and len(args) == self._nparams:
            return args
        if self._signature is None:
            raise TypeError(f"{self.__name__} got unexpected arguments")
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return tuple(bound.arguments.values())

    def specialization(self, *args, _tangents=(), **kwargs):
        """The generated function for these arguments (transforming on a cache miss)."""
        args = self._args(args, kwargs)
        return self._entry(args, _tangents).fn, args

    def _entry(self, args, tangents=()):
        key = tuple(map(specialize.signature, args + tuple(tangents)))
        entry = self._entries.get(key)
        if entry is None or not entry.scope.still_valid():
            entry = self._entries[key] = self._transform(args, tangents)
            self._last = (key, entry)
        return entry

    def _run(self, entry, args, tangents=()):
        """Call the generated code; a branch it has not specialised for yet is recorded
        and the code generated again (once per branch)."""
        try:
            return entry.fn(*args, *tangents)
        except Unrecorded:
            key = tuple(map(specialize.signature, args + tuple(tangents)))
            entry = self._entries[key] = self._transform(args, tangents, previous=entry.infos)
            self._last = (key, entry)
            return entry.fn(*args, *tangents)

    def _target(self, args):
        """The function to read: the user's, or for a derivative of a derivative the code
        generated for these arguments (hvp is forward mode over the generated adjoint)."""
        inner = Transformed(self.func, "grad", self.wrt) if self.kind == "hvp" else self.func
        if not isinstance(inner, Transformed):
            return self.func, None
        entry = inner._entry(args)
        if "unrecorded()" in entry.fn.__s2s_source__:
            # A branch taken for the first time is recorded first (code that cannot meet
            # one is not run: the recording below runs it anyway).
            inner._run(entry, args)
            entry = inner._entry(args)
        return entry.fn, entry.scope

    def __call__(self, *args, **kwargs):
        if self.kind in TANGENT_KINDS:  # called as (*args, tangent)
            if not args:
                raise TypeError(f"{self.__name__} is called with the arguments of "
                                f"{self.func.__name__} followed by the tangent")
            args, tangent = args[:-1], args[-1]
            tangents = tuple(tangent) if isinstance(self.wrt, tuple) and self.kind != "vjp" \
                else (tangent,)
            args = self._args(args, kwargs)
            return self._run(self._entry(args, tangents), args, tangents)
        if not kwargs and len(args) == self._nparams:
            key = tuple(map(specialize.signature, args))
            last_key, entry = self._last
            if key != last_key:     # (comparing with the last key costs less than hashing it)
                entry = self._entries.get(key)
                self._last = (key, entry)
            if entry is not None and entry.scope.still_valid():
                try:
                    return entry.fn(*args)
                except Unrecorded:
                    pass
        args = self._args(args, kwargs)
        return self._run(self._entry(args), args)

    def _transform(self, args, tangents=(), previous=None):
        func, inner_scope = self._target(args)
        source = parse.read(func)
        fence.check(source)
        program, scope = normalize(source)
        if inner_scope is not None:
            scope = Scopes([scope, inner_scope])
        for name in self._wrt_names:
            _check_differentiable(name, args[program.params.index(name)])
        # What to unroll and decide is found from recordings of just what it depends on;
        # the whole program runs once, at the end.
        infos, _ = specialize.record(program, args, previous,
                                     only=specialize.hint_inputs(program))
        known = {}
        for _ in range(6):  # unrolling can reveal more to unroll or decide: repeat
            found = specialize.hints(program, infos)
            if all(known.get(k) == v for k, v in found.items()):
                break
            known.update(found)
            program, scope = normalize(source, known)
            if inner_scope is not None:
                scope = Scopes([scope, inner_scope])
            infos, _ = specialize.record(program, args, previous,
                                         only=specialize.hint_inputs(program))
        infos, value = specialize.record(program, args, previous)
        program = specialize.guard_unrecorded(program, infos)
        out = specialize.atom_info(program.result, infos, program.env)
        if self.kind == "vjp":  # (value, cotangent times the Jacobian), for jacobian()
            name, src = adjoint_source(program, infos, list(self._wrt_names), True,
                                       as_tuple=isinstance(self.wrt, tuple), seed="out_bar")
            return Entry(compile_function(src, name, program.env), scope, infos)
        if self.kind == "jacfwd":  # the tangents of k directions at once, for jacobian()
            k = np.shape(tangents[0])[0] if np.ndim(tangents[0]) else None
            name, src = batched_source(program, infos, list(self._wrt_names), k)
            return Entry(compile_function(src, name, program.env), scope, infos)
        if self.kind in TANGENT_KINDS:
            for name, tangent in zip(self._wrt_names, tangents):
                _check_tangent(name, args[program.params.index(name)], tangent)
            hvp = self.kind == "hvp"
            name, src = tangent_source(program, infos, list(self._wrt_names), only_tangent=hvp,
                                       title=f"Hessian-vector product of {self.func.__name__}"
                                       if hvp else None)
            return Entry(compile_function(src, name, program.env), scope, infos)
        if not out.is_scalar and out.kind != "float":
            shape = out.shape if out.kind == "array" else out.kind
            raise ValueError(
                f"{self.kind} needs {program.name} to return a scalar, but it returned "
                f"{'an array of shape ' + str(shape) if out.kind == 'array' else 'a ' + str(shape)}. "
                "Use s2s_ad.jacobian for the derivative of every output, or reduce the "
                "output to a scalar first (for example with .sum()).")
        with_value = self.kind == "value_and_grad"
        name, src = adjoint_source(program, infos, list(self._wrt_names), with_value,
                                   as_tuple=isinstance(self.wrt, tuple))
        fn = compile_function(src, name, program.env)
        return Entry(fn, scope, infos)


def _weakrefable(obj):
    try:
        weakref.ref(obj)
        return True
    except TypeError:
        return False


def _wrt_names(func, params, wrt):
    names = [p.name for p in params]
    items = wrt if isinstance(wrt, tuple) else (wrt,)
    out = []
    for item in items:
        if isinstance(item, (int, np.integer)) and not isinstance(item, bool):
            if not -len(names) <= item < len(names):
                raise ValueError(f"wrt={item} but {getattr(func, '__name__', func)} takes "
                                 f"{len(names)} argument(s)")
            out.append(names[item])
        elif isinstance(item, str):
            if item not in names:
                raise ValueError(f"wrt={item!r} is not a parameter of "
                                 f"{getattr(func, '__name__', func)}; its parameters are {names}")
            out.append(item)
        else:
            raise TypeError(f"wrt must be an argument index, a parameter name or a tuple of "
                            f"those, not {item!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"wrt lists the same argument twice: {wrt!r}")
    return tuple(out)


def _check_differentiable(name, value, path=""):
    if isinstance(value, dict):
        for k, v in value.items():
            _check_differentiable(name, v, f"{path}[{k!r}]")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_differentiable(name, v, f"{path}[{i}]")
        return
    if isinstance(value, float):
        return
    dtype = getattr(value, "dtype", None)
    if dtype is not None and np.issubdtype(dtype, np.floating):
        return
    what = f"an array of dtype {dtype}" if dtype is not None else f"a {type(value).__name__}"
    raise TypeError(
        f"cannot differentiate with respect to `{name}{path}`: it is {what}. s2s_ad "
        "differentiates floats and float32/float64 arrays (or dicts, lists and tuples of "
        f"them); convert it with np.asarray({name}, dtype=float) or leave it out of wrt.")


def _check_tangent(name, value, tangent):
    """A tangent has its argument's structure and shapes."""
    if isinstance(value, dict):
        if not isinstance(tangent, dict) or tangent.keys() != value.keys():
            raise ValueError(f"the tangent of `{name}` must be a dict with keys {list(value)}")
        for k in value:
            _check_tangent(f"{name}[{k!r}]", value[k], tangent[k])
        return
    if isinstance(value, (list, tuple)):
        if not isinstance(tangent, (list, tuple)) or len(tangent) != len(value):
            raise ValueError(f"the tangent of `{name}` must be a {type(value).__name__} of "
                             f"{len(value)} items")
        for i, (v, t) in enumerate(zip(value, tangent)):
            _check_tangent(f"{name}[{i}]", v, t)
        return
    if np.shape(value) != np.shape(tangent):
        raise ValueError(f"the tangent of `{name}` has shape {np.shape(tangent)}, but "
                         f"`{name}` has shape {np.shape(value)}")


def _decorator(kind):
    def transform(func=None, wrt=0):
        if func is None:
            return lambda f: Transformed(f, kind, wrt)
        if not callable(func):
            raise TypeError(f"{kind} needs a function, got {func!r}")
        return Transformed(func, kind, wrt)
    transform.__name__ = kind
    return transform


grad = _decorator("grad")
grad.__doc__ = """The gradient of scalar-valued `func` with respect to `args[wrt]`.

Usable as `grad(f)`, `grad(f, wrt=(0, 'b'))`, `@grad` and `@grad(wrt=...)`."""
value_and_grad = _decorator("value_and_grad")
value_and_grad.__doc__ = """`(func(*args), gradient)` from one forward and one backward sweep."""
jvp = _decorator("jvp")
jvp.__doc__ = """Called as `(*args, tangent)`: `(func(*args), directional derivative)`, by
forward mode; with a tuple `wrt`, `tangent` is a tuple."""
hvp = _decorator("hvp")
hvp.__doc__ = """Called as `(*args, v)`: the Hessian-vector product H·v of scalar `func`,
by forward mode over the generated adjoint (tangent-of-adjoint)."""


def source(transformed, *args, **kwargs):
    """The generated source of a transformed function.

    With arguments, the specialisation for them (generating it if needed); without, the
    most recently generated one."""
    shown = getattr(transformed, "_s2s_source", None)   # jacobian: the code it ran
    if shown is not None:
        return shown(*args, **kwargs)
    if not isinstance(transformed, Transformed):
        raise TypeError("source() takes a function returned by an s2s_ad transformation")
    if args or kwargs:
        fn, _ = transformed.specialization(*args, **kwargs)
        return fn.__s2s_source__
    if not transformed._entries:
        raise ValueError(f"{transformed.__name__} has not been called yet, so no code has "
                         "been generated: call it once, or pass example arguments to source()")
    return list(transformed._entries.values())[-1].fn.__s2s_source__


# -- Jacobians and Hessians -------------------------------------------------------------------

def jacobian(func=None, wrt=0, mode="auto", *, batch=True):
    """The Jacobian of `func` with respect to `args[wrt]`, shaped `out.shape + x.shape`.

    `mode="forward"` pushes the basis tangents through generated forward-mode code,
    `"reverse"` pulls one basis cotangent per output element through the generated
    vector-Jacobian product, `"auto"` picks the one with fewer sweeps.

    Forward mode pushes all x.size directions in one vectorized sweep (every tangent
    carries a leading batch axis; see s2s_ad/batched.py) when every op that carries a
    derivative has a batched tangent: elementwise functions and operators (with
    broadcasting), sum / mean / max / min / prod / var / std, indexing with ints, slices,
    None, ... and adjacent integer arrays, reshape / ravel / transpose / .T / swapaxes /
    moveaxis / expand_dims / squeeze / flip / cumsum / broadcast_to, concatenate / stack,
    matmul / dot / einsum, copies and casts, inside loops and branches too. Otherwise
    (another op that carries a derivative, such as norm, outer, tile or item assignment;
    boolean masks; values that are containers), and always in reverse mode, it loops: one
    call of the compiled code per direction.

    `batch=False` always loops (for comparisons). After a call, the returned function's
    `path` says which ran ("batched", "loop" or "reverse"), `reason` why the batched sweep
    was not used, and `ad.source(jac)` shows the code that ran."""
    if func is None:
        return lambda f: jacobian(f, wrt, mode, batch=batch)
    if mode not in ("auto", "forward", "reverse"):
        raise ValueError(f"mode must be 'auto', 'forward' or 'reverse', not {mode!r}")
    if isinstance(wrt, tuple):
        raise TypeError("jacobian takes one argument index or name as wrt")
    forward, backward = Transformed(func, "jvp", wrt), Transformed(func, "vjp", wrt)
    batched = Transformed(func, "jacfwd", wrt)
    outputs = {}   # signature -> (output shape, output dtype): learnt once per signature
    refused = {}   # signature -> why the batched sweep does not apply

    def jac(*args, **kwargs):
        index = _index_of(forward, wrt)
        x = args[index] if index < len(args) else kwargs[forward._wrt_names[0]]
        x = np.asarray(x) if isinstance(x, float) else x
        if not (hasattr(x, "dtype") and np.issubdtype(x.dtype, np.floating)):
            raise TypeError("jacobian differentiates with respect to a float or a float array")
        bound = forward._args(args, kwargs)
        key = tuple(map(specialize.signature, bound))
        if key not in outputs:
            out = forward(*bound, np.zeros_like(x))[0]
            outputs[key] = (np.shape(out), np.asarray(out).dtype)
        out_shape, out_dtype = outputs[key]
        out_size = math.prod(out_shape)
        use = mode if mode != "auto" else ("forward" if x.size <= out_size else "reverse")
        dtype = np.result_type(x.dtype, out_dtype)
        result = None
        if not batch:
            refused[key] = "batch=False"
        if use == "forward" and x.size and out_size and key not in refused:
            basis = np.eye(x.size, dtype=x.dtype).reshape((x.size,) + x.shape)
            try:
                tangents = np.asarray(batched(*bound, basis))
            except NotBatchable as e:
                refused[key] = str(e)
            else:
                if tangents.shape == (x.size,) + out_shape:
                    result = np.moveaxis(tangents, 0, -1).reshape(out_shape + x.shape)
                    jac.path, jac.reason = "batched", None
                    jac._shown = (batched, bound, (basis,))
                else:   # (a bug in batched.py: the loop below is the safe answer)
                    refused[key] = (f"internal: the batched tangents have shape "
                                    f"{tangents.shape}, not {(x.size,) + out_shape}")
        if result is not None:
            pass
        elif use == "forward":
            cols = []
            for i in range(x.size):
                e = np.zeros(x.size, dtype=x.dtype)
                e[i] = 1
                cols.append(np.asarray(forward(*bound, e.reshape(x.shape))[1]))
            result = np.stack(cols, axis=-1).reshape(out_shape + x.shape) if cols else \
                np.zeros(out_shape + x.shape, dtype)
            jac.path, jac.reason = "loop", refused.get(key, "nothing to push")
            jac._shown = (forward, bound, (np.zeros_like(x),))
        else:
            rows = []
            for j in range(out_size):
                u = np.zeros(out_size, dtype=out_dtype)
                u[j] = 1
                rows.append(np.asarray(backward(*bound, u.reshape(out_shape))[1]))
            result = np.stack(rows).reshape(out_shape + x.shape)
            jac.path, jac.reason = "reverse", "reverse mode loops over the outputs"
            jac._shown = (backward, bound, (np.zeros(out_shape, out_dtype),))
        return result.astype(dtype, copy=False)

    def shown(*args, **kwargs):
        """The generated code the last call ran (with arguments: a call with them)."""
        if args or kwargs:
            jac(*args, **kwargs)
        if jac._shown is None:
            raise ValueError(f"{jac.__name__} has not been called yet, so no code has been "
                             "generated: call it once, or pass example arguments to source()")
        transformed, bound, tangents = jac._shown
        return transformed._entry(bound, tangents).fn.__s2s_source__

    jac.__name__ = f"jacobian_{getattr(func, '__name__', 'f')}"
    jac.path, jac.reason, jac._shown = None, None, None
    jac._s2s_source = shown
    return jac


def hessian(func=None, wrt=0):
    """The Hessian of scalar `func` with respect to `args[wrt]`, shaped `x.shape + x.shape`:
    the forward Jacobian of the generated adjoint, one hvp per input element."""
    if func is None:
        return lambda f: hessian(f, wrt)
    h = Transformed(func, "hvp", wrt)

    def hess(*args):
        index = _index_of(h, wrt)
        x = np.asarray(args[index])
        cols = []
        for i in range(x.size):
            e = np.zeros(x.size, dtype=x.dtype)
            e[i] = 1
            cols.append(np.asarray(h(*args, e.reshape(x.shape) if x.shape else float(e[0]))))
        return np.stack(cols, axis=-1).reshape(x.shape + x.shape)

    hess.__name__ = f"hessian_{getattr(func, '__name__', 'f')}"
    return hess


def _index_of(transformed, wrt):
    params = list(transformed._signature.parameters) if transformed._signature else []
    return params.index(transformed._wrt_names[0])
