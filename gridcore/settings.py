"""The one settings tree (配置): every ``GRIDCORE_*`` variable, declared once, in sections.

``Settings()`` reads the environment; the command line (``gridcore.cli``) and the app factory
(``api.app.create_app``) are the only callers, once each, and pass the sections down: storage
gets ``settings.database``, the resolver ``settings.resolve``, case intake ``settings.cases``…
A section constructed by itself (``CaseSettings(media_dir=…)``) reads nothing: it holds its
defaults and what it is given, which is what tests and notebooks want.

Declaring the tree is not I/O; reading it is, and happens only in those two callers (and in
``layers.db.cluster.standalone_database``, the one fallback for scripts that have no tree).
``gridcore config`` prints the effective tree with secrets hidden.

Each section names its variables by a prefix and its field names: ``ResolveSettings.snap_m`` is
``GRIDCORE_RESOLVE_SNAP_M``, ``CaseSettings.media_dir`` is ``GRIDCORE_MEDIA_DIR``. Variables are
read case-insensitively, like pydantic-settings does.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from gridcore.calendar import WorkingCalendar
from gridcore.errors import InsecureConfiguration
from gridcore.supervision import AutoSupervision

PREFIX = "GRIDCORE_"
DEPRECATED_H3 = "GRIDCORE_RESOLVE_H3_RESOLUTION"


def default_data_dir() -> Path:
    # PostgreSQL refuses to run as root, so root's cluster runs as an unprivileged user; that
    # user cannot traverse /root, hence a system-wide directory for root.
    if os.geteuid() == 0:
        return Path("/var/lib/gridcore")
    return Path(platformdirs.user_data_dir("gridcore"))


def _secret(description: str = "") -> Any:
    """Field metadata: a value ``gridcore config`` never prints."""
    return {"secret": True, "description": description}


class Section(BaseModel):
    """One section of the tree. ``ENV_PREFIX`` + a field's name is its variable."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    ENV_PREFIX: ClassVar[str] = PREFIX

    @classmethod
    def env_name(cls, field: str) -> str:
        return f"{cls.ENV_PREFIX}{field}".upper()


class DatabaseSettings(Section):
    """Where the data lives. ``database_url`` points at any PostgreSQL ≥ 14 with PostGIS ≥ 3.1;
    without it gridcore runs its own private cluster under ``data_dir``."""

    # The application's URL (what `gridcore serve` connects as), and the owner's (migrations,
    # backups, the command line; the application's when unset). Without them: the embedded
    # cluster, with its own two roles.
    database_url: str | None = Field(None, json_schema_extra=_secret("password inside"))
    database_owner_url: str | None = Field(None, json_schema_extra=_secret("password inside"))
    # the application role: no superuser, no TRUNCATE/UPDATE/DELETE on audit_log
    database_app_role: str = "gridcore_app"
    data_dir: Path = Field(default_factory=default_data_dir)
    pg_bin_dir: Path | None = None
    cluster_port: int | None = None
    cluster_user: str = "gridcore"
    database_name: str = "gridcore"
    pool_size: int = 10
    pool_max_overflow: int = 10
    pool_recycle_s: int = 1800
    pool_timeout_s: float = 10.0
    statement_timeout_ms: int = 60_000
    # Session-level PREPARE (layers.db.prepared) needs each statement to stay on its server
    # session: turn it off behind a transaction-pooling proxy such as PgBouncer.
    prepared_statements: bool = True
    # Read replicas (layers.db.reads): one or more URLs, comma-separated, of hot standbys that
    # serve the read-only routes; a replica lagging more than replica_max_lag_s, or down, is
    # skipped. A routed read sees every write committed before it began: it waits up to
    # replica_wait_ms for its replica to replay that far, else the primary answers.
    read_database_url: str | None = Field(None, json_schema_extra=_secret("passwords inside"))
    replica_max_lag_s: float = 5.0
    replica_wait_ms: float = 200.0
    replica_check_interval_s: float = 1.0

    def read_urls(self) -> list[str]:
        """The replicas' URLs (``read_database_url`` split at commas)."""
        return [u.strip() for u in (self.read_database_url or "").split(",") if u.strip()]

    @model_validator(mode="after")
    def _check_urls(self) -> DatabaseSettings:
        """A URL gridcore cannot use is refused here, naming the variable — not later as a
        driver's import error. The URL itself is never repeated: it holds a password."""
        urls = [("GRIDCORE_DATABASE_URL", self.database_url),
                ("GRIDCORE_DATABASE_OWNER_URL", self.database_owner_url),
                *(("GRIDCORE_READ_DATABASE_URL", u) for u in self.read_urls())]
        for name, url in urls:
            if url is None:
                continue
            scheme = url.split("://", 1)[0] if "://" in url else ""
            backend, _, driver = scheme.partition("+")
            if backend != "postgresql" or driver not in ("", "psycopg2"):
                raise ValueError(
                    f"{name} must be a PostgreSQL URL, postgresql://user:password@host:port/"
                    f"database (driver psycopg2, the one installed); it begins "
                    f"{scheme + '://' if scheme else 'without a scheme'}")
        return self


class ResolveSettings(Section):
    """Resolving a location to its grid and responsible party (``GRIDCORE_RESOLVE_*``)."""

    ENV_PREFIX: ClassVar[str] = PREFIX + "RESOLVE_"

    snap_m: float = 30.0  # GPS error: closer than this to a grid → snapped to it
    far_m: float = 50_000.0  # farther than this from every grid → wrong datum / axes
    part_link_m: float = 30.0  # nearest city part of the report's class within this distance
    check_interval_s: float = 0.0  # 0 = check the grid version on every resolve
    batch_limit: int = 10_000  # points of one POST /resolve


class CaseSettings(Section):
    """Cases: photos, the working calendar, duplicates, intake, the Open311 stand-in keys.

    ``calendar`` is ``chinese`` | ``weekdays`` | the path of a JSON calendar (see
    :meth:`gridcore.calendar.WorkingCalendar.from_data`); ``intake_threads`` how many groups of
    reports one process works out at once (``api.intake_groups``)."""

    media_dir: Path = Field(default_factory=lambda: default_data_dir() / "media")
    max_photo_bytes: int = 5 * 1024 * 1024
    max_photos: int = 6
    # Decompression bombs: a small file may declare a huge image (a PNG of one colour, a
    # crafted JPEG). Refused before anything is decoded; 50 MP lets a 48 MP phone photo in.
    max_photo_pixels: int = 50_000_000
    thumb_px: int = 320  # the longest side of a photo's thumbnail (?size=thumb)
    city_timezone: str = "Asia/Shanghai"
    working_hours: str | None = None
    calendar: str = "chinese"
    open311_api_keys: SecretStr = SecretStr("")
    open311_jurisdiction: str = "gridcore"
    # Open311 GET requests for anyone (a public feed, as FixMyStreet publishes reports):
    # without reporter fields, without the taxonomy's sensitive classes, locations rounded to
    # a grid of open311_public_precision_m metres (0: as reported).
    open311_public_feed: bool = False
    open311_public_precision_m: float = Field(0.0, ge=0)
    # A point-only Open311 request shows the nearest address of the address layer within
    # this many metres as its address_string, flagged as derived (0: none).
    open311_reverse_geocode_m: float = Field(50.0, ge=0)
    dedup_window_h: float = 72.0
    # Groups of reports a process reads and works out at once (api.intake_groups), plus one
    # that may be writing meanwhile; one is the fastest (benchmarks/README.md, "Design figures").
    intake_threads: int = 1

    @cached_property
    def working_calendar(self) -> WorkingCalendar:
        """The calendar named by ``calendar`` (a JSON file is read on first use)."""
        if self.calendar == "chinese":
            return WorkingCalendar.chinese(self.city_timezone, self.working_hours)
        if self.calendar == "weekdays":
            return WorkingCalendar.weekdays(self.city_timezone, self.working_hours)
        data = json.loads(Path(self.calendar).read_text("utf-8"))
        data.setdefault("timezone", self.city_timezone)
        return WorkingCalendar.from_data(data)

    def api_keys(self) -> set[str]:
        keys = self.open311_api_keys.get_secret_value()
        return {k.strip() for k in keys.split(",") if k.strip()}


DEV_SECRET = "gridcore-development-only-secret-do-not-use-in-production"
NEVER_PUBLIC = frozenset({"cases", "entities"})
KNOWN_WEAK = {DEV_SECRET, "changethis", "changeme", "secret", "password", ""}
MIN_SECRET_CHARS = 32


class SecuritySettings(Section):
    """Identity and request limits; secrets refuse defaults outside development.

    Development mode is only ever explicit: ``GRIDCORE_ENV=development`` (the demo script sets
    it). Anywhere else a missing, short or well-known ``GRIDCORE_SECRET_KEY`` stops the service
    at start-up instead of signing tokens anyone could forge."""

    env: str = "production"
    secret_key: SecretStr | None = None
    token_minutes: int = 15
    # Device sessions (POST /auth/refresh): a refresh token rotates on every use; a session
    # unused this many days expires (sign in once per device, not once a day).
    session_days: int = 30
    # A refresh token already rotated is still honoured this long (a phone that lost the
    # answer of its refresh on a bad network retries with the old one); later it is taken
    # for a stolen copy and the whole session is revoked.
    refresh_grace_s: int = 120
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
    # Collections anonymous callers may read (OGC items, tiles), comma-separated, e.g.
    # "areas,grids": in production nothing else is anonymous but the probes and the OGC
    # landing and conformance documents. Cases and 9+X entities are never public here (the
    # city publishes cases through the Open311 public feed).
    public_layers: str = ""
    # The audit chain's anchors (layers.security.anchor); default <data dir>/audit-anchor.jsonl
    audit_anchor_file: Path | None = None

    def audit_anchor_path(self, data_dir: Path) -> Path:
        return self.audit_anchor_file or Path(data_dir) / "audit-anchor.jsonl"

    @property
    def public_layer_ids(self) -> frozenset[str]:
        return frozenset(p.strip() for p in self.public_layers.split(",") if p.strip())

    @model_validator(mode="after")
    def _no_private_layer_public(self) -> SecuritySettings:
        private = sorted(self.public_layer_ids & NEVER_PUBLIC)
        if private:
            raise ValueError(f"GRIDCORE_PUBLIC_LAYERS may not list {', '.join(private)}: cases "
                             "are published through GRIDCORE_OPEN311_PUBLIC_FEED, 9+X "
                             "entities never anonymously")
        return self

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


class MapSettings(Section):
    """The one map's basemaps. With nothing configured the map opens on the blank offline
    basemap: government networks are often cut off from the internet.

    ``basemap_enabled``: comma-separated provider ids offered (empty = every provider whose
    needs are met: Tianditu needs a key, the self-hosted XYZ basemap a URL)."""

    basemap_default: str = "blank"
    basemap_enabled: str = ""
    tianditu_key: str | None = Field(None, json_schema_extra=_secret("Tianditu browser key"))
    basemap_xyz_url: str | None = None
    basemap_xyz_attribution: str = "self-hosted tiles"
    basemap_xyz_max_zoom: int = 19


class ApiSettings(Section):
    """The HTTP service (``gridcore serve``)."""

    host: str = "127.0.0.1"
    port: int = 8000
    # Processes of `gridcore serve`. Python runs one request's code at a time per process, so
    # a machine with N cores serves up to N times more with N workers; each worker keeps its
    # own grid index in memory and its own connection pool.
    workers: int = 1
    # With several workers, one whose event loop has stood still this long is killed and
    # replaced (api.serving): it would keep receiving its share of new connections.
    worker_hung_after_s: float = 20.0
    # Where clients reach the service (links in answers and pages): without it, production
    # writes relative links, never the client's Host header.
    public_url: str | None = None
    # Hosts a request may name (comma-separated; *.example.org for subdomains); with either
    # this or public_url set, any other Host is a 400 (loopback always passes, for probes).
    allowed_hosts: str = ""
    max_body_bytes: int = 20 * 1024 * 1024
    page_limit_default: int = 100
    page_limit_max: int = 10_000


class FieldSettings(Section):
    """The grid worker's phone app (``/m/``) and patrols (巡查): ``GRIDCORE_FIELD_*``."""

    ENV_PREFIX: ClassVar[str] = PREFIX + "FIELD_"

    patrol_interval_s: int = 15  # how often the app records a position while on duty
    patrol_batch_max: int = 2000  # positions of one upload
    patrol_shift_max_h: float = 16.0  # a shift still open after this long is closed
    area_max_grids: int = 2000  # grids one /me/area answer may carry


class NotifySettings(Section):
    """Live notifications (``GET /events``), warnings and automatic supervision, outgoing
    webhooks.

    ``auto_supervise``: the classes supervised by the system when their clock turns red — class
    keys or prefixes, comma-separated (``*`` every class, ``P01,E0103``, empty none);
    ``auto_supervise_exempt`` the exceptions. ``supervision_interval_s``: how often each server
    process sweeps for clocks turning yellow or red (0: never — run ``gridcore supervise``);
    ``escalation_interval_s`` how often it escalates overdue cases whose class escalates by
    itself (0: never — run ``gridcore cases escalate-overdue``). Webhook deliveries are
    retried ``webhook_max_attempts`` times, the first retry after
    ``webhook_backoff_s`` seconds, each later one after twice the previous wait, at most
    ``webhook_backoff_max_s``."""

    supervision_interval_s: float = 30.0
    # chan3 (issue 24): how often each server process escalates overdue cases whose class
    # escalates by itself (自动升级, gridcore/data/escalation.csv); 0: never (cron instead)
    escalation_interval_s: float = Field(300.0, ge=0)
    auto_supervise: str = "*"
    auto_supervise_exempt: str = ""
    events_heartbeat_s: float = 15.0
    events_replay_max: int = 500
    # A stream ends after this long (the page reconnects at once, with its Last-Event-ID and
    # a fresh token): a signed-out or disabled user's stream does not outlive the check.
    events_stream_max_s: float = 600.0
    webhook_timeout_s: float = 5.0
    webhook_max_attempts: int = 8
    webhook_backoff_s: float = 30.0
    webhook_backoff_max_s: float = 3600.0
    webhook_interval_s: float = 2.0

    @property
    def auto_supervision(self) -> AutoSupervision:
        return AutoSupervision.parse(self.auto_supervise, self.auto_supervise_exempt)

    @model_validator(mode="after")
    def _check(self) -> NotifySettings:
        self.auto_supervision  # noqa: B018  (refuses a malformed class list at start-up)
        return self


class DemoSettings(Section):
    """The demo city (``gridcore demo``): ``GRIDCORE_DEMO_PBF`` names a local copy of the
    extract instead of fetching it through the package registry."""

    ENV_PREFIX: ClassVar[str] = PREFIX + "DEMO_"

    pbf: Path | None = None


class EvaluationSettings(Section):
    """Evaluation (考评) and appeals (申诉): how many working days after a period's end an
    appeal may be filed, how many working days a decision may take, and a city's own
    indicator file instead of ``gridcore/data/evaluation_indicators.json``."""

    appeal_window_days: int = Field(5, ge=0, le=60)
    appeal_decision_days: int = Field(5, ge=1, le=60)
    evaluation_indicators: Path | None = None
class ChannelSettings(Section):
    """Channels (受理渠道): geocoding of hotline addresses, IoT / video alarms over MQTT and HTTP.

    ``geocode_min_confidence``: a report with only an address is filed at the geocoded point
    when the best candidate is at least this sure, else without a grid into the 待定位 queue.
    ``mqtt_*``: the broker ``gridcore ingest mqtt`` subscribes to (the embedded one that
    ``gridcore broker start`` runs listens on 127.0.0.1:``mqtt_port``); reconnects back off
    from 1 s to ``mqtt_backoff_max_s``. ``alarm_signature_tolerance_s``: how old a signed HTTP
    alarm's timestamp may be (replays outside it are refused)."""

    geocode_min_confidence: float = Field(0.75, ge=0.0, le=1.0)
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(18830, ge=1, le=65535)
    mqtt_topic: str = "gridcore/devices/+/alarm"
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_client_id: str = "gridcore-ingest"
    mqtt_backoff_max_s: float = Field(30.0, gt=0)
    alarm_signature_tolerance_s: int = Field(300, ge=1)


class IntelligenceSettings(Section):
    """Learning from the case history (issue 22).

    ``learn_every_h``: each server process checks every ``learn_check_s`` whether the last
    scheduled learning is this old, and then one of them (a database lock) runs ``gridcore
    learn`` for ``learn_kinds`` — a model worse than the active one is stored, never activated
    — and publishes the similar-case index; 0 turns the schedule off (run ``gridcore learn``
    yourself). ``index_dir``: where the published similar-case index files live (default
    ``<data dir>/intel``), memory-mapped by every server process."""

    ENV_PREFIX: ClassVar[str] = PREFIX + "INTEL_"

    learn_every_h: float = Field(168.0, ge=0)
    learn_check_s: float = Field(600.0, gt=0)
    learn_kinds: str = "classify,dispatch,forecast,similar"
    index_dir: Path | None = None

    def index_root(self, data_dir: Path) -> Path:
        return self.index_dir or data_dir / "intel"

    @property
    def kinds(self) -> list[str]:
        return [k.strip() for k in self.learn_kinds.split(",") if k.strip()]

    @model_validator(mode="after")
    def _check(self) -> IntelligenceSettings:
        unknown = set(self.kinds) - {"classify", "dispatch", "forecast", "similar"}
        if unknown:
            raise ValueError(f"GRIDCORE_INTEL_LEARN_KINDS: unknown {', '.join(sorted(unknown))}"
                             "; classify, dispatch, forecast, similar")
        return self


class _Environment(PydanticBaseSettingsSource):
    """Every variable of the tree from ``os.environ``: a section's field under its section's
    prefix, a top-level field under ``GRIDCORE_``."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        self.environ = {k.upper(): v for k, v in os.environ.items()}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        raise NotImplementedError  # __call__ reads everything at once

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for name, info in self.settings_cls.model_fields.items():
            section = _section_class(info)
            if section is None:
                value = self.environ.get(f"{PREFIX}{name}".upper())
                if value is not None:
                    found[name] = value
                continue
            values = {field: self.environ[section.env_name(field)]
                      for field in section.model_fields if section.env_name(field) in self.environ}
            if values:
                found[name] = values
        old = self.environ.get(DEPRECATED_H3)
        if old is not None:
            if "h3_resolution" in found:
                if old != found["h3_resolution"]:
                    warnings.warn(f"{DEPRECATED_H3}={old} is ignored: GRIDCORE_H3_RESOLUTION="
                                  f"{found['h3_resolution']} is the one H3 setting",
                                  FutureWarning, stacklevel=2)
            else:
                warnings.warn(f"{DEPRECATED_H3} is deprecated: set GRIDCORE_H3_RESOLUTION, the "
                              "one H3 resolution of parts and cases", FutureWarning, stacklevel=2)
                found["h3_resolution"] = old
        return found


def _section_class(info: FieldInfo) -> type[Section] | None:
    kind = info.annotation
    return kind if isinstance(kind, type) and issubclass(kind, Section) else None


class Settings(BaseSettings):
    """The whole tree. ``Settings()`` reads the environment (``GRIDCORE_*``); keyword arguments
    (whole sections) take precedence, as tests use them."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="forbid",
                                      validate_assignment=True)

    # The H3 resolution of every stored point: city parts and cases alike.
    h3_resolution: int = Field(10, ge=0, le=15)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    resolve: ResolveSettings = Field(default_factory=ResolveSettings)
    cases: CaseSettings = Field(default_factory=CaseSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    map: MapSettings = Field(default_factory=MapSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    field: FieldSettings = Field(default_factory=FieldSettings)
    notifications: NotifySettings = Field(default_factory=NotifySettings)
    demo: DemoSettings = Field(default_factory=DemoSettings)
    evaluation: EvaluationSettings = Field(default_factory=EvaluationSettings)
    channels: ChannelSettings = Field(default_factory=ChannelSettings)
    intelligence: IntelligenceSettings = Field(default_factory=IntelligenceSettings)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _Environment(settings_cls)

    @model_validator(mode="after")
    def _derived(self) -> Settings:
        # <data dir>/media unless GRIDCORE_MEDIA_DIR says otherwise (the README's default)
        if "media_dir" not in self.cases.model_fields_set:
            self.cases.media_dir = self.database.data_dir / "media"
        return self

    @property
    def demo_cache_dir(self) -> Path:
        """Where ``gridcore demo`` keeps the extract it fetched."""
        return self.database.data_dir / "demo"

    def variables(self) -> Iterator[tuple[str, str, str, str]]:
        """(section, variable, value as printed, where it came from) for every setting;
        secrets are hidden (a URL keeps everything but its password)."""
        environ = {k.upper() for k in os.environ}
        top = type(self).model_fields
        for name, info in top.items():
            section = _section_class(info)
            if section is None:
                variable = f"{PREFIX}{name}".upper()
                yield ("", variable, _shown(getattr(self, name), info),
                       _origin(variable, environ))
                continue
            values: Section = getattr(self, name)
            for field, finfo in section.model_fields.items():
                variable = section.env_name(field)
                origin = _origin(variable, environ)
                if field == "media_dir" and origin == "default":
                    origin = "default (<data dir>/media)"
                yield name, variable, _shown(getattr(values, field), finfo), origin


def _origin(variable: str, environ: set[str]) -> str:
    if variable in environ:
        return "environment"
    if variable == "GRIDCORE_H3_RESOLUTION" and DEPRECATED_H3 in environ:
        return f"environment ({DEPRECATED_H3}, deprecated)"
    return "default"


def _shown(value: Any, info: FieldInfo) -> str:
    extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return "********" if value.get_secret_value() else ""
    if extra.get("secret"):
        text = str(value)
        if "://" in text:  # one URL or several: hide the passwords only
            return ",".join(_without_password(u) for u in text.split(","))
        return "********"
    return str(value)


def _without_password(url: str) -> str:
    if "://" not in url or "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:********@{host}" if ":" in credentials else url
