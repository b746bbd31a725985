"""Consent: who may be contacted on a marketing channel, from the register's bans and permissions.

Pure rules (contract section 3, register events): the marketing export reads the records from
Redis and asks these functions. Every segment is built from product-level purchases, so any
person of a household banning ``product_data_marketing`` keeps the whole household out.

Channels and what each needs of a person:

- ``email``: no ``email`` ban, and ``email_marketing`` given;
- ``sms``: ``sms_marketing`` given;
- ``mail``: no ``direct_mail`` ban;
- ``phone``: no ``phone_marketing`` ban;
- ``survey``: no ``surveys`` ban;
- ``owner_mail``: no ``owner_mail`` ban (the co-op's mail to its owners).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

CHANNELS: tuple[str, ...] = ("email", "sms", "mail", "phone", "survey", "owner_mail")

PRODUCT_DATA_BAN = "product_data_marketing"
EMAIL_BAN = "email"
DIRECT_MAIL_BAN = "direct_mail"
PRODUCT_DATA_SERVICES_BAN = "product_data_services"
#: channels that only a ban closes: channel -> (ban code, reason code)
_BAN_ONLY: dict[str, tuple[str, str]] = {
    "mail": (DIRECT_MAIL_BAN, "direct_mail_ban"),
    "phone": ("phone_marketing", "phone_marketing_ban"),
    "survey": ("surveys", "surveys_ban"),
    "owner_mail": ("owner_mail", "owner_mail_ban"),
}

#: household-level reasons, in the order they are checked (a household counts once, first hit)
HOUSEHOLD_REASONS: tuple[str, ...] = (
    "household_unknown",  # in the segment, but no hh:* record maps to its key
    "household_ended",
    "product_data_marketing_ban",  # some person of the household has the ban
    "person_record_missing",  # a listed person has no person:* record: bans unknown
    "no_reachable_person",  # nobody in the household may be contacted on the channel
)
#: person-level reasons (persons of households that passed the household checks)
PERSON_REASONS: tuple[str, ...] = (
    "person_not_in_household",  # the person record names another household
    "email_ban",
    "no_email_permission",
    "no_sms_permission",
    "direct_mail_ban",
    "phone_marketing_ban",
    "surveys_ban",
    "owner_mail_ban",
)


def household_bans_product_data(person_bans: Iterable[frozenset[str]]) -> bool:
    """Whether any person of the household bans the use of product-level purchase data."""
    return any(PRODUCT_DATA_BAN in bans for bans in person_bans)


def person_excluded_reason(
    person_bans: frozenset[str], email_marketing: bool, sms_marketing: bool, channel: str
) -> str | None:
    """Why this person may not be contacted on ``channel`` (a ``PERSON_REASONS`` code), or None.

    Raises ``ValueError`` for a channel not in :data:`CHANNELS`.
    """
    if channel == "email":
        if EMAIL_BAN in person_bans:
            return "email_ban"
        if not email_marketing:
            return "no_email_permission"
        return None
    if channel == "sms":
        return None if sms_marketing else "no_sms_permission"
    if channel in _BAN_ONLY:
        ban, reason = _BAN_ONLY[channel]
        return reason if ban in person_bans else None
    raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")


def product_data_banned_households(
    persons: Mapping[str, tuple[str, frozenset[str]]],
    households: Mapping[str, Sequence[str]],
) -> set[str]:
    """Households with a current person banning ``product_data_marketing``: a person counts
    for the household its record names and for every household that lists it.

    ``persons``: person id -> (household id of the record, bans); ``households``: household
    id -> the person ids its snapshot lists.
    """
    banned_persons = {pid for pid, (_, bans) in persons.items() if PRODUCT_DATA_BAN in bans}
    out = {persons[pid][0] for pid in banned_persons if persons[pid][0]}
    out.update(hid for hid, pids in households.items() if banned_persons.intersection(pids))
    return out
