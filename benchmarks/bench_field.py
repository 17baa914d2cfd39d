"""The grid worker's phone app (/m/): page budgets, first visit on a slow network, later visit
offline, and a camera photo as queued.

    .venv/bin/python benchmarks/bench_field.py [--rounds 3]

- **Budgets** (bytes, uncompressed and gzip): the app shell — the page as served, the app's
  scripts and styles under api/static/field/, its service worker and the shared
  api/static/i18n.js — against
  150 KB; with the map library (Leaflet's script and styles) against 1 MB. Icons are listed
  apart (images, not shell code).
- **First visit, Slow 3G**: a new phone (fresh Chromium context: nothing cached) opens /m/
  under CDP ``Network.emulateNetworkConditions`` with Puppeteer's "Slow 3G" preset (2,000 ms
  latency, 50,000 B/s down and up); interactive = the app's ``gridcore-ready`` performance
  mark (the sign-in screen drawn and usable). Also: signing in to the where-am-I screen with
  its map and grid, under the same conditions. Target ≤ 8 s.
- **Later visit, offline**: the same phone after signing in (service worker installed, area
  downloaded), with no network at all: /m/ opened again until ``gridcore-ready`` (the where
  screen) and until the grid code shows. Target ≤ 1.5 s.
- **Photo**: a 12-megapixel JPEG (4000 × 3000, synthetic street-like detail and sensor noise,
  quality 92, as a phone camera writes it) through the app's own ``shrink`` (photo.js) in
  Chromium: the bytes queued for upload. Target ≤ 400 KB.

A scratch database holds a planted block of grids and one grid worker; the server is the app
in a thread (uvicorn) of this process. Timings are medians of ``--rounds`` runs.
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import platform
import statistics
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("GRIDCORE_ENV", "development")

from scratch import create_database, drop_database  # noqa: E402  (benchmarks/, beside this script)

SLOW_3G = {"offline": False, "latency": 2000, "downloadThroughput": 50_000,
           "uploadThroughput": 50_000}
TARGETS = {"shell_kb": 150, "with_map_kb": 1000, "first_visit_s": 8.0, "offline_visit_s": 1.5,
           "photo_kb": 400}
PASSWORD = "a-long-password-1"
STATIC = REPO / "api" / "static"


def budgets(html: bytes) -> dict[str, tuple[int, int]]:
    """name → (bytes, gzip bytes)."""
    def sizes(data: bytes) -> tuple[int, int]:
        return len(data), len(gzip.compress(data, 9))

    app = sorted(p for p in (STATIC / "field").rglob("*")
                 if p.suffix in (".js", ".css") and p.name != "service-worker.js")
    out = {"page /m/ (HTML)": sizes(html)}
    for p in [*app, STATIC / "i18n.js"]:
        out[str(p.relative_to(STATIC))] = sizes(p.read_bytes())
    out["service worker /m/sw.js"] = sizes((STATIC / "field" / "service-worker.js").read_bytes())
    for p in (STATIC / "vendor" / "leaflet" / "leaflet.js",
              STATIC / "vendor" / "leaflet" / "leaflet.css"):
        out["map: " + str(p.relative_to(STATIC))] = sizes(p.read_bytes())
    for p in sorted((STATIC / "field" / "icons").glob("*.png")):
        out["icon: " + p.name] = sizes(p.read_bytes())
    return out


def camera_jpeg(path: Path) -> int:
    """A 12 MP photo-like JPEG: blocks of colour with edges (a street), gradients, noise."""
    import numpy as np
    from PIL import Image, ImageFilter

    rng = np.random.default_rng(12)
    w, h = 4000, 3000
    blocks = rng.integers(30, 230, (h // 60 + 1, w // 60 + 1, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(blocks).resize((w, h), Image.Resampling.NEAREST)
                      .filter(ImageFilter.GaussianBlur(3)), dtype=np.float32)
    ramp = np.linspace(-25, 25, w, dtype=np.float32)[None, :, None]
    noise = rng.normal(0, 9, (h, w, 3)).astype(np.float32)
    image = Image.fromarray(np.clip(base + ramp + noise, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=92)
    path.write_bytes(buf.getvalue())
    return len(buf.getvalue())


def run(rounds: int) -> None:
    from playwright.sync_api import sync_playwright
    from sqlalchemy import text

    from layers.db.engine import make_engine
    from layers.db.migrate import migrate
    from layers.security.users import add_user
    from tests.support.browser import CHROMIUM, FLAGS
    from tests.support.map_planted import GRID_CODES, grid_square, plant
    from tests.support.thread_server import live_server

    name = f"gridcore_bench_field_{uuid.uuid4().hex[:6]}"
    engine = make_engine(url=create_database(name))
    try:
        migrate(engine)
        plant(engine, cases=False)
        add_user(engine, "wang", PASSWORD, "grid_worker", areas=tuple(GRID_CODES[:3]))
        x0, y0, x1, y1 = grid_square(0)
        geo: Any = {"longitude": (x0 + x1) / 2, "latitude": (y0 + y1) / 2, "accuracy": 10}
        with live_server(engine) as url, sync_playwright() as p:
            import httpx

            html = httpx.get(f"{url}/m/").content
            sizes = budgets(html)
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            first, signed, offline_ready, offline_grid = [], [], [], []
            photo = None
            for _ in range(rounds):
                context = browser.new_context(
                    viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                    locale="zh-CN", geolocation=geo, permissions=["geolocation"])
                page = context.new_page()
                cdp = context.new_cdp_session(page)
                cdp.send("Network.enable")
                cdp.send("Network.emulateNetworkConditions", SLOW_3G)
                page.goto(f"{url}/m/", wait_until="commit", timeout=120_000)
                page.wait_for_function("() => document.body.dataset.ready === '1'",
                                       timeout=120_000)
                first.append(page.evaluate(
                    "() => performance.getEntriesByName('gridcore-ready')[0].startTime") / 1000)
                page.fill("#username", "wang")
                page.fill("#password", PASSWORD)
                started = time.perf_counter()
                page.click("#signin-button")
                page.wait_for_function("() => !!document.querySelector('#view').dataset.grid",
                                       timeout=120_000)
                signed.append(time.perf_counter() - started)
                cdp.send("Network.emulateNetworkConditions",
                         {"offline": False, "latency": 0, "downloadThroughput": -1,
                          "uploadThroughput": -1})
                page.wait_for_function("() => navigator.serviceWorker.controller !== null",
                                       timeout=120_000)
                time.sleep(1)  # the worker's install (the whole shell) has finished
                context.set_offline(True)
                page.close()
                page = context.new_page()
                page.goto(f"{url}/m/", wait_until="commit")
                page.wait_for_function("() => document.body.dataset.ready === '1'")
                offline_ready.append(page.evaluate(
                    "() => performance.getEntriesByName('gridcore-ready')[0].startTime") / 1000)
                page.wait_for_function("() => !!document.querySelector('#view').dataset.grid")
                offline_grid.append(page.evaluate("() => performance.now()") / 1000)
                if photo is None:
                    source = Path(f"/tmp/{name}.jpg")
                    source_bytes = camera_jpeg(source)
                    page.evaluate("""() => { const input = document.createElement('input');
                        input.type = 'file'; input.id = 'bench-photo';
                        document.body.append(input); }""")
                    page.set_input_files("#bench-photo", str(source))
                    queued = page.evaluate("""async () => {
                        const { shrink } = await import('/static/field/photo.js');
                        const file = document.querySelector('#bench-photo').files[0];
                        const out = await shrink(file);
                        return [out.blob.size, out.width, out.height]; }""")
                    photo = (source_bytes, *queued)
                    source.unlink()
                context.close()
            browser.close()
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version()")).scalar()
    finally:
        engine.dispose()
        drop_database(name)
    report(sizes, first, signed, offline_ready, offline_grid, photo, rounds, str(version))


def report(sizes, first, signed, offline_ready, offline_grid, photo, rounds, pg) -> None:  # type: ignore[no-untyped-def]
    load = os.getloadavg()
    print(f"bench_field — {datetime.now().astimezone():%Y-%m-%d %H:%M %z}, "
          f"{platform.node()}, {platform.machine()}, {os.cpu_count()} cores, "
          f"load {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}, {platform.python_version()}, "
          f"{pg.split(',')[0]}")
    print("\nbytes (uncompressed / gzip):")
    for name, (raw, packed) in sizes.items():
        print(f"  {name:<44} {raw:>9,} {packed:>9,}")
    shell = sum(v[0] for k, v in sizes.items() if not k.startswith(("map:", "icon:")))
    shell_gz = sum(v[1] for k, v in sizes.items() if not k.startswith(("map:", "icon:")))
    with_map = shell + sum(v[0] for k, v in sizes.items() if k.startswith("map:"))
    with_map_gz = shell_gz + sum(v[1] for k, v in sizes.items() if k.startswith("map:"))
    ok = lambda good: "met" if good else "MISSED"  # noqa: E731
    print(f"\napp shell: {shell / 1000:.1f} KB ({shell_gz / 1000:.1f} KB gzip); target "
          f"≤ {TARGETS['shell_kb']} KB uncompressed: {ok(shell <= TARGETS['shell_kb'] * 1000)}")
    print(f"with the map library: {with_map / 1000:.1f} KB ({with_map_gz / 1000:.1f} KB gzip); "
          f"target ≤ {TARGETS['with_map_kb']} KB: {ok(with_map <= TARGETS['with_map_kb'] * 1000)}")
    med = statistics.median
    print(f"\nfirst visit, Slow 3G (2,000 ms, 50 kB/s), interactive (sign-in screen): "
          f"median {med(first):.2f} s of {rounds} {[round(v, 2) for v in first]}; target ≤ "
          f"{TARGETS['first_visit_s']} s: {ok(med(first) <= TARGETS['first_visit_s'])}")
    print(f"  then signed in, where-am-I with map and grid, Slow 3G: median {med(signed):.2f} s "
          f"{[round(v, 2) for v in signed]}")
    print(f"later visit offline from the service worker: interactive median "
          f"{med(offline_ready):.2f} s {[round(v, 2) for v in offline_ready]}, grid code shown "
          f"{med(offline_grid):.2f} s; target ≤ {TARGETS['offline_visit_s']} s: "
          f"{ok(med(offline_ready) <= TARGETS['offline_visit_s'])}")
    source, queued, w, h = photo
    print(f"photo: 12 MP camera JPEG {source / 1e6:.2f} MB → queued {queued / 1000:.0f} KB "
          f"({w} × {h}); target ≤ {TARGETS['photo_kb']} KB: "
          f"{ok(queued <= TARGETS['photo_kb'] * 1000)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    run(parser.parse_args().rounds)


if __name__ == "__main__":
    main()
