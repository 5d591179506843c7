"""A short demo of s2s_ad: differentiate a small MLP, print the generated adjoint, check it
against finite differences, and take a few gradient steps.

    python -m models.demo
"""
import numpy as np

import s2s_ad as ad


def mlp_loss(params, x, y):
    h = np.tanh(x @ params["W1"] + params["b1"])
    z = h @ params["W2"] + params["b2"]
    z = z - np.max(z, axis=1, keepdims=True)
    logp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return -np.mean(logp[np.arange(x.shape[0]), y])


def main():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8))
    y = (x[:, 0] + x[:, 1] > 0).astype(int) + (x[:, 2] > 1).astype(int)
    params = {"W1": rng.normal(size=(8, 16)) * 0.3, "b1": np.zeros(16),
              "W2": rng.normal(size=(16, 3)) * 0.3, "b2": np.zeros(3)}

    step = ad.value_and_grad(mlp_loss)
    loss, grads = step(params, x, y)
    print(ad.source(step))

    # One gradient entry against central finite differences.
    eps, probe = 1e-6, {k: v.copy() for k, v in params.items()}
    probe["W1"][2, 3] += eps
    up = mlp_loss(probe, x, y)
    probe["W1"][2, 3] -= 2 * eps
    numeric = (up - mlp_loss(probe, x, y)) / (2 * eps)
    print(f"dL/dW1[2, 3]: s2s_ad {grads['W1'][2, 3]:.10f}, finite differences {numeric:.10f}")

    for i in range(201):
        loss, grads = step(params, x, y)
        params = {k: params[k] - 0.5 * grads[k] for k in params}
        if i % 50 == 0:
            print(f"step {i:3d}  loss {loss:.4f}")


if __name__ == "__main__":
    main()
