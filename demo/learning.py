"""The demo city learns its models from its own stored history (the legacy years and the live
months), with ``gridcore learn``'s code, so everything the models serve works right after
``gridcore demo``: a report without a class is filed on the predicted class (智能分类), the
dispatcher sees the learned department beside the rules (智能派遣), the map shows next week's
expected cases and the patrol list (未诉先办), and the desk shows how similar cases were
handled (相似案例, the published index every server process maps)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from layers.intelligence import models
from layers.intelligence.learning import Learned, learn
from layers.intelligence.similar_files import current, publish


def ensure_models(engine: Engine, index_root: Path, step: Callable[[str], None], *,
                  timezone: str) -> int:
    """Train, score and store each model unless one of its kind is active already (a rebuild
    or a second run learns nothing new: the history is the same), and publish the similar-case
    index unless one is published; returns the number of cases the active classifier learned
    from (0 when the history was too small, which the step line says). ``timezone``: the
    city's (the settings' ``cases.city_timezone``; the forecast's weeks begin on Monday 00:00
    there — the demo's geography is Helsinki's, its clock the settings' zone)."""
    for kind in models.KINDS:
        with engine.connect() as conn:
            active = models.active_row(conn, kind)
        if active is not None:
            step(f"{kind} model: v{active.version} already active ({active.n_cases} cases)")
            continue
        [done] = learn(engine, (kind,), trained_by="demo", timezone=timezone)
        step(_line(done))
    if current(index_root, engine) is None:
        published = publish(engine, index_root)
        step("similar-case index: " + ("no described case yet" if published is None
                                        else published.summary()))
    with engine.connect() as conn:
        classifier = models.active_row(conn, "classify")
    return classifier.n_cases if classifier is not None else 0


def _line(done: Learned) -> str:
    trained, stored = done.trained, done.stored
    if trained is None or stored is None:
        return f"{done.kind} model: none trained ({done.why})"
    state = "active" if done.activated else "not active: " + done.why
    head = (f"{done.kind} model v{stored.version}: trained on {trained.n_cases} cases of the "
            f"demo history ({state}); {trained.split}")
    if done.kind == "classify":
        held = trained.scores["model"]
        filing = (f"reports without a class are filed on a prediction of ≥ "
                  f"{trained.threshold:.0%}" if trained.threshold is not None else
                  "no confidence was reliable enough to file automatically: reports without "
                  "a class get suggestions only")
        return (f"{head}; held-out accuracy {held['accuracy']:.0%}, macro-F1 "
                f"{held['macro_f1']:.2f} on the demo's own invented wording (says little "
                f"about real reports); {filing}")
    scores = ", ".join(f"{name} {values[trained.metric]:.3f}"
                       for name, values in trained.scores.items() if trained.metric in values)
    return f"{head}; held-out {trained.metric}: {scores} (synthetic history)"
