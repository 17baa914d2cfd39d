"""Patrol shifts (巡查) and their tracks in PostGIS (the rules: ``gridcore.patrol``).

May import ``layers.security``, ``layers.db``, ``layers.schema`` and ``gridcore``.
"""
