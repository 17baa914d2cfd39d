"""Evaluation (考评): departments, areas and grid workers scored on indicators defined as data,
per period on the working calendar; appeals (申诉) that waive one case's penalty for one party.

* :mod:`gridcore.evaluation.model` — the kinds and indicators of
  ``gridcore/data/evaluation_indicators.json``;
* :mod:`gridcore.evaluation.period` — months, quarters, years, intervals;
* :mod:`gridcore.evaluation.appeals` — the appeal's own small lifecycle and deadline.
"""

from gridcore.evaluation.model import AGGREGATES, EvaluationModel, Kind, Measure
from gridcore.evaluation.period import Period

__all__ = ["AGGREGATES", "EvaluationModel", "Kind", "Measure", "Period"]
