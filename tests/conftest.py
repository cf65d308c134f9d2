"""Shared fixtures. Test data is built in code; ../shared/data is used when present."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_file():
    """Path to a file of ../shared/data, skipping the test when it is absent."""

    def get(name: str) -> Path:
        p = SHARED_DATA / name
        if not p.is_file():
            pytest.skip(f"{p} not available")
        return p

    return get
