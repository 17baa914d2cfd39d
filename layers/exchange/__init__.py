"""Data in and out: file import of every layer (``imports``: read → validate every row → one
transaction → COPY), export to GeoPackage / GeoJSON / CSV, and the analysts' read API (any
layer, case query or health table as a GeoDataFrame).

May import ``layers.health``, ``layers.security``, ``layers.schema``, ``layers.db``,
``spatial`` and ``gridcore``.
"""
