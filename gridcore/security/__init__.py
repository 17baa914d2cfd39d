"""Security rules of the domain, pure: who may do what and see where (``access``: the one
``Role`` enum, the roles × actions matrix, scopes), masking of 9+X personal data (``masking``),
limits on request geometry (``input_limits``). Storage enforces them in SQL
(``layers.security``), the API at its edge (``api.security.identity``).

May import ``gridcore`` modules only (no I/O).
"""
