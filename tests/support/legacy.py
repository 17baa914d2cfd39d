"""Legacy case files for the import tests and the benchmarks: the real SF 311 sample, the
SeeClickFix reports and the Chinese hotline messages (from ``../shared/data``, never copied),
with the departments and mapping tables a city would write for them (made here, in a temporary
directory)."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from tests.support.data import shared_file

SF_CASES = "san_francisco/sf311_cases_sample.csv"
# SF 311's categories → gridcore's taxonomy (what a city's mapping table says); the rest: other
SF_CATEGORIES = {
    "Street and Sidewalk Cleaning": "E0103", "Graffiti Public Property": "E0106",
    "Graffiti Private Property": "E0106", "Abandoned Vehicle": "E0505",
    "Sewer Issues": "P0102", "Streetlights": "P0120", "Street Defects": "E0401",
    "Tree Maintenance": "P0402", "Litter Receptacles": "P0304", "Illegal Postings": "E0201",
    "Blocked Street or SideWalk": "E0105", "Catch Basin Maintenance": "P0103",
    "Noise Report": "E0301"}
SF_SOURCES = {"Voice In": "hotline", "Open311": "open311", "Web Self Service": "citizen",
              "Twitter": "citizen", "e-mail In": "citizen", "Mail In": "citizen"}


def sf_frame() -> pd.DataFrame:
    return pd.read_csv(shared_file(SF_CASES), dtype=str, keep_default_na=False)


def sf_agency_codes(frame: pd.DataFrame | None = None) -> dict[str, str]:
    """Each SF agency → a department code (SF001…), in name order."""
    frame = sf_frame() if frame is None else frame
    agencies = sorted(a for a in set(frame["Responsible.Agency"]) if a)
    return {a: f"SF{i + 1:03d}" for i, a in enumerate(agencies)}


def write_sf_departments(folder: Path, frame: pd.DataFrame | None = None) -> Path:
    path = folder / "sf_departments.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["code", "name"])
        for agency, code in sf_agency_codes(frame).items():
            w.writerow([code, agency])
    return path


def write_sf_mapping(folder: Path, frame: pd.DataFrame | None = None,
                     categories: dict[str, str] | None = None) -> Path:
    """The mapping table: SF categories (the listed ones; others left unmapped), every
    agency, the channels."""
    path = folder / "sf_mapping.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["kind", "value", "code"])
        for value, code in (categories if categories is not None else SF_CATEGORIES).items():
            w.writerow(["category", value, code])
        for agency, code in sf_agency_codes(frame).items():
            w.writerow(["department", agency, code])
        for value, code in SF_SOURCES.items():
            w.writerow(["source", value, code])
    return path


SF_OPTIONS = dict(id_field="CaseID", opened_field="Opened", closed_field="Closed",
                  text_fields=("Request.Type", "Request.Details"), category_field="Category",
                  department_field="Responsible.Agency", address_field="Address",
                  state_field="Status", source_field="Source", notes_field="Status.Notes")


SCF_CASES = "text/en_seeclickfix_georgia.csv"
SCF_TYPES = {"Pothole/paving": "E0401", "Garbage": "E0102", "Dumping/debris": "E0104",
             "Tree": "P0402", "Street lighting": "P0120", "Street cleaning": "E0103",
             "Illegal sign": "E0202", "Fire hydrant": "P0117", "Parking": "E0503",
             "Water/sewage system": "P0102"}
SCF_OPTIONS = dict(id_field="issue_id", opened_field="created_at",
                   text_fields=("summary", "description"), category_field="type",
                   state_field="status", address_field="address")
SCF_TIME_FORMAT = "%m/%d/%Y - %I:%M%p"

HOTLINE_REPLIES = "text/cn_hotline_messages_with_replies.csv"
HOTLINE_UNLABELLED = "text/cn_hotline_messages_unlabelled.csv"
HOTLINE_LABELLED = "text/cn_hotline_labelled_train.csv"
# a message board's messages: no location, no category; the reply is how it was handled
HOTLINE_OPTIONS = dict(id_field="msg_id", opened_field="time", closed_field="reply_time",
                       text_fields=("title", "detail"), notes_field="reply")


def write_mapping(folder: Path, name: str, categories: dict[str, str]) -> Path:
    path = folder / name
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["kind", "value", "code"])
        for value, code in categories.items():
            w.writerow(["category", value, code])
    return path
