"""The collection registry: the case layer follows the columns its table has."""

from __future__ import annotations

from layers.ogc.collections import ENTITIES, STATIC, case_collection


def test_no_case_table_means_no_case_collection() -> None:
    assert case_collection(set()) is None
    assert case_collection({"id", "geom"}) is None  # no state: not a case table yet


def test_case_layer_takes_the_columns_it_finds() -> None:
    minimal = case_collection({"id", "geom", "state", "category_key"})
    assert minimal is not None
    names = [f.name for f in minimal.fields]
    assert names == ["id", "state", "category_key", "event_class", "open", "clock"]
    assert minimal.field("clock").sql == "'green'"  # no deadlines stored: no colour to show
    assert minimal.h3_aggregate_below is None and minimal.expires_sql is None
    full = case_collection({"id", "geom", "state", "warn_at", "deadline_at", "parked_since",
                            "h3", "created_at"})
    assert "t.deadline_at" in full.field("clock").sql and full.expires_sql is not None
    assert full.h3_aggregate_below == 15 and full.datetime_field == "created_at"
    assert full.id_is_integer and full.id_value("12") == 12 and full.id_value("x") is None


def test_restricted_attributes_are_never_a_field() -> None:
    for c in STATIC:
        assert all("restricted" not in f.sql for f in c.fields), c.id
    assert "restricted" in ENTITIES.where  # restricted rows are filtered out
