"""Photos sent as multipart file parts (a report's, a step's, a thread message's): each read
up to its limit and checked by its content (``gridcore.intake.check_photo``)."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import UploadFile

from gridcore.errors import ValidationError
from gridcore.intake import Photo, check_photo
from gridcore.settings import CaseSettings


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
