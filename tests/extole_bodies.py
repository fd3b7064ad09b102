"""Extole webhook bodies as documented (Extole's webhook pages in extole/product-docs), exact bytes."""

from __future__ import annotations

import json
from typing import Any

SHARE_LINK_CREATED: dict[str, Any] = {
    "event": "Share Link Created",
    "email": "alex@example.com",
    "partner_user_id": "USER-12345",
    "timestamp": "2024-03-15T10:30:00.000Z",
    "share_link": "share.yourbrand.com/alex01",
    "share_code": "alex01",
}

SHARED: dict[str, Any] = {
    "event": "extole_shared",
    "event_id": "7450517086735879321",
    "event_time": "2024-12-20T15:31:28.853Z",
    "root_event_id": "7450517084360984932",
    "sandbox": {"sandbox_id": "production-production", "container": {"name": "production"}},
    "partner_user_id": "019mr8mf4r",
    "email": "april@example.com",
    "first_name": "April",
    "last_name": "Spring",
    "funnel": "ADVOCATE",
    "program": "refer-a-friend",
    "campaign": "Refer A Friend",
    "channel": "EMAIL",
    "share_link": "https://share.example.com/april",
    "friend_emails": ["summer@example.com"],
}

CONVERTED: dict[str, Any] = {
    "event": "extole_converted",
    "event_id": "7450517099912345678",
    "event_time": "2024-12-21T09:02:11.120Z",
    "partner_user_id": "056tf9eqw24",
    "email": "summer@example.com",
    "first_name": "Summer",
    "last_name": "Doe",
    "funnel": "FRIEND",
    "cart_value": "99.99",
    "partner_conversion_id": "991nss7712n317has-128sa1",
    "coupon_code": "FR1921882NY",
    "advocate_user_id": "019mr8mf4r",
}

# The reward bodies are the exact strings of the research file (E-WC signature example shape).
REWARD_EARNED_RAW = b'{"type":"reward_earned","event_id":"qb3jju459ugjr2aojk5e","event_time":"2020-05-29T14:14:18.548Z","reward_id":"bf67905b4e1b41daf39c30f0","reward_supplier_name":"Advocate Account Credit","reward_supplier_id":"701e681a9e46c8b6778f3452","partner_reward_supplier_id":"Advocate Account Credit","reward_supplier_type":"CUSTOM_REWARD","person_id":"6816411215104951917","partner_user_id":"1036950000","face_value":50,"face_value_type":"USD","data":{"recipient_email":"april@advocate.com","journey_name":"ADVOCATE","rewardee_role":"advocate"},"message":null,"schema_version":1}'
REWARD_FULFILLED_RAW = b'{"type":"reward_fulfilled","event_id":"qb3jju459ugjr2aojk6f","event_time":"2020-05-29T14:15:02.001Z","reward_id":"bf67905b4e1b41daf39c30f1","reward_supplier_name":"Friend 20% Coupon","reward_supplier_id":"701e681a9e46c8b6778f3453","partner_reward_supplier_id":"friend-coupon-20","reward_supplier_type":"MANUAL_COUPON","partner_reward_key_type":"COUPON","person_id":"6816411215104951918","partner_user_id":"1036950001","face_value":20,"face_value_type":"PERCENT_OFF","partner_reward_id":"RAF12345","data":{"recipient_email":"summer@example.com"},"message":null,"schema_version":1}'
REWARD_SENT_RAW = b'{"type":"reward_sent","event_id":"qb3jju459ugjr2aojk7g","event_time":"2020-05-29T14:16:40.300Z","reward_id":"bf67905b4e1b41daf39c30f1","reward_supplier_name":"Friend 20% Coupon","reward_supplier_id":"701e681a9e46c8b6778f3453","partner_reward_supplier_id":"friend-coupon-20","reward_supplier_type":"MANUAL_COUPON","person_id":"6816411215104951918","partner_user_id":"1036950001","face_value":20,"face_value_type":"PERCENT_OFF","partner_reward_id":"RAF12345","email":"summer@example.com","data":{},"message":null,"schema_version":1}'
REWARD_REDEEMED_RAW = b'{"type":"reward_redeemed","event_id":"qb3jju459ugjr2aojk8h","event_time":"2020-06-02T10:00:00.000Z","reward_id":"bf67905b4e1b41daf39c30f1","reward_supplier_name":"Friend 20% Coupon","reward_supplier_id":"701e681a9e46c8b6778f3453","partner_reward_supplier_id":"friend-coupon-20","reward_supplier_type":"MANUAL_COUPON","person_id":"6816411215104951918","partner_user_id":"1036950001","face_value":20,"face_value_type":"PERCENT_OFF","partner_reward_id":"RAF12345","partner_event_id":"order-122948302","data":{},"message":null,"schema_version":1}'
REWARD_CANCELED_RAW = b'{"type":"reward_canceled","event_id":"qb3jju459ugjr2aojk9i","event_time":"2020-06-03T08:00:00.000Z","reward_id":"bf67905b4e1b41daf39c30f0","reward_supplier_name":"Advocate Account Credit","reward_supplier_id":"701e681a9e46c8b6778f3452","partner_reward_supplier_id":"Advocate Account Credit","reward_supplier_type":"CUSTOM_REWARD","person_id":"6816411215104951917","partner_user_id":"1036950000","face_value":50,"face_value_type":"USD","data":{},"message":"canceled","schema_version":1}'


def reward(raw: bytes, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(raw)
    body.update(changes)
    return body


REWARD_EARNED = reward(REWARD_EARNED_RAW)
REWARD_FULFILLED = reward(REWARD_FULFILLED_RAW)
REWARD_SENT = reward(REWARD_SENT_RAW)
REWARD_REDEEMED = reward(REWARD_REDEEMED_RAW)
REWARD_CANCELED = reward(REWARD_CANCELED_RAW)

SUBSCRIBED: dict[str, Any] = {
    "event": "extole_subscribed",
    "event_id": "7450517111122223333",
    "event_time": "2024-12-20T15:40:00.000Z",
    "email": "april@example.com",
    "partner_user_id": "019mr8mf4r",
    "first_name": "April",
    "last_name": "Spring",
    "funnel": "advocate",
    "opt_in": True,
    "extole_advocate": True,
    "extole_friend": False,
    "extole_share_link": "share.company.com/april",
}

UNSUBSCRIBED: dict[str, Any] = {
    "event": "extole_unsubscribed",
    "event_id": "7450517111122224444",
    "event_time": "2024-12-22T11:05:00.000Z",
    "email": "april@example.com",
    "partner_user_id": "019mr8mf4r",
    "subscription_state": "unsubscribed",
    "opt_in": False,
}

# The "entire object" step envelope, values wrapped as Extole's client events wrap them.
ENVELOPE_SHARED: dict[str, Any] = {
    "type": "STEP",
    "name": "shared",
    "event_id": "7450517086735870001",
    "event_time": "2024-12-20T15:31:28.853Z",
    "request_time": "2024-12-20T15:31:28.800Z",
    "root_event_id": "7450517084360984932",
    "schema_version": 25,
    "sandbox": {"sandbox_id": "production-production", "container": {"name": "production"}},
    "event_context": {"input_event_type": "SHARED", "app_type": "email"},
    "data": {
        "email": {"value": "april@example.com", "type": "STRING", "scope": "PUBLIC"},
        "partner_user_id": {"value": "019mr8mf4r"},
        "channel": {"value": "EMAIL"},
        "journey_name": {"value": "ADVOCATE"},
        "program_label": "refer-a-friend",
    },
    "log_messages": [],
}

ALL_DOCUMENTED: dict[str, dict[str, Any]] = {
    "share_link_created": SHARE_LINK_CREATED,
    "shared": SHARED,
    "converted": CONVERTED,
    "reward_earned": REWARD_EARNED,
    "reward_fulfilled": REWARD_FULFILLED,
    "reward_sent": REWARD_SENT,
    "reward_redeemed": REWARD_REDEEMED,
    "reward_canceled": REWARD_CANCELED,
    "subscribed": SUBSCRIBED,
    "unsubscribed": UNSUBSCRIBED,
    "envelope_shared": ENVELOPE_SHARED,
}
