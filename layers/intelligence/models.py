"""The model table (``intel_model``): store a trained model, activate it, load the active one.

Every server process keeps the active model of each kind in memory (:class:`ActiveModels`) and
checks the ``models`` layer version — one row, bumped by the table's trigger on every write —
before using it, so ``gridcore learn`` on any host reaches every process without a restart.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, text

from gridcore.intelligence.errors import NotFitted
from gridcore.intelligence.serialize import dumps, library_versions, loads
from gridcore.intelligence.training import Trained

KINDS = ("classify", "dispatch", "forecast")


@dataclass(frozen=True)
class StoredModel:
    id: int
    kind: str
    version: int
    trained_at: datetime
    data_from: datetime | None
    data_to: datetime | None
    n_cases: int
    metrics: dict[str, Any]
    threshold: float | None
    active: bool
    size_bytes: int

    def describe(self) -> str:
        return (f"{self.kind} v{self.version} ({self.n_cases:,} cases "
                f"{self.data_from:%Y-%m-%d} … {self.data_to:%Y-%m-%d}, trained "
                f"{self.trained_at:%Y-%m-%d %H:%M} UTC)")

    def public(self) -> dict[str, Any]:
        """What an answer says about the model that made it."""
        return {"kind": self.kind, "version": self.version,
                "trained_at": self.trained_at.isoformat(),
                "data_to": self.data_to.isoformat() if self.data_to else None}


_COLUMNS = ("id, kind, version, trained_at, data_from, data_to, n_cases, metrics, threshold, "
            "active, size_bytes")


def _stored(row: Any) -> StoredModel:
    return StoredModel(**{k: row[k] for k in StoredModel.__dataclass_fields__})


def store(conn: Connection, trained: Trained, *, activate: bool, trained_by: str,
          note: str = "") -> StoredModel:
    """Insert a trained model as the next version of its kind; activate it when asked (the
    previous active one is deactivated in the same transaction)."""
    blob = dumps(trained.model, kind=trained.kind, metadata={"params": trained.params})
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('gridcore intel_model ' || :k))"),
                 {"k": trained.kind})
    if activate:
        conn.execute(text("UPDATE intel_model SET active = false WHERE kind = :k AND active"),
                     {"k": trained.kind})
    row = conn.execute(text(f"""
        INSERT INTO intel_model (kind, version, trained_by, data_from, data_to, n_cases, params,
                                 metrics, threshold, sklearn_version, active, activated_at, note,
                                 size_bytes, model)
        SELECT :kind, coalesce(max(version), 0) + 1, :by, :data_from, :data_to, :n,
               CAST(:params AS jsonb), CAST(:metrics AS jsonb), :threshold, :sk, :active,
               CASE WHEN :active THEN now() END, :note, :size, :model
        FROM intel_model WHERE kind = :kind
        RETURNING {_COLUMNS}"""), {
        "kind": trained.kind, "by": trained_by, "data_from": trained.data_from,
        "data_to": trained.data_to, "n": trained.n_cases, "params": _json(trained.params),
        "metrics": _json(trained.metrics()), "threshold": trained.threshold,
        "sk": library_versions()["sklearn"], "active": activate, "note": note,
        "size": len(blob), "model": blob}).mappings().one()
    return _stored(row)


def _json(value: Any) -> str:
    import json
    return json.dumps(value, ensure_ascii=False, default=str)


def active_row(conn: Connection, kind: str) -> StoredModel | None:
    row = conn.execute(text(f"SELECT {_COLUMNS} FROM intel_model WHERE kind = :k AND active"),
                       {"k": kind}).mappings().first()
    return _stored(row) if row else None


def load(conn: Connection, model_id: int, kind: str) -> object:
    data = conn.execute(text("SELECT model FROM intel_model WHERE id = :i"),
                        {"i": model_id}).scalar_one()
    return loads(bytes(data), kind=kind).model


def list_models(conn: Connection, kind: str | None = None) -> list[StoredModel]:
    rows = conn.execute(text(f"SELECT {_COLUMNS} FROM intel_model WHERE :k IS NULL OR kind = :k "
                             "ORDER BY kind, version"), {"k": kind}).mappings().all()
    return [_stored(r) for r in rows]


def models_version(conn: Connection) -> int:
    v = conn.execute(text("SELECT version FROM layer_version WHERE layer = 'models'")).scalar()
    return int(v or 0)


class ActiveModels:
    """The active model of each kind in this process, reloaded when the model table changed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._seen = -1
        self._loaded: dict[str, tuple[StoredModel, object]] = {}

    def get(self, kind: str) -> tuple[StoredModel, object]:
        """(row, model) of the active ``kind`` model; NotFitted (503) when there is none."""
        with self.engine.connect() as conn:
            version = models_version(conn)
            with self._lock:
                if version != self._seen:  # the table changed: re-read the rows (threshold,
                    kept = {}                   # metrics), reload only what was replaced
                    for k, (old, model) in self._loaded.items():
                        row = active_row(conn, k)
                        if row is not None and row.id == old.id:
                            kept[k] = (row, model)
                    self._loaded = kept
                    self._seen = version
                if kind not in self._loaded:
                    row = active_row(conn, kind)
                    if row is None:
                        raise NotFitted(f"no active {kind} model: run `gridcore learn --kind "
                                        f"{kind}` on the case history")
                    self._loaded[kind] = (row, load(conn, row.id, kind))
                return self._loaded[kind]
