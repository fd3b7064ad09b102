"""Request bodies of /v1/connections, as the connection use cases take them
(docs/admin-api.md; docs/contract.md, "4. Admin API").

Requests reject unknown fields (422 naming the field). In PATCH bodies an omitted field stays
as it is (pydantic's `model_fields_set` carries "not sent"), and an explicit `null` is a 422
unless the field can be empty (`app_id`, `username`).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from braze_bridge.braze.models import (
    DEFAULT_TRACK_OBJECT_CAP,
    EXPORT_RATE_PRESETS,
    ExportRatePreset,
    TrackObjectCap,
)
from braze_bridge.domain.statuses import Source, WebhookAuthMode

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
AppId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
RestEndpoint = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    Field(
        description="https REST endpoint of the Braze instance, e.g. https://rest.iad-01.braze.com"
    ),
]
# Basic auth cannot carry a colon in the user name (RFC 7617).
Username = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^:]+$")
]
RateLimit = Annotated[int, Field(ge=1, le=10_000_000)]
RateWindow = Annotated[int, Field(ge=1, le=86_400)]
BatchWait = Annotated[int, Field(ge=0, le=60_000)]
DEFAULT_MAX_BATCH_WAIT_MS = 500
MAX_BATCH_WAIT_TEXT = (
    "Milliseconds a half-full /users/track request may wait for more objects: a request goes "
    "when it is full (track_object_cap) or when its oldest object has waited this long; 0 "
    "sends at once. Default 500 (docs/delivery.md, Batching)"
)


def _clean_api_key(value: SecretStr) -> SecretStr:
    key = value.get_secret_value().strip()
    if len(key) < 8 or len(key) > 256:
        raise ValueError("must be 8 to 256 characters")
    if any(ch.isspace() or ch in "\"'" for ch in key):
        raise ValueError("must be the key exactly as Braze shows it, without quotes or spaces")
    return SecretStr(key)


def _drop_null(schema: dict[str, Any]) -> None:
    members = [m for m in schema.pop("anyOf", []) if m != {"type": "null"}]
    if len(members) == 1:
        schema.update(members[0])
    elif members:
        schema["anyOf"] = members


def not_null(description: str | None = None) -> Any:
    """A PATCH field that may be omitted but not sent as null (`_reject_null` refuses it):
    `None` means "not sent", and the schema does not offer null."""
    return Field(default=None, description=description, json_schema_extra=_drop_null)


def _reject_null(value: object) -> object:
    if value is None:
        raise ValueError("cannot be null; omit the field to keep its value")
    return value


class BrazeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rest_endpoint: RestEndpoint
    api_key: SecretStr = Field(description="Braze REST API key; write-only")
    app_id: AppId | None = Field(default=None, description="Braze app identifier set on events")

    _key = field_validator("api_key")(_clean_api_key)


class BrazePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rest_endpoint: RestEndpoint | None = not_null()
    api_key: SecretStr | None = not_null("Braze REST API key; write-only")
    app_id: AppId | None = None

    _not_null = field_validator("rest_endpoint", "api_key", mode="before")(_reject_null)

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else _clean_api_key(value)


class WebhookAuthCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: WebhookAuthMode | None = Field(
        default=None, description="Default: hmac_sha256 for extole, jwt_hs256 for antavo"
    )
    username: Username | None = Field(
        default=None,
        description=(
            "Basic auth user name (mode basic only). Default: none for extole (Extole sends the "
            "key alone), antavo for antavo"
        ),
    )


class WebhookAuthPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: WebhookAuthMode | None = not_null()
    username: Username | None = None

    _not_null = field_validator("mode", mode="before")(_reject_null)


TRACK_OBJECT_CAP_TEXT = (
    "Objects per /users/track request: combined_75 (Braze's default, attributes + events + "
    "purchases), combined_50 (Monthly Active Users CY 24-25 plan), per_array_75 (older "
    "accounts: 75 per array)"
)
EXPORT_PRESET_TEXT = (
    "/users/export/ids budget by Braze workspace vintage: onboarded_before_2024_08_22 (2,500 "
    "requests a minute), onboarded_from_2024_08_22 (250 a minute, the default), "
    "raised_40_per_second (the raised limit Braze grants on request). Stored as "
    "export_rate_limit / export_rate_window_seconds; give either the preset or those numbers"
)
_EXPORT_NUMBERS = ("export_rate_limit", "export_rate_window_seconds")


class Limits(BaseModel):
    """Per-connection Braze budgets; null uses Braze's documented defaults."""

    model_config = ConfigDict(extra="forbid")

    track_rate_limit: RateLimit | None = Field(
        default=None, description="/users/track requests per window"
    )
    track_rate_window_seconds: RateWindow | None = None
    export_rate_limit: RateLimit | None = Field(
        default=None, description="/users/export/ids requests per window"
    )
    export_rate_window_seconds: RateWindow | None = None
    export_rate_preset: ExportRatePreset | None = Field(
        default=None, description=EXPORT_PRESET_TEXT
    )
    track_object_cap: TrackObjectCap = Field(
        default=DEFAULT_TRACK_OBJECT_CAP, description=TRACK_OBJECT_CAP_TEXT
    )
    max_batch_wait_ms: BatchWait = Field(
        default=DEFAULT_MAX_BATCH_WAIT_MS, description=MAX_BATCH_WAIT_TEXT
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_flag(cls, data: Any) -> Any:
        """`legacy_track_limits` (the former boolean) is still read: true is per_array_75."""
        if isinstance(data, dict) and "legacy_track_limits" in data:
            data = dict(data)
            legacy = data.pop("legacy_track_limits")
            if not isinstance(legacy, bool):
                raise ValueError("legacy_track_limits must be true or false")
            data.setdefault("track_object_cap", "per_array_75" if legacy else "combined_75")
        return data

    @field_validator("export_rate_preset")
    @classmethod
    def _preset_or_numbers(cls, preset: str | None, info: ValidationInfo) -> str | None:
        # The preset is stored as its numbers: both in one request would say two things.
        given = [name for name in _EXPORT_NUMBERS if info.data.get(name) is not None]
        if preset is not None and given:
            raise ValueError(f"give either export_rate_preset or {' / '.join(given)}, not both")
        return preset

    def stored_values(self) -> dict[str, int | str | None]:
        """The fields sent, as stored: a preset becomes its numbers, an explicit null preset
        clears them (Braze's default applies again)."""
        values: dict[str, int | str | None] = self.model_dump(
            exclude_unset=True, exclude={"export_rate_preset"}
        )
        if "export_rate_preset" in self.model_fields_set:
            limit, window = (
                EXPORT_RATE_PRESETS[self.export_rate_preset]
                if self.export_rate_preset
                else (None, None)
            )
            values["export_rate_limit"], values["export_rate_window_seconds"] = limit, window
        return values


class LimitsPatch(Limits):
    track_object_cap: TrackObjectCap | None = not_null()  # type: ignore[assignment]
    export_rate_preset: ExportRatePreset | None = Field(
        default=None, description=EXPORT_PRESET_TEXT + "; null goes back to the default"
    )

    max_batch_wait_ms: BatchWait | None = not_null(MAX_BATCH_WAIT_TEXT)  # type: ignore[assignment]

    _not_null = field_validator("track_object_cap", "max_batch_wait_ms", mode="before")(
        _reject_null
    )


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tenant_id: uuid.UUID | None = Field(
        default=None, description="Required for operator tokens; defaults to a tenant token's own"
    )
    name: Name
    source: Source
    braze: BrazeCreate
    webhook_auth: WebhookAuthCreate = Field(default_factory=WebhookAuthCreate)
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Extole or Antavo settings (docs/extole.md, docs/antavo.md). Extole `identity`: "
            "email (default: Braze's email identifier) | lookup_then_alias (export/ids, else an "
            "alias-only profile) | skip; the former `unknown_user` (alias | skip) is read as it"
        ),
    )
    limits: Limits | None = None


class ConnectionUpdate(BaseModel):
    """Every field optional; `settings` is a JSON Merge Patch (RFC 7396) over the current ones."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = not_null()
    braze: BrazePatch | None = not_null()
    webhook_auth: WebhookAuthPatch | None = not_null()
    settings: dict[str, Any] | None = not_null(
        "Merged into the current settings; a null member removes that member"
    )
    limits: LimitsPatch | None = not_null()

    _not_null = field_validator(
        "name", "braze", "webhook_auth", "settings", "limits", mode="before"
    )(_reject_null)
