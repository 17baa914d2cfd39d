"""Geometry and indexing, no database: coordinate systems and datums, H3 cells, areas in metres,
the point → grid locator, topology checks, grid drawing and exact coverage, batch resolution.

May import ``gridcore`` only (``layers.grids.batch`` runs ``spatial.batch.resolve`` over the
database).
"""
