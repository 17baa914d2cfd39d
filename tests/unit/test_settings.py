"""The settings tree: secrets refuse defaults outside development."""

from __future__ import annotations

import pytest

from api.security_settings import SecuritySettings
from gridcore.errors import InsecureConfiguration


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

