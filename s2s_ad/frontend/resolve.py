"""Bind the free names of a function to the Python objects they mean."""
import builtins
import types


class Scope:
    """Closure cells, then module globals, then builtins, the way Python looks them up.

    Every name it resolves is remembered with its object, so a cached transformation can
    tell when one of them (a global helper, a constant array) has been rebound.
    """

    def __init__(self, func):
        code = func.__code__
        self.cells = dict(zip(code.co_freevars, func.__closure__ or ()))
        self.closure = {n: c.cell_contents for n, c in self.cells.items() if _has_contents(c)}
        self.globals = func.__globals__
        self.used = {}
        self.attributes = {}   # (id(object), name) -> (object, name, value) read off objects

    def lookup(self, name):
        if name in self.closure:
            obj = self.closure[name]
        elif name in self.globals:
            obj = self.globals[name]
        elif hasattr(builtins, name):
            obj = getattr(builtins, name)
        else:
            raise KeyError(name)
        self.used[name] = obj
        return obj

    def still_valid(self):
        """True while every name resolved at transformation time means the same object."""
        for name, obj in self.used.items():
            try:
                now = self.cells[name].cell_contents if name in self.closure else (
                    self.globals[name] if name in self.globals else getattr(builtins, name))
            except (KeyError, AttributeError, ValueError):
                return False
            if now is not obj:
                return False
        return all(getattr(base, name, _MISSING) is value
                   for base, name, value in self.attributes.values())

    def attribute(self, base, name, value):
        """`value`, read as `base.name` off an object that is not a module (a setting on
        a config object): remembered, since the object may be given another value."""
        self.attributes[(id(base), name)] = (base, name, value)


class _Attr:
    """An object's attributes read like a table (see Scope.attribute)."""
    __slots__ = ("obj",)

    def __init__(self, obj):
        self.obj = obj

    def get(self, name, default):
        return getattr(self.obj, name, default)


class _Cell:
    """A closure cell read like a table: `get` gives what the name means now (Python's
    late binding: `nonlocal k; k = 3.0` after the first call changes f's k)."""
    __slots__ = ("cell",)

    def __init__(self, cell):
        self.cell = cell

    def get(self, name, default):
        try:
            return self.cell.cell_contents
        except ValueError:   # deleted
            return default


def _has_contents(cell):
    try:
        cell.cell_contents
        return True
    except ValueError:
        return False


def is_module(obj):
    return isinstance(obj, types.ModuleType)


_MISSING = object()


class Scopes:
    """The scopes of a function and of every helper inlined into it."""

    def __init__(self, scopes):
        self.scopes = scopes
        self._checks = None

    @property
    def used(self):
        return {k: v for s in self.scopes for k, v in s.used.items()}

    def still_valid(self):
        """Scope.still_valid for all, each (module, name) once: this runs on every cache
        hit, and a helper inlined at 28 call sites would otherwise be checked 28 times."""
        if self._checks is None:
            self._checks = list(_checks(self.scopes, {}).values())
        for table, name, obj in self._checks:
            if table.get(name, _MISSING) is not obj:
                return False
        return True


def _checks(scopes, out):
    """{(table id, name): (table, name, expected object)}: a closure cell is read for
    what it holds now; a builtin must also stay unshadowed by a module global."""
    for scope in scopes:
        if isinstance(scope, Scopes):
            _checks(scope.scopes, out)
            continue
        for key, (base, name, value) in scope.attributes.items():
            out[key] = (_Attr(base), name, value)
        for name, obj in scope.used.items():
            if name in scope.closure:
                cell = scope.cells[name]
                out[(id(cell), name)] = (_Cell(cell), name, obj)
                continue
            if name in scope.globals:
                out[(id(scope.globals), name)] = (scope.globals, name, obj)
            else:
                out[(id(scope.globals), name)] = (scope.globals, name, _MISSING)
                out[(id(builtins.__dict__), name)] = (builtins.__dict__, name, obj)
    return out
