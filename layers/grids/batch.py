"""``resolve(gdf)`` for notebooks and scripts that have no Resolver at hand: the batch resolver
of ``spatial.batch`` over the environment's database (``GRIDCORE_DATABASE_URL``, else the
embedded cluster). A program that has a settings tree builds its own
:class:`layers.grids.resolver.Resolver` and calls ``spatial.batch.resolve(gdf, resolver)``."""

from __future__ import annotations

from typing import Any

from layers.db.engine import make_engine
from layers.grids.resolver import Resolver
from spatial import batch


def resolve(gdf: Any, resolver: Resolver | None = None, **options: Any) -> Any:
    """``spatial.batch.resolve(gdf, resolver, **options)``; without ``resolver``, one on the
    environment's database (its index is built for this call: keep a Resolver to reuse it)."""
    if resolver is not None:
        return batch.resolve(gdf, resolver, **options)
    engine = make_engine()
    own = Resolver(engine)
    try:  # the snapshot is taken now (a dask frame carries it to its workers)
        return batch.resolve(gdf, own, **options)
    finally:
        own.close()
        engine.dispose()
