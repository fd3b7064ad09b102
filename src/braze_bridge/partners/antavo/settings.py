"""Antavo connection settings (docs/antavo.md), validated on create and patch.

Besides the shape, this checks what Braze would otherwise reject later, one user at a time:
attribute names Braze cannot take, a standard field (`first_name`, `dob`, ...) mapped with a type
it does not have, and purchases without a way to know their currency.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from braze_bridge.braze.models import BRAZE_CURRENCIES
from braze_bridge.domain.coercion import (
    STANDARD_FIELDS,
    BrazeType,
    attribute_name_problem,
    nested_key_problem,
)
from braze_bridge.domain.object_arrays import KEYED_OPERATIONS, ArrayOperation
from braze_bridge.domain.privacy import PrivacySettings

AttributeType = BrazeType
SyncMode = Literal["all_mapped", "changed_only"]

BrazeAttributeName = Annotated[
    str, StringConstraints(min_length=1, max_length=255, strip_whitespace=True)
]
LoyaltyField = Annotated[str, StringConstraints(min_length=1, max_length=255)]
CurrencyCode = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z]{3}$", to_upper=True, strip_whitespace=True)
]
FieldName = Annotated[str, StringConstraints(min_length=1, max_length=255, strip_whitespace=True)]
EventPattern = Annotated[
    str, StringConstraints(min_length=1, max_length=255, strip_whitespace=True)
]

MAX_FIELD_MAPPINGS = 500


class FieldMapping(BaseModel):
    """One loyalty field → one Braze attribute, with the Braze type its values are coerced to.

    `loyalty_field` is a trait name; when no trait has that exact name, a dotted path
    (`tier.name`, `accounts.0.spendable`) reads into nested traits. Omitting `type` for a
    standard field (`first_name`, `dob`, ...) picks that field's type; otherwise `auto`.

    An `object_array` is sent whole by default (Braze replaces the stored array);
    `array_operation` `add` / `remove` / `update` sends only the change instead, the last two
    naming each object by its `identifier_key` (domain/object_arrays.py).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    loyalty_field: LoyaltyField
    braze_attribute: BrazeAttributeName
    type: AttributeType = "auto"
    array_operation: ArrayOperation = "replace"
    identifier_key: str | None = Field(default=None, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _standard_field_type_by_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and "type" not in data:
            target = data.get("braze_attribute")
            if isinstance(target, str) and target.strip() in STANDARD_FIELDS:
                return {**data, "type": STANDARD_FIELDS[target.strip()].type}
        return data

    @field_validator("braze_attribute")
    @classmethod
    def _braze_accepts_the_name(cls, name: str) -> str:
        problem = attribute_name_problem(name)
        if problem is not None:
            raise ValueError(problem)
        return name

    @field_validator("array_operation")
    @classmethod
    def _operation_needs_an_object_array(cls, operation: str, info: ValidationInfo) -> str:
        if operation != "replace" and info.data.get("type") != "object_array":
            raise ValueError(f"array_operation {operation!r} needs type 'object_array'")
        return operation

    @field_validator("identifier_key")
    @classmethod
    def _key_names_the_objects(cls, key: str | None, info: ValidationInfo) -> str | None:
        operation = info.data.get("array_operation")
        if operation is None:
            return key  # array_operation itself was refused
        if operation not in KEYED_OPERATIONS:
            if key is not None:
                raise ValueError("only used with array_operation 'remove' or 'update'")
            return None
        if key is None:
            raise ValueError(f"required with array_operation {operation!r}")
        problem = nested_key_problem(key)
        if problem is not None:
            raise ValueError(problem)
        return key

    @model_validator(mode="after")
    def _standard_field_keeps_its_type(self) -> FieldMapping:
        standard = STANDARD_FIELDS.get(self.braze_attribute)
        if standard is not None and self.type != standard.type:
            raise ValueError(
                f"{self.braze_attribute!r} is a Braze standard field of type {standard.type!r} "
                f"({standard.description}); it cannot be mapped as {self.type!r}"
            )
        return self


class PurchaseSettings(BaseModel):
    """How an Antavo `checkout` becomes Braze purchase objects (one per item line)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Used when the checkout carries no `currency`; without either the checkout is rejected.
    default_currency: CurrencyCode | None = None
    product_id_field: FieldName = "product_id"
    # Unit price; when absent, `subtotal_field` / quantity is used.
    price_field: FieldName = "price"
    subtotal_field: FieldName = "subtotal"
    quantity_field: FieldName = "quantity"
    # A checkout without items becomes one purchase of its `total` under this product id.
    fallback_product_id: Annotated[
        str, StringConstraints(min_length=1, max_length=255, strip_whitespace=True)
    ] = "checkout"

    @field_validator("default_currency")
    @classmethod
    def _braze_logs_the_currency(cls, code: str | None) -> str | None:
        if code is not None and code not in BRAZE_CURRENCIES:
            raise ValueError(f"{code!r} is not a currency Braze logs purchases in")
        return code


class AntavoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field_mappings: list[FieldMapping] = Field(default_factory=list, max_length=MAX_FIELD_MAPPINGS)
    sync_mode: SyncMode = "all_mapped"
    event_name_prefix: Annotated[str, StringConstraints(max_length=100)] = ""
    # Antavo action names forwarded as custom events; shell-style patterns (`point_*`), "*" = all.
    events: list[EventPattern] = Field(default_factory=lambda: ["*"])
    checkout_as_purchase: bool = False
    # Send `"_merge_objects": true` with attributes that carry a nested object, so Braze merges
    # its keys into the stored object instead of overwriting it (keys left out are kept).
    merge_objects: bool = False
    purchase: PurchaseSettings = Field(default_factory=PurchaseSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)

    @field_validator("field_mappings")
    @classmethod
    def _unique_targets(cls, mappings: list[FieldMapping]) -> list[FieldMapping]:
        # One attribute takes one whole value, or several array operations (one of each, as
        # Braze reads one `$add` / `$remove` / `$update` per attribute).
        seen: dict[str, set[str]] = {}
        for mapping in mappings:
            operations = seen.setdefault(mapping.braze_attribute, set())
            if mapping.array_operation in operations or (
                operations and "replace" in operations | {mapping.array_operation}
            ):
                raise ValueError(f"braze_attribute {mapping.braze_attribute!r} is mapped twice")
            operations.add(mapping.array_operation)
        return mappings

    @field_validator("event_name_prefix")
    @classmethod
    def _prefix_keeps_names_valid(cls, prefix: str) -> str:
        if prefix.startswith("$"):
            raise ValueError("Braze event names must not start with '$'")
        return prefix

    def mapping_for(self, braze_attribute: str) -> FieldMapping | None:
        return next((m for m in self.field_mappings if m.braze_attribute == braze_attribute), None)

    # Pure edits of one pair: each returns new, fully validated settings and leaves self alone.

    def add_field_mapping(self, mapping: FieldMapping) -> AntavoSettings:
        if self.mapping_for(mapping.braze_attribute) is not None:
            raise ValueError(f"braze_attribute {mapping.braze_attribute!r} is already mapped")
        return self._with_mappings([*self.field_mappings, mapping])

    def change_field_mapping(self, braze_attribute: str, mapping: FieldMapping) -> AntavoSettings:
        if self.mapping_for(braze_attribute) is None:
            raise ValueError(f"braze_attribute {braze_attribute!r} is not mapped")
        return self._with_mappings(
            [mapping if m.braze_attribute == braze_attribute else m for m in self.field_mappings]
        )

    def remove_field_mapping(self, braze_attribute: str) -> AntavoSettings:
        if self.mapping_for(braze_attribute) is None:
            raise ValueError(f"braze_attribute {braze_attribute!r} is not mapped")
        return self._with_mappings(
            [m for m in self.field_mappings if m.braze_attribute != braze_attribute]
        )

    def _with_mappings(self, mappings: list[FieldMapping]) -> AntavoSettings:
        data = self.model_dump()
        data["field_mappings"] = [m.model_dump() for m in mappings]
        return AntavoSettings.model_validate(data)
