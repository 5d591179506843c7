"""s2s_ad: source-to-source automatic differentiation for Python and NumPy."""
from .api import grad, hvp, jvp, source, value_and_grad
from .errors import TransformError
from .rules.registry import defrule, defrule_elementwise, nondiff

__all__ = ["grad", "value_and_grad", "jvp", "hvp", "source", "TransformError", "defrule",
           "defrule_elementwise", "nondiff"]
__version__ = "0.1.0"
