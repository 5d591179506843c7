"""s2s_ad: source-to-source automatic differentiation for Python and NumPy."""
from .api import grad, hessian, hvp, jacobian, jvp, source, value_and_grad
from .errors import TransformError
from .flat import flatten
from .testing import check_grads
from .rules.registry import defrule, defrule_elementwise, nondiff

__all__ = ["grad", "value_and_grad", "jvp", "hvp", "jacobian", "hessian", "source", "TransformError", "check_grads", "flatten", "defrule",
           "defrule_elementwise", "nondiff"]
__version__ = "0.1.0"
