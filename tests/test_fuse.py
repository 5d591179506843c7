"""Softmax and log-softmax written out by the user are fused: one adjoint that reads the
result only (no adjoint of the stabilising max, no exp(a - max) kept)."""
import numpy as np
import pytest

import s2s_ad as ad
from s2s_ad import reference
from helpers import function_from_source

SOFTMAX = """
def f(a, c):
    m = np.max(a, axis={axis}, keepdims=True)
    e = np.exp(a - m)
    p = e / np.sum(e, axis={axis}, keepdims=True)
    return np.sum(np.sin(p) * c)
"""
LOG_SOFTMAX = """
def f(a, c):
    z = a - a.max(axis={axis}, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis={axis}, keepdims=True))
    return np.sum(np.sin(logp) * c)
"""


def _args(dtype=np.float64):
    rng = np.random.default_rng(0)
    return rng.standard_normal((3, 4)).astype(dtype), rng.standard_normal((3, 4)).astype(dtype)


@pytest.mark.parametrize("template,fused", [(SOFTMAX, "softmax("), (LOG_SOFTMAX, "log_softmax(")])
@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_fused_chain_is_right_at_first_and_second_order(template, fused, axis):
    f = function_from_source(template.format(axis=axis))
    a, c = _args()
    g = ad.grad(f)
    np.testing.assert_allclose(g(a, c), reference.grad(f, [a, c], 0), rtol=1e-10, atol=1e-12)
    source = ad.source(g)
    assert fused in source, source
    forward = source.split("-- backward sweep --")[0]
    code = [line for line in forward.splitlines() if not line.strip().startswith("#")]
    assert not any("np.exp" in line for line in code), source
    v = np.random.default_rng(1).standard_normal(a.shape)
    np.testing.assert_allclose(ad.hvp(f)(a, c, v), reference.hvp(f, [a, c], 0, v),
                               rtol=1e-9, atol=1e-12)
    ad.check_grads(f, [a, c], order=2)


@pytest.mark.parametrize("template", [SOFTMAX, LOG_SOFTMAX])
def test_fused_chain_keeps_float32(template):
    f = function_from_source(template.format(axis=-1))
    a, c = _args(np.float32)
    g = ad.grad(f)(a, c)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, reference.grad(f, [a.astype(float), c.astype(float)], 0),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("body", [
    # the max of another array, a sum along another axis, no keepdims: not a softmax
    "m = np.max(c, axis=1, keepdims=True)\n    e = np.exp(a - m)\n"
    "    p = e / np.sum(e, axis=1, keepdims=True)",
    "m = np.max(a, axis=1, keepdims=True)\n    e = np.exp(a - m)\n"
    "    p = e / np.sum(e, axis=0, keepdims=True)",
    "m = np.max(a, axis=1, keepdims=True)\n    e = np.exp(a - m)\n"
    "    p = e / np.sum(e)",
])
def test_lookalikes_are_not_fused_and_stay_right(body):
    f = function_from_source(f"def f(a, c):\n    {body}\n    return np.sum(np.sin(p) * c)\n")
    a, c = _args()
    g = ad.grad(f)
    np.testing.assert_allclose(g(a, c), reference.grad(f, [a, c], 0), rtol=1e-10, atol=1e-12)
    assert "softmax(" not in ad.source(g)


def test_intermediates_read_elsewhere_stay():
    f = function_from_source(
        "def f(a):\n    m = np.max(a, axis=1, keepdims=True)\n    e = np.exp(a - m)\n"
        "    p = e / np.sum(e, axis=1, keepdims=True)\n    return np.sum(p * p) + np.sum(e)\n")
    a, _ = _args()
    np.testing.assert_allclose(ad.grad(f)(a), reference.grad(f, [a], 0), rtol=1e-10)
