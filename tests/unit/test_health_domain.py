"""City health domain: safe formulas, the indicator model as data, normalisation and scores,
explanations, windows. Expectations are computed by hand in the comments."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from gridcore.errors import ValidationError
from gridcore.health import Formula, HealthModel, Window, score_grids
from gridcore.health.scoring import normalise


@pytest.mark.parametrize("text", [
    "__import__('os').system('true')", "cases.__class__", "open(cases)", "lambda: 1",
    "cases if closed else 1", "cases ** 1000", "[cases]", "'a' + 'b'", "cases; closed", "",
])
def test_formula_refuses_anything_but_arithmetic(text: str) -> None:
    with pytest.raises(ValidationError):
        Formula.parse(text)


def test_formula_evaluates_and_propagates_no_data() -> None:
    f = Formula.parse("(parts_damaged + parts_missing) / area_km2 * 2 - -1")
    assert f.names == {"parts_damaged", "parts_missing", "area_km2"}
    assert f.evaluate({"parts_damaged": 3, "parts_missing": 1, "area_km2": 0.5}) == 17.0
    assert f.evaluate({"parts_damaged": 3, "parts_missing": 1, "area_km2": 0}) is None
    assert f.evaluate({"parts_damaged": None, "parts_missing": 1, "area_km2": 1}) is None
    arr = f.evaluate_arrays({"parts_damaged": np.array([3.0, 1.0, np.nan]),
                             "parts_missing": np.array([1.0, 0.0, 0.0]),
                             "area_km2": np.array([0.5, 0.0, 1.0])})
    assert arr[0] == 17.0 and np.isnan(arr[1]) and np.isnan(arr[2])


def _model(**override: object) -> dict:
    data = {"indices": [{"key": "a", "name_zh": "甲", "weight": 3},
                        {"key": "b", "name_zh": "乙", "weight": 1}],
            "indicators": [
                {"key": "density", "name_zh": "密度", "formula": "cases / area_km2",
                 "direction": "worse", "index": "a", "weight": 1},
                {"key": "closure", "name_zh": "结案率", "formula": "closed / registered",
                 "direction": "better", "index": "a", "weight": 3, "normalise": "target",
                 "target": 1, "worst": 0.5},
                {"key": "intact", "name_zh": "完好率", "formula": "parts_intact / parts",
                 "direction": "better", "index": "b", "weight": 1}]}
    data.update(override)
    return data


@pytest.mark.parametrize("bad, field", [
    ({"formula": "cases / nonsense"}, "formula"),
    ({"direction": "up"}, "direction"),
    ({"index": "nope"}, "index"),
    ({"normalise": "target"}, "target"),
    ({"weight": "heavy"}, "weight"),
])
def test_model_refuses_bad_indicator_rows(bad: dict, field: str) -> None:
    data = _model()
    data["indicators"][0].update(bad)
    with pytest.raises(ValidationError) as err:
        HealthModel.from_dict(data)
    assert err.value.details["field"] == field
    assert "density" in str(err.value)


def test_default_model_loads_with_four_indices() -> None:
    model = HealthModel.default()
    assert [i.name_zh for i in model.indices] == ["城管指数", "综治指数", "风险指数", "平安指数"]
    assert model.check_index("risk") == "risk"
    with pytest.raises(ValidationError) as err:
        model.check_index("happiness")
    assert "total" in err.value.details["allowed"]


def test_scores_normalisation_and_explanation_by_hand() -> None:
    model = HealthModel.from_dict(_model())
    # density = 2, 4, 4, 0 per km²  → mid-rank percentiles 0.375, 0.75, 0.75, 0.125
    #   (worse: 1 − p) = 0.625, 0.25, 0.25, and 0 is the best value: 1 (the full term)
    # closure = 0.9, 0.5, 0/0, 1.0 → target (v − 0.5)/0.5 = 0.8, 0, None, 1
    # intact  = 0.5, 1, 1, 0/0    → percentile among 3 defined: 1/6, and the two tied at the
    #   best value 1: 1 each, None
    agg = {"cases": [2, 4, 8, 0], "area_km2": [1, 1, 2, 1], "closed": [9, 1, 0, 3],
           "registered": [10, 2, 0, 3], "parts_intact": [1, 2, 3, 0], "parts": [2, 2, 3, 0]}
    table = score_grids(model, ["g1", "g2", "g3", "g4"], agg)
    a = table.index_scores["a"]
    # index a = 100·(1·density + 3·closure)/(1 + 3), only defined terms count
    assert a[0] == pytest.approx(100 * (0.625 + 3 * 0.8) / 4)
    assert a[1] == pytest.approx(100 * (0.25 + 0) / 4)
    assert a[2] == pytest.approx(100 * 0.25)  # closure undefined: density alone
    b = table.index_scores["b"]
    assert b[0] == pytest.approx(100 / 6) and np.isnan(b[3])
    # total = (3·a + 1·b) / 4; g4 has no b: total = a alone
    assert table.total[0] == pytest.approx((3 * a[0] + b[0]) / 4)
    assert table.total[3] == pytest.approx(a[3]) == pytest.approx(100 * (1 + 3) / 4)
    g1 = table.explain("g1")
    terms = {t.indicator: t for t in g1.terms}
    assert terms["closure"].value == pytest.approx(0.9)
    assert terms["closure"].normalised == pytest.approx(0.8)
    assert terms["closure"].contribution == pytest.approx(100 * 3 / 4 * 0.8)
    assert terms["closure"].inputs == {"closed": 9.0, "registered": 10.0}
    assert sum(t.contribution_total for t in g1.terms) == pytest.approx(g1.total)
    g3 = {t.indicator: t for t in table.explain("g3").terms}
    assert g3["closure"].value is None and g3["closure"].contribution == 0


def test_index_weights_are_configurable() -> None:
    model = HealthModel.from_dict(_model()).with_weights({"a": 0, "b": 1})
    table = score_grids(model, ["g1", "g2"], {"cases": [1, 1], "area_km2": [1, 1],
                                              "parts_intact": [1, 2], "parts": [2, 2]})
    # intact 0.5 and 1.0: mid-rank 0.25 for g1, and g2 holds the best value (1.0)
    assert table.total[0] == pytest.approx(table.index_scores["b"][0]) == pytest.approx(25.0)
    assert table.total[1] == pytest.approx(100.0)
    with pytest.raises(ValidationError):
        HealthModel.from_dict(_model()).with_weights({"zzz": 1})


def test_the_best_possible_value_scores_the_full_term() -> None:
    """The README's example: 0, 0, 0, 5 and 10 overdue cases (higher is worse)."""
    model = HealthModel.from_dict(_model())
    ind = next(i for i in model.indicators if i.key == "density")
    norm = normalise(ind, np.array([0, 0, 0, 5, 10, np.nan], dtype=float))
    assert norm[:5] == pytest.approx([1, 1, 1, 0.3, 0.1]) and np.isnan(norm[5])
    same = normalise(ind, np.zeros(4))  # every grid at the best value: every one full
    assert same == pytest.approx([1, 1, 1, 1])


def test_percentiles_are_mid_ranks_among_the_defined_values_ties_shared() -> None:
    """normalise's percentile of each value: (values below it + half of those equal) / the
    number defined, against that definition counted value by value (ties, NaN, ±inf, either
    direction; the best value scores 1)."""
    model = HealthModel.from_dict(_model())
    rng = np.random.default_rng(7)
    for key, higher in (("intact", True), ("density", False)):
        ind = next(i for i in model.indicators if i.key == key)
        assert ind.normalise == "percentile" and ind.higher_is_better is higher
        for values in (rng.integers(0, 6, 200).astype(float),
                       np.r_[rng.normal(size=50), [np.inf, -np.inf, np.nan, np.nan]],
                       np.array([3.0]), np.array([np.nan, np.nan])):
            values[rng.random(len(values)) < 0.1] = np.nan
            got = normalise(ind, values)
            defined = values[~np.isnan(values)]
            best = (defined.max() if higher else defined.min()) if len(defined) else None
            for v, g in zip(values, got, strict=True):
                if np.isnan(v):
                    assert np.isnan(g)
                    continue
                mid = ((defined < v).sum() + 0.5 * (defined == v).sum()) / len(defined)
                want = 1.0 if v == best else (mid if higher else 1.0 - mid)
                assert g == pytest.approx(want, abs=1e-12)


def test_grid_without_any_data_has_no_score() -> None:
    model = HealthModel.from_dict(_model())
    table = score_grids(model, ["empty"], {"area_km2": [1.0]})
    g = table.explain("empty")
    # density 0/1 = 0 is defined (no cases is a fact, and the best value: the full term),
    # closure 0/0 and intact 0/0 are not
    assert g.indices["b"] is None and g.total == pytest.approx(100.0)


def test_windows() -> None:
    now = datetime(2026, 10, 15, 12, tzinfo=UTC)
    w = Window.parse("2026-09-01/2026-10-01", now)
    assert w.start.isoformat() == "2026-09-01T00:00:00+08:00"
    assert w.previous().start.isoformat() == "2026-08-02T00:00:00+08:00"
    r = Window.parse("30d", now)
    assert r.end == now and r.span.days == 30
    for bad in ("2026-10-01/2026-09-01", "yesterday", "2026-13-01/2026-14-01", "0d"):
        with pytest.raises(ValidationError):
            Window.parse(bad, now)


def test_legend_merges_tied_breaks_and_empty_classes() -> None:
    from gridcore.health.classes import classify

    # 64 grids tied at 58.6 made quantile breaks repeat: "58.6 – 58.6" classes
    values = np.array([58.6] * 64 + list(np.linspace(60, 90, 36)) + [np.nan])
    classes = classify(values, "quantiles", 5)
    shown = [c for c in classes.legend if c["class"] is not None]
    assert all(c["count"] > 0 for c in shown)
    assert all(c["lower"] < c["upper"] for c in shown[1:])
    assert [c["label"] for c in shown][0] == "58.6" and shown[0]["count"] == 64
    assert (classes.requested, classes.merged) == (5, 5 - len(shown))
    assert sorted(set(classes.bins)) == classes.bins
    # fixed breaks nothing falls between: merged as well, and said so
    fixed = classify(np.array([10.0, 20, 95]), "fixed", breaks=[40, 60, 80, 100])
    assert fixed.bins == [40, 100] and fixed.merged == 2
    assert [c["count"] for c in fixed.legend] == [2, 1, 0]


def test_counts_get_whole_number_classes() -> None:
    """Cases per grid are counts: quantile breaks like 1.667 become 1, classes read
    "0 – 1", "2 – 3", … and every count lands in the class it did before."""
    from gridcore.health.classes import classify

    values = np.array([0.0] * 5 + [1, 1, 2, 2, 2, 3, 5, 8, 13])
    fractional = classify(values, "quantiles", 5, higher_is_better=False)
    assert any(b != int(b) for b in fractional.bins)  # the defect this guards against
    counts = classify(values, "quantiles", 5, higher_is_better=False, integer=True)
    assert all(b == int(b) for b in counts.bins)
    shown = [c for c in counts.legend if c["class"] is not None]
    labels = [c["label"] for c in shown]
    assert all("." not in label for label in labels), labels
    for lower_class, upper_class in zip(shown, shown[1:], strict=False):
        assert upper_class["lower"] == lower_class["upper"] + 1  # no gap, no overlap
    assert sum(c["count"] for c in shown) == len(values)
    for value, cls in zip(values, counts.classes, strict=True):  # each count in its class
        assert cls is not None and shown[cls]["lower"] <= value <= shown[cls]["upper"]
    assert labels[0] == "0" and shown[0]["count"] == 5  # one value: labelled with it
