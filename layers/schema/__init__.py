"""The tables as SQLAlchemy Core: the city's layers (``city``), cases (``cases``), users, keys
and the audit log (``security``), on one ``MetaData``. Alembic's migrations (``migrations/``)
create them; queries import the table objects and column lists from here.

May import ``layers.db`` and ``gridcore``.
"""
