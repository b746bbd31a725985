"""Bonus rules (contract section 4): the default file, validation errors with lines, campaigns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from models.errors import RulesError
from models.rules import Campaign, Rules, Tier, load_rules, parse_rules

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "stream" / "rules.default.toml"
HEL = ZoneInfo("Europe/Helsinki")

# Section 4 of the contract, verbatim: the default file must say the same.
CONTRACT_RULES = """\
timezone = "Europe/Helsinki"
payment_benefit_bp = 50                      # maksutapaetu
payment_benefit_methods = ["s_etukortti_visa"]
payment_benefit_excluded_product_groups = ["tobacco", "alcohol", "lottery"]
excluded_payment_methods = ["invoice", "company_card", "benefit_voucher"]
excluded_product_groups = ["gift_card", "lottery"]
fuel_product_groups = ["fuel"]

[bonus_tables.default]                       # monthly household purchases -> rate
tiers = [ { from_cents = 5000,  bp = 100 }, { from_cents = 20000, bp = 150 },
          { from_cents = 30000, bp = 200 }, { from_cents = 40000, bp = 250 },
          { from_cents = 50000, bp = 300 }, { from_cents = 60000, bp = 350 },
          { from_cents = 70000, bp = 400 }, { from_cents = 80000, bp = 450 },
          { from_cents = 90000, bp = 500 } ]

[co_ops]                                     # co-op -> its bonus table
"hok-elanto" = "default"

[[campaigns]]                                # "Bonus tuplana"
id = "double-week-47"
multiplier = 2
store_ids = ["S0042"]
starts_at = "2026-11-16T00:00:00+02:00"      # inclusive
ends_at   = "2026-11-23T00:00:00+02:00"      # exclusive
"""

# One key per line, so that every error has exactly one right line.
BASE = """\
timezone = "Europe/Helsinki"
payment_benefit_bp = 50
payment_benefit_methods = ["s_etukortti_visa"]
payment_benefit_excluded_product_groups = ["tobacco", "alcohol", "lottery"]
excluded_payment_methods = ["invoice", "company_card", "benefit_voucher"]
excluded_product_groups = ["gift_card", "lottery"]
fuel_product_groups = ["fuel"]

[bonus_tables.default]
tiers = [
  { from_cents = 5000, bp = 100 },
  { from_cents = 20000, bp = 150 },
  { from_cents = 50000, bp = 300 },
]

[co_ops]
"hok-elanto" = "default"

[[campaigns]]
id = "double-week-47"
multiplier = 2
store_ids = ["S0042"]
starts_at = "2026-11-16T00:00:00+02:00"
ends_at = "2026-11-23T00:00:00+02:00"
"""

SECOND_CAMPAIGN = """
[[campaigns]]
id = "triple-weekend"
multiplier = 3
store_ids = ["S0042", "S0007"]
starts_at = "2026-11-20T00:00:00+02:00"
ends_at = "2026-11-30T00:00:00+02:00"
"""

MARK = "# HERE"


def edit(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


def line_of(text: str, marker: str = MARK) -> int:
    [number] = [n for n, line in enumerate(text.splitlines(), start=1) if marker in line]
    return number


def error(text: str, source: str = "custom.toml") -> str:
    with pytest.raises(RulesError) as info:
        parse_rules(text, source)
    return str(info.value)


def assert_points_at(text: str, *fragments: str, marker: str = MARK) -> None:
    message = error(text)
    assert message.startswith(f"custom.toml:{line_of(text, marker)}: "), message
    for fragment in fragments:
        assert fragment in message, message


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- loading -----------------------------------------------------------------------------


def test_default_rules_file_loads_with_the_contract_values() -> None:
    rules = load_rules(DEFAULT_RULES)
    assert rules.timezone == HEL
    assert rules.payment_benefit_bp == 50
    assert rules.payment_benefit_methods == {"s_etukortti_visa"}
    assert rules.payment_benefit_excluded_product_groups == {"tobacco", "alcohol", "lottery"}
    assert rules.excluded_payment_methods == {"invoice", "company_card", "benefit_voucher"}
    assert rules.excluded_product_groups == {"gift_card", "lottery"}
    assert rules.fuel_product_groups == {"fuel"}
    assert rules.bonus_tables == {
        "default": (
            Tier(5000, 100),
            Tier(20000, 150),
            Tier(30000, 200),
            Tier(40000, 250),
            Tier(50000, 300),
            Tier(60000, 350),
            Tier(70000, 400),
            Tier(80000, 450),
            Tier(90000, 500),
        )
    }
    assert rules.co_ops == {"hok-elanto": "default"}
    assert rules.campaigns == (
        Campaign(
            id="double-week-47",
            multiplier=2,
            store_ids=frozenset({"S0042"}),
            starts_at=datetime(2026, 11, 15, 22, 0, tzinfo=UTC),
            ends_at=datetime(2026, 11, 22, 22, 0, tzinfo=UTC),
        ),
    )


def test_default_rules_file_says_what_the_contract_says() -> None:
    assert load_rules(DEFAULT_RULES) == parse_rules(CONTRACT_RULES)


def test_load_rules_accepts_str_and_path(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(BASE, encoding="utf-8")
    assert load_rules(str(path)) == load_rules(path) == parse_rules(BASE)


def test_errors_from_load_rules_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "my-rules.toml"
    text = edit('"hok-elanto" = "default"', f'"hok-elanto" = "nope"  {MARK}')
    path.write_text(text, encoding="utf-8")
    with pytest.raises(RulesError) as info:
        load_rules(path)
    assert str(info.value).startswith(f"{path}:{line_of(text)}: ")


def test_a_missing_file_is_a_rules_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(RulesError, match="cannot read"):
        load_rules(path)


def test_a_file_that_is_not_utf8_is_a_rules_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(BASE.replace('"lottery"]', '"lotteri\xe4"]').encode("latin-1"))
    with pytest.raises(RulesError, match="UTF-8"):
        load_rules(path)


def test_minimal_rules_get_the_documented_defaults() -> None:
    rules = parse_rules("[bonus_tables.default]\ntiers = [ { from_cents = 0, bp = 100 } ]\n")
    assert rules.timezone == HEL
    assert rules.payment_benefit_bp == 0
    assert rules.payment_benefit_methods == frozenset()
    assert rules.excluded_payment_methods == frozenset()
    assert rules.excluded_product_groups == frozenset()
    assert rules.fuel_product_groups == frozenset()
    assert rules.co_ops == {}
    assert rules.campaigns == ()


def test_campaign_instants_may_be_native_toml_datetimes() -> None:
    text = edit('starts_at = "2026-11-16T00:00:00+02:00"', "starts_at = 2026-11-15T22:00:00Z")
    assert parse_rules(text).campaigns[0].starts_at == datetime(2026, 11, 15, 22, 0, tzinfo=UTC)


def test_bp_limits_are_inclusive() -> None:
    text = edit("payment_benefit_bp = 50", "payment_benefit_bp = 10000")
    text = edit("{ from_cents = 50000, bp = 300 }", "{ from_cents = 50000, bp = 10000 }", text)
    text = edit("{ from_cents = 5000, bp = 100 }", "{ from_cents = 0, bp = 0 }", text)
    rules = parse_rules(text)
    assert rules.payment_benefit_bp == 10000
    assert rules.bonus_tables["default"] == (Tier(0, 0), Tier(20000, 150), Tier(50000, 10000))


# --- errors name the file and the line ---------------------------------------------------


def test_unsorted_tiers() -> None:
    text = edit("{ from_cents = 50000, bp = 300 },", f"{{ from_cents = 10000, bp = 300 }}, {MARK}")
    assert_points_at(text, "10000", "out of order")


def test_unsorted_tier_whose_number_is_a_prefix_of_an_earlier_one() -> None:
    # "from_cents = 500" is a prefix of the earlier "from_cents = 5000": the line must be its own.
    text = edit("{ from_cents = 50000, bp = 300 },", f"{{ from_cents = 500, bp = 300 }}, {MARK}")
    assert_points_at(text, "500", "out of order")


def test_overlapping_tiers_point_at_the_second_one() -> None:
    text = edit("{ from_cents = 20000, bp = 150 },", f"{{ from_cents = 5000, bp = 150 }}, {MARK}")
    assert_points_at(text, "5000", "overlaps")


def test_overlapping_tiers_on_one_line_in_the_contract_layout() -> None:
    text = edit(
        "{ from_cents = 20000, bp = 150 }", "{ from_cents = 5000, bp = 150 }", CONTRACT_RULES
    )
    assert_points_at(text, "overlaps", marker="{ from_cents = 5000,  bp = 100 }")


def test_tier_error_in_a_second_table_points_into_that_table() -> None:
    text = BASE + (
        "\n[bonus_tables.pirkka]\n"
        "tiers = [\n"
        "  { from_cents = 50000, bp = 300 },\n"
        f"  {{ from_cents = 20000, bp = 150 }}, {MARK}\n"
        "]\n"
    )
    assert_points_at(text, "bonus_tables.pirkka", "20000", "out of order")


def test_tier_written_with_underscores_is_found() -> None:
    text = edit("{ from_cents = 50000, bp = 300 },", f"{{ from_cents = 1_000, bp = 300 }}, {MARK}")
    assert_points_at(text, "1000", "out of order")


@pytest.mark.parametrize("bp", ["-1", "-150", "10001", "1.5", "true", '"150"'])
def test_bad_tier_bp(bp: str) -> None:
    text = edit("{ from_cents = 20000, bp = 150 },", f"{{ from_cents = 20000, bp = {bp} }}, {MARK}")
    assert_points_at(text, "bp", "0-10000")


@pytest.mark.parametrize("bp", ["-1", "10001", "0.5", '"50"'])
def test_bad_payment_benefit_bp(bp: str) -> None:
    text = edit("payment_benefit_bp = 50", f"payment_benefit_bp = {bp}  {MARK}")
    assert_points_at(text, "payment_benefit_bp")


def test_negative_from_cents() -> None:
    text = edit("{ from_cents = 5000, bp = 100 },", f"{{ from_cents = -1, bp = 100 }}, {MARK}")
    assert_points_at(text, "from_cents")


def test_tier_with_a_misspelt_key() -> None:
    text = edit("{ from_cents = 5000, bp = 100 },", "{ from = 5000, bp = 100 },")
    assert_points_at(text, "from_cents", marker="tiers = [")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('"hok-elanto" = "default"', f'"hok-elanto" = "nope"  {MARK}'),
        ('"hok-elanto" = "default"', f'hok-elanto = "nope"  {MARK}'),
        ('"hok-elanto" = "default"', f'"hok-elanto" = 1  {MARK}'),
        (
            '"hok-elanto" = "default"',
            f'"hok-elanto" = "default"\n"osuuskauppa-arina" = "arina"  {MARK}',
        ),
    ],
)
def test_co_op_mapped_to_an_unknown_table(old: str, new: str) -> None:
    assert_points_at(edit(old, new), "unknown bonus table", "default")


def test_co_op_error_is_not_fooled_by_a_table_of_the_same_name() -> None:
    text = edit("[co_ops]", "[bonus_tables.hok-elanto]\ntiers = []\n\n[co_ops]")
    text = edit('"hok-elanto" = "default"', f'"hok-elanto" = "default"\nsso = "nope"  {MARK}', text)
    assert_points_at(text, "'sso'")


def test_campaign_ending_before_it_starts() -> None:
    text = edit(
        'ends_at = "2026-11-23T00:00:00+02:00"', f'ends_at = "2026-11-01T00:00:00+02:00"  {MARK}'
    )
    assert_points_at(text, "double-week-47", "before it starts")


def test_campaign_ending_when_it_starts_is_rejected_too() -> None:
    text = edit(
        'ends_at = "2026-11-23T00:00:00+02:00"', f'ends_at = "2026-11-15T22:00:00Z"  {MARK}'
    )
    assert_points_at(text, "before it starts")


def test_error_in_the_second_campaign_points_into_the_second_campaign() -> None:
    second = edit(
        'ends_at = "2026-11-30T00:00:00+02:00"',
        f'ends_at = "2026-11-19T00:00:00+02:00"  {MARK}',
        SECOND_CAMPAIGN,
    )
    assert_points_at(BASE + second, "triple-weekend", "before it starts")


@pytest.mark.parametrize("multiplier", ["0", "101", "true", "1.5", '"2"', "-2"])
def test_bad_campaign_multiplier(multiplier: str) -> None:
    second = edit("multiplier = 3", f"multiplier = {multiplier}  {MARK}", SECOND_CAMPAIGN)
    assert_points_at(BASE + second, "triple-weekend", "multiplier")


@pytest.mark.parametrize("stores", ["[]", '"S0042"', '[""]', "[42]"])
def test_bad_campaign_stores(stores: str) -> None:
    second = edit(
        'store_ids = ["S0042", "S0007"]', f"store_ids = {stores}  {MARK}", SECOND_CAMPAIGN
    )
    assert_points_at(BASE + second, "store_ids")


@pytest.mark.parametrize(
    "value", ['"2026-11-20T00:00:00"', '"next friday"', "2026-11-20", "2026-11-20T00:00:00", "5"]
)
def test_campaign_start_needs_a_date_time_with_an_offset(value: str) -> None:
    second = edit(
        'starts_at = "2026-11-20T00:00:00+02:00"', f"starts_at = {value}  {MARK}", SECOND_CAMPAIGN
    )
    assert_points_at(BASE + second, "triple-weekend", "starts_at")


def test_duplicate_campaign_id() -> None:
    second = edit('id = "triple-weekend"', f'id = "double-week-47"  {MARK}', SECOND_CAMPAIGN)
    assert_points_at(BASE + second, "used twice")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("excluded_payment_methods", '["invoice", "cheque"]'),
        ("excluded_payment_methods", '["Cash"]'),
        ("payment_benefit_methods", '["s_etukortti_mastercard"]'),
    ],
)
def test_unknown_payment_method(name: str, value: str) -> None:
    old = next(line for line in BASE.splitlines() if line.startswith(f"{name} ="))
    text = edit(old, f"{name} = {value}  {MARK}")
    assert_points_at(text, "unknown payment method", name)


def test_a_list_error_points_at_its_own_key_not_a_longer_one_containing_it() -> None:
    # "excluded_product_groups" is part of "payment_benefit_excluded_product_groups" (line 4).
    text = edit(
        'excluded_product_groups = ["gift_card", "lottery"]',
        f'excluded_product_groups = ["gift_card", 1]  {MARK}',
    )
    assert_points_at(text, "excluded_product_groups")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('timezone = "Europe/Helsinki"', f'timezon = "Europe/Helsinki"  {MARK}'),
        ("[co_ops]", f"[campaign]  {MARK}\nid = 1\n\n[co_ops]"),
        ("[co_ops]", f"[co_op]  {MARK}\n\n[co_ops]"),
        ("payment_benefit_bp = 50", f"payment_benefit_bp = 50\npayment_bonus_bp = 10  {MARK}"),
    ],
)
def test_unknown_top_level_key(old: str, new: str) -> None:
    assert_points_at(edit(old, new), "unknown key")


@pytest.mark.parametrize(
    "zone", ['"Mars/Olympus"', '"Europe"', '""', '"../etc/passwd"', '"/etc/localtime"', "2"]
)
def test_bad_timezone(zone: str) -> None:
    text = edit('timezone = "Europe/Helsinki"', f"timezone = {zone}  {MARK}")
    assert_points_at(text, "timezone")


def test_a_key_named_in_a_comment_above_does_not_take_the_line() -> None:
    text = '# timezone = "Europe/Stockholm" was tried once\n' + edit(
        'timezone = "Europe/Helsinki"', f'timezone = "Nowhere/Land"  {MARK}'
    )
    assert_points_at(text, "Nowhere/Land")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("multiplier = 2", f"multiplier =   {MARK}"),
        ('id = "double-week-47"', f'id = "double-week-47  {MARK}'),
        ("payment_benefit_bp = 50", f"payment_benefit_bp = 50 50  {MARK}"),
        ("[co_ops]", f"[co_ops  {MARK}"),
    ],
)
def test_toml_syntax_error(old: str, new: str) -> None:
    assert_points_at(edit(old, new))


def test_toml_syntax_error_at_the_end_of_the_document() -> None:
    text = BASE + "extra = [\n  1,\n"
    message = error(text)
    assert message.startswith(f"custom.toml:{len(text.splitlines())}: "), message


def test_no_bonus_table_at_all() -> None:
    text = "\n".join(line for line in BASE.splitlines()[:7])
    message = error(text)
    assert message.startswith("custom.toml: ")
    assert "bonus_tables" in message


# --- co-op tables --------------------------------------------------------------------------


def test_unknown_co_op_uses_the_default_table() -> None:
    text = BASE + "\n[bonus_tables.arina]\ntiers = [ { from_cents = 100, bp = 50 } ]\n"
    text = edit('"hok-elanto" = "default"', '"hok-elanto" = "default"\n"arina" = "arina"', text)
    rules = parse_rules(text)
    assert rules.table_name("arina") == "arina"
    assert rules.tiers_for("arina") == (Tier(100, 50),)
    assert rules.table_name("hok-elanto") == "default"
    assert rules.table_name("never-heard-of") == "default"
    assert rules.tiers_for("never-heard-of") == rules.bonus_tables["default"]


def test_unknown_co_op_without_a_default_table_is_a_rules_error() -> None:
    text = "[bonus_tables.arina]\ntiers = [ { from_cents = 100, bp = 50 } ]\n"
    text += '[co_ops]\n"arina" = "arina"\n'
    rules = parse_rules(text)
    assert rules.tiers_for("arina") == (Tier(100, 50),)
    with pytest.raises(RulesError, match="no default"):
        rules.tiers_for("hok-elanto")


# --- campaign_for ------------------------------------------------------------------------

CAMPAIGNS = """
[[campaigns]]
id = "x2"
multiplier = 2
store_ids = ["S0042"]
starts_at = "2026-11-16T00:00:00+02:00"
ends_at = "2026-11-23T00:00:00+02:00"

[[campaigns]]
id = "x3"
multiplier = 3
store_ids = ["S0042", "S0007"]
starts_at = "2026-11-20T00:00:00+02:00"
ends_at = "2026-11-30T00:00:00+02:00"

[[campaigns]]
id = "x4"
multiplier = 4
store_ids = ["S0042"]
starts_at = "2026-11-21T00:00:00+02:00"
ends_at = "2026-11-22T00:00:00+02:00"
"""


def campaign_rules(*, reverse: bool = False) -> Rules:
    blocks = ["\n[[campaigns]]" + block for block in CAMPAIGNS.split("\n[[campaigns]]")[1:]]
    if reverse:
        blocks.reverse()
    head = BASE[: BASE.index("[[campaigns]]")]
    return parse_rules(head + "".join(blocks))


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(
    ("store", "when", "expected"),
    [
        ("S0042", "2026-11-15T23:59:59+02:00", None),
        ("S0042", "2026-11-16T00:00:00+02:00", "x2"),
        ("S0042", "2026-11-19T12:00:00+02:00", "x2"),
        ("S0042", "2026-11-20T00:00:00+02:00", "x3"),  # x2 and x3 both apply
        ("S0042", "2026-11-21T00:00:00+02:00", "x4"),  # x2, x3 and x4 apply
        ("S0042", "2026-11-21T23:59:59+02:00", "x4"),
        ("S0042", "2026-11-22T00:00:00+02:00", "x3"),
        ("S0042", "2026-11-29T23:59:59+02:00", "x3"),
        ("S0042", "2026-11-30T00:00:00+02:00", None),
        ("S0007", "2026-11-19T12:00:00+02:00", None),  # x2 is not at S0007
        ("S0007", "2026-11-21T12:00:00+02:00", "x3"),  # nor is x4
        ("S0001", "2026-11-21T12:00:00+02:00", None),
    ],
)
def test_campaign_for_picks_the_largest_multiplier(
    store: str, when: str, expected: str | None, reverse: bool
) -> None:
    campaign = campaign_rules(reverse=reverse).campaign_for(store, at(when))
    assert (campaign.id if campaign else None) == expected


def test_campaign_window_start_inclusive_end_exclusive_to_the_microsecond() -> None:
    rules = load_rules(DEFAULT_RULES)
    start = datetime(2026, 11, 15, 22, 0, tzinfo=UTC)
    end = datetime(2026, 11, 22, 22, 0, tzinfo=UTC)
    tick = timedelta(microseconds=1)
    assert rules.campaign_for("S0042", start - tick) is None
    assert rules.campaign_for("S0042", start) is not None
    assert rules.campaign_for("S0042", end - tick) is not None
    assert rules.campaign_for("S0042", end) is None
    # The same instants written with another offset.
    assert rules.campaign_for("S0042", start.astimezone(HEL)) is not None
    assert rules.campaign_for("S0042", at("2026-11-22T17:00:00-05:00")) is None
    assert rules.campaign_for("S0042", at("2026-11-22T16:59:59-05:00")) is not None
    assert rules.campaign_for("S0043", start) is None
    assert rules.campaign_for("s0042", start) is None
