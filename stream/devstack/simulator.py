"""A checkout simulator: a register of households and cards, and realistic swipes."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

# (product group, cheapest, dearest line in cents, weight)
PRODUCT_GROUPS: list[tuple[str, int, int, int]] = [
    ("dairy", 89, 899, 20),
    ("bread", 99, 599, 14),
    ("produce", 59, 1299, 18),
    ("meat", 299, 2499, 10),
    ("fish", 399, 2999, 4),
    ("frozen", 199, 1199, 6),
    ("beverages", 99, 1499, 8),
    ("household", 149, 1999, 6),
    ("alcohol", 199, 3999, 4),
    ("tobacco", 899, 1199, 2),
    ("lottery", 100, 2000, 1),
    ("gift_card", 2000, 5000, 1),
]
PAYMENT_METHODS: list[tuple[str, int]] = [
    ("s_etukortti_visa", 35),
    ("payment_card", 40),
    ("mobile", 12),
    ("cash", 8),
    ("invoice", 2),
    ("company_card", 2),
    ("benefit_voucher", 1),
]
CO_OPS = ["hok-elanto", "hok-elanto", "hok-elanto", "pirkanmaan-osuuskauppa"]
FUEL_CENTS_PER_LITRE = 189


@dataclass(frozen=True)
class Household:
    household_id: str
    co_op: str
    business: bool
    person_ids: tuple[str, ...]
    cards: tuple[str, ...]


def _card_number(rng: random.Random) -> str:
    return "6390" + "".join(rng.choice("0123456789") for _ in range(12))


class Simulator:
    """Deterministic for a seed; ``now`` decides the swipes' ``occurred_at``."""

    def __init__(self, households: int = 200, seed: int = 7, stores: int = 60) -> None:
        self.rng = random.Random(seed)
        self.stores = [f"S{n:04d}" for n in range(1, stores + 1)] + ["S0042"] * 3
        self.fuel_stations = [f"F{n:04d}" for n in range(1, 11)]
        self.households = [self._household(n) for n in range(1, households + 1)]
        self.sequence = 0

    def _household(self, n: int) -> Household:
        rng = self.rng
        persons = tuple(f"P{n:06d}{k}" for k in range(rng.choice([1, 1, 2, 2, 2, 3])))
        cards = tuple(_card_number(rng) for _ in persons)
        return Household(f"H{n:06d}", rng.choice(CO_OPS), rng.random() < 0.04, persons, cards)

    def register_events(self, updated_at: datetime) -> list[tuple[bytes, bytes]]:
        """Households, persons and cards as (key, value) for the register topic."""
        stamp = updated_at.isoformat(timespec="seconds")
        out: list[tuple[bytes, bytes]] = []
        for hh in self.households:
            out.append(
                _event(
                    f"household:{hh.household_id}",
                    {
                        "schema": "register/1",
                        "type": "household",
                        "household_id": hh.household_id,
                        "co_op": hh.co_op,
                        "head_person_id": hh.person_ids[0],
                        "person_ids": list(hh.person_ids),
                        "business": hh.business,
                        "status": "active",
                        "capital_required_cents": 10000,
                        "payout_account": f"FI21{self.rng.randrange(10**13):014d}",
                        "updated_at": stamp,
                    },
                )
            )
            for person in hh.person_ids:
                bans = ["product_data_marketing"] if self.rng.random() < 0.1 else []
                out.append(
                    _event(
                        f"person:{person}",
                        {
                            "schema": "register/1",
                            "type": "person",
                            "person_id": person,
                            "household_id": hh.household_id,
                            "bans": bans,
                            "email_marketing": self.rng.random() < 0.6,
                            "sms_marketing": self.rng.random() < 0.3,
                            "updated_at": stamp,
                        },
                    )
                )
            for card, person in zip(hh.cards, hh.person_ids, strict=True):
                out.append(self.card_event(card, hh.household_id, person, updated_at))
            if self.rng.random() < 0.5:
                out.append(
                    _event(
                        f"capital:CP-{hh.household_id}",
                        {
                            "schema": "register/1",
                            "type": "capital_payment",
                            "payment_id": f"CP-{hh.household_id}",
                            "household_id": hh.household_id,
                            "amount_cents": self.rng.choice([2500, 5000, 10000]),
                            "paid_at": stamp,
                        },
                    )
                )
        return out

    def card_event(
        self,
        card: str,
        household_id: str,
        person_id: str,
        updated_at: datetime,
        status: str = "active",
    ) -> tuple[bytes, bytes]:
        return _event(
            f"card:{card}",
            {
                "schema": "register/1",
                "type": "card",
                "card": card,
                "household_id": household_id,
                "person_id": person_id,
                "status": status,
                "valid_until": "2030-12-31",
                "updated_at": updated_at.isoformat(timespec="seconds"),
            },
        )

    def swipe(self, now: datetime, card: str | None = None) -> tuple[bytes, bytes]:
        rng = self.rng
        self.sequence += 1
        if card is None:
            card = rng.choice(rng.choice(self.households).cards)
        method = _weighted(rng, PAYMENT_METHODS)
        if rng.random() < 0.15:
            store = rng.choice(self.fuel_stations)
            litres_ml = rng.randrange(15_000, 60_000)
            lines: list[dict[str, Any]] = [
                {
                    "sku": "FUEL95",
                    "product_group": "fuel",
                    "quantity": 1,
                    "amount_cents": litres_ml * FUEL_CENTS_PER_LITRE // 1000,
                    "fuel_ml": litres_ml,
                }
            ]
        else:
            store = rng.choice(self.stores)
            lines = [self._line(rng) for _ in range(rng.randint(1, 18))]
        kind = "return" if rng.random() < 0.02 else "purchase"
        if kind == "return":
            lines = lines[:1]
        occurred = (now - timedelta(seconds=rng.randint(0, 5))).astimezone(UTC)
        body: dict[str, Any] = {
            "schema": "swipe/1",
            "event_id": f"POS-{store}-{occurred:%Y%m%d}-{self.sequence:07d}",
            "kind": kind,
            "card": card,
            "store_id": store,
            "occurred_at": occurred.isoformat(timespec="seconds"),
            "currency": "EUR",
            "payment_method": method,
            "total_cents": sum(int(line["amount_cents"]) for line in lines),
            "lines": lines,
        }
        return card.encode(), orjson.dumps(body)

    def _line(self, rng: random.Random) -> dict[str, Any]:
        group, low, high, _ = rng.choices(PRODUCT_GROUPS, weights=[g[3] for g in PRODUCT_GROUPS])[0]
        quantity = rng.choice([1, 1, 1, 2, 3])
        return {
            "sku": f"64{rng.randrange(10**11):011d}",
            "product_group": group,
            "quantity": quantity,
            "amount_cents": quantity * rng.randint(low, high),
        }


def _weighted(rng: random.Random, options: list[tuple[str, int]]) -> str:
    return rng.choices([o[0] for o in options], weights=[o[1] for o in options])[0]


def _event(key: str, body: dict[str, Any]) -> tuple[bytes, bytes]:
    return key.encode(), orjson.dumps(body)
