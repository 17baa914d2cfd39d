"""gridcore — the domain of grid-based city management (网格化管理, 一网统管).

This package holds the domain only: codes, taxonomy, lifecycle, calendar, dispatch rules,
health indicators and domain errors. It does no I/O; ``gridcore.cli`` is the one module that
wires storage (``layers``), geometry (``spatial``), HTTP (``api``) and maps (``basemaps``).
"""

__version__ = "0.1.0"
