"""The scalar tape of bench/scalar_tape.py (used by bench/REPORT.md for contrast) gives the
same loss and gradient as s2s_ad's generated code for the same tiny MLP."""
import numpy as np

import s2s_ad as ad
from bench import scalar_tape
from models.mlp import init_params, mlp_loss


def test_scalar_tape_matches_s2s_ad():
    params = init_params(4, 6, 3, seed=0, dtype="float64")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4))
    y = rng.integers(0, 3, size=5)
    value, grad = ad.value_and_grad(mlp_loss)(params, x, y)
    tape_value, tape_grad = scalar_tape.value_and_grad(params, x, y)
    assert abs(tape_value - value) <= 1e-12 * max(1.0, abs(value))
    assert set(tape_grad) == set(grad)
    for k in grad:
        assert tape_grad[k].shape == grad[k].shape
        np.testing.assert_allclose(tape_grad[k], grad[k], rtol=1e-9, atol=1e-12)


def test_scalar_tape_ops():
    a, b = scalar_tape.Value(0.3), scalar_tape.Value(-1.7)
    f = (a * b + a.tanh() - (b / a).exp() + (a * a).log()) * 2.0 - 1.0
    f.backward()
    da = 2 * (b.data + 1 - np.tanh(a.data) ** 2 + b.data / a.data ** 2 * np.exp(b.data / a.data)
              + 2 / a.data)
    db = 2 * (a.data - np.exp(b.data / a.data) / a.data)
    np.testing.assert_allclose([a.grad, b.grad], [da, db], rtol=1e-12)
