"""The evaluation board's page (``/evaluation/board``): chrome only (anyone may load it; the
data come from the API with the caller's token), the periods a manager compares, a bad period
or kind refused with the field named, and a catalogue word for every count a party's
explanation lists."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from api.i18n import LANGUAGES, translate
from api.routes.evaluation_page import default_period, period_choices
from gridcore.evaluation import AGGREGATES


def test_the_page_is_chrome_in_the_callers_language(client: TestClient) -> None:
    r = client.get("/evaluation/board", params={"period": "2026-Q3", "kind": "area"},
                   headers={"Accept-Language": "zh-CN"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "script-src" in r.headers["content-security-policy"]
    assert "考评中心" in r.text and "2026年第3季度" in r.text
    config = r.text.split('id="board-config">', 1)[1].split("</script>", 1)[0]
    assert json.loads(config) == {"period": "2026-Q3", "kind": "area", "level": "street"}
    en = client.get("/evaluation/board?lang=en")
    assert "Evaluation Centre" in en.text and "考评中心" not in en.text


@pytest.mark.parametrize(("query", "field"), [("period=2026-13", "period"),
                                              ("kind=street", "kind"),
                                              ("kind=area&level=city", "level")])
def test_a_bad_choice_is_refused_naming_it(client: TestClient, query: str, field: str) -> None:
    r = client.get(f"/evaluation/board?{query}")
    assert r.status_code in (400, 422)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert field in r.text


def test_the_periods_are_the_last_months_quarters_and_years() -> None:
    choices = period_choices(datetime(2026, 1, 15), "zh-CN")
    values = [v for v, _ in choices]
    # the month so far first, labelled as in progress; then the last twelve whole months
    assert values[:3] == ["2026-01", "2025-12", "2025-11"] and len(values) == 1 + 12 + 4 + 2
    assert values[13:17] == ["2025-Q4", "2025-Q3", "2025-Q2", "2025-Q1"]
    assert values[17:] == ["2026", "2025"]
    labels = dict(choices)
    assert labels["2026-01"] == "本月（进行中）" and labels["2025-12"] == "2025年12月"
    assert labels["2026"] == "2026年（进行中）" and labels["2025"] == "2025年"
    en = dict(period_choices(datetime(2026, 1, 15), "en"))
    assert en["2025-12"] == "Dec 2025" and en["2026-01"] == "This month (in progress)"
    assert default_period(datetime(2026, 1, 15)) == "2025-12"
    assert default_period(datetime(2026, 7, 1)) == "2026-06"


def test_last_month_stays_the_default_and_the_month_so_far_says_so(client: TestClient) -> None:
    page = client.get("/evaluation/board", headers={"Accept-Language": "zh-CN"})
    assert page.status_code == 200
    config = json.loads(page.text.split('id="board-config">', 1)[1].split("</script>", 1)[0])
    now = datetime.now(ZoneInfo(client.app.state.settings.cases.city_timezone))
    assert config["period"] == default_period(now)
    assert "本月（进行中）" in page.text and 'id="in-progress-note"' not in page.text
    current = f"{now.year}-{now.month:02d}"
    so_far = client.get(f"/evaluation/board?period={current}&lang=en")
    assert f'<option value="{current}" selected>This month (in progress)' in so_far.text
    assert 'id="in-progress-note"' in so_far.text and "is not over" in so_far.text


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_count_of_an_explanation_has_a_word(lang: str) -> None:
    for kind, names in AGGREGATES.items():
        for name in names:
            key = f"evalboard.agg.{kind}.{name}"
            assert translate(lang, key) != key, (lang, key)
