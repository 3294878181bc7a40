"""Issue 25: a CIFAR-10 batch folder is data from elsewhere: reading it runs no code."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hwnas.search.data import DataError, read_cifar10

NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def write_batches(folder, protocol):
    rng = np.random.default_rng(0)
    for i, n in enumerate(NAMES):
        d = {b"batch_label": f"batch {i}".encode(), b"labels": rng.integers(0, 10, 4).tolist(),
             b"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
             b"filenames": [f"img{j}.png".encode() for j in range(4)]}
        (folder / n).write_bytes(pickle.dumps(d, protocol=protocol))


@pytest.mark.parametrize("protocol", [2, 4])
def test_real_format_batches_still_read(tmp_path, protocol):
    write_batches(tmp_path, protocol)
    tx, ty, sx, sy, k = read_cifar10(tmp_path)
    assert tx.shape == (20, 3, 32, 32) and tx.dtype == np.uint8 and sy.shape == (4,) and k == 10
    want = pickle.loads((tmp_path / "test_batch").read_bytes())
    assert np.array_equal(sx.reshape(4, -1), want[b"data"]) and sy.tolist() == want[b"labels"]


class Planted:
    """What a crafted batch holds: unpickling it would create the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_crafted_batch_runs_no_code_and_is_one_line(tmp_path):
    write_batches(tmp_path, 2)
    marker = tmp_path / "pwned"
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": Planted(marker), b"labels": []}, protocol=2))
    with pytest.raises(DataError, match="data_batch_1: not a CIFAR-10 python batch") as ei:
        read_cifar10(tmp_path)
    assert not marker.exists()
    assert "\n" not in str(ei.value) and "nothing was run" in str(ei.value)
