"""City health check (城市体检): indicators defined as data, indices and an explainable score.

* :mod:`gridcore.health.expression` — safe arithmetic formulas over named aggregates;
* :mod:`gridcore.health.model` — indicators and indices loaded from
  ``gridcore/data/health_indicators.json`` (a city adds its own indicator without code);
* :mod:`gridcore.health.scoring` — normalisation (percentile across grids, or against targets),
  index and total scores, every term explained (value, normalised value, weight, contribution);
* :mod:`gridcore.health.window` — time windows (``2026-09-01/2026-10-01`` or ``30d``).
"""

from gridcore.health.expression import Formula
from gridcore.health.model import HealthModel, Index, Indicator
from gridcore.health.scoring import GridScore, ScoreTable, Term, score_grids
from gridcore.health.window import Window

__all__ = ["Formula", "GridScore", "HealthModel", "Index", "Indicator", "ScoreTable", "Term",
           "Window", "score_grids"]
