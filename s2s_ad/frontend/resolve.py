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
        cells = func.__closure__ or ()
        self.closure = {n: c.cell_contents for n, c in zip(code.co_freevars, cells)
                        if _has_contents(c)}
        self.globals = func.__globals__
        self.used = {}

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
                now = self.closure[name] if name in self.closure else (
                    self.globals[name] if name in self.globals else getattr(builtins, name))
            except (KeyError, AttributeError):
                return False
            if now is not obj:
                return False
        return True


def _has_contents(cell):
    try:
        cell.cell_contents
        return True
    except ValueError:
        return False


def is_module(obj):
    return isinstance(obj, types.ModuleType)


class Scopes:
    """The scopes of a function and of every helper inlined into it."""

    def __init__(self, scopes):
        self.scopes = scopes

    @property
    def used(self):
        return {k: v for s in self.scopes for k, v in s.used.items()}

    def still_valid(self):
        return all(s.still_valid() for s in self.scopes)
