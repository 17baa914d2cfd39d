"""Geometry and indexing, no database: coordinate systems, H3, the point → grid locator,
topology checks, grid drawing and batch resolution."""
