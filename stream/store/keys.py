"""Every Redis key of the service, named in one place.

One method per key; the prefix (``LOYALTY_REDIS_PREFIX``, ``Settings.redis_prefix``) is applied
in one place, :meth:`Keys._key`. Nothing else in the service spells a key: the Store's methods
take their keys from here, and the Lua scripts get theirs as ``KEYS`` (or, where a script finds
a key only from data it reads, such as the household of a card in ``apply_swipes.lua``, as the
prefix plus the heads below, checked by ``tests/stream/store/test_keys.py``; register ops name
their record by its unprefixed key, ``unprefixed_*`` below).

=========================================  ======  ==============================================
key (after the prefix)                     type    content
=========================================  ======  ==============================================
``card:{CARD}``                            hash    household_id, person_id, status, valid_until,
                                                   updated_at, updated_us
``held:{CARD}``                            hash    event_id -> swipe JSON (card not yet known)
``held:index``                             zset    card -> epoch seconds its first swipe was held
``held:count``                             string  swipes on hold (``loyalty_held_swipes``)
``hh:{H}``                                 hash    household snapshot (co_op, business, status,
                                                   capital_required_cents, payout_account,
                                                   head_person_id, person_ids JSON, updated_at)
``hh:{H}:capital``                         hash    payment_id -> amount_cents
``hh:{H}:cards``, ``hh:{H}:persons``       set     the household's cards and persons (erasure)
``hh:{H}:ledger``                          hash    capital_paid_cents, bonus_to_capital_cents,
                                                   and per year: capital_paid_cents:YYYY,
                                                   bonus_to_capital_cents:YYYY
``person:{P}``                             hash    household_id, bans JSON, email_marketing,
                                                   sms_marketing, updated_at
``acc:{H}:{YYYY-MM}``                      hash    accumulator fields (``models.bonus``)
``seen:{H}:{YYYY-MM}``                     set     event ids applied to that household-month
``paid:{H}:{YYYY-MM}``                     hash    payout ledger: seq, sums already paid
``payout:{H}:{YYYY-MM}:{seq}``             string  the payout/1 JSON (kept for ``explain``)
``outbox``                                 zset    payout id -> epoch recorded; not yet sent
``sending:{payout_id}``                    string  a sender's claim on an outbox entry (expires)
``member-payment:{payment_id}``            string  the member-payment/1 JSON
``member-payments:{YYYY}``                 hash    payment_id -> head_person_id (tax report)
``outbox:member-payments``                 zset    member payment ids not yet sent
``sending-member-payment:{payment_id}``    string  a sender's claim on a member payment
``month:{YYYY-MM}:households``             set     households with an accumulator that month
``month:{YYYY-MM}:closed``                 string  ISO time of the first close
``month:{YYYY-MM}:closing``                string  the close lock (redis-py ``Lock``, expires)
``month:{YYYY-MM}:closes``                 string  how many closes of the month completed
``month:{YYYY-MM}:scheduled:{YYYY-MM}``    string  the scheduled close ran on that close day
``erased:{household_key}``                 string  time (µs) of the household's last erasure
``erased:recent``                          zset    household_key -> epoch erased (analytics)
``erasure:pending``, ``erasure:confirm``   zset    household_key -> epoch due (ClickHouse)
``erasure:request:{request_id}``           string  the erasure request was applied (expires)
``rights:last-run``                        string  epoch of the worker's last rights run
``rights:indexed``                         string  the card and person indexes were built
=========================================  ======  ==============================================

Per-month keys (``acc``, ``seen``, ``paid``, ``payout`` and ``month:``) are what the Redis
retention removes: :func:`month_of_key` recognises them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from models.months import Month

# The key heads the Lua scripts compose from the prefix (see the module docstring).
CARD = "card:"
HELD = "held:"
HOUSEHOLD = "hh:"
PERSON = "person:"
ACCUMULATOR = "acc:"
SEEN = "seen:"
PAID = "paid:"
PAYOUT = "payout:"
OUTBOX = "outbox"
SENDING = "sending:"
MEMBER_PAYMENT = "member-payment:"
MEMBER_PAYMENTS = "member-payments:"
MEMBER_PAYMENT_OUTBOX = "outbox:member-payments"
MEMBER_PAYMENT_SENDING = "sending-member-payment:"
MONTH = "month:"
ERASED = "erased:"
ERASURE = "erasure:"
RIGHTS = "rights:"
HELD_INDEX = HELD + "index"
HELD_COUNT = HELD + "count"

_PER_HOUSEHOLD = re.compile(r"^(acc|seen|paid|payout):[A-Za-z0-9_.\-]+:(\d{4}-\d{2})(?::\d+)?$")
_PER_MONTH = re.compile(r"^month:(\d{4}-\d{2}):")


def month_of_key(key: str) -> tuple[str, Month] | None:
    """``(kind, month)`` of a per-month key (without prefix), else None."""
    if m := _PER_HOUSEHOLD.match(key):
        return m.group(1), Month.parse(m.group(2))
    if m := _PER_MONTH.match(key):
        return "month", Month.parse(m.group(1))
    return None


def glob_escape(text: str) -> str:
    """``text`` with the glob characters of ``SCAN MATCH`` escaped."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


@dataclass(frozen=True, slots=True)
class OutboxKeys:
    """The keys of one outbox: the sorted set of ids not yet confirmed sent (score: epoch
    recorded), the records (``record(id)`` holds the event's JSON) and the senders' claims."""

    name: str  # for logs and the ``outbox`` label of the outbox gauges
    outbox: str
    record_head: str
    claim_head: str

    def record(self, event_id: str) -> str:
        return self.record_head + event_id

    def claim(self, event_id: str) -> str:
        return self.claim_head + event_id


class Keys:
    """The keys of one deployment (one prefix)."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def _key(self, head: str, *parts: str) -> str:
        return self.prefix + head + ":".join(parts)

    # -- the register -------------------------------------------------------------------

    def card(self, card: str) -> str:
        return self._key(CARD, card)

    def household(self, household_id: str) -> str:
        return self._key(HOUSEHOLD, household_id)

    def household_capital(self, household_id: str) -> str:
        return self._key(HOUSEHOLD, household_id, "capital")

    def household_ledger(self, household_id: str) -> str:
        return self._key(HOUSEHOLD, household_id, "ledger")

    def person(self, person_id: str) -> str:
        return self._key(PERSON, person_id)

    def household_cards(self, household_id: str) -> str:
        return self._key(HOUSEHOLD, household_id, "cards")

    def household_persons(self, household_id: str) -> str:
        return self._key(HOUSEHOLD, household_id, "persons")

    # -- erasure (contract section 9) ----------------------------------------------------

    def erased(self, household_key: str) -> str:
        return self._key(ERASED, household_key)

    def erased_recent(self) -> str:
        return self._key(ERASED, "recent")

    def erasure_pending(self) -> str:
        return self._key(ERASURE, "pending")

    def erasure_confirm(self) -> str:
        return self._key(ERASURE, "confirm")

    def erasure_request(self, request_id: str) -> str:
        return self._key(ERASURE, "request", request_id)

    def rights_last_run(self) -> str:
        return self._key(RIGHTS, "last-run")

    def rights_indexed(self) -> str:
        return self._key(RIGHTS, "indexed")

    def households_pattern(self) -> str:
        """``SCAN MATCH`` pattern of the household records (and their sub-keys)."""
        return glob_escape(self._key(HOUSEHOLD)) + "*"

    def household_id_of(self, key: str) -> str | None:
        """The household id of a ``hh:{H}`` record key (None for ``hh:{H}:ledger`` etc.)."""
        head = self._key(HOUSEHOLD)
        if not key.startswith(head):
            return None
        rest = key[len(head) :]
        if not rest or ":" in rest:
            return None
        return rest[1:-1] if rest.startswith("{") and rest.endswith("}") else rest

    # -- the hold -----------------------------------------------------------------------

    def held(self, card: str) -> str:
        return self._key(HELD, card)

    def held_index(self) -> str:
        return self._key(HELD_INDEX)

    def held_count(self) -> str:
        return self._key(HELD_COUNT)

    # -- household-months ---------------------------------------------------------------

    def accumulator(self, household_id: str, month: str) -> str:
        return self._key(ACCUMULATOR, household_id, month)

    def seen(self, household_id: str, month: str) -> str:
        return self._key(SEEN, household_id, month)

    def paid(self, household_id: str, month: str) -> str:
        return self._key(PAID, household_id, month)

    # -- payouts ------------------------------------------------------------------------

    def payout(self, payout_id: str) -> str:
        return self._key(PAYOUT, payout_id)

    def outbox(self) -> str:
        return self._key(OUTBOX)

    def sending(self, payout_id: str) -> str:
        return self._key(SENDING, payout_id)

    def payout_outbox(self) -> OutboxKeys:
        """The month close's outbox: ``outbox``, ``payout:{id}``, ``sending:{id}``."""
        return OutboxKeys("payout", self.outbox(), self._key(PAYOUT), self._key(SENDING))

    # -- member payments (contract section 11) ------------------------------------------

    def member_payment(self, payment_id: str) -> str:
        return self._key(MEMBER_PAYMENT, payment_id)

    def member_payments(self, year: str) -> str:
        return self._key(MEMBER_PAYMENTS, year)

    def member_payment_outbox(self) -> OutboxKeys:
        return OutboxKeys(
            "member_payment",
            self._key(MEMBER_PAYMENT_OUTBOX),
            self._key(MEMBER_PAYMENT),
            self._key(MEMBER_PAYMENT_SENDING),
        )

    # -- months -------------------------------------------------------------------------

    def month_households(self, month: str) -> str:
        return self._key(MONTH, month, "households")

    def month_closed(self, month: str) -> str:
        return self._key(MONTH, month, "closed")

    def month_closing(self, month: str) -> str:
        return self._key(MONTH, month, "closing")

    def month_closes(self, month: str) -> str:
        return self._key(MONTH, month, "closes")

    def month_scheduled(self, month: str, close_day_month: str) -> str:
        return self._key(MONTH, month, "scheduled", close_day_month)

    # -- unprefixed record names (register ops; the register script adds the prefix) ---------

    @staticmethod
    def unprefixed_household(household_id: str) -> str:
        return HOUSEHOLD + household_id

    @staticmethod
    def unprefixed_card(card: str) -> str:
        return CARD + card

    @staticmethod
    def unprefixed_person(person_id: str) -> str:
        return PERSON + person_id

    # -- everything ---------------------------------------------------------------------

    def all_pattern(self) -> str:
        """``SCAN MATCH`` pattern of every key of this deployment."""
        return glob_escape(self.prefix) + "*"

    def unprefixed(self, key: str) -> str | None:
        """``key`` without the prefix, None when it is not ours."""
        return key[len(self.prefix) :] if key.startswith(self.prefix) else None
