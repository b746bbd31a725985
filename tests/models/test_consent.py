"""Consent rules of the marketing export (pure: no services)."""

from __future__ import annotations

import pytest

from models.consent import (
    CHANNELS,
    PERSON_REASONS,
    household_bans_product_data,
    person_excluded_reason,
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
    with pytest.raises(ValueError, match="email, sms, mail"):
        person_excluded_reason(NONE, True, True, "pigeon")


def test_product_data_ban_of_any_person_keeps_the_household_out() -> None:
    assert not household_bans_product_data([])
    assert not household_bans_product_data([NONE, frozenset({"email"})])
    assert household_bans_product_data([NONE, frozenset({"product_data_marketing"})])
