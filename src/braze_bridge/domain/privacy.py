"""Forgetting a person (GDPR / CCPA erasure): who the person is, and how a stored JSON value
loses every trace of them (docs/privacy.md). Pure: the repositories find the rows."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

# What a forgotten identifier becomes where the value around it is kept.
FORGOTTEN = "[forgotten]"
# Reason of an object a forget cancelled before it was sent.
FORGOTTEN_REASON = "forgotten"


def is_forgotten(normalized: Any) -> bool:
    """An event whose person was forgotten (its normalized form is only `{kind, forgotten}`)."""
    return isinstance(normalized, dict) and normalized.get("forgotten") is True


class PrivacySettings(BaseModel):
    """`settings.privacy` of every connection."""

    model_config = ConfigDict(extra="forbid")

    # Also ask Braze to delete the profile (`POST /users/delete`). Off by default: the customer
    # may own deletion in Braze (their own erasure process, other data sources).
    delete_in_braze: bool = False


@dataclass(frozen=True, slots=True)
class Person:
    """Every identifier known for the person: what was asked for, plus what the stored events
    linked to it (an email seen with an external id, and back)."""

    external_ids: frozenset[str]
    emails: frozenset[str]  # lower-cased

    @classmethod
    def of(cls, *, external_id: str | None = None, email: str | None = None) -> Person:
        return cls(
            frozenset([external_id] if external_id else []),
            frozenset([email.lower()] if email else []),
        )

    def with_links(self, external_ids: Iterable[str], emails: Iterable[str]) -> Person:
        return Person(
            self.external_ids | {e for e in external_ids if e},
            self.emails | {e.lower() for e in emails if e},
        )

    @property
    def user_keys(self) -> list[str]:
        """The outbox's ordering keys (`UserRef.key`) this person's rows carry."""
        return sorted([f"id:{x}" for x in self.external_ids] + [f"email:{e}" for e in self.emails])

    @property
    def needles(self) -> list[str]:
        """Strings whose presence in a stored text means it mentions the person: each email
        (case-insensitively, anywhere), each external id as a whole JSON string (`"42"`, so a
        short id does not match inside unrelated numbers or words)."""
        return sorted(self.emails) + sorted(
            quoted(x) for x in (*self.external_ids, *self.user_keys)
        )

    def is_identifier(self, value: str) -> bool:
        """An external id, email or user key (`id:…`, a log filter's form) of the person."""
        return value in self.external_ids or value.lower() in self.emails or value in self.user_keys

    def mentioned_in(self, text: str) -> bool:
        lowered = text.lower()
        return any(needle.lower() in lowered for needle in self.needles)

    def scrub_text(self, text: str) -> str:
        """`text` with every mention replaced by FORGOTTEN (emails anywhere, ids as whole
        strings or quoted in a message)."""
        for email in self.emails:
            text = _replace_folded(text, email, FORGOTTEN)
        for external_id in self.external_ids:
            for quote in ('"', "'"):
                text = text.replace(f"{quote}{external_id}{quote}", f"{quote}{FORGOTTEN}{quote}")
            if text == external_id:
                text = FORGOTTEN
        return text

    def scrub_json(self, value: Any) -> Any:
        """A JSON value without the person: an object in an array that names them (a Braze
        object of theirs in a request body) is dropped, any other string naming them is
        replaced, and a scalar string mentioning an email has it cut out."""
        if isinstance(value, dict):
            return {key: self.scrub_json(item) for key, item in value.items()}
        if isinstance(value, list):
            return [
                self.scrub_json(item)
                for item in value
                if not (isinstance(item, dict) and self._names_person(item))
            ]
        if isinstance(value, str):
            return FORGOTTEN if self.is_identifier(value) else self.scrub_text(value)
        return value

    def _names_person(self, obj: dict[str, Any]) -> bool:
        """A Braze object (or export answer entry) addressed to the person."""
        for key in ("external_id", "email", "email_address"):
            item = obj.get(key)
            if isinstance(item, str) and self.is_identifier(item):
                return True
        alias = obj.get("user_alias")
        if isinstance(alias, dict):
            name = alias.get("alias_name")
            if isinstance(name, str) and self.is_identifier(name):
                return True
        return False


def quoted(value: str) -> str:
    """`value` as a JSON string literal, the way jsonb prints it (non-ASCII kept)."""
    return json.dumps(value, ensure_ascii=False)


def _replace_folded(text: str, needle: str, replacement: str) -> str:
    """Case-insensitive replace of `needle` in `text`."""
    if not needle or needle not in text.lower():
        return text
    return re.sub(re.escape(needle), lambda _: replacement, text, flags=re.IGNORECASE)
