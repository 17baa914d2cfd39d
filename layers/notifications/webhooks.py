"""Outgoing webhooks (事件推送): the same domain events the pages get, as signed JSON to a
city's own systems or to 企业微信 / 钉钉 group robots, retried with back-off, every attempt
logged.

- **Fan-out**: events not yet looked at (``case_event.fanned_out``) are claimed with ``FOR
  UPDATE SKIP LOCKED`` (any number of server processes, no event twice, none lost: an event
  committed late is simply claimed by a later round), matched against each active webhook's
  kinds × areas × classes (:class:`gridcore.events.Subscription`) and become deliveries.
- **Delivery**: due deliveries are leased (``next_at`` moved past the request's timeout, so a
  process that dies mid-request hands them back), posted, and their outcome logged; a failure
  is retried after ``backoff_s``, then twice as long each time (at most ``backoff_max_s``), and
  gives up after ``max_attempts``.
- **Signing** (format ``json``): ``X-Gridcore-Signature: sha256=<hex HMAC-SHA256 of
  "<X-Gridcore-Timestamp>.<body>" with the webhook's secret>``; a receiver recomputes it and
  rejects old timestamps (replay). 钉钉 robots get their own signature (``timestamp`` and
  ``sign`` query parameters); 企业微信 robots are keyed by their URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from gridcore.errors import Conflict, NotFound, ValidationError
from gridcore.events import CaseEvent, Subscription
from gridcore.settings import NotifySettings
from layers.notifications import outbox

FORMATS = ("json", "wecom", "dingtalk")
TextOf = Callable[[CaseEvent], str]


@dataclass(frozen=True)
class Webhook:
    id: int
    name: str
    url: str
    format: str
    subscription: Subscription
    active: bool
    secret: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Without the secret: it is shown once, when the webhook is made."""
        return {"id": self.id, "name": self.name, "url": _redacted(self.url),
                "format": self.format, **self.subscription.as_dict(), "active": self.active}


def _redacted(url: str) -> str:
    """A robot's URL carries its key (``?key=…``, ``?access_token=…``): never listed whole."""
    parts = urllib.parse.urlsplit(url)
    if not parts.query:
        return url
    query = "&".join(f"{k}=…" for k, _ in urllib.parse.parse_qsl(parts.query))
    return urllib.parse.urlunsplit(parts._replace(query=query))


def _of(row: Any) -> Webhook:
    return Webhook(row["id"], row["name"], row["url"], row["format"],
                   Subscription.of(row["kinds"], row["areas"], row["categories"]),
                   row["active"], row["secret"])


def _check(name: str, url: str, fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValidationError(f"format {fmt!r} must be one of {', '.join(FORMATS)}",
                              field="format", value=fmt)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"url {url!r} must be an http(s) URL", field="url", value=url)
    if not name or len(name) > 64 or not all(c.isalnum() or c in "_.-" for c in name):
        raise ValidationError(f"name {name!r}: 1–64 letters, digits, '_', '.', '-'",
                              field="name", value=name)


def add(engine: Engine, name: str, url: str, fmt: str = "json", kinds: Iterable[str] = (),
        areas: Iterable[str] = (), categories: Iterable[str] = (), secret: str | None = None
        ) -> tuple[Webhook, str]:
    """A new webhook and its signing secret (generated unless given, e.g. a 钉钉 SEC… key)."""
    _check(name, url, fmt)
    sub = Subscription.of(kinds, areas, categories)
    secret = secret or secrets.token_urlsafe(32)
    try:
        with engine.begin() as conn:
            row = conn.execute(text(
                "INSERT INTO webhook (name, url, secret, format, kinds, areas, categories) "
                "VALUES (:n, :u, :s, :f, :k, :a, :c) RETURNING *"),
                {"n": name, "u": url, "s": secret, "f": fmt,
                 "k": sorted(k.value for k in sub.kinds), "a": list(sub.areas),
                 "c": list(sub.categories)}).mappings().one()
    except IntegrityError:
        raise Conflict(f"a webhook named {name!r} exists already", field="name",
                       value=name) from None
    return _of(row), secret


def list_webhooks(engine: Engine) -> list[Webhook]:
    with engine.connect() as conn:
        return [_of(r) for r in conn.execute(text("SELECT * FROM webhook ORDER BY id"))
                .mappings()]


def get(engine: Engine, ref: int | str) -> Webhook:
    """A webhook by id or name."""
    column = "id" if isinstance(ref, int) or str(ref).isdigit() else "name"
    with engine.connect() as conn:
        row = conn.execute(text(f"SELECT * FROM webhook WHERE {column} = :r"),
                           {"r": int(ref) if column == "id" else ref}).mappings().first()
    if row is None:
        raise NotFound(f"no webhook {ref!r}", webhook=str(ref))
    return _of(row)


def update(engine: Engine, ref: int | str, *, active: bool | None = None,
           url: str | None = None, kinds: Iterable[str] | None = None,
           areas: Iterable[str] | None = None, categories: Iterable[str] | None = None
           ) -> Webhook:
    hook = get(engine, ref)
    if url is not None:
        _check(hook.name, url, hook.format)
    sub = Subscription.of(kinds if kinds is not None else hook.subscription.kinds,
                          areas if areas is not None else hook.subscription.areas,
                          categories if categories is not None
                          else hook.subscription.categories)
    with engine.begin() as conn:
        row = conn.execute(text(
            "UPDATE webhook SET url = :u, active = :act, kinds = :k, areas = :a, "
            "categories = :c, updated_at = now() WHERE id = :i RETURNING *"),
            {"u": url or hook.url, "act": hook.active if active is None else active,
             "k": sorted(k.value for k in sub.kinds), "a": list(sub.areas),
             "c": list(sub.categories), "i": hook.id}).mappings().one()
    return _of(row)


def remove(engine: Engine, ref: int | str) -> None:
    hook = get(engine, ref)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM webhook WHERE id = :i"), {"i": hook.id})


def deliveries(engine: Engine, ref: int | str, limit: int = 100) -> list[dict[str, Any]]:
    """The delivery log of a webhook, newest first, with every attempt."""
    hook = get(engine, ref)
    with engine.connect() as conn:
        rows = list(conn.execute(text(
            "SELECT d.*, e.kind, e.case_id FROM webhook_delivery d "
            "JOIN case_event e ON e.id = d.event_id WHERE d.webhook_id = :i "
            "ORDER BY d.id DESC LIMIT :n"), {"i": hook.id, "n": limit}).mappings())
        attempts: dict[int, list[dict[str, Any]]] = {}
        for a in conn.execute(text(
                "SELECT * FROM webhook_attempt WHERE delivery_id = ANY(:d) ORDER BY id"),
                {"d": [r["id"] for r in rows]}).mappings():
            attempts.setdefault(a["delivery_id"], []).append({
                "at": a["at"].isoformat(), "status": a["status"], "error": a["error"],
                "duration_ms": a["duration_ms"]})
    return [{"id": r["id"], "event_id": r["event_id"], "kind": r["kind"],
             "case_id": r["case_id"], "state": r["state"], "attempts": r["attempts"],
             "next_at": r["next_at"].isoformat() if r["state"] == "pending" else None,
             "last_status": r["last_status"], "last_error": r["last_error"],
             "delivered_at": r["delivered_at"].isoformat() if r["delivered_at"] else None,
             "log": attempts.get(r["id"], [])} for r in rows]


def retry(engine: Engine, delivery_id: int) -> None:
    """Send a failed (or pending) delivery again now, with a fresh round of attempts."""
    with engine.begin() as conn:
        found = conn.execute(text(
            "UPDATE webhook_delivery SET state = 'pending', attempts = 0, next_at = now() "
            "WHERE id = :i RETURNING id"), {"i": delivery_id}).first()
    if found is None:
        raise NotFound(f"no webhook delivery {delivery_id}", delivery_id=delivery_id)


# -- fan-out ---------------------------------------------------------------------------------

def fan_out(engine: Engine, batch: int = 500) -> int:
    """Turn events not yet looked at into deliveries; returns how many events were claimed."""
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(text(
            "SELECT id FROM case_event WHERE NOT fanned_out ORDER BY id LIMIT :n "
            "FOR UPDATE SKIP LOCKED"), {"n": batch})]
        if not ids:
            return 0
        hooks = [_of(r) for r in conn.execute(text(
            "SELECT * FROM webhook WHERE active")).mappings()]
        if hooks:
            pairs = [(h.id, e.id) for e in outbox.fetch(conn, ids) for h in hooks
                     if h.subscription.matches(e)]
            if pairs:
                conn.execute(text(
                    "INSERT INTO webhook_delivery (webhook_id, event_id) "
                    "SELECT * FROM unnest(CAST(:h AS bigint[]), CAST(:e AS bigint[])) "
                    "ON CONFLICT DO NOTHING"),
                    {"h": [p[0] for p in pairs], "e": [p[1] for p in pairs]})
        conn.execute(text("UPDATE case_event SET fanned_out = true WHERE id = ANY(:i)"),
                     {"i": ids})
        return len(ids)


# -- delivery -------------------------------------------------------------------------------

def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def dingtalk_url(url: str, secret: str, millis: int) -> str:
    """钉钉's signed robot URL: HMAC-SHA256 of "<ms>\\n<secret>", base64, URL-encoded."""
    mac = hmac.new(secret.encode(), f"{millis}\n{secret}".encode(), hashlib.sha256).digest()
    sign_ = urllib.parse.quote_plus(base64.b64encode(mac))
    return f"{url}{'&' if '?' in url else '?'}timestamp={millis}&sign={sign_}"


def request_for(hook: Webhook, event: CaseEvent, delivery_id: int, text_: str,
                now: float) -> tuple[str, bytes, dict[str, str]]:
    """The URL, body and headers one delivery posts."""
    if hook.format == "json":
        body = orjson.dumps({"delivery": delivery_id, "event": event.as_dict(), "text": text_})
    else:
        body = orjson.dumps({"msgtype": "text", "text": {"content": text_}})
    stamp = str(int(now))
    headers = {"Content-Type": "application/json; charset=utf-8",
               "User-Agent": "gridcore-webhooks", "X-Gridcore-Event": event.kind.value,
               "X-Gridcore-Delivery": str(delivery_id), "X-Gridcore-Timestamp": stamp,
               "X-Gridcore-Signature": sign(hook.secret, stamp, body)}
    url = dingtalk_url(hook.url, hook.secret, int(now * 1000)) \
        if hook.format == "dingtalk" else hook.url
    return url, body, headers


def _claim(engine: Engine, lease: timedelta, batch: int) -> list[tuple[int, int, Webhook,
                                                                        CaseEvent]]:
    with engine.begin() as conn:
        rows = list(conn.execute(text(
            "UPDATE webhook_delivery d SET next_at = now() + :lease WHERE d.id IN ("
            "  SELECT id FROM webhook_delivery WHERE state = 'pending' AND next_at <= now() "
            "  ORDER BY next_at LIMIT :n FOR UPDATE SKIP LOCKED) "
            "RETURNING d.id, d.webhook_id, d.event_id, d.attempts"),
            {"lease": lease, "n": batch}).mappings())
        if not rows:
            return []
        hooks = {r["id"]: _of(r) for r in conn.execute(text(
            "SELECT * FROM webhook WHERE id = ANY(:i)"),
            {"i": list({r["webhook_id"] for r in rows})}).mappings()}
        events = {e.id: e for e in outbox.fetch(conn, [r["event_id"] for r in rows])}
    return [(r["id"], r["attempts"], hooks[r["webhook_id"]], events[r["event_id"]])
            for r in rows if r["webhook_id"] in hooks and r["event_id"] in events]


def _outcome(response: httpx.Response) -> str:
    """Empty when delivered; else why not. Robots answer 200 with an ``errcode`` on failure."""
    if not 200 <= response.status_code < 300:
        return f"HTTP {response.status_code}"
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and body.get("errcode") not in (None, 0):
        return f"errcode {body.get('errcode')}: {body.get('errmsg', '')}"[:500]
    return ""


def deliver_due(engine: Engine, settings: NotifySettings, text_of: TextOf,
                client: httpx.Client | None = None, batch: int = 50) -> int:
    """Attempt every due delivery once; returns how many were attempted."""
    lease = timedelta(seconds=settings.webhook_timeout_s * 2 + 5)
    claimed = _claim(engine, lease, batch)
    if not claimed:
        return 0
    own = client is None
    http = client or httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False)
    try:
        for delivery_id, attempts, hook, event in claimed:
            url, body, headers = request_for(hook, event, delivery_id, text_of(event),
                                             time.time())
            started = time.monotonic()
            status, error = None, ""
            try:
                response = http.post(url, content=body, headers=headers)
                status, error = response.status_code, _outcome(response)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
            took = int((time.monotonic() - started) * 1000)
            with engine.begin() as conn:
                _record(conn, settings, delivery_id, attempts + 1, status, error, took)
    finally:
        if own:
            http.close()
    return len(claimed)


def backoff(settings: NotifySettings, attempts: int) -> float:
    """Seconds before attempt ``attempts + 1``: base, then doubling, capped."""
    return float(min(settings.webhook_backoff_s * 2 ** (attempts - 1),
                     settings.webhook_backoff_max_s))


def _record(conn: Connection, settings: NotifySettings, delivery_id: int, attempts: int,
            status: int | None, error: str, took_ms: int) -> None:
    now = datetime.now(UTC)
    conn.execute(text(
        "INSERT INTO webhook_attempt (delivery_id, at, status, error, duration_ms) "
        "VALUES (:d, :at, :s, :e, :ms)"),
        {"d": delivery_id, "at": now, "s": status, "e": error, "ms": took_ms})
    if not error:
        state, next_at = "delivered", now
    elif attempts >= settings.webhook_max_attempts:
        state, next_at = "failed", now
    else:
        state, next_at = "pending", now + timedelta(seconds=backoff(settings, attempts))
    conn.execute(text(
        "UPDATE webhook_delivery SET state = :st, attempts = :a, next_at = :n, "
        "last_status = :s, last_error = :e, delivered_at = CASE WHEN :st = 'delivered' "
        "THEN :now END WHERE id = :d"),
        {"st": state, "a": attempts, "n": next_at, "s": status, "e": error, "now": now,
         "d": delivery_id})
