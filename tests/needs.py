"""Optional dependencies a test needs: a skip on a developer's machine without them, a failure on
CI (the CI environment variable set), so that a CI missing an extra never passes those tests by
skipping them silently."""

from __future__ import annotations

import importlib
import os

import pytest


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def needs(module: str, extra: str):
    """Import `module`, or skip (no CI) / fail (CI) with one line naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        why = f"{module} is not installed ({exc}); install it: pip install -e '.[{extra}]'"
        if on_ci():
            pytest.fail(f"CI is set and {why}", pytrace=False)
        pytest.skip(why)


def ray():
    return needs("ray", "dist")
