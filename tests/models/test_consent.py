"""Consent rules of the marketing export (pure: no services)."""

from __future__ import annotations

import pytest

from models.consent import (
    CHANNELS,
    PERSON_REASONS,
    household_bans_product_data,
    person_excluded_reason,
    product_data_banned_households,
)

NONE: frozenset[str] = frozenset()


@pytest.mark.parametrize(
    ("bans", "email", "sms", "channel", "reason"),
    [
        (NONE, True, False, "email", None),
        (NONE, False, True, "email", "no_email_permission"),
        (frozenset({"email"}), True, True, "email", "email_ban"),
        (frozenset({"email"}), False, False, "email", "email_ban"),  # the ban is checked first
        (frozenset({"direct_mail"}), True, False, "email", None),
        (NONE, False, True, "sms", None),
        (NONE, True, False, "sms", "no_sms_permission"),
        (frozenset({"email", "direct_mail"}), False, True, "sms", None),
        (NONE, False, False, "mail", None),
        (frozenset({"direct_mail"}), True, True, "mail", "direct_mail_ban"),
        (frozenset({"email"}), False, False, "mail", None),
    ],
)
def test_person_excluded_reason(
    bans: frozenset[str], email: bool, sms: bool, channel: str, reason: str | None
) -> None:
    assert person_excluded_reason(bans, email, sms, channel) == reason
    if reason is not None:
        assert reason in PERSON_REASONS


def test_every_channel_has_a_rule_and_others_are_refused() -> None:
    for channel in CHANNELS:
        # Everything given and nothing banned: reachable on every channel.
        assert person_excluded_reason(NONE, True, True, channel) is None
    with pytest.raises(ValueError, match="email, sms, mail, phone, survey, owner_mail"):
        person_excluded_reason(NONE, True, True, "pigeon")


def test_product_data_ban_of_any_person_keeps_the_household_out() -> None:
    assert not household_bans_product_data([])
    assert not household_bans_product_data([NONE, frozenset({"email"})])
    assert household_bans_product_data([NONE, frozenset({"product_data_marketing"})])


ALL_BANS = frozenset(
    {"direct_mail", "phone_marketing", "surveys", "owner_mail", "email", "warranty_receipts"}
)


@pytest.mark.parametrize(
    ("channel", "ban", "reason"),
    [
        ("mail", "direct_mail", "direct_mail_ban"),
        ("phone", "phone_marketing", "phone_marketing_ban"),
        ("survey", "surveys", "surveys_ban"),
        ("owner_mail", "owner_mail", "owner_mail_ban"),
    ],
)
def test_each_ban_closes_exactly_its_own_channel(channel: str, ban: str, reason: str) -> None:
    assert person_excluded_reason(frozenset({ban}), True, True, channel) == reason
    # every other ban leaves this channel open
    assert person_excluded_reason(ALL_BANS - {ban}, True, True, channel) is None
    for other in set(CHANNELS) - {channel, "email", "sms"}:
        assert person_excluded_reason(frozenset({ban}), True, True, other) is None
    assert reason in PERSON_REASONS


def test_product_data_banned_households_by_record_and_by_listing() -> None:
    persons = {
        "P1": ("H1", frozenset({"product_data_marketing"})),
        "P2": ("H2", frozenset({"product_data_services", "email"})),
        "P3": ("", frozenset({"product_data_marketing"})),  # record names no household
        "P4": ("H4", frozenset()),
    }
    households = {"H1": ["P1"], "H2": ["P2"], "H3": ["P3", "P9"], "H4": ["P4"], "H5": []}
    assert product_data_banned_households(persons, households) == {"H1", "H3"}
    assert product_data_banned_households({}, households) == set()
