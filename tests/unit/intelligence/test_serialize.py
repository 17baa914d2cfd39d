"""Model bytes: round trip, and clear refusals of other kinds and other library versions."""

import json

import pytest
import sklearn

from gridcore.intelligence.classify import TextClassifier
from gridcore.intelligence.errors import ModelFormatError
from gridcore.intelligence.features import Report
from gridcore.intelligence.serialize import MAGIC, dumps, loads, read_header


def trained() -> TextClassifier:
    reports = [Report("路灯不亮"), Report("井盖丢失"), Report("路灯坏了"), Report("井盖破损")]
    return TextClassifier().fit(reports, ["灯", "井", "灯", "井"])


def test_round_trip_keeps_predictions_and_metadata() -> None:
    model = trained()
    data = dumps(model, kind="classifier", metadata={"accuracy": 0.9, "window": "2015"})
    loaded = loads(data, kind="classifier")
    assert loaded.metadata == {"accuracy": 0.9, "window": "2015"}
    assert loaded.versions["sklearn"] == sklearn.__version__
    assert isinstance(loaded.model, TextClassifier)
    assert loaded.model.predict([Report("路灯")]) == model.predict([Report("路灯")])


def test_other_kind_is_refused() -> None:
    with pytest.raises(ModelFormatError, match="expected 'dispatch'"):
        loads(dumps(trained(), kind="classifier"), kind="dispatch")


def test_other_sklearn_version_is_refused_before_unpickling() -> None:
    data = dumps(trained(), kind="classifier")
    header = read_header(data)
    header["versions"]["sklearn"] = "0.0.1"
    head = json.dumps(header).encode()
    size = int.from_bytes(data[len(MAGIC):len(MAGIC) + 4], "big")
    forged = MAGIC + len(head).to_bytes(4, "big") + head + b"not a pickle at all"
    assert len(forged) != len(data) or size
    with pytest.raises(ModelFormatError, match=r"scikit-learn 0\.0\.1.*retrain"):
        loads(forged)


def test_garbage_is_refused() -> None:
    with pytest.raises(ModelFormatError, match="not a gridcore model"):
        loads(b"hello")
    data = dumps(trained(), kind="classifier")
    with pytest.raises(ModelFormatError, match="payload"):
        loads(data[:-20])
