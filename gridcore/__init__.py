"""gridcore — the domain of grid-based city management (网格化管理, 一网统管).

This package holds the domain only: codes, taxonomy, lifecycle, intake rules, calendar, dispatch
rules, duplicates, roles and scopes (``gridcore.security``), health indicators
(``gridcore.health``), domain errors and the settings tree's schema. It does no I/O and imports
nothing but itself. ``gridcore.cli`` is the one package that does: it wires storage
(``layers``), geometry (``spatial``), HTTP (``api``), maps (``basemaps``) and the demo city
(``demo``) into the ``gridcore`` command. docs/architecture.md is the map.
"""

__version__ = "0.1.0"
