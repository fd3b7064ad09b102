"""The event log's kind words (domain/events.py) are exactly what the partners log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

import pytest

from braze_bridge.domain.events import EVENT_KINDS, REWARD_STATE_KINDS, kinds_matching
from braze_bridge.partners.antavo import normalize as antavo
from braze_bridge.partners.extole import events as extole
from braze_bridge.partners.extole.normalize import normalize_extole
from tests.extole_bodies import REWARD_CANCELED, REWARD_FULFILLED


def _kinds(*classes: type) -> set[str]:
    return {get_args(cls.model_fields["kind"].annotation)[0] for cls in classes}


def test_every_partner_kind_and_reward_state_is_a_kind_word() -> None:
    partner_kinds = _kinds(*get_args(extole.AnyExtoleEvent)) | _kinds(
        antavo.FieldChange, antavo.ProgramEvent, antavo.Checkout, antavo.WorkflowSync
    )
    states = {f"reward_{state.lower()}" for state in get_args(extole.RewardState)}
    assert set(REWARD_STATE_KINDS) == states
    assert partner_kinds | states == EVENT_KINDS


@pytest.mark.parametrize(
    ("body", "kind"),
    [(REWARD_FULFILLED, "reward_fulfilled"), (REWARD_CANCELED, "reward_canceled")],
)
def test_an_extole_reward_logs_its_state(body: dict[str, object], kind: str) -> None:
    """extole/product-docs reward webhooks: one webhook per state, `reward_<state>`."""
    event = normalize_extole(body, received_at=datetime.now(UTC))
    assert (event.kind, event.log_kind()) == ("reward", kind)


def test_reward_as_a_filter_word_means_every_reward() -> None:
    assert set(kinds_matching("reward")) == {"reward", *REWARD_STATE_KINDS}
    assert kinds_matching("reward_sent") == ("reward_sent",)
