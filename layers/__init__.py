"""PostGIS storage: settings, the embedded private cluster, engine, tables, repositories,
file import/export and the SQL behind tiles and aggregations."""
