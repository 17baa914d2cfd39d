"""Photos sent as multipart file parts (a report's, a step's, a thread message's): each read
up to its limit and checked by its content (``gridcore.intake.check_photo``)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request

from gridcore.errors import ValidationError
from gridcore.intake import Photo, check_photo
from gridcore.settings import CaseSettings


async def read_form(request: Request, max_files: int, max_part_size: int) -> FormData:
    """The request's multipart form; more files than ``max_files`` is a 422 on ``photos`` in
    the caller's language (Starlette's parser said "Too many files…" in English, a 400 without
    a field: the workbench showed it as it came, the phone could not say what to fix)."""
    try:
        return await request.form(max_files=max_files, max_part_size=max_part_size)
    except HTTPException as exc:
        if exc.status_code == 400 and str(exc.detail).startswith("Too many files"):
            raise ValidationError(f"at most {max_files} photos may be sent at once",
                                  field="photos", limit=max_files,
                                  msg_key="too_many_photos") from None
        raise


async def form_photos(form: Any, settings: CaseSettings, field: str = "photos") -> list[Photo]:
    """The checked photos of the form's ``field`` parts; a part that is not a file is a 422."""
    photos = []
    for item in form.getlist(field):
        if not isinstance(item, UploadFile):
            raise ValidationError(f"{field} must be file parts", field=field)
        blob = await item.read(settings.max_photo_bytes + 1)
        photos.append(check_photo(item.filename or "photo", blob, settings.max_photo_bytes,
                                  settings.max_photo_pixels))
    return photos
