"""Model bytes: a trained model with its metadata, for the model table (version, metrics…).

Layout: a magic line, a JSON header (kind, library versions, the caller's metadata), then the
zlib-compressed pickle of the model. The header is read and checked *before* anything is
unpickled, so a model written by another scikit-learn version is refused with a clear message
instead of failing deep inside unpickling or, worse, loading with silently different behaviour.

Pickle runs code on load: only load bytes that this project wrote into its own database.
"""

from __future__ import annotations

import json
import pickle
import platform
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import scipy
import sklearn

from gridcore.intelligence.errors import ModelFormatError

MAGIC = b"GRIDCORE-MODEL/1\n"


def library_versions() -> dict[str, str]:
    """The versions whose change may alter a pickled model's behaviour."""
    return {"sklearn": sklearn.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "python": platform.python_version()}


@dataclass(frozen=True, slots=True)
class LoadedModel:
    model: object
    kind: str
    metadata: dict[str, Any]
    versions: dict[str, str]
    saved_at: str


def dumps(model: object, *, kind: str, metadata: Mapping[str, Any] | None = None) -> bytes:
    """Serialise ``model`` (any picklable object) with its kind and JSON-able metadata."""
    header = {"kind": kind, "versions": library_versions(),
              "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "metadata": dict(metadata or {})}
    try:
        head = json.dumps(header, ensure_ascii=False, sort_keys=True).encode()
    except TypeError as exc:
        raise ModelFormatError(f"model metadata must be JSON-serialisable: {exc}") from exc
    body = zlib.compress(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), 3)
    return MAGIC + len(head).to_bytes(4, "big") + head + body


def read_header(data: bytes) -> dict[str, Any]:
    """The header of stored model bytes, without unpickling the model."""
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise ModelFormatError("these bytes are not a gridcore model (bad magic)")
    at = len(MAGIC)
    size = int.from_bytes(data[at:at + 4], "big")
    try:
        header: dict[str, Any] = json.loads(data[at + 4:at + 4 + size])
    except ValueError as exc:
        raise ModelFormatError(f"the model header is damaged: {exc}") from exc
    return header


def loads(data: bytes, *, kind: str | None = None, strict_python: bool = False) -> LoadedModel:
    """Load model bytes; refuse another kind or another scikit-learn / numpy major version.

    scikit-learn only promises that a pickle loads in the exact version that wrote it, so any
    sklearn difference is refused: retrain (``gridcore learn``) after upgrading.
    """
    header = read_header(data)
    if kind is not None and header.get("kind") != kind:
        raise ModelFormatError(f"stored model is a {header.get('kind')!r} model, "
                               f"expected {kind!r}")
    saved = header.get("versions", {})
    here = library_versions()
    problems = []
    if saved.get("sklearn") != here["sklearn"]:
        problems.append(f"scikit-learn {saved.get('sklearn')} (this process has "
                        f"{here['sklearn']})")
    if str(saved.get("numpy", "")).split(".")[0] != here["numpy"].split(".")[0]:
        problems.append(f"numpy {saved.get('numpy')} (this process has {here['numpy']})")
    if strict_python and saved.get("python") != here["python"]:
        problems.append(f"Python {saved.get('python')} (this process has {here['python']})")
    if problems:
        raise ModelFormatError(
            f"the {header.get('kind')} model saved at {header.get('saved_at')} was written by "
            f"{', '.join(problems)}; it cannot be loaded safely — retrain it with this version")
    at = len(MAGIC) + 4 + int.from_bytes(data[len(MAGIC):len(MAGIC) + 4], "big")
    try:
        model = pickle.loads(zlib.decompress(data[at:]))  # noqa: S301 - our own model table
    except Exception as exc:  # damaged or truncated payload
        raise ModelFormatError(f"the model payload cannot be read: {exc}") from exc
    return LoadedModel(model, str(header["kind"]), dict(header.get("metadata", {})),
                       dict(saved), str(header.get("saved_at")))
