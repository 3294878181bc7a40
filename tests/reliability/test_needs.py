"""Issue 25: a test that needs Ray (or another extra) fails on CI when it is missing, instead of
skipping and passing silently; on a developer's machine it skips."""

from __future__ import annotations

import sys

import pytest

from tests import needs


class _NoRay:
    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(f"No module named {name!r}")
        return None


@pytest.fixture
def no_ray(monkeypatch):
    """A machine without Ray: importing it fails (sys.modules restored afterwards)."""
    for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NoRay(), *sys.meta_path])


@pytest.mark.parametrize("ci", ["1", "true", "yes"])
def test_missing_ray_fails_on_ci(no_ray, monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match=r"CI is set and ray is not installed.*\[dist\]"):
        needs.ray()


@pytest.mark.parametrize("ci", [None, "", "0", "false"])
def test_missing_ray_skips_off_ci(no_ray, monkeypatch, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match=r"pip install -e '\.\[dist\]'"):
        needs.ray()


def test_ci_script_sets_ci():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert 'export CI="${CI:-1}"' in text
