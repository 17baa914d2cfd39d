"""Tiny app factories for the supervisor's tests (``api.serving``): they start in a blink and
need no database."""

from __future__ import annotations

import os
import time

from fastapi import FastAPI


def hanging_app() -> FastAPI:
    """``/pid`` names the worker; ``/hang`` blocks its event loop for good (a bug's stand-in:
    a synchronous call that never returns, run on the loop)."""
    app = FastAPI()

    @app.get("/pid")
    async def pid() -> int:
        return os.getpid()

    @app.get("/hang")
    async def hang() -> None:
        time.sleep(3600)

    return app


def failing_app() -> FastAPI:
    """A factory that refuses to build the app, as a bad configuration makes it."""
    raise RuntimeError("GRIDCORE_SECRET_KEY is missing (a stand-in)")
