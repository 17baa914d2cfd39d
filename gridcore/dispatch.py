"""Dispatch rules (权责清单): category × area → the department responsible (智能派遣).

A rule says "reports of class K inside area A go to department D". Areas are nested
grid ⊂ community ⊂ street ⊂ district ⊂ city; for a report the MOST SPECIFIC matching area wins.
A city part's own unit overrides every area rule: its maintenance unit (养护单位), else its
owner (权属单位) — a broken lamp goes to whoever maintains that lamp. A case sent back (退单)
is re-proposed with the refusing departments in ``exclude``: the next candidate in the same
order (owner override, then rules from specific to general) is proposed instead.

A rule may name a level's team instead of a department (``team_level``: community, street or
district): the team of that level of the area the report lies in (小事不出社区: the community's
own team takes the small things) — the department marked ``level_team`` for that area. An area
without such a team skips the rule, and the proposal says so.

Every proposal carries a sentence naming the rule (or the part) that decided it. Pure domain:
the rules come in as values; ``layers.grids.dispatch_rules`` loads and saves them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from gridcore.errors import ImportRejected

LEVELS = ("grid", "community", "street", "district", "city")  # most specific first
CODE_LENGTH = {"grid": 15, "community": 12, "street": 9, "district": 6}
TEAM_LEVELS = ("community", "street", "district")


@dataclass(frozen=True, slots=True)
class DispatchRule:
    category_key: str
    area_level: str
    area_code: str | None
    department_code: str
    note: str = ""
    id: int | None = None
    team_level: str | None = None  # instead of a department: that level's team of the area

    def describe(self, team: str | None = None) -> str:
        """The rule in words (``team``: the team it named for this report's area)."""
        where = "the whole city" if self.area_level == "city" else (
            f"{self.area_level} {self.area_code}")
        ref = f"#{self.id} " if self.id is not None else ""
        note = f" ({self.note})" if self.note else ""
        target = (f"the {self.team_level} team{f' {team}' if team else ''}"
                  if self.team_level else self.department_code)
        return f"dispatch rule {ref}{self.category_key} in {where} → {target}{note}"


@dataclass(frozen=True, slots=True)
class AreaPath:
    """Where a report lies: the codes of its grid and the areas above it (None = unknown)."""

    grid: str | None = None
    community: str | None = None
    street: str | None = None
    district: str | None = None

    @classmethod
    def of_grid(cls, grid_code: str | None, community_code: str | None = None) -> AreaPath:
        community = community_code or (grid_code[:12] if grid_code else None)
        return cls(grid_code, community, community[:9] if community else None,
                   community[:6] if community else None)

    def code(self, level: str) -> str | None:
        return None if level == "city" else getattr(self, level)


@dataclass(frozen=True, slots=True)
class PartUnits:
    """The linked city part's responsible units (from the city-part layer)."""

    part_code: str
    maintenance_dept: str | None = None
    owner_dept: str | None = None


@dataclass(frozen=True, slots=True)
class Proposal:
    department_code: str | None
    department_name: str | None
    reason: str
    rule: DispatchRule | None = None
    source: str = "none"  # "part-maintenance" | "part-owner" | "rule" | "none"
    excluded: tuple[str, ...] = ()


@dataclass
class DispatchRules:
    """A validated rule set with an index (category, level, code) → rule."""

    rules: list[DispatchRule]
    departments: Mapping[str, str] = field(default_factory=dict)  # code → name
    teams: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (level, area) → code

    def __post_init__(self) -> None:
        self._index: dict[tuple[str, str, str | None], DispatchRule] = {
            (r.category_key, r.area_level, r.area_code): r for r in self.rules}

    @classmethod
    def validated(cls, rules: Iterable[DispatchRule], departments: Mapping[str, str],
                  categories: Collection[str], areas: Mapping[str, Collection[str]],
                  teams: Mapping[tuple[str, str], str] | None = None) -> DispatchRules:
        """Check every rule; raise ImportRejected listing every problem (row, field, why).

        ``areas`` maps a level (grid, community, street, district) to the codes that exist;
        a rule on a code that exists nowhere can never match (unreachable)."""
        rules = list(rules)
        problems: list[dict[str, object]] = []
        seen: dict[tuple[str, str, str | None], int] = {}
        for row, r in enumerate(rules, start=1):
            def bad(field_: str, reason: str, row: int = row) -> None:
                problems.append({"row": row, "field": field_, "reason": reason})

            if r.category_key not in categories:
                bad("category_key", f"unknown class {r.category_key!r} (not in the taxonomy)")
            if r.team_level is not None:
                if r.department_code:
                    bad("team_level", "a rule names a department or a level's team, not both")
                if r.team_level not in TEAM_LEVELS:
                    bad("team_level", f"team_level {r.team_level!r} must be one of "
                                      f"{', '.join(TEAM_LEVELS)}")
                elif r.area_level in LEVELS and LEVELS.index(r.area_level) < LEVELS.index(
                        r.team_level):
                    bad("team_level", f"a {r.area_level} rule cannot name the {r.team_level} "
                                      "team: the area lies in many of them; name a level at "
                                      "or below the rule's area, or a department")
            elif r.department_code not in departments:
                bad("department_code", f"unknown department {r.department_code!r}")
            if r.area_level not in LEVELS:
                bad("area_level", f"unknown area level {r.area_level!r}; "
                                  f"one of {', '.join(LEVELS)}")
            elif r.area_level == "city":
                if r.area_code:
                    bad("area_code", "a city-wide rule takes no area code")
            elif not r.area_code or len(r.area_code) != CODE_LENGTH[r.area_level]:
                bad("area_code", f"a {r.area_level} code has {CODE_LENGTH[r.area_level]} "
                                 f"digits, got {r.area_code!r}")
            elif r.area_code not in areas.get(r.area_level, ()):
                bad("area_code", f"unreachable: {r.area_level} {r.area_code} does not exist, "
                                 "so the rule can never match")
            key = (r.category_key, r.area_level, r.area_code or None)
            if key in seen:
                bad("area_code", f"duplicates row {seen[key]} (same class and area)")
            seen.setdefault(key, row)
        if problems:
            raise ImportRejected(f"{len(problems)} problem(s) in the dispatch rules; "
                                 f"first: row {problems[0]['row']} {problems[0]['field']}: "
                                 f"{problems[0]['reason']}", problems=problems)
        return cls(rules, departments, teams or {})

    def target(self, rule: DispatchRule, where: AreaPath) -> str | None:
        """The department a rule sends a report at ``where`` to (None: no team there)."""
        if rule.team_level is None:
            return rule.department_code
        area = where.code(rule.team_level)
        return self.teams.get((rule.team_level, area)) if area else None

    def candidates(self, category_key: str, where: AreaPath) -> list[DispatchRule]:
        """Matching rules, most specific first."""
        found = []
        for level in LEVELS:
            code = where.code(level)
            if level != "city" and code is None:
                continue
            rule = self._index.get((category_key, level, code))
            if rule is not None:
                found.append(rule)
        return found

    def propose(self, category_key: str | None, where: AreaPath,
                part: PartUnits | None = None, exclude: Collection[str] = ()
                ) -> Proposal:
        excluded = tuple(sorted(set(exclude)))
        skip = set(excluded)
        skipped = f"; skipped {', '.join(excluded)} (sent back)" if excluded else ""
        if part is not None:
            for dept, role, src in ((part.maintenance_dept, "maintenance unit",
                                     "part-maintenance"),
                                    (part.owner_dept, "owner", "part-owner")):
                if dept and dept not in skip:
                    return Proposal(dept, self.departments.get(dept),
                                    f"city part {part.part_code}: its {role} {dept} overrides "
                                    f"the area rules{skipped}", None, src, excluded)
        if category_key is None:
            return Proposal(None, None, "no category given, so no dispatch rule applies",
                            excluded=excluded)
        missing = ""
        for rule in self.candidates(category_key, where):
            dept = self.target(rule, where)
            if dept is None:
                missing += (f"; skipped {rule.describe()}: the {rule.team_level} here has no "
                            "team")
                continue
            if dept in skip:
                continue
            return Proposal(dept, self.departments.get(dept),
                            f"{rule.describe(dept)}: the most specific rule for this "
                            f"location{skipped}{missing}", rule, "rule", excluded)
        skipped += missing
        return Proposal(None, None, f"no dispatch rule for {category_key} at this location"
                                    f"{skipped}; a dispatcher must choose", excluded=excluded)
