"""Hand-written forward + backward pass of `models.transformer.gpt_loss`, written for speed.

This is the baseline the compiler's gradient of the transformer is measured against.
`gpt_value_and_grad(params, idx, targets, n_head)` returns `(loss, grads)` with grads in
the params' nested structure. It works on (B*T, C) matrices so every projection is one 2-D
matmul, caches only what the backward sweep reads (LayerNorm's normalised input and 1/std,
the softmax probabilities, GELU's tanh), updates in place where a value is dead, and keeps
the params' dtype throughout (Python-float constants only: NEP 50).
"""
import numpy as np

from models.transformer import GELU_C, LN_EPS

GELU_A = 0.044715


def _ln_forward(x, g, b):
    xhat = x - x.mean(axis=1, keepdims=True)
    rstd = 1.0 / np.sqrt(np.mean(xhat * xhat, axis=1, keepdims=True) + LN_EPS)
    xhat *= rstd
    return xhat * g + b, xhat, rstd


def _ln_backward(dout, xhat, rstd, g):
    """Returns (dx, dg, db). dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))."""
    dg = np.einsum("ij,ij->j", dout, xhat)
    db = dout.sum(axis=0)
    dxhat = dout * g
    proj = np.einsum("ij,ij->i", dxhat, xhat)[:, None]
    proj *= 1.0 / xhat.shape[1]
    dx = dxhat - dxhat.mean(axis=1, keepdims=True)
    dx -= xhat * proj
    dx *= rstd
    return dx, dg, db


def gpt_value_and_grad(params, idx, targets, n_head):
    B, T = idx.shape
    N = B * T
    wte, wpe, blocks = params["wte"], params["wpe"], params["blocks"]
    C = wte.shape[1]
    hs = C // n_head
    scale = hs ** -0.5
    dtype = wte.dtype

    def heads(a):  # (N, C) -> (B, n_head, T, hs), a view
        return a.reshape(B, T, n_head, hs).transpose(0, 2, 1, 3)

    def unheads(a):  # (B, n_head, T, hs) -> (N, C), a copy
        return a.transpose(0, 2, 1, 3).reshape(N, C)

    # Additive causal mask: exp(-1e9 - max) is exactly 0, as with the model's np.where.
    neg_mask = np.triu(np.full((T, T), -1e9, dtype=dtype), k=1)

    # ---- forward ----
    x = (wte[idx] + wpe[:T]).reshape(N, C)  # residual stream, updated in place below
    caches = []
    for blk in blocks:
        a1, xhat1, rstd1 = _ln_forward(x, blk["ln1_g"], blk["ln1_b"])
        q = a1 @ blk["W_q"]
        q += blk["b_q"]
        q *= scale  # fold the 1/sqrt(hs) into q: cheaper than on the (T, T) scores
        k = a1 @ blk["W_k"]
        k += blk["b_k"]
        v = a1 @ blk["W_v"]
        v += blk["b_v"]
        qh, kh, vh = heads(q), heads(k), heads(v)
        p = qh @ kh.transpose(0, 1, 3, 2)
        p += neg_mask
        p -= p.max(axis=-1, keepdims=True)
        np.exp(p, out=p)
        p /= p.sum(axis=-1, keepdims=True)
        y = unheads(p @ vh)
        out = y @ blk["W_proj"]
        out += blk["b_proj"]
        x += out

        a2, xhat2, rstd2 = _ln_forward(x, blk["ln2_g"], blk["ln2_b"])
        h = a2 @ blk["W_fc"]
        h += blk["b_fc"]
        th = h * h
        th *= GELU_A
        th += 1.0
        th *= h
        th *= GELU_C
        np.tanh(th, out=th)
        gl = th + 1.0
        gl *= h
        gl *= 0.5
        m = gl @ blk["W_fc2"]
        m += blk["b_fc2"]
        x += m
        caches.append((xhat1, rstd1, a1, qh, kh, vh, p, y, xhat2, rstd2, a2, h, th, gl))

    af, xhatf, rstdf = _ln_forward(x, params["lnf_g"], params["lnf_b"])
    z = af @ params["W_out"]
    z += params["b_out"]
    z -= z.max(axis=1, keepdims=True)
    rows, t = np.arange(N), targets.reshape(N)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(s[:, 0]) - z[rows, t])

    # ---- backward ----
    # dloss/dz = (softmax(z) - onehot(t)) / N; one target per row, so plain -= suffices.
    s *= N
    dz = np.divide(e, s, out=e)
    dz[rows, t] -= 1.0 / N
    grads = {"W_out": af.T @ dz, "b_out": dz.sum(axis=0)}
    dx, grads["lnf_g"], grads["lnf_b"] = _ln_backward(dz @ params["W_out"].T, xhatf, rstdf,
                                                      params["lnf_g"])

    gblocks = [None] * len(blocks)
    for i in reversed(range(len(blocks))):
        blk = blocks[i]
        xhat1, rstd1, a1, qh, kh, vh, p, y, xhat2, rstd2, a2, h, th, gl = caches[i]
        g = {}
        # MLP: x += gelu(a2 @ W_fc + b_fc) @ W_fc2 + b_fc2
        g["W_fc2"] = gl.T @ dx
        g["b_fc2"] = dx.sum(axis=0)
        dh = dx @ blk["W_fc2"].T
        # gelu'(h) = 0.5 (1 + th) + 0.5 h (1 - th^2) c (1 + 3 a h^2), from the stored tanh th
        d = h * h
        d *= 3 * GELU_A
        d += 1.0
        d *= h
        d *= 0.5 * GELU_C
        th2 = th * th
        np.subtract(1.0, th2, out=th2)
        d *= th2
        th += 1.0
        th *= 0.5
        d += th
        dh *= d
        g["W_fc"] = a2.T @ dh
        g["b_fc"] = dh.sum(axis=0)
        dln, g["ln2_g"], g["ln2_b"] = _ln_backward(dh @ blk["W_fc"].T, xhat2, rstd2, blk["ln2_g"])
        dx += dln

        # Attention: x += unheads(softmax(mask(qh kh^T)) vh) @ W_proj + b_proj
        g["W_proj"] = y.T @ dx
        g["b_proj"] = dx.sum(axis=0)
        dy = heads(dx @ blk["W_proj"].T)
        dv = p.transpose(0, 1, 3, 2) @ dy
        dp = dy @ vh.transpose(0, 1, 3, 2)
        # softmax backward: dscores = p * (dp - sum(dp * p)); masked entries have p = 0.
        dp -= np.einsum("bhij,bhij->bhi", dp, p)[..., None]
        dp *= p
        dq = unheads(dp @ kh)
        dq *= scale
        dk = unheads(dp.transpose(0, 1, 3, 2) @ qh)  # qh already carries the scale
        dv = unheads(dv)
        g["W_q"], g["b_q"] = a1.T @ dq, dq.sum(axis=0)
        g["W_k"], g["b_k"] = a1.T @ dk, dk.sum(axis=0)
        g["W_v"], g["b_v"] = a1.T @ dv, dv.sum(axis=0)
        da1 = dq @ blk["W_q"].T
        da1 += dk @ blk["W_k"].T
        da1 += dv @ blk["W_v"].T
        dln, g["ln1_g"], g["ln1_b"] = _ln_backward(da1, xhat1, rstd1, blk["ln1_g"])
        dx += dln
        gblocks[i] = {key: g[key] for key in blk}  # the params' key order

    # Embeddings: repeated token ids accumulate. A one-hot matmul does the scatter-add:
    # with a character vocabulary it is ~8x faster than np.add.at here.
    onehot = np.zeros((N, wte.shape[0]), dtype=dtype)
    onehot[rows, idx.reshape(N)] = 1.0
    dwte = onehot.T @ dx
    dwpe = np.zeros_like(wpe)  # positions beyond T get zero gradient
    dwpe[:T] = dx.reshape(B, T, C).sum(axis=0)

    grads.update({"wte": dwte, "wpe": dwpe, "blocks": gblocks})
    return loss, {key: grads[key] for key in params}


def main():
    """Time value_and_grad and the forward alone (models.transformer.gpt_loss) on the
    benchmark config, interleaved."""
    from bench.timing import time_round_robin
    from models.transformer import gpt_loss, init_params

    vocab, n_layer, n_embd, n_head, block, batch = 65, 4, 128, 4, 64, 32
    params = init_params(vocab, n_layer, n_embd, n_head, block, seed=0)
    rng = np.random.default_rng(0)
    idx, targets = rng.integers(0, vocab, (2, batch, block))
    times = time_round_robin({
        "value_and_grad (hand-written)": lambda: gpt_value_and_grad(params, idx, targets, n_head),
        "forward only (gpt_loss)": lambda: gpt_loss(params, idx, targets, n_head),
    }, rounds=40)
    print(f"vocab {vocab}, block {block}, n_embd {n_embd}, {n_head} heads, {n_layer} layers, "
          f"batch {batch}, float32")
    for name, ts in times.items():
        print(f"{name:32s} median {1e3 * np.median(ts):7.2f} ms   min {1e3 * np.min(ts):7.2f} ms")


if __name__ == "__main__":
    main()
