"""Response classes shared by the routers."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    """JSON encoded by orjson, an order of magnitude faster than the standard library on the
    answer of every report (benchmarks/README.md). The bytes differ from Starlette's only
    in spacing; a NaN or infinity, which the standard encoder refuses here, cannot reach it (the
    inputs are validated as finite)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
