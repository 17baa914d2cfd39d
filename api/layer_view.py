"""One request's view of the layers (``LayerView``): one connection, every layer's version read
in it, and the collections (the registry, ``layers.ogc.collections``) as the schema is now."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import Connection

from api.deps import read_engine_sync
from gridcore.errors import NotFound
from layers.ogc.collections import Collection, Registry, layer_versions


@dataclass
class LayerView:
    conn: Connection | None  # None: versions and collections only (a tile cache hit)
    versions: dict[str, int]
    collections: dict[str, Collection]

    @property
    def connection(self) -> Connection:
        """The view's connection (a view from :func:`open_layer_view` always has one)."""
        if self.conn is None:
            raise RuntimeError("this view of the layers holds no connection")
        return self.conn

    def get(self, collection_id: str) -> Collection:
        found = self.collections.get(collection_id)
        if found is None:
            raise NotFound(f"no collection {collection_id!r}; collections: "
                           f"{', '.join(self.collections)}", collection=collection_id)
        return found

    def version_of(self, collection: Collection) -> str:
        """The data version a response about ``collection`` is built from (for ETags)."""
        return ".".join(str(self.versions.get(layer, 0)) for layer in collection.layers)


def registry(request: Request) -> Registry:
    state = request.app.state
    if getattr(state, "collection_registry", None) is None:
        state.collection_registry = Registry()
    return state.collection_registry


@contextmanager
def open_layer_view(request: Request) -> Iterator[LayerView]:
    """Versions are read first, in the same connection as the data: a response can be newer
    than its version (then the next request fetches again), never older — no stale tile. The
    connection is a caught-up replica's when there are replicas (``api.deps``)."""
    with read_engine_sync(request).connect() as conn:
        versions, schema = layer_versions(conn)
        yield LayerView(conn, versions, registry(request).collections(conn, schema))
