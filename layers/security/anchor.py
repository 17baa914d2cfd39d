"""The audit chain's head, anchored outside the database (审计锚点).

The hash chain (``layers.security.audit``) proves that no sealed row was edited, deleted or
inserted in the middle — but someone who can write the database could truncate the log, cut
its tail, or rewrite rows and compute every hash again from there on: a shorter or a new
chain is consistent with itself. So each new head (position and hash) the sealer makes is
appended, with an HMAC under the service's secret key, to an append-only file outside the
database (``GRIDCORE_AUDIT_ANCHOR_FILE``, by default ``<data dir>/audit-anchor.jsonl``).
``verify`` checks the chain against the newest anchor of its database: the anchored position
must still be there with the anchored hash. ``gridcore audit anchor`` prints that line, to be
kept off the machine (the README says how), and ``gridcore audit verify --anchor LINE`` checks
against such a copy when the file itself cannot be trusted.

One line per anchor, JSON: ``{"database", "pos", "hash", "at", "note", "mac"}``. A database
is named by its name and OID, so a dropped and re-created database starts a new series.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from gridcore.errors import ValidationError

_CONTEXT = b"gridcore audit anchor v1"  # the key is the service's; this use has its own


@dataclass(frozen=True)
class Head:
    database: str
    pos: int
    hash: str


@dataclass(frozen=True)
class Anchor:
    database: str
    pos: int
    hash: str
    at: str
    note: str
    mac: str

    def line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)


def database_identity(conn: Connection) -> str:
    """``name:oid`` of the connected database."""
    return str(conn.execute(text(
        "SELECT datname || ':' || oid FROM pg_database WHERE datname = current_database()"
    )).scalar_one())


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), _CONTEXT, hashlib.sha256).digest()


def _mac(secret: str, database: str, pos: int, hash_: str, at: str, note: str) -> str:
    message = json.dumps([database, pos, hash_, at, note], ensure_ascii=False).encode()
    return hmac.new(_key(secret), message, hashlib.sha256).hexdigest()


def parse(line: str, secret: str) -> Anchor:
    """An anchor line, its signature checked (ValidationError when it does not hold)."""
    try:
        data: dict[str, Any] = json.loads(line)
        anchor = Anchor(str(data["database"]), int(data["pos"]), str(data["hash"]),
                        str(data["at"]), str(data.get("note", "")), str(data["mac"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationError(f"not an audit anchor line: {exc}", field="anchor") from None
    expected = _mac(secret, anchor.database, anchor.pos, anchor.hash, anchor.at, anchor.note)
    if not hmac.compare_digest(expected, anchor.mac):
        raise ValidationError("the anchor's signature does not hold (edited, or signed with "
                              "another GRIDCORE_SECRET_KEY)", field="anchor")
    return anchor


class AnchorFile:
    """The append-only anchor file of one service (every database it serves)."""

    def __init__(self, path: Path, secret: str) -> None:
        self.path, self.secret = Path(path), secret

    def append(self, head: Head, note: str = "") -> Anchor:
        at = datetime.now(UTC).isoformat(timespec="microseconds")
        anchor = Anchor(head.database, head.pos, head.hash, at, note,
                        _mac(self.secret, head.database, head.pos, head.hash, at, note))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # the workers of one service append one at a time
            os.write(fd, (anchor.line() + "\n").encode())
        finally:
            os.close(fd)
        return anchor

    def latest(self, database: str) -> tuple[Anchor | None, list[int]]:
        """The newest anchor of ``database`` and the numbers of its lines whose signature
        does not hold (an edited file)."""
        newest: Anchor | None = None
        forged: list[int] = []
        if not self.path.exists():
            return None, forged
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if f'"{database}"' not in line:
                    continue
                try:
                    anchor = parse(line, self.secret)
                except ValidationError:
                    forged.append(number)
                    continue
                if anchor.database == database:
                    newest = anchor
        return newest, forged
