"""City health (城市体检) aggregation: the named aggregates per grid and area from SQL
(``layers/health/sql/*.sql``), the parts and 9+X inventory, and the shapes of choropleths. The
indicators, formulas and scores are the domain's: ``gridcore.health``.

May import ``layers.security``, ``layers.schema``, ``layers.db``, ``spatial`` and ``gridcore``.
"""
