"""Case settings (env prefix ``GRIDCORE_``): media directory, photo limits, calendar, Open311."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from gridcore.calendar import WorkingCalendar
from layers.settings import default_data_dir


class CaseSettings(BaseSettings):
    """``GRIDCORE_MEDIA_DIR`` where photos go; ``GRIDCORE_MAX_PHOTO_BYTES``;
    ``GRIDCORE_CITY_TIMEZONE``; ``GRIDCORE_WORKING_HOURS`` (``08:30-12:00,13:30-17:30``);
    ``GRIDCORE_CALENDAR`` = ``chinese`` | ``weekdays`` | path of a JSON calendar (see
    :meth:`gridcore.calendar.WorkingCalendar.from_data`); ``GRIDCORE_OPEN311_API_KEYS`` a comma
    list of accepted keys (until real API keys exist); ``GRIDCORE_DEDUP_WINDOW_H``;
    ``GRIDCORE_INTAKE_THREADS`` how many groups of reports one process files at once
    (``api.intake_groups``: the reports that arrive meanwhile wait on the event loop and go
    as the next group)."""

    model_config = SettingsConfigDict(env_prefix="GRIDCORE_", env_file=None, extra="ignore")

    media_dir: Path = default_data_dir() / "media"
    max_photo_bytes: int = 5 * 1024 * 1024
    max_photos: int = 6
    city_timezone: str = "Asia/Shanghai"
    working_hours: str | None = None
    calendar: str = "chinese"
    open311_api_keys: str = ""
    open311_jurisdiction: str = "gridcore"
    dedup_window_h: float = 72.0
    # Two: while one group waits for the database, the other's Python runs. With more, groups
    # shrink towards one report each and the per-statement costs come back (bench_intake at 8
    # connections: 845 cases/s with 2, 764 with 3, 684 with 4; 2.09, 2.42 and 2.60 ms of CPU
    # per case).
    intake_threads: int = 2

    @cached_property
    def working_calendar(self) -> WorkingCalendar:
        if self.calendar == "chinese":
            return WorkingCalendar.chinese(self.city_timezone, self.working_hours)
        if self.calendar == "weekdays":
            return WorkingCalendar.weekdays(self.city_timezone, self.working_hours)
        data = json.loads(Path(self.calendar).read_text("utf-8"))
        data.setdefault("timezone", self.city_timezone)
        return WorkingCalendar.from_data(data)

    def api_keys(self) -> set[str]:
        return {k.strip() for k in self.open311_api_keys.split(",") if k.strip()}
