"""Case intake (信息收集), the one intake service: a group of reports → validate → one read →
each case worked out by the domain (resolve, dispatch, duplicates, deadline) → one write.

:class:`Intake` serves one database with one resolver and the tree's case settings. A route
files reports through ``api.intake_groups`` (group commit), which runs a group in two steps on
its thread::

    with intake.prepare(filings) as group:  # validated, surroundings read, cases worked out
        ...                                 # only the write is left: the next group may start
        outcomes = group.write()            # one statement, its own transaction

:meth:`Intake.file` does both at once (the demo, the tests, a script).

Idempotent on a client-generated key: a resend with the same key and payload returns the stored
case; with another payload it is a Conflict. Two resends racing each other are settled by the
unique key: ``INSERT INTO case_key … ON CONFLICT (idempotency_key) DO NOTHING`` (the case
registry, ``layers.cases.write``) makes the loser wait for the winner's commit and then read
the winner's row, so no second row is ever written.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Engine, text

from gridcore.calendar import Clock
from gridcore.errors import Conflict, GridcoreError
from gridcore.intake import Filing, Report, duplicate_candidates, require_inside
from gridcore.resolution import Resolution
from gridcore.settings import CaseSettings
from gridcore.taxonomy import Stage, default_taxonomy
from layers.cases.photos import store_photo
from layers.cases.resolving import Resolves
from layers.cases.survey import survey_many
from layers.cases.unwritten import Unwritten, unwritten
from layers.cases.view import case_dict, fetch_case
from layers.cases.write import write_cases
from layers.db.engine import autocommit
from layers.security import audit
from spatial.crs import to_wgs84
from spatial.measure import degree_box


@dataclass(frozen=True)
class IntakeResult:
    case: dict[str, Any]
    created: bool


Outcome = IntakeResult | Exception


class Geocodes(Protocol):
    """What intake asks of a geocoder (``layers.channels.geocoder.Geocoder``)."""

    def geocode(self, q: str, limit: int = 10) -> dict[str, Any]: ...


class Intake:
    """Files reports as cases in ``engine``'s database (see the module's docstring). A report
    with an address and no point is geocoded by ``geocoder``: at ``min_confidence`` or above it
    is filed at the best candidate's point (``location_source`` geocoded), else without a
    place, for a dispatcher to locate (the 待定位 queue)."""

    def __init__(self, engine: Engine, resolver: Resolves, settings: CaseSettings,
                 geocoder: Geocodes | None = None, min_confidence: float = 0.75) -> None:
        self.engine = engine
        self.resolver = resolver
        self.settings = settings
        self.geocoder = geocoder
        self.min_confidence = min_confidence

    def locate(self, report: Report) -> tuple[Report, dict[str, Any]]:
        """A report without a point, at its address's point when the geocoder is sure enough
        (and what the geocoder said, for the case's intake document)."""
        info: dict[str, Any] = {"address": report.address, "min_confidence": self.min_confidence,
                                "candidates": []}
        if self.geocoder is None:
            info["reason"] = "no geocoder configured"
            return report, info
        try:
            found = self.geocoder.geocode(report.address, 3)["candidates"]
        except GridcoreError as exc:
            info["reason"] = str(exc)
            return report, info
        info["candidates"] = [{k: c.get(k) for k in ("kind", "label", "confidence", "lon",
                                                      "lat", "grid_code", "match")}
                              for c in found]
        best = found[0] if found else None
        if best is None or best["confidence"] < self.min_confidence or not best.get("inside"):
            info["reason"] = ("no candidate" if best is None else
                              f"best candidate {best['label']!r} at confidence "
                              f"{best['confidence']} (threshold {self.min_confidence})"
                              if best.get("inside") else
                              f"best candidate {best['label']!r} lies outside every grid")
            return report, info
        info["chosen"] = info["candidates"][0]
        return replace(report, lon=float(best["lon"]), lat=float(best["lat"]),
                       crs="EPSG:4326"), info

    def file(self, filings: Sequence[Filing], now: datetime | None = None) -> list[Outcome]:
        """Store a group of reports filed at the same moment; each gets its own result (its new
        case, or the case an identical resend created) or its own error, never another's."""
        with self.prepare(filings, now) as group:
            return group.write()

    def file_report(self, report: Report, actor: str = "", role: str = "system",
                    now: datetime | None = None) -> IntakeResult:
        """Store one report as a case (or return the case an identical resend created)."""
        outcome = self.file([Filing(report, actor, role)], now)[0]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    @contextmanager
    def prepare(self, filings: Sequence[Filing], now: datetime | None = None
                ) -> Iterator[Group]:
        """Validate the group and work out every case, up to the write: :meth:`Group.write`.

        One read for the whole group (layer versions, each report's part link and nearby open
        cases: :func:`layers.cases.survey.survey_many`) and one write
        (:func:`layers.cases.write.write_cases`), each its own statement in autocommit: the
        write is atomic by itself (case, history, photos and audit rows), and nothing read
        earlier needs a shared snapshot — the resolution is as of the moment of the report, and
        a racing resend is settled by the unique key. A report whose key an earlier one of the
        same group carries is filed after the group, as the resend it is.

        Duplicate candidates include the cases this process has worked out and not yet
        committed (``layers.cases.unwritten``): an earlier report of the same group, or of a
        group still writing, is found like a stored case, under the id its read reserved."""
        group = Group(self, filings, now or datetime.now(UTC))
        try:
            group.work_out()
            yield group
        finally:
            group.close()


class Group:
    """One group of filings between its read and its write (:meth:`Intake.prepare`)."""

    def __init__(self, intake: Intake, filings: Sequence[Filing], now: datetime) -> None:
        self.intake = intake
        self.filings = filings
        self.now = now
        self.outcomes: list[Outcome | None] = [None] * len(filings)
        self._first: list[int] = []  # filed in this group, in this order
        self._repeats: list[int] = []  # their key came earlier in the group: resends
        self._hashes: list[str] = []
        self._worked: list[tuple[int, dict[str, Any], Clock]] = []
        self._pending: Unwritten | None = None
        self._connection = ExitStack()
        self._conn: Connection | None = None

    def work_out(self) -> None:
        keys: set[str] = set()
        for i, filing in enumerate(self.filings):
            try:
                filing.report.validate()
            except GridcoreError as exc:
                self.outcomes[i] = exc
                continue
            (self._repeats if filing.report.idempotency_key in keys else self._first).append(i)
            keys.add(filing.report.idempotency_key)
        if not self._first:
            return
        filings = [self.filings[i] for i in self._first]
        settings, now = self.intake.settings, self.now
        self._hashes = [f.report.payload_hash() for f in filings]  # as sent: with the address
        geocoded: dict[int, dict[str, Any]] = {}
        for j, filing in enumerate(filings):  # an address only: geocoded first (接诉即办)
            if not filing.report.placed:
                report, geocoded[j] = self.intake.locate(filing.report)
                filings[j] = replace(filing, report=report)
        self._conn = conn = self._connection.enter_context(autocommit(self.intake.engine))
        placed: list[tuple[int, float, float]] = []
        unlocated = []
        for j, filing in enumerate(filings):
            report = filing.report
            if report.lon is None or report.lat is None:
                unlocated.append(j)
                continue
            try:
                placed.append((j, *to_wgs84(report.lon, report.lat, report.crs)))
            except GridcoreError as exc:
                self._set(j, self._unplaced(j, exc))
        if unlocated:
            self._file_unlocated(conn, filings, unlocated, geocoded)
        resolver = self.intake.resolver
        versions, around = survey_many(
            conn, resolver, [(lon, lat, filings[j].report.category) for j, lon, lat in placed],
            now, timedelta(hours=settings.dedup_window_h))
        self._pending = pending = unwritten(self.intake.engine)
        for (j, lon, lat), surroundings in zip(placed, around, strict=True):
            report = filings[j].report
            assert report.lon is not None and report.lat is not None  # placed
            try:
                res = require_inside(resolver.resolve(
                    report.lon, report.lat, report.crs, report.category, conn=conn,
                    versions=versions, part=surroundings.part), report)
            except GridcoreError as exc:
                self._set(j, self._unplaced(j, exc))
                continue
            radius = default_taxonomy().get(report.category).dedup_radius_m
            nearby = surroundings.nearby + pending.around(
                lon, lat, radius, degree_box(lat, radius),
                {r["id"] for r in surroundings.nearby})
            try:
                record, clock = self._record(filings[j], self._hashes[j], res, nearby,
                                             surroundings.case_id, geocoded.get(j))
            except Exception as exc:  # noqa: BLE001  (its photo could not be stored: its own error)
                self._set(j, exc)
                continue
            self._worked.append((j, record, clock))
            pending.add({"id": record["id"], "category_key": report.category,
                         "description": report.description, "part_code": record["part"],
                         "at": now.timestamp(), "lon": lon, "lat": lat})

    def _file_unlocated(self, conn: Connection, filings: list[Filing], which: list[int],
                        geocoded: dict[int, dict[str, Any]]) -> None:
        """Reports whose address could not be placed surely enough: filed without a grid (the
        待定位 queue), under ids reserved like the others'."""
        ids = [int(r[0]) for r in conn.execute(text(
            "SELECT nextval('case_record_id_seq') FROM generate_series(1, :n)"),
            {"n": len(which)})]
        limit = None
        for j, case_id in zip(which, ids, strict=True):
            filing = filings[j]
            report, settings = filing.report, self.intake.settings
            limit = default_taxonomy().limit(report.category, Stage.DISPATCH)
            warn, deadline, clock = settings.working_calendar.new_clock(self.now, limit)
            info = geocoded.get(j, {})
            try:
                attachments, photos = self._photos(report)
            except Exception as exc:  # noqa: BLE001  (its photo could not be stored)
                self._set(j, exc)
                continue
            record = {
                "id": case_id, "key": report.idempotency_key, "hash": self._hashes[j],
                "category": report.category, "description": report.description,
                "lon": None, "lat": None, "crs": report.crs, "x": None, "y": None,
                "grid_id": None, "grid_code": None, "community": None, "street": None,
                "district": None, "h3": None, "part": None, "source": report.source,
                "reporter": report.reporter, "filed_by": filing.user, "proposed": None,
                "rule": "not placed yet: waiting for a dispatcher to locate it (待定位)",
                "now": self.now, "lim": str(limit), "warn": warn, "deadline": deadline,
                "location_source": "unlocated", "address": report.address,
                "category_source": report.category_source,
                "intake": {"resolution": None, "duplicates": [], "geocoding": info},
                "actor": filing.filed_by, "role": filing.role, "caller": filing.caller,
                "attachments": attachments,
                "photos": photos,
                "details": {"source": report.source, "address": report.address,
                            "location_source": "unlocated",
                            "geocoding": info.get("reason")},
                "audit": {"role": filing.role, "source": report.source,
                          "category": report.category, "grid": None, "unlocated": True}}
            self._worked.append((j, record, clock))

    def _photos(self, report: Report) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        media = self.intake.settings.media_dir
        attachments = [{"path": store_photo(p, media), "sha256": p.sha256}
                       for p in report.photos]
        photos = [{"path": a["path"], "sha256": p.sha256, "content_type": p.content_type,
                   "size_bytes": len(p.data)}
                  for a, p in zip(attachments, report.photos, strict=True)]
        return attachments, photos

    def write(self) -> list[Outcome]:
        """The one write; then the resends of a key seen earlier in the group, and the audit
        sealer. Every filing has its outcome afterwards."""
        try:
            if self._conn is not None:
                try:
                    stored = write_cases(self._conn, [record for _, record, _ in self._worked])
                finally:  # committed (or failed): the database shows them now, or never will
                    self._discard()
                for (j, record, clock), row in zip(self._worked, stored, strict=True):
                    if isinstance(row, Exception):
                        self._set(j, row)
                    elif row is None:  # a racing resend committed first: its row is the answer
                        self._set(j, self._resend(j))
                    else:
                        self._set(j, IntakeResult(case_dict(
                            {**row, "intake": record["intake"]},
                            self.intake.settings.working_calendar, self.now, clock=clock),
                            created=True))
        finally:
            self.close()
        if self._repeats:
            again = self.intake.file([self.filings[i] for i in self._repeats], self.now)
            for i, outcome in zip(self._repeats, again, strict=True):
                self.outcomes[i] = outcome
        if any(isinstance(o, IntakeResult) and o.created for o in self.outcomes):
            audit.ensure_sealer(self.intake.engine)
        return cast(list[Outcome], self.outcomes)

    def close(self) -> None:
        """Take this group's cases off the unwritten list and give the connection back."""
        self._discard()
        self._conn = None
        self._connection.close()

    def _discard(self) -> None:
        if self._pending is not None:
            self._pending.discard(record["id"] for _, record, _ in self._worked)
            self._pending = None

    # -- one filing (j: its place among the group's first filings) ------------------------------
    def _set(self, j: int, outcome: Outcome) -> None:
        self.outcomes[self._first[j]] = outcome

    def _resend(self, j: int) -> Outcome:
        assert self._conn is not None
        filing = self.filings[self._first[j]]
        report = filing.report
        row = fetch_case(self._conn, key=report.idempotency_key)
        if row["caller"] != filing.caller:
            # Another caller's key (or a key stored before callers were recorded): the case
            # is not this caller's to see — not even its number.
            return Conflict(f"idempotency key {report.idempotency_key!r} is already taken; "
                            "generate a new key for a new report", field="idempotency_key")
        if row["payload_hash"].strip() != self._hashes[j]:
            return Conflict(f"idempotency key {row['idempotency_key']!r} was already used for "
                            f"case {row['public_no']} with a different payload; use a new key "
                            "for a new report", field="idempotency_key", case_id=row["id"],
                            public_no=row["public_no"])
        return IntakeResult(case_dict(row, self.intake.settings.working_calendar, self.now),
                            created=False)

    def _unplaced(self, j: int, error: GridcoreError) -> Outcome:
        """A report that cannot be placed is an error, unless it resends a stored case (the
        key is only looked up on this path: the insert settles resends on the common one)."""
        assert self._conn is not None
        report = self.filings[self._first[j]].report
        if fetch_case(self._conn, key=report.idempotency_key) is None:
            return error
        return self._resend(j)

    def _record(self, filing: Filing, payload_hash: str, res: Resolution, nearby: list[Any],
                case_id: int, geocoded: dict[str, Any] | None = None
                ) -> tuple[dict[str, Any], Clock]:
        """The report's record for :func:`layers.cases.write.write_cases` (its case to be
        stored under the reserved ``case_id``), and its new clock."""
        report, settings, now = filing.report, self.intake.settings, self.now
        assert res.grid is not None
        part = res.linked_part.code if res.linked_part else None
        limit = default_taxonomy().limit(report.category, Stage.DISPATCH)
        warn, deadline, clock = settings.working_calendar.new_clock(now, limit)
        proposal = res.responsible
        duplicates = duplicate_candidates(report, part, nearby, now,
                                          timedelta(hours=settings.dedup_window_h))
        resolution = res.as_dict()
        attachments, photos = self._photos(report)
        intake: dict[str, Any] = {"resolution": resolution, "duplicates": duplicates,
                                  **({"fix": report.fix.as_dict()} if report.fix else {})}
        if geocoded is not None:  # said, not silent: where the point came from
            intake["geocoding"] = geocoded
        return {
            "id": case_id, "key": report.idempotency_key, "hash": payload_hash,
            "category": report.category, "description": report.description, "lon": res.lon,
            "lat": res.lat,
            "crs": report.crs, "x": report.lon, "y": report.lat, "grid_id": res.grid.grid_id,
            "grid_code": res.grid.grid_code,
            "community": res.community.code if res.community else None,
            "street": res.street.code if res.street else None,
            "district": res.district.code if res.district else None, "h3": res.h3,
            "part": part, "source": report.source, "reporter": report.reporter,
            "filed_by": filing.user,
            "proposed": proposal.department_code if proposal else None,
            "rule": proposal.rule if proposal else "no resolution of responsibility",
            "now": now, "lim": str(limit), "warn": warn, "deadline": deadline,
            "location_source": "geocoded" if geocoded is not None else "point",
            "address": report.address or None, "intake": intake,
            "actor": filing.filed_by, "role": filing.role, "caller": filing.caller,
            "attachments": attachments, "photos": photos,
            "category_source": report.category_source,
            "details": {"source": report.source, "proposal": resolution.get("responsible"),
                        "duplicates": len(duplicates)},
            "audit": {"role": filing.role, "source": report.source,
                      "category": report.category, "grid": res.grid.grid_code}}, clock
