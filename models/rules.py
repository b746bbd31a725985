"""Bonus rules (contract section 4), loaded from TOML and validated before any use."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models.errors import RulesError
from models.swipe import PAYMENT_METHODS

_TOP_KEYS = frozenset(
    {
        "timezone",
        "payment_benefit_bp",
        "payment_benefit_methods",
        "payment_benefit_excluded_product_groups",
        "excluded_payment_methods",
        "excluded_product_groups",
        "fuel_product_groups",
        "bonus_tables",
        "co_ops",
        "campaigns",
        "co_op_years",
        "partners",
    }
)
_CO_OP_YEAR_KEYS = frozenset({"capital_interest_bp", "surplus_refund_bp"})
_PARTNER_ID = re.compile(r"^[\x20-\x7e]{1,32}$")
MAX_BP = 10_000
MAX_MULTIPLIER = 100
_TOML_POSITION = re.compile(r"\(at line (\d+), column \d+\)|\(at end of document\)")


@dataclass(frozen=True, slots=True)
class Tier:
    from_cents: int
    bp: int


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    multiplier: int
    store_ids: frozenset[str]
    starts_at: datetime
    ends_at: datetime

    def applies(self, store_id: str, occurred_at: datetime) -> bool:
        return store_id in self.store_ids and self.starts_at <= occurred_at < self.ends_at


@dataclass(frozen=True, slots=True)
class CoOpYear:
    """A co-op meeting's decision for one year (contract section 11)."""

    capital_interest_bp: int
    surplus_refund_bp: int


@dataclass(frozen=True, slots=True)
class Partner:
    """A business outside the co-op whose checkouts grant Bonus (contract section 12)."""

    partner_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Rules:
    timezone: ZoneInfo
    payment_benefit_bp: int
    payment_benefit_methods: frozenset[str]
    payment_benefit_excluded_product_groups: frozenset[str]
    excluded_payment_methods: frozenset[str]
    excluded_product_groups: frozenset[str]
    fuel_product_groups: frozenset[str]
    bonus_tables: dict[str, tuple[Tier, ...]]
    co_ops: dict[str, str]
    campaigns: tuple[Campaign, ...]
    co_op_years: dict[str, dict[int, CoOpYear]] = field(default_factory=dict)
    partners: dict[str, Partner] = field(default_factory=dict)

    def co_op_year(self, co_op: str, year: int) -> CoOpYear | None:
        """The co-op's interest and surplus refund rates for ``year``, if its meeting set them."""
        return self.co_op_years.get(co_op, {}).get(year)

    def table_name(self, co_op: str) -> str:
        """The co-op's table; a co-op the rules do not name uses ``default``."""
        return self.co_ops.get(co_op, "default")

    def tiers_for(self, co_op: str) -> tuple[Tier, ...]:
        name = self.table_name(co_op)
        if name not in self.bonus_tables:
            raise RulesError(f"co-op {co_op!r} has no bonus table and there is no default table")
        return self.bonus_tables[name]

    def campaign_for(self, store_id: str, occurred_at: datetime) -> Campaign | None:
        """The campaign with the largest multiplier that applies, or None."""
        best: Campaign | None = None
        for campaign in self.campaigns:
            if campaign.applies(store_id, occurred_at) and (
                best is None or campaign.multiplier > best.multiplier
            ):
                best = campaign
        return best


def load_rules(path: str | Path) -> Rules:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"{path}: cannot read rules: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RulesError(f"{path}: rules are not UTF-8: {exc.reason}") from None
    return parse_rules(text, str(path))


def parse_rules(text: str, source: str = "rules.toml") -> Rules:
    """Parse and validate; every error names ``source`` and, where it can, the line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib (3.11) has no lineno attribute; the position is only in the message.
        message = str(exc)
        position = _TOML_POSITION.search(message)
        if position is None:
            raise RulesError(f"{source}: {message}") from None
        line = int(position.group(1)) if position.group(1) else max(1, len(text.splitlines()))
        raise RulesError(f"{source}:{line}: {message}") from None
    return _Parser(text, source).rules(data)


def _code(line: str) -> str:
    """``line`` without its TOML comment (a ``#`` outside a quoted string)."""
    quote = ""
    escaped = False
    for index, char in enumerate(line):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\" and quote == '"':
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == "#":
            return line[:index]
    return line


def _token(text: str) -> re.Pattern[str]:
    """``text`` as a whole token (not part of a longer name or number); `` = `` may be spaced."""
    body = r"\s*=\s*".join(re.escape(part.strip()) for part in text.split("="))
    return re.compile(rf"(?<![A-Za-z0-9_-]){body}(?![A-Za-z0-9_-])")


def _key(name: str) -> re.Pattern[str]:
    """A line that defines the key or table ``name`` (``name =``, ``[name]``, ``name.x =``)."""
    quoted = rf"(?:{re.escape(name)}|\"{re.escape(name)}\"|'{re.escape(name)}')"
    return re.compile(rf"^\s*(?:\[\[?\s*)?{quoted}\s*(?:=|\.|\]|$)")


@dataclass(frozen=True, slots=True)
class _Span:
    """Where to look for an error's line: after line ``after``; ``fallback`` if not found."""

    after: int = 0
    fallback: int | None = None

    @classmethod
    def from_line(cls, line: int | None) -> _Span:
        """The part of the file that starts at line ``line`` (the whole file if None)."""
        return cls(line - 1, line) if line else cls()


def _integer(name: str, value: int) -> re.Pattern[str]:
    """``name = value`` where TOML may have written the integer with underscores."""
    digits = "_?".join(re.escape(c) for c in str(value))
    return re.compile(rf"(?<![A-Za-z0-9_-]){re.escape(name)}\s*=\s*\+?{digits}(?![0-9_.eE])")


class _Parser:
    def __init__(self, text: str, source: str) -> None:
        self.lines = [_code(line) for line in text.splitlines()]
        self.source = source

    def find(
        self, *needles: str | re.Pattern[str], after: int = 0, occurrence: int = 1
    ) -> int | None:
        """Number of the first line after line ``after`` holding every needle, comments ignored.

        A ``str`` needle must appear as a whole token. With ``occurrence`` n > 1, the line of
        the n-th match of the first needle (several may share a line).
        """
        if not needles:
            return None
        patterns = [n if isinstance(n, re.Pattern) else _token(n) for n in needles]
        seen = 0
        for number, line in enumerate(self.lines[after:], start=after + 1):
            if all(p.search(line) for p in patterns[1:]):
                seen += len(patterns[0].findall(line))
                if seen >= occurrence:
                    return number
        return None

    def fail(
        self,
        message: str,
        *needles: str | re.Pattern[str],
        span: _Span = _Span(),
        occurrence: int = 1,
    ) -> RulesError:
        """An error naming the source and, when it is found, the line of ``needles``."""
        number = self.find(*needles, after=span.after, occurrence=occurrence) or span.fallback
        if number is None:
            return RulesError(f"{self.source}: {message}")
        return RulesError(f"{self.source}:{number}: {message}")

    def rules(self, data: dict[str, Any]) -> Rules:
        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            raise self.fail(f"unknown key {unknown[0]!r}", _key(unknown[0]))
        tz_name = data.get("timezone", "Europe/Helsinki")
        if not isinstance(tz_name, str):
            raise self.fail("timezone must be a string", _key("timezone"))
        try:
            tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            # OSError: a tzdata directory such as "Europe" raises IsADirectoryError.
            raise self.fail(f"unknown timezone {tz_name!r}", _key("timezone")) from None
        tables = self.tables(data.get("bonus_tables"))
        co_ops = self.co_ops(data.get("co_ops", {}), tables)
        return Rules(
            timezone=tz,
            payment_benefit_bp=self.bp(data.get("payment_benefit_bp", 0), "payment_benefit_bp"),
            payment_benefit_methods=self.methods(data, "payment_benefit_methods"),
            payment_benefit_excluded_product_groups=self.groups(
                data, "payment_benefit_excluded_product_groups"
            ),
            excluded_payment_methods=self.methods(data, "excluded_payment_methods"),
            excluded_product_groups=self.groups(data, "excluded_product_groups"),
            fuel_product_groups=self.groups(data, "fuel_product_groups"),
            bonus_tables=tables,
            co_ops=co_ops,
            campaigns=self.campaigns(data.get("campaigns", [])),
            co_op_years=self.co_op_years(data.get("co_op_years", {})),
            partners=self.partners(data.get("partners", {})),
        )

    def bp(
        self,
        value: Any,
        name: str,
        needle: re.Pattern[str] | None = None,
        span: _Span = _Span(),
        occurrence: int = 1,
    ) -> int:
        """A rate; an error points at ``needle`` (default: the top-level key ``name``)."""
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_BP:
            raise self.fail(
                f"{name} must be an integer number of basis points 0-{MAX_BP}, got {value!r}",
                needle or _key(name),
                span=span,
                occurrence=occurrence,
            )
        return value

    def strings(self, data: dict[str, Any], name: str) -> frozenset[str]:
        value = data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(x, str) and x for x in value):
            raise self.fail(f"{name} must be a list of non-empty strings", _key(name))
        return frozenset(value)

    def groups(self, data: dict[str, Any], name: str) -> frozenset[str]:
        return self.strings(data, name)

    def methods(self, data: dict[str, Any], name: str) -> frozenset[str]:
        value = self.strings(data, name)
        unknown = sorted(value - PAYMENT_METHODS)
        if unknown:
            raise self.fail(f"{name}: unknown payment method {unknown[0]!r}", _key(name))
        return value

    def tables(self, value: Any) -> dict[str, tuple[Tier, ...]]:
        if not isinstance(value, dict) or not value:
            raise self.fail("at least one [bonus_tables.NAME] is required", _key("bonus_tables"))
        tables: dict[str, tuple[Tier, ...]] = {}
        for name, table in value.items():
            header = f"bonus_tables.{name}"
            # The table's lines start at its header (or at its key under [bonus_tables]).
            span = _Span.from_line(self.find(_key(header)) or self.find(_key(str(name))))
            if not isinstance(table, dict) or not isinstance(table.get("tiers"), list):
                raise self.fail(f"[{header}] needs tiers = [ ... ]", "tiers", span=span)
            tiers: list[Tier] = []
            seen: dict[int, int] = {}
            for tier in table["tiers"]:
                if not isinstance(tier, dict) or set(tier) != {"from_cents", "bp"}:
                    raise self.fail(
                        f"[{header}] each tier is {{ from_cents = N, bp = N }}", "tiers", span=span
                    )
                start = tier["from_cents"]
                if not isinstance(start, int) or isinstance(start, bool) or start < 0:
                    raise self.fail(
                        f"[{header}] from_cents must be a non-negative integer, got {start!r}",
                        _integer("from_cents", start) if isinstance(start, int) else "from_cents",
                        span=span,
                    )
                # The n-th tier with this from_cents is the n-th such text in the table.
                seen[start] = seen.get(start, 0) + 1
                here = _integer("from_cents", start)
                bp = self.bp(tier["bp"], f"[{header}] bp", here, span, seen[start])
                if tiers and start <= tiers[-1].from_cents:
                    kind = "overlaps" if start == tiers[-1].from_cents else "is out of order"
                    raise self.fail(
                        f"[{header}] tier from_cents = {start} {kind}: tiers must be sorted "
                        f"by strictly increasing from_cents",
                        here,
                        span=span,
                        occurrence=seen[start],
                    )
                tiers.append(Tier(start, bp))
            tables[str(name)] = tuple(tiers)
        return tables

    def co_ops(self, value: Any, tables: dict[str, tuple[Tier, ...]]) -> dict[str, str]:
        if not isinstance(value, dict):
            raise self.fail("[co_ops] must map co-op names to table names", _key("co_ops"))
        span = _Span.from_line(self.find(_key("co_ops")))
        for co_op, table in value.items():
            if not isinstance(table, str) or table not in tables:
                raise self.fail(
                    f"co-op {co_op!r} uses unknown bonus table {table!r} "
                    f"(known: {', '.join(sorted(tables))})",
                    _key(co_op),
                    span=span,
                )
        return dict(value)

    def campaigns(self, value: Any) -> tuple[Campaign, ...]:
        if not isinstance(value, list):
            raise self.fail("campaigns must be [[campaigns]] tables", _key("campaigns"))
        seen: set[str] = set()
        result = []
        for index, item in enumerate(value):
            # A campaign's lines start at its own [[campaigns]] header, when it has one.
            span = _Span.from_line(self.find(_key("campaigns"), occurrence=index + 1))
            if not isinstance(item, dict):
                raise self.fail("each [[campaigns]] must be a table", span=span)
            cid = item.get("id")
            if not isinstance(cid, str) or not cid:
                raise self.fail("every campaign needs a non-empty id", _key("id"), span=span)
            if cid in seen:
                raise self.fail(f"campaign id {cid!r} is used twice", _key("id"), span=span)
            seen.add(cid)
            multiplier = item.get("multiplier")
            if (
                not isinstance(multiplier, int)
                or isinstance(multiplier, bool)
                or not 1 <= multiplier <= MAX_MULTIPLIER
            ):
                raise self.fail(
                    f"campaign {cid!r}: multiplier must be an integer 1-{MAX_MULTIPLIER}, "
                    f"got {multiplier!r}",
                    _key("multiplier"),
                    span=span,
                )
            stores = item.get("store_ids")
            if (
                not isinstance(stores, list)
                or not stores
                or not all(isinstance(s, str) and s for s in stores)
            ):
                raise self.fail(
                    f"campaign {cid!r}: store_ids must list stores", _key("store_ids"), span=span
                )
            starts = self.instant(item.get("starts_at"), cid, "starts_at", span)
            ends = self.instant(item.get("ends_at"), cid, "ends_at", span)
            if ends <= starts:
                raise self.fail(
                    f"campaign {cid!r} ends ({ends.isoformat()}) before it starts "
                    f"({starts.isoformat()})",
                    _key("ends_at"),
                    span=span,
                )
            result.append(Campaign(cid, multiplier, frozenset(stores), starts, ends))
        return tuple(result)

    def co_op_years(self, value: Any) -> dict[str, dict[int, CoOpYear]]:
        """``[co_op_years."CO-OP".YEAR]`` tables: the two rates of one co-op's year."""
        if not isinstance(value, dict):
            raise self.fail('co_op_years must be [co_op_years."CO-OP".YEAR] tables', "co_op_years")
        result: dict[str, dict[int, CoOpYear]] = {}
        for co_op, years in value.items():
            where = _key(f"co_op_years.{co_op}")
            if not isinstance(years, dict):
                raise self.fail(
                    f'co_op_years."{co_op}" must hold [co_op_years."{co_op}".YEAR] tables',
                    "co_op_years",
                )
            result[str(co_op)] = {}
            for year_text, entry in years.items():
                name = f'[co_op_years."{co_op}".{year_text}]'
                span = _Span.from_line(self.find("co_op_years", str(year_text)))
                if not str(year_text).isdigit() or not 1900 <= int(year_text) <= 9999:
                    raise self.fail(f"{name}: the year must be 1900-9999", where, span=span)
                if not isinstance(entry, dict):
                    raise self.fail(f"{name} must be a table of rates", where, span=span)
                unknown = sorted(set(entry) - _CO_OP_YEAR_KEYS)
                missing = sorted(_CO_OP_YEAR_KEYS - set(entry))
                if unknown or missing:
                    raise self.fail(
                        f"{name} needs exactly capital_interest_bp and surplus_refund_bp"
                        + (f" (unknown {unknown[0]!r})" if unknown else "")
                        + (f" (missing {missing[0]!r})" if missing else ""),
                        where,
                        span=span,
                    )
                rates = {
                    k: self.bp(entry[k], f"{name} {k}", _key(k), span) for k in _CO_OP_YEAR_KEYS
                }
                result[str(co_op)][int(year_text)] = CoOpYear(**rates)
        return result

    def partners(self, value: Any) -> dict[str, Partner]:
        """``[partners."ID"] name = "..."``: the partners whose swipes are accepted."""
        if not isinstance(value, dict):
            raise self.fail('partners must be [partners."PARTNER_ID"] tables', _key("partners"))
        result: dict[str, Partner] = {}
        for partner_id, entry in value.items():
            header = f'[partners."{partner_id}"]'
            span = _Span.from_line(self.find("partners", re.compile(re.escape(str(partner_id)))))
            if not _PARTNER_ID.match(str(partner_id)):
                raise self.fail(
                    f"{header}: a partner id is 1-32 printable ASCII characters", span=span
                )
            if not isinstance(entry, dict) or set(entry) != {"name"}:
                raise self.fail(f'{header} needs exactly name = "..."', span=span)
            name = entry["name"]
            if not isinstance(name, str) or not name.strip():
                raise self.fail(
                    f"{header}: name must be a non-empty string", _key("name"), span=span
                )
            result[str(partner_id)] = Partner(str(partner_id), name)
        return result

    def instant(self, value: Any, cid: str, name: str, span: _Span) -> datetime:
        # TOML offset date-times arrive as aware datetimes; strings are accepted too.
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise self.fail(
                    f"campaign {cid!r}: {name} is not a date-time", _key(name), span=span
                ) from None
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise self.fail(
                f"campaign {cid!r}: {name} needs a date-time with a UTC offset",
                _key(name),
                span=span,
            )
        return value
