"""Briefing (数据简报) arithmetic: key figures against the previous period (环比) and the same
period a year earlier (同比), and the growth of problem classes. Pure numbers; the words are
the catalogue's (``api/i18n/messages/<lang>/briefing.json``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Compared:
    """A figure now, in the previous period and a year earlier. Rates are ratios (0…1);
    their changes are in percentage points, counts' changes in per cent."""

    key: str
    value: float | None
    previous: float | None
    year_before: float | None
    is_rate: bool

    def _change(self, other: float | None) -> float | None:
        if self.value is None or other is None:
            return None
        if self.is_rate:
            return 100.0 * (self.value - other)  # percentage points
        if other == 0:
            return None
        return 100.0 * (self.value - other) / other  # per cent

    @property
    def vs_previous(self) -> float | None:
        return self._change(self.previous)

    @property
    def vs_year_before(self) -> float | None:
        return self._change(self.year_before)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


@dataclass(frozen=True)
class ClassGrowth:
    category: str
    name: str
    count: int
    previous: int
    grew_most_in: str | None = None  # the sub-area where it grew most
    grew_by: int = 0

    @property
    def growth_pct(self) -> float | None:
        return None if self.previous == 0 else 100.0 * (self.count - self.previous) / \
            self.previous


def top_classes(now: dict[str, int], before: dict[str, int], names: dict[str, str],
                n: int = 5) -> list[ClassGrowth]:
    """The ``n`` classes with the most cases now (ties by the larger growth, then key)."""
    ranked = sorted(now, key=lambda k: (-now[k], -(now[k] - before.get(k, 0)), k))
    return [ClassGrowth(k, names.get(k, k), now[k], before.get(k, 0)) for k in ranked[:n]]
