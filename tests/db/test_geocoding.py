"""Geocoding against the real Helsinki extract's addresses and streets, and planted Chinese
addresses: misspelled and partial input, a house number that does not exist, named places,
intersections in Chinese and in Latin script, every candidate with its grid and terms."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from layers.channels.geocoder import Geocoder
from layers.grids.resolver import Resolver
from tests.support import helsinki_city
from tests.support.database import truncate_all


@pytest.fixture(scope="module")
def geocoder(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Geocoder]:
    truncate_all(engine)
    helsinki_city.plant(engine)
    helsinki_city.import_helsinki_addresses(engine, tmp_path_factory.mktemp("addresses"))
    resolver = Resolver(engine)
    yield Geocoder(engine, resolver)
    resolver.close()
    truncate_all(engine)


def best(geocoder: Geocoder, q: str) -> dict[str, object]:
    found = geocoder.geocode(q)["candidates"]
    assert found, f"nothing found for {q!r}"
    return found[0]


@pytest.mark.parametrize("q,label,floor", [
    ("Mannerheimintie 6", "Mannerheimintie 6", 1.0),        # as written
    ("mannerheimintie 6", "Mannerheimintie 6", 1.0),        # case
    ("Manerheimintie 6", "Mannerheimintie 6", 0.85),        # one letter missing
    ("Mannerheimvägen 6", "Mannerheimintie 6", 1.0),        # the Swedish name of the street
    ("Toolonlahdenkatu 2", "Töölönlahdenkatu 2", 1.0),      # without the diacritics
    ("Anankatu 18", "Annankatu 18", 0.8),                   # a typo in a short name
    ("Aleksanterinkatu 21", "Aleksanterinkatu 21", 1.0),
    ("Fabianinktu 14", "Fabianinkatu 14", 0.8),
])
def test_real_addresses_from_misspelled_input(geocoder: Geocoder, q: str, label: str,
                                             floor: float) -> None:
    top = best(geocoder, q)
    assert top["kind"] == "address" and top["label"] == label
    assert floor <= float(top["confidence"]) <= 1.0  # type: ignore[arg-type]
    assert top["match"]["house_number"] == "exact"  # type: ignore[index]
    assert str(top["grid_code"]).startswith(helsinki_city.COMMUNITY) and top["inside"]


def test_a_missing_house_number_is_not_sure(geocoder: Geocoder) -> None:
    answer = geocoder.geocode("Annankatu 2")
    assert answer["query"]["readings"] == ["address", "text"]
    top = answer["candidates"][0]
    assert top["confidence"] < 0.75  # another number stands in: filed for a person to place
    annankatu = [c for c in answer["candidates"] if c.get("street") == "Annankatu"]
    assert annankatu and annankatu[0]["match"].get("house_number") in ("other", None)


@pytest.mark.parametrize("q,name,floor", [
    ("Hilton Helsinki Strand", "Hilton Helsinki Strand", 1.0),
    ("Strand Hilton Helsinki", "Hilton Helsinki Strand", 1.0),  # any word order
    ("Hiltn Helsinki Strnd", "Hilton Helsinki Strand", 0.55),  # typos
    ("Hilton", "Hilton Helsinki Strand", 0.6),                 # partial
    ("Paaposti", "Pääposti", 0.95),
])
def test_real_named_places(geocoder: Geocoder, q: str, name: str, floor: float) -> None:
    top = best(geocoder, q)
    assert top["kind"] == "place" and top["name"] == name
    assert float(top["confidence"]) >= floor  # type: ignore[arg-type]


def test_partial_input_is_less_sure_than_the_whole_name(geocoder: Geocoder) -> None:
    whole = best(geocoder, "Hilton Helsinki Strand")["confidence"]
    partial = best(geocoder, "Hilton")["confidence"]
    assert partial < whole  # type: ignore[operator]


@pytest.mark.parametrize("q", ["Mannerheimintie & Kaivokatu", "Kaivokatu and Mannerheimintie",
                               "Manerheimintie ja Kaivokatu",
                               "corner of Mannerheimintie and Kaivokatu"])
def test_real_intersection(geocoder: Geocoder, q: str) -> None:
    top = best(geocoder, q)
    assert top["kind"] == "intersection"
    assert set(top["streets"]) == {"Mannerheimintie", "Kaivokatu"}  # type: ignore[arg-type]
    # where the two real streets meet, in central Helsinki
    assert 24.938 < float(top["lon"]) < 24.945 and 60.168 < float(top["lat"]) < 60.172  # type: ignore[arg-type]
    assert float(top["confidence"]) >= 0.8  # type: ignore[arg-type]


@pytest.mark.parametrize("q,label,floor", [
    ("建国路88号", "建国路 88号", 1.0),
    ("北京市朝阳区建国路88号", "建国路 88号", 1.0),   # an administrative prefix before it
    # traditional characters: the pinyin agrees, the characters do not (no traditional →
    # simplified table): found as a homophone is
    ("建國路88號", "建国路 88号", 0.75),
    ("建果路88号", "建国路 88号", 0.7),               # a homophone typed through pinyin
    ("jianguolu 88", "建国路 88号", 0.9),             # pinyin
    ("东三环中路1号", "东三环中路 1号", 1.0),
])
def test_planted_chinese_addresses(geocoder: Geocoder, q: str, label: str, floor: float) -> None:
    top = best(geocoder, q)
    assert top["kind"] == "address" and top["label"] == label
    assert float(top["confidence"]) >= floor  # type: ignore[arg-type]


def test_chinese_places_and_intersection(geocoder: Geocoder) -> None:
    place = best(geocoder, "国贸大厦")
    assert place["kind"] == "place" and place["confidence"] == 1.0
    assert best(geocoder, "国茂大厦")["name"] == "国贸大厦"  # one character wrong
    for q in ("建国路与东三环中路交叉口", "建国路和东三环中路路口", "建国路/东三环中路"):
        top = best(geocoder, q)
        assert top["kind"] == "intersection" and top["confidence"] == 1.0
        assert abs(float(top["lon"]) - 24.9450) < 1e-6  # type: ignore[arg-type]
        assert abs(float(top["lat"]) - 60.1700) < 1e-6  # type: ignore[arg-type]


def test_nothing_found_is_an_empty_answer(geocoder: Geocoder) -> None:
    answer = geocoder.geocode("Zzyzx Qwrtplk 999")
    assert all(c["confidence"] < 0.5 for c in answer["candidates"])


def test_a_street_alone_is_a_point_on_it_and_not_sure(geocoder: Geocoder) -> None:
    streets = [c for c in geocoder.geocode("Bulevardi")["candidates"] if c["kind"] == "street"]
    assert streets and streets[0]["confidence"] <= 0.6
    assert streets[0]["match"]["precision"] == "street without a house number"
