"""OpenAPI 3.1 schemas translated to 3.0 (nullable, example, exclusive bounds, enum, allOf
beside $ref)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(("schema", "expected"), [
    ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, {"type": "integer", "nullable": True}),
    ({"anyOf": [{"$ref": "#/components/schemas/X"}, {"type": "null"}], "default": None},
     {"allOf": [{"$ref": "#/components/schemas/X"}], "nullable": True, "default": None}),
    ({"type": ["string", "null"]}, {"type": "string", "nullable": True}),
    ({"anyOf": [{"type": "string", "title": "inner"}, {"type": "null"}], "title": "Grid"},
     {"type": "string", "title": "Grid", "nullable": True}),
    ({"type": "string", "examples": ["P0120", "E0103"]}, {"type": "string", "example": "P0120"}),
    ({"type": "number", "exclusiveMinimum": 0},
     {"type": "number", "minimum": 0, "exclusiveMinimum": True}),
    ({"const": "Feature"}, {"enum": ["Feature"]}),
    ({"$ref": "#/components/schemas/X", "description": "d"},
     {"allOf": [{"$ref": "#/components/schemas/X"}], "description": "d"}),
    ({"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
      "additionalProperties": {"const": 1}},
     {"type": "object", "properties": {"a": {"type": "string", "nullable": True}},
      "additionalProperties": {"enum": [1]}}),
])
def test_schema_translation_to_openapi_30(schema: dict, expected: dict) -> None:  # type: ignore[type-arg]
    from api.openapi.v30 import schema30

    assert schema30(schema) == expected

