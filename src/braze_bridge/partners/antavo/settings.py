"""Antavo connection settings (DESIGN section 7), validated on create and patch."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

AttributeType = Literal[
    "string", "integer", "float", "boolean", "date", "array", "object", "object_array", "auto"
]
# Braze custom attribute names: ≤ 255 characters, no leading `$`, no `.` (nested-key separator).
BrazeAttributeName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, pattern=r"^[^$.][^.]*$", strip_whitespace=True),
]


class FieldMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    loyalty_field: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    braze_attribute: BrazeAttributeName
    type: AttributeType = "auto"


class AntavoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field_mappings: list[FieldMapping] = Field(default_factory=list)
    sync_mode: Literal["all_mapped", "changed_only"] = "all_mapped"
    event_name_prefix: Annotated[str, StringConstraints(max_length=100)] = ""
    events: list[Annotated[str, StringConstraints(min_length=1, max_length=255)]] = Field(
        default_factory=lambda: ["*"]
    )

    @field_validator("field_mappings")
    @classmethod
    def _unique_targets(cls, mappings: list[FieldMapping]) -> list[FieldMapping]:
        seen: set[str] = set()
        for mapping in mappings:
            if mapping.braze_attribute in seen:
                raise ValueError(f"braze_attribute {mapping.braze_attribute!r} is mapped twice")
            seen.add(mapping.braze_attribute)
        return mappings
