"""Similar cases (相似案例推荐) over the stored cases, and how each similar case ended.

The index is ``gridcore.intelligence.similar.SimilarIndex`` (sparse TF-IDF as an inverted
index; p95 ≈ 20 ms at 1 M cases, benchmarks/README.md). When ``gridcore learn`` has published
one (``layers.intelligence.similar_files``), every process maps that file read-only and adds
the cases stored since to a small tail of its own; a newer publication is picked up at the
next question. Without one, the process builds its own in memory at first use (fine for a
small city; ~1 GiB per process at 1 M cases). Scope is applied to the answer: candidates are
over-fetched and only the cases the caller may read are returned.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from gridcore.errors import ValidationError
from gridcore.intelligence.similar import SimilarCase, SimilarIndex, StoredCase
from gridcore.security.access import Scope
from gridcore.taxonomy import default_taxonomy
from layers.intelligence import similar_files
from layers.security.scoping import case_scope_sql

log = logging.getLogger(__name__)

OUTCOMES = """
SELECT c.id, c.public_no, c.category_key, c.description, c.state, c.department_code,
       d.name AS department_name, c.grid_code, c.community_code, c.created_at, c.closed_at,
       extract(epoch FROM c.closed_at - c.created_at) / 86400.0 AS days_to_close,
       c.origin->>'notes' AS reply, c.source_system,
       (SELECT count(*) FROM case_history h WHERE h.case_id = c.id AND h.action = 'rework')
           AS rework,
       (SELECT h.reason FROM case_history h WHERE h.case_id = c.id
          AND h.action IN ('handle', 'feed_back', 'close') AND coalesce(h.reason, '') <> ''
        ORDER BY h.at DESC LIMIT 1) AS handling_note
FROM case_record c LEFT JOIN department d ON d.code = c.department_code
WHERE c.id = ANY(:ids) AND {scope}
"""


class SimilarCases:
    """The similar-case index of this process over ``case_record``."""

    def __init__(self, engine: Engine, shared: Path | None = None) -> None:
        """``shared``: the folder of published index files (None: always in memory)."""
        self.engine = engine
        self.shared = shared
        self._lock = threading.Lock()
        self._index: SimilarIndex | None = None
        self._last_id = 0
        self.version: str | None = None  # the published version mapped, None: in memory

    def _open_published(self) -> None:
        if self.shared is None:
            return
        name = similar_files.current(self.shared, self.engine)
        if name is None or name == self.version:
            return
        opened = similar_files.open_version(self.shared, self.engine, name)
        if opened is None:
            return  # replaced while opening: the next question takes the newer one
        self._index, meta = opened
        self._last_id, self.version = int(meta["last_id"]), name
        log.info("similar cases: mapped published index %s (%s cases)", name, meta["n"])

    def refresh(self) -> SimilarIndex | None:
        """The index, with every case stored since the last call added (None while no stored
        case has a description)."""
        with self._lock:
            self._open_published()
            cases: list[StoredCase] = similar_files.stored_cases(self.engine, self._last_id)
            if cases:
                if self._index is None:
                    self._index = SimilarIndex().build(cases)
                else:
                    self._index.add(cases)
                self._last_id = cases[-1].case_id
            return self._index

    def for_text(self, text_: str, scope: Scope, *, k: int = 10, category: str | None = None,
                 place: str | None = None, before: datetime | None = None,
                 exclude: tuple[int, ...] = ()) -> list[dict[str, Any]]:
        """The ``k`` most similar earlier cases the caller may read, each with how it ended."""
        index = self.refresh()
        out: list[dict[str, Any]] = []
        if index is None:
            return out  # nothing described yet: nothing is similar
        for fetch in (k * 3, k * 30, k * 300):  # scope may drop many: widen until k are found
            found = index.query(text_, k=fetch, category=category, place=place, before=before,
                                exclude=exclude)
            out = self._outcomes(found, scope)[:k]
            if len(out) >= k or len(found) < fetch:
                break
        return out

    @staticmethod
    def _names(key: str | None) -> dict[str, str] | None:
        try:
            cls = default_taxonomy().get(key) if key else None
        except ValidationError:
            return None  # an imported class the taxonomy does not know: the key alone
        return {"zh": cls.name_zh, "en": cls.name_en} if cls is not None else None

    def _outcomes(self, found: list[SimilarCase], scope: Scope) -> list[dict[str, Any]]:
        if not found:
            return []
        params: dict[str, Any] = {"ids": [f.case_id for f in found]}
        sql = OUTCOMES.format(scope=case_scope_sql(scope, params))
        with self.engine.connect() as conn:
            rows = {r["id"]: dict(r) for r in conn.execute(text(sql), params).mappings()}
        out = []
        for f in found:
            row = rows.get(f.case_id)
            if row is None:
                continue  # outside the caller's scope
            days = row.pop("days_to_close")
            out.append({
                "id": f.case_id, "public_no": row["public_no"], "score": round(f.score, 4),
                "text_similarity": round(f.text_similarity, 4),
                "same_category": f.same_category, "same_place": f.same_place,
                "days_before": None if f.days_before is None else round(f.days_before, 1),
                "category": row["category_key"],
                "category_names": self._names(row["category_key"]),
                "description": row["description"],
                "state": row["state"], "grid_code": row["grid_code"],
                "outcome": {"department": row["department_code"],
                            "department_name": row["department_name"],
                            "closed_at": row["closed_at"].isoformat() if row["closed_at"]
                            else None,
                            "days_to_close": None if days is None else round(float(days), 1),
                            "reply": row["reply"] or row["handling_note"],
                            "rework": int(row["rework"]), "imported_from": row["source_system"]},
            })
        return out
