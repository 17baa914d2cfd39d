"""智能分类 on planted reports: the planted classes are predicted, with reasons and thresholds."""

import random

import numpy as np
import pytest

from gridcore.intelligence.baselines import (
    KeywordClassifier,
    MajorityClassifier,
    PlainTfidfClassifier,
)
from gridcore.intelligence.classify import MIN_EVIDENCE, TextClassifier, decide
from gridcore.intelligence.errors import NotEnoughHistory, NotFitted
from gridcore.intelligence.evaluation import (
    compare,
    coverage_curve,
    threshold_for_accuracy,
    time_split,
)
from gridcore.intelligence.features import Report, detect_language, terms_from_names

ZH = {
    "路灯": ["路灯不亮", "路灯坏了晚上很黑", "灯杆倾斜路灯闪烁", "小区门口路灯熄灭"],
    "井盖": ["井盖丢失", "污水井盖破损", "井盖松动有响声", "雨水井盖塌陷很危险"],
    "垃圾": ["垃圾堆放没人清运", "垃圾桶满了", "路边暴露垃圾发臭", "建筑垃圾乱倒"],
}
EN = {
    "lighting": ["street light out", "lamp post dark at night", "streetlight flickering"],
    "pothole": ["big pothole in the road", "pothole damaged my tyre", "road surface broken"],
    "garbage": ["garbage not collected", "trash bins overflowing", "missed garbage pickup"],
}


def planted(table: dict[str, list[str]], n: int, seed: int) -> tuple[list[Report], list[str]]:
    rnd = random.Random(seed)
    reports, labels = [], []
    places = ["A1区", "幸福路", "Main St", "Oak Ave", "东门", "12号"]
    for _ in range(n):
        label = rnd.choice(sorted(table))
        words = rnd.choice(table[label])
        reports.append(Report(words, f"{rnd.choice(places)} {words} {rnd.choice(places)}"))
        labels.append(label)
    return reports, labels


@pytest.mark.parametrize("table", [ZH, EN])
def test_planted_classes_are_predicted(table: dict[str, list[str]]) -> None:
    reports, labels = planted(table, 120, 1)
    model = TextClassifier().fit(reports, labels)
    test, truth = planted(table, 40, 2)
    assert model.predict(test) == truth
    top = model.suggest(test[0], k=3)
    assert [s.category for s in top][0] == truth[0]
    assert abs(sum(s.probability for s in model.suggest(test[0], k=10)) - 1) < 1e-6
    assert top[0].drivers, "the top suggestion names the terms that drove it"


def test_language_detection_and_terms() -> None:
    assert detect_language(["路灯不亮了"]) == "zh"
    assert detect_language(["street light out"]) == "en"
    assert terms_from_names(["城市建设和市政管理", "Pothole/paving", "其他"]) == [
        "城市建设", "市政管理", "pothole", "paving"]


def test_keyword_terms_help_and_drivers_show_them() -> None:
    reports, labels = planted(ZH, 60, 3)
    terms = {k: [k] for k in ZH}
    model = TextClassifier(class_terms=terms).fit(reports, labels)
    top = model.suggest(Report("路灯", "路灯"), k=1)[0]
    assert top.category == "路灯"
    assert "[路灯]" in top.drivers


def test_decide_files_above_threshold_and_refuses_below() -> None:
    reports, labels = planted(ZH, 120, 4)
    model = TextClassifier().fit(reports, labels)
    clear = model.suggest(Report("井盖丢失", "污水井盖破损 井盖松动"))
    filed = decide(clear, threshold=0.5)
    assert filed.filed and filed.category == "井盖" and filed.category_source == "predicted"
    vague = model.suggest(Report("你好", "请尽快处理"))
    refused = decide(vague, threshold=0.9)
    assert not refused.filed and refused.category is None
    assert len(refused.suggestions) == 3


@pytest.mark.parametrize("table", [ZH, EN])
def test_words_the_model_does_not_know_are_no_evidence(table: dict[str, list[str]]) -> None:
    """Gibberish still has a top class (at about the prior): the model says it has nothing to
    go on, and intake's decision never files on it, even at a threshold of 0."""
    reports, labels = planted(table, 120, 8)
    model = TextClassifier().fit(reports, labels)
    for text in ["asdkjh qwe", "xxxxxxxx", "qwerty", "1234", "的的的"]:
        evidence = model.evidence(Report(text))
        assert not evidence.found and evidence.basis == "unknown_words", (text, evidence)
        decision = decide(model.suggest(Report(text)), threshold=0.0, evidence=evidence)
        assert not decision.filed and decision.category is None and decision.no_evidence
    known = "路灯不亮" if table is ZH else "street light out"
    evidence = model.evidence(Report(known))
    assert evidence.found and evidence.basis == "words" and evidence.known_terms
    assert evidence.shift >= MIN_EVIDENCE
    decision = decide(model.suggest(Report(known)), threshold=0.5, evidence=evidence)
    assert decision.filed and not decision.no_evidence
    assert evidence.public()["basis"] == "words"


def test_known_words_that_move_nothing_are_near_the_prior() -> None:
    """Words of the vocabulary that every class shares (the places of the planted reports)
    move the answer less than MIN_EVIDENCE from the answer to no text at all."""
    reports, labels = planted(EN, 120, 9)
    model = TextClassifier().fit(reports, labels)
    evidence = model.evidence(Report("Main St Oak Ave"))
    assert evidence.known_terms >= 2 and evidence.shift < MIN_EVIDENCE
    assert evidence.basis == "near_prior" and not evidence.found


def test_a_model_stored_before_the_prior_was_kept_computes_it() -> None:
    """Models pickled before ``_prior_proba`` existed load without it: evidence still works."""
    reports, labels = planted(ZH, 60, 10)
    model = TextClassifier().fit(reports, labels)
    del model.__dict__["_prior_proba"]
    assert model.evidence(Report("路灯不亮")).found
    assert abs(float(model._prior().sum()) - 1) < 1e-9


def test_coverage_curve_trades_coverage_for_accuracy() -> None:
    reports, labels = planted(EN, 150, 5)
    test, truth = planted(EN, 60, 6)
    model = TextClassifier().fit(reports, labels)
    curve = coverage_curve(truth, model.predict_proba(test), model.classes, [0.0, 0.5, 0.99])
    assert curve[0].coverage == 1.0
    assert curve[-1].coverage <= curve[0].coverage
    point = threshold_for_accuracy(curve, 0.9)
    assert point is not None and point.accuracy >= 0.9


def test_a_worse_model_is_detected_as_worse() -> None:
    reports, labels = planted(ZH, 200, 7)
    times = np.arange(len(reports))
    split = time_split(times, 0.25)
    result = compare({"model": TextClassifier, "majority": MajorityClassifier,
                      "keywords": lambda: KeywordClassifier({k: [k] for k in ZH}),
                      "plain": PlainTfidfClassifier}, reports, labels, split)
    assert result.best() == "model" or result.results["model"].macro_f1 == 1.0
    assert not result.may_activate("majority", "model")
    assert result.may_activate("model", "majority")
    assert result.results["majority"].accuracy < result.results["model"].accuracy


def test_errors() -> None:
    with pytest.raises(NotEnoughHistory):
        TextClassifier().fit([Report("a"), Report("b")], ["x", "x"])
    with pytest.raises(NotFitted):
        TextClassifier().predict([Report("a")])
