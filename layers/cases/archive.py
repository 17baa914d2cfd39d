"""Archive (归档) whole years of settled cases to a file, and bring them back.

``archive(engine, before, path)`` takes every time partition of ``case_record`` that ends on or
before ``before`` (years: ``layers.db.partitions``), with every row that depends on its cases
(history, photos' records, appeals, tasks… — found through the foreign keys to the case
registry ``case_key``, so a table added later is archived without being named here), writes
them to one file, and then — in the same transaction — deletes the dependants, detaches and
drops the partitions, and removes the cases from the registry. The file is written and read
back (row counts, checksums) before anything is deleted; a failure at any point rolls the
database back, and a file not completed is removed.

Refused, saying which partition and why: a ``before`` that cuts a partition (archive whole
years), a partition holding open cases, a newer case merged into an archived one.

The file (``.gcarchive``) is a POSIX tar of ``manifest.json`` (format, schema revision, the
partitions with their ranges, per table its columns, row count and SHA-256) and one
``<table>.csv.gz`` per table: PostgreSQL's ``COPY … (FORMAT csv, HEADER)``, geometries as
hex EWKB, gzip-compressed. Any tool can read it; :func:`restore` loads it back in one
transaction (``gridcore db restore FILE``).

Photo files in the media directory stay where they are: the archive holds their records.
The health day aggregates of the archived days are dropped with them (they are counted from
the cases and would no longer equal a recount); a restore marks those days for recounting.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text

from gridcore.errors import Conflict, ValidationError
from layers.db.partitions import DEFAULT, Partition, ensure_years, partitioned, partitions
from layers.health import runs
from layers.security import audit

FORMAT = "gridcore-case-archive"
VERSION = 1
OPEN_STATES = "('closed', 'voided', 'merged')"


@dataclass
class ArchiveReport:
    path: Path
    partitions: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "partitions": self.partitions, "rows": self.rows,
                "bytes": self.bytes}


@dataclass(frozen=True)
class _Dependant:
    table: str
    column: str       # its foreign-key column
    parent: str       # the table it references (case_key or another dependant)
    parent_column: str


def dependants(conn: Connection) -> list[_Dependant]:
    """Every table whose rows hang on a case (through ``case_key`` or another such table),
    parents before children."""
    edges = conn.execute(text("""
        SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, r.attname
        FROM pg_constraint c
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
        JOIN pg_attribute r ON r.attrelid = c.confrelid AND r.attnum = c.confkey[1]
        WHERE c.contype = 'f' AND c.conparentid = 0 AND cardinality(c.conkey) = 1
          AND c.conrelid::regclass::text <> 'case_record'
        ORDER BY 1, 2""")).all()
    found: dict[str, _Dependant] = {}
    reached = {"case_key"}
    changed = True
    while changed:
        changed = False
        for table, column, parent, parent_column in edges:
            if parent in reached and table not in found and table != parent:
                found[table] = _Dependant(table, column, parent, parent_column)
                reached.add(table)
                changed = True
    # a table reached through the registry directly is selected by its case: prefer that edge
    for table, column, parent, parent_column in edges:
        if parent == "case_key" and table in found:
            found[table] = _Dependant(table, column, parent, parent_column)
    refs = {t: {p for (tt, _, p, _) in edges if tt == t and p in found} for t in found}
    ordered: list[_Dependant] = []
    while len(ordered) < len(found):
        done = {d.table for d in ordered}
        ready = sorted(t for t in found if t not in done and refs[t] <= done)
        if not ready:  # a cycle between dependants: keep the discovery order
            ready = [t for t in found if t not in done]
        ordered += [found[t] for t in ready]
    return ordered


def _selection(dep: _Dependant, deps: dict[str, _Dependant]) -> str:
    """SELECT of ``dep``'s rows that hang on the archived cases (temp table ``archived_case``)."""
    if dep.parent == "case_key":
        return (f"SELECT * FROM {dep.table} WHERE {dep.column} IN "
                f"(SELECT id FROM archived_case)")
    inner = _selection(deps[dep.parent], deps).replace("SELECT *", f"SELECT {dep.parent_column}",
                                                        1)
    return f"SELECT * FROM {dep.table} WHERE {dep.column} IN ({inner})"


def _columns(conn: Connection, table: str) -> list[str]:
    return list(conn.execute(text(
        "SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 "
        "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum"), {"t": table}).scalars())


def _chosen(conn: Connection, before: date) -> list[Partition]:
    cut = datetime(before.year, before.month, before.day, tzinfo=UTC)
    # rows waiting in the default partition get their years' partitions first
    lo, hi = conn.execute(text(f"SELECT min(created_at), max(created_at) FROM {DEFAULT} "
                               "WHERE created_at < :c"), {"c": cut}).one()
    if lo is not None:
        ensure_years(conn, lo, hi)
    chosen = []
    for p in partitions(conn):
        if p.start is None or p.end is None:
            continue
        if p.start < cut < p.end:
            raise ValidationError(
                f"{before.isoformat()} cuts partition {p.name} ({p.start.date().isoformat()} … "
                f"{p.end.date().isoformat()}): cases are archived by whole partitions; use "
                f"--before {p.start.date().isoformat()} or {p.end.date().isoformat()}",
                field="before", partition=p.name)
        if p.end <= cut:
            chosen.append(p)
    return chosen


def _refuse_open(conn: Connection, chosen: list[Partition]) -> None:
    for p in chosen:
        n, first = conn.execute(text(
            f"SELECT count(*), min(public_no) FROM {p.name} WHERE state NOT IN {OPEN_STATES}"
        )).one()
        if n:
            raise Conflict(f"partition {p.name} holds {n} open case(s) (first {first}): only "
                           "settled cases (closed, voided, merged) are archived; settle them "
                           "first", partition=p.name, open_cases=int(n))
    merged = conn.execute(text(
        "SELECT c.public_no, p.public_no FROM case_record c JOIN case_record p "
        "ON p.id = c.primary_case_id WHERE p.id IN (SELECT id FROM archived_case) "
        "AND c.id NOT IN (SELECT id FROM archived_case) LIMIT 1")).first()
    if merged:
        raise Conflict(f"case {merged[0]} (kept) was merged into {merged[1]} (to be archived): "
                       "archive the later years too, or none", case=merged[0])


def _copy_out(conn: Connection, sql: str) -> tuple[bytes, int]:
    raw: Any = conn.connection.dbapi_connection
    buf = io.BytesIO()
    with raw.cursor() as cur:
        cur.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)", buf)
        rows = cur.rowcount
    return buf.getvalue(), int(rows)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))


def _revision(conn: Connection) -> str:
    return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


def archive(engine: Engine, before: date, path: Path, actor: str = "cli") -> ArchiveReport:
    """Archive every partition wholly before ``before`` to ``path`` (see the module)."""
    path = Path(path)
    if path.exists():
        raise ValidationError(f"{path} exists: an archive never overwrites a file",
                              field="path")
    report = ArchiveReport(path)
    partial = path.with_name(path.name + ".partial")
    try:
        with engine.begin() as conn:
            if not partitioned(conn):
                raise ValidationError("case_record is not partitioned (migrate the database)")
            conn.execute(text("SET LOCAL statement_timeout = 0"))
            chosen = _chosen(conn, before)
            if not chosen:
                return report
            for p in chosen:  # no write to these years while they are archived
                conn.execute(text(f"LOCK TABLE {p.name} IN EXCLUSIVE MODE"))
            conn.execute(text("CREATE TEMP TABLE archived_case ON COMMIT DROP AS " + " UNION ALL "
                              .join(f"SELECT id FROM {p.name}" for p in chosen)))
            conn.execute(text("CREATE UNIQUE INDEX ON archived_case (id)"))
            conn.execute(text("ANALYZE archived_case"))
            _refuse_open(conn, chosen)
            deps = dependants(conn)
            by_name = {d.table: d for d in deps}
            tables = [("case_record", " UNION ALL ".join(
                f"SELECT {', '.join(_columns(conn, 'case_record'))} FROM {p.name}"
                for p in chosen))]
            tables += [(d.table, _selection(d, by_name)) for d in deps]
            manifest: dict[str, Any] = {
                "format": FORMAT, "version": VERSION, "revision": _revision(conn),
                "before": before.isoformat(), "created_at": datetime.now(UTC).isoformat(),
                "partitions": [{"name": p.name, "from": p.start.isoformat() if p.start else None,
                                "to": p.end.isoformat() if p.end else None} for p in chosen],
                "tables": []}
            with tarfile.open(partial, "w") as tar:
                for table, sql in tables:
                    data, rows = _copy_out(conn, sql)
                    packed = gzip.compress(data, 6)
                    _add(tar, f"{table}.csv.gz", packed)
                    manifest["tables"].append({
                        "name": table, "file": f"{table}.csv.gz", "rows": rows,
                        "columns": data.split(b"\n", 1)[0].decode().split(","),
                        "sha256": hashlib.sha256(packed).hexdigest()})
                    report.rows[table] = rows
                _add(tar, "manifest.json", json.dumps(manifest, indent=1).encode())
            _verify(partial)  # read back before anything is deleted
            digest = _sha256(partial)
            _drop(conn, chosen, deps, before)
            conn.execute(text(
                "INSERT INTO case_archive (partition, range_from, range_to, cases, rows, file, "
                "sha256, archived_by) VALUES (:p, :f, :t, :n, CAST(:r AS jsonb), :file, :h, :a)"),
                {"p": ",".join(p.name for p in chosen), "f": chosen[0].start,
                 "t": chosen[-1].end, "n": report.rows["case_record"],
                 "r": json.dumps(report.rows), "file": str(path.resolve()), "h": digest,
                 "a": actor})
            audit.record(conn, actor, "case.archive", f"cases<{before.isoformat()}",
                         {"file": str(path.resolve()), "sha256": digest,
                          "partitions": [p.name for p in chosen], "rows": report.rows})
            partial.rename(path)
            report.partitions = [p.name for p in chosen]
    finally:
        partial.unlink(missing_ok=True)
    report.bytes = path.stat().st_size if path.exists() else 0
    return report


def _drop(conn: Connection, chosen: list[Partition], deps: list[_Dependant],
          before: date) -> None:
    by_name = {d.table: d for d in deps}
    for dep in reversed(deps):  # children before the rows they reference
        # history is append-only (a trigger refuses DELETE): archiving is the one removal,
        # by the owner, with the table's own triggers off for this transaction only
        conn.execute(text(f"ALTER TABLE {dep.table} DISABLE TRIGGER USER"))
        conn.execute(text(f"DELETE FROM {dep.table} WHERE ctid IN (SELECT ctid FROM ("
                          f"{_selection(dep, by_name).replace('SELECT *', 'SELECT ctid', 1)}"
                          ") s)"))
        conn.execute(text(f"ALTER TABLE {dep.table} ENABLE TRIGGER USER"))
    if conn.execute(text("SELECT to_regclass('case_cell') IS NOT NULL")).scalar_one():
        # dropping a partition fires no trigger: the case tiles' settled counts per cell lose
        # the archived cases here (a restore inserts them, and the trigger adds them back)
        for p in chosen:
            conn.execute(text(
                "INSERT INTO case_cell (res, cell, settled) SELECT l.res, "
                f"gridcore_h3_cell(c.h3, l.res), -count(*) FROM {p.name} c "
                "CROSS JOIN (VALUES (8), (10)) l(res) WHERE c.h3 ~* '^[0-9a-f]{15,16}$' "
                "AND c.state IN ('closed', 'voided', 'merged') GROUP BY 1, 2"))
    for p in chosen:
        conn.execute(text(f"ALTER TABLE case_record DETACH PARTITION {p.name}"))
        conn.execute(text(f"DROP TABLE {p.name}"))
    conn.execute(text("DELETE FROM case_key WHERE id IN (SELECT id FROM archived_case)"))
    if conn.execute(text("SELECT to_regclass('health_day') IS NOT NULL")).scalar_one():
        conn.execute(text("DELETE FROM health_day WHERE day < :d"), {"d": before})
        if conn.execute(text("SELECT to_regclass('health_open') IS NOT NULL")).scalar_one():
            conn.execute(text("DELETE FROM health_open WHERE case_id IN "
                              "(SELECT id FROM archived_case)"))
        if conn.execute(text("SELECT to_regclass('health_run') IS NOT NULL")).scalar_one():
            runs.rebuild_on(conn)  # the running totals lose the archived days' rows too
    # dropping a partition fires no trigger: the cases' tiles and caches are told here
    conn.execute(text("UPDATE layer_version_shard SET version = version + 1, changed_at = "
                      "now() WHERE layer = 'cases' AND shard = 0"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _members(path: Path) -> Iterator[tuple[dict[str, Any], dict[str, Any], bytes]]:
    """(manifest, table entry, its CSV) for every table of the archive, in load order."""
    try:
        tar = tarfile.open(path, "r")  # noqa: SIM115 - closed by the with below
    except (tarfile.TarError, OSError) as exc:
        raise ValidationError(f"{path} is not a case archive: {exc}", field="file") from None
    with tar:
        try:
            manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        except (KeyError, ValueError) as exc:
            raise ValidationError(f"{path} is not a case archive (manifest.json: {exc})",
                                  field="file") from None
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise ValidationError(f"{path}: unknown archive format {manifest.get('format')!r} "
                                  f"version {manifest.get('version')!r}", field="file")
        for entry in manifest["tables"]:
            member = tar.extractfile(entry["file"])
            if member is None:
                raise ValidationError(f"{path}: {entry['file']} is missing", field="file")
            packed = member.read()
            if hashlib.sha256(packed).hexdigest() != entry["sha256"]:
                raise ValidationError(f"{path}: {entry['file']} does not match its checksum "
                                      "(damaged file)", field="file")
            yield manifest, entry, gzip.decompress(packed)


def is_archive(path: Path) -> bool:
    try:
        with tarfile.open(path, "r") as tar:
            return "manifest.json" in tar.getnames()
    except (tarfile.TarError, OSError):
        return False


def _verify(path: Path) -> None:
    for _, entry, data in _members(path):
        lines = data.count(b"\n") - 1  # the header (rows with newlines inside are quoted)
        if lines < entry["rows"]:
            raise ValidationError(f"{path}: {entry['name']} holds fewer rows than written")


def restore(engine: Engine, path: Path, actor: str = "cli") -> dict[str, int]:
    """Load an archive back (one transaction): its years' partitions made again and attached,
    its cases and their dependants inserted with their ids. Refused, with nothing changed,
    when a partition of the archive already holds cases or a row collides with a stored one."""
    path = Path(path)
    rows: dict[str, int] = {}
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL statement_timeout = 0"))
        raw: Any = conn.connection.dbapi_connection
        for manifest, entry, data in _members(path):
            if entry["name"] == "case_record":
                _make_partitions(conn, manifest)
            table = entry["name"]
            if conn.execute(text("SELECT to_regclass(:t)"), {"t": table}).scalar() is None:
                raise ValidationError(f"{path}: table {table} no longer exists; restore with the "
                                      f"schema of revision {manifest['revision']}", field="file")
            missing = set(entry["columns"]) - set(_columns(conn, table))
            if missing:
                raise ValidationError(f"{path}: {table} has no column(s) {sorted(missing)} "
                                      "any more", field="file")
            columns = ", ".join(entry["columns"])
            into = table
            if table == "case_record":
                # through a staging table: the registry rows first, so that a case merged into
                # another of the same archive finds its primary case's key (the statement
                # trigger would write them only after the rows' foreign-key checks)
                into = "stage_case"
                conn.execute(text("CREATE TEMP TABLE stage_case ON COMMIT DROP AS "
                                  f"SELECT {columns} FROM case_record WITH NO DATA"))
            with raw.cursor() as cur:
                cur.copy_expert(f"COPY {into} ({columns}) FROM STDIN WITH (FORMAT csv, HEADER)",
                                io.BytesIO(data))
                rows[table] = int(cur.rowcount)
            if table == "case_record":
                conn.execute(text(
                    "INSERT INTO case_key (id, created_at, idempotency_key, source_system, "
                    "source_id, district_code) SELECT id, created_at, idempotency_key, "
                    "source_system, source_id, district_code FROM stage_case ORDER BY id"))
                conn.execute(text(f"INSERT INTO case_record ({columns}) "
                                  f"SELECT {columns} FROM stage_case"))
            if rows[table] != entry["rows"]:
                raise ValidationError(f"{path}: {table} loaded {rows[table]} rows, the manifest "
                                      f"says {entry['rows']}", field="file")
        conn.execute(text("UPDATE case_archive SET restored_at = now(), restored_by = :a "
                          "WHERE sha256 = :h AND restored_at IS NULL"),
                     {"a": actor, "h": _sha256(path)})
        audit.record(conn, actor, "case.restore", f"archive:{path.name}",
                     {"file": str(path.resolve()), "rows": rows})
    return rows


def _make_partitions(conn: Connection, manifest: dict[str, Any]) -> None:
    for p in manifest["partitions"]:
        year = datetime.fromisoformat(p["from"]).astimezone(UTC).year
        name = conn.execute(text("SELECT gridcore_case_partition(:y)"), {"y": year}).scalar_one()
        held = conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
        if held:
            raise Conflict(f"partition {name} already holds {held} case(s): the archive's "
                           f"cases of {year} would mix with them; nothing restored",
                           partition=name)
