"""Unit grids (单元网格) in use: the resolver (a location → grid, hierarchy, responsible party),
the in-memory grid index kept fresh by layer versions, grid drawing stored as a generation, the
line networks grids follow, the stored topology check and the dispatch rules (权责清单).

May import ``layers.exchange`` and everything below it, ``spatial`` and ``gridcore``.
"""
