"""Live events and webhooks on a real server with two worker processes (as ``gridcore serve
--workers 2``): a commit in either process reaches the streams of both (LISTEN/NOTIFY), each
stream sees only what its caller may see, a reconnecting stream replays what it missed, and
webhooks get a signed payload — a failing receiver again, with back-off, until it answers."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from tests.support.cases import INSIDE_001, INSIDE_002
from tests.support.desk_city import plant_desk, report, step, token
from tests.support.live_server import free_port, live_server


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"GRIDCORE_DATABASE_URL": database_url,
           "GRIDCORE_MEDIA_DIR": str(tmp_path_factory.mktemp("media")),
           "GRIDCORE_WEBHOOK_BACKOFF_S": "0.5", "GRIDCORE_WEBHOOK_INTERVAL_S": "0.1"}
    with live_server(env, workers=2, supervisor=True) as url:
        yield url


@pytest.fixture
def city(db: Engine, server: str) -> str:
    plant_desk(db)
    return server


class Stream:
    """One ``GET /events`` read in a thread: its hello and the events it got, with times."""

    def __init__(self, base: str, user: str, query: str = "",
                 headers: dict[str, str] | None = None) -> None:
        self.hello: dict[str, Any] | None = None
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.ready = threading.Event()
        auth = {"Authorization": f"Bearer {token(base, user)}", **(headers or {})}
        self._client = httpx.Client(timeout=httpx.Timeout(5, read=60))
        self._thread = threading.Thread(target=self._run, args=(f"{base}/events{query}", auth),
                                        daemon=True)
        self._thread.start()
        assert self.ready.wait(15), "no hello"

    def _run(self, url: str, headers: dict[str, str]) -> None:
        kind = ""
        try:
            with self._client.stream("GET", url, headers=headers) as r:
                for line in r.iter_lines():
                    if line.startswith("event: "):
                        kind = line[7:]
                    elif line.startswith("data: "):
                        body = json.loads(line[6:])
                        if kind == "hello":
                            self.hello = body
                            self.ready.set()
                        elif kind == "case":
                            self.events.append((time.monotonic(), body))
        except httpx.HTTPError:
            pass

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> tuple[float, dict[str, Any]]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for at, e in self.events:
                if predicate(e):
                    return at, e
            time.sleep(0.02)
        raise AssertionError(f"no such event within {timeout} s; got {self.events}")

    def close(self) -> None:
        self._client.close()


def streams_on_two_workers(base: str, user: str) -> list[Stream]:
    """Streams until two are served by different processes (a socket per worker: the kernel
    spreads connections by their ports)."""
    opened: list[Stream] = []
    for _ in range(30):
        opened.append(Stream(base, user))
        workers = {s.hello["worker"] for s in opened if s.hello}
        if len(workers) == 2:
            one = next(s for s in opened if s.hello and s.hello["worker"] == min(workers))
            two = next(s for s in opened if s.hello and s.hello["worker"] == max(workers))
            for s in opened:
                if s not in (one, two):
                    s.close()
            return [one, two]
    raise AssertionError("every stream landed on one worker")


def test_a_commit_reaches_streams_on_both_workers(city: str) -> None:
    one, two = streams_on_two_workers(city, "disp-wang")
    try:
        # how fast it arrives is benchmarks/bench_desk.py's (p95 over 200 streams), not a test's
        case = report(city, "w-li", INSIDE_001)
        for s in (one, two):
            _, event = s.wait_for(lambda e: e["case_id"] == case["id"] and e["kind"] == "new")
            assert event["notify"] is True  # a dispatcher is told of new cases
            assert event["grid_code"] == "110101001001001"
        step(city, "disp-wang", case["id"], "verify")
        _, changed = one.wait_for(lambda e: e["case_id"] == case["id"] and e["kind"] == "changed")
        assert changed["notify"] is False and changed["details"]["action"] == "verify"
    finally:
        one.close()
        two.close()


def test_streams_are_scoped_and_replay_what_they_missed(city: str) -> None:
    worker_002 = Stream(city, "w-zhao")  # a grid worker of grid 002 only
    handler = Stream(city, "h-liu")  # the grid cleaning team
    try:
        mine = report(city, "w-li", INSIDE_001)
        theirs = report(city, "w-zhao", INSIDE_002)
        worker_002.wait_for(lambda e: e["case_id"] == theirs["id"])
        for action in ("verify", "register", "dispatch"):
            step(city, "disp-wang", mine["id"], action)
        _, dispatched = handler.wait_for(lambda e: e["kind"] == "dispatched")
        assert dispatched["case_id"] == mine["id"] and dispatched["notify"] is True
        time.sleep(0.5)
        assert all(e["case_id"] != mine["id"] for _, e in worker_002.events)
        assert all(e["case_id"] != theirs["id"] for _, e in handler.events)  # not theirs
        last = worker_002.events[-1][1]["id"]
    finally:
        worker_002.close()
        handler.close()
    step(city, "disp-wang", theirs["id"], "verify")  # while nobody listens
    again = Stream(city, "w-zhao", headers={"Last-Event-ID": str(last)})
    try:
        _, replayed = again.wait_for(lambda e: e["case_id"] == theirs["id"]
                                     and e["details"].get("action") == "verify")
        assert replayed["id"] > last and again.hello["replayed"] >= 1
    finally:
        again.close()


class Receiver:
    """A local webhook receiver: records every request; fails the first ``fail`` ones."""

    def __init__(self, fail: int = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests.append({"headers": dict(self.headers), "body": body,
                                       "at": time.monotonic()})
                status = 500 if len(owner.requests) <= fail else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.http = HTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def wait(self, n: int, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while len(self.requests) < n and time.monotonic() < end:
            time.sleep(0.05)
        assert len(self.requests) >= n, f"{len(self.requests)} of {n} requests"

    def close(self) -> None:
        self.http.shutdown()


def _admin(base: str) -> dict[str, str]:
    # webhooks are administered by a signed-in admin, never the development stand-in
    return {"Authorization": f"Bearer {token(base, 'ops-admin')}"}


def test_webhooks_are_signed_and_retried_with_back_off(city: str) -> None:
    good, bad = Receiver(), Receiver(fail=2)
    try:
        made = httpx.post(f"{city}/admin/webhooks", headers=_admin(city), json={
            "name": "city-ops", "url": good.url, "kinds": ["dispatched"]})
        assert made.status_code == 201, made.text
        secret = made.json()["secret"]
        flaky = httpx.post(f"{city}/admin/webhooks", headers=_admin(city), json={
            "name": "flaky", "url": bad.url, "kinds": ["new"], "areas": ["110101001001001"]})
        assert flaky.status_code == 201, flaky.text
        case = report(city, "w-li", INSIDE_001)
        report(city, "w-zhao", INSIDE_002)  # outside the flaky hook's area
        for action in ("verify", "register", "dispatch"):
            step(city, "disp-wang", case["id"], action)
        good.wait(1)
        request = good.requests[0]
        headers = {k.lower(): v for k, v in request["headers"].items()}
        expected = hmac.new(secret.encode(), headers["x-gridcore-timestamp"].encode() + b"."
                            + request["body"], hashlib.sha256).hexdigest()
        assert headers["x-gridcore-signature"] == f"sha256={expected}"
        assert headers["x-gridcore-event"] == "dispatched"
        body = json.loads(request["body"])
        assert body["event"]["case_id"] == case["id"] and body["event"]["department"] == "D_GRID"
        assert "网格保洁队" not in body["text"] and "已派遣至 D_GRID" in body["text"]
        bad.wait(3)  # two failures, then delivered
        gaps = [b["at"] - a["at"] for a, b in zip(bad.requests, bad.requests[1:], strict=False)]
        # back-off: 0.5 s, then twice that (a loaded host only makes the waits longer)
        assert gaps[0] >= 0.45 and gaps[1] >= 0.95, gaps
        time.sleep(0.5)
        assert len(bad.requests) == 3  # delivered: no more attempts, none for the other grid
        log = httpx.get(f"{city}/admin/webhooks/flaky/deliveries", headers=_admin(city)).json()
        delivery = log["deliveries"][0]
        assert delivery["state"] == "delivered" and delivery["attempts"] == 3
        assert [a["status"] for a in delivery["log"]] == [500, 500, 200]
        listed = httpx.get(f"{city}/admin/webhooks", headers=_admin(city)).json()
        assert all("secret" not in h for h in listed["webhooks"])
        dispatcher = {"Authorization": f"Bearer {token(city, 'disp-wang')}"}
        refused = httpx.post(f"{city}/admin/webhooks", headers=dispatcher,
                             json={"name": "x", "url": good.url})
        assert refused.status_code == 403
        stand_in = httpx.post(f"{city}/admin/webhooks", headers={"X-Role": "admin"},
                              json={"name": "x", "url": good.url})
        assert stand_in.status_code == 401  # never the development stand-in
    finally:
        good.close()
        bad.close()
