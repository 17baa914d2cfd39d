"""OSM tags → city-part (部件) classes, from the mapping table ``gridcore/data/osm_part_map.csv``.

Rows are tried in priority order (lowest first); ``*`` matches any value of the key. The first
match wins, so a node tagged both ``highway=street_lamp`` and ``man_made=surveillance`` is a
street lamp.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from gridcore.errors import ValidationError


@dataclass(frozen=True, slots=True)
class OsmRule:
    priority: int
    key: str
    value: str
    class_code: str


class OsmPartMapping:
    def __init__(self, rules: list[OsmRule]) -> None:
        self.rules = sorted(rules, key=lambda r: (r.priority, r.value == "*"))
        self.keys = frozenset(r.key for r in self.rules)

    @classmethod
    def from_csv_text(cls, text: str) -> OsmPartMapping:
        rules = []
        for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
            try:
                rules.append(OsmRule(int(row["priority"]), row["key"].strip(),
                                     row["value"].strip(), row["class_code"].strip()))
            except (KeyError, ValueError, AttributeError) as exc:
                raise ValidationError(f"osm_part_map.csv line {line}: {exc}", line=line) from exc
        return cls(rules)

    @classmethod
    def default(cls) -> OsmPartMapping:
        path = resources.files("gridcore") / "data" / "osm_part_map.csv"
        return cls.from_csv_text(path.read_text("utf-8"))

    def class_of(self, tags: Mapping[str, str]) -> str | None:
        """The city-part class code for a node's tags, or None when it is no city part."""
        if not self.keys.intersection(tags):
            return None
        for rule in self.rules:
            value = tags.get(rule.key)
            if value is not None and (rule.value == "*" or rule.value == value):
                return rule.class_code
        return None
