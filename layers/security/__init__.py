"""Security in storage: users and API keys, the hash-chained audit log, a caller's scope as a
SQL condition, and the masked reads of 9+X personal data. The rules themselves (roles, actions,
scopes, masking) are the domain's: ``gridcore.security``.

May import ``layers.schema``, ``layers.db`` and ``gridcore``.
"""
