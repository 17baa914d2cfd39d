"""The settings tree: every variable once, read by sections, the one H3 resolution, secrets
refusing defaults outside development and never printed by ``gridcore config``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gridcore.errors import InsecureConfiguration
from gridcore.settings import CaseSettings, ResolveSettings, SecuritySettings, Settings


def test_secrets_refuse_defaults_outside_development(monkeypatch: pytest.MonkeyPatch) -> None:
    for weak in (None, "changethis", "short-secret"):
        with pytest.raises(InsecureConfiguration, match="GRIDCORE_SECRET_KEY"):
            SecuritySettings(env="production", secret_key=weak).check()
    assert SecuritySettings(env="development", secret_key=None).signing_key()
    with pytest.raises(InsecureConfiguration, match="TRUST_ROLE_HEADERS"):
        SecuritySettings(env="production", secret_key="x" * 40,
                         trust_role_headers=True).check()
    monkeypatch.delenv("GRIDCORE_SECRET_KEY", raising=False)
    monkeypatch.delenv("GRIDCORE_ENV", raising=False)
    from api.app import create_app

    with pytest.raises(InsecureConfiguration):
        create_app()



README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_documented_variable_is_in_the_tree() -> None:
    """Each GRIDCORE_ variable of the README's configuration tables names one setting."""
    documented = set(re.findall(r"`(GRIDCORE_[A-Z0-9_]+)`", README.read_text("utf-8")))
    documented |= {f"GRIDCORE_BASEMAP_XYZ_{s}" for s in ("ATTRIBUTION",)}  # `…_ATTRIBUTION`
    names = {variable for _, variable, _, _ in Settings().variables()}
    # a prompt's default, not a setting; the deprecated alias of GRIDCORE_H3_RESOLUTION
    not_settings = {"GRIDCORE_NEW_PASSWORD", "GRIDCORE_RESOLVE_H3_RESOLUTION"}
    assert documented - not_settings <= names, documented - not_settings - names
    assert len(names) == len(list(Settings().variables())), "a variable defined twice"


def test_sections_read_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDCORE_RESOLVE_SNAP_M", "12.5")
    monkeypatch.setenv("gridcore_media_dir", "/srv/photos")  # case-insensitive, like before
    monkeypatch.setenv("GRIDCORE_DATA_DIR", "/srv/gridcore")
    monkeypatch.setenv("GRIDCORE_PREPARED_STATEMENTS", "false")
    monkeypatch.setenv("GRIDCORE_DEMO_PBF", "/srv/helsinki.pbf")
    tree = Settings()
    assert tree.resolve.snap_m == 12.5 and tree.cases.media_dir == Path("/srv/photos")
    assert tree.database.data_dir == Path("/srv/gridcore")
    assert tree.database.prepared_statements is False
    assert tree.demo.pbf == Path("/srv/helsinki.pbf")
    assert tree.demo_cache_dir == Path("/srv/gridcore/demo")
    # A section made by itself reads nothing: its defaults and what it is given.
    assert ResolveSettings().snap_m == 30.0 and CaseSettings().media_dir.name == "media"


def test_media_dir_follows_the_data_dir_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRIDCORE_MEDIA_DIR", raising=False)
    monkeypatch.setenv("GRIDCORE_DATA_DIR", "/srv/gridcore")
    assert Settings().cases.media_dir == Path("/srv/gridcore/media")


def test_one_h3_resolution_and_its_deprecated_alias(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRIDCORE_H3_RESOLUTION", raising=False)
    assert Settings().h3_resolution == 10
    monkeypatch.setenv("GRIDCORE_RESOLVE_H3_RESOLUTION", "9")
    with pytest.warns(FutureWarning, match="GRIDCORE_H3_RESOLUTION"):
        assert Settings().h3_resolution == 9
    monkeypatch.setenv("GRIDCORE_H3_RESOLUTION", "8")
    with pytest.warns(FutureWarning, match="ignored"):
        assert Settings().h3_resolution == 8
    monkeypatch.delenv("GRIDCORE_RESOLVE_H3_RESOLUTION")
    with pytest.raises(ValueError):
        Settings(h3_resolution=16)


def test_config_prints_the_tree_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from gridcore.cli import app

    env = {"GRIDCORE_SECRET_KEY": "s3cret-" * 8, "GRIDCORE_TIANDITU_KEY": "tk-visible?",
           "GRIDCORE_OPEN311_API_KEYS": "k1,k2",
           "GRIDCORE_DATABASE_URL": "postgresql://city:pa55word@db.local/gridcore"}
    result = CliRunner().invoke(app, ["config"], env=env)
    assert result.exit_code == 0, result.output
    for secret in ("s3cret-", "tk-visible", "k1,k2", "pa55word"):
        assert secret not in result.output
    assert "postgresql://city:********@db.local/gridcore" in result.output
    assert "[cases]" in result.output and "GRIDCORE_RESOLVE_SNAP_M" in result.output
    rows = json.loads(CliRunner().invoke(app, ["config", "--json"], env=env).output)
    by_name = {r["variable"]: r for r in rows}
    assert by_name["GRIDCORE_SECRET_KEY"] == {"section": "security",
                                              "variable": "GRIDCORE_SECRET_KEY",
                                              "value": "********", "from": "environment"}
    assert by_name["GRIDCORE_PORT"]["from"] == "default"


def test_a_database_url_gridcore_cannot_use_is_refused_by_name() -> None:
    from pydantic import ValidationError as PydanticError

    from gridcore.settings import DatabaseSettings

    for good in ("postgresql://u:p@h:5432/d", "postgresql+psycopg2://u:p@h/d"):
        assert DatabaseSettings(database_url=good).database_url == good
    for bad, begins in (("postgresql+psycopg://u:secret@h/d", "postgresql+psycopg://"),
                        ("mysql://u:secret@h/d", "mysql://"),
                        ("u:secret@h/d", "without a scheme")):
        with pytest.raises(PydanticError, match="GRIDCORE_DATABASE_URL") as caught:
            DatabaseSettings(database_url=bad)
        said = caught.value.errors()[0]["msg"]  # what the command line prints
        assert begins in said and "secret" not in said
    with pytest.raises(PydanticError, match="GRIDCORE_READ_DATABASE_URL"):
        DatabaseSettings(read_database_url="postgresql://u@h/d, redis://h")


def test_the_command_line_names_a_bad_setting_without_a_traceback() -> None:
    """Every command builds the tree first: a value it cannot use is one line naming the
    variable and why, exit status 2 — never pydantic's traceback, never the password."""
    import os
    import subprocess
    import sys

    cases = (({"GRIDCORE_DATABASE_URL": "postgresql+psycopg://u:hunter2@h/d",
               "GRIDCORE_INTEL_LEARN_KINDS": "classify,magic"},
              ("GRIDCORE_DATABASE_URL", "GRIDCORE_INTEL_LEARN_KINDS", "unknown magic")),
             ({"GRIDCORE_POOL_SIZE": "many"}, ("GRIDCORE_POOL_SIZE", "valid integer")))
    for bad, named in cases:
        done = subprocess.run([sys.executable, "-m", "gridcore.cli", "forecast"],
                              env={**os.environ, **bad}, capture_output=True, text=True,
                              timeout=120, cwd=Path(__file__).resolve().parents[2])
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and "hunter2" not in done.stderr
        for words in named:
            assert words in done.stderr, done.stderr
