"""Each documented Extole body → the exact Braze objects; filters, identity, overrides, limits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from pydantic import ValidationError

from braze_bridge.domain.content import RewardSnapshot
from braze_bridge.domain.mapping import Filtered, Mapped, MappingContext, Rejected
from braze_bridge.domain.operations import UserRef
from braze_bridge.domain.statuses import Source
from braze_bridge.partners import PARTNERS
from braze_bridge.partners.extole.settings import ExtoleSettings
from tests import extole_bodies as bodies

RECEIVED = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
ALL_STATES = ["EARNED", "FULFILLED", "SENT", "REDEEMED", "FAILED", "CANCELED", "REVOKED"]
EXTOLE = PARTNERS[Source.EXTOLE]


def mapped(body: Any, **settings: Any) -> Mapped:
    event = EXTOLE.normalize(body, received_at=RECEIVED)
    return EXTOLE.map(
        event, ExtoleSettings.model_validate(settings), MappingContext(received_at=RECEIVED)
    )


def objects(body: Any, **settings: Any) -> list[tuple[str, UserRef, dict[str, Any]]]:
    """Kind, user and payload of each operation; a user with an external id is shown by it alone
    (the email and identity mode riding along are pinned in TestIdentityModes)."""
    return [
        (
            op.kind.value,
            UserRef(external_id=op.user.external_id) if op.user.external_id else op.user,
            op.payload,
        )
        for op in mapped(body, **settings).operations
    ]


def by_id(external_id: str) -> UserRef:
    return UserRef(external_id=external_id)


class TestDocumentedBodies:
    def test_share_link_created_sets_link_attributes_then_sends_the_event(self) -> None:
        """Event name and properties of Extole's own Braze integration (extole/product-docs
        `technical/partners/marketing-automation/braze.mdx`, Extole Program Events:
        `extole_share_link_created` with Email, Funnel, Program)."""
        assert objects(bodies.SHARE_LINK_CREATED) == [
            (
                "attributes",
                by_id("USER-12345"),
                {
                    "email": "alex@example.com",
                    "extole_share_link": "https://share.yourbrand.com/alex01",
                    "extole_share_code": "alex01",
                },
            ),
            (
                "events",
                by_id("USER-12345"),
                {
                    "name": "extole_share_link_created",
                    "time": "2024-03-15T10:30:00.000Z",
                    "properties": {"partner": "Extole", "email": "alex@example.com"},
                },
            ),
        ]

    def test_shared(self) -> None:
        """extole/product-docs `technical/partners/marketing-automation/braze.mdx`:
        `extole_shared` carries Email, Funnel, Program, Share channel."""
        assert objects(bodies.SHARED) == [
            (
                "attributes",
                by_id("019mr8mf4r"),
                {"email": "april@example.com", "first_name": "April", "last_name": "Spring"},
            ),
            (
                "events",
                by_id("019mr8mf4r"),
                {
                    "name": "extole_shared",
                    "time": "2024-12-20T15:31:28.853Z",
                    "properties": {
                        "partner": "Extole",
                        "funnel": "ADVOCATE",
                        "program": "refer-a-friend",
                        "email": "april@example.com",
                        "external_id": "019mr8mf4r",
                        "share_channel": "EMAIL",
                    },
                },
            ),
        ]

    def test_outcome_carries_every_other_scalar_field(self) -> None:
        assert objects(bodies.CONVERTED) == [
            (
                "attributes",
                by_id("056tf9eqw24"),
                {"email": "summer@example.com", "first_name": "Summer", "last_name": "Doe"},
            ),
            (
                "events",
                by_id("056tf9eqw24"),
                {
                    "name": "extole_converted",
                    "time": "2024-12-21T09:02:11.120Z",
                    "properties": {
                        "partner": "Extole",
                        "funnel": "FRIEND",
                        "event_id": "7450517099912345678",
                        "partner_user_id": "056tf9eqw24",
                        "email": "summer@example.com",
                        "first_name": "Summer",
                        "last_name": "Doe",
                        "cart_value": "99.99",
                        "partner_conversion_id": "991nss7712n317has-128sa1",
                        "coupon_code": "FR1921882NY",
                        "advocate_user_id": "019mr8mf4r",
                    },
                },
            ),
        ]

    def test_reward_earned_takes_email_and_funnel_from_data(self) -> None:
        assert objects(bodies.REWARD_EARNED, reward_states=ALL_STATES) == [
            ("attributes", by_id("1036950000"), {"email": "april@advocate.com"}),
            (
                "events",
                by_id("1036950000"),
                {
                    "name": "extole_reward_earned",
                    "time": "2020-05-29T14:14:18.548Z",
                    "properties": {
                        "email": "april@advocate.com",
                        "face_value": 50,
                        "face_value_type": "USD",
                        "reward_id": "bf67905b4e1b41daf39c30f0",
                        "reward_supplier_type": "CUSTOM_REWARD",
                    },
                },
            ),
        ]

    @pytest.mark.parametrize(
        ("body", "name", "time"),
        [
            (bodies.REWARD_FULFILLED, "extole_reward_fulfilled", "2020-05-29T14:15:02.001Z"),
            (bodies.REWARD_SENT, "extole_reward_sent", "2020-05-29T14:16:40.300Z"),
        ],
    )
    def test_coupon_rewards_carry_the_coupon_code(
        self, body: dict[str, Any], name: str, time: str
    ) -> None:
        assert objects(body, reward_states=ALL_STATES) == [
            ("attributes", by_id("1036950001"), {"email": "summer@example.com"}),
            (
                "events",
                by_id("1036950001"),
                {
                    "name": name,
                    "time": time,
                    "properties": {
                        "email": "summer@example.com",
                        "face_value": 20,
                        "face_value_type": "PERCENT_OFF",
                        "coupon_code": "RAF12345",
                        "reward_id": "bf67905b4e1b41daf39c30f1",
                        "reward_supplier_type": "MANUAL_COUPON",
                    },
                },
            ),
        ]

    def test_redeemed_reward_without_email_sends_only_the_event(self) -> None:
        assert objects(bodies.REWARD_REDEEMED, reward_states=ALL_STATES) == [
            (
                "events",
                by_id("1036950001"),
                {
                    "name": "extole_reward_redeemed",
                    "time": "2020-06-02T10:00:00.000Z",
                    "properties": {
                        "face_value": 20,
                        "face_value_type": "PERCENT_OFF",
                        "coupon_code": "RAF12345",
                        "reward_id": "bf67905b4e1b41daf39c30f1",
                        "reward_supplier_type": "MANUAL_COUPON",
                    },
                },
            )
        ]

    @pytest.mark.parametrize(
        ("reward_type", "name"),
        [
            ("reward_canceled", "extole_reward_canceled"),
            ("reward_revoked", "extole_reward_revoked"),
        ],
    )
    def test_canceled_and_revoked_rewards_never_carry_a_coupon(
        self, reward_type: str, name: str
    ) -> None:
        body = bodies.reward(
            bodies.REWARD_CANCELED_RAW, type=reward_type, partner_reward_id="STILL-HERE"
        )
        [event] = [o for o in objects(body, reward_states=ALL_STATES) if o[0] == "events"]
        assert event[2]["name"] == name
        assert "coupon_code" not in event[2]["properties"]
        assert "email" not in event[2]["properties"]  # this body has no email anywhere

    @pytest.mark.parametrize("reward_type", ["reward_failed", "reward_fulfillment_failed"])
    def test_both_failure_types_are_the_failed_state(self, reward_type: str) -> None:
        body = bodies.reward(bodies.REWARD_FULFILLED_RAW, type=reward_type)
        [event] = objects(body, reward_states=["FAILED"])[1:]
        assert event[2]["name"] == "extole_reward_failed"
        assert event[2]["properties"]["coupon_code"] == "RAF12345"

    def test_fulfillment_failed_is_not_forwarded_by_a_fulfilled_filter(self) -> None:
        """extole/product-docs `technical/platform-integrations/webhooks/reward-webhooks.mdx`
        files `reward_fulfillment_failed` under FULFILLED; we read it as FAILED, so a Braze
        Canvas on `extole_reward_fulfilled` never gets a reward whose fulfillment failed."""
        body = bodies.reward(bodies.REWARD_FULFILLED_RAW, type="reward_fulfillment_failed")
        with pytest.raises(Filtered) as caught:
            mapped(body, reward_states=["FULFILLED"])
        assert caught.value.reason == "reward_state_not_enabled: FAILED"

    def test_reward_body_without_a_type_takes_the_untyped_reward_state(self) -> None:
        """extole/product-docs `technical/platform-integrations/webhooks/reward-webhooks.mdx`:
        a reward webhook "always contains the `reward_id` and the `data` parameters"; its
        example is that alone. The doc example, with the user id a real body carries."""
        body = {
            "reward_id": "b600f6fdd06c83f8ffdd6309",
            "partner_user_id": "u-7",
            "data": {
                "earned_event_value": "100.00",
                "journey_name": "ADVOCATE",
                "rewardee_role": "advocate",
                "custom_key": "custom_value",
            },
        }
        event = {
            "name": "extole_reward_fulfilled",
            "time": "2025-01-02T03:04:05.678Z",
            "properties": {"reward_id": "b600f6fdd06c83f8ffdd6309"},
        }
        assert objects(body) == [("events", by_id("u-7"), event)]
        earned = objects(body, untyped_reward_state="earned", reward_states=["EARNED"])
        assert earned == [("events", by_id("u-7"), {**event, "name": "extole_reward_earned"})]
        with pytest.raises(Filtered) as caught:
            mapped(body, untyped_reward_state="SENT")
        assert caught.value.reason == "reward_state_not_enabled: SENT"

    def test_documented_minimal_reward_body_is_a_reward_without_a_user(self) -> None:
        body = {
            "reward_id": "b600f6fdd06c83f8ffdd6309",
            "data": {
                "earned_event_value": "100.00",
                "journey_name": "ADVOCATE",
                "rewardee_role": "advocate",
                "custom_key": "custom_value",
            },
        }
        event = EXTOLE.normalize(body, received_at=RECEIVED)
        assert (event.kind, event.dedupe_key) == ("reward", None)
        with pytest.raises(Rejected) as caught:
            mapped(body)
        assert caught.value.reason == "no_user_identifier"

    def test_subscribed_sets_email_subscribe_and_sends_no_event(self) -> None:
        assert objects(bodies.SUBSCRIBED) == [
            (
                "attributes",
                by_id("019mr8mf4r"),
                {"email": "april@example.com", "email_subscribe": "opted_in"},
            )
        ]

    def test_subscribed_with_group_and_list_type(self) -> None:
        body = {**bodies.SUBSCRIBED, "list_type": "newsletter"}
        [(_, _, attributes)] = objects(body, subscription_group_id="sg-1")
        assert attributes == {
            "email": "april@example.com",
            "email_subscribe": "opted_in",
            "extole_list_type": "newsletter",
            "subscription_groups": [
                {"subscription_group_id": "sg-1", "subscription_state": "subscribed"}
            ],
        }

    def test_unsubscribed_sets_list_type_and_group_not_the_global_email_state(self) -> None:
        """extole/product-docs `technical/partners/marketing-automation/braze.mdx`, Subscription
        States: `unsubscribed` is an opt-out of Extole's emails; its user attribute is only the
        list type, with the subscription group id."""
        body = {
            "event": "unsubscribed",
            "email": "a@x.io",
            "partner_user_id": "u1",
            "list_type": "referral",
        }
        assert objects(body, subscription_group_id="sg-1")[0] == (
            "attributes",
            by_id("u1"),
            {
                "extole_list_type": "referral",
                "subscription_groups": [
                    {"subscription_group_id": "sg-1", "subscription_state": "unsubscribed"}
                ],
            },
        )
        assert objects(body)[0] == ("attributes", by_id("u1"), {"extole_list_type": "referral"})

    def test_unsubscribed_with_global_email_unsubscribe(self) -> None:
        assert objects(
            bodies.UNSUBSCRIBED, subscription_group_id="sg-1", global_email_unsubscribe=True
        ) == [
            (
                "attributes",
                by_id("019mr8mf4r"),
                {
                    "email_subscribe": "unsubscribed",
                    "subscription_groups": [
                        {"subscription_group_id": "sg-1", "subscription_state": "unsubscribed"}
                    ],
                },
            ),
            (
                "events",
                by_id("019mr8mf4r"),
                {
                    "name": "extole_unsubscribed",
                    "time": "2024-12-22T11:05:00.000Z",
                    "properties": {
                        "email": "april@example.com",
                        "external_id": "019mr8mf4r",
                        "subscription_state": "unsubscribed",
                        "subscription_group_id": "sg-1",
                    },
                },
            ),
        ]

    def test_entire_object_envelope_with_value_wrappers(self) -> None:
        assert objects(bodies.ENVELOPE_SHARED) == [
            ("attributes", by_id("019mr8mf4r"), {"email": "april@example.com"}),
            (
                "events",
                by_id("019mr8mf4r"),
                {
                    "name": "extole_shared",
                    "time": "2024-12-20T15:31:28.853Z",
                    "properties": {
                        "partner": "Extole",
                        "funnel": "ADVOCATE",
                        "program": "refer-a-friend",
                        "email": "april@example.com",
                        "external_id": "019mr8mf4r",
                        "share_channel": "EMAIL",
                    },
                },
            ),
        ]


class TestRecognition:
    @pytest.mark.parametrize(
        "name",
        [
            "share_link_created",
            "advocate_code_created",
            "extole_share_link_created",
            "extole_created_share_link",
            "Share Link Created",
            "SHARE-LINK-CREATED",
        ],
    )
    def test_share_link_names(self, name: str) -> None:
        event = EXTOLE.normalize({"event": name, "email": "a@b.co"}, received_at=RECEIVED)
        assert event.kind == "share_link_created"

    @pytest.mark.parametrize(
        ("field", "name", "kind"),
        [
            ("event", "opted_in", "subscribed"),
            ("name", "subscribed", "subscribed"),
            ("type", "Extole Subscribed", "subscribed"),
            ("event", "opted_out", "unsubscribed"),
            ("event_name", "unsubscribed", "unsubscribed"),
            ("event", "extole_unsubscribed", "unsubscribed"),
            ("event", "shared", "shared"),
            ("event", "shipped", "outcome"),
        ],
    )
    def test_kind_from_any_name_field(self, field: str, name: str, kind: str) -> None:
        event = EXTOLE.normalize({field: name, "email": "a@b.co"}, received_at=RECEIVED)
        assert event.kind == kind

    def test_face_value_sent_as_text_becomes_a_number(self) -> None:
        body = bodies.reward(bodies.REWARD_FULFILLED_RAW, face_value="12.50")
        [_, event] = objects(body)
        assert event[2]["properties"]["face_value"] == 12.5

    def test_reward_email_from_email_before_recipient_email(self) -> None:
        body = bodies.reward(bodies.REWARD_EARNED_RAW, email="direct@example.com")
        event = EXTOLE.normalize(body, received_at=RECEIVED)
        assert event.user.email == "direct@example.com"

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            ([1, 2], "unknown_shape: body is a JSON array, expected an object"),
            ({"email": "a@b.co"}, "unknown_shape: no event, event_name, name or type field"),
            ({"type": "STEP", "email": "a@b.co"}, "unknown_shape: no event, event_name"),
        ],
    )
    def test_unknown_shapes_are_rejected_with_the_reason(self, body: Any, reason: str) -> None:
        with pytest.raises(Rejected) as caught:
            EXTOLE.normalize(body, received_at=RECEIVED)
        assert caught.value.reason.startswith(reason)

    @pytest.mark.parametrize(
        ("body", "key"),
        [
            (bodies.REWARD_EARNED, "event:qb3jju459ugjr2aojk5e"),
            (
                {k: v for k, v in bodies.REWARD_EARNED.items() if k != "event_id"},
                "reward:bf67905b4e1b41daf39c30f0:reward_earned",
            ),
            (bodies.SHARE_LINK_CREATED, None),  # no id: the ingest hashes the raw body
        ],
    )
    def test_dedupe_key(self, body: dict[str, Any], key: str | None) -> None:
        assert EXTOLE.normalize(body, received_at=RECEIVED).dedupe_key == key


class TestSettings:
    def test_reward_state_not_enabled_is_filtered(self) -> None:
        with pytest.raises(Filtered, match=r"reward_state_not_enabled: EARNED"):
            mapped(bodies.REWARD_EARNED)

    @pytest.mark.parametrize(
        ("body", "events", "reason"),
        [
            (bodies.SHARED, {"shared": False}, "kind_not_enabled: shared"),
            (bodies.SUBSCRIBED, {"subscribed": False}, "kind_not_enabled: subscribed"),
            (bodies.UNSUBSCRIBED, {"unsubscribed": False}, "kind_not_enabled: unsubscribed"),
            (
                bodies.SHARE_LINK_CREATED,
                {"share_link_created": False},
                "kind_not_enabled: share_link_created",
            ),
            (bodies.CONVERTED, {"outcomes": ["shipped"]}, "outcome_not_enabled: converted"),
        ],
    )
    def test_disabled_kinds_are_filtered(
        self, body: dict[str, Any], events: dict[str, Any], reason: str
    ) -> None:
        with pytest.raises(Filtered) as caught:
            mapped(body, events=events)
        assert caught.value.reason == reason

    def test_listed_outcome_passes_with_or_without_prefix(self) -> None:
        assert mapped(bodies.CONVERTED, events={"outcomes": ["extole_converted"]}).operations

    def test_event_name_overrides(self) -> None:
        names = {
            "share_link_created": "extole_created_share_link",
            "reward_fulfilled": "coupon_ready",
            "converted": "referral_converted",
        }
        assert objects(bodies.SHARE_LINK_CREATED, event_names=names)[1][2]["name"] == (
            "extole_created_share_link"
        )
        assert objects(bodies.REWARD_FULFILLED, event_names=names)[1][2]["name"] == "coupon_ready"
        assert objects(bodies.CONVERTED, event_names=names)[1][2]["name"] == "referral_converted"

    def test_email_address_source_uses_the_email_as_external_id(self) -> None:
        [attributes, _] = objects(bodies.SHARED, external_id_source="email_address")
        assert attributes[1] == UserRef(external_id="april@example.com")

    def test_without_external_id_the_operation_carries_only_the_email(self) -> None:
        body = {k: v for k, v in bodies.SHARED.items() if k != "partner_user_id"}
        for _, user, _ in objects(body, unknown_user="skip"):
            assert user == UserRef(email="april@example.com", unknown_user="skip")
            assert user.key == "email:april@example.com"

    def test_an_external_id_user_keeps_the_email_for_identify_later(self) -> None:
        """docs/delivery.md, "Identify later": the worker needs the email of an event that has
        an external id to find the profile it created for that email before."""
        users = {op.user for op in mapped(bodies.SHARED).operations}
        assert users == {
            UserRef(external_id="019mr8mf4r", email="april@example.com", unknown_user="email")
        }

    def test_no_identifier_at_all_is_rejected(self) -> None:
        body = {"event": "shared", "first_name": "Nobody"}
        with pytest.raises(Rejected, match=r"^no_user_identifier$"):
            mapped(body)


class TestBrazeRules:
    def test_event_time_falls_back_to_receipt_time(self) -> None:
        [_, event] = objects({"event": "shared", "partner_user_id": "u1", "email": "a@b.co"})
        assert event[2]["time"] == "2025-01-02T03:04:05.678Z"

    def test_outcome_properties_obey_braze_names_and_lengths(self) -> None:
        body = {
            "event": "converted",
            "partner_user_id": "u1",
            "$secret": "x",
            "": "empty name",
            "time": "2024-01-01T00:00:00Z",
            "event_name": "converted",
            "long": "x" * 300,
            "nested": {"a": 1},
            "flag": True,
            "none": None,
        }
        [event] = objects(body)
        assert event[2]["properties"] == {
            "partner": "Extole",
            "partner_user_id": "u1",
            "long": "x" * 255,
            "flag": True,
        }

    def test_a_share_link_over_255_characters_is_left_out_with_a_note_not_cut(self) -> None:
        """A cut link is a broken link in every message that uses it.

        braze-inc/braze-docs `_docs/_api/objects_filters/user_attributes_object.md`: custom
        attribute string values are at most 255 characters.
        """
        link = "https://share.example.com/" + "a" * 280
        result = mapped({**bodies.SHARE_LINK_CREATED, "share_link": link})
        [attributes, _event] = result.operations
        assert "extole_share_link" not in attributes.payload
        assert all(link[:255] not in str(op.payload) for op in result.operations)
        assert len(result.notes) == 1
        assert result.notes[0].startswith("extole_share_link not sent")


class TestContentProjection:
    def test_share_link_created_updates_link_and_code(self) -> None:
        content = mapped(bodies.SHARE_LINK_CREATED).content
        assert content is not None
        assert (content.external_id, content.share_link, content.share_code) == (
            "USER-12345",
            "https://share.yourbrand.com/alex01",
            "alex01",
        )

    def test_reward_snapshot(self) -> None:
        content = mapped(bodies.REWARD_FULFILLED).content
        assert content is not None
        assert content.reward == RewardSnapshot(
            reward_id="bf67905b4e1b41daf39c30f1",
            state="FULFILLED",
            face_value=20,
            face_value_type="PERCENT_OFF",
            coupon_code="RAF12345",
            updated_at=datetime(2020, 5, 29, 14, 15, 2, 1000, tzinfo=UTC),
        )

    def test_email_only_users_have_no_projection(self) -> None:
        body = {k: v for k, v in bodies.SHARE_LINK_CREATED.items() if k != "partner_user_id"}
        assert mapped(body).content is None


class TestIdentityModes:
    """`settings.identity` as each operation stores it (docs/delivery.md, "Identity")."""

    EMAIL_ONLY: ClassVar[dict[str, Any]] = {
        k: v for k, v in bodies.SHARED.items() if k != "partner_user_id"
    }

    @pytest.mark.parametrize(
        ("settings", "stored"),
        [
            ({}, "email"),
            ({"identity": "email"}, "email"),
            ({"identity": "lookup_then_alias"}, "alias"),
            ({"identity": "skip"}, "skip"),
            # The former setting is still read.
            ({"unknown_user": "alias"}, "alias"),
            ({"unknown_user": "skip"}, "skip"),
            ({"unknown_user": "skip", "identity": "skip"}, "skip"),
        ],
    )
    def test_the_mode_is_stored_on_each_operation(
        self, settings: dict[str, str], stored: str
    ) -> None:
        for _, user, _ in objects(self.EMAIL_ONLY, **settings):
            assert user == UserRef(email="april@example.com", unknown_user=stored)

    def test_the_former_name_saying_otherwise_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="send identity alone"):
            ExtoleSettings.model_validate({"unknown_user": "skip", "identity": "email"})

    def test_the_former_name_is_never_stored(self) -> None:
        dumped = ExtoleSettings.model_validate({"unknown_user": "skip"}).model_dump(mode="json")
        assert dumped["identity"] == "skip"
        assert "unknown_user" not in dumped
