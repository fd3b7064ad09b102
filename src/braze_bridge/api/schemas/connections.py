"""Request and response bodies of /v1/connections (docs/admin-api.md).

Requests reject unknown fields (422 naming the field). In PATCH bodies an omitted field stays
as it is, and an explicit `null` is a 422 unless the field can be empty (`app_id`, `username`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, cast

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

from braze_bridge.admin import connections as service
from braze_bridge.admin.connection_test import ConnectionCheckReport
from braze_bridge.braze.models import (
    DEFAULT_EXPORT_RATE_PRESET,
    DEFAULT_TRACK_OBJECT_CAP,
    EXPORT_RATE_PRESETS,
    ExportRatePreset,
    TrackObjectCap,
)
from braze_bridge.db.models import Connection, ConnectionAudit
from braze_bridge.domain.statuses import ConnectionState, Source, WebhookAuthMode

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


_TRACK_OBJECT_CAP_TEXT = (
    "Objects per /users/track request: combined_75 (Braze's default, attributes + events + "
    "purchases), combined_50 (Monthly Active Users CY 24-25 plan), per_array_75 (older "
    "accounts: 75 per array)"
)
_EXPORT_PRESET_TEXT = (
    "/users/export/ids budget by Braze workspace vintage: onboarded_before_2024_08_22 (2,500 "
    "requests a minute), onboarded_from_2024_08_22 (250 a minute, the default), "
    "raised_40_per_second (the raised limit Braze grants on request). Stored as "
    "export_rate_limit / export_rate_window_seconds; give either the preset or those numbers"
)


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
        default=None, description=_EXPORT_PRESET_TEXT
    )
    track_object_cap: TrackObjectCap = Field(
        default=DEFAULT_TRACK_OBJECT_CAP, description=_TRACK_OBJECT_CAP_TEXT
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


_EXPORT_NUMBERS = ("export_rate_limit", "export_rate_window_seconds")
_DEFAULT_EXPORT_WINDOW = EXPORT_RATE_PRESETS[DEFAULT_EXPORT_RATE_PRESET][1]


class LimitsPatch(Limits):
    track_object_cap: TrackObjectCap | None = not_null()  # type: ignore[assignment]
    export_rate_preset: ExportRatePreset | None = Field(
        default=None, description=_EXPORT_PRESET_TEXT + "; null goes back to the default"
    )

    _not_null = field_validator("track_object_cap", mode="before")(_reject_null)


class LimitsRead(BaseModel):
    """The budgets in force; null numbers mean Braze's documented defaults."""

    track_rate_limit: int | None = Field(description="/users/track requests per window")
    track_rate_window_seconds: int | None
    export_rate_limit: int | None = Field(description="/users/export/ids requests per window")
    export_rate_window_seconds: int | None
    export_rate_preset: ExportRatePreset | None = Field(
        description="The preset the stored export budget equals; null for the default or a "
        "custom budget"
    )
    track_object_cap: TrackObjectCap = Field(description=_TRACK_OBJECT_CAP_TEXT)

    @classmethod
    def of(cls, row: Connection) -> LimitsRead:
        limit, window = row.export_rate_limit, row.export_rate_window_seconds
        stored = None if limit is None else (limit, window or _DEFAULT_EXPORT_WINDOW)
        preset = next((name for name, v in EXPORT_RATE_PRESETS.items() if v == stored), None)
        return cls(
            track_rate_limit=row.track_rate_limit,
            track_rate_window_seconds=row.track_rate_window_seconds,
            export_rate_limit=limit,
            export_rate_window_seconds=window,
            export_rate_preset=cast("ExportRatePreset | None", preset),
            track_object_cap=cast("TrackObjectCap", row.track_object_cap),
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
        description="Extole (docs/extole.md) or Antavo (docs/antavo.md) settings",
    )
    limits: Limits | None = None

    def to_new(self) -> service.NewConnection:
        return service.NewConnection(
            tenant_id=self.tenant_id,
            name=self.name,
            source=self.source,
            rest_endpoint=self.braze.rest_endpoint,
            api_key=self.braze.api_key.get_secret_value(),
            app_id=self.braze.app_id,
            auth_mode=self.webhook_auth.mode,
            username=self.webhook_auth.username,
            settings=self.settings,
            limits=self.limits.stored_values() if self.limits else {},
        )


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

    def to_changes(self) -> service.ConnectionChanges:
        """Explicit nulls were refused above, so None here means "not sent"."""
        unset = service.UNSET
        braze, auth = self.braze, self.webhook_auth
        return service.ConnectionChanges(
            name=unset if self.name is None else self.name,
            rest_endpoint=unset
            if braze is None or braze.rest_endpoint is None
            else braze.rest_endpoint,
            api_key=unset
            if braze is None or braze.api_key is None
            else braze.api_key.get_secret_value(),
            app_id=braze.app_id if braze and "app_id" in braze.model_fields_set else unset,
            auth_mode=unset if auth is None or auth.mode is None else auth.mode,
            username=auth.username if auth and "username" in auth.model_fields_set else unset,
            settings=unset if self.settings is None else self.settings,
            limits={} if self.limits is None else self.limits.stored_values(),
        )


class BrazeRead(BaseModel):
    rest_endpoint: str
    api_key_last4: str = Field(description="Last 4 characters of the stored key")
    app_id: str | None


class WebhookAuthRead(BaseModel):
    mode: WebhookAuthMode
    username: str | None
    previous_secret_expires_at: datetime | None = Field(
        description="Until then the secret replaced by the last rotation is still accepted"
    )


class ConnectionRead(BaseModel):
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    source: Source
    state: ConnectionState
    braze: BrazeRead
    webhook_auth: WebhookAuthRead
    settings: dict[str, Any] = Field(description="Every setting, defaults filled in")
    limits: LimitsRead
    webhook_url: str = Field(description="Where the partner posts webhooks")
    content_url: str = Field(
        description="Connected Content base URL; append /{external_id} (bearer: content token)"
    )
    last_error: str | None
    last_error_at: datetime | None
    version: int = Field(description="Goes up by one with every change")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: Connection, base_url: str) -> ConnectionRead:
        return cls(**_read_fields(row, base_url))


def _read_fields(row: Connection, base_url: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant_id": row.tenant_id,
        "name": row.name,
        "source": row.source,
        "state": row.state,
        "braze": BrazeRead(
            rest_endpoint=row.braze_rest_endpoint,
            api_key_last4=row.braze_api_key_last4,
            app_id=row.braze_app_id,
        ),
        "webhook_auth": WebhookAuthRead(
            mode=row.webhook_auth_mode,
            username=row.webhook_username,
            previous_secret_expires_at=(
                row.previous_secret_expires_at if row.previous_webhook_secret_enc else None
            ),
        ),
        "settings": service.effective_settings(row.source, row.settings),
        "limits": LimitsRead.of(row),
        "webhook_url": f"{base_url}/v1/hooks/{row.id}",
        "content_url": f"{base_url}/v1/content/{row.id}",
        "last_error": row.last_error,
        "last_error_at": row.last_error_at,
        "version": row.version,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


class ConnectionCreated(ConnectionRead):
    webhook_secret: str = Field(description="Shown once: give it to the partner")
    content_token: str = Field(description="Shown once: bearer token of the content endpoint")

    @classmethod
    def of_created(cls, created: service.CreatedConnection, base_url: str) -> ConnectionCreated:
        return cls(
            **_read_fields(created.row, base_url),
            webhook_secret=created.webhook_secret,
            content_token=created.content_token,
        )


class ConnectionPage(BaseModel):
    items: list[ConnectionRead]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page")


class SecretRotation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    grace_seconds: int = Field(
        default=86_400,
        ge=0,
        le=86_400,
        strict=True,  # `false` / `true` are not 0 / 1 seconds
        description="How long the replaced secret keeps working; 0 retires it at once (leak)",
    )


class WebhookSecretRotated(ConnectionRead):
    webhook_secret: str = Field(description="Shown once")

    @classmethod
    def of_rotated(cls, rotated: service.RotatedSecret, base_url: str) -> WebhookSecretRotated:
        return cls(**_read_fields(rotated.row, base_url), webhook_secret=rotated.secret)


class ContentTokenRotated(ConnectionRead):
    content_token: str = Field(description="Shown once; the previous token stops working now")

    @classmethod
    def of_rotated(cls, rotated: service.RotatedSecret, base_url: str) -> ContentTokenRotated:
        return cls(**_read_fields(rotated.row, base_url), content_token=rotated.secret)


class CheckRead(BaseModel):
    name: str = Field(description="endpoint, api_key, or a Braze permission like users.track")
    ok: bool
    detail: str
    hint: str | None = Field(default=None, description="What to fix when the check failed")


class ConnectionTestRead(BaseModel):
    ok: bool
    checks: list[CheckRead]
    state: ConnectionState = Field(description="The connection's state after the test")

    @classmethod
    def of(cls, report: ConnectionCheckReport) -> ConnectionTestRead:
        return cls(
            ok=report.ok,
            checks=[
                CheckRead(name=c.name, ok=c.ok, detail=c.detail, hint=c.hint) for c in report.checks
            ],
            state=report.state,
        )


class AuditEntry(BaseModel):
    action: str = Field(
        description="create, update, delete, rotate_secret, rotate_content_token, pause, "
        "resume, test_passed"
    )
    fields: list[str] = Field(description="Changed field paths; values are never recorded")
    actor_token_id: uuid.UUID | None
    at: datetime

    @classmethod
    def of(cls, row: ConnectionAudit) -> AuditEntry:
        return cls.model_validate(
            {
                "action": row.action,
                "fields": row.fields,
                "actor_token_id": row.actor_token_id,
                "at": row.at,
            }
        )


class AuditPage(BaseModel):
    items: list[AuditEntry]
