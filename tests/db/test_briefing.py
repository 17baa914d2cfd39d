"""The data briefing (数据简报) of the planted month: the PDF through WeasyPrint read back with
poppler (pdftotext finds the key figures and names, pdftoppm renders every page — saved under
test-artifacts/ to look at — and pdffonts shows every font embedded), the HTML page, the CLI."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine

from api.routes.briefing_doc import briefing_html, briefing_pdf, rate_bars, summary
from api.routes.evaluation import evaluation_model
from gridcore.evaluation import Period
from gridcore.evaluation.briefing import ClassGrowth, Compared
from gridcore.settings import CaseSettings, Settings
from layers.evaluation.briefing import briefing_data
from tests.support.evaluation_planting import PERIOD, plant_month

POPPLER = shutil.which("pdftotext") and shutil.which("pdftoppm") and shutil.which("pdffonts")
CASES = CaseSettings(calendar="chinese", city_timezone="Asia/Shanghai")
MODEL = evaluation_model(Settings(cases=CASES))


@pytest.fixture(scope="module")
def pdf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("briefing")


def test_briefing_pdf_has_the_figures_names_pages_and_fonts(db: Engine, pdf_dir: Path,
                                                           artifacts: Path) -> None:
    # scripts/install.sh --test installs poppler-utils: absent is a broken install, not a skip
    assert POPPLER, "pdftotext, pdftoppm and pdffonts (poppler-utils) are missing"
    plant_month(db)
    pdf = pdf_dir / "briefing.pdf"
    pdf.write_bytes(briefing_pdf(db, CASES, MODEL, Period.parse(PERIOD), "320508"))
    shutil.copy(pdf, artifacts / "briefing-2026-10.pdf")
    words = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                           text=True, check=True).stdout
    flat = re.sub(r"\s+", "", words)
    for expected in ("姑苏区城市运行管理数据简报（2026-10）", "受理案件数", "结案率",
                     "按期结案率", "返工率", "去年同期", "环比", "暴露垃圾", "市政设施",
                     "市容环卫", "平江街道", "按时处置率"):
        assert expected in flat, expected
    # the planted month: 8 cases received (K1–K6, K8 — K9 came in September — plus none
    # voided), 5 registered, closed 5 of 6 due (83.3 %)
    assert "83.3%" in flat and "受理案件" in flat
    # the planted month has no year-before rates: the table says "—", the chart draws no bar
    # (never a 0.0 bar) and its caption says so
    assert "无数据的比率不画柱" in flat
    # a Chinese briefing carries no English footnote: the formula-source note is Chinese too
    assert "公式原文尚未与正式发布的标准逐条核对" in flat
    assert "NOT verified" not in words and "formulas follow" not in words
    english = re.findall(r"[A-Za-z]{3,}(?:[ ,]+[A-Za-z]{3,}){3,}", words)
    assert english == [], english
    pages = int(re.search(r"Pages:\s+(\d+)",
                          subprocess.run(["pdfinfo", str(pdf)], capture_output=True,
                                         text=True).stdout).group(1))
    pages_dir = artifacts / "briefing-pages"
    shutil.rmtree(pages_dir, ignore_errors=True)
    pages_dir.mkdir()
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), str(pages_dir / "page")],
                   check=True)
    rendered = sorted(pages_dir.glob("page-*.png"))
    assert len(rendered) == pages >= 2
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True,
                           check=True).stdout.splitlines()[2:]
    assert fonts and all(line.split()[-5] == "yes" for line in fonts), fonts  # "emb" column
    assert any("WenQuanYi" in line for line in fonts)


def test_briefing_numbers_and_summary(db: Engine) -> None:
    plant_month(db)
    data = briefing_data(db, MODEL, Period.parse(PERIOD), CASES.working_calendar, "320508")
    figures = {f.key: f for f in data.figures}
    assert figures["cases"].value == 6  # K1–K6 and K8 reported in October, K4 voided
    assert figures["registered"].value == 5
    assert figures["closure_rate"].value == pytest.approx(5 / 6)
    assert figures["cases"].previous == 1 and figures["cases"].year_before == 0
    assert [c.category for c in data.classes] == ["E0102"]
    text = summary(data, "zh-CN", {"best": [], "worst": []}, None)
    assert text.startswith("2026-10，姑苏区共受理案件6件") and "结案率83.3%" in text


def test_briefing_html_and_cli(db: Engine, tmp_path: Path, cli_env: dict) -> None:
    plant_month(db)
    html = briefing_html(db, CASES, MODEL, Period.parse(PERIOD), None)
    assert "<script" not in html and 'src="data:image/png;base64,' in html
    assert "姑苏区" in html and "按期结案率" in html
    assert "公式原文尚未与正式发布的标准逐条核对" in html and "not verified" not in html
    english = briefing_html(db, CASES, MODEL, Period.parse(PERIOD), None, lang="en")
    assert "were not verified against the published standards" in english
    assert "公式原文" not in english
    out = tmp_path / "b.html"
    done = subprocess.run([".venv/bin/gridcore", "briefing", "--period", PERIOD, "-o",
                           str(out)], capture_output=True, text=True, env={**cli_env,
                           "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert "姑苏区" in out.read_text("utf-8")
    bad = subprocess.run([".venv/bin/gridcore", "briefing", "--period", "2026-13", "-o",
                          str(out)], capture_output=True, text=True,
                         env={**cli_env, "PATH": "/usr/bin:/bin"})
    assert bad.returncode == 2 and "period" in bad.stderr


def test_briefing_chart_leaves_a_gap_for_a_missing_value() -> None:
    rates = [Compared("closure_rate", 0.8, None, 0.5, True),
             Compared("on_time_rate", 0.6, 0.0, None, True)]
    assert rate_bars(rates, "value") == ([0, 1], [80.0, 60.0])
    assert rate_bars(rates, "previous") == ([1], [0.0])  # a real 0 % is drawn; None is not
    assert rate_bars(rates, "year_before") == ([0], [50.0])


def test_an_english_briefing_names_the_classes_in_english(db: Engine) -> None:
    """The briefing a city sends in English named its problem classes in Chinese (暴露垃圾 in
    the table, the chart and the summary) and wrote the sub-area's growth in full-width
    brackets."""
    plant_month(db)
    data = briefing_data(db, MODEL, Period.parse(PERIOD), CASES.working_calendar, "320508",
                         lang="en")
    assert [(c.category, c.name) for c in data.classes] == [("E0102", "exposed garbage")]
    assert "exposed garbage" in summary(data, "en", {"best": [], "worst": []}, None)
    english = briefing_html(db, CASES, MODEL, Period.parse(PERIOD), "320508", lang="en")
    assert "exposed garbage" in english and "暴露垃圾" not in english
    assert "（" not in english and "）" not in english
    chinese = briefing_html(db, CASES, MODEL, Period.parse(PERIOD), "320508")
    assert "暴露垃圾" in chinese and "exposed garbage" not in chinese


def test_an_english_briefing_writes_its_heads_as_labels(db: Engine) -> None:
    """The English briefing's headings, column heads and names standing alone began with a
    lower-case letter ("streets", "highest scores", "rank", "this period", "cases
    received"), unlike every English page."""
    plant_month(db)
    english = briefing_html(db, CASES, MODEL, Period.parse(PERIOD), "320508", lang="en")
    lower = re.findall(r"<(?:th|h2|h3)>[a-z][^<]*", english)
    assert lower == [], lower
    for head in ("<th>Rank</th>", "<th>This period</th>", "<th>Cases received</th>",
                 "<th>Exposed garbage</th>", "<h3>Highest scores</h3>"):
        assert head in english, head
    assert "<th>类别</th>" in briefing_html(db, CASES, MODEL, Period.parse(PERIOD), "320508")
    # a class's name beginning a sentence of the summary begins with a capital too
    data = briefing_data(db, MODEL, Period.parse(PERIOD), CASES.working_calendar, "320508",
                         lang="en")
    data.classes = [ClassGrowth("E0102", "exposed garbage", 3, 1, "Pingjiang street", 2)]
    text = summary(data, "en", {"best": [], "worst": []}, None)
    assert "). Exposed garbage grew most (+2), mainly in Pingjiang street." in text, text
    assert "most frequent class was exposed garbage" in text, text
