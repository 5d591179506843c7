"""Derivative rules, one place per primitive (see registry for how they are declared)."""
from . import registry
from . import elementwise, reductions, linalg, shape, indexing, effects, runtime  # noqa: F401
from .registry import defrule, defrule_elementwise, lookup, nondiff

from ..primitives import ATTRIBUTE, LEN

nondiff(ATTRIBUTE, LEN)
