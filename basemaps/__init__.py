"""Basemaps (底图) for the one map: providers as data, their settings, datum shifts."""
