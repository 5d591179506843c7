"""Second order on the models: the transformer's hvp against the nested-dual reference, and
`python -m models.second_order --quick` end to end."""
import json

import numpy as np
import pytest

import s2s_ad as ad
from s2s_ad import reference

transformer = pytest.importorskip("models.transformer")


def tiny_gpt(seed=0):
    """1 layer, width 4, 2 heads, context 3, vocabulary 5: 309 parameters, so the reference
    (one nested-dual forward pass per parameter) takes about a second."""
    rng = np.random.default_rng(seed)
    params = transformer.init_params(5, 1, 4, 2, 3, seed=seed, dtype=np.float64)
    # off the initialisation's symmetric point (zero biases, unit gains)
    params = ad.flatten(params)[1](ad.flatten(params)[0] + 0.3 * rng.standard_normal(309))
    idx, targets = rng.integers(0, 5, (2, 3)), rng.integers(0, 5, (2, 3))
    return params, idx, targets


def test_transformer_hvp_agrees_with_the_reference():
    params, idx, targets = tiny_gpt()
    x0, unflatten = ad.flatten(params)
    assert x0.size == 309
    v = unflatten(np.random.default_rng(1).standard_normal(x0.size))
    hv = ad.hvp(transformer.gpt_loss)(params, idx, targets, 2, v)
    expected = reference.hvp(transformer.gpt_loss, (params, idx, targets, 2), 0, v)
    a, b = ad.flatten(hv)[0], ad.flatten(expected)[0]
    assert np.max(np.abs(b)) > 1e-3  # not trivially zero
    np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9 * np.max(np.abs(b)))
    # and the structure is the parameters' own
    assert [k for k in hv] == [k for k in params]
    assert hv["blocks"][0]["W_q"].shape == params["blocks"][0]["W_q"].shape


def test_quick_run_writes_its_outputs_and_lowers_the_loss(tmp_path):
    pytest.importorskip("scipy")
    pytest.importorskip("matplotlib")
    pytest.importorskip("sklearn")
    from models import second_order
    second_order.main(["--quick", "--out", str(tmp_path)])
    for name in ("mlp.png", "gpt.png", "RESULTS.md", "metrics.json"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "mlp.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "RESULTS.md").read_text()
    assert "| L-BFGS-B |" in report and "| Newton-CG |" in report and "hvp = " in report
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    mlp = metrics["mlp"]
    runs = {r["method"]: r for r in mlp["runs"]}
    for method in ("L-BFGS-B", "Newton-CG"):
        assert runs[method]["loss"] < 0.5 * mlp["loss0"], method
        assert runs[method]["test_acc"] > 0.8, method
    assert runs["Newton-CG"]["n_hvp"] > 0 and mlp["ratio"] > 0
    gpt = metrics["gpt"]
    assert gpt["ratio"] > 0
    for r in gpt["runs"]:
        assert np.isfinite(r["final_val"]) and r["final_val"] < r["val_trace"][0][3], r["name"]
