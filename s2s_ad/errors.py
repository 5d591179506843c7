"""The one error type the compiler raises for code it does not support."""


class TransformError(Exception):
    """`f` uses something s2s_ad cannot differentiate.

    Raised when the transformation runs (never later as a wrong number). The message
    names the file and line, shows the source line with a caret under the construct,
    and says what to write instead.
    """

    def __init__(self, what, *, advice=None, filename=None, lineno=None, col=None,
                 line_text=None):
        self.what = what
        self.advice = advice
        self.filename = filename
        self.lineno = lineno
        self.col = col
        self.line_text = line_text
        super().__init__(self._format())

    def _format(self):
        parts = []
        where = ""
        if self.filename is not None:
            where = f'File "{self.filename}"'
            if self.lineno is not None:
                where += f", line {self.lineno}"
            parts.append(where)
        if self.line_text is not None:
            text = self.line_text.rstrip("\n")
            stripped = text.lstrip()
            indent = len(text) - len(stripped)
            parts.append("    " + stripped)
            if self.col is not None and self.col >= indent:
                parts.append("    " + " " * (self.col - indent) + "^")
        parts.append(self.what)
        if self.advice:
            parts.append("Instead: " + self.advice)
        return "\n".join(parts)
