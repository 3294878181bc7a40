from __future__ import annotations

import gzip
import pickle
import struct

import numpy as np
import pytest
from hwnas.search.data import DataError, batches, load_dataset, read_fashion_mnist


def test_digits_splits_are_fixed_by_seed_and_disjoint():
    a = load_dataset("digits", shape=(1, 28, 28), seed=3)
    b = load_dataset("digits", shape=(1, 28, 28), seed=3)
    c = load_dataset("digits", shape=(1, 28, 28), seed=4)
    assert a.train.x.shape[1:] == (1, 28, 28) and a.train.x.dtype == np.float32
    assert np.array_equal(a.val.y, b.val.y) and np.array_equal(a.val.x, b.val.x)
    assert not np.array_equal(a.val.x, c.val.x)
    n = len(a.train) + len(a.val) + len(a.test)
    assert n == 1797
    rows = {r.tobytes() for r in a.train.x[:, 0, ::4, ::4]}
    assert not any(r.tobytes() in rows for r in a.test.x[:, 0, ::4, ::4])


def test_digits_to_three_channels_for_nb201():
    d = load_dataset("digits", shape=(3, 32, 32))
    assert d.input_shape == (3, 32, 32)
    assert abs(float(d.train.x.mean())) < 0.05  # standardised with train statistics


def _write_idx(path, arr):
    header = struct.pack(">BBBB", 0, 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}i", *arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


def test_idx_reader_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    tx, ty = rng.integers(0, 255, (60, 28, 28)), rng.integers(0, 10, 60)
    sx, sy = rng.integers(0, 255, (20, 28, 28)), rng.integers(0, 10, 20)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", tx)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", ty)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", sx)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", sy)
    x, y, x2, y2, k = read_fashion_mnist(tmp_path)
    assert np.array_equal(x[:, 0], tx) and np.array_equal(y, ty) and np.array_equal(y2, sy)
    d = load_dataset(f"fashion-mnist:{tmp_path}", val_fraction=0.25)
    assert (len(d.train), len(d.val), len(d.test)) == (45, 15, 20)


def test_missing_fashion_mnist_says_how_to_install(tmp_path):
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_dataset(f"fashion-mnist:{tmp_path}")


def test_truncated_idx_file_is_named(tmp_path):
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((5, 28, 28)))
    raw = gzip.open(tmp_path / "train-images-idx3-ubyte.gz").read()
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(raw[:100])
    for n in ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        _write_idx(tmp_path / n, np.zeros(5))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((5, 28, 28)))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: truncated"):
        read_fashion_mnist(tmp_path)


def test_cifar10_pickle_folder(tmp_path):
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(tmp_path / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 255, (8, 3072), dtype=np.uint8),
                         b"labels": list(rng.integers(0, 10, 8))}, f)
    d = load_dataset(str(tmp_path), shape=(3, 32, 32), val_fraction=0.25)
    assert d.name == "cifar10" and (len(d.train), len(d.val), len(d.test)) == (30, 10, 8)


def test_image_folder_with_pil(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 6), ("test", 2)):
        for c in ("cat", "dog"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (10, 10, 3), dtype=np.uint8)).save(tmp_path / split / c / f"{i}.png")
    d = load_dataset(f"folder:{tmp_path}", shape=(3, 16, 16), val_fraction=0.25)
    assert d.num_classes == 2 and d.input_shape == (3, 16, 16)
    assert (len(d.train), len(d.val), len(d.test)) == (9, 3, 4)


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(DataError, match="use fashion-mnist, digits"):
        load_dataset("imagenet-1k")


def test_batches_cover_the_split_once():
    d = load_dataset("digits", shape=(1, 8, 8))
    seen = np.concatenate([y.numpy() for _, y in batches(d.val, 50, rng=np.random.default_rng(0))])
    assert sorted(seen.tolist()) == sorted(d.val.y.tolist())
