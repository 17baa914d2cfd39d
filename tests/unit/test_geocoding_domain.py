"""Geocoding's domain: search keys (folding, pinyin, Chinese bigrams), reading a query
(intersection, street + number, Chinese administrative prefix) and scoring candidates."""

from __future__ import annotations

import pytest

from gridcore.errors import ValidationError
from gridcore.geocoding import (
    Candidate,
    TextMatch,
    cjk_grams,
    number_agreement,
    number_key,
    parse,
    rank,
    search_key,
)
from gridcore.geocoding.query import Street


def test_keys_fold_case_diacritics_width_and_abbreviations() -> None:
    assert search_key("Töölönlahdenkatu") == "toolonlahdenkatu"
    assert search_key("ＭＡＩＮ　St.") == "main street"
    assert search_key("建國路") == search_key("建国路") == "jianguolu"  # traditional = simplified
    assert search_key("建国路88号") == "jianguolu 88 hao"
    assert cjk_grams("建国路") == ["国路", "建国"]
    assert cjk_grams("Kaivokatu") == []


@pytest.mark.parametrize("text,key", [("3 B", "3b"), ("88号", "88"), ("1-3", "1-3"),
                                      ("2, 2. krs./Floor 2", "2"), ("", ""), ("A", "")])
def test_house_number_keys(text: str, key: str) -> None:
    assert number_key(text) == key


@pytest.mark.parametrize("q,street,number", [
    ("Mannerheimintie 6", "Mannerheimintie", "6"), ("Bulevardi 7 A", "Bulevardi", "7a"),
    ("6 Main St", "Main St", "6"), ("Mannerheimintie 3 B 12", "Mannerheimintie", "3b"),
    ("建国路88号", "建国路", "88"), ("建國路88號", "建國路", "88")])
def test_street_and_number(q: str, street: str, number: str) -> None:
    read = parse(q)
    assert read.street is not None and read.street.text == street and read.number == number
    assert read.readings == ["address", "text"]


def test_chinese_administrative_prefix_is_set_apart() -> None:
    read = parse("北京市朝阳区建国路88号")
    assert read.admin == "北京市朝阳区" and read.street is not None
    assert read.street.text == "建国路" and read.number == "88"
    assert read.as_dict()["ignored_prefix"] == "北京市朝阳区"


@pytest.mark.parametrize("q,a,b", [
    ("建国路与东三环中路交叉口", "建国路", "东三环中路"),
    ("建国路和东三环中路路口", "建国路", "东三环中路"),
    ("建国路/东三环中路", "建国路", "东三环中路"),
    ("Mannerheimintie & Kaivokatu", "Mannerheimintie", "Kaivokatu"),
    ("X St & Y St", "X St", "Y St"),
    ("corner of Annankatu and Bulevardi", "Annankatu", "Bulevardi"),
    ("Mannerheimintie ja Kaivokatu", "Mannerheimintie", "Kaivokatu")])
def test_intersections(q: str, a: str, b: str) -> None:
    read = parse(q)
    assert read.crossing is not None and [s.text for s in read.crossing] == [a, b]
    assert read.readings[0] == "intersection" and "text" in read.readings


def test_a_place_name_is_no_intersection_in_chinese_without_a_suffix() -> None:
    assert parse("人民公园和平门").crossing is None  # neither side ends as a street
    assert parse("Anderson Bar").crossing is None  # "and" inside a word


@pytest.mark.parametrize("q", ["", "   ", "!!!", "x" * 201])
def test_bad_queries_name_the_field(q: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse(q)
    assert err.value.details["field"] == "q"


def test_number_agreement() -> None:
    assert number_agreement("6", "6") == "exact"
    assert number_agreement("6", "6b") == "letter"
    assert number_agreement("2", "1-3") == "range"
    assert number_agreement("6", "8") == "other"
    assert number_agreement("", "8") is None


def test_text_scores_typos_partial_and_homophones() -> None:
    asked = Street.of("Anankatu")
    # one missing letter: trigrams alone give 0.73, the edit similarity lifts it
    assert TextMatch(0.727, 0.727, 0.727, (), "annankatu").score(asked) > 0.8
    zh = Street.of("建果路")  # a homophone typo: pinyin agrees, characters do not
    homophone = TextMatch(1.0, 1.0, 1.0, tuple(cjk_grams("建国路")), "jianguolu").score(zh)
    exact = TextMatch(1.0, 1.0, 1.0, tuple(cjk_grams("建果路")), "jianguolu").score(zh)
    assert exact == 1.0 and 0.7 <= homophone < exact
    # a place's short name inside a long query covers little of it
    long = Street.of("Hiltn Helsinki Strnd")
    assert TextMatch(0.3, 0.3, 1.0, (), "helsinki").score(long, covering=True) < 0.5


def _c(kind: str, label: str, score: float, lon: float = 24.94, lat: float = 60.17,
       **kw: object) -> Candidate:
    return Candidate(kind, label, lon, lat, score, **kw)  # type: ignore[arg-type]


def test_rank_scores_precision_dedupes_and_flags_ambiguity() -> None:
    ranked = rank([_c("address", "A 6", 1.0, number="exact"),
                   _c("address", "A 6", 1.0, number="exact", lon=24.9405),  # same address
                   _c("street", "A", 1.0), _c("address", "A 8", 1.0, number="other")])
    assert [c.label for c in ranked] == ["A 6", "A 8", "A"]
    assert ranked[0].confidence == 1.0 and ranked[1].confidence == 0.6
    assert ranked[2].confidence == 0.6 and ranked[2].terms["precision"]
    twins = rank([_c("place", "P", 1.0), _c("place", "Q", 0.95, lat=60.18)])
    assert twins[0].confidence == 0.8 and twins[0].terms["ambiguous_with"] == "Q"
    apart = rank([_c("place", "P", 1.0), _c("place", "Q", 0.9, lat=60.18)])
    assert apart[0].confidence == 1.0 and "ambiguous_with" not in apart[0].terms
    near_miss = rank([_c("intersection", "A / B", 1.0, touching=False)])
    assert near_miss[0].confidence == 0.9


def test_chinese_place_names_ending_in_qu_and_numbers_without_hao() -> None:
    """A 社区 / 小区 is no district (区), and a caller's "多福巷30" names house number 30."""
    from gridcore.geocoding.query import parse

    place = parse("多福巷社区服务站")
    assert place.admin == "" and place.readings == ["text"]
    assert parse("阳光小区3号楼").admin == ""
    bare = parse("多福巷30")
    assert (bare.street.text if bare.street else None, bare.number) == ("多福巷", "30")
    prefixed = parse("北京市东城区多福巷12号")
    assert prefixed.admin == "北京市东城区" and prefixed.number == "12"
