"""Where the tests find the repository, the shared real city data and their artifacts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("GRIDCORE_SHARED_DATA", REPO.parent / "shared" / "data"))
ARTIFACTS = REPO / "test-artifacts"


def shared_file(relative: str) -> Path:
    """A file of the shared real city data; the test skips, saying why, when it is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real city data {path} is absent (the tests expect ../shared/data "
                    f"beside the checkout, or GRIDCORE_SHARED_DATA)")
    return path
