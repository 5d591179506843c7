"""A decoder-only character-level transformer (GPT) as plain NumPy functions.

The architecture of Karpathy's "Let's build GPT" / nanoGPT without dropout: token and
position embeddings, pre-LayerNorm blocks of causal multi-head self-attention and a GELU
MLP (4x wide), a final LayerNorm and an untied output head; the loss is the mean
cross-entropy over all positions, in nats.

`gpt_loss` and everything it calls is read by the s2s_ad compiler, so it keeps to the
subset the compiler supports: straight-line NumPy, calls to the helpers below, dict reads
with constant keys and one `for i in range(...)` over the layers. Constants are Python
floats (never np.float64 scalars) so that float32 parameters stay float32 (NEP 50).
"""
import numpy as np

LN_EPS = 1e-5  # as torch.nn.LayerNorm
GELU_C = 0.7978845608028654  # sqrt(2 / pi), for the tanh approximation of GELU


def init_params(vocab_size, n_layer, n_embd, n_head, block_size, seed, dtype=np.float32):
    """GPT-2 initialisation: weights N(0, 0.02), biases 0, LayerNorm gain 1; the two
    projections that write into the residual stream (W_proj, W_fc2) are scaled by
    1/sqrt(2 * n_layer) so the stream's variance does not grow with depth."""
    assert n_embd % n_head == 0, "n_embd must be a multiple of n_head"
    rng = np.random.default_rng(seed)
    C, H = n_embd, 4 * n_embd
    resid_std = 0.02 / np.sqrt(2 * n_layer)

    def normal(shape, std=0.02):
        return (std * rng.standard_normal(shape)).astype(dtype)

    def zeros(n):
        return np.zeros(n, dtype=dtype)

    def ones(n):
        return np.ones(n, dtype=dtype)

    params = {"wte": normal((vocab_size, C)), "wpe": normal((block_size, C)), "blocks": []}
    for _ in range(n_layer):
        params["blocks"].append({
            "ln1_g": ones(C), "ln1_b": zeros(C),
            "W_q": normal((C, C)), "b_q": zeros(C),
            "W_k": normal((C, C)), "b_k": zeros(C),
            "W_v": normal((C, C)), "b_v": zeros(C),
            "W_proj": normal((C, C), resid_std), "b_proj": zeros(C),
            "ln2_g": ones(C), "ln2_b": zeros(C),
            "W_fc": normal((C, H)), "b_fc": zeros(H),
            "W_fc2": normal((H, C), resid_std), "b_fc2": zeros(C),
        })
    params.update({"lnf_g": ones(C), "lnf_b": zeros(C),
                   "W_out": normal((C, vocab_size)), "b_out": zeros(vocab_size)})
    return params


def layer_norm(x, g, b):
    mu = x.mean(axis=-1, keepdims=True)
    xc = x - mu
    var = (xc * xc).mean(axis=-1, keepdims=True)
    return xc / np.sqrt(var + LN_EPS) * g + b


def attention(x, blk, n_head):
    B, T, C = x.shape
    hs = C // n_head
    # (B, T, C) -> (B, n_head, T, hs): every head attends independently.
    q = (x @ blk["W_q"] + blk["b_q"]).reshape(B, T, n_head, hs).transpose(0, 2, 1, 3)
    k = (x @ blk["W_k"] + blk["b_k"]).reshape(B, T, n_head, hs).transpose(0, 2, 1, 3)
    v = (x @ blk["W_v"] + blk["b_v"]).reshape(B, T, n_head, hs).transpose(0, 2, 1, 3)
    att = q @ k.swapaxes(-1, -2) * hs ** -0.5
    # Causal: position t sees positions <= t only.
    mask = np.tril(np.ones((T, T)))
    att = np.where(mask == 0, -1e9, att)
    att = att - att.max(axis=-1, keepdims=True)
    att = np.exp(att)
    att = att / att.sum(axis=-1, keepdims=True)
    y = (att @ v).transpose(0, 2, 1, 3).reshape(B, T, C)
    return y @ blk["W_proj"] + blk["b_proj"]


def gelu(x):
    # x * x * x, not x ** 3: NumPy sends ** 3 through libm pow, ~250x slower here.
    return 0.5 * x * (1.0 + np.tanh(GELU_C * (x + 0.044715 * (x * x * x))))


def mlp(x, blk):
    h = gelu(x @ blk["W_fc"] + blk["b_fc"])
    return h @ blk["W_fc2"] + blk["b_fc2"]


def block(x, blk, n_head):
    x = x + attention(layer_norm(x, blk["ln1_g"], blk["ln1_b"]), blk, n_head)
    x = x + mlp(layer_norm(x, blk["ln2_g"], blk["ln2_b"]), blk)
    return x


def logits(params, idx, n_head):
    """(B, T) token ids -> (B, T, vocab) unnormalised next-token scores."""
    B, T = idx.shape
    x = params["wte"][idx] + params["wpe"][np.arange(T)]
    for i in range(len(params["blocks"])):
        x = block(x, params["blocks"][i], n_head)
    x = layer_norm(x, params["lnf_g"], params["lnf_b"])
    return x @ params["W_out"] + params["b_out"]


def cross_entropy(z, targets):
    """Mean negative log-likelihood (nats) of targets (B, T) under logits z (B, T, V)."""
    B, T, V = z.shape
    z = z.reshape(B * T, V)
    z = z - z.max(axis=-1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))
    return -np.mean(logp[np.arange(B * T), targets.reshape(B * T)])


def gpt_loss(params, idx, targets, n_head):
    return cross_entropy(logits(params, idx, n_head), targets)


def generate(params, idx_prompt, n_new, n_head, block_size, rng, temperature=1.0):
    """Sample n_new tokens after idx_prompt ((B, T0) or (T0,) ints); returns the prompt
    followed by the samples, with the prompt's shape extended along the last axis."""
    idx = np.atleast_2d(np.asarray(idx_prompt))
    for _ in range(n_new):
        z = logits(params, idx[:, -block_size:], n_head)[:, -1, :]  # last position only
        z = z.astype(np.float64) / temperature
        p = np.exp(z - z.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        # Inverse-CDF sampling, one uniform per row; the clip guards against rounding.
        u = rng.random((idx.shape[0], 1))
        nxt = np.minimum((np.cumsum(p, axis=-1) < u).sum(axis=-1), p.shape[-1] - 1)
        idx = np.concatenate([idx, nxt[:, None].astype(idx.dtype)], axis=1)
    return idx.reshape(np.shape(idx_prompt)[:-1] + (idx.shape[-1],))
