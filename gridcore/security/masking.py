"""Masking of 9+X personal data (个人信息脱敏) — pure functions.

Restricted attributes (names, ID numbers, phone numbers, addresses of people) are shown masked
by default everywhere: ``张**``, ``3205**********1234``, ``138****5678``. The mask keeps just
enough to recognise a record one already knows (first character, region prefix, last digits)
and hides the length of names so that it cannot be guessed from the stars.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

NAME_KEYS = ("name", "姓名", "fullname", "full_name", "contact", "guardian", "reporter")
ID_KEYS = ("id_number", "idcard", "id_card", "身份证", "citizen_id", "passport")
PHONE_KEYS = ("phone", "mobile", "tel", "电话", "手机")
ADDRESS_KEYS = ("address", "住址", "地址", "residence")


def mask_name(value: str) -> str:
    """``张三`` → ``张**``; the number of stars is fixed so the name length is not revealed."""
    value = value.strip()
    return f"{value[0]}**" if value else ""


def mask_id_number(value: str) -> str:
    """Resident ID (18 chars): keep the 4-digit region prefix and the last 4 characters."""
    value = value.strip()
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def mask_phone(value: str) -> str:
    """``13812345678`` → ``138****5678``; other lengths keep 3 + 4 where possible."""
    digits = value.strip()
    if len(digits) < 8:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_address(value: str) -> str:
    """Keep the first 6 characters (district / street) and hide the rest."""
    value = value.strip()
    return value[:6] + "****" if len(value) > 6 else "****"


def _kind(key: str) -> str:
    low = key.lower()
    for kind, keys in (("id", ID_KEYS), ("phone", PHONE_KEYS), ("address", ADDRESS_KEYS),
                       ("name", NAME_KEYS)):
        if any(k in low for k in keys):
            return kind
    return "other"


def mask_value(key: str, value: Any) -> Any:
    """Mask one restricted attribute by what its key says it is; unknown kinds are hidden."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return mask_attributes(value)
    if isinstance(value, list):
        return [mask_value(key, v) for v in value]
    text = str(value)
    kind = _kind(key)
    if kind == "id":
        return mask_id_number(text)
    if kind == "phone":
        return mask_phone(text)
    if kind == "address":
        return mask_address(text)
    if kind == "name":
        return mask_name(text)
    return "***"


def mask_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {key: mask_value(key, value) for key, value in attributes.items()}


# A purpose says why personal data is looked at: four letters or digits at least, counted
# after Unicode normalisation — five zero-width spaces were once accepted as a purpose.
MIN_PURPOSE_LETTERS = 4


def stated_purpose(raw: str | None) -> str:
    """The purpose of an unmasked read as it is audited: NFKC-normalised, invisible format
    characters (zero-width spaces, joiners, direction marks) removed, trimmed; a
    ValidationError unless it holds at least ``MIN_PURPOSE_LETTERS`` letters or digits
    (Unicode categories L and N)."""
    import unicodedata

    from gridcore.errors import ValidationError

    text = unicodedata.normalize("NFKC", raw or "")
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc", "Cs"))
    text = " ".join(text.split())
    letters = sum(1 for ch in text if unicodedata.category(ch)[0] in "LN")
    if letters < MIN_PURPOSE_LETTERS:
        raise ValidationError(f"unmasking personal data needs a stated purpose with at least "
                              f"{MIN_PURPOSE_LETTERS} letters or digits (e.g. 入户走访, "
                              f"home visit)", field="purpose")
    return text
