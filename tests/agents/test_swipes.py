"""The swipe pipeline end to end: real broker, real Redis, the worker and API as processes."""

from __future__ import annotations

import random
import signal
from decimal import Decimal

import httpx
import orjson

from models.bonus import Accumulator, contribution
from models.rules import load_rules
from models.swipe import parse_swipe
from tests.agents.conftest import Deployment
from tests.support import events
from tests.support.services import metric, wait_until

CONTRACT_SWIPE = orjson.loads(events.CONTRACT_EXAMPLE)


def register_household(d: Deployment, household_id: str, card: str, **household: object) -> None:
    d.send(
        "register", [events.household(household_id, **household), events.card(card, household_id)]
    )


def test_a_swipe_becomes_a_balance_in_the_api(deployment: Deployment) -> None:
    register_household(deployment, "H100234", "6390001234567890")
    deployment.send("swipes", [CONTRACT_SWIPE])
    deployment.start_worker()
    api = deployment.start_api()

    def balance() -> dict[str, object] | None:
        r = httpx.get(f"{api.base_url}/v1/households/H100234/bonus", params={"month": "2026-11"})
        return r.json() if r.status_code == 200 and r.json()["swipes"] else None

    body = wait_until(balance, timeout=60, what="the swipe in the API")
    # 2347 c of eligible purchases is below the first tier (5000 c): no base or fuel bonus,
    # but 0.5 % payment benefit on all of it: round(50 x 2347 / 10000) = round(11.735) = 12.
    assert body == {
        "household_id": "H100234",
        "month": "2026-11",
        "co_op": "hok-elanto",
        "purchases_cents": 2347,
        "tier_bp": 0,
        "base_bonus_cents": 0,
        "fuel_bonus_cents": 0,
        "payment_benefit_cents": 12,
        "total_cents": 12,
        "final": False,
        "paid_cents": 0,
        "swipes": 1,
    }
    by_card = httpx.get(f"{api.base_url}/v1/cards/6390001234567890/bonus?month=2026-11").json()
    assert by_card == body
    assert deployment.accumulator("H100234", "2026-11") == {
        "purchases_cents": 2347,
        "campaign_x2_cents": 398,
        "fuel_cents": 1949,
        "fuel_ml": 10250,
        "benefit_cents": 2347,
        "swipes": 1,
    }
    assert deployment.groups("H100234", "2026-11") == {"dairy": 398, "fuel": 1949}


def test_the_same_swipe_three_times_counts_once(deployment: Deployment) -> None:
    register_household(deployment, "H1", "6390000000000001")
    once = events.swipe("E-1", "6390000000000001")
    other = events.swipe(
        "E-2",
        "6390000000000001",
        lines=[{"sku": "x", "product_group": "bread", "quantity": 1, "amount_cents": 250}],
    )
    deployment.send("swipes", [once, once, other, once])
    deployment.start_worker()
    acc = wait_until(
        lambda: (a := deployment.accumulator("H1", "2026-11")).get("swipes") == 2 and a,
        timeout=60,
        what="both swipes applied",
    )
    assert acc["purchases_cents"] == 398 + 250


def expected_accumulators(
    swipes: list[bytes], cards: dict[str, str]
) -> dict[tuple[str, str], dict[str, int]]:
    rules = load_rules("stream/rules.default.toml")
    sums: dict[tuple[str, str], Accumulator] = {}
    seen: set[str] = set()
    for raw in swipes:
        swipe = parse_swipe(raw)
        if swipe.event_id in seen:
            continue
        seen.add(swipe.event_id)
        c = contribution(swipe, rules)
        sums.setdefault((cards[swipe.card], str(c.month)), Accumulator()).add(c.delta)
    return {k: v.fields() for k, v in sums.items()}


def random_swipes(rng: random.Random, cards: list[str], count: int, prefix: str) -> list[bytes]:
    """``count`` encoded swipes of the given cards: 1-4 lines of mixed groups (fuel, alcohol,
    gift cards), returns, excluded payment methods, a campaign store, two bonus months."""
    swipes = []
    for n in range(count):
        card = rng.choice(cards)
        lines = [
            {
                "sku": f"s{k}",
                "product_group": rng.choice(["dairy", "fuel", "alcohol", "gift_card"]),
                "quantity": 1,
                "amount_cents": rng.randint(1, 5000),
            }
            for k in range(rng.randint(1, 4))
        ]
        for line in lines:
            if line["product_group"] == "fuel":
                line["fuel_ml"] = line["amount_cents"] * 5
        swipes.append(
            events.encode(
                events.swipe(
                    f"{prefix}-{n}",
                    card,
                    lines=lines,
                    kind="return" if n % 17 == 0 else "purchase",
                    payment_method=rng.choice(["s_etukortti_visa", "cash", "invoice"]),
                    store_id=rng.choice(["S0042", "S0001"]),
                    occurred_at=rng.choice(
                        ["2026-11-20T10:00:00+02:00", "2026-10-31T23:30:00+02:00"]
                    ),
                )
            )
        )
    return swipes


def test_a_worker_killed_mid_stream_loses_nothing_and_counts_nothing_twice(
    deployment: Deployment,
) -> None:
    rng = random.Random(4)
    cards = {f"63900000{n:08d}": f"H{n:03d}" for n in range(40)}
    deployment.send("register", events.households_with_cards(cards))
    swipes = random_swipes(rng, list(cards), 4000, "K")
    deployment.send_raw("swipes", [(orjson.loads(s)["card"].encode(), s) for s in swipes])
    expected = expected_accumulators(swipes, cards)

    def applied() -> int:
        return sum(deployment.accumulator(h, m).get("swipes", 0) for h, m in expected)

    # Small batches so the kill lands mid-stream, with work both done and not yet committed.
    worker = deployment.start_worker("worker-1", LOYALTY_BATCH_SIZE="50")
    wait_until(lambda: applied() >= 400, timeout=60, what="a first part applied")
    worker.kill(signal.SIGKILL)
    at_kill = applied()
    assert at_kill < len(swipes), "the worker finished before it was killed; kill earlier"
    deployment.start_worker("worker-2", LOYALTY_BATCH_SIZE="50")
    wait_until(lambda: applied() >= len(swipes), timeout=120, what="every swipe applied")
    actual = {key: deployment.accumulator(*key) for key in expected}
    assert actual == expected
    assert applied() == len(swipes)


def test_malformed_events_go_to_dead_letters_while_good_ones_flow(deployment: Deployment) -> None:
    register_household(deployment, "H7", "6390000000000007")
    good = events.swipe("G-0", "6390000000000007")
    bad_kinds: list[tuple[str, bytes]] = [
        ("invalid_json", b"{not json"),
        ("invalid_json", b"\xff\xfe\x00garbage"),
        ("not_an_object", b"[1, 2, 3]"),
        ("unsupported_schema", events.encode({**good, "schema": "swipe/2"})),
        ("missing_field", events.encode({k: v for k, v in good.items() if k != "card"})),
        ("invalid_field", events.encode({**good, "total_cents": "398"})),
        ("unknown_enum", events.encode({**good, "payment_method": "bitcoin"})),
        ("unsupported_currency", events.encode({**good, "currency": "SEK"})),
        ("total_mismatch", events.encode({**good, "total_cents": 399})),
        ("invalid_lines", events.encode({**good, "lines": [], "total_cents": 0})),
        ("oversize", b'{"schema": "swipe/1", "pad": "' + b"x" * 600_000 + b'"}'),
    ]
    messages: list[tuple[bytes | None, bytes]] = []
    expected_reasons: dict[str, int] = {}
    goods = 0
    for n in range(1000):
        reason, value = bad_kinds[n % len(bad_kinds)]
        expected_reasons[reason] = expected_reasons.get(reason, 0) + 1
        messages.append((f"bad-{n}".encode(), value))
        if n % 10 == 0:
            messages.append((b"6390000000000007", events.encode({**good, "event_id": f"G-{n}"})))
            goods += 1
    deployment.send_raw("swipes", messages)
    deployment.start_worker()
    letters = deployment.read("dead-letters", 1000, timeout=90)
    reasons: dict[str, int] = {}
    for record in letters:
        letter = orjson.loads(record.value)
        assert set(letter) == {"topic", "key", "value", "reason", "detail", "rejected_at"}
        assert letter["topic"] == deployment.topic("swipes")
        assert record.key == letter["key"].encode()
        reasons[letter["reason"]] = reasons.get(letter["reason"], 0) + 1
    assert reasons == expected_reasons
    acc = wait_until(
        lambda: (a := deployment.accumulator("H7", "2026-11")).get("swipes") == goods and a,
        timeout=30,
        what="every good swipe applied",
    )
    assert acc["purchases_cents"] == goods * 398


def test_a_swipe_of_an_unknown_card_is_held_then_credited_to_its_own_month(
    deployment: Deployment,
) -> None:
    card = "6390000000000099"
    october = events.swipe("U-1", card, occurred_at="2026-10-31T23:59:00+02:00")  # still October
    deployment.send("swipes", [october])
    worker = deployment.start_worker()
    wait_until(
        lambda: deployment.redis.get(deployment.key("held", "count")) == b"1",
        timeout=60,
        what="the swipe held",
    )
    metrics = httpx.get(worker.metrics_url).text
    assert 'loyalty_swipes_total{kind="purchase",outcome="held"} 1.0' in metrics
    assert deployment.accumulator("H99", "2026-10") == {}
    register_household(deployment, "H99", card)
    acc = wait_until(lambda: deployment.accumulator("H99", "2026-10"), timeout=60, what="credit")
    assert acc == {"purchases_cents": 398, "regular_cents": 398, "swipes": 1}
    assert deployment.redis.get(deployment.key("held", "count")) == b"0"
    assert deployment.redis.exists(deployment.key("held", card)) == 0
    assert deployment.accumulator("H99", "2026-11") == {}


def test_blocked_and_expired_cards_earn_nothing_and_are_dead_lettered(
    deployment: Deployment,
) -> None:
    deployment.send(
        "register",
        [
            events.household("HB"),
            events.card("6390000000000101", "HB", status="blocked"),
            events.card("6390000000000102", "HB", valid_until="2026-11-20"),
            events.card("6390000000000103", "HB", valid_until="2026-11-21"),
        ],
    )
    deployment.send(
        "swipes",
        [
            events.swipe("B-1", "6390000000000101"),
            events.swipe("B-2", "6390000000000102", occurred_at="2026-11-21T00:30:00+02:00"),
            # The last valid day itself still earns (Helsinki date 2026-11-21).
            events.swipe("B-3", "6390000000000103", occurred_at="2026-11-21T23:30:00+02:00"),
        ],
    )
    deployment.start_worker()
    letters = deployment.read("dead-letters", 2, timeout=60)
    assert sorted(orjson.loads(r.value)["reason"] for r in letters) == [
        "card_blocked",
        "card_expired",
    ]
    acc = wait_until(lambda: deployment.accumulator("HB", "2026-11"), timeout=30, what="B-3")
    assert acc["swipes"] == 1


def test_purchase_lines_reach_clickhouse_once_each_under_redelivery(deployment: Deployment) -> None:
    from stream.clickhouse.connect import connect  # noqa: PLC0415 (chdb opens only when asked)

    register_household(deployment, "HA", "6390000000000321")
    lines = [
        {"sku": "a", "product_group": "dairy", "quantity": 1.5, "amount_cents": 300},
        {
            "sku": "FUEL95",
            "product_group": "fuel",
            "quantity": 1,
            "amount_cents": 2000,
            "fuel_ml": 10000,
        },
        {"sku": "g", "product_group": "gift_card", "quantity": 1, "amount_cents": 5000},
    ]
    purchase = events.swipe("L-1", "6390000000000321", lines=lines)
    back = events.swipe("L-2", "6390000000000321", kind="return", lines=lines[:1])
    deployment.send("swipes", [purchase, purchase, back, purchase])
    worker = deployment.start_worker()
    wait_until(lambda: deployment.accumulator("HA", "2026-11").get("swipes") == 2, timeout=60)
    # Redelivered swipes are written again (a crash may have come between Redis and Kafka);
    # the table keeps one row per (event_id, line_no).
    wait_until(
        lambda: metric(worker.metrics_url, 'loyalty_clickhouse_lines_total{engine="chdb"}') >= 4,
        timeout=60,
        what="lines written",
    )
    worker.stop()  # chdb opens in one process at a time
    with connect(deployment.env["LOYALTY_CLICKHOUSE_URL"]) as ch:
        rows = ch.query(
            "SELECT event_id, line_no, amount_cents, quantity, fuel_ml, bonus_eligible, kind,"
            " month, household_key FROM purchase_lines FINAL ORDER BY event_id, line_no"
        )
        # the worker wrote its rules for the dashboards when its analytics stage connected
        bonus_rules = ch.query(
            "SELECT argMax(tier_from_cents, version), argMax(campaign_id, version),"
            " count() FROM bonus_rules"
        )
    assert bonus_rules == [([5000, *range(20000, 100000, 10000)], ["double-week-47"], 1)]
    assert [r[:3] for r in rows] == [
        ("L-1", 0, 300),
        ("L-1", 1, 2000),
        ("L-1", 2, 5000),
        ("L-2", 0, -300),
    ]
    assert [r[3] for r in rows] == [Decimal("1.5"), 1, 1, Decimal("-1.5")]
    assert [r[4] for r in rows] == [0, 10000, 0, 0]
    assert [r[5] for r in rows] == [1, 1, 0, 1]  # gift cards earn no bonus
    assert {str(r[7]) for r in rows} == {"2026-11-01"}
    assert len({r[8] for r in rows}) == 1 and "HA" not in str(rows)
