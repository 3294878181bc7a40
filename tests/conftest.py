from __future__ import annotations

from pathlib import Path

import pytest
from hwnas.core import paths

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """Benchmark tables made by others: $HWNAS_DATA_DIR, else ../shared/data beside the repo."""
    return paths.data_dir()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = shared_data_dir()
    if not d.is_dir():
        pytest.skip(f"benchmark tables not found at {d} (set HWNAS_DATA_DIR)")
    return d
