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
# An email stands alone when no address character touches it (`xada@example.com` is another
# address than `ada@example.com`, and so is `ada@example.com.au`).
_EMAIL_BEFORE = r"(?<![\w.%+-])"
_EMAIL_AFTER = r"(?![\w.-])"
_PG_EMAIL_BEFORE = "(^|[^[:alnum:]_.%+-])"
_PG_EMAIL_AFTER = "($|[^[:alnum:]_.-])"


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
        """Substrings that a stored text mentioning the person contains (compared lower-cased):
        each email, each external id and user key as a whole JSON string (`"42"`, so a short id
        does not match inside unrelated numbers or words). A superset: an email inside a longer
        one matches too; `mentioned_in` and the scrubbers then decide."""
        return sorted(self.emails) + sorted(
            quoted(x) for x in (*self.external_ids, *self.user_keys)
        )

    @property
    def body_patterns(self) -> list[str]:
        """Postgres regular expressions (`~*`) for raw bodies: each email not inside a longer
        address, each external id and user key as a quoted JSON string."""
        emails = [f"{_PG_EMAIL_BEFORE}{re.escape(e)}{_PG_EMAIL_AFTER}" for e in sorted(self.emails)]
        ids = [re.escape(quoted(x)) for x in sorted({*self.external_ids, *self.user_keys})]
        return emails + ids

    def is_identifier(self, value: str) -> bool:
        """An external id, email or user key (`id:…`, a log filter's form) of the person."""
        return value in self.external_ids or value.lower() in self.emails or value in self.user_keys

    def _email_patterns(self) -> list[re.Pattern[str]]:
        return [
            re.compile(f"{_EMAIL_BEFORE}{re.escape(e)}{_EMAIL_AFTER}", re.IGNORECASE)
            for e in sorted(self.emails)
        ]

    def mentioned_in(self, text: str) -> bool:
        if any(p.search(text) for p in self._email_patterns()):
            return True
        return any(quoted(x) in text for x in (*self.external_ids, *self.user_keys))

    def scrub_text(self, text: str) -> str:
        """`text` with every mention replaced by FORGOTTEN: an email wherever it stands alone
        (not inside a longer address), an id or user key as a whole or quoted string."""
        if self.is_identifier(text):
            return FORGOTTEN
        for pattern in self._email_patterns():
            text = pattern.sub(FORGOTTEN, text)
        for value in (*self.external_ids, *self.user_keys):
            for quote in ('"', "'"):
                text = text.replace(f"{quote}{value}{quote}", f"{quote}{FORGOTTEN}{quote}")
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
