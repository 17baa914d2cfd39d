"""The dispatch model's case memory kept live in each server process: every dispatch (派遣) and
send-back (退单) recorded since the model was trained is fed to it before it proposes, so this
morning's decisions count this afternoon without retraining (the research measured 0.789 frozen
against 0.801 live on SF 311: benchmarks/README.md)."""

from __future__ import annotations

import threading
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine, text

from gridcore.intelligence.dispatch import DispatchModel, SendBack
from gridcore.intelligence.training import dispatch_case

STEPS = """
SELECT h.id AS history_id, h.action, h.at, h.details->>'chosen' AS chosen,
       h.details->>'refused_by' AS refused_by, coalesce(c.description, '') AS text,
       c.category_key AS category, c.origin->>'category' AS subtype, c.grid_code AS grid,
       c.community_code AS community, c.street_code AS street, c.district_code AS district
FROM case_history h JOIN case_record c ON c.id = h.case_id
WHERE h.action IN ('dispatch', 'send_back') AND h.id > :after AND h.at > :since
ORDER BY h.id
LIMIT 50000
"""


class LiveDispatch:
    """Feeds one loaded dispatch model with the steps taken since it was trained."""

    def __init__(self) -> None:
        self.lock = threading.RLock()  # held while the memory is fed or read
        self._after: dict[int, int] = {}  # id(model) → last history row fed
        self._fed: dict[int, int] = {}

    def catch_up(self, engine: Engine, model: DispatchModel, trained_at: datetime) -> int:
        """Feed the dispatches and send-backs after ``trained_at`` not yet fed; how many steps
        this model has learnt live in all."""
        with self.lock:
            after = self._after.get(id(model), 0)
            with engine.connect() as conn:
                rows = conn.execute(text(STEPS), {"after": after, "since": trained_at}
                                    ).mappings().all()
            for r in rows:
                case = dispatch_case({**r, "department": r["chosen"]})
                at = pd.Timestamp(r["at"]).to_pydatetime()
                if r["action"] == "dispatch" and r["chosen"]:
                    model.observe(case.__class__(case.path, case.text, case.place, at,
                                                 r["chosen"]))
                elif r["action"] == "send_back" and r["refused_by"]:
                    model.observe_sendback(SendBack(case.path, case.place, r["refused_by"], at))
            if rows:
                self._after[id(model)] = int(rows[-1]["history_id"])
            self._fed[id(model)] = self._fed.get(id(model), 0) + len(rows)
            return self._fed[id(model)]
