"""Basemaps (底图) and map renderings for the one map: providers as data (their settings are the
tree's ``map`` section), the datum shift of tiles for GCJ-02 basemaps, the health choropleth as
offline HTML and PNG.

May import ``spatial`` and ``gridcore``, not storage: the caller hands over the data.
"""
