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
    # Groups of reports a process reads and works out at once (api.intake_groups), plus one
    # that may be writing meanwhile. One: the reports that arrive while a group is worked out
    # all go in the next one. With two, groups stayed near one report each and the
    # per-statement costs came back. bench_intake (2 workers, each on its own socket),
    # 8 connections: 990 against 885 cases/s and 1.50 against 1.97 ms of CPU per case; 16:
    # 1,388 against 1,344/s. More than two was worse still (845 / 764 / 684 cases/s with 2 / 3
    # / 4, earlier). Letting the next group start while one writes then gave 952 against
    # 833/s at 8 connections.
    intake_threads: int = 1

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
