"""PostGIS storage (存储), one package per capability:

- ``layers.db`` — the embedded cluster, engine, migrations, backups, prepared statements, COPY;
- ``layers.schema`` — the tables as SQLAlchemy Core (the migrations in ``migrations/`` make them);
- ``layers.security`` — users, API keys, the audit log, scoping in SQL, masked 9+X reads;
- ``layers.health`` — city health aggregation (its SQL in ``layers/health/sql``);
- ``layers.exchange`` — file import, export, the analysts' read API;
- ``layers.grids`` — the resolver, the in-memory grid index, drawing, topology, dispatch rules;
- ``layers.cases`` — case intake, lifecycle steps, lists, photos;
- ``layers.ogc`` — the collections behind OGC API – Features, vector tiles and the map.

Storage may import ``spatial`` and ``gridcore``, never ``api``, ``basemaps`` or ``demo``. Inside,
the packages are layered in the order above (a package imports only the ones listed before it;
``cases`` and ``ogc`` are independent of each other): the import contract in pyproject.toml
(``lint-imports``) checks it; docs/architecture.md draws it.
"""
