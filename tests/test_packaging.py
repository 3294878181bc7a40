"""One import name: an installed hwnas adds `hwnas` to site-packages and nothing else."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def _config() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_package_folder_is_listed_under_hwnas():
    cfg = _config()
    folders = {name: REPO / folder for name, folder in cfg["package-dir"].items()}
    found = set()
    for top, folder in folders.items():
        for init in folder.rglob("__init__.py"):
            rel = init.parent.relative_to(folder).parts
            found.add(".".join((top, *rel)))
    assert found == set(cfg["packages"]), "pyproject.toml's packages list differs from the folders"
    assert all(p == "hwnas" or p.startswith("hwnas.") for p in cfg["packages"])


def test_built_wheel_holds_only_hwnas(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for folder in set(_config()["package-dir"].values()):
        shutil.copytree(REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                        "-q", "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wheel, = (tmp_path / "dist").glob("hwnas-*.whl")
    with zipfile.ZipFile(wheel) as z:
        tops = {n.split("/", 1)[0] for n in z.namelist()}
        z.extractall(tmp_path / "site")
    assert {t for t in tops if not t.endswith(".dist-info")} == {"hwnas"}
    probe = ("import hwnas.core.io, hwnas.search.spaces, importlib.util as u; "
             "assert u.find_spec('core') is None and u.find_spec('search') is None, 'generic name'")
    r = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                       env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
