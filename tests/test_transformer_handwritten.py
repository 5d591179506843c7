"""The GPT model and its hand-written gradient (the benchmark baseline) on a tiny config."""
import numpy as np
import pytest

from bench.handwritten_gpt import gpt_value_and_grad
from models.transformer import generate, gpt_loss, init_params

VOCAB, N_LAYER, N_EMBD, N_HEAD, BLOCK, BATCH = 7, 2, 8, 2, 5, 2


def tiny(dtype=np.float64, seed=0):
    params = init_params(VOCAB, N_LAYER, N_EMBD, N_HEAD, BLOCK, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed + 1)
    idx = rng.integers(0, VOCAB, size=(BATCH, BLOCK))
    targets = rng.integers(0, VOCAB, size=(BATCH, BLOCK))
    return params, idx, targets


def perturbed(params, rng, scale):
    """Move every parameter off the GPT-2 init (gains 1, biases 0) so no derivative term
    vanishes by symmetry and the check sees all of them."""
    def walk(p):
        if isinstance(p, dict):
            return {k: walk(v) for k, v in p.items()}
        if isinstance(p, list):
            return [walk(v) for v in p]
        return p + scale * rng.standard_normal(p.shape)
    return walk(params)


def leaves(tree, prefix=""):
    """(name, array) pairs of a nested dict/list, in a fixed order."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from leaves(v, f"{prefix}{k}.")
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            yield from leaves(v, f"{prefix}{i}.")
    else:
        yield prefix[:-1], tree


def test_loss_matches_model_and_is_about_ln_vocab_at_init():
    params, idx, targets = tiny()
    loss, _ = gpt_value_and_grad(params, idx, targets, N_HEAD)
    assert loss == pytest.approx(gpt_loss(params, idx, targets, N_HEAD), rel=1e-12)
    assert loss == pytest.approx(np.log(VOCAB), abs=0.05)


def test_gradient_matches_finite_differences_entrywise():
    # Off the init point and with larger weights so that attention is far from uniform.
    params, idx, targets = tiny()
    params = perturbed(params, np.random.default_rng(2), 0.5)
    loss, grads = gpt_value_and_grad(params, idx, targets, N_HEAD)
    assert loss == pytest.approx(gpt_loss(params, idx, targets, N_HEAD), rel=1e-12)
    eps = 1e-6
    for (name, p), (gname, g) in zip(leaves(params), leaves(grads)):
        assert name == gname and g.shape == p.shape and g.dtype == p.dtype, name
        num = np.empty_like(p)
        for j in np.ndindex(p.shape):  # every entry of every parameter: ~1.5k loss calls
            old = p[j]
            p[j] = old + eps
            up = gpt_loss(params, idx, targets, N_HEAD)
            p[j] = old - eps
            down = gpt_loss(params, idx, targets, N_HEAD)
            p[j] = old
            num[j] = (up - down) / (2 * eps)
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-8, err_msg=name)


def test_repeated_tokens_accumulate_embedding_gradient():
    params, _, _ = tiny()
    idx = np.zeros((BATCH, BLOCK), dtype=np.int64)  # one token everywhere
    targets = np.ones_like(idx)
    _, grads = gpt_value_and_grad(params, idx, targets, N_HEAD)
    d = np.random.default_rng(3).standard_normal(params["wte"].shape)
    eps = 1e-6
    up = gpt_loss({**params, "wte": params["wte"] + eps * d}, idx, targets, N_HEAD)
    down = gpt_loss({**params, "wte": params["wte"] - eps * d}, idx, targets, N_HEAD)
    assert np.sum(grads["wte"] * d) == pytest.approx((up - down) / (2 * eps), rel=1e-6)


def test_shorter_sequence_than_block_size():
    params, idx, targets = tiny()
    loss, grads = gpt_value_and_grad(params, idx[:, :3], targets[:, :3], N_HEAD)
    assert loss == pytest.approx(gpt_loss(params, idx[:, :3], targets[:, :3], N_HEAD), rel=1e-12)
    assert np.all(grads["wpe"][3:] == 0) and np.any(grads["wpe"][:3] != 0)


def test_float32_params_give_float32_gradients():
    params, idx, targets = tiny(np.float32)
    assert gpt_loss(params, idx, targets, N_HEAD).dtype == np.float32
    loss, grads = gpt_value_and_grad(params, idx, targets, N_HEAD)
    assert loss.dtype == np.float32
    for name, g in leaves(grads):
        assert g.dtype == np.float32, name
    _, g64 = gpt_value_and_grad(tiny(np.float64)[0], idx, targets, N_HEAD)
    for (name, a), (_, b) in zip(leaves(grads), leaves(g64)):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5, err_msg=name)


def test_generate_returns_valid_ids_of_the_right_length():
    params, _, _ = tiny()
    rng = np.random.default_rng(4)
    prompt = np.array([[1, 2], [3, 4]])
    out = generate(params, prompt, 9, N_HEAD, BLOCK, rng)  # longer than block_size: cropping
    assert out.shape == (2, 11) and np.issubdtype(out.dtype, np.integer)
    assert np.array_equal(out[:, :2], prompt)
    assert out.min() >= 0 and out.max() < VOCAB
    one = generate(params, np.array([0]), 4, N_HEAD, BLOCK, rng, temperature=0.5)
    assert one.shape == (5,) and one.min() >= 0 and one.max() < VOCAB
