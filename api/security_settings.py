"""Security settings (env prefix ``GRIDCORE_``); secrets refuse defaults outside development.

Development mode is only ever explicit: ``GRIDCORE_ENV=development`` (the demo script sets it).
Anywhere else a missing, short or well-known ``GRIDCORE_SECRET_KEY`` stops the service at
start-up instead of signing tokens anyone could forge.
"""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from gridcore.errors import InsecureConfiguration

DEV_SECRET = "gridcore-development-only-secret-do-not-use-in-production"
KNOWN_WEAK = {DEV_SECRET, "changethis", "changeme", "secret", "password", ""}
MIN_SECRET_CHARS = 32


class SecuritySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDCORE_", env_file=None, extra="ignore")

    env: str = "production"
    secret_key: SecretStr | None = None
    token_minutes: int = 15
    # Token bucket per user / API key / address; 0 disables. Generous by default so that
    # loopback benchmarks measure the service, not the limiter.
    rate_per_s: float = 1000.0
    rate_burst: int = 2000
    # Sign-ins (POST /auth/token) per address: a burst of 20, then one every 2 s.
    signin_rate_per_s: float = 0.5
    signin_burst: int = 20
    # Development only (the demo, the test suite): a caller without a token may act under the
    # ``X-Role`` / ``X-Actor`` it names, unscoped — the stand-in the case routes began with.
    # Unset = on in development mode, off otherwise; refused outside development mode.
    trust_role_headers: bool | None = None

    @property
    def development(self) -> bool:
        return self.env.strip().lower() == "development"

    @property
    def trusts_role_headers(self) -> bool:
        if self.trust_role_headers is None:
            return self.development
        return self.trust_role_headers

    def signing_key(self) -> str:
        """The key that signs tokens; refuses weak or default keys outside development."""
        key = self.secret_key.get_secret_value() if self.secret_key else ""
        if self.development:
            return key or DEV_SECRET
        if key in KNOWN_WEAK or len(key) < MIN_SECRET_CHARS:
            raise InsecureConfiguration(
                f"GRIDCORE_SECRET_KEY is missing, a known default or shorter than "
                f"{MIN_SECRET_CHARS} characters; set a random one (python -c 'import secrets; "
                f"print(secrets.token_urlsafe(48))'), or GRIDCORE_ENV=development for a demo",
                setting="GRIDCORE_SECRET_KEY")
        return key

    def check(self) -> SecuritySettings:
        self.signing_key()
        if self.trust_role_headers and not self.development:
            raise InsecureConfiguration(
                "GRIDCORE_TRUST_ROLE_HEADERS lets a client choose its own role; it is only "
                "allowed with GRIDCORE_ENV=development", setting="GRIDCORE_TRUST_ROLE_HEADERS")
        return self
