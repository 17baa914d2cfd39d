"""The layers as collections (图层目录) for OGC API – Features, Mapbox Vector Tiles and the one
map: the collection registry, feature queries, tiles and their cache, layer-version polling,
the map's small queries and the per-layer summaries.

May import ``layers.grids`` and everything below it, ``spatial`` and ``gridcore``; not
``layers.cases``.
"""
