"""hwnas: hardware-aware NAS benchmark and predictor suite, under one import name.

The repository keeps the design's top-level folders (core/, devices/, predictors/, search/,
bench/); an installed hwnas holds them as `hwnas.core`, `hwnas.devices`, ... (pyproject.toml maps
them), so installing it adds no generic top-level name. In a checkout, this package's path also
reaches those folders, so `import hwnas.search` works from the repository root without installing.
"""

from __future__ import annotations

from pathlib import Path as _Path

__version__ = "0.1.0"

_checkout = _Path(__file__).resolve().parents[1]
if (_checkout / "pyproject.toml").is_file() and (_checkout / "core" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 (a package's __path__)
