"""How a stored value loses a forgotten person (domain/privacy.py, docs/privacy.md)."""

from __future__ import annotations

from braze_bridge.domain.privacy import FORGOTTEN, Person, is_forgotten

ADA = Person.of(external_id="42", email="Ada@Example.com")


def test_the_person_is_found_by_email_in_any_case_and_by_the_whole_external_id() -> None:
    assert ADA.emails == frozenset({"ada@example.com"})
    assert ADA.user_keys == ["email:ada@example.com", "id:42"]
    assert ADA.mentioned_in('{"email": "ADA@example.COM"}')
    assert ADA.mentioned_in('{"external_id": "42"}')
    assert not ADA.mentioned_in('{"price": 42, "code": "X42"}')


def test_a_request_body_loses_the_persons_objects_and_keeps_the_others() -> None:
    body = {
        "attributes": [
            {"external_id": "42", "first_name": "Ada"},
            {"external_id": "7", "first_name": "Bob", "friend": "ada@example.com"},
        ],
        "events": [
            {"user_alias": {"alias_name": "ada@example.com", "alias_label": "email"}, "name": "x"},
            {"external_id": "7", "name": "y", "properties": {"price": 42, "note": "to 42"}},
        ],
    }

    assert ADA.scrub_json(body) == {
        "attributes": [{"external_id": "7", "first_name": "Bob", "friend": FORGOTTEN}],
        "events": [{"external_id": "7", "name": "y", "properties": {"price": 42, "note": "to 42"}}],
    }


def test_text_loses_every_email_and_quoted_ids() -> None:
    message = "user 'ADA@example.com' and \"42\" refused; 420 objects"
    assert ADA.scrub_text(message) == f"user '{FORGOTTEN}' and \"{FORGOTTEN}\" refused; 420 objects"


def test_links_add_identifiers_and_user_keys_are_identifiers() -> None:
    linked = Person.of(email="ada@example.com").with_links(["42", ""], ["ADA2@example.com"])
    assert linked.external_ids == frozenset({"42"})
    assert linked.emails == frozenset({"ada@example.com", "ada2@example.com"})
    assert linked.is_identifier("id:42")
    assert linked.scrub_json({"user": "email:ada2@example.com"}) == {"user": FORGOTTEN}


def test_a_forgotten_event_is_recognised_by_its_normalized_form() -> None:
    assert is_forgotten({"kind": "reward", "forgotten": True})
    assert not is_forgotten({"kind": "reward"})
    assert not is_forgotten(None)


def test_an_email_inside_a_longer_address_is_another_person() -> None:
    short = Person.of(email="da@example.com")
    text = "ada@example.com, da@example.com.au, <da@example.com>"

    assert short.scrub_text(text) == f"ada@example.com, da@example.com.au, <{FORGOTTEN}>"
    assert not short.mentioned_in("ada@example.com")
    assert short.scrub_json({"friend": "ada@example.com"}) == {"friend": "ada@example.com"}
