"""Errors of the intelligence room (智能分类, 智能派遣, 相似案例推荐, 全域预警).

They are domain errors (``gridcore.errors``), so the API's one status table maps them like every
other: a history too small to learn from is the caller's input (422); a model that is missing or
cannot be read by this process is the service's state (503, "run gridcore learn").
"""

from __future__ import annotations

from gridcore.errors import GridcoreError, ServiceUnavailable, ValidationError


class IntelligenceError(GridcoreError):
    """Base of the errors raised by the models."""

    kind = "intelligence-error"
    title = "Model error"


class NotEnoughHistory(IntelligenceError, ValidationError):
    """The history given to a model is too small or too uniform to learn anything."""

    kind = "not-enough-history"
    title = "Not enough history"


class ModelFormatError(IntelligenceError, ServiceUnavailable):
    """Stored model bytes are not a gridcore model, are of another kind, or were written by
    library versions this process cannot read safely (retrain with ``gridcore learn``)."""

    kind = "model-format"
    title = "Stored model unreadable"


class NotFitted(IntelligenceError, ServiceUnavailable):
    """A model was asked to predict before it was trained, or no model is active yet."""

    kind = "no-model"
    title = "No trained model"
