"""HTTP (FastAPI): the app factory, routes (``api.routes``, one per resource), identity and
permissions, the error table, the group commit of reports, OpenAPI documents, static pages.

May import ``layers``, ``basemaps``, ``spatial`` and ``gridcore``; never ``demo`` or
``gridcore.cli``. The settings tree, the engine, the one resolver and the intake service live on
``app.state``, built by ``api.app.create_app``.
"""
