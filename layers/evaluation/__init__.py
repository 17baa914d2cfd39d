"""Evaluation (考评) storage: the facts of a period's cases (``facts.py``, SQL in
``sql/facts.sql``), counted per department, area and grid worker (``groups.py``), scored and
explained (``evaluate.py``), patrol coverage (``patrol.py``) and appeals (``appeals.py``).
The indicators and rules are the domain's: ``gridcore.evaluation``.

May import ``layers.health`` (the working-calendar SQL), ``layers.security``,
``layers.schema``, ``layers.db``, ``spatial`` and ``gridcore``.
"""
