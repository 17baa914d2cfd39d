"""The demo city learns its classification model (智能分类) from its own stored history, with
``gridcore learn``'s code, so a grid worker's report without a class is filed on the predicted
class (or refused with suggestions when unclear) right after ``gridcore demo``."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Engine

from layers.intelligence import models
from layers.intelligence.learning import learn


def ensure_classifier(engine: Engine, step: Callable[[str], None]) -> int:
    """Train, score and store the classifier unless one is active already (a rebuild or a
    second run learns nothing new: the history is the same); returns the number of cases the
    active model learned from (0 when the history was too small, which the step line says)."""
    with engine.connect() as conn:
        active = models.active_row(conn, "classify")
    if active is not None:
        step(f"classification model: v{active.version} already active "
             f"({active.n_cases} cases)")
        return active.n_cases
    [done] = learn(engine, ("classify",), trained_by="demo")
    trained, stored = done.trained, done.stored
    if trained is None or stored is None:
        step(f"classification model: none trained ({done.why})")
        return 0
    held = trained.scores["model"]
    filing = (f"reports without a class are filed on a prediction of ≥ {trained.threshold:.0%}"
              if trained.threshold is not None else
              "no confidence was reliable enough to file automatically: reports without a "
              "class get suggestions only")
    step(f"classification model v{stored.version}: trained on {trained.n_cases} described "
         f"cases of the demo history ({'active' if done.activated else 'not active: ' + done.why}"
         f"); held-out accuracy {held['accuracy']:.0%}, macro-F1 {held['macro_f1']:.2f} on "
         f"the demo's own invented wording (says little about real reports); {filing}")
    return trained.n_cases
