"""Read a function's source and parse it with gast."""
import inspect
import linecache
import textwrap
import types
from dataclasses import dataclass

import gast

from ..errors import TransformError


@dataclass
class Source:
    func: types.FunctionType
    node: gast.FunctionDef
    filename: str
    line_offset: int      # add to a node's lineno to get the line in `filename`
    col_offset: int       # add to a node's col_offset (the dedented indentation)
    lines: list           # the file's lines, for messages and comments

    def line(self, node):
        return getattr(node, "lineno", 1) + self.line_offset

    def text(self, lineno):
        return self.lines[lineno - 1] if 0 < lineno <= len(self.lines) else ""

    def error(self, node, what, advice=None):
        """A TransformError pointing at `node` in the user's file."""
        lineno = self.line(node)
        col = getattr(node, "col_offset", None)
        return TransformError(what, advice=advice, filename=self.filename, lineno=lineno,
                              col=None if col is None else col + self.col_offset,
                              line_text=self.text(lineno))


def read(func):
    """The parsed definition of a plain Python function, or a clear error."""
    if not isinstance(func, types.FunctionType):
        kind = type(func).__name__
        raise TransformError(
            f"s2s_ad differentiates Python functions by reading their source, and "
            f"{func!r} is a {kind}, which has no Python source.",
            advice="wrap it in a def of your own in a .py file, or register a rule for it "
                   "with s2s_ad.defrule")
    try:
        lines, first = inspect.getsourcelines(func)
    except (OSError, TypeError) as exc:
        raise TransformError(
            f"cannot read the source of {func.__qualname__} ({exc}); s2s_ad needs it. "
            "Functions typed at the interactive prompt or made by exec have no source file.",
            advice="define the function in a .py file (or a notebook cell) and import it") from None
    filename = inspect.getsourcefile(func) or func.__code__.co_filename
    text = "".join(lines)
    dedented = textwrap.dedent(text)
    indent = len(lines[0]) - len(lines[0].lstrip()) if dedented != text else 0
    try:
        module = gast.parse(dedented)
    except SyntaxError as exc:
        raise TransformError(f"cannot parse the source of {func.__qualname__}: {exc.msg}",
                             filename=filename, lineno=first + (exc.lineno or 1) - 1) from None
    node = module.body[0]
    if isinstance(node, gast.AsyncFunctionDef):
        raise TransformError(f"{func.__qualname__} is an async function, which is not supported",
                             advice="write it as a plain def", filename=filename, lineno=first)
    if not isinstance(node, gast.FunctionDef):
        raise TransformError(
            f"{func.__qualname__} is not defined by a def statement (a lambda given directly "
            "to s2s_ad, whose source line may hold other code)",
            advice="write it as a def (lambdas inside a def are fine)", filename=filename,
            lineno=first)
    all_lines = linecache.getlines(filename) or lines
    # The def line is `first` unless decorators precede it.
    return Source(func=func, node=node, filename=filename, line_offset=first - 1,
                  col_offset=indent, lines=all_lines)
