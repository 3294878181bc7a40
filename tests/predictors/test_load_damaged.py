"""An edited or damaged predictor folder is one clear error naming it (issue 15, point 7)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hwnas.predictors.base import create_predictor, load_predictor
from hwnas.search.spaces import create_space


@pytest.fixture
def saved(tmp_path):
    sp = create_space("nb201")
    rng = np.random.default_rng(0)
    archs = sp.sample_many(40, rng)
    p = create_predictor("xgb", space=sp, seed=0).fit(archs, rng.random(40))
    p.save(tmp_path / "m")
    return tmp_path / "m"


def _edit(folder, fn):
    doc = json.loads((folder / "predictor.json").read_text())
    fn(doc)
    (folder / "predictor.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("path", ["/etc/passwd", "../model.json", "sub/model.json"])
def test_native_file_must_stay_in_the_folder(saved, path):
    _edit(saved, lambda d: d["state"].__setitem__("native_file", path))
    with pytest.raises(ValueError, match="native_file") as e:
        load_predictor(saved)
    assert "\\n" not in str(e.value)


def test_missing_key_and_bad_params_are_one_line(saved):
    _edit(saved, lambda d: d.pop("state"))
    with pytest.raises(ValueError, match="'state'"):
        load_predictor(saved)


def test_unknown_param_names_the_folder(saved):
    _edit(saved, lambda d: d["params"].__setitem__("no_such_param", 3))
    with pytest.raises(ValueError, match=str(saved)):
        load_predictor(saved)


def test_nan_arrays_are_refused(tmp_path):
    sp = create_space("nb201")
    rng = np.random.default_rng(0)
    archs = sp.sample_many(30, rng)
    folder = create_predictor("ridge", space=sp, seed=0).fit(archs, rng.random(30)).save(tmp_path / "r")
    with np.load(folder / "arrays.npz") as z:
        arrays = {k: z[k] for k in z.files}
    assert arrays, "ridge saves arrays"
    k = next(iter(arrays))
    arrays[k] = np.full_like(arrays[k], np.nan, dtype=float)
    np.savez(folder / "arrays.npz", **arrays)
    with pytest.raises(ValueError, match="NaN"):
        load_predictor(folder)
