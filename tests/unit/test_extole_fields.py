"""Reading the fields of an Extole body: types as sent, anything else absent, never an error."""

from __future__ import annotations

from braze_bridge.partners.extole.payloads import ExtoleFields, flatten_body


def test_fields_are_trimmed_text_numbers_become_text_and_other_types_are_absent() -> None:
    fields = ExtoleFields.read(
        flatten_body(
            {
                "event": "  shared ",
                "event_id": 7450517086735879321,
                "email": "",
                "first_name": True,
                "last_name": ["Spring"],
                "funnel": {"value": "ADVOCATE", "scope": "PUBLIC"},
                "program": 1.5,
                "face_value": " 12.50 ",
                "unrelated": "ignored",
                "data": {"partner_user_id": {"value": "019mr8mf4r"}, "event": "other"},
            }
        )
    )
    assert fields.kind_names == ["shared"]
    assert fields.event_id == "7450517086735879321"
    assert fields.email is None
    assert fields.first_name is None
    assert fields.last_name is None
    assert fields.funnel == "ADVOCATE"
    assert fields.program == "1.5"
    assert fields.face_value == 12.5
    assert fields.partner_user_id == "019mr8mf4r"
    assert fields.reward_id is None


def test_face_value_reads_numbers_sent_either_way() -> None:
    assert ExtoleFields.read({"face_value": "50"}).face_value == 50
    assert ExtoleFields.read({"face_value": 20}).face_value == 20
    assert ExtoleFields.read({"face_value": "fifty"}).face_value is None
    assert ExtoleFields.read({"face_value": False}).face_value is None
